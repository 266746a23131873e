// tests/test_isa.cpp: training gives the same bits on every SIMD target (core/cpu.h). 20 steps of
// configs/hdc_seg.json (the default run's network and data, small validation set) and 20 iterations of
// configs/dcgan_mnist.json on the embedded shapes set, once per target this CPU runs: identical checkpoint
// bytes and identical validation / loss values. A CPU without AVX-512 skips the test, naming what it lacks.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/cpu.h"
#include "models/config.h"
#include "tests/testing.h"
#include "models/train/gan.h"
#include "models/train/segmentation.h"

namespace convlab {
namespace {

using nlohmann::json;

std::string slurp(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  EXPECT_TRUE(f) << path;
  return std::string(std::istreambuf_iterator<char>(f), {});
}

// The values of metrics.jsonl without the wall-clock ones (images/s, seconds), in file order.
std::vector<std::string> metric_values(const std::string& dir) {
  std::vector<std::string> out;
  std::ifstream f(dir + "/metrics.jsonl");
  for (std::string line; std::getline(f, line);) {
    json j = json::parse(line);
    for (const char* k : {"images_per_s", "seconds", "time", "timestamp"}) j.erase(k);
    out.push_back(j.dump());
  }
  return out;
}

struct Run {
  std::vector<std::string> files, metrics;
};

template <class Train>
Run run_under(Isa isa, const json& config, const std::vector<std::string>& files, Train train) {
  set_isa(isa);
  const std::string runs = testing::temp_dir(std::string("isa_") + isa_name(isa));
  train(config, TrainFlags{.runs_dir = runs, .quiet = true});
  const std::string dir = runs + "/" + config["name"].get<std::string>();
  Run r;
  for (const std::string& f : files) r.files.push_back(slurp(dir + "/" + f));
  r.metrics = metric_values(dir);
  return r;
}

template <class Train>
void expect_same_bits(const json& config, const std::vector<std::string>& files, Train train) {
  const Isa saved = active_isa();
  const Run a = run_under(Isa::avx2, config, files, train);
  const Run b = run_under(Isa::avx512, config, files, train);
  set_isa(saved);
  for (size_t i = 0; i < files.size(); ++i)
    EXPECT_TRUE(a.files[i] == b.files[i]) << files[i] << " differs between avx2 and avx512";
  EXPECT_EQ(a.metrics, b.metrics);
  EXPECT_FALSE(a.metrics.empty());
}

TEST(Isa, SegmentationTrainsToTheSameBitsOnEveryTarget) {
  if (!cpu_supports(Isa::avx512)) GTEST_SKIP() << "this CPU lacks AVX-512F: only avx2 runs here";
  json c = load_config(testing::source_path("configs/hdc_seg.json"));
  c["name"] = "isa_seg";
  c["data"]["val_size"] = 16;
  c["train"]["steps"] = 20;
  c["train"]["val_every"] = 10;
  c["train"]["log_every"] = 5;
  expect_same_bits(c, {"model.safetensors", "optimizer.safetensors"},
                   [](const json& cfg, const TrainFlags& f) { return train_segmentation(cfg, f); });
}

TEST(Isa, DcganTrainsToTheSameBitsOnEveryTarget) {
  if (!cpu_supports(Isa::avx512)) GTEST_SKIP() << "this CPU lacks AVX-512F: only avx2 runs here";
  json c = load_config(testing::source_path("configs/dcgan_mnist.json"));
  c["name"] = "isa_gan";
  c["data"] = {{"dataset", "shapes"}, {"train_size", 512}};
  c["train"]["steps"] = 20;
  c["train"]["log_every"] = 5;
  c["train"]["sample_every"] = 20;
  expect_same_bits(c, {"generator.safetensors", "discriminator.safetensors", "optimizer.safetensors"},
                   [](const json& cfg, const TrainFlags& f) { return train_gan(cfg, f); });
}

}  // namespace
}  // namespace convlab

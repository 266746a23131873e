// tests/test_isa.cpp: training gives the same bits on every SIMD target (core/cpu.h). 20 steps of
// configs/hdc_seg.json (the default run's network and data, small validation set) and 20 iterations of
// configs/dcgan_mnist.json on the embedded shapes set, once per target this CPU runs: identical checkpoint
// bytes and identical validation / loss values, between the vector targets; the scalar target on a cut-down
// run of the same config. The targets the CPU lacks are reported (the test is marked skipped, naming them,
// after comparing the ones it has).
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

// Every target in `targets` this CPU runs against the first one.
template <class Train>
void expect_same_bits(const json& config, const std::vector<std::string>& files, std::vector<Isa> targets,
                      Train train) {
  const Isa saved = active_isa();
  std::erase_if(targets, [](Isa i) { return !cpu_supports(i); });
  ASSERT_FALSE(targets.empty());
  const Run ref = run_under(targets[0], config, files, train);
  for (size_t t = 1; t < targets.size(); ++t) {
    const Run r = run_under(targets[t], config, files, train);
    for (size_t i = 0; i < files.size(); ++i)
      EXPECT_TRUE(ref.files[i] == r.files[i])
          << files[i] << " differs between " << isa_name(targets[0]) << " and " << isa_name(targets[t]);
    EXPECT_EQ(ref.metrics, r.metrics) << isa_name(targets[t]);
  }
  set_isa(saved);
  EXPECT_FALSE(ref.metrics.empty());
}

// The scalar target (std::fma through libm, ~50x slower) is compared on a cut-down run of the same config:
// 2 steps of 2 images (segmentation) or 4 samples (GAN), against the fastest target.
json cut_down(json c, const char* batch_key, int batch) {
  c["name"] = c["name"].get<std::string>() + "_scalar";
  c["train"]["steps"] = 2;
  c["train"][batch_key] = batch;
  return c;
}

std::string missing_targets() {
  std::string s;
  for (Isa isa : {Isa::avx512, Isa::avx2})
    if (!cpu_supports(isa)) s += (s.empty() ? "" : ", ") + std::string(isa_name(isa));
  return s;
}

TEST(Isa, SegmentationTrainsToTheSameBitsOnEveryTarget) {
  json c = load_config(testing::source_path("configs/hdc_seg.json"));
  c["name"] = "isa_seg";
  c["data"]["val_size"] = 16;
  c["train"]["steps"] = 20;
  c["train"]["val_every"] = 10;
  c["train"]["log_every"] = 5;
  const auto train = [](const json& cfg, const TrainFlags& f) { return train_segmentation(cfg, f); };
  const std::vector<std::string> files{"model.safetensors", "optimizer.safetensors"};
  expect_same_bits(c, files, {Isa::avx512, Isa::avx2}, train);
  c["data"]["val_size"] = 2;
  c["train"]["val_every"] = 2;
  expect_same_bits(cut_down(c, "batch_size", 2), files, {available_isas().front(), Isa::scalar}, train);
  if (!missing_targets().empty()) GTEST_SKIP() << "this CPU lacks " << missing_targets() << ": not compared";
}

TEST(Isa, DcganTrainsToTheSameBitsOnEveryTarget) {
  json c = load_config(testing::source_path("configs/dcgan_mnist.json"));
  c["name"] = "isa_gan";
  c["data"] = {{"dataset", "shapes"}, {"train_size", 512}};
  c["train"]["steps"] = 20;
  c["train"]["log_every"] = 5;
  c["train"]["sample_every"] = 20;
  const auto train = [](const json& cfg, const TrainFlags& f) { return train_gan(cfg, f); };
  const std::vector<std::string> files{"generator.safetensors", "discriminator.safetensors", "optimizer.safetensors"};
  expect_same_bits(c, files, {Isa::avx512, Isa::avx2}, train);
  c["train"]["sample_every"] = 2;
  c["train"]["log_every"] = 1;
  expect_same_bits(cut_down(c, "batch_size", 4), files, {available_isas().front(), Isa::scalar}, train);
  if (!missing_targets().empty()) GTEST_SKIP() << "this CPU lacks " << missing_targets() << ": not compared";
}

}  // namespace
}  // namespace convlab

// tests/test_engine_golden.cpp: the training loop's behaviour pinned to numbers computed before it was rewritten
// (issue 13: three loops became one). A short segmentation run (configs/hdc_seg.json), a short GAN run
// (configs/dcgan_mnist_ttur.json on the embedded shapes set: both optimizers and the weight average) and a short
// classifier run (configs/mnist_classifier.json on a made-up, seeded MNIST folder) go through `convlab train` as a
// user runs it on 1 and on 2 threads; each must give the same metrics.jsonl values (wall-clock fields dropped), the
// same last losses to the bit and the same checkpoint tensors as the golden numbers below. The resumable tasks
// also run as --stop-after halfway + --resume, which must end in the same checkpoint tensors.
//
// The golden numbers were printed by this test (GOLDEN_PRINT=1 shows them) against the three separate loops of
// tools/lib (train_seg.cpp, train_gan.cpp, classify.cpp) before the change. They depend on the kernels' fixed
// reduction orders only, not on the thread count or the SIMD target (tests/test_isa.cpp); a deliberate change of
// the numerics (a new kernel with another summation order, a new initialisation) changes them, and the new values
// must then be justified in the commit that updates them.
// Updated once since (session 5, with the portable build): -ffp-contract=off everywhere (the compiler no longer
// fuses a*b + c in the non-kernel code of a -march=native build), the stride-1 input gradient computed as a conv
// of dy (another summation order than col2im), and num_batches_tracked stored as int64 [] like PyTorch. The loop
// itself was shown equal to the three old loops with the numbers before that change (commit f2e27e1).
// The metrics hashes changed once more (issue 15, runs that never lose work): every log row now carries
// "split": "train" (and a wall-clock "time", dropped above like "seconds"); weights and losses are unchanged.
#include <gtest/gtest.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/random.h"
#include "data/safetensors.h"
#include "tests/testing.h"

namespace convlab {
namespace {

using nlohmann::json;
namespace fs = std::filesystem;

// FNV-1a, 64 bit: a stable fingerprint of bytes.
struct Fnv {
  uint64_t h = 1469598103934665603ull;
  void add(const void* p, size_t n) {
    const auto* b = static_cast<const unsigned char*>(p);
    for (size_t i = 0; i < n; ++i) h = (h ^ b[i]) * 1099511628211ull;
  }
  void add(const std::string& s) { add(s.data(), s.size() + 1); }  // with its terminator: "ab"+"c" != "a"+"bc"
  std::string hex() const {
    char buf[17];
    std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(h));
    return buf;
  }
};

struct Golden {
  std::string metrics_hash;  // every metrics.jsonl line without its wall-clock fields
  std::string weights_hash;  // names, shapes and float bits of every tensor of the checkpoint's files
  std::vector<std::string> last_losses;  // "key=value" of the last log line, values with 17 significant digits
};

Golden fingerprint(const std::string& run_dir, const std::vector<std::string>& files,
                   const std::vector<std::string>& loss_keys) {
  Golden g;
  Fnv mh;
  std::ifstream f(run_dir + "/metrics.jsonl");
  EXPECT_TRUE(f) << run_dir << "/metrics.jsonl";
  json last_log;
  for (std::string line; std::getline(f, line);) {
    json j = json::parse(line);
    for (const char* k : {"images_per_s", "seconds", "time"}) j.erase(k);
    mh.add(j.dump());
    if (j.contains(loss_keys.front()) && j.value("split", "") == "train") last_log = j;
  }
  g.metrics_hash = mh.hex();
  for (const std::string& k : loss_keys) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.17g", last_log.value(k, std::nan("")));
    g.last_losses.push_back(k + "=" + buf);
  }
  Fnv wh;
  for (const std::string& name : files) {
    const safetensors::File file = safetensors::load(run_dir + "/" + name);
    wh.add(name);
    for (const auto& [tn, t] : file.tensors) {
      wh.add(tn);
      for (int64_t d : t.shape()) wh.add(&d, sizeof d);
      wh.add(t.data(), size_t(t.numel()) * sizeof(float));
    }
  }
  g.weights_hash = wh.hex();
  return g;
}

void expect_golden(const Golden& got, const Golden& want, const std::string& what) {
  if (std::getenv("GOLDEN_PRINT")) {
    std::printf("%s: {\"%s\", \"%s\", {", what.c_str(), got.metrics_hash.c_str(), got.weights_hash.c_str());
    for (const std::string& l : got.last_losses) std::printf("\"%s\", ", l.c_str());
    std::printf("}}\n");
  }
  EXPECT_EQ(got.last_losses, want.last_losses) << what;
  EXPECT_EQ(got.metrics_hash, want.metrics_hash) << what << ": metrics.jsonl differs";
  EXPECT_EQ(got.weights_hash, want.weights_hash) << what << ": checkpoint tensors differ";
}

struct Case {
  std::string name, config, sets;
  std::vector<std::string> files, loss_keys;
  int64_t steps = 0;
  bool resumable = true;
  Golden golden;
};

// `convlab --threads T train ...` into ROOT/RUNS (the made-up digits in ROOT/mnist); returns the run folder.
std::string train(const Case& c, int threads, const std::string& extra, const std::string& root, const std::string& runs) {
  const std::string args = "--threads " + std::to_string(threads) + " train " + testing::source_path(c.config) +
                           " --runs " + root + "/" + runs + " --set name=" + c.name + " " + c.sets + " -q" + extra;
  const testing::CliRun r = testing::run_cli(args, "", "CONVLAB_MNIST_DIR=" + root + "/mnist");
  EXPECT_EQ(r.code, 0) << args << "\n" << r.err;
  return root + "/" + runs + "/" + c.name;
}

// A made-up MNIST folder (data/mnist.h's format): 6 seeded images per digit, values exactly representable.
void write_mnist(const fs::path& dir) {
  fs::create_directories(dir / "digits");
  Rng rng(13);
  for (int d = 0; d < 10; ++d) {
    std::vector<float> v(6 * 784);
    for (float& x : v) x = rng.uniform() < 0.25f ? float(int(rng.uniform() * 256)) / 256.f : 0.f;
    std::ofstream((dir / "digits" / (std::to_string(d) + ".json")).string()) << json{{"data", v}}.dump();
  }
}

void check(const Case& c) {
  const std::string root = testing::temp_dir("golden_" + c.name);
  write_mnist(fs::path(root) / "mnist");
  for (int threads : {1, 2}) {
    const std::string dir = train(c, threads, "", root, "runs" + std::to_string(threads));
    expect_golden(fingerprint(dir, c.files, c.loss_keys), c.golden, c.name + " on " + std::to_string(threads) + " threads");
  }
  if (c.resumable) {  // the weights only: loss_avg (a running mean) restarts on resume, as it always has
    train(c, 2, " --stop-after " + std::to_string(c.steps / 2), root, "resumed");
    const std::string dir = train(c, 1, " --resume", root, "resumed");
    EXPECT_EQ(fingerprint(dir, c.files, c.loss_keys).weights_hash, c.golden.weights_hash)
        << c.name << " stopped halfway and resumed: checkpoint tensors differ";
  }
  fs::remove_all(root);
}

TEST(EngineGolden, Segmentation) {
  check({.name = "golden_seg",
         .config = "configs/hdc_seg.json",
         .sets = "--set data.val_size=8 --set train.steps=6 --set train.batch_size=4 --set train.val_every=3"
                 " --set train.log_every=1 --set train.checkpoint_every=2 --set schedule.warmup_steps=2",
         .files = {"model.safetensors", "optimizer.safetensors"},
         .loss_keys = {"loss", "loss_avg", "lr"},
         .steps = 6,
         .golden = {"2edc2b7089dd407b", "0cfd7449c3422423",
                    {"loss=1.7124823331832886", "loss_avg=1.8541945958220962", "lr=0.00059811559942565763"}}});
}

TEST(EngineGolden, Gan) {
  check({.name = "golden_gan",
         .config = "configs/dcgan_mnist_ttur.json",
         .sets = "--set data.dataset=shapes --set data.train_size=32 --set train.steps=6 --set train.batch_size=8"
                 " --set train.log_every=1 --set train.sample_every=3 --set train.checkpoint_every=2"
                 " --set train.samples=4",
         .files = {"generator.safetensors", "discriminator.safetensors", "generator_ema.safetensors",
                   "optimizer.safetensors"},
         .loss_keys = {"loss_d", "loss_g", "d_x", "d_g_z1", "d_g_z2"},
         .steps = 6,
         .golden = {"df70f66f5ccfb56c", "366d955fbffe6a58",
                    {"loss_d=1.507144570350647", "loss_g=1.1708681583404541", "d_x=0.62297042501219979",
                     "d_g_z1=0.56950995685378092", "d_g_z2=0.34896374244878081"}}});
}

TEST(EngineGolden, Classifier) {
  check({.name = "golden_cls",
         .config = "configs/mnist_classifier.json",
         .sets = "--set train.steps=6 --set train.batch_size=4 --set data.train_size=20 --set data.test_size=10"
                 " --set train.eval_every=3 --set train.log_every=1",
         .files = {"model.safetensors"},
         .loss_keys = {"loss", "loss_avg"},
         .steps = 6,
         .resumable = false,
         .golden = {"0eb331cf6067d9d2", "5523370edd68610a", {"loss=2.0965759754180908", "loss_avg=2.4380244388294221"}}});
}

}  // namespace
}  // namespace convlab

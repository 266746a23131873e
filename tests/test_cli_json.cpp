// tests/test_cli_json.cpp: the rule "every command takes --json for a machine-readable result", through the
// binary. (1) Every subcommand that `convlab --help` lists has a --json flag (so a new command is caught as
// soon as it is registered). (2) Each command, run with --json on a tiny input, prints exactly one JSON
// object on stdout (nothing else: no progress lines), holding the paths of the files it wrote.
// The tiny runs share one folder: a 2-step segmentation run (with a deformable layer) feeds eval, predict and
// deform-viz; 1-step GAN and classifier runs feed sample and gan-eval. Those read a made-up MNIST folder
// (CONVLAB_MNIST_DIR: 5 random images per digit), so the test needs no download and stays fast.
#include <gtest/gtest.h>

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include <nlohmann/json.hpp>

#include "core/random.h"
#include "data/png.h"
#include "tests/testing.h"

namespace convlab {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

struct CliRun {
  int code;
  std::string out, err;
};

const fs::path& dir() {
  static const fs::path d = [] {
    const fs::path p = fs::temp_directory_path() / ("convlab_json_" + std::to_string(::getpid()));
    fs::create_directories(p);
    return p;
  }();
  return d;
}

CliRun run(const std::string& args) {
  const std::string o = (dir() / "stdout").string(), e = (dir() / "stderr").string();
  const std::string cmd = "cd " + testing::source_path("") + " && CONVLAB_MNIST_DIR=" + (dir() / "mnist").string() +
                          " " + CONVLAB_BINARY + " " + args + " >" + o + " 2>" + e;
  const int status = std::system(cmd.c_str());
  auto slurp = [](const std::string& p) {
    std::ifstream f(p);
    return std::string(std::istreambuf_iterator<char>(f), {});
  };
  return {WEXITSTATUS(status), slurp(o), slurp(e)};
}

// Runs `args` (which must include --json), expects exit 0 and stdout to be one JSON object.
json run_json(const std::string& args) {
  const CliRun r = run(args);
  EXPECT_EQ(r.code, 0) << args << "\nstderr: " << r.err;
  json j;
  try {
    j = json::parse(r.out);
  } catch (const json::parse_error& e) {
    ADD_FAILURE() << args << ": stdout is not one JSON value (" << e.what() << "):\n" << r.out.substr(0, 400);
  }
  EXPECT_TRUE(j.is_object()) << args;
  return j;
}

std::string p(const std::string& name) { return (dir() / name).string(); }

std::vector<std::string> subcommands() {
  const CliRun r = run("--help");
  std::vector<std::string> names;
  std::istringstream is(r.out);
  std::string line;
  bool in_list = false;
  while (std::getline(is, line)) {
    if (line.rfind("Subcommands:", 0) == 0) {
      in_list = true;
      continue;
    }
    if (!in_list || line.size() < 3 || line[0] != ' ') continue;
    std::istringstream ls(line);
    std::string name;
    ls >> name;
    names.push_back(name);
  }
  return names;
}

TEST(CliJson, EverySubcommandTakesJson) {
  const std::vector<std::string> subs = subcommands();
  ASSERT_GE(subs.size(), 12u) << "could not read the subcommand list of convlab --help";
  for (const std::string& s : subs) {
    const CliRun r = run(s + " --help");
    EXPECT_NE(r.out.find("--json"), std::string::npos) << "convlab " << s << " has no --json flag";
  }
}

// One tiny segmentation config with a deformable layer (v2), trained for 2 steps.
const char* kTinySeg = R"({"task": "segmentation", "name": "tiny_seg", "seed": 0,
  "data": {"image_size": 16, "train_size": 16, "val_size": 4},
  "model": {"layers": [
    {"type": "conv2d", "out_channels": 4, "kernel_size": 3, "padding": 1}, {"type": "relu"},
    {"type": "deform_conv2d", "out_channels": 4, "kernel_size": 3, "padding": 1, "modulated": true}, {"type": "relu"},
    {"type": "conv2d", "out_channels": 6, "kernel_size": 1}]},
  "train": {"steps": 2, "batch_size": 2, "val_every": 2, "log_every": 1, "grid_images": 1}})";

class CliJsonRuns : public ::testing::Test {
 protected:
  static void TearDownTestSuite() { fs::remove_all(dir()); }
  static void SetUpTestSuite() {
    std::ofstream(p("tiny_seg.json")) << kTinySeg;
    RgbImage img(16, 16);
    for (size_t i = 0; i < img.rgb.size(); ++i) img.rgb[i] = uint8_t(i * 53 % 256);
    write_png(p("image.png"), img);
    fs::create_directories(dir() / "mnist" / "digits");  // data/mnist.h's format: {"data": [784 values per image]}
    Rng rng(3);
    for (int d = 0; d < 10; ++d) {
      std::vector<float> v(5 * 784);
      for (float& x : v) x = rng.uniform() < 0.2f ? rng.uniform() : 0.f;
      std::ofstream((dir() / "mnist" / "digits" / (std::to_string(d) + ".json")).string()) << json{{"data", v}}.dump();
    }
  }
};

TEST_F(CliJsonRuns, SegmentationTrainEvalPredictDeformViz) {
  const json tr = run_json("train " + p("tiny_seg.json") + " --runs " + p("runs") + " --json");
  EXPECT_EQ(tr["run_dir"], p("runs/tiny_seg"));
  EXPECT_TRUE(tr["final"].contains("miou"));
  // The offset statistics of the deformable layer are in metrics.jsonl (each log and validation line).
  std::ifstream metrics(p("runs/tiny_seg/metrics.jsonl"));
  std::string line;
  int with_deform = 0, lines = 0;
  while (std::getline(metrics, line)) {
    ++lines;
    const json m = json::parse(line);
    if (!m.contains("deform")) continue;
    ++with_deform;
    EXPECT_EQ(m["deform"][0]["mask_histogram"].size(), 5u);
  }
  EXPECT_EQ(with_deform, lines);
  EXPECT_EQ(lines, 3);  // steps 1 and 2, validation at step 2

  const std::string ck = p("runs/tiny_seg/model.safetensors");
  const json ev = run_json("eval " + p("tiny_seg.json") + " --checkpoint " + ck + " --json");
  EXPECT_EQ(ev["checkpoint"], ck);
  const json pr = run_json("predict --checkpoint " + ck + " " + p("image.png") + " -o " + p("mask.png") + " --json");
  EXPECT_EQ(pr["output"], p("mask.png"));
  EXPECT_TRUE(fs::exists(p("mask.png")));
  const json dv = run_json("deform-viz --checkpoint " + ck + " " + p("image.png") + " -o " + p("dv.png") + " --json");
  EXPECT_EQ(dv["output"], p("dv.png"));
  EXPECT_TRUE(fs::exists(p("dv.png")));
}

TEST_F(CliJsonRuns, StudyCommandsAndOp) {
  std::ofstream(p("case.json")) << R"({"op": "conv2d", "padding": 1, "tensors": {
    "input": {"shape": [1, 1, 3, 3], "random": 1}, "weight": {"shape": [1, 1, 3, 3], "random": 2}}})";
  EXPECT_TRUE(run_json("op " + p("case.json") + " --json").contains("grads"));
  EXPECT_EQ(run_json("rf --kernel 3 --dilations 1,2 -o " + p("rf.png") + " --json")["output"], p("rf.png"));
  run_json("size --in 8 --json");
  EXPECT_EQ(run_json("matrix configs/examples/worked_example.case.json -o " + p("C.png") + " --json")["output"], p("C.png"));
  EXPECT_TRUE(fs::exists(p("C.png")));
  run_json("identities --trials 1 --json");
  EXPECT_EQ(run_json("gradcheck --op conv2d --json")["all_pass"], true);
  EXPECT_EQ(run_json("gradcheck " + p("tiny_seg.json") + " --json")["all_pass"], true);
}

TEST_F(CliJsonRuns, GanTrainSampleAndEval) {
  const std::string gan_sets = " --set name=tiny_gan --set train.steps=1 --set train.batch_size=4 --set data.train_size=8"
                               " --set train.samples=4 --set train.log_every=1";
  const json g = run_json("train configs/dcgan_mnist.json --runs " + p("runs") + gan_sets + " --json");
  EXPECT_EQ(g["run_dir"], p("runs/tiny_gan"));
  const std::string gen = p("runs/tiny_gan/generator.safetensors");
  const json s = run_json("sample --checkpoint " + gen + " -n 4 -o " + p("grid.png") + " --json");
  EXPECT_EQ(s["output"], p("grid.png"));
  EXPECT_TRUE(fs::exists(p("grid.png")));
  EXPECT_EQ(run_json("sample --checkpoint " + gen + " --interpolate 1,2 --steps 3 -o " + p("strip.png") + " --json")["steps"], 3);

  const std::string cls_sets = " --set name=tiny_cls --set train.steps=1 --set train.batch_size=4 --set data.train_size=8"
                               " --set data.test_size=8 --set train.eval_every=1 --set train.log_every=1";
  run_json("train configs/mnist_classifier.json --runs " + p("runs") + cls_sets + " --json");
  const json e = run_json("gan-eval --classifier " + p("runs/tiny_cls/model.safetensors") + " --checkpoint " + gen +
                          " -n 8 --json");
  EXPECT_TRUE(e.contains("rows"));
}

}  // namespace
}  // namespace convlab

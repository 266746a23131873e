// tests/test_config.cpp: the config language: extends, --set overrides, repeat/residual blocks, and errors
// that give the JSON path.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "core/error.h"
#include "models/config.h"
#include "tests/testing.h"

namespace convlab {
namespace {

using nlohmann::json;
namespace fs = std::filesystem;

std::string err(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

TEST(Config, ExtendsMergesAndSetOverrides) {
  const fs::path dir = fs::temp_directory_path() / "convlab_config_test";
  fs::create_directories(dir);
  std::ofstream(dir / "base.json") << R"({"name": "base", "train": {"steps": 10, "batch_size": 4},
      "model": {"layers": [{"type": "conv2d", "out_channels": 4, "kernel_size": 3, "dilation": 1}]}})";
  std::ofstream(dir / "child.json") << R"({"extends": "base.json", "name": "child", "train": {"steps": 20}})";
  json j = load_config((dir / "child.json").string(), {"model.layers[0].dilation=5", "train.lr=0.5", "tag=hello"});
  EXPECT_EQ(j["name"], "child");
  EXPECT_EQ(j["train"]["steps"], 20);
  EXPECT_EQ(j["train"]["batch_size"], 4);
  EXPECT_EQ(j["model"]["layers"][0]["dilation"], 5);
  EXPECT_EQ(j["train"]["lr"], 0.5);
  EXPECT_EQ(j["tag"], "hello");
  EXPECT_FALSE(j.contains("extends"));
  EXPECT_EQ(err([&] { apply_set(j, "model.layers[3].dilation=2"); }),
            "--set model.layers[3].dilation: model.layers has no element [3]");
  std::ofstream(dir / "a.json") << R"({"extends": "b.json"})";
  std::ofstream(dir / "b.json") << R"({"extends": "a.json"})";
  EXPECT_NE(err([&] { load_config((dir / "a.json").string()); }).find("cycle"), std::string::npos);
}

TEST(Config, BuildsRepeatAndResidualBlocks) {
  const json layers = json::parse(R"([
    {"type": "conv2d", "out_channels": 8, "kernel_size": 3, "padding": 1},
    {"type": "residual", "layers": [{"type": "conv2d", "out_channels": 8, "kernel_size": 3, "padding": 2, "dilation": 2},
                                    {"type": "batch_norm2d"}, {"type": "relu"}], "repeat": 2},
    {"type": "conv2d", "out_channels": 3, "kernel_size": 1}])");
  Rng rng(0);
  auto m = build_layers(layers, {2, 3, 16, 16}, rng, "model.layers");
  EXPECT_EQ(m->size(), 4u);
  EXPECT_EQ(shape_str(m->output_shape({2, 3, 16, 16})), "[2,3,16,16]");
  const auto names = m->named_parameters();
  EXPECT_EQ(names[2].first, "1.body.0.weight");
  Tensor y = m->forward(testing::random_tensor({2, 3, 16, 16}, 1));
  EXPECT_EQ(shape_str(y.shape()), "[2,3,16,16]");
}

TEST(Config, ErrorsGiveThePath) {
  Rng rng(0);
  auto build = [&](const char* text) { build_layers(json::parse(text), {1, 3, 8, 8}, rng, "model.layers"); };
  EXPECT_EQ(err([&] { build(R"([{"type": "conv2d", "out_channels": 4, "kernel_size": 3, "dilation": 0}])"); }),
            "model.layers[0].dilation: expected a positive integer, got 0");
  EXPECT_EQ(err([&] { build(R"([{"type": "conv2", "out_channels": 4}])"); }),
            "model.layers[0].type: unknown layer type 'conv2' (did you mean 'conv2d'?)");
  EXPECT_EQ(err([&] { build(R"([{"type": "relu", "inplace": true}])"); }), "model.layers[0].inplace: unknown key");
  EXPECT_EQ(err([&] { build(R"([{"type": "conv2d", "out_channels": 4, "kernel_size": 9}])"); }),
            "model.layers[0] (conv2d): conv2d: kernel 9x9 (dilated) is larger than the padded input 8x8 (input "
            "[1,3,8,8], weight [4,3,9,9])");
  EXPECT_NE(err([&] { build(R"([{"type": "residual", "layers": [{"type": "conv2d", "out_channels": 4, "kernel_size": 1}]}])"); })
                .find("model.layers[0]: residual: body maps [1,3,8,8] to [1,4,8,8]"),
            std::string::npos);
}

}  // namespace
}  // namespace convlab

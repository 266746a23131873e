// tests/test_torch_interop.cpp: checkpoints both ways with PyTorch, and a checkpoint's network checked on load.
// tests/data/torch_tiny/ was written by PyTorch 1.13 (`/usr/bin/python3 tools/torch_model.py fixture --out
// tests/data/torch_tiny`): a config using every image layer type of the registry, the torch model's plain
// state dict (no convlab metadata; num_batches_tracked as I64 []), an input PNG and torch's logits for it.
// The test needs no torch: convlab rebuilds the network from the config, loads the state dict and must
// reproduce the logits. Then: predict on files and folders, and configs that differ from the checkpoint's.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "data/files.h"
#include "data/picture.h"
#include "data/png.h"
#include "data/safetensors.h"
#include "models/config.h"
#include "models/seg_predict.h"
#include "models/seg_task.h"
#include "tests/testing.h"

namespace convlab {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using testing::run_cli;
using testing::source_path;

const std::string kDir = "tests/data/torch_tiny/";

using testing::error_of;

TEST(TorchInterop, PlainPyTorchStateDictReproducesTorchLogits) {
  const std::string ckpt = source_path(kDir + "model.safetensors"), cfg = source_path(kDir + "config.json");
  const safetensors::File raw = safetensors::load(ckpt);
  EXPECT_TRUE(raw.metadata.empty()) << "the fixture is a plain PyTorch state dict";
  ASSERT_NE(raw.find("1.num_batches_tracked"), nullptr);
  EXPECT_EQ(raw.find("1.num_batches_tracked")->shape(), Shape{});
  EXPECT_EQ(raw.find("1.num_batches_tracked")->to_vector(), std::vector<float>{3.f});  // 3 train-mode batches

  LoadedSegModel m = load_seg_checkpoint(ckpt, cfg, {}, "test", /*with_data=*/false);
  EXPECT_EQ(m.config_source, cfg);
  const RgbImage img = to_rgb(read_image(source_path(kDir + "input.png")));
  const SegPrediction p = predict_image(*m.task.model, img, "input.png");
  const Tensor want = *safetensors::load(source_path(kDir + "expected_logits.safetensors")).find("logits");
  ASSERT_EQ(want.shape(), (Shape{1, p.classes, p.H, p.W}));
  // Probabilities from torch's logits (softmax in double) against convlab's.
  const int64_t HW = p.H * p.W;
  double worst = 0;
  for (int64_t i = 0; i < HW; ++i) {
    double sum = 0;
    for (int64_t c = 0; c < p.classes; ++c) sum += std::exp(double(want.data()[c * HW + i]));
    for (int64_t c = 0; c < p.classes; ++c)
      worst = std::max(worst, std::abs(std::exp(double(want.data()[c * HW + i])) / sum - p.probabilities[c * HW + i]));
  }
  EXPECT_LT(worst, 2e-5) << "max |p_convlab - p_torch|";

  // Written back by convlab, the counter is I64 [] again: the file loads into torch as it is.
  const std::string back = testing::temp_dir("torch_interop") + "/back.safetensors";
  safetensors::save(back, m.task.model->state_dict());
  const std::string bytes = read_file_bytes(back);
  EXPECT_NE(bytes.find(R"("1.num_batches_tracked":{"dtype":"I64","shape":[])"), std::string::npos);

  EXPECT_NE(error_of([&] { load_seg_checkpoint(ckpt, "", {}, "predict", false); })
                .find("predict: checkpoint " + ckpt + " holds no config in its metadata"),
            std::string::npos);
}

TEST(TorchInterop, NetworkDifferenceIgnoresSpellingAndNamesTheFirstChange) {
  const json base = json::parse(R"({"model": {"layers": [
      {"type": "conv2d", "out_channels": 4, "kernel_size": 3, "padding": 1},
      {"type": "batch_norm2d"}, {"type": "relu"},
      {"type": "conv2d", "out_channels": 6, "kernel_size": 3, "padding": 2, "dilation": 2}]}})");
  const auto record = [](const json& c) { return make_seg_task(c, false).layer_record; };
  json spelled = base;
  spelled["model"]["layers"][0] = {{"type", "conv2d"}, {"out_channels", 4}, {"kernel_size", {3, 3}}, {"padding", 1},
                                   {"stride", 1},      {"dilation", 1},     {"groups", 1},           {"bias", true}};
  spelled["model"]["layers"][1]["momentum"] = 0.3;  // training only
  EXPECT_EQ(network_difference(record(base), record(spelled)), "");
  json dil = base;
  dil["model"]["layers"][3]["dilation"] = 5;
  dil["model"]["layers"][3]["padding"] = 5;
  EXPECT_EQ(network_difference(record(base), record(dil)), "model.layers[3].dilation: checkpoint has 2, config has 5");
  json type = base;
  type["model"]["layers"][2]["type"] = "tanh";
  EXPECT_EQ(network_difference(record(base), record(type)), "model.layers[2].type: checkpoint has relu, config has tanh");
  json eps = base;
  eps["model"]["layers"][1]["eps"] = 1e-3;
  EXPECT_EQ(network_difference(record(base), record(eps)).rfind("model.layers[1].eps: checkpoint has 1e-05", 0), 0u);
  json longer = base;
  longer["model"]["layers"].push_back({{"type", "relu"}});
  EXPECT_EQ(network_difference(record(base), record(longer)),
            "model.layers[4]: checkpoint has 4 layers, config has 5 (config continues with relu)");
}

// The motivating case: hdc_seg's weights fit gridding_seg's network (same shapes), and eval used to report
// 26% instead of 77% without a word.
TEST(TorchInterop, ConfigThatBuildsAnotherNetworkIsRefused) {
  const std::string dir = testing::temp_dir("refuse");
  const json hdc = load_config(source_path("configs/hdc_seg.json"));
  const SegTask t = make_seg_task(hdc, false);
  const std::string ckpt = dir + "/model.safetensors";
  safetensors::save(ckpt, t.model->state_dict(), {{"format", "convlab-segmentation"}, {"config", hdc.dump()}});
  for (const std::string cmd : {"eval", "erf", "predict"}) {
    const std::string args = cmd == "predict" ? "predict --config " + source_path("configs/gridding_seg.json") +
                                                    " --checkpoint " + ckpt + " " + source_path(kDir + "input.png") +
                                                    " -o " + dir + "/m.png"
                                              : cmd + " " + source_path("configs/gridding_seg.json") + " --checkpoint " + ckpt;
    const testing::CliRun r = run_cli(args);
    EXPECT_EQ(r.code, 2) << args;
    EXPECT_EQ(r.err.rfind("convlab: " + cmd + ": model.layers[3].dilation: checkpoint has 1, config has 2", 0), 0u) << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  }
  EXPECT_FALSE(fs::exists(dir + "/m.png"));
  // The same network spelled through --set on the stored config is accepted; a model --set that changes it is not.
  const testing::CliRun viz = run_cli("deform-viz --checkpoint " + ckpt + " " + source_path(kDir + "input.png") +
                                      " --set model.layers[3].dilation=2 --set model.layers[3].padding=2");
  EXPECT_EQ(viz.code, 2);
  EXPECT_NE(viz.err.find("deform-viz: model.layers[3].dilation: checkpoint has 1, config has 2"), std::string::npos) << viz.err;
}

TEST(TorchInterop, PredictFilesFoldersProbabilitiesAndWarnings) {
  const std::string dir = testing::temp_dir("predict"), in = dir + "/in";
  fs::create_directories(in);
  const std::string png = source_path(kDir + "input.png");
  fs::copy_file(png, in + "/a.png");
  fs::copy_file(png, in + "/b.png");
  const RgbImage big(20, 24, 100);  // not the training size (16x16): predicted, with a warning
  write_png(in + "/c.png", big);
  std::ofstream(in + "/notes.txt") << "not an image";
  const std::string base = "predict --config " + source_path(kDir + "config.json") + " --checkpoint " +
                           source_path(kDir + "model.safetensors");

  // One image: mask.png, mask_classes.png, mask_probabilities.safetensors.
  testing::CliRun r = run_cli(base + " " + png + " -o " + dir + "/one/mask.png --probabilities --json");
  ASSERT_EQ(r.code, 0) << r.err;
  const json j = json::parse(r.out);
  EXPECT_EQ(j["output"], dir + "/one/mask.png");
  const PngImage classes = read_png(dir + "/one/mask_classes.png");
  EXPECT_EQ(classes.channels, 1);
  const safetensors::File probs = safetensors::load(dir + "/one/mask_probabilities.safetensors");
  const Tensor& pt = *probs.find("probabilities");
  ASSERT_EQ(pt.shape(), (Shape{4, 16, 16}));
  EXPECT_EQ(probs.metadata.at("image"), png);
  for (int64_t i = 0; i < 256; ++i) {
    int best = 0;
    float sum = 0;
    for (int c = 0; c < 4; ++c) {
      sum += pt.data()[c * 256 + i];
      if (pt.data()[c * 256 + i] > pt.data()[best * 256 + i]) best = c;
    }
    EXPECT_NEAR(sum, 1.f, 1e-5);
    EXPECT_EQ(classes.pixels[i], best) << "pixel " << i;
  }
  const RgbImage colour = to_rgb(read_png(dir + "/one/mask.png"));
  EXPECT_TRUE(std::equal(colour.at(0, 0), colour.at(0, 0) + 3, palette_colour(classes.pixels[0]).begin()));
  // Under the map, its legend: the fixture network has 4 classes, not the shapes set's 6 names: "class 0" .. "class 3".
  const RgbImage strip = legend_strip(class_legend(default_class_names(4)), 16, 1);
  EXPECT_EQ(colour.H, 16 + strip.H);
  EXPECT_EQ(colour.W, strip.W);
  for (int64_t y = 0; y < strip.H; ++y)
    for (int64_t x = 0; x < strip.W; ++x)
      ASSERT_TRUE(std::equal(colour.at(16 + y, x), colour.at(16 + y, x) + 3, strip.at(y, x))) << y << "," << x;
  r = run_cli(base + " " + png + " -o " + dir + "/bare/mask.png --no-legend");
  ASSERT_EQ(r.code, 0) << r.err;
  const RgbImage bare = to_rgb(read_png(dir + "/bare/mask.png"));
  EXPECT_EQ(bare.W, 16);
  EXPECT_EQ(bare.H, 16);
  for (int64_t y = 0; y < 16; ++y)
    for (int64_t x = 0; x < 16; ++x) ASSERT_TRUE(std::equal(bare.at(y, x), bare.at(y, x) + 3, colour.at(y, x)));

  // The fixture's net ends in a fixed-size upsample: another size is refused, naming the file.
  r = run_cli(base + " " + in + "/c.png -o " + dir + "/c.png");
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("the network maps " + in + "/c.png (20x24) to [1,4,16,16]"), std::string::npos) << r.err;

  // A folder, through a fully convolutional net (stored config, trained at 16x16): every .png in it, into the
  // output folder; a size warning for c.png only.
  const json fcn = json::parse(R"({"data": {"image_size": 16}, "model": {"layers": [
      {"type": "conv2d", "out_channels": 4, "kernel_size": 3, "padding": 1}]}})");
  const std::string fcn_ckpt = dir + "/fcn.safetensors";
  safetensors::save(fcn_ckpt, make_seg_task(fcn, false).model->state_dict(), {{"config", fcn.dump()}});
  r = run_cli("predict --checkpoint " + fcn_ckpt + " " + in + " -o " + dir + "/out");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("wrote 3 masks to " + dir + "/out"), std::string::npos) << r.out;
  for (const char* f : {"a.png", "a_classes.png", "b.png", "b_classes.png", "c.png", "c_classes.png"})
    EXPECT_TRUE(fs::exists(dir + "/out/" + f)) << f;
  EXPECT_FALSE(fs::exists(dir + "/out/a_probabilities.safetensors"));
  EXPECT_EQ(read_png(dir + "/out/c_classes.png").W, 20);
  EXPECT_NE(r.err.find("warning: predict: " + in + "/c.png is 20x24, the network was trained on 16x16"), std::string::npos)
      << r.err;
  EXPECT_EQ(r.err.find("a.png"), std::string::npos) << r.err;

  // JPEG images are read too (libjpeg-turbo).
  r = run_cli("predict --checkpoint " + fcn_ckpt + " " + source_path("tests/data/jpeg/gradient.jpg") + " -o " + dir +
              "/jpeg.png --json");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(json::parse(r.out)["images"][0]["width"], 24);
  EXPECT_TRUE(fs::exists(dir + "/jpeg_classes.png"));

  // Refused before anything is written: one file for several images, the same stem twice, overwriting an input.
  const std::vector<std::pair<std::string, std::string>> bad = {
      {in + " -o " + dir + "/x.png", "names one file, but 3 images need an output folder"},
      {in + " " + in + "/a.png -o " + dir + "/dup", "would both write"},
      {in + "/notes.txt -o " + dir + "/y.png", "notes.txt"},
      {in + " -o " + in, "would overwrite an input image"},
      {dir + "/absent.png", "is neither an image file nor a folder"},
  };
  for (const auto& [args, want] : bad) {
    r = run_cli(base + " " + args);
    EXPECT_EQ(r.code, 2) << args;
    EXPECT_NE(r.err.find(want), std::string::npos) << args << ": " << r.err;
  }
  EXPECT_FALSE(fs::exists(dir + "/x.png"));
  EXPECT_FALSE(fs::exists(dir + "/dup"));
  EXPECT_FALSE(fs::exists(dir + "/y.png"));
}

}  // namespace
}  // namespace convlab

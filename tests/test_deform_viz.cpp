// tests/test_deform_viz.cpp: sampling points and offset statistics of DeformConv2d (models/study/deform_viz.h) and
// `convlab deform-viz` through the binary: zero offsets give exactly the regular dilated grid; an offset put in
// the predictor's bias moves every point by exactly that offset; the padding share and mask histogram on hand
// cases; the image mapping through a stride-2 layer; the training hook; one-line errors.
#include <gtest/gtest.h>

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>

#include "core/error.h"
#include "data/png.h"
#include "data/safetensors.h"
#include "models/config.h"
#include "models/seg_task.h"
#include "tests/testing.h"
#include "models/study/deform_viz.h"

namespace convlab {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

// A small segmentation net: conv, relu, deformable (v2 when modulated), relu, 1x1 head; `stride2` adds a
// stride-2 stem and an x2 upsample at the end, so the deformable layer sees a half-size map.
json small_config(bool modulated, bool stride2 = false) {
  json layers = json::array();
  layers.push_back({{"type", "conv2d"}, {"out_channels", 4}, {"kernel_size", 3}, {"padding", 1}, {"stride", stride2 ? 2 : 1}});
  layers.push_back({{"type", "relu"}});
  layers.push_back({{"type", "deform_conv2d"}, {"out_channels", 4}, {"kernel_size", 3}, {"padding", 2},
                    {"dilation", 2}, {"modulated", modulated}});
  layers.push_back({{"type", "relu"}});
  if (stride2) layers.push_back({{"type", "upsample"}, {"scale_factor", 2}});
  layers.push_back({{"type", "conv2d"}, {"out_channels", 6}, {"kernel_size", 1}});
  return {{"task", "segmentation"}, {"name", "dv_test"}, {"data", {{"image_size", 16}}}, {"model", {{"layers", layers}}}};
}

DeformConv2d& deform_at(SegTask& t, size_t i) { return dynamic_cast<DeformConv2d&>(*t.model->at(i)); }

Tensor offset_bias(DeformConv2d& d) {
  for (auto& [n, p] : d.named_parameters())
    if (n == "offset.bias") return p;
  return Tensor();
}

TEST(DeformViz, ZeroOffsetsGiveTheRegularDilatedGridExactly) {
  SegTask t = make_seg_task(small_config(true), false);
  NoGradGuard ng;
  t.model->eval();
  t.model->forward(testing::random_tensor({1, 3, 16, 16}, 1, 0.f, 1.f));
  DeformConv2d& d = deform_at(t, 2);
  const DeformGeometry g = deform_geometry(d, {1, 4, 16, 16});
  EXPECT_EQ(g.H_out, 16);
  EXPECT_TRUE(g.modulated);
  for (int64_t oh : {0, 7, 15})
    for (int64_t ow : {0, 3, 15}) {
      const auto pts = deform_sample_points(g, d.last_offset(), d.last_mask(), 0, oh, ow);
      ASSERT_EQ(pts.size(), 9u);
      for (const SamplePoint& s : pts) {
        const double y = double(oh - 2 + s.tap / 3 * 2), x = double(ow - 2 + s.tap % 3 * 2);
        EXPECT_EQ(s.y, y);
        EXPECT_EQ(s.x, x);
        EXPECT_EQ(s.regular_y, y);
        EXPECT_EQ(s.regular_x, x);
        EXPECT_EQ(s.mask, 0.5);  // sigmoid(0)
      }
    }
  const DeformStats st = deform_stats(g, d.last_offset(), d.last_mask());
  EXPECT_EQ(st.mean_abs_offset, 0.0);
  EXPECT_EQ(st.outside_share, st.regular_outside_share);
  EXPECT_EQ(st.mask_histogram, (std::vector<double>{0, 0, 1, 0, 0}));  // 0.5 falls in [0.4, 0.6)
}

TEST(DeformViz, BiasOffsetMovesEveryPointByExactlyThatOffset) {
  SegTask t = make_seg_task(small_config(false), false);
  DeformConv2d& d = deform_at(t, 2);
  Tensor b = offset_bias(d);
  ASSERT_EQ(b.numel(), 18);
  for (int64_t k = 0; k < 18; ++k) b.data()[k] = 0.25f * float(k % 7) - 0.75f;  // (dy, dx) of tap k/2
  NoGradGuard ng;
  t.model->eval();
  t.model->forward(testing::random_tensor({1, 3, 16, 16}, 2, 0.f, 1.f));
  const DeformGeometry g = deform_geometry(d, {1, 4, 16, 16});
  for (int64_t oh : {0, 9})
    for (int64_t ow : {4, 15})
      for (const SamplePoint& s : deform_sample_points(g, d.last_offset(), d.last_mask(), 0, oh, ow)) {
        EXPECT_EQ(s.y - s.regular_y, double(b.data()[2 * s.tap])) << "tap " << s.tap;
        EXPECT_EQ(s.x - s.regular_x, double(b.data()[2 * s.tap + 1])) << "tap " << s.tap;
        EXPECT_EQ(s.mask, 1.0);  // v1
      }
}

TEST(DeformViz, PaddingShareAndMaskHistogramOnHandCases) {
  // 1x1 kernel on 4x4: a point reads zero padding exactly when y < 0, y > 3, x < 0 or x > 3.
  DeformGeometry g;
  g.H = g.W = g.H_out = g.W_out = 4;
  g.kernel = {1, 1}, g.modulated = true;
  Tensor off = Tensor::zeros({1, 2, 4, 4}), mask = Tensor::full({1, 1, 4, 4}, 0.9f);
  auto dy = [&](int64_t y, int64_t x) -> float& { return off.data()[y * 4 + x]; };
  auto dx = [&](int64_t y, int64_t x) -> float& { return off.data()[16 + y * 4 + x]; };
  dy(0, 0) = -0.5f;   // y = -0.5: reads row -1 with weight 0.5
  dx(3, 3) = 0.25f;   // x = 3.25: reads column 4
  dy(1, 1) = 1.875f;  // y = 2.875: inside
  dy(2, 2) = 1.0f;    // y = 3 exactly: row 4 has weight 0, inside
  dx(0, 3) = -3.0f;   // x = 0 exactly: inside
  mask.data()[0] = 0.1f, mask.data()[1] = 0.2f, mask.data()[2] = 1.0f, mask.data()[3] = 0.59f;
  const DeformStats s = deform_stats(g, off, mask);
  EXPECT_EQ(s.points, 16);
  EXPECT_DOUBLE_EQ(s.outside_share, 2.0 / 16);
  EXPECT_EQ(s.regular_outside_share, 0.0);
  EXPECT_DOUBLE_EQ(s.mean_abs_offset, (0.5 + 0.25 + 1.875 + 1.0 + 3.0) / 16);
  EXPECT_DOUBLE_EQ(s.max_abs_offset, 3.0);
  EXPECT_EQ(s.mask_histogram, (std::vector<double>{1.0 / 16, 1.0 / 16, 1.0 / 16, 0, 13.0 / 16}));

  // 3x3 kernel, padding 1, on 2x2: every output pixel has 4 taps inside and 5 in the padding.
  DeformGeometry p;
  p.H = p.W = p.H_out = p.W_out = 2;
  p.padding = {1, 1};
  const DeformStats r = deform_stats(p, Tensor::zeros({1, 18, 2, 2}), Tensor());
  EXPECT_DOUBLE_EQ(r.outside_share, 20.0 / 36);
  EXPECT_DOUBLE_EQ(r.regular_outside_share, 20.0 / 36);
  EXPECT_TRUE(r.mask_histogram.empty());
  // Shifting every point by +0.5 px: coordinates become -0.5, 0.5, 1.5 (row 0) or 0.5, 1.5, 2.5 (row 1);
  // only 0.5 lies in [0, H-1] = [0, 1], so one tap of the nine stays inside on each axis pair.
  Tensor half = Tensor::full({1, 18, 2, 2}, 0.5f);
  EXPECT_DOUBLE_EQ(deform_stats(p, half, Tensor()).outside_share, 32.0 / 36);
  EXPECT_THROW(deform_stats(p, Tensor::zeros({1, 16, 2, 2}), Tensor()), Error);
}

TEST(DeformViz, TrainingHookLogsEveryDeformableLayer) {
  SegTask t = make_seg_task(small_config(true, true), false);
  json rec = {{"step", 1}};
  EXPECT_EQ(log_deform_stats(*t.model, {2, 3, 16, 16}, rec), "");  // no forward yet
  EXPECT_FALSE(rec.contains("deform"));
  t.model->forward(testing::random_tensor({2, 3, 16, 16}, 3, 0.f, 1.f));
  const std::string line = log_deform_stats(*t.model, {2, 3, 16, 16}, rec);
  ASSERT_TRUE(rec.contains("deform")) << rec.dump();
  ASSERT_EQ(rec["deform"].size(), 1u);
  const json& d = rec["deform"][0];
  EXPECT_EQ(d["layer"], "2");
  EXPECT_EQ(d["points"], 2 * 9 * 8 * 8);  // the stride-2 stem halves the map
  EXPECT_EQ(d["mean_abs_offset"], 0.0);
  EXPECT_EQ(d["mask_histogram"].size(), 5u);
  EXPECT_NE(line.find("[2] |offset| 0.000 px"), std::string::npos) << line;
  EXPECT_TRUE(find_deform_layers(*make_seg_task(json::parse(R"({"name": "x", "model": {"layers": [
      {"type": "conv2d", "out_channels": 6, "kernel_size": 1}]}})"), false).model, {1, 3, 16, 16}).empty());
}

// ---- through the binary ----
struct CliRun {
  int code;
  std::string out, err;
};

fs::path tmp_dir() {
  const fs::path d = fs::temp_directory_path() / ("convlab_dv_" + std::to_string(::getpid()));
  fs::create_directories(d);
  return d;
}

CliRun run(const std::string& args) {
  const std::string o = (tmp_dir() / "out").string(), e = (tmp_dir() / "err").string();
  const int status = std::system((std::string(CONVLAB_BINARY) + " " + args + " >" + o + " 2>" + e).c_str());
  auto slurp = [](const std::string& p) {
    std::ifstream f(p);
    return std::string(std::istreambuf_iterator<char>(f), {});
  };
  return {WEXITSTATUS(status), slurp(o), slurp(e)};
}

// A checkpoint as `convlab train` writes it (state dict + config metadata), with a bias offset, and a PNG.
struct Fixture {
  std::string checkpoint, image, config_file;
  Fixture(bool stride2) {
    const json cfg = small_config(true, stride2);
    SegTask t = make_seg_task(cfg, false);
    Tensor b = offset_bias(deform_at(t, 2));
    for (int64_t k = 0; k < b.numel(); ++k) b.data()[k] = k % 2 ? 0.5f : -0.25f;  // (dy, dx) = (-0.25, 0.5)
    const std::string tag = stride2 ? "s2" : "s1";
    checkpoint = (tmp_dir() / ("model_" + tag + ".safetensors")).string();
    safetensors::save(checkpoint, t.model->state_dict(), {{"format", "convlab-segmentation"}, {"config", cfg.dump()}});
    config_file = (tmp_dir() / ("config_" + tag + ".json")).string();
    std::ofstream(config_file) << cfg.dump();
    RgbImage img(16, 16);
    for (size_t i = 0; i < img.rgb.size(); ++i) img.rgb[i] = uint8_t(i * 37 % 251);
    image = (tmp_dir() / "image.png").string();
    write_png(image, img);
  }
};

class DeformVizCli : public ::testing::Test {
 protected:
  static void TearDownTestSuite() { fs::remove_all(tmp_dir()); }
};

TEST_F(DeformVizCli, CommandJsonTextAndPicture) {
  const Fixture f(true);
  const std::string png = (tmp_dir() / "viz.png").string();
  fs::remove(png);
  CliRun r = run("deform-viz --checkpoint " + f.checkpoint + " " + f.image + " -o " + png + " --json");
  ASSERT_EQ(r.code, 0) << r.err;
  const json j = json::parse(r.out);
  EXPECT_EQ(j["layer"], "2");
  EXPECT_EQ(j["output_size"], json({8, 8}));
  EXPECT_EQ(j["image_map"]["jump"], json({2.0, 2.0}));  // behind the stride-2 stem
  EXPECT_EQ(j["image_map"]["start"], json({0.0, 0.0}));
  ASSERT_EQ(j["pixels"].size(), 9u);  // the default 3x3 grid
  EXPECT_EQ(j["pixels"][0]["pixel"], json({2, 2}));
  for (const json& p : j["pixels"][4]["points"]) {
    EXPECT_EQ(p["offset"], json({-0.25, 0.5}));
    EXPECT_EQ(p["image_sampled"][0].get<double>(), 2 * p["sampled"][0].get<double>());
    EXPECT_EQ(p["image_sampled"][1].get<double>(), 2 * (p["regular"][1].get<double>() + 0.5));
  }
  EXPECT_NEAR(j["pixels"][4]["mean_abs_offset"].get<double>(), std::hypot(0.25, 0.5), 1e-12);
  EXPECT_EQ(j["output"], png);
  EXPECT_GT(read_png(png).W, 16 * 16);  // upscaled, with a margin for points outside the image

  r = run("deform-viz --checkpoint " + f.checkpoint + " " + f.image + " --layer 2 --pixel 0,0 --pixel 7,3");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("output pixel (0,0)"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("output pixel (7,3)"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("padding"), std::string::npos) << r.out;  // pixel (0,0)'s top-left taps
}

TEST_F(DeformVizCli, UserErrorsAreOneLine) {
  const Fixture f(false);
  const std::string base = "deform-viz --checkpoint " + f.checkpoint + " ";
  const std::vector<std::pair<std::string, std::string>> bad = {
      {base + f.image + " --config " + testing::source_path("configs/hdc_seg.json"), "does not build the network"},
      {base + f.image + " --layer 0", "--layer 0 is a conv2d, not a deform_conv2d (deformable layers: 2)"},
      {base + f.image + " --layer 9", "--layer 9 is not a layer of the model"},
      {base + (tmp_dir() / "missing.png").string(), "missing.png"},
      {base + f.image + " --pixel 3", "--pixel expects y,x"},
      {base + f.image + " --pixel 16,0", "outside the layer's 16x16 output"},
      {"deform-viz --checkpoint " + (tmp_dir() / "none.safetensors").string() + " " + f.image, "none.safetensors"},
  };
  for (const auto& [args, fragment] : bad) {
    const CliRun r = run(args);
    EXPECT_EQ(r.code, 2) << args;
    EXPECT_TRUE(r.out.empty()) << args;
    EXPECT_NE(r.err.find(fragment), std::string::npos) << args << "\nstderr: " << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  }
  // A JPEG image is read too (libjpeg-turbo).
  const CliRun jpeg = run(base + testing::source_path("tests/data/jpeg/gradient.jpg") + " --pixel 3,3");
  EXPECT_EQ(jpeg.code, 0) << jpeg.err;
  // The same config given explicitly is fine.
  EXPECT_EQ(run(base + f.image + " --config " + f.config_file).code, 0);
}

}  // namespace
}  // namespace convlab

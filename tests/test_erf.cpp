// tests/test_erf.cpp: the effective receptive field (models/erf.h) and `convlab erf`.
// The gridding stack's holes must be EXACT zeros of the gradient and coincide with the coverage map's holes
// (receptive_field.h); HDC has none; a single conv's ERF is its kernel box; results are deterministic
// (seed, thread count); user errors are one line (convlab::Error in the library, exit 2 in the binary).
#include <gtest/gtest.h>

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "core/error.h"
#include "core/threads.h"
#include "data/safetensors.h"
#include "models/config.h"
#include "models/erf.h"
#include "models/seg_task.h"
#include "tests/testing.h"
#include "models/study/study.h"

namespace convlab {
namespace {

using nlohmann::json;
namespace fs = std::filesystem;

// {"model": {"layers": [...]}}: a 3x3 conv + BN + ReLU per dilation, 8 channels, optional dilation-1 stem.
json conv_stack(const std::vector<int64_t>& dilations, bool stem = false) {
  json layers = json::array();
  auto add = [&](int64_t d) {
    layers.push_back({{"type", "conv2d"}, {"out_channels", 8}, {"kernel_size", 3}, {"padding", d}, {"dilation", d}, {"bias", false}});
    layers.push_back({{"type", "batch_norm2d"}});
    layers.push_back({{"type", "relu"}});
  };
  if (stem) add(1);
  for (int64_t d : dilations) add(d);
  return {{"model", {{"layers", layers}}}};
}

struct Built {
  json config;
  std::shared_ptr<Sequential> model;
  Shape in;
};

Built build(const json& config, int64_t size = 24, int64_t batch = 4, uint64_t seed = 1) {
  Rng rng(seed);
  Shape in{batch, 3, size, size};
  return {config, build_layers(config["model"]["layers"], in, rng, "model.layers"), in};
}

ErfResult erf_of(Built& b, ErfOptions o) {
  o.config = b.config;
  return compute_erf(*b.model, b.in, o);
}

TEST(Erf, GriddingHolesAreExactZerosAndMatchTheCoverageMap) {
  Built b = build(conv_stack({2, 2, 2}));
  b.model->train();  // the guard must switch BN to eval (and back)
  const ErfResult r = erf_of(b, {.samples = 8});
  EXPECT_TRUE(b.model->training());
  ASSERT_EQ(r.map.shape(), (Shape{24, 24}));
  EXPECT_EQ(r.pixel, (std::array<int64_t, 2>{12, 12}));
  EXPECT_TRUE(r.box_theoretical);
  EXPECT_EQ(r.box, (std::array<int64_t, 4>{6, 6, 13, 13}));  // rf 13 around (12, 12)
  int64_t holes = 0, lattice = 0;
  for (int64_t y = 0; y < 24; ++y)
    for (int64_t x = 0; x < 24; ++x) {
      const float v = r.map.at({y, x});
      const int64_t dy = y - 12, dx = x - 12;
      const bool inside = std::abs(dy) <= 6 && std::abs(dx) <= 6;
      if (!inside) {
        EXPECT_EQ(v, 0.f) << "outside the rf at " << y << "," << x;
      } else if (dy % 2 != 0 || dx % 2 != 0) {
        EXPECT_EQ(v, 0.f) << "hole (odd offset) at " << y << "," << x;
        ++holes;
      } else {
        EXPECT_GT(v, 0.f) << "lattice pixel at " << y << "," << x;
        ++lattice;
      }
    }
  EXPECT_EQ(lattice, 49);
  EXPECT_EQ(r.zero_pixels, holes);
  EXPECT_EQ(r.rf_pixels, 169);
  // The zero set equals the coverage map's holes, pixel by pixel.
  const RfAnalysis a = analyse_stack(rf_model(b.config).layers, {.input_size = Pair{24, 24}, .pixel = Pair{12, 12}});
  EXPECT_EQ(a.holes, holes);
  EXPECT_EQ(r.coverage_holes, holes);
  EXPECT_EQ(r.hole_mismatches, 0);
  for (int64_t y = 0; y < a.coverage.H; ++y)
    for (int64_t x = 0; x < a.coverage.W; ++x)
      EXPECT_EQ(a.coverage.at(y, x) == 0, r.map.at({a.coverage.y0 + y, a.coverage.x0 + x}) == 0.f) << y << "," << x;
  double sum = 0;
  for (float v : r.map.to_vector()) sum += v;
  EXPECT_NEAR(sum, 1.0, 1e-5);
  // The picture: cropped to the box, holes red, lattice pixels from the blue..yellow ramp.
  const RgbImage img = erf_image(r, 2, 0);
  ASSERT_EQ(img.W, 26);
  ASSERT_EQ(img.H, 26);
  EXPECT_EQ(std::vector<uint8_t>(img.at(2, 0), img.at(2, 0) + 3), (std::vector<uint8_t>{230, 30, 30}));  // (7, 6): hole
  EXPECT_NE(img.at(0, 0)[0], 230);  // (6, 6): lattice
  EXPECT_EQ(erf_image(r, 1).W, 24);
}

TEST(Erf, StemFillsTheHolesAtTheInputButNotAtTheStackInput) {
  Built b = build(conv_stack({2, 2, 2}, /*stem=*/true));
  const ErfResult at_input = erf_of(b, {.samples = 4});
  EXPECT_EQ(at_input.zero_pixels, 0);
  EXPECT_EQ(at_input.rf_pixels, 15 * 15);
  EXPECT_EQ(at_input.hole_mismatches, 0);
  const ErfResult after_stem = erf_of(b, {.samples = 4, .from_layer = 3});
  EXPECT_EQ(after_stem.measured_at, (Shape{4, 8, 24, 24}));
  EXPECT_EQ(after_stem.rf_pixels, 13 * 13);
  EXPECT_EQ(after_stem.zero_pixels, 169 - 49);
  EXPECT_EQ(after_stem.hole_mismatches, 0);
  EXPECT_EQ(after_stem.measured_path, "model.layers[3] input");
}

TEST(Erf, HdcHasNoHoles) {
  Built b = build(conv_stack({1, 2, 5}), 32);
  const ErfResult r = erf_of(b, {.samples = 8});
  EXPECT_EQ(r.rf, (std::array<double, 2>{17, 17}));
  EXPECT_EQ(r.rf_pixels, 17 * 17);
  EXPECT_EQ(r.zero_pixels, 0);
  EXPECT_EQ(r.coverage_holes, 0);
  EXPECT_EQ(r.support_pixels, 17 * 17);
}

TEST(Erf, SingleConvSupportIsItsKernelBox) {
  const json cfg = {{"model", {{"layers", {{{"type", "conv2d"}, {"out_channels", 4}, {"kernel_size", 3}, {"padding", 1}}}}}}};
  for (const bool with_config : {true, false}) {
    Built b = build(cfg, 9, 2);
    ErfOptions o{.samples = 3, .pixel = {4, 5}};
    if (with_config) o.config = cfg;
    const ErfResult r = compute_erf(*b.model, b.in, o);
    EXPECT_EQ(r.support_pixels, 9);
    for (int64_t y = 0; y < 9; ++y)
      for (int64_t x = 0; x < 9; ++x)
        EXPECT_EQ(r.map.at({y, x}) != 0.f, std::abs(y - 4) <= 1 && std::abs(x - 5) <= 1) << y << "," << x;
    EXPECT_EQ(r.box, (std::array<int64_t, 4>{3, 4, 3, 3}));
    EXPECT_EQ(r.box_theoretical, with_config);
    EXPECT_EQ(r.zero_pixels, 0);
    EXPECT_LE(r.r50, r.r95);
    EXPECT_LE(r.r95, r.rf_radius());
    EXPECT_EQ(r.rf_radius(), 1.0);
  }
}

TEST(Erf, RadiiGrowWithDepthAndStayInsideTheRf) {
  Built b = build(conv_stack({1, 1, 1, 1, 1, 1}), 32);
  const ErfResult deep = erf_of(b, {.samples = 4});
  const ErfResult shallow = erf_of(b, {.samples = 4, .from_layer = 12});  // last two convs
  EXPECT_LE(deep.r50, deep.r95);
  EXPECT_LE(deep.r95, deep.rf_radius());
  EXPECT_EQ(deep.rf_radius(), 6.0);
  EXPECT_EQ(shallow.rf_radius(), 2.0);
  EXPECT_LE(shallow.r95, 2.0);
  EXPECT_GT(deep.r95, shallow.r95);
  EXPECT_LT(deep.r95, deep.rf_radius());  // the ERF is smaller than the RF (Luo et al.)
}

TEST(Erf, DeterministicInSeedAndThreads) {
  Built b = build(conv_stack({1, 2}), 20);
  const int before = num_threads();
  set_num_threads(1);
  const ErfResult one = erf_of(b, {.samples = 6, .seed = 3});
  const ErfResult again = erf_of(b, {.samples = 6, .seed = 3});
  set_num_threads(2);
  const ErfResult two = erf_of(b, {.samples = 6, .seed = 3});
  set_num_threads(before);
  const ErfResult other = erf_of(b, {.samples = 6, .seed = 4});
  EXPECT_EQ(one.map.to_vector(), again.map.to_vector());
  EXPECT_EQ(one.map.to_vector(), two.map.to_vector());
  EXPECT_NE(one.map.to_vector(), other.map.to_vector());
  // Batching does not change which images are drawn (only the order of the sums' terms can round).
  Built small = b;
  small.in[0] = 1;
  testing::expect_allclose(erf_of(small, {.samples = 6, .seed = 3}).map, one.map, "erf.map batch 1 vs 4", 1e-5, 1e-9);
}

TEST(Erf, RealImagesAndOptionsErrors) {
  Built b = build(conv_stack({1}), 12, 2);
  ErfOptions o{.samples = 3, .images = testing::random_tensor({2, 3, 12, 12}, 5, 0.f, 1.f)};
  EXPECT_GT(erf_of(b, o).support_pixels, 0);
  auto fails = [&](ErfOptions bad, const std::string& what) {
    try {
      erf_of(b, bad);
      ADD_FAILURE() << "no error for " << what;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(what), std::string::npos) << e.what();
    }
  };
  fails({.samples = 0}, "--samples must be >= 1");
  fails({.from_layer = 3}, "--from-layer 3 is out of range");
  fails({.pixel = {12, 0}}, "outside the 12x12 output");
  fails({.pixel = {1}}, "--pixel takes y,x");
  fails({.images = Tensor::zeros({2, 1, 12, 12})}, "do not match the input shape");
}

// ---- the command ----

const char* kTinySeg = R"({"name": "erf_tiny", "seed": 0,
  "data": {"dataset": "shapes", "image_size": 16, "train_size": 8, "val_size": 4},
  "model": {"layers": [
    {"type": "conv2d", "out_channels": 8, "kernel_size": 3, "padding": 1, "bias": false},
    {"type": "batch_norm2d"}, {"type": "relu"},
    {"type": "conv2d", "out_channels": 8, "kernel_size": 3, "padding": 2, "dilation": 2, "bias": false},
    {"type": "batch_norm2d"}, {"type": "relu"},
    {"type": "conv2d", "out_channels": 8, "kernel_size": 3, "padding": 2, "dilation": 2, "bias": false},
    {"type": "batch_norm2d"}, {"type": "relu"},
    {"type": "conv2d", "out_channels": 6, "kernel_size": 1}]},
  "train": {"batch_size": 2}})";

std::string temp_path(const std::string& name) {
  return (fs::temp_directory_path() / ("convlab_erf_" + std::to_string(::getpid()) + "_" + name)).string();
}

std::string write_temp(const std::string& name, const std::string& text) {
  const std::string p = temp_path(name);
  std::ofstream(p) << text;
  return p;
}

std::string error_of(const ErfCommand& c) {
  try {
    erf_command(c);
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

TEST(ErfCommand, ReportJsonPngAndTrainedRow) {
  const std::string cfg = write_temp("tiny.json", kTinySeg);
  ErfCommand c{.config = cfg, .from_layer = 3, .samples = 4, .png = temp_path("erf.png")};
  const StudyResult r = erf_command(c);
  EXPECT_NE(r.text.find("untrained"), std::string::npos) << r.text;
  EXPECT_NE(r.text.find("gridding holes"), std::string::npos) << r.text;
  EXPECT_EQ(r.json["rows"].size(), 1u);
  EXPECT_EQ(r.json["rows"][0]["zero_pixels"], 9 * 9 - 25);  // rf 9 after the stem, a 5x5 lattice
  EXPECT_TRUE(fs::exists(c.png));
  // A checkpoint with the config's own initial weights: both rows see the same images and weights.
  SegTask t = make_seg_task(load_config(cfg), false);
  c.checkpoint = temp_path("model.safetensors");
  safetensors::save(c.checkpoint, t.model->state_dict());
  const StudyResult two = erf_command(c);
  ASSERT_EQ(two.json["rows"].size(), 2u);
  EXPECT_EQ(two.json["rows"][1]["model"], "trained");
  EXPECT_EQ(two.json["rows"][0]["map"], two.json["rows"][1]["map"]);
  EXPECT_EQ(two.json["inputs"], "validation");
  // Same shapes, different dilation (the checkpoint's metadata holds its config): refused, naming the first
  // difference; without CONFIG the checkpoint's own config is measured.
  const json other = load_config(cfg, {"model.layers[3].dilation=1", "model.layers[3].padding=1"});
  safetensors::save(c.checkpoint, t.model->state_dict(), {{"config", other.dump()}});
  const std::string e = error_of(c);
  EXPECT_EQ(e.rfind("erf: model.layers[3].dilation: checkpoint has 1, config has 2", 0), 0u) << e;
  ErfCommand own = c;
  own.config.clear();
  const StudyResult stored = erf_command(own);
  ASSERT_EQ(stored.json["rows"].size(), 2u);
  EXPECT_EQ(stored.json["config"], "the config stored in " + c.checkpoint);
}

TEST(ErfCommand, BadInputIsOneLineError) {
  const std::string cfg = write_temp("tiny2.json", kTinySeg);
  EXPECT_NE(error_of({}).find("give a CONFIG"), std::string::npos);
  EXPECT_NE(error_of({.config = temp_path("missing.json")}).find("missing.json"), std::string::npos);
  EXPECT_NE(error_of({.config = cfg, .from_layer = 10}).find("--from-layer 10 is out of range: model.layers has 10"),
            std::string::npos);
  EXPECT_NE(error_of({.config = cfg, .samples = 0}).find("--samples must be >= 1"), std::string::npos);
  EXPECT_NE(error_of({.config = cfg, .pixel = {3, 16}}).find("outside the 16x16 output"), std::string::npos);
  // A checkpoint of a wider network: the message names the tensor and both shapes.
  SegTask wide = make_seg_task(load_config(cfg, {"model.layers[0].out_channels=4"}), false);
  const std::string ckpt = temp_path("wide.safetensors");
  safetensors::save(ckpt, wide.model->state_dict());
  const std::string e = error_of({.config = cfg, .checkpoint = ckpt});
  EXPECT_NE(e.find("tensor '0.weight'"), std::string::npos) << e;
  EXPECT_NE(e.find("[4,3,3,3]"), std::string::npos) << e;
  EXPECT_NE(e.find("[8,3,3,3]"), std::string::npos) << e;
  EXPECT_EQ(e.find('\n'), std::string::npos) << e;
  // A plain state dict (no config in its metadata) needs CONFIG.
  EXPECT_NE(error_of({.checkpoint = ckpt}).find("holds no config in its metadata"), std::string::npos);
}

TEST(ErfCommand, CliExitCodes) {
  const std::string cfg = write_temp("tiny3.json", kTinySeg);
  auto run = [](const std::string& args, std::string* out) {
    const std::string o = temp_path("cli_out"), e = temp_path("cli_err");
    const int status = std::system((std::string(CONVLAB_BINARY) + " erf " + args + " >" + o + " 2>" + e).c_str());
    std::ifstream fo(o), fe(e);
    *out = std::string(std::istreambuf_iterator<char>(fo), {});
    const std::string err(std::istreambuf_iterator<char>(fe), {});
    return std::make_pair(WEXITSTATUS(status), err);
  };
  std::string out;
  auto [code, err] = run(cfg + " --samples 0", &out);
  EXPECT_EQ(code, 2);
  EXPECT_TRUE(out.empty()) << out;
  EXPECT_NE(err.find("--samples must be >= 1"), std::string::npos) << err;
  EXPECT_EQ(std::count(err.begin(), err.end(), '\n'), 1) << err;
  std::tie(code, err) = run(cfg + " --pixel 1,99", &out);
  EXPECT_EQ(code, 2) << err;
  std::tie(code, err) = run(cfg + " --samples 2 --json", &out);
  ASSERT_EQ(code, 0) << err;
  EXPECT_EQ(json::parse(out)["rows"][0]["rf_pixels"], 11 * 11);  // stem + two dilation-2 layers: rf 11
}

}  // namespace
}  // namespace convlab

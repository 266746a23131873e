// tests/test_checkerboard.cpp: `convlab checkerboard`. Overlap maps against brute force (every (input pixel,
// kernel tap) pair of a transposed conv enumerated in 2-D, and stacks pushed through convlab's own
// conv_transpose2d / upsample / conv2d with an all-ones input and all-ones weights); the interior patterns of
// k4s2 (flat), k3s2 (1, 2, 4) and resize-conv (flat); the strength measures on synthetic images with closed
// forms and against a naive full DFT; generators at init; one-line errors and exit code 2.
#include <gtest/gtest.h>

#include <unistd.h>

#include <cmath>
#include <complex>
#include <filesystem>
#include <fstream>

#include "core/error.h"
#include "data/safetensors.h"
#include "models/config.h"
#include "models/gan_task.h"
#include "tests/testing.h"
#include "models/eval/gan_eval.h"
#include "data/files.h"
#include "models/study/study.h"

namespace convlab {
namespace {

struct TConv {
  int64_t k, s, p, op = 0, d = 1;
};

RfLayer layer_of(const TConv& t) {
  std::string spec = std::to_string(t.k) + ":" + std::to_string(t.s) + ":" + std::to_string(t.p) + ":" +
                     std::to_string(t.op) + ":" + std::to_string(t.d);
  return parse_overlap_layers(spec).at(0);
}

// Every (input pixel, tap) pair of one transposed conv: output (iy*s - p + ky*d, ix*s - p + kx*d) if inside.
std::vector<int64_t> brute_force(const TConv& t, int64_t in, int64_t& out) {
  out = (in - 1) * t.s - 2 * t.p + t.d * (t.k - 1) + t.op + 1;
  std::vector<int64_t> c(size_t(out * out), 0);
  for (int64_t iy = 0; iy < in; ++iy)
    for (int64_t ix = 0; ix < in; ++ix)
      for (int64_t ky = 0; ky < t.k; ++ky)
        for (int64_t kx = 0; kx < t.k; ++kx) {
          const int64_t oy = iy * t.s - t.p + ky * t.d, ox = ix * t.s - t.p + kx * t.d;
          if (oy >= 0 && oy < out && ox >= 0 && ox < out) ++c[size_t(oy * out + ox)];
        }
  return c;
}

// An all-ones input pushed through convlab's ops with all-ones weights (exact in float for small counts).
Tensor push_ones(const std::vector<RfLayer>& layers, int64_t in) {
  Tensor x = Tensor::ones({1, 1, in, in});
  for (const RfLayer& l : layers) {
    if (l.kind == RfKind::transposed) {
      x = conv_transpose2d(x, Tensor::ones({1, 1, l.kernel[0], l.kernel[1]}), Tensor(),
                           ConvTranspose2dArgs{l.stride, l.padding, l.output_padding, l.dilation, 1});
    } else if (l.kind == RfKind::nearest) {
      UpsampleArgs a;
      a.scale = l.scale;
      x = upsample(x, a);
    } else {
      x = conv2d(x, Tensor::ones({1, 1, l.kernel[0], l.kernel[1]}), Tensor(), Conv2dArgs{l.stride, l.padding, l.dilation, 1});
    }
  }
  return x;
}

void expect_map_equals(const OverlapMap& m, const Tensor& want, const std::string& what) {
  ASSERT_EQ(m.output[0], want.size(2)) << what;
  ASSERT_EQ(m.output[1], want.size(3)) << what;
  for (int64_t y = 0; y < m.output[0]; ++y)
    for (int64_t x = 0; x < m.output[1]; ++x)
      ASSERT_EQ(double(m.at(y, x)), double(want.data()[y * m.output[1] + x])) << what << " at (" << y << "," << x << ")";
}

TEST(CheckerboardOverlap, SingleLayersMatchBruteForce) {
  const std::vector<TConv> cases = {{4, 2, 1}, {3, 2, 1, 1}, {3, 2, 0}, {2, 2, 0}, {1, 2, 0},    {5, 2, 2, 1},
                                    {4, 3, 1}, {5, 3, 2, 2}, {3, 1, 1}, {6, 4, 1}, {3, 2, 1, 0, 2}, {4, 2, 3, 1, 2}};
  for (const TConv& t : cases)
    for (int64_t in : {1, 2, 5}) {
      const std::string what = "k" + std::to_string(t.k) + " s" + std::to_string(t.s) + " p" + std::to_string(t.p) +
                               " op" + std::to_string(t.op) + " d" + std::to_string(t.d) + " in " + std::to_string(in);
      int64_t out = 0;
      const std::vector<int64_t> bf = brute_force(t, in, out);
      if (out < 1) continue;
      const OverlapMap m = overlap_map({layer_of(t)}, {in, in});
      ASSERT_EQ(m.output, (Pair{out, out})) << what;
      for (int64_t y = 0; y < out; ++y)
        for (int64_t x = 0; x < out; ++x) ASSERT_EQ(m.at(y, x), bf[size_t(y * out + x)]) << what << " (" << y << "," << x << ")";
      expect_map_equals(m, push_ones({layer_of(t)}, in), what + " (conv_transpose2d)");
      if (in == 1) {  // a layer fed by one pixel: nothing after it, so the interior is the flat all-ones input
        EXPECT_EQ(m.period, (Pair{1, 1})) << what;
        EXPECT_EQ(m.tile_at(0, 0), 1) << what;
        continue;
      }
      // The interior tile is what a large input shows away from its borders.
      int64_t big_out = 0;
      const std::vector<int64_t> big = brute_force(t, 40, big_out);
      const int64_t T = m.period[0], mid = (big_out / 2 / T) * T;
      for (int64_t y = 0; y < T; ++y)
        for (int64_t x = 0; x < T; ++x) ASSERT_EQ(m.tile_at(y, x), big[size_t((mid + y) * big_out + mid + x)]) << what;
    }
}

TEST(CheckerboardOverlap, StacksMatchOnesThroughTheOps) {
  for (const std::string spec : {"4:2:1,4:2:1", "3:2:1:1,3:2:1:1", "resize:3,4:2:1,3:2:0", "7:1:0,3:2:1:1,3:2:1:1"})
    for (int64_t in : {1, 3, 6}) {
      const auto layers = parse_overlap_layers(spec);
      const OverlapMap m = overlap_map(layers, {in, in});
      expect_map_equals(m, push_ones(layers, in), spec + " in " + std::to_string(in));
      if (in == 6 && spec[0] != '7') {  // interior = the ops on a large input, away from the borders
        const Tensor big = push_ones(layers, 24);
        const int64_t T = m.period[0], mid = (big.size(3) / 2 / T) * T;
        for (int64_t y = 0; y < T; ++y)
          for (int64_t x = 0; x < T; ++x)
            ASSERT_EQ(double(m.tile_at(y, x)), double(big.data()[(mid + y) * big.size(3) + mid + x])) << spec;
      }
    }
}

TEST(CheckerboardOverlap, InteriorPatterns) {
  const OverlapMap k4 = overlap_map(parse_overlap_layers("4:2:1"), {8, 8});
  EXPECT_EQ(k4.tile[0], (std::vector<int64_t>{2, 2}));
  EXPECT_EQ(k4.smallest_period[0], 1);
  EXPECT_EQ(k4.axis[0].front(), 1);  // padding 1 cuts one of the two taps at each border
  EXPECT_EQ(k4.axis[0].back(), 1);
  const OverlapMap k3 = overlap_map(parse_overlap_layers("3:2:1:1"), {8, 8});
  EXPECT_EQ(k3.tile[0], (std::vector<int64_t>{1, 2}));
  EXPECT_EQ(k3.tile_at(0, 0), 1);
  EXPECT_EQ(k3.tile_at(1, 1), 4);  // 1, 2, 4 in 2-D: ratio 4
  const OverlapMap rs = overlap_map(parse_overlap_layers("resize"), {8, 8});
  EXPECT_EQ(rs.tile[0], (std::vector<int64_t>{3, 3}));
  const OverlapMap k3k3 = overlap_map(parse_overlap_layers("3:2:1:1,3:2:1:1"), {4, 4});
  EXPECT_EQ(k3k3.tile[0], (std::vector<int64_t>{1, 3, 2, 3}));  // stacking: per-axis ratio 3, 9 in 2-D
  // A generator: z (1x1) -> k7 -> k4 s2 -> k4 s2; the k7 layer fed by one pixel makes a flat 7x7 input.
  const auto gen = parse_overlap_layers("7:1:0,4:2:1,4:2:1");
  const OverlapMap g = overlap_map(gen, {1, 1});
  EXPECT_EQ(g.output, (Pair{28, 28}));
  EXPECT_EQ(g.period[0], 4);
  EXPECT_EQ(g.tile[0], (std::vector<int64_t>{4, 4, 4, 4}));
}

// ---- strength measures ----

Tensor images_of(int64_t N, int64_t S, const std::function<float(int64_t, int64_t, int64_t)>& f) {
  Tensor t = Tensor::empty({N, 1, S, S});
  for (int64_t n = 0; n < N; ++n)
    for (int64_t y = 0; y < S; ++y)
      for (int64_t x = 0; x < S; ++x) t.data()[(n * S + y) * S + x] = f(n, y, x);
  return t;
}

TEST(CheckerboardStrength, SyntheticClosedForms) {
  const auto checker = [](int64_t y, int64_t x) { return (y + x) % 2 ? 1.f : -1.f; };
  const CheckerboardStats pure = checkerboard_stats(images_of(3, 8, [&](int64_t, int64_t y, int64_t x) { return checker(y, x); }));
  EXPECT_NEAR(pure.global, 1, 1e-12);
  EXPECT_NEAR(pure.per_image, 1, 1e-12);
  EXPECT_NEAR(pure.spectral, 1, 1e-12);
  const CheckerboardStats flat = checkerboard_stats(images_of(2, 8, [](int64_t n, int64_t, int64_t) { return 0.3f + n; }));
  EXPECT_EQ(flat.per_image, 0);
  EXPECT_NEAR(flat.global, 0, 1e-12);
  EXPECT_EQ(flat.spectral, 0);
  // A smooth cosine (frequency 2pi/32): every 2x2 phase holds whole periods, so the phase means are equal.
  const CheckerboardStats smooth = checkerboard_stats(images_of(2, 32, [](int64_t, int64_t y, int64_t x) {
    return float(std::cos(2 * M_PI * double(y) / 32) + 0.5 * std::sin(2 * M_PI * double(x) / 32));
  }));
  EXPECT_NEAR(smooth.per_image, 0, 1e-12);
  EXPECT_NEAR(smooth.spectral, 0, 1e-12);
  // Mixtures x_n = a_n * checker + b_n * g with g constant on 2x2 blocks (zero mean, variance 1): per image
  // a^2 / (a^2 + b^2); pooled (mean a)^2 / mean(a^2 + b^2); spectral sum a^2 / sum (a^2 + b^2).
  const float a[3] = {1.f, -0.5f, 2.f}, b[3] = {1.f, 2.f, 0.5f};
  const auto g = [](int64_t y, int64_t x) { return ((y / 2) + (x / 2)) % 2 ? 1.f : -1.f; };
  const Tensor mixed = images_of(3, 8, [&](int64_t n, int64_t y, int64_t x) { return a[n] * checker(y, x) + b[n] * g(y, x); });
  const CheckerboardStats mix = checkerboard_stats(mixed);
  double per = 0, ma = 0, ms = 0, sa = 0;
  for (int i = 0; i < 3; ++i) {
    const double ai = a[i], bi = b[i];
    per += ai * ai / (ai * ai + bi * bi) / 3, ma += ai / 3, ms += (ai * ai + bi * bi) / 3, sa += ai * ai / 3;
  }
  EXPECT_NEAR(mix.per_image, per, 1e-9);
  EXPECT_NEAR(mix.global, ma * ma / ms, 1e-9);
  EXPECT_NEAR(mix.spectral, sa / ms, 1e-9);
  // Opposite checkerboards cancel in the pooled measure only.
  const CheckerboardStats opp = checkerboard_stats(images_of(2, 4, [&](int64_t n, int64_t y, int64_t x) { return (n ? 1.f : -1.f) * checker(y, x); }));
  EXPECT_NEAR(opp.global, 0, 1e-12);
  EXPECT_NEAR(opp.per_image, 1, 1e-12);
  // Period 4: [1, 0, -1, 0] along x is invisible at period 2, pure at period 4.
  const auto p4 = images_of(1, 8, [](int64_t, int64_t, int64_t x) { return float(x % 4 == 0) - float(x % 4 == 2); });
  EXPECT_NEAR(checkerboard_stats(p4, 2).per_image, 0, 1e-12);
  EXPECT_NEAR(checkerboard_stats(p4, 4).per_image, 1, 1e-12);
  EXPECT_NEAR(checkerboard_strength(mixed), mix.global, 1e-9);  // the gan-eval measure is the pooled one
}

TEST(CheckerboardStrength, SpectralShareIsTheFullDftShare) {
  Rng rng(3);
  for (int64_t s : {2, 3, 4}) {
    const int64_t S = 12;
    Tensor img = Tensor::empty({1, 1, S, S});
    fill_normal(img, rng, 0.2f, 1.f);
    double alias = 0, total = 0;  // naive 2-D DFT, every frequency
    for (int64_t u = 0; u < S; ++u)
      for (int64_t v = 0; v < S; ++v) {
        std::complex<double> X = 0;
        for (int64_t y = 0; y < S; ++y)
          for (int64_t x = 0; x < S; ++x)
            X += double(img.data()[y * S + x]) * std::polar(1.0, -2 * M_PI * double(u * y + v * x) / double(S));
        if (u == 0 && v == 0) continue;
        total += std::norm(X);
        if (u % (S / s) == 0 && v % (S / s) == 0) alias += std::norm(X);
      }
    const CheckerboardStats st = checkerboard_stats(img, s);
    EXPECT_NEAR(st.spectral, alias / total, 1e-9) << "period " << s;
    EXPECT_NEAR(st.per_image, alias / total, 1e-9) << "period " << s;  // Parseval on the s x s phase grid
  }
}

TEST(CheckerboardStrength, GeneratorsAtInit) {
  double per[3], glob[3];
  const char* names[3] = {"configs/dcgan_mnist.json", "configs/dcgan_mnist_k3.json", "configs/dcgan_mnist_resize.json"};
  for (int i = 0; i < 3; ++i) {
    GanTask t = make_gan_task(load_config(testing::source_path(names[i])), false);
    Rng rng(1);
    const CheckerboardStats s = checkerboard_stats(generate(t, sample_latent(t, 32, rng)));
    per[i] = s.per_image, glob[i] = s.global;
  }
  EXPECT_GT(per[0], 10 * per[2]);
  EXPECT_GT(per[1], 10 * per[2]);
  EXPECT_GT(glob[0], 10 * glob[2]);
  EXPECT_GT(glob[1], 10 * glob[2]);
}

// ---- errors ----

std::string temp_path(const std::string& name) {
  return (std::filesystem::temp_directory_path() / ("convlab_ckb_" + std::to_string(::getpid()) + "_" + name)).string();
}

std::array<std::string, 3> run_cli(const std::string& args) {
  const std::string o = temp_path("out"), e = temp_path("err");
  const int st = std::system((std::string(CONVLAB_BINARY) + " " + args + " >" + o + " 2>" + e).c_str());
  return {std::to_string(WEXITSTATUS(st)), read_text_file(o), read_text_file(e)};
}

TEST(CheckerboardErrors, BadInputThrowsOneLine) {
  for (const std::string spec : {"4:2", "4:2:x", "", "4:2:1,,3:2:1", "4:2:1:1:1:1", "resize:3:1:2", "4:-2:1", "resize:0"})
    EXPECT_THROW(parse_overlap_layers(spec), Error) << spec;
  CheckerboardCommand c;
  c.kernel = 0;
  EXPECT_THROW(checkerboard_command(c), Error);
  c.kernel = 3, c.stride = 0;
  EXPECT_THROW(checkerboard_command(c), Error);
  c.stride = 2, c.padding = 3;
  EXPECT_THROW(checkerboard_command(c), Error);
  // A k3 generator checkpoint offered as the k4 config's.
  GanTask k3 = make_gan_task(load_config(testing::source_path("configs/dcgan_mnist_k3.json")), false);
  const std::string ck = temp_path("generator.safetensors");
  safetensors::save(ck, k3.generator->state_dict(), {{"format", "convlab-gan-generator"}, {"step", "0"}, {"config", k3.config.dump()}});
  const std::string k4 = testing::source_path("configs/dcgan_mnist.json");
  const std::vector<std::pair<std::string, std::string>> bad = {
      {"checkerboard --kernel 0 --stride 2", "kernel must be >= 1, got 0"},
      {"checkerboard -k 4 -s 0", "stride must be >= 1, got 0"},
      {"checkerboard -k 4 -s 2 -p 4", "padding must be in [0, 4)"},
      {"checkerboard --layers 4:2:1,4:2", "'4:2' is not K:S:P"},
      {"checkerboard --config " + k4 + " --checkpoint " + ck, "does not match the generator of --config"},
      {"checkerboard --config " + testing::source_path("configs/hdc_seg.json"), "no \"generator\""},
  };
  for (const auto& [args, fragment] : bad) {
    const auto [code, out, err] = run_cli(args);
    EXPECT_EQ(code, "2") << args;
    EXPECT_TRUE(out.empty()) << args;
    EXPECT_NE(err.find(fragment), std::string::npos) << args << " -> " << err;
    EXPECT_EQ(std::count(err.begin(), err.end(), '\n'), 1) << err;
  }
  std::filesystem::remove(ck);
}

TEST(CheckerboardCli, LayersJsonAndPng) {
  const std::string png = temp_path("overlap.png");
  const auto [code, out, err] = run_cli("checkerboard --layers 3:2:1:1,3:2:1:1 --json -o " + png);
  ASSERT_EQ(code, "0") << err;
  const auto j = nlohmann::json::parse(out);
  EXPECT_EQ(j["stacks"][0]["tile_axis"][0], (std::vector<int64_t>{1, 3, 2, 3}));
  EXPECT_EQ(j["stacks"][0]["interior_ratio"], 9.0);
  EXPECT_EQ(j["stacks"][0]["even"], false);
  EXPECT_GT(read_png(png).W, 0);
  std::filesystem::remove(png);
}

}  // namespace
}  // namespace convlab

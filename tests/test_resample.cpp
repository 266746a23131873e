// tests/test_resample.cpp: upsample (nearest, bilinear with and without align_corners) and pooling
// (max_pool2d, avg_pool2d, adaptive_avg_pool2d): direct-loop references written from the definitions,
// PyTorch's index quirks probed from torch 1.13, gradient checks over the flag combinations, thread-count
// determinism and error messages. (PyTorch goldens: tests/golden/5NN_*, run by test_golden.cpp.)
#include <gtest/gtest.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <limits>

#include "core/error.h"
#include "tests/testing.h"

namespace convlab {
namespace {

using testing::expect_allclose;
using testing::random_tensor;

// ---- direct-loop references -------------------------------------------------------------------------
// Max pooling: padding taps are -inf (they never win), ties keep the first tap in window order.
Tensor ref_max_pool(const Tensor& x, const PoolDims& d) {
  Tensor y = Tensor::empty({d.N, d.C, d.H_out, d.W_out});
  float* out = y.data();
  for (int64_t p = 0; p < d.planes(); ++p)
    for (int64_t oh = 0; oh < d.H_out; ++oh)
      for (int64_t ow = 0; ow < d.W_out; ++ow) {
        float m = -std::numeric_limits<float>::infinity();
        for (int64_t kh = 0; kh < d.kH; ++kh)
          for (int64_t kw = 0; kw < d.kW; ++kw) {
            const int64_t ih = oh * d.sH - d.pH + kh * d.dH, iw = ow * d.sW - d.pW + kw * d.dW;
            if (ih >= 0 && ih < d.H && iw >= 0 && iw < d.W) m = std::max(m, x.data()[(p * d.H + ih) * d.W + iw]);
          }
        *out++ = m;
      }
  return y;
}

// Average pooling: zero padding; the divisor counts taps inside the padded input [-p, in + p) with
// count_include_pad, taps inside the input otherwise.
Tensor ref_avg_pool(const Tensor& x, const PoolDims& d, bool count_include_pad) {
  Tensor y = Tensor::empty({d.N, d.C, d.H_out, d.W_out});
  float* out = y.data();
  for (int64_t p = 0; p < d.planes(); ++p)
    for (int64_t oh = 0; oh < d.H_out; ++oh)
      for (int64_t ow = 0; ow < d.W_out; ++ow) {
        double s = 0;
        int64_t inside = 0, padded = 0;
        for (int64_t kh = 0; kh < d.kH; ++kh)
          for (int64_t kw = 0; kw < d.kW; ++kw) {
            const int64_t ih = oh * d.sH - d.pH + kh, iw = ow * d.sW - d.pW + kw;
            if (ih < d.H + d.pH && iw < d.W + d.pW) ++padded;
            if (ih >= 0 && ih < d.H && iw >= 0 && iw < d.W) ++inside, s += x.data()[(p * d.H + ih) * d.W + iw];
          }
        *out++ = static_cast<float>(s / double(count_include_pad ? padded : inside));
      }
  return y;
}

// Adaptive: cell i of an axis averages [floor(i*in/out), ceil((i+1)*in/out)).
Tensor ref_adaptive(const Tensor& x, int64_t Ho, int64_t Wo) {
  const int64_t N = x.size(0), C = x.size(1), H = x.size(2), W = x.size(3);
  Tensor y = Tensor::empty({N, C, Ho, Wo});
  float* out = y.data();
  for (int64_t p = 0; p < N * C; ++p)
    for (int64_t oh = 0; oh < Ho; ++oh)
      for (int64_t ow = 0; ow < Wo; ++ow) {
        const int64_t h0 = int64_t(std::floor(double(oh * H) / Ho)), h1 = int64_t(std::ceil(double((oh + 1) * H) / Ho));
        const int64_t w0 = int64_t(std::floor(double(ow * W) / Wo)), w1 = int64_t(std::ceil(double((ow + 1) * W) / Wo));
        double s = 0;
        for (int64_t ih = h0; ih < h1; ++ih)
          for (int64_t iw = w0; iw < w1; ++iw) s += x.data()[(p * H + ih) * W + iw];
        *out++ = static_cast<float>(s / double((h1 - h0) * (w1 - w0)));
      }
  return y;
}

// Bilinear interpolation is exact on functions linear in (h, w), so on the ramp x = a*h + b*w + c the
// output is a*src_h + b*src_w + c, with src clamped to [0, in - 1] (the edge rules of PyTorch).
double src_coord(int64_t dst, int64_t in, int64_t out, bool align_corners) {
  if (in == out) return double(dst);
  double s = align_corners ? (out > 1 ? double(dst) * (in - 1) / (out - 1) : 0.0) : (dst + 0.5) * in / out - 0.5;
  return std::min(std::max(s, 0.0), double(in - 1));
}

Tensor ramp(const Shape& s, float a, float b, float c) {
  Tensor t = Tensor::empty(s);
  for (int64_t p = 0; p < s[0] * s[1]; ++p)
    for (int64_t h = 0; h < s[2]; ++h)
      for (int64_t w = 0; w < s[3]; ++w) t.data()[(p * s[2] + h) * s[3] + w] = a * h + b * w + c * (p + 1);
  return t;
}

// Distinct values (a shuffled ramp) so that every max-pool argmax is unambiguous under small steps.
Tensor distinct_tensor(const Shape& s, uint64_t seed) {
  Tensor r = random_tensor(s, seed);
  std::vector<int64_t> order(r.numel());
  for (int64_t i = 0; i < r.numel(); ++i) order[i] = i;
  std::sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return r.data()[a] < r.data()[b]; });
  Tensor t = Tensor::empty(s);
  for (int64_t i = 0; i < r.numel(); ++i) t.data()[order[i]] = 0.05f * float(i) - 1.f;
  return t;
}

UpsampleArgs by_size(UpsampleMode m, Pair size, bool ac = false) { return {m, size, std::nullopt, ac}; }
UpsampleArgs by_scale(UpsampleMode m, double sh, double sw, bool ac = false) {
  return {m, std::nullopt, std::array<double, 2>{sh, sw}, ac};
}

// Nearest source index along W as PyTorch computes it, read off an arange input.
std::vector<int64_t> nearest_indices(int64_t in, const UpsampleArgs& a) {
  Tensor x = Tensor::empty({1, 1, 1, in});
  for (int64_t i = 0; i < in; ++i) x.data()[i] = float(i);
  const Tensor y = upsample(x, a);
  std::vector<int64_t> idx;
  for (float v : y.to_vector()) idx.push_back(int64_t(v));
  return idx;
}

// ---- upsample -----------------------------------------------------------------------------------------
TEST(Upsample, NearestIndicesMatchPyTorch) {
  using V = std::vector<int64_t>;
  const auto n = UpsampleMode::nearest;
  // Expected lists printed by torch 1.13 F.interpolate(x, mode="nearest", ...) for x [1, 2, 1, in] holding
  // arange(in) in every row (C = 2: an ordinary NCHW tensor, see core/upsample.cpp for C = 1).
  EXPECT_EQ(nearest_indices(5, by_scale(n, 1, 1.4)), (V{0, 0, 1, 2, 2, 3, 4}));
  EXPECT_EQ(nearest_indices(10, by_scale(n, 1, 0.7)), (V{0, 1, 2, 4, 5, 7, 8}));
  EXPECT_EQ(nearest_indices(3, by_scale(n, 1, 2.3)), (V{0, 0, 0, 1, 1, 2}));  // out 6 = 2*in
  EXPECT_EQ(nearest_indices(7, by_scale(n, 1, 1.5)), (V{0, 0, 1, 2, 2, 3, 4, 4, 5, 6}));
  EXPECT_EQ(nearest_indices(5, by_scale(n, 1, 0.6)), (V{0, 1, 3}));
  EXPECT_EQ(nearest_indices(3, by_size(n, {1, 5})), (V{0, 0, 1, 1, 2}));
  EXPECT_EQ(nearest_indices(5, by_size(n, {1, 3})), (V{0, 1, 3}));
  EXPECT_EQ(nearest_indices(6, by_size(n, {1, 9})), (V{0, 0, 1, 2, 2, 3, 4, 4, 5}));
  // out == in and out == 2*in from an inexact scale: the float formula, as PyTorch's NCHW forward does (its
  // channels-last forward and its backward copy / halve instead; convlab keeps the formula and its adjoint).
  EXPECT_EQ(nearest_indices(4, by_scale(n, 1, 1.0000001)), (V{0, 0, 1, 2}));
  EXPECT_EQ(nearest_indices(4, by_scale(n, 1, 2.0000001)), (V{0, 0, 0, 1, 1, 2, 2, 3}));
  EXPECT_EQ(nearest_indices(3, by_scale(n, 1, 1.2)), (V{0, 0, 1}));
  EXPECT_EQ(nearest_indices(4, by_scale(n, 1, 3.0000001)), (V{0, 0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3}));
}

TEST(Upsample, BilinearOnARampMatchesTheSourceCoordinateFormula) {
  const Shape xs{2, 2, 4, 5};
  const Tensor x = ramp(xs, 0.75f, -0.5f, 0.25f);
  for (bool ac : {false, true})
    for (const UpsampleArgs& a0 : {by_size(UpsampleMode::bilinear, {9, 7}), by_size(UpsampleMode::bilinear, {3, 2}),
                                   by_size(UpsampleMode::bilinear, {1, 1}), by_size(UpsampleMode::bilinear, {4, 11}),
                                   by_scale(UpsampleMode::bilinear, 2.0, 2.0), by_scale(UpsampleMode::bilinear, 1.1, 1.1)}) {
      UpsampleArgs a = a0;
      a.align_corners = ac;
      const Tensor y = upsample(x, a);
      // with a scale factor and align_corners=false the ratio is 1/scale, which equals in/out here
      // (4 * 2 = 8 exactly; 1.1 keeps the size and copies)
      Tensor want = Tensor::empty(y.shape());
      const int64_t Ho = y.size(2), Wo = y.size(3);
      for (int64_t p = 0; p < 4; ++p)
        for (int64_t oh = 0; oh < Ho; ++oh)
          for (int64_t ow = 0; ow < Wo; ++ow)
            want.data()[(p * Ho + oh) * Wo + ow] = float(0.75 * src_coord(oh, 4, Ho, ac) -
                                                         0.5 * src_coord(ow, 5, Wo, ac) + 0.25 * (p + 1));
      expect_allclose(y, want, "upsample_bilinear.output " + shape_str(y.shape()) + (ac ? " ac" : ""), 1e-6, 1e-6);
    }
}

TEST(Upsample, ScaleFactorUsesOneOverScaleNotTheSizeRatio) {
  // in 3, scale 1.7 -> out 5; PyTorch samples at (dst + 0.5) / 1.7 - 0.5, not (dst + 0.5) * 3/5 - 0.5.
  Tensor x = Tensor::from({1, 1, 1, 3}, {0, 1, 2});
  const Tensor y = upsample(x, by_scale(UpsampleMode::bilinear, 1, 1.7));
  ASSERT_EQ(y.shape(), (Shape{1, 1, 1, 5}));
  for (int64_t o = 0; o < 5; ++o)
    EXPECT_NEAR(y.data()[o], std::min(std::max((o + 0.5) / 1.7 - 0.5, 0.0), 2.0), 1e-6) << "dst " << o;
}

TEST(Upsample, NearestX2BackwardSumsEachTwoByTwoBlock) {
  Tensor x = random_tensor({1, 2, 3, 4}, 1).set_requires_grad();
  Tensor y = upsample(x, by_scale(UpsampleMode::nearest, 2, 2));
  const Tensor g = random_tensor(y.shape(), 2);
  y.backward(g);
  Tensor want = avg_pool2d(g, {.kernel_size = {2, 2}});
  expect_allclose(x.grad(), mul_scalar(want, 4.f), "upsample_nearest.grad_input", 1e-6, 1e-6);
  expect_allclose(avg_pool2d(y.detach(), {.kernel_size = {2, 2}}), x.detach(), "upsample_nearest.output", 1e-6, 1e-6);
}

TEST(Upsample, GradcheckAllModes) {
  uint64_t seed = 10;
  for (UpsampleMode m : {UpsampleMode::nearest, UpsampleMode::bilinear})
    for (bool ac : {false, true}) {
      if (m == UpsampleMode::nearest && ac) continue;
      for (UpsampleArgs a : {by_scale(m, 2, 2), by_scale(m, 1.7, 0.6), by_size(m, {7, 3}), by_size(m, {2, 9})}) {
        a.align_corners = ac;
        testing::gradcheck(
            std::string("upsample_") + upsample_mode_name(m) + (ac ? "_ac" : ""),
            [a](const std::vector<Tensor>& t) { return upsample(t[0], a); },
            {random_tensor({2, 2, 4, 5}, seed++).set_requires_grad()});
      }
    }
}

// A 3x3 conv after nearest x2 upsampling sees every output pixel through all 9 taps (resize-conv), so a
// constant input gives a constant interior; a stride-2 transposed conv would alternate 1, 2, 4 taps.
TEST(Upsample, ResizeConvOfAConstantHasNoCheckerboard) {
  const Tensor y = conv2d(upsample(Tensor::ones({1, 1, 5, 5}), by_scale(UpsampleMode::nearest, 2, 2)),
                          Tensor::ones({1, 1, 3, 3}), Tensor(), {.padding = {1, 1}});
  for (int64_t h = 1; h < 9; ++h)
    for (int64_t w = 1; w < 9; ++w) EXPECT_EQ(y.at({0, 0, h, w}), 9.f) << h << "," << w;
}

// ---- pooling ------------------------------------------------------------------------------------------
struct MaxCase {
  Shape x;
  MaxPool2dArgs a;
};
std::vector<MaxCase> max_grid() {
  return {{{2, 2, 6, 6}, {.kernel_size = {2, 2}}},
          {{1, 3, 7, 6}, {.kernel_size = {3, 3}, .stride = Pair{2, 2}, .padding = {1, 1}}},
          {{1, 2, 6, 6}, {.kernel_size = {3, 3}, .stride = Pair{2, 2}, .ceil_mode = true}},
          {{1, 2, 7, 6}, {.kernel_size = {3, 2}, .stride = Pair{1, 2}, .padding = {1, 1}, .dilation = {2, 1}}},
          {{2, 1, 5, 7}, {.kernel_size = {2, 3}, .stride = Pair{2, 2}, .padding = {1, 1}, .ceil_mode = true}},
          {{1, 1, 8, 8}, {.kernel_size = {3, 3}, .stride = Pair{3, 2}, .padding = {1, 0}, .dilation = {2, 3},
                          .ceil_mode = true}}};
}

TEST(ResamplePool, OutputSizeRule) {
  EXPECT_EQ(pool_output_size(6, 3, 2, 0, 1, false), 2);
  EXPECT_EQ(pool_output_size(6, 3, 2, 0, 1, true), 3);
  EXPECT_EQ(pool_output_size(5, 2, 2, 1, 1, true), 3);  // a 4th window would start in the right padding
  EXPECT_EQ(pool_output_size(6, 3, 2, 1, 1, true), 4);
  EXPECT_EQ(pool_output_size(8, 3, 3, 1, 2, false), 2);
}

TEST(ResamplePool, MaxMatchesDirectLoopsAndGradcheck) {
  uint64_t seed = 1;
  for (const MaxCase& c : max_grid()) {
    const Tensor x = distinct_tensor(c.x, seed++);
    expect_allclose(max_pool2d(x, c.a), ref_max_pool(x, max_pool2d_dims(c.x, c.a)), "max_pool2d.output", 0, 0);
    const MaxPool2dArgs a = c.a;
    testing::gradcheck("max_pool2d", [a](const std::vector<Tensor>& t) { return max_pool2d(t[0], a); },
                       {x.clone().set_requires_grad()}, {.eps = 1e-3});
  }
}

TEST(ResamplePool, MaxTiesGoToTheFirstTapAndNaNPropagates) {
  Tensor x = Tensor::from({1, 1, 2, 3}, {1, 1, 0, 1, 1, 0}).set_requires_grad();
  max_pool2d(x, {.kernel_size = {2, 2}, .stride = Pair{1, 1}}).backward(Tensor::from({1, 1, 1, 2}, {1, 10}));
  EXPECT_EQ(x.grad().to_vector(), (std::vector<float>{1, 10, 0, 0, 0, 0}));
  const Tensor y = max_pool2d(Tensor::from({1, 1, 2, 2}, {1, NAN, 2, 0}), {.kernel_size = {2, 2}});
  EXPECT_TRUE(std::isnan(y.item()));
}

TEST(ResamplePool, AvgMatchesDirectLoopsAndGradcheck) {
  uint64_t seed = 20;
  for (const MaxCase& c : max_grid()) {
    if (c.a.dilation != Pair{1, 1}) continue;
    for (bool cip : {true, false}) {
      const AvgPool2dArgs a{c.a.kernel_size, c.a.stride, c.a.padding, c.a.ceil_mode, cip};
      const Tensor x = random_tensor(c.x, seed++);
      expect_allclose(avg_pool2d(x, a), ref_avg_pool(x, avg_pool2d_dims(c.x, a), cip),
                      std::string("avg_pool2d.output") + (cip ? "" : " exclude_pad"), 1e-6, 1e-6);
      testing::gradcheck("avg_pool2d", [a](const std::vector<Tensor>& t) { return avg_pool2d(t[0], a); },
                         {x.clone().set_requires_grad()});
    }
  }
}

TEST(ResamplePool, AdaptiveMatchesDirectLoopsAndGradcheck) {
  uint64_t seed = 40;
  for (auto [xs, out] : std::vector<std::pair<Shape, Pair>>{{{2, 2, 8, 8}, {4, 4}}, {{1, 2, 7, 5}, {3, 2}},
                                                            {{1, 1, 5, 7}, {1, 1}}, {{1, 2, 3, 4}, {5, 6}},
                                                            {{1, 1, 10, 9}, {4, 9}}}) {
    const Tensor x = random_tensor(xs, seed++);
    expect_allclose(adaptive_avg_pool2d(x, out), ref_adaptive(x, out[0], out[1]), "adaptive_avg_pool2d.output",
                    1e-6, 1e-6);
    testing::gradcheck("adaptive_avg_pool2d",
                       [out](const std::vector<Tensor>& t) { return adaptive_avg_pool2d(t[0], out); },
                       {x.clone().set_requires_grad()});
  }
  const Tensor x = random_tensor({2, 3, 8, 6}, 3);
  expect_allclose(adaptive_avg_pool2d(x, {4, 3}), avg_pool2d(x, {.kernel_size = {2, 2}}), "adaptive == avg", 1e-6,
                  1e-6);
}

// ---- determinism and errors ---------------------------------------------------------------------------
TEST(Resample, OneAndTwoThreadsGiveIdenticalResults) {
  const Shape xs{4, 8, 40, 40};
  const std::vector<std::pair<std::string, std::function<Tensor(const Tensor&)>>> ops = {
      {"nearest", [](const Tensor& x) { return upsample(x, by_scale(UpsampleMode::nearest, 1.5, 2)); }},
      {"bilinear", [](const Tensor& x) { return upsample(x, by_size(UpsampleMode::bilinear, {97, 61})); }},
      {"max_pool2d", [](const Tensor& x) { return max_pool2d(x, {.kernel_size = {3, 3}, .stride = Pair{1, 1}}); }},
      {"avg_pool2d", [](const Tensor& x) { return avg_pool2d(x, {.kernel_size = {3, 3}, .stride = Pair{1, 1}}); }},
      {"adaptive", [](const Tensor& x) { return adaptive_avg_pool2d(x, {13, 17}); }}};
  for (const auto& [name, f] : ops) {
    std::vector<std::vector<float>> r[2];
    for (int t : {1, 2}) {
      omp_set_num_threads(t);
      Tensor x = random_tensor(xs, 5).set_requires_grad();
      Tensor y = f(x);
      y.backward(random_tensor(y.shape(), 6));
      r[t - 1] = {y.to_vector(), x.grad().to_vector()};
    }
    omp_set_num_threads(2);
    EXPECT_TRUE(r[0] == r[1]) << name << " differs between 1 and 2 threads";
  }
}

void expect_error(const std::function<void()>& f, const std::string& fragment) {
  try {
    f();
    ADD_FAILURE() << "expected an error containing '" << fragment << "'";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(fragment), std::string::npos) << e.what();
  }
}

TEST(Resample, ErrorsNameTheOpAndArgument) {
  const Tensor x = Tensor::zeros({1, 2, 4, 4});
  const auto n = UpsampleMode::nearest, b = UpsampleMode::bilinear;
  expect_error([&] { upsample(x, {n, Pair{8, 8}, std::array<double, 2>{2, 2}, false}); },
               "upsample: give exactly one of size and scale_factor (got both) for input [1,2,4,4]");
  expect_error([&] { upsample(x, {}); }, "(got neither)");
  expect_error([&] { upsample(x, by_scale(n, 2, 2, true)); }, "align_corners can only be set with mode bilinear");
  expect_error([&] { upsample(x, by_scale(b, 0.2, 1)); }, "gives output size 0x4 for input [1,2,4,4]");
  expect_error([&] { upsample(x, by_scale(b, -1, 1)); }, "scale_factor must be > 0");
  expect_error([&] { upsample(x, by_size(b, {0, 3})); }, "size must be >= 1");
  expect_error([&] { upsample(Tensor::zeros({2, 4, 4}), by_size(b, {8, 8})); }, "upsample: input must be 4-D");
  expect_error([&] { upsample_mode("bicubic"); }, "unknown mode 'bicubic' (supported: nearest, bilinear)");
  expect_error([&] { max_pool2d(x, {.kernel_size = {3, 3}, .padding = {2, 1}}); },
               "max_pool2d: padding [2,1] must be at most half of kernel_size [3,3]");
  expect_error([&] { max_pool2d(x, {.kernel_size = {5, 5}}); }, "max_pool2d: output size 0x0 is too small");
  expect_error([&] { max_pool2d(x, {.kernel_size = {0, 2}}); }, "kernel_size must be >= 1");
  expect_error([&] { max_pool2d(x, {.kernel_size = {2, 2}, .dilation = {1, 0}}); }, "dilation must be >= 1");
  expect_error([&] { avg_pool2d(x, {.kernel_size = {2, 2}, .stride = Pair{0, 1}}); }, "avg_pool2d: stride must be >= 1");
  expect_error([&] { avg_pool2d(x, {.kernel_size = {2, 2}, .padding = {-1, 0}}); }, "padding must be >= 0");
  expect_error([&] { adaptive_avg_pool2d(x, {0, 2}); }, "adaptive_avg_pool2d: output_size must be >= 1");
}

}  // namespace
}  // namespace convlab

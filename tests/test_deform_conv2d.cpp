// tests/test_deform_conv2d.cpp: deform_conv2d v1/v2 against a slow direct-loop transcription of
// torchvision's CPU kernel (double precision; its bilinear_interpolate, deformable_col2im and
// get_coordinate_weight, including their border and whole-pixel rules), finite-difference gradient checks
// (offsets kept away from whole pixels, some samples straddling the border), zero offsets == conv2d,
// v2 with mask 1 == v1, 1 vs 2 threads bit-identical, and the error messages.
#include <gtest/gtest.h>
#include <omp.h>

#include <cmath>

#include "core/error.h"
#include "tests/testing.h"

namespace convlab {
namespace {

using testing::expect_allclose;
using testing::random_tensor;

// ---------------------------------------------------------------- the direct-loop reference
struct RefResult {
  Tensor y, dx, doffset, dmask, dw, db;
};

struct RefImage {  // one channel plane of the input, read as torchvision reads it
  const float* p;
  int64_t H, W;
  double at(int64_t yy, int64_t xx) const {
    return (yy >= 0 && yy < H && xx >= 0 && xx < W) ? double(p[yy * W + xx]) : 0.0;
  }
  // torchvision bilinear_interpolate: 0 at or beyond -1 / H, each neighbour outside reads 0.
  double bilinear(double y, double x) const {
    if (y <= -1 || H <= y || x <= -1 || W <= x) return 0;
    const int64_t y0 = int64_t(std::floor(y)), x0 = int64_t(std::floor(x));
    const double lh = y - y0, lw = x - x0;
    return (1 - lh) * (1 - lw) * at(y0, x0) + (1 - lh) * lw * at(y0, x0 + 1) + lh * (1 - lw) * at(y0 + 1, x0) +
           lh * lw * at(y0 + 1, x0 + 1);
  }
  // torchvision get_coordinate_weight: no early exit (a point at exactly -1 has a slope).
  double coordinate_weight(double y, double x, bool y_direction) const {
    const int64_t y0 = int64_t(std::floor(y)), x0 = int64_t(std::floor(x));
    if (y_direction) {
      const double dx = x - x0;
      return dx * (at(y0 + 1, x0 + 1) - at(y0, x0 + 1)) + (1 - dx) * (at(y0 + 1, x0) - at(y0, x0));
    }
    const double dy = y - y0;
    return dy * (at(y0 + 1, x0 + 1) - at(y0 + 1, x0)) + (1 - dy) * (at(y0, x0 + 1) - at(y0, x0));
  }
};

// Forward and every gradient of sum(y * dy), straight from the definitions.
RefResult reference(const Tensor& x, const Tensor& off, const Tensor& mask, const Tensor& w, const Tensor& b,
                    const Tensor& dy, const DeformConv2dArgs& a) {
  const DeformDims d = deform_conv2d_dims(x.shape(), w.shape(), &off.shape(), mask.defined() ? &mask.shape() : nullptr,
                                          b.defined() ? &b.shape() : nullptr, a);
  const ConvDims& c = d.c;
  const int64_t T = d.taps(), Cg = c.cin_g(), Mg = c.cout_g();
  std::vector<double> y(c.N * c.C_out * c.hw_out()), dx(x.numel()), doff(off.numel()), dw(w.numel()), db(c.C_out);
  std::vector<double> dm(mask.defined() ? mask.numel() : 0);
  for (int64_t n = 0; n < c.N; ++n)
    for (int64_t co = 0; co < c.C_out; ++co)
      for (int64_t oh = 0; oh < c.H_out; ++oh)
        for (int64_t ow = 0; ow < c.W_out; ++ow) {
          const int64_t yi = ((n * c.C_out + co) * c.H_out + oh) * c.W_out + ow;
          const double g = double(dy.data()[yi]);
          double s = b.defined() ? double(b.data()[co]) : 0.0;
          db[co] += g;
          for (int64_t cl = 0; cl < Cg; ++cl) {
            const int64_t ci = co / Mg * Cg + cl, og = ci / d.cin_og();
            const RefImage img{x.data() + (n * c.C_in + ci) * c.H * c.W, c.H, c.W};
            for (int64_t t = 0; t < T; ++t) {
              const int64_t i = t / c.kW, j = t % c.kW;
              const int64_t oy = ((n * 2 * d.OG + og * 2) * T + 2 * t) * c.hw_out() + oh * c.W_out + ow;
              const int64_t ox = oy + c.hw_out();
              const int64_t mi = ((n * d.OG + og) * T + t) * c.hw_out() + oh * c.W_out + ow;
              const double py = double(oh * c.sH - c.pH + i * c.dH) + double(off.data()[oy]);
              const double px = double(ow * c.sW - c.pW + j * c.dW) + double(off.data()[ox]);
              const double m = mask.defined() ? double(mask.data()[mi]) : 1.0;
              const int64_t wi = (co * Cg + cl) * T + t;
              const double wv = double(w.data()[wi]), v = img.bilinear(py, px);
              s += wv * m * v;
              dw[wi] += g * m * v;
              if (mask.defined()) dm[mi] += g * wv * v;
              doff[oy] += g * wv * m * img.coordinate_weight(py, px, true);
              doff[ox] += g * wv * m * img.coordinate_weight(py, px, false);
              // torchvision deformable_col2im: the pixels within distance < 1 on both axes.
              for (int64_t ddy = -1; ddy <= 1; ++ddy)
                for (int64_t ddx = -1; ddx <= 1; ++ddx) {
                  const int64_t yp = int64_t(py) + ddy, xp = int64_t(px) + ddx;
                  if (yp < 0 || yp >= c.H || xp < 0 || xp >= c.W) continue;
                  if (std::fabs(py - yp) >= 1 || std::fabs(px - xp) >= 1) continue;
                  dx[((n * c.C_in + ci) * c.H + yp) * c.W + xp] +=
                      g * wv * m * (1 - std::fabs(py - yp)) * (1 - std::fabs(px - xp));
                }
            }
          }
          y[yi] = s;
        }
  auto to = [](const std::vector<double>& v, const Shape& s) {
    Tensor t = Tensor::empty(s);
    for (size_t i = 0; i < v.size(); ++i) t.data()[i] = float(v[i]);
    return t;
  };
  RefResult r;
  r.y = to(y, {c.N, c.C_out, c.H_out, c.W_out});
  r.dx = to(dx, x.shape()), r.doffset = to(doff, off.shape()), r.dw = to(dw, w.shape()), r.db = to(db, {c.C_out});
  if (mask.defined()) r.dmask = to(dm, mask.shape());
  return r;
}

// ---------------------------------------------------------------- helpers
// Offsets sign * (k + f), k in [0, kmax], f in [0.2, 0.8]: never on a whole pixel, so finite differences
// do not cross a kink of the bilinear interpolation.
Tensor fractional_offsets(const Shape& s, uint64_t seed, int kmax) {
  Tensor t = Tensor::empty(s);
  Rng rng(seed);
  for (int64_t i = 0; i < t.numel(); ++i) {
    const float v = float(rng.randint(kmax + 1)) + rng.uniform(0.2f, 0.8f);
    t.data()[i] = rng.uniform() < 0.5f ? -v : v;
  }
  return t;
}

// Offsets on a quarter-pixel grid in [-lim, lim], whole pixels included (the kinks where torchvision's
// floor-based rules decide the gradient).
Tensor grid_offsets(const Shape& s, uint64_t seed, int lim) {
  Tensor t = Tensor::empty(s);
  Rng rng(seed);
  for (int64_t i = 0; i < t.numel(); ++i) t.data()[i] = float(rng.randint(8 * lim + 1) - 4 * lim) / 4.f;
  return t;
}

DeformConv2dArgs args(Pair s, Pair p, Pair d) {
  DeformConv2dArgs a;
  a.stride = s, a.padding = p, a.dilation = d;
  return a;
}

struct DeformCase {
  Shape x, w;
  DeformConv2dArgs a;
  int64_t og;
  bool mask, bias;
};

DeformDims dims_of(const DeformCase& c, Shape* off_shape, Shape* mask_shape) {
  const ConvDims cd = conv2d_dims(c.x, c.w, nullptr, {c.a.stride, c.a.padding, c.a.dilation, c.x[1] / c.w[1]});
  *off_shape = {cd.N, 2 * c.og * cd.kH * cd.kW, cd.H_out, cd.W_out};
  *mask_shape = {cd.N, c.og * cd.kH * cd.kW, cd.H_out, cd.W_out};
  return deform_conv2d_dims(c.x, c.w, off_shape, c.mask ? mask_shape : nullptr, nullptr, c.a);
}

std::vector<DeformCase> grid() {
  std::vector<DeformCase> cs;
  for (int64_t s : {1, 2})
    for (int64_t p : {0, 1})
      for (int64_t d : {1, 2})
        cs.push_back({{1, 2, 6, 7}, {3, 2, 3, 2}, args({s, 1}, {p, 1 + p}, {d, 1}), 1, (s + p + d) % 2 == 0, p == 1});
  cs.push_back({{3, 4, 5, 5}, {4, 2, 3, 3}, args({1, 1}, {1, 1}, {1, 1}), 2, true, true});  // G 2, OG 2, N 3
  cs.push_back({{2, 4, 4, 6}, {2, 4, 2, 3}, args({1, 2}, {0, 1}, {1, 1}), 4, true, false});  // OG 4, k 2x3
  cs.push_back({{2, 4, 5, 4}, {8, 1, 3, 3}, args({1, 1}, {2, 1}, {2, 1}), 1, false, true});  // depthwise-like
  cs.push_back({{1, 3, 4, 4}, {2, 3, 1, 1}, args({1, 1}, {0, 0}, {1, 1}), 1, true, true});   // 1x1 resampling
  cs.push_back({{2, 2, 3, 3}, {2, 2, 3, 3}, args({1, 1}, {2, 2}, {1, 1}), 2, false, true});  // mostly padding
  return cs;
}

struct Inputs {
  Tensor x, off, mask, w, b;
};

Inputs make_inputs(const DeformCase& c, uint64_t seed, const Tensor& off) {
  Shape os, ms;
  dims_of(c, &os, &ms);
  Inputs in;
  in.x = random_tensor(c.x, seed + 1), in.w = random_tensor(c.w, seed + 2);
  in.off = off.defined() ? off : fractional_offsets(os, seed + 3, 2);
  if (c.mask) in.mask = random_tensor(ms, seed + 4, -1.5f, 1.5f);  // any real values, negatives too
  if (c.bias) in.b = random_tensor({c.w[0]}, seed + 5);
  return in;
}

Tensor run(const Inputs& in, const DeformConv2dArgs& a) { return deform_conv2d(in.x, in.off, in.w, in.b, in.mask, a); }

void expect_matches_reference(const Inputs& in0, const DeformConv2dArgs& a, const std::string& what) {
  Inputs in = in0;
  for (Tensor* t : {&in.x, &in.off, &in.mask, &in.w, &in.b})
    if (t->defined()) *t = t->clone().set_requires_grad();
  Tensor y = run(in, a);
  const Tensor dy = random_tensor(y.shape(), 77);
  y.backward(dy);
  const RefResult r = reference(in.x, in.off, in.mask, in.w, in.b, dy, a);
  expect_allclose(y, r.y, what + ".output", 1e-5, 1e-5);
  expect_allclose(in.x.grad(), r.dx, what + ".grad_input", 1e-5, 1e-5);
  expect_allclose(in.off.grad(), r.doffset, what + ".grad_offset", 1e-5, 1e-5);
  expect_allclose(in.w.grad(), r.dw, what + ".grad_weight", 1e-5, 1e-5);
  if (in.mask.defined()) expect_allclose(in.mask.grad(), r.dmask, what + ".grad_mask", 1e-5, 1e-5);
  if (in.b.defined()) expect_allclose(in.b.grad(), r.db, what + ".grad_bias", 1e-5, 1e-5);
}

// ---------------------------------------------------------------- tests
TEST(DeformConv2d, MatchesDirectLoopsOnGrid) {
  uint64_t seed = 1;
  for (const DeformCase& c : grid()) {
    expect_matches_reference(make_inputs(c, seed, Tensor()), c.a, "deform_conv2d" + shape_str(c.x));
    seed += 10;
  }
}

// Whole-pixel and quarter-pixel offsets up to 3 pixels: points exactly at -1, at H-1, H, beyond; the
// offset gradient there follows torchvision's floor(p) / floor(p)+1 rule.
TEST(DeformConv2d, MatchesTorchvisionRulesAtWholePixelsAndBorders) {
  uint64_t seed = 500;
  for (const DeformCase& c : grid()) {
    Shape os, ms;
    dims_of(c, &os, &ms);
    expect_matches_reference(make_inputs(c, seed, grid_offsets(os, seed + 9, 3)), c.a,
                             "deform_conv2d(whole pixels)" + shape_str(c.x));
    seed += 10;
  }
}

TEST(DeformConv2d, FarOutsideReadsZeroAndHasNoGradient) {
  const DeformCase c{{1, 2, 4, 4}, {2, 2, 3, 3}, args({1, 1}, {1, 1}, {1, 1}), 1, true, false};
  Shape os, ms;
  dims_of(c, &os, &ms);
  Tensor off = Tensor::full(os, 40.25f);
  Inputs in = make_inputs(c, 3, off);
  for (Tensor* t : {&in.x, &in.off, &in.mask, &in.w}) *t = t->clone().set_requires_grad();
  Tensor y = run(in, c.a);
  y.backward(random_tensor(y.shape(), 1));
  for (const Tensor& t : {y, in.x.grad(), in.off.grad(), in.mask.grad(), in.w.grad()})
    for (float v : t.to_vector()) ASSERT_EQ(v, 0.f);
}

Tensor leaf(const Tensor& t) {  // a fresh copy that requires grad
  Tensor c = t.clone();
  c.set_requires_grad();
  return c;
}

// gradcheck takes defined tensors only: absent bias / mask are left out of its input list.
Tensor call_with(const Inputs& in, const std::vector<Tensor>& v, const std::vector<int>& slot,
                 const DeformConv2dArgs& a) {
  Tensor t[5] = {in.x, in.off, in.mask, in.w, in.b};  // slot k of v[i] replaces t[slot[i]]
  for (size_t i = 0; i < v.size(); ++i) t[slot[i]] = v[i];
  return deform_conv2d(t[0], t[1], t[3], t[4], t[2], a);
}

TEST(DeformConv2d, GradcheckInputWeightBiasMask) {
  uint64_t seed = 1000;
  for (const DeformCase& c : grid()) {
    const Inputs in = make_inputs(c, seed, Tensor());
    seed += 10;
    std::vector<Tensor> v;
    std::vector<int> slot;
    for (auto [t, k] : {std::pair{in.x, 0}, {in.w, 3}, {in.b, 4}, {in.mask, 2}})
      if (t.defined()) v.push_back(leaf(t)), slot.push_back(k);
    const DeformConv2dArgs a = c.a;
    testing::gradcheck(
        "deform_conv2d" + shape_str(c.x),
        [in, slot, a](const std::vector<Tensor>& t) { return call_with(in, t, slot, a); }, v);
  }
}

TEST(DeformConv2d, GradcheckOffsetAndMaskIncludingBorderStraddles) {
  uint64_t seed = 2000;
  for (const DeformCase& c : grid()) {
    const Inputs in = make_inputs(c, seed, Tensor());
    seed += 10;
    std::vector<Tensor> v;
    std::vector<int> slot;
    for (auto [t, k] : {std::pair{in.off, 1}, {in.mask, 2}})
      if (t.defined()) v.push_back(leaf(t)), slot.push_back(k);
    const DeformConv2dArgs a = c.a;
    testing::GradcheckOptions opt;
    opt.eps = 1e-3;  // the fractional parts are in [0.2, 0.8]: no step crosses a whole pixel
    opt.max_rel_error = 3e-3;
    testing::gradcheck(
        "deform_conv2d.offset" + shape_str(c.x),
        [in, slot, a](const std::vector<Tensor>& t) { return call_with(in, t, slot, a); }, v, opt);
  }
}

// Zero offsets and a unit mask sample whole pixels: exactly conv2d (compare torchvision#5594).
TEST(DeformConv2d, ZeroOffsetsEqualConv2d) {
  std::vector<DeformCase> cs = grid();
  cs.push_back({{8, 6, 9, 8}, {6, 3, 3, 3}, args({2, 1}, {1, 2}, {1, 2}), 3, true, true});
  uint64_t seed = 3000;
  for (const DeformCase& c : cs) {
    Shape os, ms;
    dims_of(c, &os, &ms);
    Inputs in = make_inputs(c, seed, Tensor::zeros(os));
    seed += 10;
    if (c.mask) in.mask = Tensor::ones(ms);
    Tensor x1 = in.x.clone().set_requires_grad(), w1 = in.w.clone().set_requires_grad();
    Tensor b1 = in.b.defined() ? in.b.clone().set_requires_grad() : Tensor();
    Tensor x2 = in.x.clone().set_requires_grad(), w2 = in.w.clone().set_requires_grad();
    Tensor b2 = in.b.defined() ? in.b.clone().set_requires_grad() : Tensor();
    Tensor yd = deform_conv2d(x1, in.off, w1, b1, in.mask, c.a);
    Tensor yc = conv2d(x2, w2, b2, {c.a.stride, c.a.padding, c.a.dilation, c.x[1] / c.w[1]});
    const Tensor dy = random_tensor(yc.shape(), seed);
    yd.backward(dy);
    yc.backward(dy);
    const std::string what = "deform_conv2d(zero offsets)" + shape_str(c.x);
    expect_allclose(yd, yc, what + ".output", 1e-6, 1e-6);
    expect_allclose(x1.grad(), x2.grad(), what + ".grad_input", 1e-6, 1e-6);
    expect_allclose(w1.grad(), w2.grad(), what + ".grad_weight", 1e-6, 1e-6);
    if (b1.defined()) expect_allclose(b1.grad(), b2.grad(), what + ".grad_bias", 1e-6, 1e-6);
  }
}

TEST(DeformConv2d, UnitMaskEqualsV1BitForBit) {
  for (const DeformCase& c : grid()) {
    Shape os, ms;
    dims_of(c, &os, &ms);
    Inputs in = make_inputs(c, 4000, Tensor());
    std::vector<std::vector<float>> res[2];
    for (int v2 = 0; v2 < 2; ++v2) {
      Tensor x = in.x.clone().set_requires_grad(), off = in.off.clone().set_requires_grad();
      Tensor w = in.w.clone().set_requires_grad();
      Tensor y = deform_conv2d(x, off, w, in.b, v2 ? Tensor::ones(ms) : Tensor(), c.a);
      y.backward(random_tensor(y.shape(), 5));
      res[v2] = {y.to_vector(), x.grad().to_vector(), off.grad().to_vector(), w.grad().to_vector()};
    }
    EXPECT_TRUE(res[0] == res[1]) << "v2 with mask 1 differs from v1 for x " << shape_str(c.x);
  }
}

// Only the gradients asked for are computed; each equals the one computed with all of them.
TEST(DeformConv2d, PartialRequiresGradGivesTheSameGradients) {
  const DeformCase c{{2, 4, 6, 6}, {4, 2, 3, 3}, args({1, 1}, {1, 1}, {1, 1}), 2, true, true};
  Inputs in = make_inputs(c, 4100, Tensor());
  auto grads = [&](int which) {  // bit k: x, off, mask, w, b
    Inputs t = in;
    Tensor* ts[5] = {&t.x, &t.off, &t.mask, &t.w, &t.b};
    for (int k = 0; k < 5; ++k) {
      *ts[k] = ts[k]->clone();
      if (which >> k & 1) ts[k]->set_requires_grad();
    }
    Tensor y = run(t, c.a);
    y.backward(random_tensor(y.shape(), 6));
    std::vector<std::vector<float>> g;
    for (int k = 0; k < 5; ++k) g.push_back(which >> k & 1 ? ts[k]->grad().to_vector() : std::vector<float>{});
    return g;
  };
  const auto all = grads(31);
  for (int k = 0; k < 5; ++k) EXPECT_TRUE(grads(1 << k)[k] == all[k]) << "gradient " << k << " alone differs";
  EXPECT_TRUE(grads(2 | 4)[1] == all[1]);
}

TEST(DeformConv2d, OneAndTwoThreadsGiveIdenticalResults) {
  for (const DeformCase& c : {DeformCase{{8, 16, 12, 12}, {16, 16, 3, 3}, args({1, 1}, {1, 1}, {1, 1}), 2, true, true},
                              DeformCase{{3, 8, 10, 9}, {8, 4, 3, 3}, args({2, 1}, {1, 1}, {1, 2}), 1, false, true},
                              DeformCase{{1, 16, 20, 20}, {16, 16, 3, 3}, args({1, 1}, {1, 1}, {1, 1}), 4, true, true}}) {
    std::vector<std::vector<float>> results[2];
    for (int th : {1, 2}) {
      omp_set_num_threads(th);
      Inputs in = make_inputs(c, 5000, Tensor());
      for (Tensor* t : {&in.x, &in.off, &in.mask, &in.w, &in.b})
        if (t->defined()) t->set_requires_grad();
      Tensor y = run(in, c.a);
      y.backward(random_tensor(y.shape(), 7));
      results[th - 1] = {y.to_vector(), in.x.grad().to_vector(), in.off.grad().to_vector(), in.w.grad().to_vector(),
                         in.b.grad().to_vector()};
      if (in.mask.defined()) results[th - 1].push_back(in.mask.grad().to_vector());
    }
    omp_set_num_threads(2);
    EXPECT_TRUE(results[0] == results[1]) << "deform_conv2d differs between 1 and 2 threads for x " << shape_str(c.x);
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

TEST(DeformConv2d, ErrorsNameTheOpArgumentAndShapes) {
  const Tensor x = Tensor::zeros({1, 4, 5, 5}), w = Tensor::zeros({2, 4, 3, 3}), off = Tensor::zeros({1, 18, 3, 3});
  const Tensor none;
  auto call = [&](const Tensor& xx, const Tensor& o, const Tensor& ww, const Tensor& b, const Tensor& m,
                  DeformConv2dArgs a = {}) { deform_conv2d(xx, o, ww, b, m, a); };
  DeformConv2dArgs og2, g2;
  og2.offset_groups = 2;
  g2.groups = 2;
  expect_error([&] { call(x, Tensor::zeros({1, 20, 3, 3}), w, none, none); },
               "deform_conv2d: offset [1,20,3,3] must have a positive multiple of 2*kH*kW = 18 channels");
  expect_error([&] { call(x, Tensor::zeros({1, 18, 3, 4}), w, none, none); },
               "offset [1,18,3,4] must have the output size 3x3");
  expect_error([&] { call(x, Tensor::zeros({2, 18, 3, 3}), w, none, none); }, "offset [2,18,3,3] must have the batch size");
  expect_error([&] { call(x, Tensor::zeros({1, 54, 3, 3}), w, none, none); },
               "offset_groups=3 (offset [1,54,3,3]) does not divide the input channels of input [1,4,5,5]");
  expect_error([&] { call(x, off, w, none, none, og2); }, "offset_groups=2 disagrees with offset");
  expect_error([&] { call(x, off, w, none, Tensor::zeros({1, 18, 3, 3})); }, "mask [1,18,3,3] must be [1,9,3,3]");
  expect_error([&] { call(x, off, w, none, Tensor::zeros({1, 9, 3, 2})); }, "mask [1,9,3,2] must be [1,9,3,3]");
  expect_error([&] { call(x, none, w, none, Tensor::zeros({1, 9, 3, 3})); }, "deform_conv2d: offset is required");
  expect_error([&] { call(x, off, Tensor::zeros({2, 3, 3, 3}), none, none); },
               "weight [2,3,3,3] needs input channels divisible by 3, got input [1,4,5,5]");
  expect_error([&] { call(x, off, Tensor::zeros({3, 2, 3, 3}), none, none); }, "not divisible by groups=2");
  expect_error([&] { call(x, off, w, none, none, g2); }, "groups=2 disagrees with input [1,4,5,5]");
  expect_error([&] { call(x, off, w, Tensor::zeros({3}), none); }, "deform_conv2d: bias [3] must be [2]");
  expect_error([&] { call(x, off, w, none, none, args({0, 1}, {0, 0}, {1, 1})); }, "deform_conv2d: stride must be >= 1");
  expect_error([&] { call(x, off, w, none, none, args({1, 1}, {0, 0}, {1, 0})); }, "deform_conv2d: dilation must be >= 1");
  expect_error([&] { call(x, off, w, none, none, args({1, 1}, {-1, 0}, {1, 1})); }, "deform_conv2d: padding must be >= 0");
  expect_error([&] { call(Tensor::zeros({1, 4, 2, 2}), Tensor::zeros({1, 18, 1, 1}), w, none, none); },
               "larger than the padded input");
  expect_error([&] { call(Tensor::zeros({4, 5, 5}), off, w, none, none); }, "input must be 4-D");
}

}  // namespace
}  // namespace convlab

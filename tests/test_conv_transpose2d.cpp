// tests/test_conv_transpose2d.cpp: conv_transpose2d against the direct scatter-loop reference, gradient
// checks over a grid of stride/padding/output_padding/dilation/groups/non-square shapes, the adjoint
// identity <conv2d(x, w), y> = <x, conv_transpose2d(y, w)>, the spec's worked example, thread-count
// determinism and the error messages.
#include <gtest/gtest.h>
#include <omp.h>

#include <cmath>

#include "core/error.h"
#include "tests/reference.h"
#include "tests/testing.h"

namespace convlab {
namespace {

using testing::expect_allclose;
using testing::random_tensor;

struct TCase {
  Shape x, w;  // x [N, C_in, H_in, W_in], w [C_in, C_out/G, kH, kW]
  ConvTranspose2dArgs a;
  bool bias;
};

std::vector<TCase> grid() {
  std::vector<TCase> cs;
  // stride/padding/dilation per axis (the width axis differs from the height axis), non-square shapes,
  // output_padding at its largest legal value (s-1, or d-1 when the stride is 1).
  for (int64_t s : {1, 2, 3})
    for (int64_t p : {0, 1, 2})
      for (int64_t d : {1, 2}) {
        const int64_t oph = s > 1 ? s - 1 : d - 1, sw = s == 1 ? 2 : 1;
        cs.push_back({{2, 3, 4, 3}, {3, 2, 3, 2}, {{s, sw}, {p, 1}, {oph, sw - 1}, {d, 3 - d}, 1}, p != 1});
      }
  cs.push_back({{2, 4, 5, 5}, {4, 3, 3, 3}, {{1, 1}, {1, 1}, {0, 0}, {1, 1}, 2}, true});   // groups 2, C_out 6
  cs.push_back({{2, 4, 3, 4}, {4, 1, 4, 3}, {{2, 2}, {1, 0}, {1, 1}, {1, 1}, 2}, true});   // groups 2, C_out 2
  cs.push_back({{1, 4, 4, 4}, {4, 1, 3, 3}, {{2, 1}, {1, 1}, {1, 0}, {1, 2}, 4}, false});  // depthwise
  cs.push_back({{2, 6, 3, 3}, {6, 4, 4, 4}, {{2, 2}, {1, 1}, {0, 0}, {1, 1}, 1}, false});  // DCGAN k4 s2 p1
  cs.push_back({{3, 5, 1, 1}, {5, 4, 3, 3}, {}, true});                                     // 1x1 input
  cs.push_back({{3, 4, 1, 1}, {4, 3, 2, 3}, {.groups = 2}, true});                          // 1x1 input, G2
  cs.push_back({{2, 3, 1, 1}, {3, 2, 2, 2}, {{2, 2}, {0, 0}, {1, 1}, {1, 1}, 1}, true});    // 1x1 input, op1
  cs.push_back({{2, 3, 1, 1}, {3, 2, 3, 3}, {{1, 1}, {1, 1}, {0, 0}, {1, 1}, 1}, true});    // 1x1 input, p1
  cs.push_back({{2, 3, 4, 5}, {3, 4, 1, 1}, {}, true});                                     // 1x1 kernel
  cs.push_back({{2, 3, 3, 3}, {3, 2, 1, 1}, {{2, 2}, {0, 0}, {1, 1}, {1, 1}, 1}, true});    // 1x1 kernel, s2
  cs.push_back({{1, 2, 2, 2}, {2, 2, 5, 5}, {{1, 1}, {2, 2}, {0, 0}, {1, 1}, 1}, true});    // output shrinks
  // Batches of images sharing one GEMM (K = C_out/G*kH*kW > H_in*W_in, more images than dW chunks).
  cs.push_back({{9, 4, 3, 2}, {4, 3, 3, 3}, {{2, 2}, {1, 0}, {1, 1}, {1, 1}, 2}, true});
  cs.push_back({{10, 3, 2, 3}, {3, 4, 4, 4}, {{2, 2}, {1, 1}, {0, 0}, {1, 1}, 1}, false});
  cs.push_back({{6, 2, 3, 3}, {2, 2, 3, 2}, {{1, 2}, {2, 0}, {1, 1}, {2, 1}, 1}, true});
  cs.push_back({{5, 3, 6, 6}, {3, 1, 4, 4}, {{2, 2}, {1, 1}, {0, 0}, {1, 1}, 1}, true});  // per image, C_out 1
  return cs;
}

Tensor run(const TCase& c, const Tensor& x, const Tensor& w, const Tensor& b) {
  return conv_transpose2d(x, w, b, c.a);
}

TEST(ConvTranspose2d, MatchesScatterLoopsOnGrid) {
  uint64_t seed = 1;
  for (const TCase& c : grid()) {
    Tensor x = random_tensor(c.x, seed++), w = random_tensor(c.w, seed++);
    Tensor b = c.bias ? random_tensor({c.w[1] * c.a.groups}, seed++) : Tensor();
    expect_allclose(run(c, x, w, b), reference::conv_transpose2d(x, w, b, c.a),
                    "conv_transpose2d.output x" + shape_str(c.x) + " w" + shape_str(c.w), 1e-5, 1e-5);
  }
}

// Regression: a 1x1 kernel with stride 1 took the "GEMM result is the output" shortcut even when
// output_padding (< dilation) makes the output larger than the input, leaving the extra rows unwritten.
TEST(ConvTranspose2d, OneByOneKernelWithOutputPaddingBelowDilation) {
  Tensor x = random_tensor({2, 3, 4, 5}, 11), w = random_tensor({3, 2, 1, 1}, 12), b = random_tensor({2}, 13);
  const ConvTranspose2dArgs a{.output_padding = {1, 1}, .dilation = {2, 2}};
  Tensor y = conv_transpose2d(x, w, b, a);
  EXPECT_EQ(shape_str(y.shape()), "[2,2,5,6]");
  expect_allclose(y, reference::conv_transpose2d(x, w, b, a), "conv_transpose2d(1x1, output_padding 1, dilation 2)",
                  1e-5, 1e-5);
}

TEST(ConvTranspose2d, GradcheckOnGrid) {
  uint64_t seed = 100;
  for (const TCase& c : grid()) {
    const Tensor x = random_tensor(c.x, seed++).set_requires_grad(), w = random_tensor(c.w, seed++).set_requires_grad();
    // Built whole (no push_back onto a braced list: GCC 12 reports a false -Warray-bounds there).
    const std::vector<Tensor> in = c.bias ? std::vector<Tensor>{x, w, random_tensor({c.w[1] * c.a.groups}, seed++).set_requires_grad()}
                                          : std::vector<Tensor>{x, w};
    const ConvTranspose2dArgs a = c.a;
    testing::gradcheck(
        "conv_transpose2d x" + shape_str(c.x) + " w" + shape_str(c.w),
        [a](const std::vector<Tensor>& t) { return conv_transpose2d(t[0], t[1], t.size() > 2 ? t[2] : Tensor(), a); },
        in);
  }
}

// The gradient of each input alone equals its gradient when all inputs require grad (the backward takes a
// different loop structure when only dx is wanted).
TEST(ConvTranspose2d, EachGradientAloneMatches) {
  for (const TCase& c : grid()) {
    Tensor x = random_tensor(c.x, 11), w = random_tensor(c.w, 12), b = random_tensor({c.w[1] * c.a.groups}, 13);
    Tensor go;
    std::vector<Tensor> all;
    for (int which = -1; which < 3; ++which) {
      for (Tensor* t : {&x, &w, &b}) {
        t->zero_grad();
        t->set_requires_grad(which < 0 || t == (which == 0 ? &x : which == 1 ? &w : &b));
      }
      Tensor y = run(c, x, w, b);
      if (!go.defined()) go = random_tensor(y.shape(), 14);
      y.backward(go);
      if (which < 0) all = {x.grad().clone(), w.grad().clone(), b.grad().clone()};
      else expect_allclose((which == 0 ? x : which == 1 ? w : b).grad(), all[which], "alone", 0, 0);
    }
  }
}

// <conv2d(x, w), y> = <x, conv_transpose2d(y, w)>: the same weight tensor read as conv2d's [C_out, C_in/G, ..]
// and as conv_transpose2d's [C_in, C_out/G, ..]; output_padding makes the transposed output x's size.
TEST(ConvTranspose2d, IsTheAdjointOfConv2d) {
  Rng rng(77);
  for (int trial = 0; trial < 40; ++trial) {
    auto pick = [&](int64_t lo, int64_t hi) { return lo + static_cast<int64_t>(rng.next_u64() % (hi - lo + 1)); };
    const int64_t G = pick(1, 3), N = pick(1, 3), A = G * pick(1, 3), B = pick(1, 3);
    Conv2dArgs ca{{pick(1, 3), pick(1, 3)}, {pick(0, 2), pick(0, 2)}, {pick(1, 3), pick(1, 3)}, G};
    const Shape ws = {A, B, pick(1, 4), pick(1, 4)};
    Shape xs = {N, B * G, 0, 0};
    ConvTranspose2dArgs ta{ca.stride, ca.padding, {0, 0}, ca.dilation, G};
    for (int ax = 0; ax < 2; ++ax) {
      const int64_t ek = ca.dilation[ax] * (ws[2 + ax] - 1) + 1;
      xs[2 + ax] = std::max<int64_t>(1, ek - 2 * ca.padding[ax]) + pick(0, 6);
      ta.output_padding[ax] = (xs[2 + ax] + 2 * ca.padding[ax] - ek) % ca.stride[ax];
    }
    Tensor x = random_tensor(xs, 1000 + trial), w = random_tensor(ws, 2000 + trial);
    Tensor cx = conv2d(x, w, Tensor(), ca);
    Tensor y = random_tensor(cx.shape(), 3000 + trial);
    Tensor ty = conv_transpose2d(y, w, Tensor(), ta);
    ASSERT_EQ(shape_str(ty.shape()), shape_str(x.shape())) << "trial " << trial;
    double lhs = 0, rhs = 0, mag = 0;
    for (int64_t i = 0; i < cx.numel(); ++i) lhs += double(cx.data()[i]) * y.data()[i];
    for (int64_t i = 0; i < x.numel(); ++i) {
      rhs += double(x.data()[i]) * ty.data()[i];
      mag += std::fabs(double(x.data()[i]) * ty.data()[i]);
    }
    EXPECT_NEAR(lhs, rhs, 1e-5 * (mag + 1)) << "trial " << trial << " x " << shape_str(xs) << " w " << shape_str(ws);
  }
}

// DCGAN-like shapes at a size where every fast path (1x1 input, batched, per image) runs with several
// blocks and chunks: output against the scatter loops, dx against the direct conv2d loops (dx is conv2d of
// dy), dw against its definition dw[ci, co, kh, kw] = sum x[n, ci, ih, iw] * dy[n, co, ih*s - p + kh*d, ...].
TEST(ConvTranspose2d, FastPathsMatchReferenceOnDcganLikeShapes) {
  for (const TCase& c : {TCase{{12, 20, 1, 1}, {20, 16, 7, 7}, {}, true},
                         TCase{{13, 24, 7, 7}, {24, 8, 4, 4}, {{2, 2}, {1, 1}, {0, 0}, {1, 1}, 1}, true},
                         TCase{{11, 8, 14, 14}, {8, 1, 4, 4}, {{2, 2}, {1, 1}, {0, 0}, {1, 1}, 1}, true}}) {
    Tensor x = random_tensor(c.x, 21).set_requires_grad(), w = random_tensor(c.w, 22).set_requires_grad();
    Tensor b = random_tensor({c.w[1]}, 23).set_requires_grad();
    Tensor y = conv_transpose2d(x, w, b, c.a);
    const std::string at = " x" + shape_str(c.x) + " w" + shape_str(c.w);
    expect_allclose(y, reference::conv_transpose2d(x, w, b, c.a), "conv_transpose2d.output" + at, 1e-5, 1e-5);
    Tensor dy = random_tensor(y.shape(), 24);
    y.backward(dy);
    const Conv2dArgs ca{c.a.stride, c.a.padding, c.a.dilation, c.a.groups};
    expect_allclose(x.grad(), reference::conv2d(dy, w, Tensor(), ca), "conv_transpose2d.grad_input" + at, 1e-5, 1e-5);
    const int64_t N = c.x[0], Ci = c.x[1], Hi = c.x[2], Wi = c.x[3], Co = c.w[1], kH = c.w[2], kW = c.w[3];
    const int64_t Ho = y.size(2), Wo = y.size(3);
    Tensor dw = Tensor::zeros(c.w);
    for (int64_t ci = 0; ci < Ci; ++ci)
      for (int64_t co = 0; co < Co; ++co)
        for (int64_t kh = 0; kh < kH; ++kh)
          for (int64_t kw = 0; kw < kW; ++kw) {
            double s = 0;
            for (int64_t n = 0; n < N; ++n)
              for (int64_t ih = 0; ih < Hi; ++ih)
                for (int64_t iw = 0; iw < Wi; ++iw) {
                  const int64_t oh = ih * c.a.stride[0] - c.a.padding[0] + kh;
                  const int64_t ow = iw * c.a.stride[1] - c.a.padding[1] + kw;
                  if (oh < 0 || oh >= Ho || ow < 0 || ow >= Wo) continue;
                  s += double(x.data()[((n * Ci + ci) * Hi + ih) * Wi + iw]) *
                       dy.data()[((n * Co + co) * Ho + oh) * Wo + ow];
                }
            dw.data()[((ci * Co + co) * kH + kh) * kW + kw] = static_cast<float>(s);
          }
    expect_allclose(w.grad(), dw, "conv_transpose2d.grad_weight" + at, 1e-5, 1e-5);
  }
}

TEST(ConvTranspose2d, WorkedExampleOfTheSpec) {
  Tensor y = Tensor::from({1, 1, 2, 2}, {122, 148, 126, 134});
  Tensor w = Tensor::from({1, 1, 3, 3}, {1, 4, 1, 1, 4, 3, 3, 3, 1});
  EXPECT_EQ(conv_transpose2d(y, w, Tensor()).to_vector(),
            (std::vector<float>{122, 636, 714, 148, 248, 1274, 1620, 578, 492, 1448, 1480, 550, 378, 780, 528, 134}));
}

TEST(ConvTranspose2d, OneAndTwoThreadsGiveIdenticalResults) {
  for (const TCase& c : {TCase{{16, 100, 1, 1}, {100, 32, 7, 7}, {}, true},
                         TCase{{16, 32, 7, 7}, {32, 16, 4, 4}, {{2, 2}, {1, 1}, {0, 0}, {1, 1}, 1}, true},
                         TCase{{9, 16, 14, 14}, {16, 1, 4, 4}, {{2, 2}, {1, 1}, {0, 0}, {1, 1}, 1}, true},
                         TCase{{1, 16, 20, 20}, {16, 8, 3, 3}, {{1, 1}, {1, 1}, {0, 0}, {1, 1}, 1}, true},
                         TCase{{5, 8, 9, 9}, {8, 6, 3, 3}, {{2, 2}, {0, 0}, {1, 1}, {1, 1}, 2}, true}}) {
    std::vector<std::vector<float>> results[2];
    for (int t : {1, 2}) {
      omp_set_num_threads(t);
      Tensor x = random_tensor(c.x, 1).set_requires_grad(), w = random_tensor(c.w, 2).set_requires_grad();
      Tensor b = random_tensor({c.w[1] * c.a.groups}, 3).set_requires_grad();
      Tensor y = conv_transpose2d(x, w, b, c.a);
      y.backward(random_tensor(y.shape(), 4));
      results[t - 1] = {y.to_vector(), x.grad().to_vector(), w.grad().to_vector(), b.grad().to_vector()};
    }
    omp_set_num_threads(2);
    EXPECT_TRUE(results[0] == results[1]) << "conv_transpose2d differs between 1 and 2 threads for x "
                                          << shape_str(c.x) << " w " << shape_str(c.w);
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

TEST(ConvTranspose2d, ErrorsNameTheOpArgumentAndShapes) {
  const Tensor x = Tensor::zeros({1, 4, 3, 3}), w = Tensor::zeros({4, 2, 3, 3});
  auto ct = [&](const Tensor& xx, const Tensor& ww, const Tensor& bb, ConvTranspose2dArgs a) {
    return [=] { conv_transpose2d(xx, ww, bb, a); };
  };
  expect_error(ct(Tensor::zeros({1, 3, 3, 3}), w, Tensor(), {}),
               "conv_transpose2d: weight [4,2,3,3] expects input with 4 channels (weight dim 0 is C_in), got "
               "input [1,3,3,3]");
  expect_error(ct(x, w, Tensor(), {.groups = 3}), "input channels 4 not divisible by groups=3");
  expect_error(ct(x, w, Tensor::zeros({2}), {.groups = 2}), "bias [2] must be [4]");
  expect_error(ct(x, w, Tensor(), {.stride = {2, 2}, .output_padding = {2, 0}}),
               "output padding must be smaller than either stride or dilation");
  expect_error(ct(x, w, Tensor(), {.stride = {2, 1}, .output_padding = {1, 1}}),
               "width: 1 >= stride 1 and >= dilation 1");
  expect_error(ct(x, w, Tensor(), {.output_padding = {-1, 0}}), "output_padding must be >= 0");
  expect_error(ct(x, w, Tensor(), {.stride = {0, 1}}), "stride must be >= 1");
  expect_error(ct(x, w, Tensor(), {.padding = {0, -1}}), "padding must be >= 0");
  expect_error(ct(x, w, Tensor(), {.dilation = {1, 0}}), "dilation must be >= 1");
  expect_error(ct(x, w, Tensor(), {.groups = 0}), "groups must be >= 1");
  expect_error(ct(Tensor::zeros({3, 3, 3}), w, Tensor(), {}), "input must be 4-D");
  expect_error(ct(x, Tensor::zeros({4, 2, 3}), Tensor(), {}), "weight must be 4-D");
  expect_error(ct(Tensor::zeros({1, 1, 2, 2}), Tensor::zeros({1, 1, 1, 1}), Tensor(), {.padding = {1, 1}}),
               "output height would be (in-1)*stride - 2*padding + dilation*(k-1) + output_padding + 1 = "
               "(2-1)*1 - 2*1 + 1*(1-1) + 0 + 1 = 0, must be >= 1");
}

}  // namespace
}  // namespace convlab

// tests/test_separable.cpp: depthwise_separable_conv2d against the direct-loop conv2d reference composed by
// hand (depthwise, then 1x1), gradient checks of all five inputs over multipliers / stride / padding /
// dilation / bias combinations, thread-count determinism and the error messages.
// (PyTorch goldens: tests/golden/*dws*, run by test_golden.cpp.)
#include <gtest/gtest.h>
#include <omp.h>

#include "core/error.h"
#include "tests/reference.h"
#include "tests/testing.h"

namespace convlab {
namespace {

using testing::expect_allclose;
using testing::random_tensor;

struct SepCase {
  Shape x;
  int64_t mult, C_out;
  Pair k;
  Conv2dArgs a;
  bool dw_bias, pw_bias;
};

std::vector<SepCase> grid() {
  return {
      {{2, 3, 6, 5}, 1, 4, {3, 3}, {{1, 1}, {1, 1}, {1, 1}, 1}, true, true},
      {{1, 2, 7, 6}, 2, 3, {3, 3}, {{2, 2}, {1, 1}, {1, 1}, 1}, false, true},
      {{1, 2, 7, 7}, 3, 2, {3, 2}, {{1, 2}, {2, 1}, {2, 1}, 1}, true, false},
      {{2, 4, 5, 5}, 1, 2, {1, 3}, {{1, 1}, {0, 1}, {1, 1}, 1}, false, false},
      {{1, 1, 5, 6}, 2, 3, {3, 3}, {{1, 1}, {1, 1}, {1, 1}, 1}, true, true},  // C_in = 1: groups = 1 path
      {{1, 3, 6, 6}, 1, 5, {3, 3}, {{2, 1}, {2, 2}, {2, 2}, 1}, true, true},
  };
}

struct SepTensors {
  Tensor x, dw, dwb, pw, pwb;
};

SepTensors make(const SepCase& c, uint64_t seed, bool grad) {
  const int64_t C_mid = c.x[1] * c.mult;
  auto r = [&](const Shape& s, uint64_t k) { return random_tensor(s, seed + k).set_requires_grad(grad); };
  return {r(c.x, 0), r({C_mid, 1, c.k[0], c.k[1]}, 1), c.dw_bias ? r({C_mid}, 2) : Tensor(),
          r({c.C_out, C_mid, 1, 1}, 3), c.pw_bias ? r({c.C_out}, 4) : Tensor()};
}

TEST(Separable, MatchesDepthwiseThenPointwiseDirectLoops) {
  uint64_t seed = 1;
  for (const SepCase& c : grid()) {
    const SepTensors t = make(c, seed += 10, false);
    Conv2dArgs da = c.a;
    da.groups = c.x[1];
    const Tensor want = reference::conv2d(reference::conv2d(t.x, t.dw, t.dwb, da), t.pw, t.pwb, Conv2dArgs{});
    expect_allclose(depthwise_separable_conv2d(t.x, t.dw, t.dwb, t.pw, t.pwb, c.a), want,
                    "depthwise_separable_conv2d.output x" + shape_str(c.x), 1e-5, 1e-5);
  }
}

TEST(Separable, GradcheckOnGrid) {
  uint64_t seed = 100;
  for (const SepCase& c : grid()) {
    const SepTensors t = make(c, seed += 10, true);
    const Conv2dArgs a = c.a;
    const bool dwb = c.dw_bias, pwb = c.pw_bias;
    // gradcheck takes defined tensors only: pass [x, dw, (dwb), pw, (pwb)] and map them back
    std::vector<Tensor> in = {t.x, t.dw};
    if (dwb) in.push_back(t.dwb);
    in.push_back(t.pw);
    if (pwb) in.push_back(t.pwb);
    testing::gradcheck(
        "depthwise_separable_conv2d",
        [a, dwb, pwb](const std::vector<Tensor>& v) {
          size_t i = 2;
          const Tensor db = dwb ? v[i++] : Tensor();
          const Tensor pw = v[i++];
          const Tensor pb = pwb ? v[i++] : Tensor();
          return depthwise_separable_conv2d(v[0], v[1], db, pw, pb, a);
        },
        in);
  }
}

TEST(Separable, OneAndTwoThreadsGiveIdenticalResults) {
  const SepCase c{{4, 16, 24, 24}, 2, 24, {3, 3}, {{1, 1}, {1, 1}, {1, 1}, 1}, true, true};
  std::vector<std::vector<float>> results[2];
  for (int th : {1, 2}) {
    omp_set_num_threads(th);
    const SepTensors t = make(c, 7, true);
    Tensor y = depthwise_separable_conv2d(t.x, t.dw, t.dwb, t.pw, t.pwb, c.a);
    y.backward(random_tensor(y.shape(), 99));
    results[th - 1] = {y.to_vector(),         t.x.grad().to_vector(),  t.dw.grad().to_vector(),
                       t.dwb.grad().to_vector(), t.pw.grad().to_vector(), t.pwb.grad().to_vector()};
  }
  omp_set_num_threads(2);
  EXPECT_TRUE(results[0] == results[1]) << "depthwise_separable_conv2d differs between 1 and 2 threads";
}

void expect_error(const std::function<void()>& f, const std::string& fragment) {
  try {
    f();
    ADD_FAILURE() << "expected an error containing '" << fragment << "'";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(fragment), std::string::npos) << e.what();
  }
}

TEST(Separable, ErrorsNameTheTensorAndShapes) {
  const Tensor x = Tensor::zeros({1, 2, 6, 6});
  const Tensor dw = Tensor::zeros({4, 1, 3, 3}), pw = Tensor::zeros({3, 4, 1, 1});
  const Tensor none;
  const Conv2dArgs p1{.padding = {1, 1}};
  auto run = [&](const Tensor& a, const Tensor& b, const Tensor& c, const Tensor& d, const Tensor& e,
                 const Conv2dArgs& args) { return depthwise_separable_conv2d(a, b, c, d, e, args); };
  EXPECT_EQ(run(x, dw, none, pw, none, p1).shape(), (Shape{1, 3, 6, 6}));
  expect_error([&] { run(x, Tensor::zeros({4, 2, 3, 3}), none, pw, none, p1); },
               "depthwise_weight [4,2,3,3] must have 1 channel per group in dim 1");
  expect_error([&] { run(x, Tensor::zeros({3, 1, 3, 3}), none, pw, none, p1); },
               "depthwise_weight [3,1,3,3] has 3 output channels, expected a multiple of C_in=2");
  expect_error([&] { run(x, dw, none, Tensor::zeros({3, 2, 1, 1}), none, p1); },
               "pointwise_weight [3,2,1,1], expected [3,4,1,1]");
  expect_error([&] { run(x, dw, none, Tensor::zeros({3, 4, 3, 3}), none, p1); },
               "pointwise_weight [3,4,3,3], expected [3,4,1,1]");
  expect_error([&] { run(x, dw, Tensor::zeros({2}), pw, none, p1); }, "depthwise_bias [2] must be [4]");
  expect_error([&] { run(x, dw, none, pw, Tensor::zeros({4}), p1); }, "pointwise_bias [4] must be [3]");
  expect_error([&] { run(x, dw, none, pw, none, {.groups = 2}); }, "groups must be 1");
  expect_error([&] { run(x, dw, none, pw, none, {.stride = {0, 1}}); },
               "depthwise_separable_conv2d: stride must be >= 1");
  expect_error([&] { run(Tensor::zeros({1, 2, 1, 1}), dw, none, pw, none, {}); },
               "depthwise_separable_conv2d: kernel 3x3 (dilated) is larger than the padded input");
  expect_error([&] { run(Tensor::zeros({2, 6, 6}), dw, none, pw, none, p1); }, "input must be 4-D");
}

}  // namespace
}  // namespace convlab

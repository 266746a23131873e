// tests/test_conv2d.cpp: conv2d against the direct-loop reference, gradient checks over a grid of
// stride/padding/dilation/groups/non-square kernels, the spec's worked example, thread-count determinism
// and the error messages.
#include <gtest/gtest.h>
#include <omp.h>

#include "core/error.h"
#include "tests/reference.h"
#include "tests/testing.h"

namespace convlab {
namespace {

using testing::expect_allclose;
using testing::random_tensor;

struct ConvCase {
  Shape x, w;
  Conv2dArgs a;
  bool bias;
};

std::vector<ConvCase> grid() {
  std::vector<ConvCase> cs;
  // stride/padding/dilation per axis, non-square kernels and inputs
  for (int64_t s : {1, 2})
    for (int64_t p : {0, 1, 2})
      for (int64_t d : {1, 2})
        cs.push_back({{2, 3, 7, 6}, {4, 3, 3, 2}, {{s, 1 + (s == 2)}, {p, 1}, {d, 1 + (d == 1)}, 1}, p != 1});
  cs.push_back({{2, 4, 6, 6}, {6, 2, 3, 3}, {{1, 1}, {1, 1}, {1, 1}, 2}, true});     // groups 2
  cs.push_back({{1, 8, 5, 7}, {8, 2, 3, 1}, {{2, 1}, {1, 0}, {1, 1}, 4}, true});     // groups 4
  cs.push_back({{2, 4, 6, 6}, {4, 1, 3, 3}, {{1, 1}, {1, 1}, {1, 1}, 4}, true});     // depthwise
  cs.push_back({{2, 3, 6, 5}, {6, 1, 3, 3}, {{2, 2}, {2, 1}, {2, 1}, 3}, false});    // depthwise x2
  cs.push_back({{3, 5, 4, 4}, {2, 5, 1, 1}, {{1, 1}, {0, 0}, {1, 1}, 1}, true});     // 1x1
  cs.push_back({{1, 2, 5, 5}, {3, 2, 5, 5}, {{1, 1}, {0, 0}, {1, 1}, 1}, true});     // kernel == input
  cs.push_back({{1, 2, 4, 4}, {2, 2, 3, 3}, {{3, 3}, {3, 3}, {3, 3}, 1}, true});     // large padding
  return cs;
}

TEST(Conv2d, MatchesDirectLoopsOnGrid) {
  uint64_t seed = 1;
  for (const ConvCase& c : grid()) {
    Tensor x = random_tensor(c.x, seed++), w = random_tensor(c.w, seed++);
    Tensor b = c.bias ? random_tensor({c.w[0]}, seed++) : Tensor();
    expect_allclose(conv2d(x, w, b, c.a), reference::conv2d(x, w, b, c.a), "conv2d.output", 1e-5, 1e-5);
  }
}

TEST(Conv2d, GradcheckOnGrid) {
  uint64_t seed = 100;
  for (const ConvCase& c : grid()) {
    std::vector<Tensor> in = {random_tensor(c.x, seed++).set_requires_grad(),
                              random_tensor(c.w, seed++).set_requires_grad()};
    if (c.bias) in.push_back(random_tensor({c.w[0]}, seed++).set_requires_grad());
    const Conv2dArgs a = c.a;
    testing::gradcheck(
        "conv2d", [a](const std::vector<Tensor>& t) { return conv2d(t[0], t[1], t.size() > 2 ? t[2] : Tensor(), a); },
        in);
  }
}

TEST(Conv2d, WorkedExampleOfTheSpec) {
  Tensor x = Tensor::from({1, 1, 4, 4}, {4, 5, 8, 7, 1, 8, 8, 8, 3, 6, 6, 4, 6, 5, 7, 8}).set_requires_grad();
  Tensor w = Tensor::from({1, 1, 3, 3}, {1, 4, 1, 1, 4, 3, 3, 3, 1});
  Tensor y = conv2d(x, w, Tensor());
  EXPECT_EQ(y.to_vector(), (std::vector<float>{122, 148, 126, 134}));
  // Backpropagating y itself through conv2d is C^T y: the spec's conv_transpose2d numbers.
  y.backward(y.detach());
  EXPECT_EQ(x.grad().to_vector(), (std::vector<float>{122, 636, 714, 148, 248, 1274, 1620, 578, 492, 1448, 1480,
                                                     550, 378, 780, 528, 134}));
}

TEST(Conv2d, GradientsAccumulateWhenInputIsUsedTwice) {
  Tensor x = random_tensor({1, 2, 5, 5}, 7).set_requires_grad();
  Tensor w = random_tensor({3, 2, 3, 3}, 8);
  Tensor y = add(conv2d(x, w, Tensor()), conv2d(x, w, Tensor()));
  sum(y).backward();
  Tensor once = x.grad().clone();
  x.zero_grad();
  sum(conv2d(x, w, Tensor())).backward();
  expect_allclose(once, mul_scalar(x.grad(), 2.f), "conv2d.grad_input(used twice)", 1e-6);
}

TEST(Conv2d, OneAndTwoThreadsGiveIdenticalResults) {
  for (const ConvCase& c : {ConvCase{{8, 16, 20, 20}, {16, 16, 3, 3}, {{1, 1}, {2, 2}, {2, 2}, 1}, true},
                            ConvCase{{8, 16, 20, 20}, {32, 1, 3, 3}, {{1, 1}, {1, 1}, {1, 1}, 16}, true},
                            ConvCase{{1, 16, 40, 40}, {16, 16, 3, 3}, {{1, 1}, {1, 1}, {1, 1}, 1}, true}}) {
    std::vector<std::vector<float>> results[2];
    for (int t : {1, 2}) {
      omp_set_num_threads(t);
      Tensor x = random_tensor(c.x, 1).set_requires_grad(), w = random_tensor(c.w, 2).set_requires_grad();
      Tensor b = random_tensor({c.w[0]}, 3).set_requires_grad();
      Tensor y = conv2d(x, w, b, c.a);
      y.backward(random_tensor(y.shape(), 4));
      results[t - 1] = {y.to_vector(), x.grad().to_vector(), w.grad().to_vector(), b.grad().to_vector()};
    }
    omp_set_num_threads(2);
    EXPECT_TRUE(results[0] == results[1]) << "conv2d differs between 1 and 2 threads for x "
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

TEST(Conv2d, ErrorsNameTheOpArgumentAndShapes) {
  Tensor x = Tensor::zeros({2, 4, 16, 16}), w = Tensor::zeros({8, 3, 3, 3});
  expect_error([&] { conv2d(x, w, Tensor()); },
               "conv2d: weight [8,3,3,3] expects input with 3 channels (groups=1), got input [2,4,16,16]");
  expect_error([&] { conv2d(Tensor::zeros({1, 4, 5, 5}), Tensor::zeros({6, 2, 3, 3}), Tensor(), {.groups = 4}); },
               "not divisible by groups=4");
  expect_error([&] { conv2d(Tensor::zeros({1, 3, 5, 5}), w, Tensor::zeros({7})); }, "bias [7] must be [8]");
  expect_error([&] { conv2d(Tensor::zeros({1, 3, 2, 2}), w, Tensor()); }, "larger than the padded input");
  expect_error([&] { conv2d(Tensor::zeros({1, 3, 5, 5}), w, Tensor(), {.stride = {0, 1}}); }, "stride must be >= 1");
  expect_error([&] { conv2d(Tensor::zeros({1, 3, 5, 5}), w, Tensor(), {.padding = {0, -1}}); }, "padding must be >= 0");
  expect_error([&] { conv2d(Tensor::zeros({1, 3, 5, 5}), w, Tensor(), {.dilation = {0, 1}}); }, "dilation must be >= 1");
  expect_error([&] { conv2d(Tensor::zeros({3, 5, 5}), w, Tensor()); }, "input must be 4-D");
}

}  // namespace
}  // namespace convlab

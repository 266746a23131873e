// tests/test_autograd.cpp: the tape (topological order, accumulation, graph freeing, no-grad) and a
// finite-difference check of every non-conv op in core/ops.h, broadcasting included.
#include <gtest/gtest.h>

#include <cmath>
#include <map>

#include "core/error.h"
#include "tests/testing.h"

namespace convlab {
namespace {

using testing::gradcheck;
using testing::random_tensor;
using Fn = std::function<Tensor(const std::vector<Tensor>&)>;

Tensor leaf(const Shape& s, uint64_t seed, float lo = -1.f, float hi = 1.f) {
  return random_tensor(s, seed, lo, hi).set_requires_grad();
}

// One row per op: the function and its inputs. Positive inputs where the op needs them.
std::map<std::string, std::pair<Fn, std::vector<Tensor>>> op_table() {
  std::map<std::string, std::pair<Fn, std::vector<Tensor>>> t;
  auto bin = [](Tensor (*f)(const Tensor&, const Tensor&)) {
    return Fn([f](const std::vector<Tensor>& v) { return f(v[0], v[1]); });
  };
  t["add"] = {bin(add), {leaf({2, 3, 4}, 1), leaf({3, 1}, 2)}};
  t["sub"] = {bin(sub), {leaf({2, 1, 4}, 3), leaf({3, 4}, 4)}};
  t["mul"] = {bin(mul), {leaf({2, 3, 4}, 5), leaf({4}, 6)}};
  t["div"] = {bin(div), {leaf({2, 3}, 7), leaf({2, 1}, 8, 0.5f, 2.f)}};
  t["add_scalar"] = {[](const std::vector<Tensor>& v) { return add_scalar(v[0], 0.5f); }, {leaf({5}, 9)}};
  t["mul_scalar"] = {[](const std::vector<Tensor>& v) { return mul_scalar(v[0], -3.f); }, {leaf({5}, 10)}};
  t["neg"] = {[](const std::vector<Tensor>& v) { return neg(v[0]); }, {leaf({5}, 11)}};
  t["exp"] = {[](const std::vector<Tensor>& v) { return exp(v[0]); }, {leaf({6}, 12)}};
  t["log"] = {[](const std::vector<Tensor>& v) { return log(v[0]); }, {leaf({6}, 13, 0.5f, 2.f)}};
  t["sqrt"] = {[](const std::vector<Tensor>& v) { return sqrt(v[0]); }, {leaf({6}, 14, 0.5f, 2.f)}};
  t["square"] = {[](const std::vector<Tensor>& v) { return square(v[0]); }, {leaf({6}, 15)}};
  // Kinked ops: inputs kept away from 0 so the finite difference does not straddle the kink.
  t["relu"] = {[](const std::vector<Tensor>& v) { return relu(v[0]); },
               {Tensor::from({4}, {-0.7f, 0.3f, 0.9f, -0.2f}).set_requires_grad()}};
  t["leaky_relu"] = {[](const std::vector<Tensor>& v) { return leaky_relu(v[0], 0.2f); },
                     {Tensor::from({4}, {-0.7f, 0.3f, 0.9f, -0.2f}).set_requires_grad()}};
  t["sigmoid"] = {[](const std::vector<Tensor>& v) { return sigmoid(v[0]); }, {leaf({6}, 16)}};
  t["tanh"] = {[](const std::vector<Tensor>& v) { return tanh(v[0]); }, {leaf({6}, 17)}};
  t["sum"] = {[](const std::vector<Tensor>& v) { return sum(v[0]); }, {leaf({2, 3}, 18)}};
  t["mean"] = {[](const std::vector<Tensor>& v) { return mean(v[0]); }, {leaf({2, 3}, 19)}};
  t["sum_axes"] = {[](const std::vector<Tensor>& v) { return sum(v[0], {0, 2}); }, {leaf({2, 3, 4}, 20)}};
  t["mean_axes"] = {[](const std::vector<Tensor>& v) { return mean(v[0], {-1}, true); }, {leaf({2, 3, 4}, 21)}};
  t["reshape"] = {[](const std::vector<Tensor>& v) { return reshape(v[0], {3, -1}); }, {leaf({2, 3, 2}, 22)}};
  t["flatten"] = {[](const std::vector<Tensor>& v) { return flatten(v[0]); }, {leaf({2, 3, 2}, 23)}};
  t["permute"] = {[](const std::vector<Tensor>& v) { return permute(v[0], {2, 0, 1}); }, {leaf({2, 3, 4}, 24)}};
  t["concat"] = {[](const std::vector<Tensor>& v) { return concat({v[0], v[1]}, 1); },
                 {leaf({2, 3, 2}, 25), leaf({2, 1, 2}, 26)}};
  t["slice"] = {[](const std::vector<Tensor>& v) { return slice(v[0], 1, 1, 3); }, {leaf({2, 4, 2}, 27)}};
  t["matmul"] = {bin(matmul), {leaf({3, 4}, 28), leaf({4, 5}, 29)}};
  t["linear"] = {[](const std::vector<Tensor>& v) { return linear(v[0], v[1], v[2]); },
                 {leaf({3, 4}, 30), leaf({5, 4}, 31), leaf({5}, 32)}};
  return t;
}

TEST(Autograd, EveryElementaryOpPassesGradcheck) {
  testing::GradcheckOptions opt;
  opt.eps = 1e-3;
  for (auto& [name, row] : op_table()) {
    SCOPED_TRACE(name);
    gradcheck(name, row.first, row.second, opt);
  }
}

TEST(Autograd, SharedSubgraphAccumulates) {
  // y = (x*x) + (x*x) reusing one node: dy/dx = 4x.
  Tensor x = Tensor::from({3}, {1.f, -2.f, 0.5f}).set_requires_grad();
  Tensor sq = mul(x, x);
  sum(add(sq, sq)).backward();
  EXPECT_EQ(x.grad().to_vector(), (std::vector<float>{4.f, -8.f, 2.f}));
}

TEST(Autograd, GradientsAccumulateAcrossBackwardCalls) {
  Tensor x = Tensor::from({2}, {1.f, 2.f}).set_requires_grad();
  sum(mul_scalar(x, 3.f)).backward();
  sum(mul_scalar(x, 3.f)).backward();
  EXPECT_EQ(x.grad().to_vector(), (std::vector<float>{6.f, 6.f}));
  x.zero_grad();
  EXPECT_FALSE(x.grad().defined());
}

TEST(Autograd, GraphIsFreedUnlessKept) {
  Tensor x = Tensor::from({2}, {1.f, 2.f}).set_requires_grad();
  Tensor y = sum(square(x));
  y.backward(Tensor(), /*keep_graph=*/true);
  EXPECT_TRUE(y.grad_fn() != nullptr);
  y.backward();
  EXPECT_EQ(x.grad().to_vector(), (std::vector<float>{4.f, 8.f}));
  EXPECT_TRUE(y.grad_fn() == nullptr);
  EXPECT_THROW(y.backward(), Error);  // the graph is gone: y is now a leaf without requires_grad history
}

TEST(Autograd, NoGradGuardRecordsNothing) {
  Tensor x = Tensor::from({2}, {1.f, 2.f}).set_requires_grad();
  NoGradGuard ng;
  Tensor y = mul(x, x);
  EXPECT_FALSE(y.requires_grad());
  EXPECT_TRUE(y.grad_fn() == nullptr);
}

TEST(Autograd, DeepChainDoesNotOverflowTheStack) {
  Tensor x = Tensor::from({1}, {0.5f}).set_requires_grad();
  Tensor y = x;
  for (int i = 0; i < 20000; ++i) y = add_scalar(y, 0.f);
  y.backward();
  EXPECT_EQ(x.grad().item(), 1.f);
}

TEST(Tensor, ReshapeIsAViewAndSliceCopies) {
  Tensor a = Tensor::from({2, 3}, {0, 1, 2, 3, 4, 5});
  Tensor r = reshape(a, {3, 2});
  r.data()[0] = 42.f;
  EXPECT_EQ(a.data()[0], 42.f);
  Tensor s = slice(a, 1, 1, 3);
  EXPECT_EQ(s.to_vector(), (std::vector<float>{1, 2, 4, 5}));
  EXPECT_EQ(permute(a, {1, 0}).to_vector(), (std::vector<float>{42, 3, 1, 4, 2, 5}));
}

TEST(Tensor, BroadcastErrorsNameBothShapes) {
  try {
    add(Tensor::zeros({2, 3}), Tensor::zeros({4}));
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(), "add: shapes [2,3] and [4] do not broadcast");
  }
}

TEST(Random, SeededAndInRange) {
  Rng a(5), b(5);
  for (int i = 0; i < 1000; ++i) {
    const float u = a.uniform(-1.f, 1.f);
    EXPECT_EQ(u, b.uniform(-1.f, 1.f));
    EXPECT_GE(u, -1.f);
    EXPECT_LT(u, 1.f);
  }
  Tensor w = Tensor::empty({64, 32, 3, 3});
  kaiming_uniform(w, a, std::sqrt(5.f));  // PyTorch's conv default: bound 1/sqrt(fan_in)
  const float bound = 1.f / std::sqrt(32.f * 9.f);
  double s2 = 0;
  for (float v : w.to_vector()) {
    EXPECT_LE(std::fabs(v), bound);
    s2 += double(v) * v;
  }
  EXPECT_NEAR(std::sqrt(s2 / w.numel()), bound / std::sqrt(3.f), 0.05 * bound);
}

}  // namespace
}  // namespace convlab

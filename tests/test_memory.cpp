// tests/test_memory.cpp: what the autograd graph keeps alive (issue 12, item 5), counted with
// Storage::live_bytes(), and the bit-identity of the backward passes changed for it (ReLU and leaky ReLU read
// their output instead of their input).
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "core/batch_norm.h"
#include "core/ops.h"
#include "tests/testing.h"

namespace convlab {
namespace {

using testing::random_tensor;

// Inputs that probe the mask: both zeros, NaN, infinities, denormals, values next to 0, then random values.
Tensor kink_inputs(int64_t n, uint64_t seed) {
  Tensor x = random_tensor({n}, seed, -2.f, 2.f);
  const float special[] = {0.f, -0.f, std::numeric_limits<float>::quiet_NaN(), std::numeric_limits<float>::infinity(),
                           -std::numeric_limits<float>::infinity(), std::numeric_limits<float>::denorm_min(),
                           -std::numeric_limits<float>::denorm_min(), std::numeric_limits<float>::min(),
                           -std::numeric_limits<float>::min(), 1e-30f, -1e-30f, 1.f, -1.f};
  for (size_t i = 0; i < sizeof(special) / sizeof(float); ++i) x.data()[i * 7] = special[i];
  return x;
}

// dx = g * (x > 0 ? 1 : slope): the derivative read from the input, as before the change.
std::vector<float> mask_from_input(const Tensor& x, const Tensor& g, float slope) {
  std::vector<float> r(static_cast<size_t>(x.numel()));
  for (int64_t i = 0; i < x.numel(); ++i) r[i] = 0.f + g.data()[i] * (x.data()[i] > 0.f ? 1.f : slope);
  return r;
}

void expect_same_bits(const std::vector<float>& got, const std::vector<float>& want, const std::string& what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  for (size_t i = 0; i < got.size(); ++i) {
    uint32_t a, b;
    std::memcpy(&a, &got[i], 4);
    std::memcpy(&b, &want[i], 4);
    ASSERT_EQ(a, b) << what << " element " << i << ": " << got[i] << " against " << want[i];
  }
}

// Small (serial) and large (parallel, >= 2^16 elements) tensors.
TEST(Memory, ReluBackwardFromItsOutputIsBitIdentical) {
  for (int64_t n : {int64_t(1000), int64_t(1) << 17}) {
    Tensor x = kink_inputs(n, 1).set_requires_grad();
    const Tensor g = random_tensor({n}, 2, -3.f, 3.f);
    relu(x).backward(g);
    expect_same_bits(x.grad().to_vector(), mask_from_input(x, g, 0.f), "relu n=" + std::to_string(n));
  }
}

TEST(Memory, LeakyReluBackwardFromItsOutputIsBitIdentical) {
  // slope >= 0 reads the output; a negative slope still reads the input (y > 0 no longer marks x > 0).
  for (float slope : {0.2f, 0.f, 1e-30f, -0.5f})
    for (int64_t n : {int64_t(1000), int64_t(1) << 17}) {
      Tensor x = kink_inputs(n, 3).set_requires_grad();
      const Tensor g = random_tensor({n}, 4, -3.f, 3.f);
      leaky_relu(x, slope).backward(g);
      expect_same_bits(x.grad().to_vector(), mask_from_input(x, g, slope),
                       "leaky_relu slope=" + std::to_string(slope) + " n=" + std::to_string(n));
    }
}

struct ConvBnRelu {
  Tensor x, w, b, gamma, beta;
  Tensor forward() const {
    return relu(batch_norm2d(conv2d(x, w, b, {{1, 1}, {1, 1}, {1, 1}, 1}), gamma, beta, Tensor(), Tensor(), true,
                             0.1f, 1e-5f));
  }
};

ConvBnRelu conv_bn_relu(bool input_requires_grad) {
  ConvBnRelu m;
  m.x = random_tensor({2, 8, 16, 16}, 5).set_requires_grad(input_requires_grad);
  m.w = random_tensor({8, 8, 3, 3}, 6).set_requires_grad();
  m.b = random_tensor({8}, 7).set_requires_grad();
  m.gamma = random_tensor({8}, 8, 0.5f, 1.5f).set_requires_grad();
  m.beta = random_tensor({8}, 9).set_requires_grad();
  return m;
}

// conv + BN + ReLU keeps two activations, as PyTorch does: BN's input (the conv output, BN's backward reads
// it) and ReLU's output (which the caller holds, and the next conv would keep anyway). BN's output is freed
// once ReLU has run. Then backward frees the conv output and leaves only the gradients.
TEST(Memory, ConvBnReluGraphKeepsTwoActivations) {
  for (bool input_grad : {false, true}) {
    ConvBnRelu m = conv_bn_relu(input_grad);
    const int64_t act = m.x.numel() * int64_t(sizeof(float));  // every activation is [2, 8, 16, 16]
    const Tensor go = random_tensor(m.x.shape(), 10);
    m.forward().backward(go);  // warm-up: grows the conv workspaces and creates the gradient buffers
    for (Tensor* p : {&m.x, &m.w, &m.b, &m.gamma, &m.beta}) p->zero_grad();
    const int64_t base = Storage::live_bytes();
    Tensor y = m.forward();
    EXPECT_EQ(Storage::live_bytes() - base, 2 * act) << "input_grad " << input_grad
                                                     << ": the graph of conv + BN + ReLU holds other than 2 activations";
    y.backward(go);
    int64_t grads = 0;
    for (const Tensor& p : {m.w, m.b, m.gamma, m.beta}) grads += p.numel() * int64_t(sizeof(float));
    if (input_grad) grads += act;
    EXPECT_EQ(Storage::live_bytes() - base, act + grads)
        << "input_grad " << input_grad << ": after backward only y and the leaf gradients should remain";
  }
}

// An activation the caller still holds is not the graph's to free: its values survive the backward.
TEST(Memory, ActivationsTheCallerHoldsSurviveBackward) {
  const ConvBnRelu m = conv_bn_relu(true);
  Tensor h = batch_norm2d(conv2d(m.x, m.w, m.b, {{1, 1}, {1, 1}, {1, 1}, 1}), m.gamma, m.beta, Tensor(), Tensor(),
                          true, 0.1f, 1e-5f);
  const std::vector<float> before = h.to_vector();
  Tensor y = relu(h);
  y.backward(random_tensor(y.shape(), 11));
  EXPECT_EQ(h.to_vector(), before);
  EXPECT_TRUE(m.x.grad().defined());
}

// Ops whose backward reads no values keep none: a chain of them over x holds only x and its output.
TEST(Memory, ValueFreeBackwardsKeepNoActivations) {
  Tensor x = random_tensor({4, 4, 32, 32}, 12).set_requires_grad();
  const int64_t act = x.numel() * int64_t(sizeof(float));
  const int64_t base = Storage::live_bytes();
  // reshape is a view; mul_scalar's and add_scalar's outputs are freed once consumed; add keeps neither input's
  // values (not even the one-element zeros): y is all that is left.
  Tensor y = add(add_scalar(mul_scalar(reshape(x, {4, -1}), 2.f), 1.f), Tensor::zeros({1}));
  EXPECT_EQ(Storage::live_bytes() - base, act) << "intermediates of value-free backwards were kept";
  y.backward(Tensor::ones(y.shape()));
  EXPECT_EQ(x.grad().to_vector(), std::vector<float>(static_cast<size_t>(x.numel()), 2.f));
}

}  // namespace
}  // namespace convlab

// tests/test_depthwise.cpp: the depthwise kernels (core/depthwise.cpp) against an independent oracle.
// A depthwise conv equals a groups=1 conv whose weight is block-diagonal (w_full[co, ci] = w[co] when
// ci == co / multiplier, else 0), which runs through im2col + GEMM: same output, same dx and db, and dw is
// the block diagonal of w_full's gradient. The shapes cover the AVX2 "same 3x3" path (W >= 8: first/last
// vector, overlapping last vector when W % 8 != 0, 1-3 rows at a time, H = 1..) and the plain path.
#include <gtest/gtest.h>

#include "tests/testing.h"

namespace convlab {
namespace {

using testing::expect_allclose;
using testing::random_tensor;

struct DwCase {
  Shape x;  // [N, C, H, W]
  int64_t mult, k, stride, pad, dil;
};

void check_against_block_diagonal(const DwCase& c, uint64_t seed) {
  const int64_t C = c.x[1], Co = C * c.mult;
  Tensor x = random_tensor(c.x, seed).set_requires_grad();
  Tensor w = random_tensor({Co, 1, c.k, c.k}, seed + 1).set_requires_grad();
  Tensor b = random_tensor({Co}, seed + 2).set_requires_grad();
  const Conv2dArgs a{{c.stride, c.stride}, {c.pad, c.pad}, {c.dil, c.dil}, C};
  Tensor y = conv2d(x, w, b, a);
  const Tensor g = random_tensor(y.shape(), seed + 3);
  y.backward(g);

  std::vector<float> full(Co * C * c.k * c.k, 0.f);
  const std::vector<float> wv = w.detach().to_vector();
  for (int64_t co = 0; co < Co; ++co)
    for (int64_t t = 0; t < c.k * c.k; ++t) full[(co * C + co / c.mult) * c.k * c.k + t] = wv[co * c.k * c.k + t];
  Tensor x2 = x.detach().clone().set_requires_grad();
  Tensor w2 = Tensor::from({Co, C, c.k, c.k}, full).set_requires_grad();
  Tensor b2 = b.detach().clone().set_requires_grad();
  Conv2dArgs a2 = a;
  a2.groups = 1;
  Tensor y2 = conv2d(x2, w2, b2, a2);
  y2.backward(g);
  std::vector<float> dw2(Co * c.k * c.k);
  const std::vector<float> gw2 = w2.grad().to_vector();
  for (int64_t co = 0; co < Co; ++co)
    for (int64_t t = 0; t < c.k * c.k; ++t) dw2[co * c.k * c.k + t] = gw2[(co * C + co / c.mult) * c.k * c.k + t];

  const std::string at = " x" + shape_str(c.x) + " m" + std::to_string(c.mult);
  expect_allclose(y, y2, "depthwise.output" + at);
  expect_allclose(x.grad(), x2.grad(), "depthwise.grad_input" + at);
  expect_allclose(w.grad(), Tensor::from(w.shape(), dw2), "depthwise.grad_weight" + at, 1e-4);
  expect_allclose(b.grad(), b2.grad(), "depthwise.grad_bias" + at, 1e-4);
}

TEST(Depthwise, Same3x3FastPathMatchesBlockDiagonalConv) {
  uint64_t seed = 1;
  for (int64_t H : {1, 2, 3, 4, 5, 6, 7, 9})
    for (int64_t W : {8, 9, 15, 16, 17, 24, 33})
      check_against_block_diagonal({{2, 3, H, W}, 1 + (H + W) % 3, 3, 1, 1, 1}, seed += 10);
  check_against_block_diagonal({{2, 4, 64, 64}, 1, 3, 1, 1, 1}, seed += 10);
}

TEST(Depthwise, PlainPathMatchesBlockDiagonalConv) {
  uint64_t seed = 500;
  for (const DwCase& c : {DwCase{{2, 3, 9, 12}, 1, 3, 2, 1, 1}, DwCase{{2, 3, 9, 12}, 2, 3, 1, 2, 2},
                          DwCase{{1, 4, 11, 10}, 1, 5, 1, 2, 1}, DwCase{{2, 3, 6, 5}, 1, 3, 1, 1, 1},
                          DwCase{{1, 2, 12, 16}, 3, 3, 1, 0, 1}})
    check_against_block_diagonal(c, seed += 10);
}

}  // namespace
}  // namespace convlab

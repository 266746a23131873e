// tests/test_im2col.cpp: im2col / col2im (core/im2col.cpp) against direct loops, on both of its paths: the
// interval loops (output rows of 16 or more) and the bordered-plane index tables (shorter rows, DCGAN's 7x7
// and 14x14 maps). im2col is a copy, so it must match exactly; col2im must give the very sums of the direct
// loop that adds taps in ascending order into a non-zero x (gradients accumulate), bit for bit.
#include <gtest/gtest.h>

#include <cstring>
#include <vector>

#include "core/conv.h"
#include "core/cpu.h"
#include "core/gemm.h"
#include "tests/testing.h"

namespace convlab {
namespace {

struct Case {
  int64_t C, H, W, k, s, p, d;
};

ConvDims dims_of(const Case& c) {
  ConvDims d;
  d.N = 1;
  d.C_in = c.C;
  d.H = c.H;
  d.W = c.W;
  d.C_out = 1;
  d.kH = d.kW = c.k;
  d.sH = d.sW = c.s;
  d.pH = d.pW = c.p;
  d.dH = d.dW = c.d;
  d.H_out = (c.H + 2 * c.p - c.d * (c.k - 1) - 1) / c.s + 1;
  d.W_out = (c.W + 2 * c.p - c.d * (c.k - 1) - 1) / c.s + 1;
  return d;
}

// Calls f(col, xi) for every (row (c, kh, kw), column (oh, ow)) whose tap reads input element xi (padding taps
// skipped), in the order the direct loops below define: rows ascending, then columns.
template <class F>
void for_each_tap(const ConvDims& d, F&& f) {
  for (int64_t c = 0; c < d.C_in; ++c)
    for (int64_t kh = 0; kh < d.kH; ++kh)
      for (int64_t kw = 0; kw < d.kW; ++kw)
        for (int64_t oh = 0; oh < d.H_out; ++oh)
          for (int64_t ow = 0; ow < d.W_out; ++ow) {
            const int64_t ih = oh * d.sH - d.pH + kh * d.dH, iw = ow * d.sW - d.pW + kw * d.dW;
            if (ih >= 0 && ih < d.H && iw >= 0 && iw < d.W)
              f(size_t(((c * d.kH + kh) * d.kW + kw) * d.hw_out() + oh * d.W_out + ow),
                size_t((c * d.H + ih) * d.W + iw));
          }
}

// cols[(c, kh, kw), (oh, ow)] = x[c, oh*s - p + kh*d, ow*s - p + kw*d], 0 outside.
std::vector<float> im2col_direct(const std::vector<float>& x, const ConvDims& d) {
  std::vector<float> cols(size_t(d.k_rows() * d.hw_out()), 0.f);
  for_each_tap(d, [&](size_t col, size_t xi) { cols[col] = x[xi]; });
  return cols;
}

// x += col2im(cols), adding taps in ascending row order.
void col2im_direct(const std::vector<float>& cols, const ConvDims& d, std::vector<float>& x) {
  for_each_tap(d, [&](size_t col, size_t xi) { x[xi] += cols[col]; });
}

std::vector<float> random_values(int64_t n, uint64_t seed) {
  const Tensor t = testing::random_tensor({n}, seed);
  return std::vector<float>(t.data(), t.data() + n);
}

TEST(Im2col, BothPathsMatchDirectLoopsExactly) {
  const std::vector<Case> cases = {
      // short rows (W_out < 16): the table path
      {64, 14, 14, 4, 2, 1, 1},  // DCGAN D2: 14 -> 7
      {1, 28, 28, 4, 2, 1, 1},   // DCGAN D1: 28 -> 14
      {128, 7, 7, 7, 1, 0, 1},   // the 7x7 -> 1x1 head
      {3, 9, 11, 3, 1, 1, 1},    // non-square
      {2, 12, 12, 3, 3, 2, 2},   // stride 3, dilation 2
      {2, 10, 10, 3, 1, 4, 3},   // padding wider than the kernel's reach: whole padded rows
      {2, 5, 5, 5, 1, 2, 1},     // "same" 5x5 on a tiny map
      {1, 1, 1, 1, 1, 0, 1},     // 1x1 everything
      // long rows (W_out >= 16): the interval path
      {3, 20, 33, 3, 1, 1, 1},
      {2, 40, 40, 4, 2, 1, 1},
      {2, 24, 24, 3, 1, 2, 2},
  };
  for (const Case& c : cases) {
    const ConvDims d = dims_of(c);
    SCOPED_TRACE("C=" + std::to_string(c.C) + " H=" + std::to_string(c.H) + " W=" + std::to_string(c.W) +
                 " k=" + std::to_string(c.k) + " s=" + std::to_string(c.s) + " p=" + std::to_string(c.p) +
                 " d=" + std::to_string(c.d));
    const std::vector<float> x = random_values(c.C * c.H * c.W, 7);
    // im2col, also into a wider row pitch (ldc > H_out*W_out, as conv2d's image blocking uses)
    const std::vector<float> want = im2col_direct(x, d);
    const int64_t ldc = d.hw_out() + 3;
    std::vector<float> got(size_t(d.k_rows() * ldc), -7.f);
    im2col(x.data(), d, got.data(), ldc);
    for (int64_t r = 0; r < d.k_rows(); ++r)
      ASSERT_EQ(0, std::memcmp(got.data() + r * ldc, want.data() + r * d.hw_out(), sizeof(float) * d.hw_out()))
          << "im2col row " << r;
    for (int64_t r = 0; r < d.k_rows(); ++r)
      for (int64_t j = d.hw_out(); j < ldc; ++j) ASSERT_EQ(got[size_t(r * ldc + j)], -7.f) << "wrote past the row";
    // col2im accumulates into a non-zero x with the direct loop's order of additions
    const std::vector<float> cols = random_values(d.k_rows() * d.hw_out(), 8);
    std::vector<float> acc_want = random_values(c.C * c.H * c.W, 9), acc_got = acc_want;
    col2im_direct(cols, d, acc_want);
    col2im(cols.data(), d, acc_got.data());
    ASSERT_EQ(0, std::memcmp(acc_got.data(), acc_want.data(), sizeof(float) * acc_want.size())) << "col2im";
  }
}

}  // namespace
}  // namespace convlab

namespace convlab {
namespace {

// The GEMM fed by Im2colPacker (columns packed straight from x, several images side by side; and transposed,
// as the weight gradient uses it) gives the same bits as sgemm on the stored im2col matrix, on every target: odd sizes, strides, dilations, padding
// wider than the kernel, output rows shorter and longer than a panel, images that start mid-panel.
TEST(Im2col, PackerGemmIsBitIdenticalToStoredColumns) {
  struct PCase {
    int64_t N, C, H, W, M, k, s, p, d;
  };
  const PCase cases[] = {{1, 32, 64, 64, 32, 3, 1, 1, 1}, {2, 32, 20, 23, 32, 3, 1, 5, 5}, {3, 7, 13, 19, 5, 3, 2, 1, 1},
                         {4, 64, 14, 14, 128, 4, 2, 1, 1}, {2, 3, 9, 9, 17, 5, 1, 4, 2},  {5, 5, 7, 7, 9, 3, 1, 0, 1},
                         {2, 1, 28, 28, 64, 4, 2, 1, 1},   {3, 6, 5, 61, 11, 3, 1, 1, 3},
                         // a padding so wide that the bordered copy would hold 4.9M floats: the walked path
                         {1, 1, 4, 4, 3, 3, 1000, 1100, 1}};
  const Isa saved = active_isa();
  for (Isa isa : available_isas()) {
    set_isa(isa);
    for (const PCase& c : cases) {
      Case ic{c.C, c.H, c.W, c.k, c.s, c.p, c.d};
      ConvDims d = dims_of(ic);
      d.N = c.N, d.C_out = c.M;
      const int64_t K = d.k_rows(), HWo = d.hw_out(), L = c.N * HWo;
      const std::vector<float> x = testing::random_tensor({c.N, c.C, c.H, c.W}, 7).to_vector();
      const std::vector<float> w = testing::random_tensor({c.M, K}, 8).to_vector();
      // both ways of reading the matrix are covered (conv.h): the bordered copy, and the walked rows past its limit
      EXPECT_EQ(Im2colPacker(x.data(), d, 0, c.N, 0).bordered(), c.p < 1000);
      std::vector<float> cols(size_t(K * L));
      for (int64_t i = 0; i < c.N; ++i) im2col(x.data() + i * c.C * c.H * c.W, d, cols.data() + i * HWo, L);
      for (float beta : {0.f, 1.f}) {
        std::vector<float> stored = testing::random_tensor({c.M, L}, 9).to_vector(), packed = stored;
        sgemm(false, false, c.M, L, K, 1.f, w.data(), K, cols.data(), L, beta, stored.data(), L);
        sgemm_packer(false, c.M, L, K, w.data(), K, Im2colPacker(x.data(), d, 0, c.N, 0), beta, packed.data(), L);
        EXPECT_EQ(std::memcmp(stored.data(), packed.data(), stored.size() * sizeof(float)), 0)
            << isa_name(isa) << " N=" << c.N << " C=" << c.C << " " << c.H << "x" << c.W << " k" << c.k << " s" << c.s
            << " p" << c.p << " d" << c.d << " beta " << beta;
        // the weight gradient's form: dy [M, L] x cols^T [L, K]
        const std::vector<float> dy = testing::random_tensor({c.M, L}, 10).to_vector();
        std::vector<float> stored_t = testing::random_tensor({c.M, K}, 11).to_vector(), packed_t = stored_t;
        sgemm(false, true, c.M, K, L, 1.f, dy.data(), L, cols.data(), L, beta, stored_t.data(), K);
        sgemm_packer(false, c.M, K, L, dy.data(), L, Im2colPacker(x.data(), d, 0, c.N, 0, true), beta,
                     packed_t.data(), K);
        EXPECT_EQ(std::memcmp(stored_t.data(), packed_t.data(), stored_t.size() * sizeof(float)), 0)
            << "transposed, " << isa_name(isa) << " N=" << c.N << " C=" << c.C << " " << c.H << "x" << c.W << " k"
            << c.k << " s" << c.s << " p" << c.p << " d" << c.d << " beta " << beta;
      }
    }
  }
  set_isa(saved);
}

}  // namespace
}  // namespace convlab

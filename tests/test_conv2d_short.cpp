// tests/test_conv2d_short.cpp: conv2d's turned-around GEMMs for short output rows (core/conv2d_short.cpp) give
// the bits of the im2col + GEMM path they replace, on every target this CPU has: output, and the input, weight and
// bias gradients accumulated onto non-zero buffers. Shapes: DCGAN's discriminator layers, odd channel counts,
// strides, dilations and paddings, groups, blocks of several images and of one, and the stride-1 input gradient
// that runs as a forward conv accumulating into dx.
#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <vector>

#include "core/conv.h"
#include "core/conv2d_short.h"
#include "core/cpu.h"
#include "core/threads.h"
#include "tests/testing.h"

namespace convlab {
namespace {

struct ShortCase {
  std::string name;
  Shape x;
  int64_t c_out, k, s, p, dil, groups;
};

struct Result {
  std::vector<float> y, dx, dw, db;
};

std::vector<float> values(const Shape& s, uint64_t seed) { return testing::random_tensor(s, seed).to_vector(); }

Result run(const ShortCase& c) {
  const Shape ws{c.c_out, c.x[1] / c.groups, c.k, c.k};
  const Conv2dArgs a{{c.s, c.s}, {c.p, c.p}, {c.dil, c.dil}, c.groups};
  const ConvDims d = conv2d_dims(c.x, ws, nullptr, a, "conv2d");
  const std::vector<float> x = values(c.x, 1), w = values(ws, 2), b = values({c.c_out}, 3);
  const std::vector<float> dy = values({d.N, d.C_out, d.H_out, d.W_out}, 4);
  Result r;
  r.y.assign(size_t(d.N * d.C_out * d.hw_out()), 0.f);
  conv2d_forward(x.data(), w.data(), b.data(), d, r.y.data());
  // gradients accumulate: start from non-zero buffers
  r.dx = values(c.x, 5), r.dw = values(ws, 6), r.db = values({c.c_out}, 7);
  conv2d_backward(x.data(), w.data(), dy.data(), d, r.dx.data(), r.dw.data(), r.db.data());
  return r;
}

size_t differing(const std::vector<float>& a, const std::vector<float>& b) {
  if (a.size() != b.size()) return a.size() + b.size();
  size_t n = 0;
  for (size_t i = 0; i < a.size(); ++i) n += std::memcmp(&a[i], &b[i], sizeof(float)) != 0;
  return n;
}

TEST(Conv2dShort, BitIdenticalToTheIm2colGemmPath) {
  const std::vector<ShortCase> cases = {
      {"dcgan_d2", {12, 64, 14, 14}, 128, 4, 2, 1, 1, 1},    // two blocks of 11 and 1 image
      {"dcgan_d1", {12, 1, 28, 28}, 64, 4, 2, 1, 1, 1},      // one input channel: every pass stays on im2col
      {"odd_stride2", {13, 7, 13, 19}, 20, 3, 2, 1, 1, 1},   // 20 channels: a vector and a masked tail
      {"dilated", {12, 8, 11, 11}, 16, 3, 1, 2, 2, 1},       // stride 1, dilation 2: dx by col2im (C_in < 16)
      {"wide_padding", {12, 3, 5, 6}, 24, 3, 2, 3, 1, 1},    // padding wider than the kernel
      {"groups", {12, 12, 9, 9}, 32, 3, 1, 1, 1, 2},         // two groups of 16 output channels
      {"dx_as_conv", {12, 16, 8, 8}, 32, 3, 1, 1, 1, 1},     // stride-1 dx: a forward conv accumulating into dx
      {"one_image_blocks", {2, 16, 64, 12}, 16, 3, 1, 1, 1, 1},  // 768 pixels: one image per block (nn = 1)
      {"k5_s3", {12, 10, 17, 17}, 48, 5, 3, 2, 1, 1},
      // input gradients through the tap-major path (16+ input channels per group, not a stride-1 "same" conv)
      {"dx_20_channels", {13, 20, 13, 19}, 24, 3, 2, 1, 1, 1},  // a tap's 20 channels: a vector and a masked tail
      {"dx_groups_dilated", {12, 32, 11, 11}, 32, 3, 2, 2, 2, 2},
      {"dx_k5_s3", {12, 16, 17, 17}, 32, 5, 3, 2, 1, 1},
      {"dx_wide_padding", {12, 16, 5, 6}, 16, 3, 2, 3, 1, 1},  // taps of whole rows in padding
      {"dx_stride1_padding3", {12, 16, 6, 6}, 16, 3, 1, 3, 1, 1},  // stride 1, padding too wide for dx as a conv
  };
  const Isa saved = active_isa();
  for (Isa isa : available_isas()) {
    set_isa(isa);
    for (const ShortCase& c : cases) {
      set_short_rows_gemm(false);
      const Result ref = run(c);
      set_short_rows_gemm(true);
      const Result got = run(c);
      const std::string where = c.name + " on " + isa_name(isa);
      EXPECT_EQ(differing(ref.y, got.y), 0u) << where << ": output";
      EXPECT_EQ(differing(ref.dx, got.dx), 0u) << where << ": input gradient";
      EXPECT_EQ(differing(ref.dw, got.dw), 0u) << where << ": weight gradient";
      EXPECT_EQ(differing(ref.db, got.db), 0u) << where << ": bias gradient";
    }
  }
  set_short_rows_gemm(true);
  set_isa(saved);
}

// One and two threads (and three: an odd deal of the blocks' halves and the gradient jobs) give the same bits.
TEST(Conv2dShort, BitIdenticalAtAnyThreadCount) {
  const std::vector<ShortCase> cases = {{"dcgan_d2", {23, 64, 14, 14}, 128, 4, 2, 1, 1, 1},
                                        {"dx_groups_dilated", {12, 32, 11, 11}, 32, 3, 2, 2, 2, 2}};
  const int saved = num_threads();
  for (const ShortCase& c : cases) {
    set_num_threads(1);
    const Result ref = run(c);
    for (int t : {2, 3}) {
      set_num_threads(t);
      const Result got = run(c);
      const std::string where = c.name + " at " + std::to_string(t) + " threads";
      EXPECT_EQ(differing(ref.y, got.y), 0u) << where << ": output";
      EXPECT_EQ(differing(ref.dx, got.dx), 0u) << where << ": input gradient";
      EXPECT_EQ(differing(ref.dw, got.dw), 0u) << where << ": weight gradient";
      EXPECT_EQ(differing(ref.db, got.db), 0u) << where << ": bias gradient";
    }
  }
  set_num_threads(saved);
}

// The cases above do take the turned-around paths (so the comparison is not of one path with itself).
TEST(Conv2dShort, CasesTakeTheTurnedAroundPaths) {
  const ConvDims d2 = conv2d_dims({12, 64, 14, 14}, {128, 64, 4, 4}, nullptr, Conv2dArgs{{2, 2}, {1, 1}, {1, 1}, 1},
                                  "conv2d");
  EXPECT_TRUE(short_rows_forward_applies(d2, 11));
  EXPECT_TRUE(short_rows_dw_applies(d2, 11));
  EXPECT_TRUE(short_rows_dx_applies(d2, 11));
  const ConvDims d1 = conv2d_dims({12, 1, 28, 28}, {64, 1, 4, 4}, nullptr, Conv2dArgs{{2, 2}, {1, 1}, {1, 1}, 1},
                                  "conv2d");
  EXPECT_FALSE(short_rows_forward_applies(d1, 3));  // K = 16 < 64 channels
  EXPECT_FALSE(short_rows_dw_applies(d1, 3));       // one input channel: the packer path
  EXPECT_FALSE(short_rows_dx_applies(d1, 3));       // and col2im
  const ConvDims d20 = conv2d_dims({13, 20, 13, 19}, {24, 20, 3, 3}, nullptr, Conv2dArgs{{2, 2}, {1, 1}, {1, 1}, 1},
                                   "conv2d");
  EXPECT_TRUE(short_rows_dx_applies(d20, 5));
  const ConvDims seg = conv2d_dims({1, 32, 64, 64}, {32, 32, 3, 3}, nullptr, Conv2dArgs{{1, 1}, {1, 1}, {1, 1}, 1},
                                   "conv2d");
  EXPECT_FALSE(short_rows_apply(seg, 1));  // 64-column rows stay on the in-place path
}

}  // namespace
}  // namespace convlab

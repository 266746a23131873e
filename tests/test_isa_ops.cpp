// tests/test_isa_ops.cpp: every conv kernel gives the same bits on every SIMD target (core/cpu.h).
// Each case runs forward + backward of one op under the scalar target (plain C++, std::fma) and under each
// vector target this CPU has, and compares the output and every gradient with memcmp. The shapes are those
// of ../shared/bench/shapes.json (batch cut to 1-2 images: the scalar target is slow) and odd ones: channel
// counts, K = C*kh*kw and widths that are not multiples of the 8 / 16 lanes. A target this CPU lacks is
// reported as skipped, naming it.
#include <gtest/gtest.h>

#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "core/conv.h"
#include "core/conv_transpose2d.h"
#include "core/cpu.h"
#include "core/deform_conv2d.h"
#include "core/separable.h"
#include "tests/testing.h"

namespace convlab {
namespace {

using testing::random_tensor;

// Runs one forward + backward and returns the output followed by the gradient of every input.
using OpRun = std::function<std::vector<Tensor>()>;

struct OpCase {
  std::string name;
  OpRun run;
};

std::vector<Tensor> fwd_bwd(const Tensor& y, std::vector<Tensor> inputs, uint64_t seed) {
  y.backward(random_tensor(y.shape(), seed));
  std::vector<Tensor> out{y.detach()};
  for (Tensor& t : inputs) out.push_back(t.grad());
  return out;
}

OpCase conv_case(const std::string& name, Shape x, int64_t co, int64_t k, int64_t s, int64_t p, int64_t dil,
                 int64_t groups) {
  return {name, [=] {
            Tensor xt = random_tensor(x, 1).set_requires_grad();
            Tensor w = random_tensor({co, x[1] / groups, k, k}, 2).set_requires_grad();
            Tensor b = random_tensor({co}, 3).set_requires_grad();
            Tensor y = conv2d(xt, w, b, Conv2dArgs{{s, s}, {p, p}, {dil, dil}, groups});
            return fwd_bwd(y, {xt, w, b}, 4);
          }};
}

OpCase convT_case(const std::string& name, Shape x, int64_t co, int64_t k, int64_t s, int64_t p, int64_t op) {
  return {name, [=] {
            Tensor xt = random_tensor(x, 5).set_requires_grad();
            Tensor w = random_tensor({x[1], co, k, k}, 6).set_requires_grad();
            Tensor b = random_tensor({co}, 7).set_requires_grad();
            ConvTranspose2dArgs a;
            a.stride = {s, s}, a.padding = {p, p}, a.output_padding = {op, op};
            Tensor y = conv_transpose2d(xt, w, b, a);
            return fwd_bwd(y, {xt, w, b}, 8);
          }};
}

OpCase deform_case(const std::string& name, Shape x, int64_t co, bool mask, int64_t offset_groups) {
  return {name, [=] {
            const int64_t H = x[2], W = x[3], T = 9;
            Tensor xt = random_tensor(x, 9).set_requires_grad();
            Tensor off = random_tensor({x[0], 2 * offset_groups * T, H, W}, 10, -2.f, 2.f).set_requires_grad();
            Tensor m = mask ? random_tensor({x[0], offset_groups * T, H, W}, 11, 0.f, 1.f).set_requires_grad()
                            : Tensor();
            Tensor w = random_tensor({co, x[1], 3, 3}, 12).set_requires_grad();
            Tensor b = random_tensor({co}, 13).set_requires_grad();
            DeformConv2dArgs a;
            a.padding = {1, 1};
            Tensor y = deform_conv2d(xt, off, w, b, m, a);
            std::vector<Tensor> in{xt, off, w, b};
            if (mask) in.push_back(m);
            return fwd_bwd(y, in, 14);
          }};
}

std::vector<OpCase> cases() {
  return {
      conv_case("seg_d1", {1, 32, 64, 64}, 32, 3, 1, 1, 1, 1),
      conv_case("seg_d2", {1, 32, 64, 64}, 32, 3, 1, 2, 2, 1),
      conv_case("seg_d5", {1, 32, 64, 64}, 32, 3, 1, 5, 5, 1),
      conv_case("seg_wide", {1, 64, 32, 32}, 64, 3, 1, 1, 1, 1),
      conv_case("stem", {2, 3, 64, 64}, 32, 3, 1, 1, 1, 1),
      conv_case("classifier", {2, 32, 64, 64}, 11, 1, 1, 0, 1, 1),
      conv_case("pw", {1, 64, 64, 64}, 64, 1, 1, 0, 1, 1),
      conv_case("dw", {2, 64, 64, 64}, 64, 3, 1, 1, 1, 64),
      conv_case("dw_odd_width", {2, 5, 9, 13}, 10, 3, 1, 1, 1, 5),
      conv_case("dw_width8", {1, 3, 7, 8}, 3, 3, 1, 1, 1, 3),
      conv_case("dw_strided", {1, 6, 11, 11}, 6, 3, 2, 1, 1, 6),
      conv_case("grouped", {2, 12, 15, 17}, 18, 3, 1, 2, 2, 3),
      conv_case("odd", {3, 7, 13, 19}, 5, 3, 2, 1, 1, 1),
      conv_case("dcgan_d1", {4, 1, 28, 28}, 64, 4, 2, 1, 1, 1),
      conv_case("dcgan_d2", {4, 64, 14, 14}, 128, 4, 2, 1, 1, 1),
      convT_case("dcgan_g1", {8, 100, 1, 1}, 128, 7, 1, 0, 0),
      convT_case("dcgan_g2", {4, 128, 7, 7}, 64, 4, 2, 1, 0),
      convT_case("dcgan_g3", {4, 64, 14, 14}, 1, 4, 2, 1, 0),
      convT_case("convT_odd", {2, 5, 6, 7}, 3, 3, 2, 1, 1),
      deform_case("deform_v1", {1, 32, 32, 32}, 32, false, 1),
      deform_case("deform_v2", {1, 32, 32, 32}, 32, true, 1),
      deform_case("deform_odd", {2, 13, 9, 11}, 7, true, 1),
  };
}

size_t differing(const Tensor& a, const Tensor& b) {
  const std::vector<float> va = a.to_vector(), vb = b.to_vector();
  if (va.size() != vb.size()) return va.size() + vb.size();
  size_t n = 0;
  for (size_t i = 0; i < va.size(); ++i) n += std::memcmp(&va[i], &vb[i], sizeof(float)) != 0;
  return n;
}

void expect_ops_match_scalar(Isa isa) {
  const Isa saved = active_isa();
  for (const OpCase& c : cases()) {
    set_isa(Isa::scalar);
    const std::vector<Tensor> ref = c.run();
    set_isa(isa);
    const std::vector<Tensor> got = c.run();
    ASSERT_EQ(ref.size(), got.size());
    for (size_t i = 0; i < ref.size(); ++i)
      EXPECT_EQ(differing(ref[i], got[i]), 0u)
          << c.name << (i == 0 ? " output" : " gradient of input " + std::to_string(i - 1)) << ": "
          << isa_name(isa) << " differs from scalar";
  }
  set_isa(saved);
}

TEST(IsaOps, Avx2IsBitIdenticalToScalar) {
  if (!cpu_supports(Isa::avx2)) GTEST_SKIP() << "this CPU lacks AVX2+FMA: the avx2 kernels were not run";
  expect_ops_match_scalar(Isa::avx2);
}

TEST(IsaOps, Avx512IsBitIdenticalToScalar) {
  if (!cpu_supports(Isa::avx512)) GTEST_SKIP() << "this CPU lacks AVX-512F: the avx512 kernels were not run";
  expect_ops_match_scalar(Isa::avx512);
}

}  // namespace
}  // namespace convlab

// tests/test_gemm.cpp: the packed sgemm / sgemm_parallel against the Eigen oracle sgemm_reference.
#include <gtest/gtest.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <tuple>
#include <vector>

#include "core/cpu.h"
#include "core/error.h"
#include "core/gemm.h"

namespace convlab {
namespace {

using GemmFn = void (*)(bool, bool, int64_t, int64_t, int64_t, float, const float*, int64_t, const float*,
                        int64_t, float, float*, int64_t);

struct Case {
  bool ta, tb;
  int64_t M, N, K;
  float alpha, beta;
  int64_t pad;        // extra elements on every leading dimension
  bool nan_c = false;  // fill C with NaN (only meaningful with beta == 0)
};

std::string describe(const Case& c) {
  return "ta=" + std::to_string(c.ta) + " tb=" + std::to_string(c.tb) + " M=" + std::to_string(c.M) +
         " N=" + std::to_string(c.N) + " K=" + std::to_string(c.K) + " alpha=" + std::to_string(c.alpha) +
         " beta=" + std::to_string(c.beta) + " pad=" + std::to_string(c.pad) +
         " nanC=" + std::to_string(c.nan_c);
}

// Runs fn and the reference on identical inputs and compares C, including the padding columns of C
// (which must be left untouched).
void check(GemmFn fn, const Case& c, uint32_t seed) {
  const int64_t a_rows = c.ta ? c.K : c.M, a_cols = c.ta ? c.M : c.K;
  const int64_t b_rows = c.tb ? c.N : c.K, b_cols = c.tb ? c.K : c.N;
  const int64_t lda = a_cols + c.pad, ldb = b_cols + c.pad, ldc = c.N + c.pad;
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(-1.f, 1.f);
  std::vector<float> A(static_cast<size_t>(a_rows * lda)), B(static_cast<size_t>(b_rows * ldb));
  for (float& x : A) x = dist(rng);
  for (float& x : B) x = dist(rng);
  std::vector<float> C0(static_cast<size_t>(c.M * ldc));
  for (float& x : C0) x = c.nan_c ? std::numeric_limits<float>::quiet_NaN() : dist(rng);
  // Padding sentinels stay finite so "untouched" can be checked with ==.
  for (int64_t i = 0; i < c.M; ++i)
    for (int64_t j = c.N; j < ldc; ++j) C0[static_cast<size_t>(i * ldc + j)] = 12345.f;

  std::vector<float> want = C0, got = C0;
  sgemm_reference(c.ta, c.tb, c.M, c.N, c.K, c.alpha, A.data(), lda, B.data(), ldb, c.beta, want.data(), ldc);
  fn(c.ta, c.tb, c.M, c.N, c.K, c.alpha, A.data(), lda, B.data(), ldb, c.beta, got.data(), ldc);

  // |A|,|B| <= 1, |C| <= 1: each result is bounded by |alpha|*K + |beta|, rounding error grows with K.
  const double tol = 1e-5 * static_cast<double>(std::max<int64_t>(c.K, 1)) * (std::abs(c.alpha) + 1.0);
  int reported = 0;
  for (int64_t i = 0; i < c.M; ++i) {
    for (int64_t j = 0; j < ldc; ++j) {
      const float w = want[static_cast<size_t>(i * ldc + j)], g = got[static_cast<size_t>(i * ldc + j)];
      const bool ok =
          j >= c.N ? g == 12345.f : (std::isfinite(g) && std::abs(g - w) <= tol * (1.0 + std::abs(w)));
      if (!ok && reported++ < 5)
        ADD_FAILURE() << describe(c) << " at (" << i << "," << j << "): got " << g << " want " << w;
    }
  }
}

std::vector<Case> grid() {
  std::vector<Case> cases;
  const int64_t sizes[] = {1, 3, 7, 13, 17, 25, 33, 50};
  const int64_t ks[] = {1, 5, 33, 300};
  const float betas[] = {0.f, 1.f, 0.5f};
  for (int tab = 0; tab < 4; ++tab)
    for (int64_t M : sizes)
      for (int64_t N : sizes)
        for (int64_t K : ks) {
          const size_t n = cases.size();
          // Vary alpha, beta and padding over the grid instead of taking their full product.
          const float beta = betas[n % 3];
          const float alpha = (n % 5 == 0) ? -0.75f : 1.f;
          const int64_t pad = (n % 4 == 1) ? 3 : 0;
          cases.push_back({(tab & 1) != 0, (tab & 2) != 0, M, N, K, alpha, beta, pad, false});
        }
  return cases;
}

TEST(Gemm, SgemmMatchesReferenceOnGrid) {
  uint32_t seed = 1;
  for (const Case& c : grid()) check(sgemm, c, seed++);
}

TEST(Gemm, SgemmParallelMatchesReferenceOnGrid) {
  uint32_t seed = 7;
  for (const Case& c : grid()) check(sgemm_parallel, c, seed++);
}

// Shapes large enough to cross every cache block (K chunks, M and N blocks) and the conv shapes.
TEST(Gemm, LargeAndConvShapes) {
  const Case cases[] = {
      {false, false, 32, 4096, 288, 1.f, 0.f, 0},  {false, false, 64, 1000, 576, 1.f, 0.5f, 5},
      {false, false, 11, 4096, 32, 1.f, 0.f, 0},   {false, false, 128, 49, 1024, 1.f, 0.f, 0},
      {false, false, 64, 196, 16, 1.f, 1.f, 0},    {true, false, 288, 4096, 32, 1.f, 0.f, 0},
      {false, true, 32, 288, 4096, 1.f, 1.f, 0},   {true, true, 301, 203, 777, 0.5f, 0.5f, 2},
      {false, false, 700, 300, 130, 1.f, 0.f, 1},  {true, false, 1100, 37, 40, 1.f, 1.f, 0},
      {false, true, 9, 3000, 1500, 2.f, 0.f, 1},   {false, false, 1, 5000, 700, 1.f, 0.f, 0},
      {false, false, 5000, 1, 700, 1.f, 0.f, 0},
  };
  uint32_t seed = 100;
  for (const Case& c : cases) {
    check(sgemm, c, seed);
    check(sgemm_parallel, c, seed++);
  }
}

TEST(Gemm, BetaZeroIgnoresNaNInC) {
  uint32_t seed = 200;
  for (int tab = 0; tab < 4; ++tab)
    for (int64_t M : {1, 6, 13, 64})
      for (int64_t N : {1, 9, 31, 300})
        for (int64_t K : {0, 1, 40}) {
          const Case c{(tab & 1) != 0, (tab & 2) != 0, M, N, K, 1.f, 0.f, 2, true};
          check(sgemm, c, seed);
          check(sgemm_parallel, c, seed++);
        }
}

TEST(Gemm, DegenerateSizes) {
  // K == 0 and alpha == 0 reduce to C = beta * C.
  for (float beta : {0.f, 1.f, 0.5f}) {
    check(sgemm, {false, false, 5, 7, 0, 1.f, beta, 1}, 300);
    check(sgemm, {true, true, 5, 7, 9, 0.f, beta, 1}, 301);
    check(sgemm_parallel, {false, true, 20, 70, 0, 1.f, beta, 0}, 302);
  }
  // M == 0 or N == 0 must not touch anything (null pointers are fine).
  sgemm(false, false, 0, 5, 5, 1.f, nullptr, 5, nullptr, 5, 0.f, nullptr, 5);
  sgemm(false, false, 5, 0, 5, 1.f, nullptr, 5, nullptr, 1, 0.f, nullptr, 1);
  sgemm_parallel(false, false, 0, 5, 5, 1.f, nullptr, 5, nullptr, 5, 0.f, nullptr, 5);
}

// Results must not depend on the number of OpenMP threads (bit for bit).
TEST(Gemm, ParallelIsBitIdenticalAcrossThreadCounts) {
  struct Shape {
    bool ta, tb;
    int64_t M, N, K;
    float beta;
  };
  const Shape shapes[] = {{false, false, 32, 8192, 288, 0.f}, {true, false, 288, 4096, 32, 0.5f},
                          {false, true, 32, 288, 4096, 1.f},  {true, true, 500, 130, 300, 0.f},
                          {false, false, 37, 1000, 77, 1.f}};
  const int saved = omp_get_max_threads();
  for (const Shape& s : shapes) {
    const int64_t lda = s.ta ? s.M : s.K, ldb = s.tb ? s.K : s.N;
    std::mt19937 rng(static_cast<uint32_t>(s.M * 31 + s.N));
    std::uniform_real_distribution<float> dist(-1.f, 1.f);
    std::vector<float> A(static_cast<size_t>(s.M * s.K)), B(static_cast<size_t>(s.K * s.N)),
        C0(static_cast<size_t>(s.M * s.N));
    for (float& x : A) x = dist(rng);
    for (float& x : B) x = dist(rng);
    for (float& x : C0) x = dist(rng);
    std::vector<float> c1 = C0, c2 = C0;
    omp_set_num_threads(1);
    sgemm_parallel(s.ta, s.tb, s.M, s.N, s.K, 1.f, A.data(), lda, B.data(), ldb, s.beta, c1.data(), s.N);
    omp_set_num_threads(2);
    sgemm_parallel(s.ta, s.tb, s.M, s.N, s.K, 1.f, A.data(), lda, B.data(), ldb, s.beta, c2.data(), s.N);
    size_t diff = 0;
    for (size_t i = 0; i < c1.size(); ++i) diff += std::memcmp(&c1[i], &c2[i], sizeof(float)) != 0;
    EXPECT_EQ(diff, 0u) << "M=" << s.M << " N=" << s.N << " K=" << s.K;
  }
  omp_set_num_threads(saved);
}

}  // namespace
}  // namespace convlab

namespace convlab {
namespace {

// Every SIMD target gives the same bits (core/cpu.h): the grid (odd M, N, K, all transposition cases,
// beta 0 / 1 / 0.5, padded leading dimensions), shapes past one K chunk, and the conv shapes of
// ../shared/bench (im2col GEMMs of the segmentation and DCGAN layers), through sgemm and sgemm_parallel,
// each compared with the scalar target (std::fma). A target this CPU lacks is skipped, naming it.
void expect_target_matches_scalar(Isa isa) {
  std::vector<Case> cases = grid();
  const std::tuple<bool, bool, int64_t, int64_t, int64_t> conv_shapes[] = {
      {false, false, 24, 4096, 216}, {false, true, 24, 216, 4096}, {true, false, 216, 4096, 24},  // seg 3x3, 24 ch
      {false, false, 32, 4096, 288}, {true, false, 288, 4096, 32},  {false, true, 32, 288, 4096},   // seg_d*
      {false, false, 64, 4096, 576}, {true, false, 576, 4096, 64},  {false, true, 64, 576, 4096},   // seg_wide
      {false, false, 128, 49, 1152}, {true, false, 1152, 196, 64},  {false, false, 1, 1, 6272},     // DCGAN
      {false, false, 37, 1000, 777}, {true, true, 45, 333, 1500}};                                 // odd, deep K
  for (const auto& [ta, tb, M, N, K] : conv_shapes)
    for (float beta : {0.f, 1.f}) cases.push_back({ta, tb, M, N, K, 1.f, beta, 0, false});
  const Isa saved = active_isa();
  for (GemmFn fn : {static_cast<GemmFn>(sgemm), static_cast<GemmFn>(sgemm_parallel)}) {
    uint32_t seed = 900;
    for (const Case& c : cases) {
      const int64_t a_rows = c.ta ? c.K : c.M, a_cols = c.ta ? c.M : c.K;
      const int64_t b_rows = c.tb ? c.N : c.K, b_cols = c.tb ? c.K : c.N;
      const int64_t lda = a_cols + c.pad, ldb = b_cols + c.pad, ldc = c.N + c.pad;
      std::mt19937 rng(seed++);
      std::uniform_real_distribution<float> dist(-1.f, 1.f);
      std::vector<float> A(static_cast<size_t>(a_rows * lda)), B(static_cast<size_t>(b_rows * ldb)),
          C0(static_cast<size_t>(c.M * ldc));
      for (float& x : A) x = dist(rng);
      for (float& x : B) x = dist(rng);
      for (float& x : C0) x = dist(rng);
      std::vector<float> cs = C0, cv = C0;
      set_isa(Isa::scalar);
      fn(c.ta, c.tb, c.M, c.N, c.K, c.alpha, A.data(), lda, B.data(), ldb, c.beta, cs.data(), ldc);
      set_isa(isa);
      fn(c.ta, c.tb, c.M, c.N, c.K, c.alpha, A.data(), lda, B.data(), ldb, c.beta, cv.data(), ldc);
      size_t diff = 0;
      for (size_t i = 0; i < cs.size(); ++i) diff += std::memcmp(&cs[i], &cv[i], sizeof(float)) != 0;
      EXPECT_EQ(diff, 0u) << isa_name(isa) << " vs scalar: " << describe(c);
    }
  }
  set_isa(saved);
}

TEST(GemmIsa, Avx2IsBitIdenticalToScalar) {
  if (!cpu_supports(Isa::avx2)) GTEST_SKIP() << "this CPU lacks AVX2+FMA: the avx2 GEMM path was not run";
  expect_target_matches_scalar(Isa::avx2);
}

TEST(GemmIsa, Avx512IsBitIdenticalToScalar) {
  if (!cpu_supports(Isa::avx512)) GTEST_SKIP() << "this CPU lacks AVX-512F: the avx512 GEMM path was not run";
  expect_target_matches_scalar(Isa::avx512);
}

}  // namespace
}  // namespace convlab

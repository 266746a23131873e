// tests/test_gridding_artefacts.cpp: the gridding-artefact metric (models/gridding_artefacts.h) on synthetic
// maps with known answers (a pure period-2 pattern scores 1, a smooth map ~0, a period-3 pattern 1 at r = 3 and
// ~0 at r = 2), against a direct 2-D DFT of its definition on random maps (cropping included), and its errors.
#include <gtest/gtest.h>

#include <cmath>
#include <complex>
#include <vector>

#include "core/error.h"
#include "core/random.h"
#include "models/gridding_artefacts.h"

namespace convlab {
namespace {

// The definition, literally: crop to multiples of r, remove each channel's mean, full 2-D DFT, energy at
// (u, v) with u % (H'/r) == 0 and v % (W'/r) == 0 (DC excluded) over all the energy.
double dft_share(const std::vector<float>& x, int64_t C, int64_t H, int64_t W, int64_t r) {
  const int64_t Hc = r * (H / r), Wc = r * (W / r);
  const double pi = std::acos(-1.0);
  double grid = 0, total = 0;
  for (int64_t c = 0; c < C; ++c) {
    double m = 0;
    for (int64_t i = 0; i < Hc; ++i)
      for (int64_t j = 0; j < Wc; ++j) m += x[size_t(c * H * W + i * W + j)];
    m /= double(Hc * Wc);
    for (int64_t u = 0; u < Hc; ++u)
      for (int64_t v = 0; v < Wc; ++v) {
        std::complex<double> F = 0;
        for (int64_t i = 0; i < Hc; ++i)
          for (int64_t j = 0; j < Wc; ++j)
            F += (double(x[size_t(c * H * W + i * W + j)]) - m) *
                 std::polar(1.0, -2 * pi * (double(u * i) / double(Hc) + double(v * j) / double(Wc)));
        const double e = std::norm(F);
        total += e;
        if ((u != 0 || v != 0) && u % (Hc / r) == 0 && v % (Wc / r) == 0) grid += e;
      }
  }
  return total > 0 ? grid / total : 0.0;
}

TEST(GriddingArtefacts, PurePeriodTwoPatternScoresOne) {
  const int64_t H = 16, W = 16;
  std::vector<float> x(size_t(2 * H * W));
  for (int64_t i = 0; i < H; ++i)
    for (int64_t j = 0; j < W; ++j) {
      x[size_t(i * W + j)] = (i % 2 == 0 && j % 2 == 0) ? 1.f : 0.f;          // dotted sub-lattice
      x[size_t(H * W + i * W + j)] = (i + j) % 2 == 0 ? 0.25f : -0.75f;       // checkerboard
    }
  EXPECT_NEAR(grid_energy_share(x.data(), 2, H, W, 2), 1.0, 1e-12);
  // A period-2 pattern is also 4-periodic: its energy sits on the period-4 grid too.
  EXPECT_NEAR(grid_energy_share(x.data(), 2, H, W, 4), 1.0, 1e-12);
}

TEST(GriddingArtefacts, SmoothMapScoresNearZero) {
  const int64_t H = 32, W = 32;
  std::vector<float> x(size_t(H * W));
  for (int64_t i = 0; i < H; ++i)
    for (int64_t j = 0; j < W; ++j)
      x[size_t(i * W + j)] = float(std::exp(-((i - 14.0) * (i - 14.0) + (j - 17.0) * (j - 17.0)) / (2 * 6.0 * 6.0)));
  const double s = grid_energy_share(x.data(), 1, H, W, 2);
  EXPECT_GE(s, 0.0);
  EXPECT_LT(s, 1e-3);
  // A constant map has no energy: 0 by definition, not NaN.
  std::vector<float> flat(size_t(H * W), 0.5f);
  EXPECT_EQ(grid_energy_share(flat.data(), 1, H, W, 2), 0.0);
}

TEST(GriddingArtefacts, PeriodThreePatternScoresOneAtThreeOnly) {
  const int64_t H = 31, W = 32;  // not multiples of 3: the crop to 30 x 30 keeps the pattern whole
  std::vector<float> x(size_t(H * W));
  for (int64_t i = 0; i < H; ++i)
    for (int64_t j = 0; j < W; ++j) x[size_t(i * W + j)] = (i % 3 == 1 && j % 3 == 2) ? 1.f : 0.1f * float((i + 2 * j) % 3 == 0);
  EXPECT_NEAR(grid_energy_share(x.data(), 1, H, W, 3), 1.0, 1e-12);
  EXPECT_NEAR(grid_energy_share(x.data(), 1, H, W, 3), dft_share(x, 1, H, W, 3), 1e-9);
  // At period 2 the same map shows little grid energy (its period-3 content is not on the period-2 grid).
  const double at2 = grid_energy_share(x.data(), 1, H, W, 2);
  EXPECT_NEAR(at2, dft_share(x, 1, H, W, 2), 1e-9);
  EXPECT_LT(at2, 0.1);
}

TEST(GriddingArtefacts, MatchesDirectDftOnRandomMaps) {
  Rng rng(7);
  for (const auto& [C, H, W, r] : std::vector<std::array<int64_t, 4>>{{1, 8, 8, 2}, {3, 9, 11, 2}, {2, 12, 10, 3}, {2, 10, 10, 5}}) {
    std::vector<float> x(size_t(C * H * W));
    for (float& v : x) v = float(rng.normal());
    // Add a weak period-r component so the share is neither ~0 nor ~1.
    for (int64_t c = 0; c < C; ++c)
      for (int64_t i = 0; i < H; ++i)
        for (int64_t j = 0; j < W; ++j) x[size_t(c * H * W + i * W + j)] += (i % r == 0 && j % r == 0) ? 0.7f : 0.f;
    const double got = grid_energy_share(x.data(), C, H, W, r), want = dft_share(x, C, H, W, r);
    EXPECT_NEAR(got, want, 1e-9) << C << "x" << H << "x" << W << " r=" << r;
    EXPECT_GT(got, 0.02);
    EXPECT_LT(got, 0.98);
    // The grid component of each channel carries exactly that channel's grid energy.
    double grid = 0;
    for (int64_t c = 0; c < C; ++c) {
      const std::vector<double> g = grid_component(x.data(), C, H, W, c, r);
      ASSERT_EQ(g.size(), size_t(r * (H / r) * r * (W / r)));
      for (double v : g) grid += v * v;
    }
    double total = 0;
    for (int64_t c = 0; c < C; ++c) {
      double m = 0;
      const int64_t Hc = r * (H / r), Wc = r * (W / r);
      for (int64_t i = 0; i < Hc; ++i)
        for (int64_t j = 0; j < Wc; ++j) m += x[size_t(c * H * W + i * W + j)];
      m /= double(Hc * Wc);
      for (int64_t i = 0; i < Hc; ++i)
        for (int64_t j = 0; j < Wc; ++j) total += std::pow(x[size_t(c * H * W + i * W + j)] - m, 2);
    }
    EXPECT_NEAR(grid / total, got, 1e-9);
  }
}

TEST(GriddingArtefacts, TensorOverloadReadsOneSample) {
  const int64_t H = 8, W = 8;
  std::vector<float> v(size_t(2 * H * W), 0.f);
  for (int64_t i = 0; i < H; ++i)
    for (int64_t j = 0; j < W; ++j) v[size_t(H * W + i * W + j)] = float((i + j) % 2);  // sample 1: checkerboard
  v[3] = 1.f;                                                                          // sample 0: one dot
  const Tensor t = Tensor::from({2, 1, H, W}, v);
  EXPECT_NEAR(grid_energy_share(t, 1, 2), 1.0, 1e-12);
  EXPECT_NEAR(grid_energy_share(t, 0, 2), 3.0 / 63.0, 1e-12);  // a single dot: 3 of the 63 non-DC frequencies
}

TEST(GriddingArtefacts, RefusesBadArguments) {
  std::vector<float> x(16, 0.f);
  EXPECT_THROW(grid_energy_share(x.data(), 1, 4, 4, 1), Error);
  EXPECT_THROW(grid_energy_share(x.data(), 1, 4, 4, 5), Error);
  EXPECT_THROW(grid_component(x.data(), 1, 4, 4, 1, 2), Error);
  EXPECT_THROW(grid_energy_share(Tensor::from({16}, x), 0, 2), Error);
}

}  // namespace
}  // namespace convlab

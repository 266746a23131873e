// models/gridding_artefacts.cpp: see gridding_artefacts.h (the definition and the identity used).
#include "models/gridding_artefacts.h"

#include "core/error.h"

namespace convlab {

namespace {

void check_args(int64_t C, int64_t H, int64_t W, int64_t r) {
  CL_CHECK(r >= 2, "grid_energy_share: the period r must be >= 2, got " << r);
  CL_CHECK(C >= 1 && H >= r && W >= r, "grid_energy_share: maps [" << C << ", " << H << ", " << W
                                                                    << "] are smaller than the period " << r);
}

// Phase means P(a, b) (r * r values) and the mean of channel c over the crop H' x W'.
double phase_means(const float* x, int64_t H, int64_t W, int64_t r, std::vector<double>& P) {
  const int64_t Hc = r * (H / r), Wc = r * (W / r);
  P.assign(size_t(r * r), 0.0);
  for (int64_t i = 0; i < Hc; ++i)
    for (int64_t j = 0; j < Wc; ++j) P[size_t((i % r) * r + j % r)] += double(x[i * W + j]);
  const double n = double(Hc / r) * double(Wc / r);
  double m = 0;
  for (double& p : P) m += p, p /= n;
  return m / (double(Hc) * double(Wc));
}

}  // namespace

double grid_energy_share(const float* maps, int64_t C, int64_t H, int64_t W, int64_t r) {
  check_args(C, H, W, r);
  const int64_t Hc = r * (H / r), Wc = r * (W / r);
  const double n = double(Hc / r) * double(Wc / r);
  double grid = 0, total = 0;
  std::vector<double> P;
  for (int64_t c = 0; c < C; ++c) {
    const float* x = maps + c * H * W;
    const double m = phase_means(x, H, W, r, P);
    for (double p : P) grid += n * (p - m) * (p - m);
    for (int64_t i = 0; i < Hc; ++i)
      for (int64_t j = 0; j < Wc; ++j) {
        const double d = double(x[i * W + j]) - m;
        total += d * d;
      }
  }
  if (!(total > 0)) return 0.0;  // constant maps: no energy anywhere
  const double s = grid / total;
  return s > 1.0 ? 1.0 : s;  // rounding can put a pure pattern a hair above 1
}

double grid_energy_share(const Tensor& batch, int64_t b, int64_t r) {
  CL_CHECK(batch.dim() == 4, "grid_energy_share: expected maps [N, C, H, W], got " << batch.dim() << " dimensions");
  const int64_t N = batch.size(0), C = batch.size(1), H = batch.size(2), W = batch.size(3);
  CL_CHECK(b >= 0 && b < N, "grid_energy_share: sample " << b << " of a batch of " << N);
  return grid_energy_share(batch.data() + b * C * H * W, C, H, W, r);
}

std::vector<double> grid_component(const float* maps, int64_t C, int64_t H, int64_t W, int64_t c, int64_t r) {
  check_args(C, H, W, r);
  CL_CHECK(c >= 0 && c < C, "grid_component: channel " << c << " of " << C);
  std::vector<double> P;
  const double m = phase_means(maps + c * H * W, H, W, r, P);
  const int64_t Hc = r * (H / r), Wc = r * (W / r);
  std::vector<double> out(size_t(Hc * Wc));
  for (int64_t i = 0; i < Hc; ++i)
    for (int64_t j = 0; j < Wc; ++j) out[size_t(i * Wc + j)] = P[size_t((i % r) * r + j % r)] - m;
  return out;
}

}  // namespace convlab

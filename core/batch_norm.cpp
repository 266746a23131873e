// core/batch_norm.cpp: batch norm forward and backward, parallel over blocks of channels; every per-channel sum runs
// over (n, pixel) in a fixed order in double, so results do not depend on the thread count.
//
// Training backward, with xhat = (x - mean) * invstd and M = N*H*W elements per channel:
//   dxhat = dy * gamma
//   dx    = invstd / M * (M * dxhat - sum(dxhat) - xhat * sum(dxhat * xhat))
//   dgamma = sum(dy * xhat),  dbeta = sum(dy)
// Eval backward: dx = dy * gamma * invstd (the statistics are constants).
#include "core/batch_norm.h"

#include <algorithm>
#include <cmath>
#include <type_traits>
#include <vector>

#include "core/error.h"
#include "core/shards.h"

namespace convlab {
namespace {

// Per-channel sums over (n, pixel) run as W channels side by side: W independent double chains, each adding in
// the plain loop's order (image by image, pixel by pixel), so the bits are those of summing the channels one at
// a time, without waiting on one add's latency per element (the single chain was ~12% of an hdc_seg step).
constexpr int64_t kChains = 4;

// out[j] = sum over images [n0, n1) and pixels of channel c0 + j of x, or of (x - m[j])^2 when m is given.
template <int W>
void channel_sums(const float* px, int64_t C, int64_t HW, int64_t n0, int64_t n1, int64_t c0, const double* m,
                  double* out) {
  double s[W] = {};
  for (int64_t n = n0; n < n1; ++n) {
    const float* p[W];
    for (int j = 0; j < W; ++j) p[j] = px + (n * C + c0 + j) * HW;
    if (m) {
      for (int64_t i = 0; i < HW; ++i)
        for (int j = 0; j < W; ++j) s[j] += (p[j][i] - m[j]) * (p[j][i] - m[j]);
    } else {
      for (int64_t i = 0; i < HW; ++i)
        for (int j = 0; j < W; ++j) s[j] += p[j][i];
    }
  }
  for (int j = 0; j < W; ++j) out[j] = s[j];
}

// sdy[j] = sum of dy and sdyx[j] = sum of dy * xhat over images [n0, n1) and pixels of channel c0 + j.
template <int W>
void grad_sums(const float* px, const float* pg, int64_t C, int64_t HW, int64_t n0, int64_t n1, int64_t c0,
               const float* mean, const float* invstd, double* sdy, double* sdyx) {
  double a[W] = {}, b[W] = {};
  float m[W], is[W];
  for (int j = 0; j < W; ++j) m[j] = mean[c0 + j], is[j] = invstd[c0 + j];
  for (int64_t n = n0; n < n1; ++n) {
    const float *p[W], *q[W];
    for (int j = 0; j < W; ++j) p[j] = px + (n * C + c0 + j) * HW, q[j] = pg + (n * C + c0 + j) * HW;
    for (int64_t i = 0; i < HW; ++i)
      for (int j = 0; j < W; ++j) {
        a[j] += q[j][i];
        b[j] += double(q[j][i]) * (p[j][i] - m[j]) * is[j];
      }
  }
  for (int j = 0; j < W; ++j) sdy[j] = a[j], sdyx[j] = b[j];
}

// The channels [c0, c0 + w) (w <= kChains) of block b: each sum kernel instantiated for every width.
template <typename F>
void for_width(int64_t w, F&& f) {
  switch (w) {
    case 1: return f(std::integral_constant<int, 1>{});
    case 2: return f(std::integral_constant<int, 2>{});
    case 3: return f(std::integral_constant<int, 3>{});
    default: return f(std::integral_constant<int, 4>{});
  }
}

}  // namespace

Tensor batch_norm2d(const Tensor& x, const Tensor& weight, const Tensor& bias, Tensor running_mean,
                    Tensor running_var, bool training, float momentum, float eps) {
  CL_CHECK(x.dim() == 4 || x.dim() == 2, "batch_norm2d: input must be [N, C, H, W] or [N, C], got input "
                                             << shape_str(x.shape()));
  const int64_t N = x.size(0), C = x.size(1), HW = x.dim() == 4 ? x.size(2) * x.size(3) : 1;
  for (const Tensor* t : std::initializer_list<const Tensor*>{&weight, &bias, &running_mean, &running_var})
    if (t->defined())
      CL_CHECK(t->dim() == 1 && t->size(0) == C, "batch_norm2d: parameter " << shape_str(t->shape())
                                                     << " must be [" << C << "] for input " << shape_str(x.shape()));
  CL_CHECK(!training || N * HW > 1, "batch_norm2d: training needs more than one value per channel, got input "
                                        << shape_str(x.shape()));
  const bool use_batch = training || !running_mean.defined();
  std::vector<float> mean(C), invstd(C);
  const float* px = x.data();
  Tensor y = Tensor::empty(x.shape());
  float* py = y.data();
  // Batch statistics: per batch shard (core/shards.h) double sums over its (n, pixel) in order, the shards
  // folded in order; two passes (the mean, then the squared deviations from it). One shard outside training.
  const int64_t shards = local_shards(N, "batch_norm2d"), per = N / shards;  // also cuts dgamma, dbeta
  std::vector<double> part(static_cast<size_t>(shards * C)), m_all(static_cast<size_t>(C)), s2_all(static_cast<size_t>(C));
  const int64_t blocks = (C + kChains - 1) / kChains;  // kChains channels summed side by side
  auto shard_sums = [&](bool squares) {
#pragma omp parallel for schedule(static)
    for (int64_t bl = 0; bl < blocks; ++bl) {
      const int64_t c0 = bl * kChains;
      for_width(std::min(kChains, C - c0), [&](auto w) {
        for (int64_t k = 0; k < shards; ++k)
          channel_sums<decltype(w)::value>(px, C, HW, k * per, (k + 1) * per, c0, squares ? m_all.data() + c0 : nullptr,
                          part.data() + k * C + c0);
      });
    }
  };
  const int64_t M = N * batch_shards().total / shards * HW;  // values per channel in the global batch
  if (use_batch) {
    shard_sums(false);
    fold_shards(part.data(), C, m_all.data());
    for (double& m : m_all) m /= double(M);
    shard_sums(true);
    fold_shards(part.data(), C, s2_all.data());
  }
#pragma omp parallel for schedule(static)
  for (int64_t c = 0; c < C; ++c) {
    double m, var;
    if (use_batch) {
      m = m_all[size_t(c)];
      const double s2 = s2_all[size_t(c)];
      var = s2 / double(M);
      if (training && running_mean.defined()) {
        const double unbiased = M > 1 ? s2 / double(M - 1) : var;
        running_mean.data()[c] = float((1.0 - momentum) * running_mean.data()[c] + momentum * m);
        running_var.data()[c] = float((1.0 - momentum) * running_var.data()[c] + momentum * unbiased);
      }
    } else {
      m = running_mean.data()[c];
      var = running_var.data()[c];
    }
    mean[c] = float(m);
    invstd[c] = float(1.0 / std::sqrt(var + eps));
    const float g = weight.defined() ? weight.data()[c] : 1.f, b = bias.defined() ? bias.data()[c] : 0.f;
    const float scale = g * invstd[c], shift = b - mean[c] * scale;
    for (int64_t n = 0; n < N; ++n) {
      const float* p = px + (n * C + c) * HW;
      float* q = py + (n * C + c) * HW;
      for (int64_t i = 0; i < HW; ++i) q[i] = p[i] * scale + shift;
    }
  }
  record(y, "batch_norm2d", {x, weight, bias},
         [x, weight, bias, mean, invstd, use_batch, N, C, HW, shards, per, M](const Tensor& g) {
           const float* px = x.data();
           const float* pg = g.data();
           float* dx = x.requires_grad() ? grad_buffer(x) : nullptr;
           float* dw = weight.defined() && weight.requires_grad() ? grad_buffer(weight) : nullptr;
           float* db = bias.defined() && bias.requires_grad() ? grad_buffer(bias) : nullptr;
           // sum(dy) and sum(dy * xhat) per channel: per shard, folded in shard order (as the statistics)
           std::vector<double> part(static_cast<size_t>(2 * shards * C)), sums(static_cast<size_t>(2 * C));
           const int64_t blocks = (C + kChains - 1) / kChains;  // kChains channels side by side, as the statistics
#pragma omp parallel for schedule(static)
           for (int64_t bl = 0; bl < blocks; ++bl) {
             const int64_t c0 = bl * kChains;
             for_width(std::min(kChains, C - c0), [&](auto w) {
               for (int64_t k = 0; k < shards; ++k)
                 grad_sums<decltype(w)::value>(px, pg, C, HW, k * per, (k + 1) * per, c0, mean.data(), invstd.data(),
                              part.data() + k * 2 * C + c0, part.data() + k * 2 * C + C + c0);
             });
           }
           fold_shards(part.data(), 2 * C, sums.data());
#pragma omp parallel for schedule(static)
           for (int64_t c = 0; c < C; ++c) {
             const float m = mean[c], is = invstd[c];
             const double sdy = sums[size_t(c)], sdyx = sums[size_t(C + c)];
             if (dw) dw[c] += float(sdyx);
             if (db) db[c] += float(sdy);
             if (!dx) continue;
             const float gamma = weight.defined() ? weight.data()[c] : 1.f;
             const float k1 = gamma * is, k2 = use_batch ? float(sdy / double(M)) : 0.f,
                         k3 = use_batch ? float(sdyx / double(M)) : 0.f;
             for (int64_t n = 0; n < N; ++n) {
               const float* p = px + (n * C + c) * HW;
               const float* q = pg + (n * C + c) * HW;
               float* d = dx + (n * C + c) * HW;
               for (int64_t i = 0; i < HW; ++i) d[i] += k1 * (q[i] - k2 - (p[i] - m) * is * k3);
             }
           }
         });
  return y;
}

}  // namespace convlab

// core/batch_norm.cpp: batch norm forward and backward, parallel over channels; every per-channel sum runs
// over (n, pixel) in a fixed order in double, so results do not depend on the thread count.
//
// Training backward, with xhat = (x - mean) * invstd and M = N*H*W elements per channel:
//   dxhat = dy * gamma
//   dx    = invstd / M * (M * dxhat - sum(dxhat) - xhat * sum(dxhat * xhat))
//   dgamma = sum(dy * xhat),  dbeta = sum(dy)
// Eval backward: dx = dy * gamma * invstd (the statistics are constants).
#include "core/batch_norm.h"

#include <cmath>
#include <vector>

#include "core/error.h"

namespace convlab {

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
#pragma omp parallel for schedule(static)
  for (int64_t c = 0; c < C; ++c) {
    double m, var;
    if (use_batch) {
      double s = 0, s2 = 0;
      for (int64_t n = 0; n < N; ++n) {
        const float* p = px + (n * C + c) * HW;
        for (int64_t i = 0; i < HW; ++i) s += p[i];
      }
      m = s / double(N * HW);
      for (int64_t n = 0; n < N; ++n) {
        const float* p = px + (n * C + c) * HW;
        for (int64_t i = 0; i < HW; ++i) s2 += (p[i] - m) * (p[i] - m);
      }
      var = s2 / double(N * HW);
      if (training && running_mean.defined()) {
        const double unbiased = N * HW > 1 ? s2 / double(N * HW - 1) : var;
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
         [x, weight, bias, mean, invstd, use_batch, N, C, HW](const Tensor& g) {
           const float* px = x.data();
           const float* pg = g.data();
           float* dx = x.requires_grad() ? grad_buffer(x) : nullptr;
           float* dw = weight.defined() && weight.requires_grad() ? grad_buffer(weight) : nullptr;
           float* db = bias.defined() && bias.requires_grad() ? grad_buffer(bias) : nullptr;
#pragma omp parallel for schedule(static)
           for (int64_t c = 0; c < C; ++c) {
             const float m = mean[c], is = invstd[c];
             double sdy = 0, sdyx = 0;  // sum(dy), sum(dy * xhat)
             for (int64_t n = 0; n < N; ++n) {
               const float* p = px + (n * C + c) * HW;
               const float* q = pg + (n * C + c) * HW;
               for (int64_t i = 0; i < HW; ++i) {
                 sdy += q[i];
                 sdyx += double(q[i]) * (p[i] - m) * is;
               }
             }
             if (dw) dw[c] += float(sdyx);
             if (db) db[c] += float(sdy);
             if (!dx) continue;
             const float gamma = weight.defined() ? weight.data()[c] : 1.f;
             const double M = double(N * HW);
             const float k1 = gamma * is, k2 = use_batch ? float(sdy / M) : 0.f,
                         k3 = use_batch ? float(sdyx / M) : 0.f;
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

// core/loss.cpp: cross-entropy (softmax over channels per pixel), BCE with logits, MSE.
// Cross-entropy backward: d loss / d logit[c] = w[y] * (softmax[c] - [c == y]) / sum of counted weights.
// Per-image partial sums in double, added in image order: identical on 1 and 2 threads.
#include "core/loss.h"

#include <cmath>
#include <vector>

#include "core/error.h"
#include "core/shards.h"

namespace convlab {

Tensor cross_entropy(const Tensor& logits, const std::vector<int32_t>& target,
                     const std::vector<float>& class_weights, int32_t ignore_index) {
  CL_CHECK(logits.dim() == 4 || logits.dim() == 2,
           "cross_entropy: logits must be [N, C, H, W] or [N, C], got logits " << shape_str(logits.shape()));
  const int64_t N = logits.size(0), C = logits.size(1), HW = logits.dim() == 4 ? logits.size(2) * logits.size(3) : 1;
  CL_CHECK(static_cast<int64_t>(target.size()) == N * HW,
           "cross_entropy: target has " << target.size() << " labels, logits " << shape_str(logits.shape())
                                        << " need " << N * HW);
  CL_CHECK(class_weights.empty() || static_cast<int64_t>(class_weights.size()) == C,
           "cross_entropy: " << class_weights.size() << " class weights for " << C << " classes");
  for (size_t i = 0; i < target.size(); ++i)
    CL_CHECK(target[i] == ignore_index || (target[i] >= 0 && target[i] < C),
             "cross_entropy: target[" << i << "] = " << target[i] << " is not a class in [0, " << C << ")");
  const float* x = logits.data();
  std::vector<double> loss_n(N, 0.0), weight_n(N, 0.0);
#pragma omp parallel for schedule(static)
  for (int64_t n = 0; n < N; ++n) {
    for (int64_t p = 0; p < HW; ++p) {
      const int32_t y = target[n * HW + p];
      if (y == ignore_index) continue;
      const float* xp = x + n * C * HW + p;
      float m = xp[0];
      for (int64_t c = 1; c < C; ++c) m = std::max(m, xp[c * HW]);
      double s = 0;
      for (int64_t c = 0; c < C; ++c) s += std::exp(double(xp[c * HW] - m));
      const double w = class_weights.empty() ? 1.0 : class_weights[y];
      loss_n[n] += w * (std::log(s) + m - xp[y * HW]);
      weight_n[n] += w;
    }
  }
  // Per batch shard (core/shards.h) the images' sums in order, the shards folded in order: the loss and its
  // normaliser are the global batch's when the batch is spread over processes.
  const int64_t shards = local_shards(N, "cross_entropy"), per = N / shards;
  std::vector<double> part(static_cast<size_t>(2 * shards)), sums(2);
  for (int64_t k = 0; k < shards; ++k)
    for (int64_t n = k * per; n < (k + 1) * per; ++n) part[size_t(2 * k)] += loss_n[n], part[size_t(2 * k + 1)] += weight_n[n];
  fold_shards(part.data(), 2, sums.data());
  const double loss = sums[0], total_w = sums[1];
  Tensor out = Tensor::scalar(total_w > 0 ? float(loss / total_w) : NAN);  // PyTorch: nan when all ignored
  record(out, "cross_entropy", {logits}, [logits, target, class_weights, ignore_index, N, C, HW, total_w](const Tensor& g) {
    if (total_w <= 0) return;
    const float scale = float(g.data()[0] / total_w);
    const float* x = logits.data();
    float* dx = grad_buffer(logits);
#pragma omp parallel for schedule(static)
    for (int64_t n = 0; n < N; ++n) {
      for (int64_t p = 0; p < HW; ++p) {
        const int32_t y = target[n * HW + p];
        if (y == ignore_index) continue;
        const float* xp = x + n * C * HW + p;
        float* dp = dx + n * C * HW + p;
        float m = xp[0];
        for (int64_t c = 1; c < C; ++c) m = std::max(m, xp[c * HW]);
        double s = 0;
        for (int64_t c = 0; c < C; ++c) s += std::exp(double(xp[c * HW] - m));
        const float w = (class_weights.empty() ? 1.f : class_weights[y]) * scale;
        for (int64_t c = 0; c < C; ++c)
          dp[c * HW] += w * (float(std::exp(double(xp[c * HW] - m)) / s) - (c == y ? 1.f : 0.f));
      }
    }
  });
  return out;
}

Tensor bce_with_logits(const Tensor& logits, const Tensor& target) {
  CL_CHECK(logits.shape() == target.shape(), "bce_with_logits: logits " << shape_str(logits.shape())
                                                 << " and target " << shape_str(target.shape()) << " differ");
  const int64_t n = logits.numel();
  CL_CHECK(n > 0, "bce_with_logits: empty input");
  const float* x = logits.data();
  const float* t = target.data();
  // The mean over the global batch: per batch shard (core/shards.h; the elements of its samples, in order) a
  // double sum, the shards folded in order, divided by the global count. One shard outside training.
  const int64_t shards = local_shards(logits.dim() > 0 ? logits.size(0) : 1, "bce_with_logits"), per = n / shards;
  std::vector<double> part(static_cast<size_t>(shards));
  for (int64_t k = 0; k < shards; ++k)
    for (int64_t i = k * per; i < (k + 1) * per; ++i)  // max(x,0) - x*t + log(1 + exp(-|x|))
      part[size_t(k)] += std::max(x[i], 0.f) - double(x[i]) * t[i] + std::log1p(std::exp(-std::fabs(double(x[i]))));
  double s = 0;
  fold_shards(part.data(), 1, &s);
  const int64_t count = n / shards * batch_shards().total;  // elements in the global batch
  Tensor out = Tensor::scalar(float(s / double(count)));
  record(out, "bce_with_logits", {logits, target}, [logits, target, n, count](const Tensor& g) {
    const float scale = g.data()[0] / float(count);
    const float* x = logits.data();
    const float* t = target.data();
    if (logits.requires_grad()) {
      float* dx = grad_buffer(logits);
      for (int64_t i = 0; i < n; ++i) dx[i] += scale * (1.f / (1.f + std::exp(-x[i])) - t[i]);
    }
    if (target.requires_grad()) {
      float* dt = grad_buffer(target);
      for (int64_t i = 0; i < n; ++i) dt[i] -= scale * x[i];
    }
  });
  return out;
}

Tensor mse_loss(const Tensor& input, const Tensor& target) {
  CL_CHECK(input.shape() == target.shape(), "mse_loss: input " << shape_str(input.shape()) << " and target "
                                                               << shape_str(target.shape()) << " differ");
  const int64_t n = input.numel();
  CL_CHECK(n > 0, "mse_loss: empty input");
  require_single_process("mse_loss");
  double s = 0;
  for (int64_t i = 0; i < n; ++i) {
    const double d = double(input.data()[i]) - target.data()[i];
    s += d * d;
  }
  Tensor out = Tensor::scalar(float(s / n));
  record(out, "mse_loss", {input, target}, [input, target, n](const Tensor& g) {
    const float scale = 2.f * g.data()[0] / float(n);
    if (input.requires_grad()) {
      float* d = grad_buffer(input);
      for (int64_t i = 0; i < n; ++i) d[i] += scale * (input.data()[i] - target.data()[i]);
    }
    if (target.requires_grad()) {
      float* d = grad_buffer(target);
      for (int64_t i = 0; i < n; ++i) d[i] -= scale * (input.data()[i] - target.data()[i]);
    }
  });
  return out;
}

}  // namespace convlab

// data/digit_scenes.cpp: see digit_scenes.h.
#include "data/digit_scenes.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "data/canvas.h"

namespace convlab {
namespace {

int32_t bucket_for_scale(float s) {
  if (s < 0.8f) return kBucketSmall;
  if (s < 1.3f) return kBucketMedium;
  return kBucketLarge;
}

// The 28x28 digit `src` scaled to a d x d box (d = round(28 s)): bilinear, zero outside the source.
std::vector<float> scale_digit(const float* src, float s, int64_t d) {
  const int64_t S = Mnist::kSide;
  auto at = [&](int64_t y, int64_t x) { return y >= 0 && y < S && x >= 0 && x < S ? src[y * S + x] : 0.f; };
  std::vector<float> out(d * d);
  for (int64_t y = 0; y < d; ++y)
    for (int64_t x = 0; x < d; ++x) {
      const float fy = (static_cast<float>(y) + 0.5f) / s - 0.5f, fx = (static_cast<float>(x) + 0.5f) / s - 0.5f;
      const int64_t y0 = static_cast<int64_t>(std::floor(fy)), x0 = static_cast<int64_t>(std::floor(fx));
      const float wy = fy - static_cast<float>(y0), wx = fx - static_cast<float>(x0);
      out[y * d + x] = (1 - wy) * ((1 - wx) * at(y0, x0) + wx * at(y0, x0 + 1)) +
                       wy * ((1 - wx) * at(y0 + 1, x0) + wx * at(y0 + 1, x0 + 1));
    }
  return out;
}

}  // namespace

DigitScenes::DigitScenes(std::shared_ptr<const Mnist> mnist, DigitScenesOptions opt)
    : mnist_(std::move(mnist)), opt_(opt) {
  CL_CHECK(mnist_ != nullptr && mnist_->size() > 0, "digit_scenes: no MNIST digits loaded");
  CL_CHECK(opt_.image_size >= 16 && opt_.image_size <= 4096,
           "digit_scenes: image_size must be in [16, 4096], got " << opt_.image_size);
  CL_CHECK(opt_.size >= 1, "digit_scenes: size must be >= 1, got " << opt_.size);
  CL_CHECK(opt_.min_digits >= 1 && opt_.max_digits >= opt_.min_digits,
           "digit_scenes: need 1 <= min_digits <= max_digits, got " << opt_.min_digits << ", " << opt_.max_digits);
  CL_CHECK(opt_.min_scale > 0.f && opt_.max_scale >= opt_.min_scale,
           "digit_scenes: need 0 < min_scale <= max_scale, got " << opt_.min_scale << ", " << opt_.max_scale);
  CL_CHECK(opt_.max_overlap >= 0.f && opt_.max_overlap <= 1.f,
           "digit_scenes: max_overlap must be in [0, 1], got " << opt_.max_overlap);
  pool_ = mnist_indices(*mnist_, opt_.split);
  CL_CHECK(!pool_.empty(), "digit_scenes: the MNIST split is empty");
}

std::vector<std::string> DigitScenes::class_names() const {
  std::vector<std::string> n = {"background"};
  for (int d = 0; d < 10; ++d) n.push_back(std::to_string(d));
  return n;
}

SegSample DigitScenes::get(int64_t i) const {
  CL_CHECK(i >= 0 && i < opt_.size, "digit_scenes: sample index " << i << " out of range [0, " << opt_.size << ")");
  const int64_t S = opt_.image_size;
  Rng rng(sample_seed(opt_.seed, i));
  Canvas cv(S, S);
  std::vector<Colour> used = {paint_background(cv, rng)};
  const int64_t n = opt_.min_digits + rng.randint(opt_.max_digits - opt_.min_digits + 1);
  const float smax = std::min(opt_.max_scale, static_cast<float>(S) / Mnist::kSide);
  const float smin = std::min(opt_.min_scale, smax);
  for (int64_t k = 0; k < n; ++k) {
    const int64_t idx = pool_[rng.randint(static_cast<int64_t>(pool_.size()))];
    const float s = smin * std::pow(smax / smin, rng.uniform());
    const int64_t d = std::clamp<int64_t>(std::lround(Mnist::kSide * s), 1, S);
    const std::vector<float> alpha = scale_digit(mnist_->image(idx), s, d);
    int64_t strokes = 0;
    for (float a : alpha) strokes += a >= 0.5f;
    if (strokes == 0) continue;
    int64_t top = -1, left = -1;
    for (int attempt = 0; attempt < 8; ++attempt) {
      const int64_t ty = rng.randint(S - d + 1), tx = rng.randint(S - d + 1);
      int64_t covered = 0;
      for (int64_t y = 0; y < d; ++y)
        for (int64_t x = 0; x < d; ++x) covered += alpha[y * d + x] >= 0.5f && cv.label[(ty + y) * S + tx + x] != 0;
      if (k == 0 || static_cast<float>(covered) <= opt_.max_overlap * static_cast<float>(strokes)) {
        top = ty;
        left = tx;
        break;
      }
    }
    if (top < 0) continue;
    const Colour col = pick_colour(rng, used, 0.45f);
    used.push_back(col);
    const int32_t cls = mnist_->labels[idx] + 1, bkt = bucket_for_scale(s);
    for (int64_t y = 0; y < d; ++y)
      for (int64_t x = 0; x < d; ++x) {
        const float a = alpha[y * d + x];
        if (a <= 0.f) continue;
        cv.blend(top + y, left + x, col, std::min(a, 1.f));
        if (a >= 0.5f) {
          cv.label[(top + y) * S + left + x] = cls;
          cv.bucket[(top + y) * S + left + x] = bkt;
        }
      }
  }
  return cv.to_sample();
}

}  // namespace convlab

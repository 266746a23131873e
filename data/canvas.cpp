// data/canvas.cpp: see canvas.h.
#include "data/canvas.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"

namespace convlab {

float colour_distance(const Colour& a, const Colour& b) {
  const float dr = a.r - b.r, dg = a.g - b.g, db = a.b - b.b;
  return std::sqrt(dr * dr + dg * dg + db * db);
}

// The size is checked before the members are sized by it (a delegating constructor runs the check first).
static int64_t checked_area(int64_t h, int64_t w) {
  CL_CHECK(h > 0 && w > 0 && h <= 65536 && w <= 65536, "canvas: size must be in [1, 65536], got " << h << "x" << w);
  return h * w;
}

Canvas::Canvas(int64_t h, int64_t w) : Canvas(h, w, checked_area(h, w)) {}

Canvas::Canvas(int64_t h, int64_t w, int64_t area)
    : H(h), W(w), rgb(static_cast<size_t>(3 * area), 0.f), label(area, 0), bucket(area, 0) {}

void Canvas::blend(int64_t y, int64_t x, const Colour& c, float alpha) {
  const int64_t p = y * W + x, plane = H * W;
  rgb[p] += alpha * (c.r - rgb[p]);
  rgb[plane + p] += alpha * (c.g - rgb[plane + p]);
  rgb[2 * plane + p] += alpha * (c.b - rgb[2 * plane + p]);
}

void Canvas::paint(int64_t y, int64_t x, const Colour& c, int32_t cls, int32_t bkt) {
  if (!inside(y, x)) return;
  blend(y, x, c, 1.f);
  label[y * W + x] = cls;
  bucket[y * W + x] = bkt;
}

SegSample Canvas::to_sample() const {
  SegSample s;
  s.H = H;
  s.W = W;
  s.image = Tensor::empty({3, H, W});
  std::copy(rgb.begin(), rgb.end(), s.image.data());
  s.label = label;
  s.bucket = bucket;
  return s;
}

Colour paint_background(Canvas& cv, Rng& rng) {
  const Colour base{rng.uniform(0.1f, 0.9f), rng.uniform(0.1f, 0.9f), rng.uniform(0.1f, 0.9f)};
  struct Wave {
    float ky, kx, phase, gain[3];
  };
  Wave waves[3];
  for (Wave& w : waves) {
    const float period = rng.uniform(8.f, 32.f), angle = rng.uniform(0.f, 3.14159265f);
    w.ky = 6.2831853f / period * std::sin(angle);
    w.kx = 6.2831853f / period * std::cos(angle);
    w.phase = rng.uniform(0.f, 6.2831853f);
    for (float& g : w.gain) g = rng.uniform(0.02f, 0.06f);  // three waves: at most +-0.18 in total
  }
  const int64_t plane = cv.H * cv.W;
  const float basev[3] = {base.r, base.g, base.b};
  for (int64_t y = 0; y < cv.H; ++y)
    for (int64_t x = 0; x < cv.W; ++x) {
      float s[3] = {0.f, 0.f, 0.f};
      for (const Wave& w : waves) {
        const float v = std::sin(w.ky * static_cast<float>(y) + w.kx * static_cast<float>(x) + w.phase);
        for (int c = 0; c < 3; ++c) s[c] += w.gain[c] * v;
      }
      for (int c = 0; c < 3; ++c) {
        const float v = basev[c] + s[c] + rng.uniform(-0.03f, 0.03f);
        cv.rgb[c * plane + y * cv.W + x] = std::clamp(v, 0.f, 1.f);
      }
    }
  std::fill(cv.label.begin(), cv.label.end(), 0);
  std::fill(cv.bucket.begin(), cv.bucket.end(), 0);
  return base;
}

Colour pick_colour(Rng& rng, const std::vector<Colour>& avoid, float min_dist) {
  Colour best;
  float best_d = -1.f;
  for (int t = 0; t < 64; ++t) {
    const Colour c{rng.uniform(), rng.uniform(), rng.uniform()};
    float d = 1e9f;
    for (const Colour& a : avoid) d = std::min(d, colour_distance(c, a));
    if (d >= min_dist) return c;
    if (d > best_d) {
      best_d = d;
      best = c;
    }
  }
  return best;
}

}  // namespace convlab

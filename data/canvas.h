// data/canvas.h: the painting helpers shared by the synthetic scene generators (shapes, digit scenes).
//
// A Canvas holds a planar RGB image in [0, 1] plus the label and size-bucket maps being built. Scenes are
// painted back to front: a textured background, then objects that overwrite image, label and bucket.
// Colours are random per object and chosen far from the background's base colour (and from earlier
// objects), so colour says nothing about the class but every object is visible.
#pragma once
#include <cstdint>
#include <vector>

#include "core/random.h"
#include "data/dataset.h"

namespace convlab {

struct Colour {
  float r = 0, g = 0, b = 0;
};
float colour_distance(const Colour& a, const Colour& b);  // Euclidean in RGB, in [0, sqrt(3)]

struct Canvas {
  Canvas(int64_t H, int64_t W);  // 1 <= H, W <= 65536, checked before anything is allocated
  int64_t H, W;
  std::vector<float> rgb;       // [3, H, W] planar, in [0, 1]
  std::vector<int32_t> label;   // [H, W]
  std::vector<int32_t> bucket;  // [H, W]

  bool inside(int64_t y, int64_t x) const { return y >= 0 && y < H && x >= 0 && x < W; }
  // Blend colour c over pixel (y, x) with opacity alpha in [0, 1]; no bounds check.
  void blend(int64_t y, int64_t x, const Colour& c, float alpha = 1.f);
  // Colour plus label/bucket at (y, x) if inside.
  void paint(int64_t y, int64_t x, const Colour& c, int32_t cls, int32_t bkt);
  SegSample to_sample() const;

 private:
  Canvas(int64_t H, int64_t W, int64_t area);
};

// Textured background: a random base colour in [0.1, 0.9]^3, three low-frequency plane waves (periods
// 8-32 px, so nothing looks like a 1 px line) with per-channel gains, and +-0.03 per-pixel noise.
// Sets label and bucket to 0 and returns the base colour.
Colour paint_background(Canvas& cv, Rng& rng);

// A uniform random colour at least `min_dist` from every colour in `avoid` (up to 64 tries; otherwise the
// candidate farthest from its nearest avoided colour).
Colour pick_colour(Rng& rng, const std::vector<Colour>& avoid, float min_dist);

}  // namespace convlab

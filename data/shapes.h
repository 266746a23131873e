// data/shapes.h: the embedded multi-scale shapes segmentation set (no download, generated in-process).
//
// Each sample is a textured background with a few filled shapes (disc, square, equilateral triangle,
// ring) and several 1 px lines (straight or gently curved) drawn behind them. Every object gets a random
// colour far from the background's, so colour says nothing about the class. What does:
//  - disc / square / triangle have the SAME area (pi r^2 for a size parameter r), so neither size nor
//    pixel count tells them apart: only the outline does, and an interior pixel sees it only when the
//    receptive field reaches the object's edge (large objects need context);
//  - ring: a disc outline of thickness max(2, 0.35 r), recognisable locally;
//  - line: 1 px wide (8-connected, no doubled pixels), the structure a dilated-only net can step over.
// Design choices that keep every class learnable in a short run (see docs/data.md and the pilot in
// EXPERIMENTS.md): lines are added until they own `line_share` (default 6%) of the pixels; squares are
// axis-aligned and triangles point up/down/left/right (unless free_rotation), so the boundary cue is
// easy and what stays hard is the context; shapes may cover at most `max_overlap` of their area with
// earlier shapes (outlines stay visible); r <= image_size / 4 (16 px at 64: a disc fits a 35 px field).
//
// Class ids: 0 background, then the names of `classes` in the order given (default: disc 1, square 2,
// triangle 3, ring 4, line 5). Size buckets (per pixel): by the object's nominal area A = pi r^2
// (for a ring the area it encloses): small A < 154 px (r < 7), medium A < 380 px (r < 11), large
// otherwise; lines are "thin" (4). The thresholds are absolute pixels because receptive fields are.
// Images are float RGB in [0, 1], not normalised.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "core/random.h"
#include "data/dataset.h"

namespace convlab {

struct ShapesOptions {
  int64_t image_size = 64;  // H = W
  uint64_t seed = 0;        // use a different seed for a validation set
  int64_t size = 10000;     // number of samples; sample i exists for i in [0, size)
  std::vector<std::string> classes = {"disc", "square", "triangle", "ring", "line"};
  int64_t min_objects = 3, max_objects = 6;  // filled shapes attempted per image (uniform count)
  float min_radius = 0, max_radius = 0;      // size parameter r in px; 0 = auto: 3*S/64 (>= 2), S/4
  bool free_rotation = false;                // false: axis-aligned squares, triangles pointing up/down/left/right
  float max_overlap = 0.15f;                 // max share of a shape's pixels already covered by others
  float ring_weight = 1.5f;                  // rings are thinner: drawn more often to balance pixel shares
  float line_share = 0.06f;                  // lines are added until they cover this share of pixels
  int64_t max_lines = 12;
  float curved_line_prob = 0.5f;             // share of lines that are quadratic Bezier curves
};

class ShapesDataset : public SegDataset {
 public:
  explicit ShapesDataset(ShapesOptions opt = {});  // validates the options (convlab::Error)
  int64_t size() const override { return opt_.size; }
  SegSample get(int64_t i) const override;
  SegSample sample(int64_t i) const { return get(i); }
  int64_t num_classes() const override { return static_cast<int64_t>(opt_.classes.size()) + 1; }
  std::vector<std::string> class_names() const override;
  const ShapesOptions& options() const { return opt_; }
  // Every class name the generator knows, in canonical order.
  static const std::vector<std::string>& known_classes();

 private:
  ShapesOptions opt_;
  float rmin_ = 0, rmax_ = 0;
  int32_t id_[5] = {0, 0, 0, 0, 0};  // class id of each known class (0 = disabled)
};

}  // namespace convlab

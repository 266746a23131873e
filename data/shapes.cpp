// data/shapes.cpp: see shapes.h. Rasterisation is exact (a pixel belongs to a shape when its centre
// (x + 0.5, y + 0.5) does), no anti-aliasing, so label maps and images agree pixel for pixel.
#include "data/shapes.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "data/canvas.h"

namespace convlab {
namespace {

enum Kind { kDisc = 0, kSquare, kTriangle, kRing, kLine };
constexpr float kPi = 3.14159265358979f;
constexpr float kSqrtPiHalf = 0.886226925f;  // half side of the square of area pi r^2, over r
constexpr float kTriR = 1.555115f;           // circumradius of the equilateral triangle of area pi r^2, over r

int32_t bucket_for_area(double area) {
  if (area < 154.0) return kBucketSmall;   // r < 7
  if (area < 380.0) return kBucketMedium;  // r < 11
  return kBucketLarge;
}

struct Point {
  int64_t y, x;
};

// Pixels of a filled shape of kind k, size r, centre (cy, cx) in continuous coordinates, rotation th.
std::vector<Point> shape_pixels(Kind k, float r, float cy, float cx, float th, int64_t S) {
  const float ext = k == kTriangle ? kTriR * r : k == kSquare ? kSqrtPiHalf * 1.41421356f * r : r;
  const int64_t y0 = std::max<int64_t>(0, static_cast<int64_t>(std::floor(cy - ext - 1)));
  const int64_t y1 = std::min<int64_t>(S - 1, static_cast<int64_t>(std::ceil(cy + ext + 1)));
  const int64_t x0 = std::max<int64_t>(0, static_cast<int64_t>(std::floor(cx - ext - 1)));
  const int64_t x1 = std::min<int64_t>(S - 1, static_cast<int64_t>(std::ceil(cx + ext + 1)));
  const float c = std::cos(th), s = std::sin(th);
  const float h = kSqrtPiHalf * r, R = kTriR * r;
  const float rin = r - std::max(2.f, 0.35f * r);
  std::vector<Point> out;
  for (int64_t y = y0; y <= y1; ++y)
    for (int64_t x = x0; x <= x1; ++x) {
      const float dy = static_cast<float>(y) + 0.5f - cy, dx = static_cast<float>(x) + 0.5f - cx;
      bool in = false;
      switch (k) {
        case kDisc: in = dx * dx + dy * dy <= r * r; break;
        case kRing: {
          const float d2 = dx * dx + dy * dy;
          in = d2 <= r * r && d2 > rin * rin;
          break;
        }
        case kSquare: in = std::abs(c * dx + s * dy) <= h && std::abs(-s * dx + c * dy) <= h; break;
        case kTriangle: {
          // Vertices at angles th + 2 pi j / 3; the edge opposite vertex j lies at distance R/2 along
          // the direction opposite that vertex, so: inside iff -(p . v_j) <= R/2 for all j.
          in = true;
          for (int j = 0; j < 3 && in; ++j) {
            const float a = th + 2.f * kPi * static_cast<float>(j) / 3.f;
            in = -(std::cos(a) * dx + std::sin(a) * dy) <= 0.5f * R;
          }
          break;
        }
        default: break;
      }
      if (in) out.push_back({y, x});
    }
  return out;
}

bool adjacent8(const Point& a, const Point& b) { return std::abs(a.y - b.y) <= 1 && std::abs(a.x - b.x) <= 1; }

// Appends the 8-connected pixel chain from the last point of `chain` to q (DDA: one pixel per step along
// the major axis), then drops any pixel whose two neighbours in the chain already touch, so the curve is
// exactly 1 px thick (no L-shaped corners).
void extend_chain(std::vector<Point>& chain, Point q) {
  auto push = [&chain](Point p) {
    if (!chain.empty() && chain.back().y == p.y && chain.back().x == p.x) return;
    while (chain.size() >= 2 && adjacent8(chain[chain.size() - 2], p)) chain.pop_back();
    chain.push_back(p);
  };
  if (chain.empty()) {
    chain.push_back(q);
    return;
  }
  const Point p = chain.back();
  const int64_t n = std::max(std::abs(q.y - p.y), std::abs(q.x - p.x));
  for (int64_t k = 1; k <= n; ++k) {
    const double t = static_cast<double>(k) / static_cast<double>(n);
    push({p.y + static_cast<int64_t>(std::lround(t * static_cast<double>(q.y - p.y))),
          p.x + static_cast<int64_t>(std::lround(t * static_cast<double>(q.x - p.x)))});
  }
}

// A straight or quadratic-Bezier 1 px line between two points inside the image at least 0.5 S apart (a
// curve may bulge out of the image; the canvas clips). Returned pixels are unique along the chain.
std::vector<Point> line_pixels(Rng& rng, int64_t S, float curved_prob) {
  const float fs = static_cast<float>(S);
  float y0 = 0, x0 = 0, y1 = 0, x1 = 0, len = 0;
  for (int attempt = 0; attempt < 16 && len < 0.5f * fs; ++attempt) {
    y0 = rng.uniform(0.f, fs), x0 = rng.uniform(0.f, fs), y1 = rng.uniform(0.f, fs), x1 = rng.uniform(0.f, fs);
    len = std::hypot(y1 - y0, x1 - x0);
  }
  const float ang = std::atan2(y1 - y0, x1 - x0);
  const bool curved = rng.uniform() < curved_prob;
  const float bend = rng.uniform(-0.35f, 0.35f) * len;  // control point offset, perpendicular to the chord
  const float cy = 0.5f * (y0 + y1) + bend * std::cos(ang), cx = 0.5f * (x0 + x1) - bend * std::sin(ang);
  std::vector<Point> chain;
  const int64_t steps = curved ? std::max<int64_t>(8, static_cast<int64_t>(len / 2)) : 1;
  for (int64_t k = 0; k <= steps; ++k) {
    const float t = static_cast<float>(k) / static_cast<float>(steps), u = 1.f - t;
    const float py = curved ? u * u * y0 + 2 * u * t * cy + t * t * y1 : u * y0 + t * y1;
    const float px = curved ? u * u * x0 + 2 * u * t * cx + t * t * x1 : u * x0 + t * x1;
    extend_chain(chain, {static_cast<int64_t>(std::floor(py)), static_cast<int64_t>(std::floor(px))});
  }
  return chain;
}

}  // namespace

const std::vector<std::string>& ShapesDataset::known_classes() {
  static const std::vector<std::string> names = {"disc", "square", "triangle", "ring", "line"};
  return names;
}

ShapesDataset::ShapesDataset(ShapesOptions opt) : opt_(std::move(opt)) {
  const int64_t S = opt_.image_size;
  CL_CHECK(S >= 8 && S <= 4096, "shapes: image_size must be in [8, 4096], got " << S);
  CL_CHECK(opt_.size >= 1, "shapes: size must be >= 1, got " << opt_.size);
  CL_CHECK(!opt_.classes.empty(), "shapes: classes must name at least one of disc, square, triangle, ring, line");
  const auto& known = known_classes();
  for (size_t c = 0; c < opt_.classes.size(); ++c) {
    const auto it = std::find(known.begin(), known.end(), opt_.classes[c]);
    CL_CHECK(it != known.end(), "shapes: unknown class '" << opt_.classes[c]
                                                          << "' (known: disc, square, triangle, ring, line)");
    const size_t k = static_cast<size_t>(it - known.begin());
    CL_CHECK(id_[k] == 0, "shapes: class '" << opt_.classes[c] << "' listed twice");
    id_[k] = static_cast<int32_t>(c + 1);
  }
  CL_CHECK(opt_.min_objects >= 0 && opt_.max_objects >= opt_.min_objects && opt_.max_objects <= kMaxObjects,
           "shapes: need 0 <= min_objects <= max_objects <= " << kMaxObjects << ", got " << opt_.min_objects << ", " << opt_.max_objects);
  rmin_ = opt_.min_radius > 0 ? opt_.min_radius : std::max(2.f, 4.f * static_cast<float>(S) / 64.f);
  rmax_ = opt_.max_radius > 0 ? opt_.max_radius : static_cast<float>(S) / 4.f;
  CL_CHECK(rmin_ >= 1.f && rmax_ >= rmin_ && rmax_ <= static_cast<float>(S) / 2.f,
           "shapes: need 1 <= min_radius <= max_radius <= image_size/2, got " << rmin_ << ", " << rmax_);
  CL_CHECK(opt_.max_overlap >= 0.f && opt_.max_overlap <= 1.f,
           "shapes: max_overlap must be in [0, 1], got " << opt_.max_overlap);
  CL_CHECK(opt_.ring_weight >= 0.f, "shapes: ring_weight must be >= 0, got " << opt_.ring_weight);
  CL_CHECK(opt_.line_share >= 0.f && opt_.line_share <= 0.5f,
           "shapes: line_share must be in [0, 0.5], got " << opt_.line_share);
  CL_CHECK(opt_.max_lines >= 0, "shapes: max_lines must be >= 0, got " << opt_.max_lines);
}

std::vector<std::string> ShapesDataset::class_names() const {
  std::vector<std::string> n = {"background"};
  n.insert(n.end(), opt_.classes.begin(), opt_.classes.end());
  return n;
}

SegSample ShapesDataset::get(int64_t i) const {
  CL_CHECK(i >= 0 && i < opt_.size, "shapes: sample index " << i << " out of range [0, " << opt_.size << ")");
  const int64_t S = opt_.image_size;
  const float fs = static_cast<float>(S);
  Rng rng(sample_seed(opt_.seed, i));
  Canvas cv(S, S);
  const Colour bg = paint_background(cv, rng);
  std::vector<Colour> used = {bg};

  // Filled shapes: kind by weight among the enabled ones, radius log-uniform, placed wholly inside the image
  // when it fits, re-placed (up to 8 times) while it would cover more than max_overlap of earlier shapes.
  std::vector<Kind> kinds;
  std::vector<float> weights;
  for (Kind k : {kDisc, kSquare, kTriangle, kRing})
    if (id_[k] != 0 && (k != kRing || opt_.ring_weight > 0.f)) {
      kinds.push_back(k);
      weights.push_back(k == kRing ? opt_.ring_weight : 1.f);
    }
  float wsum = 0.f;
  for (float w : weights) wsum += w;
  const int64_t n_obj = kinds.empty() ? 0 : opt_.min_objects + rng.randint(opt_.max_objects - opt_.min_objects + 1);
  for (int64_t o = 0; o < n_obj; ++o) {
    float pick = rng.uniform(0.f, wsum);
    size_t kk = 0;
    while (kk + 1 < kinds.size() && pick >= weights[kk]) pick -= weights[kk++];
    const Kind k = kinds[kk];
    const float r = rmin_ * std::pow(rmax_ / rmin_, rng.uniform());
    // Axis-aligned by default: squares upright, triangles pointing up, down, left or right (a vertex at
    // -90 degrees + a multiple of 90), so the edge orientations that give the class away are few.
    float th = 0.f;
    if (opt_.free_rotation)
      th = rng.uniform(0.f, 2.f * kPi);
    else if (k == kTriangle)
      th = -0.5f * kPi + 0.5f * kPi * static_cast<float>(rng.randint(4));
    const float ext = k == kTriangle ? kTriR * r : k == kSquare ? 1.2533141f * r : r;
    const float lo = std::min(ext, 0.5f * fs), hi = std::max(fs - ext, 0.5f * fs);
    std::vector<Point> px;
    for (int attempt = 0; attempt < 8; ++attempt) {
      const float cy = rng.uniform(lo, hi), cx = rng.uniform(lo, hi);
      std::vector<Point> cand = shape_pixels(k, r, cy, cx, th, S);
      int64_t covered = 0;
      for (const Point& p : cand) covered += cv.label[p.y * S + p.x] != 0;
      if (!cand.empty() && static_cast<float>(covered) <= opt_.max_overlap * static_cast<float>(cand.size())) {
        px = std::move(cand);
        break;
      }
    }
    if (px.empty()) continue;  // no room: fewer shapes in this image
    const Colour col = pick_colour(rng, used, 0.45f);
    used.push_back(col);
    const int32_t bkt = bucket_for_area(static_cast<double>(kPi * r * r));
    for (const Point& p : px) cv.paint(p.y, p.x, col, id_[k], bkt);
  }

  // Lines behind the shapes (painted only on background pixels, so outlines stay intact), until they own
  // line_share of the pixels. A line's colour avoids the background's and every shape's.
  if (id_[kLine] != 0 && opt_.line_share > 0.f) {
    const int64_t target = static_cast<int64_t>(std::ceil(opt_.line_share * fs * fs));
    int64_t owned = 0;
    for (int64_t l = 0; l < opt_.max_lines && owned < target; ++l) {
      const std::vector<Point> px = line_pixels(rng, S, opt_.curved_line_prob);
      const Colour col = pick_colour(rng, used, 0.4f);
      for (const Point& p : px) {
        if (!cv.inside(p.y, p.x) || cv.bucket[p.y * S + p.x] != kBucketBackground) continue;
        ++owned;
        cv.paint(p.y, p.x, col, id_[kLine], kBucketThin);
      }
    }
  }
  return cv.to_sample();
}

}  // namespace convlab

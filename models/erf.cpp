// models/erf.cpp: the effective receptive field by backpropagation (see erf.h for what is measured).
#include "models/erf.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>

#include "core/error.h"
#include "core/random.h"
#include "data/picture.h"

namespace convlab {

using nlohmann::json;

namespace {

// Eval mode (BN running statistics, dropout off) and no parameter gradients while measuring; both
// restored when the guard goes out of scope, also when a forward throws.
class MeasureGuard {
 public:
  explicit MeasureGuard(Module& m) : m_(m), was_training_(m.training()) {
    for (auto& [name, p] : m.named_parameters()) {
      params_.emplace_back(p, p.requires_grad());
      p.set_requires_grad(false);
    }
    m.eval();
  }
  ~MeasureGuard() {
    m_.train(was_training_);
    for (auto& [p, r] : params_) p.set_requires_grad(r);
  }
  MeasureGuard(const MeasureGuard&) = delete;
  MeasureGuard& operator=(const MeasureGuard&) = delete;

 private:
  Module& m_;
  bool was_training_;
  std::vector<std::pair<Tensor, bool>> params_;
};

// The top-level child that config entry K (model.layers[K]) starts at: entries before it may repeat.
size_t child_index(const ErfOptions& o, size_t children) {
  if (o.config.is_null()) {
    CL_CHECK(o.from_layer < static_cast<int64_t>(children),
             "erf: --from-layer " << o.from_layer << " is out of range: the model has " << children << " layers (0.."
                                  << children - 1 << ")");
    return static_cast<size_t>(o.from_layer);
  }
  const json& layers = o.config.at("model").at("layers");
  CL_CHECK(o.from_layer < static_cast<int64_t>(layers.size()),
           "erf: --from-layer " << o.from_layer << " is out of range: model.layers has " << layers.size()
                                << " entries (0.." << layers.size() - 1 << ")");
  size_t child = 0;
  for (int64_t i = 0; i < o.from_layer; ++i) {
    const json& e = layers[static_cast<size_t>(i)];
    child += e.contains("repeat") ? e["repeat"].get<size_t>() : 1;
  }
  CL_CHECK(child < children, "erf: model.layers[" << o.from_layer << "] is child " << child << " but the model has "
                                                  << children << " (the config does not describe this model)");
  return child;
}

// Smallest Chebyshev radius around (cy, cx) whose square holds >= q of the mass (pixels at equal distance
// enter together).
std::array<double, 2> radii(const std::vector<double>& v, int64_t H, int64_t W, double cy, double cx,
                            std::array<double, 2> q) {
  std::vector<std::pair<double, double>> d;  // (distance, value)
  double total = 0;
  for (int64_t y = 0; y < H; ++y)
    for (int64_t x = 0; x < W; ++x) {
      const double m = v[static_cast<size_t>(y * W + x)];
      d.emplace_back(std::max(std::fabs(double(y) - cy), std::fabs(double(x) - cx)), m);
      total += m;
    }
  std::stable_sort(d.begin(), d.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  std::array<double, 2> r{0, 0};
  if (total <= 0) return r;
  for (int k = 0; k < 2; ++k) {
    double cum = 0;
    for (size_t i = 0; i < d.size();) {
      size_t j = i;
      while (j < d.size() && d[j].first == d[i].first) cum += d[j++].second;
      r[static_cast<size_t>(k)] = d[i].first;
      if (cum >= q[static_cast<size_t>(k)] * total * (1 - 1e-12)) break;
      i = j;
    }
  }
  return r;
}

}  // namespace

ErfResult compute_erf(Module& model, const Shape& input_shape, const ErfOptions& o) {
  CL_CHECK(o.samples >= 1, "erf: --samples must be >= 1, got " << o.samples);
  CL_CHECK(input_shape.size() == 4 && input_shape[0] >= 1,
           "erf: input_shape must be [B, C, H, W], got " << shape_str(input_shape));
  CL_CHECK(o.pixel.empty() || o.pixel.size() == 2, "erf: --pixel takes y,x (" << o.pixel.size() << " values given)");
  CL_CHECK(o.from_layer >= -1, "erf: --from-layer must be >= 0 (or -1: the model input), got " << o.from_layer);
  const int64_t C = input_shape[1], H = input_shape[2], W = input_shape[3];
  if (o.images.defined())
    CL_CHECK(o.images.dim() == 4 && o.images.size(0) >= 1 && o.images.size(1) == C && o.images.size(2) == H &&
                 o.images.size(3) == W,
             "erf: images " << shape_str(o.images.shape()) << " do not match the input shape " << shape_str(input_shape));
  if (!o.config.is_null())
    CL_CHECK(o.config.contains("model") && o.config["model"].contains("layers") && o.config["model"]["layers"].is_array(),
             "erf: the config has no model.layers list");

  auto* seq = dynamic_cast<Sequential*>(&model);
  CL_CHECK(seq || o.from_layer < 0, "erf: --from-layer needs a Sequential model (a list of layers)");
  const size_t first = seq && o.from_layer >= 0 ? child_index(o, seq->size()) : 0;
  MeasureGuard guard(model);

  ErfResult r;
  r.samples = o.samples;
  r.measured_path = o.from_layer < 0 ? "model input" : "model.layers[" + std::to_string(o.from_layer) + "] input";
  const int64_t B = std::min(o.samples, input_shape[0]);
  Rng rng(o.seed);
  std::vector<double> acc;  // [Hm, Wm] sum over samples and channels of |g|, in a fixed order
  int64_t Hm = 0, Wm = 0, py = 0, px = 0;
  for (int64_t start = 0; start < o.samples; start += B) {
    const int64_t b = std::min(B, o.samples - start);
    Tensor x = Tensor::empty({b, C, H, W});  // [b, C, H, W]
    if (o.images.defined()) {
      const int64_t M = o.images.size(0), n = C * H * W;
      for (int64_t i = 0; i < b; ++i)
        std::memcpy(x.data() + i * n, o.images.data() + ((start + i) % M) * n, static_cast<size_t>(n) * 4);
    } else {
      fill_normal(x, rng, 0.f, 1.f);  // sample after sample: independent of the batch size
    }
    Tensor h = x;
    if (first > 0) {
      NoGradGuard ng;
      for (size_t i = 0; i < first; ++i) h = seq->at(i)->forward(h);
    }
    h = h.detach();
    h.set_requires_grad(true);
    Tensor out = h;
    if (seq) {
      for (size_t i = first; i < seq->size(); ++i) out = seq->at(i)->forward(out);
    } else {
      out = model.forward(h);
    }
    CL_CHECK(out.dim() == 4, "erf: the model's output " << shape_str(out.shape())
                                                        << " is not an image [N, C, H, W]: the ERF needs a spatial output");
    if (start == 0) {
      r.measured_at = h.shape();
      r.output_shape = out.shape();
      Hm = h.size(2), Wm = h.size(3);
      const int64_t Ho = out.size(2), Wo = out.size(3);
      py = o.pixel.empty() ? Ho / 2 : o.pixel[0];
      px = o.pixel.empty() ? Wo / 2 : o.pixel[1];
      CL_CHECK(py >= 0 && py < Ho && px >= 0 && px < Wo,
               "erf: --pixel " << py << "," << px << " is outside the " << Ho << "x" << Wo << " output (y in 0.." << Ho - 1
                               << ", x in 0.." << Wo - 1 << ")");
      acc.assign(static_cast<size_t>(Hm * Wm), 0.0);
    }
    // Upstream gradient: one-hot at (py, px) in every output channel of every sample.
    Tensor go = Tensor::zeros(out.shape());  // [b, C_out, Ho, Wo]
    const int64_t Co = out.size(1), Ho = out.size(2), Wo = out.size(3);
    for (int64_t i = 0; i < b * Co; ++i) go.data()[(i * Ho + py) * Wo + px] = 1.f;
    out.backward(go);
    const Tensor g = h.grad();  // undefined when the output does not depend on h
    if (!g.defined()) continue;
    const float* gp = g.data();
    const int64_t Ch = h.size(1), HW = Hm * Wm;
    for (int64_t i = 0; i < b * Ch; ++i)
      for (int64_t p = 0; p < HW; ++p) acc[static_cast<size_t>(p)] += std::fabs(double(gp[i * HW + p]));
  }

  // The map, normalised to sum 1 (exact zeros stay exact zeros).
  double total = 0;
  for (double v : acc) total += v;
  std::vector<double> norm(acc.size(), 0.0);
  r.map = Tensor::zeros({Hm, Wm});
  for (size_t p = 0; p < acc.size(); ++p) {
    norm[p] = total > 0 ? acc[p] / total : 0.0;
    r.map.data()[p] = static_cast<float>(norm[p]);
    r.support_pixels += acc[p] != 0;
  }
  const int64_t Ho = r.output_shape[2], Wo = r.output_shape[3];
  r.pixel = {py, px};
  r.centre = {Hm == Ho ? double(py) : (py + 0.5) * double(Hm) / double(Ho) - 0.5,
              Wm == Wo ? double(px) : (px + 0.5) * double(Wm) / double(Wo) - 0.5};
  const auto rr = radii(norm, Hm, Wm, r.centre[0], r.centre[1], {0.5, 0.95});
  r.r50 = rr[0], r.r95 = rr[1];

  // The RF box: theoretical (coverage map of the measured sub-stack) or the bounding box of the support.
  std::optional<CoverageMap> cov;
  if (!o.config.is_null()) {
    const RfModel m = rf_model(o.config);
    size_t from = 0;
    while (o.from_layer >= 0 && from < m.layers.size() && m.layers[from].top < o.from_layer) ++from;
    const std::vector<Pair> sizes = rf_sizes(m.layers, Pair{H, W});
    const Pair sub_in = sizes[from];
    CL_CHECK(sub_in == (Pair{Hm, Wm}) && sizes.back() == (Pair{Ho, Wo}),
             "erf: the config's layers map " << H << "x" << W << " to " << sizes.back()[0] << "x" << sizes.back()[1]
                                             << " (measured tensor " << sub_in[0] << "x" << sub_in[1] << "), the model to "
                                             << Ho << "x" << Wo << " (" << Hm << "x" << Wm << "): they differ");
    if (from < m.layers.size()) {
      const std::vector<RfLayer> stack(m.layers.begin() + static_cast<long>(from), m.layers.end());
      const RfAnalysis a = analyse_stack(stack, {.input_size = sub_in, .pixel = Pair{py, px}});
      cov = a.coverage;
      r.rf = a.rows.back().rf;
      r.coverage_holes = a.holes;
    } else {  // only non-spatial layers left: the output pixel reads its own position
      cov = CoverageMap{py, px, 1, 1, {1.0}};
      r.rf = {1, 1};
      r.coverage_holes = 0;
    }
    r.box = {cov->y0, cov->x0, cov->H, cov->W};
    r.box_theoretical = true;
  } else if (r.support_pixels > 0) {
    int64_t y0 = Hm, y1 = -1, x0 = Wm, x1 = -1;
    for (int64_t y = 0; y < Hm; ++y)
      for (int64_t x = 0; x < Wm; ++x)
        if (acc[static_cast<size_t>(y * Wm + x)] != 0)
          y0 = std::min(y0, y), y1 = std::max(y1, y), x0 = std::min(x0, x), x1 = std::max(x1, x);
    r.box = {y0, x0, y1 - y0 + 1, x1 - x0 + 1};
    r.rf = {double(r.box[2]), double(r.box[3])};
  }
  r.rf_pixels = r.box[2] * r.box[3];
  if (cov) r.hole_mismatches = 0;
  for (int64_t y = r.box[0]; y < r.box[0] + r.box[2]; ++y)
    for (int64_t x = r.box[1]; x < r.box[1] + r.box[3]; ++x) {
      const bool zero = acc[static_cast<size_t>(y * Wm + x)] == 0;
      r.zero_pixels += zero;
      if (cov) r.hole_mismatches += zero != (cov->at(y - cov->y0, x - cov->x0) == 0);
    }
  return r;
}

json ErfResult::to_json() const {
  json rows = json::array();
  const int64_t H = map.defined() ? map.size(0) : 0, W = map.defined() ? map.size(1) : 0;
  for (int64_t y = 0; y < H; ++y) rows.push_back(std::vector<float>(map.data() + y * W, map.data() + (y + 1) * W));
  return {{"measured_at", measured_path},
          {"measured_shape", measured_at},
          {"output_shape", output_shape},
          {"pixel", pixel},
          {"centre", centre},
          {"samples", samples},
          {"r50", r50},
          {"r95", r95},
          {"rf", rf},
          {"rf_radius", rf_radius()},
          {"rf_box", {{"y0", box[0]}, {"x0", box[1]}, {"H", box[2]}, {"W", box[3]}, {"theoretical", box_theoretical}}},
          {"rf_pixels", rf_pixels},
          {"zero_pixels", zero_pixels},
          {"hole_share", hole_share()},
          {"coverage_holes", coverage_holes >= 0 ? json(coverage_holes) : json(nullptr)},
          {"hole_mismatches", hole_mismatches >= 0 ? json(hole_mismatches) : json(nullptr)},
          {"support_pixels", support_pixels},
          {"map", rows}};
}

namespace {

bool in_box(const ErfResult& r, int64_t y, int64_t x) {
  return y >= r.box[0] && y < r.box[0] + r.box[2] && x >= r.box[1] && x < r.box[1] + r.box[3];
}

float map_max(const ErfResult& r) {
  float mx = 0;
  for (int64_t i = 0; i < r.map.numel(); ++i) mx = std::max(mx, r.map.data()[i]);
  return mx;
}

// Window [lo, lo + n) of one axis: the box when it fits, else max_side pixels around the centre.
std::pair<int64_t, int64_t> window(int64_t box0, int64_t box_n, double centre, int64_t size, int64_t max_side) {
  if (box_n > 0 && box_n <= max_side) return {box0, box_n};
  const int64_t n = std::min(max_side, size);
  const int64_t lo = std::clamp<int64_t>(std::llround(centre) - n / 2, 0, size - n);
  return {lo, n};
}

}  // namespace

std::string erf_ascii(const ErfResult& r, int64_t max_side) {
  if (!r.map.defined() || r.map.numel() == 0) return "";
  const int64_t H = r.map.size(0), W = r.map.size(1);
  const auto [y0, nh] = window(r.box[0], r.box[2], r.centre[0], H, max_side);
  const auto [x0, nw] = window(r.box[1], r.box[3], r.centre[1], W, max_side);
  const double mx = map_max(r);
  std::string s;
  for (int64_t y = y0; y < y0 + nh; ++y) {
    s += "   ";
    for (int64_t x = x0; x < x0 + nw; ++x) {
      const double v = r.map.data()[y * W + x];
      char c = in_box(r, y, x) ? '.' : ' ';
      if (v > 0) c = static_cast<char>('0' + std::clamp<int>(9 + static_cast<int>(std::floor(2 * std::log10(v / mx))), 0, 9));
      s += ' ';
      s += c;
    }
    s += "\n";
  }
  return s;
}

RgbImage erf_image(const ErfResult& r, int scale, int64_t margin) {
  CL_CHECK(scale >= 1, "erf: png scale must be >= 1, got " << scale);
  const int64_t MH = r.map.defined() ? r.map.size(0) : 0, MW = r.map.defined() ? r.map.size(1) : 0;
  int64_t y0 = 0, x0 = 0, H = MH, W = MW;  // the part drawn
  if (margin >= 0 && r.box[2] > 0) {
    y0 = std::max<int64_t>(0, r.box[0] - margin), x0 = std::max<int64_t>(0, r.box[1] - margin);
    H = std::min(MH, r.box[0] + r.box[2] + margin) - y0, W = std::min(MW, r.box[1] + r.box[3] + margin) - x0;
  }
  const double mx = map_max(r), decades = 5;
  RgbImage img(W * scale, H * scale);
  for (int64_t y = 0; y < H; ++y)
    for (int64_t x = 0; x < W; ++x) {
      const double v = r.map.data()[(y0 + y) * MW + x0 + x];
      std::array<uint8_t, 3> c{0, 0, 0};
      if (v == 0 && in_box(r, y0 + y, x0 + x)) {
        c = {230, 30, 30};
      } else if (v > 0) {
        c = ramp_colour(1 + std::log10(v / mx) / decades);  // dark blue .. yellow: no red in it (red marks holes)
      }
      for (int64_t dy = 0; dy < scale; ++dy)
        for (int64_t dx = 0; dx < scale; ++dx) std::copy(c.begin(), c.end(), img.at(y * scale + dy, x * scale + dx));
    }
  return img;
}

RgbImage erf_picture(const ErfResult& r, const std::string& title, int scale, int64_t margin) {
  const RgbImage map = erf_image(r, scale, margin);
  const double mx = map_max(r);
  const auto value = [](double v) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.2g", v);
    return std::string(buf);
  };
  ColourBar bar;
  bar.min_label = mx > 0 ? value(mx * 1e-5) : "0";
  bar.max_label = value(mx);
  bar.extra = {{"exact zero in rf box (hole)", {230, 30, 30}}, {"zero outside rf box", {0, 0, 0}}};
  const std::string t = title.empty() ? "ERF at " + (r.measured_path.empty() ? "model input" : r.measured_path) + ", log scale" : title;
  return annotate_map(map, t, bar, text_scale_for(map.W));
}

void write_erf_png(const ErfResult& r, const std::string& path, const std::string& title, int scale, int64_t margin) {
  write_png(path, erf_picture(r, title, scale, margin));
}

}  // namespace convlab

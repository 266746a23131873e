// models/study/deform_viz.cpp: the analysis of `convlab deform-viz`: where a trained DeformConv2d samples
// (see deform_viz.h).
// The model is rebuilt from the checkpoint's config (or --config, which must build the same network:
// models/seg_task.h), the weights loaded, the image run through
// the whole network in eval mode (as `convlab predict`), and the offsets / mask the layer computed in that
// forward are read back: no separate re-implementation of the offset path.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <memory>

#include "core/error.h"
#include "data/png.h"
#include "data/safetensors.h"
#include "models/config.h"
#include "models/receptive_field.h"
#include "models/seg_task.h"
#include "models/study/deform_viz.h"
#include "models/study/study.h"

namespace convlab {

using nlohmann::json;

namespace {

struct Loaded {
  SegTask task;
  std::string config_source;
};

Loaded load_model(const DeformVizCommand& c) {
  LoadedSegModel m = load_seg_checkpoint(c.checkpoint, c.config, c.sets, "deform-viz", /*with_data=*/false);
  return {.task = std::move(m.task), .config_source = m.config_source};
}

Tensor image_tensor(const RgbImage& rgb) {  // [1, 3, H, W] in [0, 1], as `convlab predict` feeds the network
  Tensor x = Tensor::empty({1, 3, rgb.H, rgb.W});
  for (int64_t ch = 0; ch < 3; ++ch)
    for (int64_t y = 0; y < rgb.H; ++y)
      for (int64_t xx = 0; xx < rgb.W; ++xx) x.data()[(ch * rgb.H + y) * rgb.W + xx] = rgb.at(y, xx)[ch] / 255.f;
  return x;
}

// The module with state-dict prefix `name` ("3", "2.body.1"), or null.
const Module* module_at(const Module& root, const std::string& name) {
  const Module* m = &root;
  size_t i = 0;
  while (i < name.size()) {
    const size_t dot = name.find('.', i);
    const std::string part = name.substr(i, dot == std::string::npos ? std::string::npos : dot - i);
    const Module* next = nullptr;
    for (const auto& [n, child] : m->children())
      if (n == part) next = child.get();
    if (!next) return nullptr;
    m = next;
    i = dot == std::string::npos ? name.size() : dot + 1;
  }
  return m;
}

// Spatial layers as models/receptive_field.h counts them (resize_conv2d is an upsample and a conv), depth
// first, before the module named `target`. Residual bodies are inlined: the body keeps the shape.
bool count_before(const Module& m, const std::string& prefix, const std::string& target, int64_t& count) {
  if (prefix == target) return true;
  const std::string t = m.type();
  if (t == "sequential" || t == "residual") {
    for (const auto& [n, child] : m.children())
      if (count_before(*child, prefix.empty() ? n : prefix + "." + n, target, count)) return true;
    return false;
  }
  if (t == "resize_conv2d") count += 2;
  else if (t == "conv2d" || t == "separable_conv2d" || t == "deform_conv2d" || t == "conv_transpose2d" ||
           t == "max_pool2d" || t == "avg_pool2d" || t == "upsample")
    count += 1;
  return false;
}

void flatten_rf(const std::vector<RfLayer>& in, std::vector<RfLayer>& out) {
  for (const RfLayer& l : in) {
    if (l.kind == RfKind::residual) flatten_rf(l.body, out);
    else out.push_back(l);
  }
}

struct CoordMap {  // image coordinate = start + jump * layer-input coordinate, per axis
  std::array<double, 2> start{0, 0}, jump{1, 1};
  double y(double v) const { return start[0] + jump[0] * v; }
  double x(double v) const { return start[1] + jump[1] * v; }
  bool identity() const { return start == std::array<double, 2>{0, 0} && jump == std::array<double, 2>{1, 1}; }
};

CoordMap layer_to_image(const SegTask& t, const std::string& target, Pair image_size) {
  int64_t n = 0;
  count_before(*t.model, "", target, n);
  if (n == 0) return {};
  std::vector<RfLayer> flat;
  flatten_rf(rf_model(t.config).layers, flat);
  CL_CHECK(int64_t(flat.size()) > n && flat[static_cast<size_t>(n)].type == "deform_conv2d",
           "deform-viz: cannot align layer " << target << " with the receptive-field walk of the config");
  const std::vector<RfLayer> before(flat.begin(), flat.begin() + n);
  const RfAnalysis a = analyse_stack(before, {.input_size = image_size, .pixel = std::nullopt});
  return {a.rows.back().start, a.rows.back().jump};
}

std::vector<Pair> parse_pixels(const std::vector<std::string>& in, const DeformGeometry& g) {
  std::vector<Pair> px;
  for (const std::string& s : in) {
    Pair p{};
    char tail = 0;
    long long a = 0, b = 0;
    CL_CHECK(std::sscanf(s.c_str(), "%lld,%lld%c", &a, &b, &tail) == 2,
             "deform-viz: --pixel expects y,x (two integers), got '" << s << "'");
    p = {int64_t(a), int64_t(b)};
    CL_CHECK(a >= 0 && a < g.H_out && b >= 0 && b < g.W_out,
             "deform-viz: --pixel " << s << " is outside the layer's " << g.H_out << "x" << g.W_out << " output");
    px.push_back(p);
  }
  if (px.empty())  // a 3x3 grid at 1/4, 1/2, 3/4 of the output
    for (int64_t i = 1; i <= 3; ++i)
      for (int64_t j = 1; j <= 3; ++j) px.push_back({g.H_out * i / 4, g.W_out * j / 4});
  return px;
}

// ---- drawing ----
struct Canvas {
  RgbImage img;
  double f = 1, oy = 0, ox = 0;  // image coordinate v -> canvas pixel (v + 0.5) * f + o
  void dot(double y, double x, double r, std::array<uint8_t, 3> c, bool filled) {
    const double cy = (y + 0.5) * f + oy, cx = (x + 0.5) * f + ox;
    // Offsets come from trained weights: a non-finite or far-away point is not drawn (and never looped to).
    if (!std::isfinite(cy) || !std::isfinite(cx) || !std::isfinite(r) || cy + r + 1 < 0 || cx + r + 1 < 0 ||
        cy - r - 1 >= double(img.H) || cx - r - 1 >= double(img.W))
      return;
    const int64_t y_lo = std::max<int64_t>(0, int64_t(std::floor(cy - r - 1)));
    const int64_t y_hi = std::min<int64_t>(img.H - 1, int64_t(std::ceil(cy + r + 1)));
    const int64_t x_lo = std::max<int64_t>(0, int64_t(std::floor(cx - r - 1)));
    const int64_t x_hi = std::min<int64_t>(img.W - 1, int64_t(std::ceil(cx + r + 1)));
    for (int64_t py = y_lo; py <= y_hi; ++py)
      for (int64_t px = x_lo; px <= x_hi; ++px) {
        if (py < 0 || px < 0 || py >= img.H || px >= img.W) continue;
        const double d = std::hypot(py + 0.5 - cy, px + 0.5 - cx);
        if (filled ? d <= r : std::fabs(d - r) <= 0.6) std::copy(c.begin(), c.end(), img.at(py, px));
      }
  }
  void line(double y0, double x0, double y1, double x1, std::array<uint8_t, 3> c) {
    const double len = std::hypot(y1 - y0, x1 - x0) * f;
    if (!std::isfinite(len) || !std::isfinite(y0 + x0)) return;
    // At most a few steps per picture pixel: a line to a far-away point is cut where it leaves the picture.
    const int64_t n = int64_t(std::clamp(len * 2, 1.0, 4.0 * double(img.H + img.W)));
    for (int64_t i = 0; i <= n; ++i) {
      const double s = double(i) / double(n);
      const double fy = std::floor((y0 + s * (y1 - y0) + 0.5) * f + oy);
      const double fx = std::floor((x0 + s * (x1 - x0) + 0.5) * f + ox);
      if (!(fy >= 0 && fx >= 0 && fy < double(img.H) && fx < double(img.W))) continue;
      const int64_t py = int64_t(fy), px = int64_t(fx);
      std::copy(c.begin(), c.end(), img.at(py, px));
    }
  }
};

struct PixelPoints {
  Pair pixel;
  std::vector<SamplePoint> pts;
};

void draw(const std::string& path, const RgbImage& rgb, const std::vector<PixelPoints>& all, const CoordMap& map,
          const DeformGeometry& g) {
  double lo_y = -0.5, hi_y = double(rgb.H) - 0.5, lo_x = -0.5, hi_x = double(rgb.W) - 0.5;
  for (const PixelPoints& pp : all)  // a margin for points outside the image, at most the image's size
    for (const SamplePoint& s : pp.pts)
      for (const auto& [y, x] : {std::pair{map.y(s.y), map.x(s.x)}, std::pair{map.y(s.regular_y), map.x(s.regular_x)}}) {
        lo_y = std::max(std::min(lo_y, y - 1), -0.5 - double(rgb.H)), hi_y = std::min(std::max(hi_y, y + 1), 2.0 * double(rgb.H));
        lo_x = std::max(std::min(lo_x, x - 1), -0.5 - double(rgb.W)), hi_x = std::min(std::max(hi_x, x + 1), 2.0 * double(rgb.W));
      }
  Canvas cv;
  cv.f = double(std::max<int64_t>(1, 768 / std::max(rgb.H, rgb.W)));
  const int64_t f = int64_t(cv.f);
  cv.oy = std::ceil((-0.5 - lo_y) * cv.f), cv.ox = std::ceil((-0.5 - lo_x) * cv.f);
  cv.img = RgbImage(int64_t(std::ceil((hi_x - lo_x) * cv.f)) + 1, int64_t(std::ceil((hi_y - lo_y) * cv.f)) + 1, 40);
  for (int64_t y = 0; y < rgb.H * f; ++y)  // the image, dimmed so that the points stand out
    for (int64_t x = 0; x < rgb.W * f; ++x) {
      const int64_t cy = y + int64_t(cv.oy), cx = x + int64_t(cv.ox);
      if (cy < 0 || cx < 0 || cy >= cv.img.H || cx >= cv.img.W) continue;
      const uint8_t* s = rgb.at(y / f, x / f);
      for (int k = 0; k < 3; ++k) cv.img.at(cy, cx)[k] = uint8_t(40 + s[k] * 150 / 255);
    }
  const double r = std::max(1.5, cv.f * 0.3);  // the ring; dots range from r/2 (mask 0) to 1.5 r (mask 1)
  for (size_t i = 0; i < all.size(); ++i) {
    const std::array<uint8_t, 3> col = palette_colour(int64_t(i % 15) + 1);
    for (const SamplePoint& s : all[i].pts) {  // regular grid: hollow ring; line to where the layer samples
      cv.line(map.y(s.regular_y), map.x(s.regular_x), map.y(s.y), map.x(s.x), col);
      cv.dot(map.y(s.regular_y), map.x(s.regular_x), r, {255, 255, 255}, false);
    }
    for (const SamplePoint& s : all[i].pts) {  // sampled points: filled, black rim, radius by mask (v2)
      const double rad = g.modulated ? r * (0.5 + s.mask) : r;
      cv.dot(map.y(s.y), map.x(s.x), rad + 1, {0, 0, 0}, true);
      cv.dot(map.y(s.y), map.x(s.x), rad, col, true);
    }
  }
  write_png(path, cv.img);
}

std::string f2(double v) {
  char b[32];
  std::snprintf(b, sizeof b, "%.2f", v);
  return b;
}

}  // namespace

DeformVizResult deform_viz_command(const DeformVizCommand& c) {
  CL_CHECK(!c.checkpoint.empty(), "deform-viz: --checkpoint is required");
  CL_CHECK(c.image.empty() != (c.val_image < 0), "deform-viz: give exactly one of IMAGE.png and --val-image K");
  Loaded l = load_model(c);
  SegTask& t = l.task;
  std::string image_name = c.image;
  RgbImage rgb;
  if (c.val_image >= 0) {
    const auto val = make_dataset(config_section(t.config, "data"), t.seed, "val");
    CL_CHECK(c.val_image < val->size(), "deform-viz: --val-image " << c.val_image << " is beyond the "
                                                                   << val->size() << " validation images");
    rgb = tensor_to_rgb(val->get(c.val_image).image, 0.f, 1.f);
    image_name = "validation image " + std::to_string(c.val_image);
  } else {
    rgb = to_rgb(read_image(c.image));  // PNG or JPEG
  }
  const Tensor x = image_tensor(rgb);
  {  // the whole network, as `convlab predict`: every deformable layer keeps the offsets of this forward
    NoGradGuard ng;
    t.model->eval();
    try {
      t.model->forward(x);
    } catch (const Error& e) {
      CL_FAIL("deform-viz: the network cannot take " << image_name << " (" << rgb.W << "x" << rgb.H << "): " << e.what());
    }
  }
  const std::vector<DeformLayerRef> layers = find_deform_layers(*t.model, x.shape());
  std::string names;
  for (const auto& r : layers) names += (names.empty() ? "" : ", ") + r.name;
  CL_CHECK(!layers.empty(), "deform-viz: the model of " << l.config_source << " has no deform_conv2d layer");
  const DeformLayerRef* ref = &layers[0];
  if (!c.layer.empty()) {
    ref = nullptr;
    for (const auto& r : layers)
      if (r.name == c.layer) ref = &r;
    if (!ref) {
      const Module* m = module_at(*t.model, c.layer);
      CL_FAIL("deform-viz: --layer " << c.layer << (m ? " is a " + m->type() + ", not" : " is not a layer of the model, nor")
                                      << " a deform_conv2d (deformable layers: " << names << ")");
    }
  }
  const DeformGeometry g = deform_geometry(*ref->layer, ref->input);
  const Tensor& off = ref->layer->last_offset();
  const Tensor& msk = ref->layer->last_mask();
  const CoordMap map = layer_to_image(t, ref->name, {rgb.H, rgb.W});
  const std::vector<Pair> pixels = parse_pixels(c.pixels, g);
  const DeformStats st = deform_stats(g, off, msk);

  DeformVizResult r;
  json& j = r.json;
  j = {{"checkpoint", c.checkpoint}, {"config", l.config_source}, {"image", image_name}, {"layer", ref->name},
       {"modulated", g.modulated}, {"kernel", g.kernel}, {"stride", g.stride}, {"padding", g.padding},
       {"dilation", g.dilation}, {"offset_groups", g.offset_groups}, {"input_size", {g.H, g.W}},
       {"output_size", {g.H_out, g.W_out}}, {"image_map", {{"start", map.start}, {"jump", map.jump}}},
       {"stats", st.to_json()}, {"pixels", json::array()}};
  std::string text = "deform-viz: layer " + ref->name + " (deform_conv2d " + (g.modulated ? "v2" : "v1") + ", kernel " +
                     std::to_string(g.kernel[0]) + "x" + std::to_string(g.kernel[1]) + ", stride " +
                     std::to_string(g.stride[0]) + ", padding " + std::to_string(g.padding[0]) + ", dilation " +
                     std::to_string(g.dilation[0]) + ", offset groups " + std::to_string(g.offset_groups) + ") on " +
                     image_name + " (" + std::to_string(rgb.W) + "x" + std::to_string(rgb.H) + ")\n";
  text += "  layer input " + std::to_string(g.H) + "x" + std::to_string(g.W) + ", output " + std::to_string(g.H_out) +
          "x" + std::to_string(g.W_out) + "; image = start + jump * layer coordinate: start (" + fmt(map.start[0]) +
          "," + fmt(map.start[1]) + "), jump (" + fmt(map.jump[0]) + "," + fmt(map.jump[1]) + ")\n";
  text += "  all " + std::to_string(st.points) + " points: mean |offset| " + f2(st.mean_abs_offset) + " px (max " +
          f2(st.max_abs_offset) + "), " + f2(100 * st.outside_share) + "% read zero padding (regular grid " +
          f2(100 * st.regular_outside_share) + "%)";
  if (g.modulated) {
    text += "; mask in [0,.2) [.2,.4) [.4,.6) [.6,.8) [.8,1]:";
    for (double h : st.mask_histogram) text += " " + f2(100 * h) + "%";
  }
  text += "\n  coordinates: layer input (y,x)" + std::string(map.identity() ? " = image" : "; image: mapped to image pixels") +
          "; offsets in layer-input pixels\n";
  std::vector<PixelPoints> all;
  for (const Pair& p : pixels) {
    PixelPoints pp{p, deform_sample_points(g, off, msk, 0, p[0], p[1])};
    double len = 0;
    json pts = json::array();
    std::vector<std::vector<std::string>> rows = {{"og", "tap", "regular", "offset", "sampled", "image", "mask", ""}};
    const bool image_col = !map.identity();  // the image coordinates only differ behind strides / resampling
    for (const SamplePoint& s : pp.pts) {
      len += std::hypot(s.dy, s.dx);
      const bool pad = reads_padding(g, s.y, s.x);
      pts.push_back({{"og", s.og}, {"tap", s.tap}, {"regular", {s.regular_y, s.regular_x}}, {"offset", {s.dy, s.dx}},
                     {"sampled", {s.y, s.x}}, {"image_regular", {map.y(s.regular_y), map.x(s.regular_x)}},
                     {"image_sampled", {map.y(s.y), map.x(s.x)}}, {"mask", s.mask}, {"reads_padding", pad}});
      // "(a,b)" appended piecewise: GCC 12's -Wrestrict misfires on "(" + std::string at -O3
      const auto pair = [](const std::string& a, const std::string& b) {
        std::string t = "(";
        t += a;
        t += ',';
        t += b;
        t += ')';
        return t;
      };
      rows.push_back({std::to_string(s.og), std::to_string(s.tap), pair(fmt(s.regular_y), fmt(s.regular_x)),
                      pair(f2(s.dy), f2(s.dx)), pair(f2(s.y), f2(s.x)), pair(f2(map.y(s.y)), f2(map.x(s.x))),
                      g.modulated ? f2(s.mask) : "-", pad ? "padding" : ""});
    }
    if (!image_col)
      for (auto& row : rows) row.erase(row.begin() + 5);
    len /= double(pp.pts.size());
    j["pixels"].push_back({{"pixel", p}, {"mean_abs_offset", len}, {"points", pts}});
    text += "\n  output pixel (" + std::to_string(p[0]) + "," + std::to_string(p[1]) + "): mean |offset| " + f2(len) +
            " px\n";
    std::string table = format_table(rows);
    for (size_t pos = 0; pos < table.size();) {  // indent the table
      const size_t e = table.find('\n', pos);
      text += "    " + table.substr(pos, e - pos + 1);
      pos = e == std::string::npos ? table.size() : e + 1;
    }
    all.push_back(std::move(pp));
  }
  if (!c.png.empty()) {
    draw(c.png, rgb, all, map, g);
    j["output"] = c.png;
    text += "\nwrote " + c.png + " (white rings: the regular grid; dots: where the layer samples" +
            std::string(g.modulated ? ", radius by mask" : "") + "; one colour per output pixel)\n";
  }
  r.text = text;
  return r;
}

}  // namespace convlab

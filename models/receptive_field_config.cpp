// models/receptive_field_config.cpp: a config's model.layers as RfLayers, the dilated runs of a network,
// HDC on a run, and the gridding lint (see receptive_field.h).
#include <algorithm>
#include <cstdio>
#include <sstream>

#include "core/error.h"
#include "data/json.h"
#include "layers/options.h"
#include "layers/registry.h"
#include "models/config.h"
#include "models/receptive_field.h"

namespace convlab {

using nlohmann::json;

namespace {

bool is_skipped(const std::string& t) {
  static const std::vector<std::string> names = {"batch_norm2d", "relu",     "leaky_relu", "tanh",
                                                 "sigmoid",      "identity", "dropout"};
  return std::find(names.begin(), names.end(), t) != names.end();
}

// The geometry keys of conv2d / separable_conv2d / deform_conv2d (and the conv of resize_conv2d).
void read_conv(Options& o, RfLayer& l) {
  l.kernel = o.pair("kernel_size", std::nullopt, 1);
  l.stride = o.pair("stride", Pair{1, 1}, 1);
  l.dilation = o.pair("dilation", Pair{1, 1}, 1);
  if (o.has("padding") && o.raw("padding").is_string()) {  // conv2d's "same" / "valid"
    const std::string mode = o.string("padding", std::nullopt, {"same", "valid"});
    for (int a = 0; a < 2; ++a) l.padding[a] = mode == "same" ? l.dilation[a] * (l.kernel[a] - 1) / 2 : 0;
  } else {
    l.padding = o.pair("padding", Pair{0, 0}, 0);
  }
}

void read_upsample(Options& o, RfLayer& l, bool default_x2) {
  const std::string mode = o.string("mode", "nearest", {"nearest", "bilinear"});
  l.kind = mode == "nearest" ? RfKind::nearest : RfKind::bilinear;
  l.align_corners = o.boolean("align_corners", false);
  if (o.has("size")) l.size = o.pair("size", std::nullopt, 1);
  if (o.has("scale_factor")) {
    const double s = o.number("scale_factor", std::nullopt);
    CL_CHECK(s > 0, o.path() << ".scale_factor: expected a positive number, got " << s);
    l.scale = std::array<double, 2>{s, s};
  }
  if (default_x2 && !l.size && !l.scale) l.scale = std::array<double, 2>{2.0, 2.0};
  CL_CHECK(l.size.has_value() != l.scale.has_value(), o.path() << ": give exactly one of size and scale_factor");
}

struct Walker {
  RfModel& m;
  bool stopped() const { return !m.stopped.empty(); }

  void walk(const json& layers, const std::string& path, int64_t top, std::vector<RfLayer>& out) {
    CL_CHECK(layers.is_array(), path << ": expected a list of layers");
    for (size_t i = 0; i < layers.size() && !stopped(); ++i) {
      const std::string p = path + "[" + std::to_string(i) + "]";
      const json& e = layers[i];
      CL_CHECK(e.is_object(), p << ": expected a layer object");
      int64_t repeat = 1;
      if (e.contains("repeat")) {
        CL_CHECK(e["repeat"].is_number_integer() && e["repeat"].get<int64_t>() >= 1 &&
                     e["repeat"].get<int64_t>() <= kMaxRepeat,
                 p << ".repeat: expected an integer in [1, " << kMaxRepeat << "], got " << json_brief(e["repeat"]));
        repeat = e["repeat"].get<int64_t>();
      }
      const int64_t t = top >= 0 ? top : static_cast<int64_t>(i);
      for (int64_t r = 0; r < repeat && !stopped(); ++r) one(e, r == 0 ? p : p + "#" + std::to_string(r + 1), t, out);
    }
  }

  void one(const json& e, const std::string& p, int64_t top, std::vector<RfLayer>& out) {
    Options o(e, p);
    CL_CHECK(e.contains("type") && e["type"].is_string(), p << ".type: missing (a layer type name)");
    const std::string type = e["type"].get<std::string>();
    RfLayer l;
    l.type = type, l.path = p, l.top = top;
    if (type == "sequential" || type == "residual") {
      CL_CHECK(e.contains("layers"), p << ".layers: missing (a " << type << " block lists its layers)");
      if (type == "sequential") return walk(e["layers"], p + ".layers", top, out);
      l.kind = RfKind::residual;
      walk(e["layers"], p + ".layers", top, l.body);
      CL_CHECK(!stopped(), m.stopped << " inside residual block " << p << ": the analysis needs a spatial output");
    } else if (is_skipped(type)) {
      return;
    } else if (type == "flatten" || type == "linear") {
      m.stopped = p + " (" + type + ")";
      return;
    } else if (type == "conv2d" || type == "separable_conv2d" || type == "deform_conv2d") {
      read_conv(o, l);
    } else if (type == "conv_transpose2d") {
      read_conv(o, l);
      l.kind = RfKind::transposed;
      l.output_padding = o.pair("output_padding", Pair{0, 0}, 0);
    } else if (type == "max_pool2d" || type == "avg_pool2d") {
      l.kind = RfKind::pool;
      l.kernel = o.pair("kernel_size", std::nullopt, 1);
      l.stride = o.has("stride") ? o.pair("stride", std::nullopt, 1) : l.kernel;
      l.padding = o.pair("padding", Pair{0, 0}, 0);
      if (type == "max_pool2d") l.dilation = o.pair("dilation", Pair{1, 1}, 1);
      l.ceil_mode = o.boolean("ceil_mode", false);
    } else if (type == "upsample") {
      read_upsample(o, l, false);
    } else if (type == "resize_conv2d") {
      RfLayer up = l;
      read_upsample(o, up, true);
      up.type = "resize_conv2d:upsample";
      out.push_back(up);
      l.type = "resize_conv2d:conv";
      read_conv(o, l);
    } else if (find_layer_type(type)) {
      CL_FAIL(p << ".type: '" << type << "' is not known to the receptive-field analysis");
    } else {
      std::vector<std::string> names = {"sequential", "residual"};
      for (const auto& lt : layer_types()) names.push_back(lt.name);
      const std::string hint = did_you_mean(type, names);
      CL_FAIL(p << ".type: unknown layer type '" << type << "'" << (hint.empty() ? "" : " (did you mean '" + hint + "'?)"));
    }
    out.push_back(l);
  }
};

bool spatial_conv(const RfLayer& l) { return l.kind == RfKind::conv && (l.kernel[0] > 1 || l.kernel[1] > 1); }
bool pointwise(const RfLayer& l) { return l.kind == RfKind::conv && l.kernel == Pair{1, 1} && l.stride == Pair{1, 1}; }

std::string join(const std::vector<int64_t>& v) {
  std::string s;
  for (int64_t x : v) {
    if (!s.empty()) s += ',';
    s += std::to_string(x);
  }
  return s;
}

std::string percent(double share) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2f%%", 100 * share);
  return buf;
}

}  // namespace

RfModel rf_model(const json& config) {
  RfModel m;
  CL_CHECK(config.is_object() && config.contains("model") && config["model"].is_object() &&
               config["model"].contains("layers"),
           "model.layers: missing (the network, a list of layers)");
  if (config.contains("data") && config["data"].is_object()) {
    Options d(config["data"], "data");
    const int64_t s = d.integer("image_size", 64, 1);
    m.input_size = {s, s};
  }
  Walker w{m};
  w.walk(config["model"]["layers"], "model.layers", -1, m.layers);
  CL_CHECK(!m.layers.empty(), "model.layers: no spatial layer to analyse");
  return m;
}

std::vector<DilatedRun> dilated_runs(const std::vector<RfLayer>& layers) {
  std::vector<DilatedRun> runs;
  std::optional<DilatedRun> cur;
  auto close = [&]() {
    if (!cur) return;
    DilatedRun r = *cur;
    cur.reset();
    bool dilated = false, first = true;
    for (size_t i = r.begin; i < r.end; ++i) {
      const RfLayer& l = layers[i];
      if (!spatial_conv(l)) continue;
      const bool d = l.dilation[0] > 1 || l.dilation[1] > 1;
      if (d && !dilated) r.first_dilated = i, dilated = true;
      const int64_t k = l.kernel[0] == l.kernel[1] ? l.kernel[0] : 0;
      r.kernel = first ? k : (r.kernel == k ? k : 0);
      first = false;
    }
    if (dilated) runs.push_back(r);
  };
  for (size_t i = 0; i < layers.size(); ++i) {
    const RfLayer& l = layers[i];
    if (spatial_conv(l) && l.stride == Pair{1, 1}) {
      if (!cur) cur = DilatedRun{i, i, i + 1, 0};
      cur->end = i + 1;
    } else if (!pointwise(l)) {
      close();
    }
  }
  close();
  return runs;
}

RunHdc run_hdc(const std::vector<RfLayer>& layers, const DilatedRun& run, size_t from) {
  std::vector<int64_t> rates;
  for (size_t i = std::max(run.begin, from); i < run.end; ++i)
    if (spatial_conv(layers[i])) rates.push_back(layers[i].dilation[0]);
  RunHdc h{hdc_check(run.kernel, rates), std::nullopt};
  const size_t n = rates.size();
  for (size_t p = 1; 2 * p <= n; ++p) {  // the shortest group the rates repeat ([2,2,2,2] is no group of [2,2])
    if (n % p != 0) continue;
    bool periodic = true;
    for (size_t i = p; i < n && periodic; ++i) periodic = rates[i] == rates[i % p];
    if (!periodic) continue;
    if (p >= 2) h.group = hdc_check(run.kernel, std::vector<int64_t>(rates.begin(), rates.begin() + static_cast<long>(p)));
    break;
  }
  return h;
}

std::vector<std::string> gridding_warnings(const json& config) {
  std::vector<std::string> out;
  try {
    const RfModel m = rf_model(config);
    const std::vector<Pair> sizes = rf_sizes(m.layers, m.input_size);
    for (const DilatedRun& run : dilated_runs(m.layers)) {
      const std::vector<RfLayer> stack(m.layers.begin() + static_cast<long>(run.first_dilated),
                                       m.layers.begin() + static_cast<long>(run.end));
      const RfAnalysis a = analyse_stack(stack, {.input_size = sizes[run.first_dilated], .pixel = std::nullopt});
      if (a.holes == 0) continue;
      std::vector<int64_t> rates;
      for (const RfLayer& l : stack)
        if (spatial_conv(l)) rates.push_back(l.dilation[0]);
      std::ostringstream os;
      os << "gridding: " << stack.front().path << " .. " << stack.back().path << " (dilations " << join(rates)
         << ") leave " << percent(a.hole_share) << " of their " << a.coverage.H << "x" << a.coverage.W
         << " receptive field unread at their input";
      const HdcVerdict v = hdc_check(run.kernel, rates);
      if (!v.ok()) os << " (HDC: " << v.fails.front() << ")";
      const std::vector<RfLayer> prefix(m.layers.begin(), m.layers.begin() + static_cast<long>(run.end));
      const RfAnalysis whole = analyse_stack(prefix, {.input_size = m.input_size, .pixel = std::nullopt});
      if (whole.holes == 0) os << "; the layers before them fill the holes at the image input";
      else os << "; the holes reach the image input (" << percent(whole.hole_share) << " of the window)";
      out.push_back(os.str());
    }
  } catch (const Error& e) {
    out.push_back(std::string("gridding lint skipped: ") + e.what());
  }
  return out;
}

}  // namespace convlab

// models/study/study_checkerboard.cpp: `convlab checkerboard`: overlap maps of transposed convs and of stacks of
// upsampling layers (Odena et al. 2016, "Deconvolution and Checkerboard Artifacts"), and the checkerboard
// strength of GAN generators' samples at init and trained (measures: models/eval/gan_eval.h).
//
// Overlap: per axis, the count of paths from an all-ones input to output index o is the sum of the counts
// of the input indices o reads (models/receptive_field.h rf_sources: a transposed conv's o reads every i
// with i*s - p + j*d = o, j < k); the 2-D map is the product of the two axes (every layer is separable).
// Bounded (a real input size: padding cuts taps at the borders) and on an unbounded lattice (the interior,
// periodic with the product of the upsampling factors). k4 s2 gives 2 taps per axis everywhere inside (flat),
// k3 s2 alternates 1 and 2 (1, 2, 4 in 2-D), resize-conv 3 (flat); stacking multiplies unevenness.
#include <algorithm>
#include <cmath>
#include <filesystem>
#include <map>

#include "core/error.h"
#include "data/mnist.h"
#include "data/safetensors.h"
#include "models/config.h"
#include "models/gan_task.h"
#include "models/eval/gan_eval.h"
#include "models/study/study.h"

namespace convlab {

using nlohmann::json;

namespace {

int64_t add_checked(int64_t a, int64_t b) {
  int64_t r = 0;
  CL_CHECK(!__builtin_add_overflow(a, b, &r), "checkerboard: path counts overflow int64 (the stack is too deep)");
  return r;
}

std::string join(const std::vector<int64_t>& v, const char* sep = " ") {
  std::string s;
  for (int64_t x : v) s += (s.empty() ? "" : sep) + std::to_string(x);
  return s;
}

// Integer upsampling factor of one axis of a layer (1 for convs and pools: a stride only divides the period).
int64_t up_factor(const RfLayer& l, int ax) {
  if (l.kind == RfKind::transposed) return l.stride[ax];
  if (l.kind != RfKind::nearest && l.kind != RfKind::bilinear) return 1;
  CL_CHECK(l.scale, "checkerboard: " << l.path << " (" << l.type << "): an upsample with an explicit size has no "
                                     << "lattice period; give scale_factor");
  const double s = (*l.scale)[ax];
  CL_CHECK(s >= 1 && s <= 4096 && s == std::floor(s), "checkerboard: " << l.path << " (" << l.type << "): scale_factor " << s
                                                                << " is not a whole number up to 4096: no periodic overlap");
  return int64_t(s);
}

// Paths from an unbounded all-ones lattice (the input of layers[first]) to index o of layer L's output.
int64_t lattice_count(const std::vector<RfLayer>& ls, size_t first, size_t L, int ax, int64_t o,
                      std::vector<std::map<int64_t, int64_t>>& memo) {
  if (L == first) return 1;
  auto it = memo[L].find(o);
  if (it != memo[L].end()) return it->second;
  std::vector<int64_t> src;
  rf_sources(ls[L - 1], ax, o, -1, -1, src);
  int64_t c = 0;
  for (int64_t i : src) c = add_checked(c, lattice_count(ls, first, L - 1, ax, i, memo));
  return memo[L][o] = c;
}

RfLayer transposed(int64_t k, int64_t s, int64_t p, int64_t op, int64_t d, const std::string& where) {
  CL_CHECK(k >= 1, "checkerboard: " << where << ": kernel must be >= 1, got " << k);
  CL_CHECK(s >= 1, "checkerboard: " << where << ": stride must be >= 1, got " << s);
  CL_CHECK(d >= 1, "checkerboard: " << where << ": dilation must be >= 1, got " << d);
  CL_CHECK(p >= 0 && p < d * (k - 1) + 1, "checkerboard: " << where << ": padding must be in [0, " << d * (k - 1) + 1
                                                          << ") (below the kernel extent d*(k-1)+1), got " << p);
  CL_CHECK(op >= 0 && (op < s || op < d), "checkerboard: " << where << ": output_padding must be >= 0 and smaller "
                                                            << "than the stride or the dilation, got " << op);
  RfLayer l;
  l.type = "conv_transpose2d", l.kind = RfKind::transposed, l.path = where;
  l.kernel = {k, k}, l.stride = {s, s}, l.padding = {p, p}, l.output_padding = {op, op}, l.dilation = {d, d};
  return l;
}

std::string layer_name(const RfLayer& l) {
  if (l.kind == RfKind::nearest || l.kind == RfKind::bilinear)
    return std::string(l.kind == RfKind::nearest ? "nearest" : "bilinear") + " x" +
           (l.scale ? fmt((*l.scale)[0]) : "size");
  std::string s = (l.kind == RfKind::transposed ? "convT k" : "conv k") + std::to_string(l.kernel[0]);
  if (l.stride[0] != 1 || l.kind == RfKind::transposed) s += " s" + std::to_string(l.stride[0]);
  s += " p" + std::to_string(l.padding[0]);
  if (l.output_padding[0] > 0) s += " op" + std::to_string(l.output_padding[0]);
  if (l.dilation[0] > 1) s += " d" + std::to_string(l.dilation[0]);
  return s;
}

struct Stack {
  std::string name;
  std::vector<RfLayer> layers;
  Pair input{0, 0};
  OverlapMap map;
};

// The generator of a resolved GAN config as RfLayers (z is 1x1), after make_gan_task validated it.
std::vector<RfLayer> generator_layers(const json& cfg) {
  RfModel m = rf_model(json{{"model", {{"layers", cfg["generator"]["layers"]}}}});
  for (RfLayer& l : m.layers) l.path.replace(0, 5, "generator");  // "model.layers[i]" -> "generator.layers[i]"
  return m.layers;
}

// Right-aligned integer table of at(y, x), y < H, x < W.
template <class F>
std::string int_table(int64_t H, int64_t W, F at, const std::string& indent) {
  int64_t mx = 0;
  for (int64_t y = 0; y < H; ++y)
    for (int64_t x = 0; x < W; ++x) mx = std::max(mx, at(y, x));
  const size_t width = std::to_string(mx).size() + 1;
  std::string s;
  for (int64_t y = 0; y < H; ++y) {
    s += indent;
    for (int64_t x = 0; x < W; ++x) {
      const std::string v = std::to_string(at(y, x));
      s += std::string(width - v.size(), ' ') + v;
    }
    s += "\n";
  }
  return s;
}

struct MapSummary {
  int64_t tile_min = 0, tile_max = 0, min = 0, max = 0;
  std::array<std::vector<int64_t>, 2> cut;  // indices whose bounded count differs from the interior's
};

MapSummary summarise(const OverlapMap& m) {
  MapSummary r;
  const auto [tmn, tmx] = std::minmax_element(m.tile[0].begin(), m.tile[0].end());
  const auto [umn, umx] = std::minmax_element(m.tile[1].begin(), m.tile[1].end());
  r.tile_min = *tmn * *umn, r.tile_max = *tmx * *umx;
  const auto [amn, amx] = std::minmax_element(m.axis[0].begin(), m.axis[0].end());
  const auto [bmn, bmx] = std::minmax_element(m.axis[1].begin(), m.axis[1].end());
  r.min = *amn * *bmn, r.max = *amx * *bmx;
  for (int ax = 0; ax < 2; ++ax)
    for (int64_t o = 0; o < m.output[ax]; ++o)
      if (m.axis[ax][size_t(o)] != m.tile[ax][size_t(o % m.period[ax])]) r.cut[ax].push_back(o);
  return r;
}

std::string ratio_str(int64_t mx, int64_t mn) { return mn > 0 ? fmt(double(mx) / double(mn), 4) : "inf (holes)"; }

json stack_json(const Stack& st) {
  const OverlapMap& m = st.map;
  const MapSummary s = summarise(m);
  json layers = json::array(), tile = json::array(), map = json::array();
  for (const RfLayer& l : st.layers) layers.push_back({{"path", l.path}, {"layer", layer_name(l)}});
  for (int64_t y = 0; y < m.period[0] && m.period[0] * m.period[1] <= 4096; ++y) {  // else: tile_axis only
    tile.push_back(json::array());
    for (int64_t x = 0; x < m.period[1]; ++x) tile.back().push_back(m.tile_at(y, x));
  }
  for (int64_t y = 0; y < m.output[0] && m.output[0] * m.output[1] <= 16384; ++y) {  // else: axis only
    map.push_back(json::array());
    for (int64_t x = 0; x < m.output[1]; ++x) map.back().push_back(m.at(y, x));
  }
  return {{"name", st.name}, {"layers", layers}, {"input", m.input}, {"output", m.output}, {"period", m.period},
          {"smallest_period", m.smallest_period}, {"tile_axis", m.tile}, {"tile", tile}, {"interior_min", s.tile_min},
          {"interior_max", s.tile_max},
          {"interior_ratio", s.tile_min > 0 ? json(double(s.tile_max) / double(s.tile_min)) : json(nullptr)},
          {"even", s.tile_min == s.tile_max}, {"axis", m.axis}, {"map", map}, {"min", s.min}, {"max", s.max},
          {"border_cut", s.cut}};
}

std::string stack_text(const Stack& st) {
  const OverlapMap& m = st.map;
  const MapSummary s = summarise(m);
  std::string layers;
  for (const RfLayer& l : st.layers) layers += (layers.empty() ? "" : " -> ") + layer_name(l);
  std::string t = st.name + ": " + layers + "\n";
  t += "  interior, one period (" + std::to_string(m.period[0]) + "x" + std::to_string(m.period[1]) +
       " output pixels, unbounded all-ones input; smallest period " + std::to_string(m.smallest_period[0]) + "):\n";
  if (m.period[0] <= 16 && m.period[1] <= 16)
    t += int_table(m.period[0], m.period[1], [&](int64_t y, int64_t x) { return m.tile_at(y, x); }, "    ");
  t += "    per axis " + join(m.tile[0]) + "; min " + std::to_string(s.tile_min) + ", max " +
       std::to_string(s.tile_max) + ", max/min " + ratio_str(s.tile_max, s.tile_min) +
       (s.tile_min == s.tile_max ? " (even)\n" : " (uneven: a stride-periodic pattern)\n");
  t += "  " + std::to_string(m.input[0]) + "x" + std::to_string(m.input[1]) + " input -> " + std::to_string(m.output[0]) +
       "x" + std::to_string(m.output[1]) + " output, per axis (rows): " + join(m.axis[0]) + "\n";
  t += "    min " + std::to_string(s.min) + ", max " + std::to_string(s.max) + "; ";
  t += s.cut[0].empty() ? "no border effect\n"
                        : "borders (padding cuts taps) differ from the interior at rows " + join(s.cut[0], ",") + "\n";
  if (m.output[0] <= 12 && m.output[1] <= 12) t += int_table(m.output[0], m.output[1], [&](int64_t y, int64_t x) { return m.at(y, x); }, "  ");
  return t + "\n";
}

std::vector<std::string> bn_modes(const std::string& bn, const GanTask& t) {
  if (bn == "both") return {"eval", "batch"};
  if (bn == "config") return {t.sample_batch_stats ? "batch" : "eval"};
  return {bn};
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.size() % 2 ? v[v.size() / 2] : 0.5 * (v[v.size() / 2 - 1] + v[v.size() / 2]);
}

json stats_json(const CheckerboardStats& s) {
  return {{"global", s.global}, {"per_image", s.per_image}, {"spectral", s.spectral}};
}

}  // namespace

OverlapMap overlap_map(const std::vector<RfLayer>& layers, Pair input) {
  CL_CHECK(input[0] >= 1 && input[1] >= 1, "checkerboard: the input size must be >= 1, got " << input[0] << "x" << input[1]);
  for (const RfLayer& l : layers)
    CL_CHECK(l.kind != RfKind::residual, "checkerboard: " << l.path << ": residual blocks are not supported");
  const std::vector<Pair> sizes = rf_sizes(layers, input);  // throws naming the layer when a size is impossible
  OverlapMap m;
  m.input = input, m.output = sizes.back();
  CL_CHECK(m.output[0] <= 4096 && m.output[1] <= 4096, "checkerboard: the stack maps " << input[0] << "x" << input[1]
               << " to " << m.output[0] << "x" << m.output[1] << "; keep the output <= 4096 (smaller --size, fewer layers)");
  // A layer fed by a single pixel writes each output once: what follows sees a flat input, so the interior
  // is that of the layers after it.
  size_t first = 0;
  for (size_t l = 0; l < layers.size(); ++l)
    if (sizes[l] == Pair{1, 1}) first = l + 1;
  std::vector<int64_t> src;
  for (int ax = 0; ax < 2; ++ax) {
    std::vector<int64_t> c(size_t(input[ax]), 1);
    for (size_t l = 0; l < layers.size(); ++l) {
      std::vector<int64_t> next(size_t(sizes[l + 1][ax]), 0);
      for (int64_t o = 0; o < sizes[l + 1][ax]; ++o) {
        src.clear();
        rf_sources(layers[l], ax, o, sizes[l][ax], sizes[l + 1][ax], src);
        for (int64_t i : src) next[size_t(o)] = add_checked(next[size_t(o)], c[size_t(i)]);
      }
      c = std::move(next);
    }
    m.axis[size_t(ax)] = std::move(c);
    int64_t T = 1;
    for (size_t l = first; l < layers.size(); ++l) T = std::min<int64_t>(T, 1 << 20) * up_factor(layers[l], ax);  // capped: no overflow before the check
    CL_CHECK(T <= 4096, "checkerboard: the stack's upsampling factor " << T << " is above 4096");
    m.period[ax] = T;
    std::vector<std::map<int64_t, int64_t>> memo(layers.size() + 1);
    for (int64_t o = 0; o < T; ++o) m.tile[size_t(ax)].push_back(lattice_count(layers, first, layers.size(), ax, o, memo));
    for (int64_t p = 1; p <= T; ++p) {
      bool ok = T % p == 0;
      for (int64_t o = 0; o < T && ok; ++o) ok = m.tile[size_t(ax)][size_t(o)] == m.tile[size_t(ax)][size_t(o % p)];
      if (ok) {
        m.smallest_period[ax] = p;
        break;
      }
    }
  }
  return m;
}

std::vector<RfLayer> parse_overlap_layers(const std::string& spec) {
  std::vector<RfLayer> out;
  size_t pos = 0;
  int idx = 0;
  while (true) {
    const size_t comma = spec.find(',', pos);
    const std::string tok = spec.substr(pos, comma == std::string::npos ? std::string::npos : comma - pos);
    const std::string where = "--layers item " + std::to_string(idx) + " '" + tok + "'";
    const std::string bad = "checkerboard: --layers: '" + tok + "' is not K:S:P[:OP[:D]] (a transposed conv) or "
                            "resize[:K[:P]] (nearest x2 then a conv), in '" + spec + "'";
    std::vector<std::string> parts;
    for (size_t a = 0;;) {
      const size_t c = tok.find(':', a);
      parts.push_back(tok.substr(a, c == std::string::npos ? std::string::npos : c - a));
      if (c == std::string::npos) break;
      a = c + 1;
    }
    const bool resize = parts[0] == "resize";
    std::vector<int64_t> v;
    for (size_t i = resize ? 1 : 0; i < parts.size(); ++i) {
      const std::string& p = parts[i];
      CL_CHECK(!p.empty() && p.size() <= 9 && p.find_first_not_of("0123456789") == std::string::npos, bad);
      v.push_back(std::stoll(p));
    }
    if (resize) {
      CL_CHECK(v.size() <= 2, bad);
      const int64_t k = v.empty() ? 3 : v[0];
      CL_CHECK(k >= 1, "checkerboard: " << where << ": kernel must be >= 1, got " << k);
      const int64_t p = v.size() == 2 ? v[1] : (k - 1) / 2;
      CL_CHECK(p < k, "checkerboard: " << where << ": padding must be below the kernel " << k << ", got " << p);
      RfLayer up;
      up.type = "upsample", up.kind = RfKind::nearest, up.path = where, up.scale = std::array<double, 2>{2.0, 2.0};
      RfLayer conv;
      conv.type = "conv2d", conv.path = where, conv.kernel = {k, k}, conv.padding = {p, p};
      out.push_back(up), out.push_back(conv);
    } else {
      CL_CHECK(v.size() >= 3 && v.size() <= 5, bad);
      out.push_back(transposed(v[0], v[1], v[2], v.size() > 3 ? v[3] : 0, v.size() > 4 ? v[4] : 1, where));
    }
    if (comma == std::string::npos) break;
    pos = comma + 1, ++idx;
  }
  return out;
}

StudyResult checkerboard_command(const CheckerboardCommand& c) {
  const bool single = c.kernel || c.stride || c.padding || c.output_padding || c.dilation;
  CL_CHECK(!(single && !c.layers.empty()), "checkerboard: give --kernel/--stride/--padding or --layers, not both");
  CL_CHECK(!single || c.kernel, "checkerboard: --stride/--padding/--output-padding/--dilation need --kernel");
  CL_CHECK(c.n >= 2, "checkerboard: -n must be >= 2, got " << c.n);
  CL_CHECK(c.size >= 0, "checkerboard: --size must be >= 1, got " << c.size);
  CL_CHECK(c.period >= 2, "checkerboard: --period must be >= 2, got " << c.period);
  CL_CHECK(c.init_seeds >= 1, "checkerboard: --init-seeds must be >= 1, got " << c.init_seeds);
  CL_CHECK(c.bn == "eval" || c.bn == "batch" || c.bn == "both" || c.bn == "config",
           "checkerboard: --bn must be eval, batch, both or config, got '" << c.bn << "'");
  CL_CHECK(c.sets.empty() || !c.configs.empty(), "checkerboard: --set needs --config");
  const bool defaults = !single && c.layers.empty() && c.configs.empty() && c.checkpoints.empty();
  std::vector<std::string> notes;

  // ---- the stacks ----
  std::vector<Stack> stacks;
  auto add_spec = [&](const std::string& name, std::vector<RfLayer> layers) {
    int64_t T = 1;
    for (const RfLayer& l : layers) T = std::min<int64_t>(T, 1 << 20) * up_factor(l, 0);
    const int64_t s = c.size > 0 ? c.size : std::max<int64_t>(3, 12 / T);
    stacks.push_back({name.empty() ? layer_name(layers[0]) : name, std::move(layers), {s, s}, {}});
  };
  if (single)
    add_spec("", {transposed(*c.kernel, c.stride.value_or(2), c.padding.value_or(0), c.output_padding.value_or(0),
                             c.dilation.value_or(1), "--kernel/--stride/--padding")});
  if (!c.layers.empty()) add_spec("--layers " + c.layers, parse_overlap_layers(c.layers));
  if (defaults) {
    add_spec("k3 s2 p1 op1", parse_overlap_layers("3:2:1:1"));
    add_spec("k4 s2 p1", parse_overlap_layers("4:2:1"));
    add_spec("resize-conv k3", parse_overlap_layers("resize:3"));
  }
  std::vector<std::string> configs = c.configs;
  if (defaults) {
    for (const char* p : {"configs/dcgan_mnist_k3.json", "configs/dcgan_mnist.json", "configs/dcgan_mnist_resize.json"})
      if (std::filesystem::exists(p)) configs.push_back(p);
    if (configs.empty()) notes.push_back("configs/dcgan_mnist*.json not found (run from the source folder): no generator rows");
  }
  std::vector<json> cfgs;
  for (const std::string& p : configs) {
    cfgs.push_back(load_config(p, c.sets));
    CL_CHECK(cfgs.back().is_object() && cfgs.back().contains("generator"),
             "checkerboard: --config " << p << ": no \"generator\" (a GAN config such as configs/dcgan_mnist.json)");
    const GanTask g = make_gan_task(cfgs.back(), false);  // refuses a misfit GAN config with one line
    CL_CHECK(g.image_size % c.period == 0,
             "checkerboard: --period " << c.period << " does not divide the image size " << g.image_size << " of " << p);
    stacks.push_back({p + " generator", generator_layers(cfgs.back()), {1, 1}, {}});
  }
  // Checkpoints: each must hold the generator of a --config (when configs are given).
  std::vector<std::pair<std::string, size_t>> ckpts;  // path, config index (or -1: its own)
  for (const std::string& ck : c.checkpoints) {
    GanTask t = load_generator(ck);
    size_t match = size_t(-1);
    for (size_t i = 0; i < cfgs.size() && match == size_t(-1); ++i)
      if (cfgs[i]["generator"] == t.config["generator"]) match = i;
    CL_CHECK(cfgs.empty() || match != size_t(-1),
             "checkerboard: --checkpoint " << ck << ": its generator (" << t.name << ") "
                                           << (cfgs.size() == 1 ? "does not match the generator of --config " + configs[0]
                                                                : std::string("matches none of the --config files")));
    CL_CHECK(t.image_size % c.period == 0, "checkerboard: --period " << c.period << " does not divide the image size "
                                                                      << t.image_size << " of --checkpoint " << ck);
    if (match == size_t(-1)) stacks.push_back({ck + " generator", generator_layers(t.config), {1, 1}, {}});
    ckpts.emplace_back(ck, match);
  }
  for (Stack& st : stacks) st.map = overlap_map(st.layers, st.input);

  StudyResult res;
  json jstacks = json::array();
  std::string& t = res.text;
  t = "overlap maps: paths from an all-ones input to each output pixel, every weight 1 (Odena et al. 2016)\n\n";
  std::vector<std::vector<std::string>> tab = {{"stack", "in -> out", "period", "interior/axis", "min", "max",
                                                "max/min", "border min"}};
  for (const Stack& st : stacks) {
    jstacks.push_back(stack_json(st));
    t += stack_text(st);
    const MapSummary s = summarise(st.map);
    const OverlapMap& m = st.map;
    tab.push_back({st.name, std::to_string(m.input[0]) + " -> " + std::to_string(m.output[0]), std::to_string(m.period[0]),
                   join(m.tile[0]), std::to_string(s.tile_min), std::to_string(s.tile_max), ratio_str(s.tile_max, s.tile_min),
                   std::to_string(s.min)});
  }
  if (stacks.size() > 1) t += "comparison (interior over one period; 2-D counts are per-axis products):\n" + format_table(tab);
  res.json = {{"stacks", jstacks}};

  // ---- strength ----
  if (!cfgs.empty() || !ckpts.empty()) {
    json rows = json::array();
    std::vector<std::vector<std::string>> st = {{"generator", "weights", "bn", "n", "global", "per-image", "spectral"}};
    auto add_row = [&](const std::string& src, const std::string& weights, const std::string& bn, int64_t n,
                       const CheckerboardStats& s) {
      json r = stats_json(s);
      r["source"] = src, r["weights"] = weights, r["bn"] = bn, r["n"] = n;
      rows.push_back(r);
      st.push_back({src, weights, bn, std::to_string(n), fmt(s.global, 3), fmt(s.per_image, 3), fmt(s.spectral, 3)});
    };
    json spread = json::array();
    std::vector<std::vector<std::string>> sp = {{"generator", "bn", "seeds", "per-image median", "min", "max", "global median"}};
    auto trained_rows = [&](size_t match) {  // the checkpoints of config `match` (-1: without a --config)
      for (const auto& [ck, m] : ckpts) {
        if (m != match) continue;
        GanTask tr = load_generator(ck);
        const auto meta = safetensors::load(ck).metadata;
        for (const std::string& bn : bn_modes(c.bn, tr))
          add_row(ck, "trained, step " + (meta.count("step") ? meta.at("step") : "?"), bn, c.n,
                  generator_checkerboard(tr, c.n, c.seed, bn == "batch", c.period));
      }
    };
    for (size_t i = 0; i < cfgs.size(); ++i) {
      GanTask g = make_gan_task(cfgs[i], false);
      for (const std::string& bn : bn_modes(c.bn, g))
        add_row(configs[i], "init (seed " + std::to_string(g.seed) + ")", bn, c.n,
                generator_checkerboard(g, c.n, c.seed, bn == "batch", c.period));
      trained_rows(i);
      for (const std::string& bn : c.init_seeds > 1 ? bn_modes(c.bn, g) : std::vector<std::string>{}) {
        std::vector<double> per, glob;
        for (int64_t k = 0; k < c.init_seeds; ++k) {  // the same config, its weights drawn from seed + k
          json cfg = cfgs[i];
          cfg["seed"] = g.seed + uint64_t(k);
          GanTask gk = make_gan_task(cfg, false);
          const CheckerboardStats s = generator_checkerboard(gk, c.n, c.seed, bn == "batch", c.period);
          per.push_back(s.per_image), glob.push_back(s.global);
        }
        const std::string seeds = std::to_string(g.seed) + ".." + std::to_string(g.seed + uint64_t(c.init_seeds) - 1);
        spread.push_back({{"source", configs[i]}, {"bn", bn}, {"seeds", seeds}, {"per_image", per}, {"global", glob}});
        sp.push_back({configs[i], bn, seeds, fmt(median(per), 3), fmt(*std::min_element(per.begin(), per.end()), 3),
                      fmt(*std::max_element(per.begin(), per.end()), 3), fmt(median(glob), 3)});
      }
    }
    trained_rows(size_t(-1));
    if (mnist_available()) {
      const Mnist mn = load_mnist();
      const auto test = mnist_indices(mn, MnistSplit::kTest);
      add_row("held-out real MNIST digits", "(reference)", "-", int64_t(test.size()),
              checkerboard_stats(mnist_images(mn, test), c.period));
    } else {
      notes.push_back("held-out real digits skipped: MNIST is missing (scripts/get_mnist.sh)");
    }
    const std::string P = std::to_string(c.period);
    t += "\ncheckerboard strength of generator samples (period " + P + ": the " + P + "x" + P + " phase pattern; " +
         std::to_string(c.n) + " samples, latent seed " + std::to_string(c.seed) + ")\n";
    t += "  global:    variance of the phase means pooled over all samples / pixel variance (gan-eval's measure)\n"
         "  per-image: mean over samples of var(the sample's phase means) / var(its pixels) (the pilot's measure)\n"
         "  spectral:  share of the samples' non-DC Fourier energy at the alias frequencies (2pi a/" + P + ", 2pi b/" + P +
         "),\n             energy-weighted over samples (per sample it equals the per-image ratio: Parseval)\n";
    t += format_table(st);
    if (c.init_seeds > 1) t += "\nspread of the at-init strength over config seeds (weights drawn again per seed):\n" + format_table(sp);
    res.json["strength"] = {{"period", c.period}, {"n", c.n}, {"latent_seed", c.seed}, {"rows", rows}};
    if (c.init_seeds > 1) res.json["strength"]["init_seed_spread"] = spread;
  }
  for (const std::string& n : notes) t += "note: " + n + "\n";
  res.json["notes"] = notes;

  if (!c.png.empty()) {
    std::vector<RgbImage> tiles;
    for (const Stack& st : stacks) {
      const OverlapMap& m = st.map;
      std::vector<double> v;
      for (int64_t y = 0; y < m.output[0]; ++y)
        for (int64_t x = 0; x < m.output[1]; ++x) v.push_back(double(m.at(y, x)));
      tiles.push_back(titled_heatmap(v, m.output[0], m.output[1], {230, 30, 30}, "no path",
                                     "overlap of " + st.name + ": paths per output pixel"));
    }
    write_png(c.png, compose_grid({tiles}, 8, 255));
    t += "wrote " + c.png + " (overlap maps left to right in the order above, each titled, colour bar 0 .. max; red: no path)\n";
  }
  return res;
}

}  // namespace convlab

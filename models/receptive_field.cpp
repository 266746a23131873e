// models/receptive_field.cpp: per-axis index maps of every spatial layer, the receptive-field table, the
// exact coverage map and the HDC rule (see receptive_field.h). Config walking: models/receptive_field_config.cpp.
#include "models/receptive_field.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <sstream>

#include "core/error.h"
#include "core/conv_transpose2d.h"
#include "core/pool.h"
#include "core/upsample.h"

namespace convlab {
namespace {

int64_t floor_div(int64_t a, int64_t b) { return a / b - ((a % b != 0) && ((a < 0) != (b < 0))); }
int64_t floor_mod(int64_t a, int64_t b) { return a - floor_div(a, b) * b; }

// PyTorch's compute_scales_value<float> (see core/upsample.cpp): 1/scale when a scale factor was given.
float upsample_ratio(const RfLayer& l, int ax, int64_t in, int64_t out) {
  if (l.scale) return static_cast<float>(1.0 / (*l.scale)[ax]);
  CL_CHECK(in > 0 && out > 0, l.path << " (" << l.type << "): an explicit output size needs the input size "
                                     << "(give --size for an unbounded analysis)");
  return static_cast<float>(in) / static_cast<float>(out);
}

bool bounded(int64_t in) { return in > 0; }

constexpr int64_t kMaxCoverageSide = 1 << 16, kMaxCoverageArea = int64_t(1) << 26;  // pixels drawn

}  // namespace

Pair rf_output_size(const RfLayer& l, Pair in) {
  const Shape x = {1, 1, in[0], in[1]};
  try {
    switch (l.kind) {
      case RfKind::conv: {
        const ConvDims d = conv2d_dims(x, {1, 1, l.kernel[0], l.kernel[1]}, nullptr,
                                       Conv2dArgs{l.stride, l.padding, l.dilation, 1}, "conv2d");
        return {d.H_out, d.W_out};
      }
      case RfKind::pool: {
        PoolDims d;
        if (l.type == "avg_pool2d") d = avg_pool2d_dims(x, AvgPool2dArgs{l.kernel, l.stride, l.padding, l.ceil_mode});
        else d = max_pool2d_dims(x, MaxPool2dArgs{l.kernel, l.stride, l.padding, l.dilation, l.ceil_mode});
        return {d.H_out, d.W_out};
      }
      case RfKind::transposed: {
        const ConvTranspose2dArgs a{l.stride, l.padding, l.output_padding, l.dilation, 1};
        const ConvDims d = conv_transpose2d_dims(x, {1, 1, l.kernel[0], l.kernel[1]}, nullptr, a);
        return {d.H, d.W};
      }
      case RfKind::nearest:
      case RfKind::bilinear: {
        UpsampleArgs a;
        a.mode = l.kind == RfKind::nearest ? UpsampleMode::nearest : UpsampleMode::bilinear;
        a.size = l.size, a.scale = l.scale, a.align_corners = l.align_corners;
        const UpsampleDims d = upsample_dims(x, a);
        return {d.H_out, d.W_out};
      }
      case RfKind::residual: {
        Pair s = in;
        for (const RfLayer& b : l.body) s = rf_output_size(b, s);
        CL_CHECK(s == in, "the body maps " << in[0] << "x" << in[1] << " to " << s[0] << "x" << s[1]
                                           << " (a residual block must keep the size)");
        return s;
      }
    }
  } catch (const Error& e) {
    if (l.kind == RfKind::residual) throw Error(l.path + " (residual): " + e.what());
    throw Error(l.path + " (" + l.type + "): " + e.what());
  }
  return in;
}

void rf_sources(const RfLayer& l, int ax, int64_t o, int64_t in, int64_t out, std::vector<int64_t>& src) {
  // Pulled back through many strided layers, an index of the unbounded lattice grows by the stride each time:
  // kept where o * stride (stride <= 4096, see analyse_stack) cannot overflow.
  constexpr int64_t kMaxIndex = int64_t(1) << 40;
  CL_CHECK(o >= -kMaxIndex && o <= kMaxIndex,
           l.path << " (" << l.type << "): index " << o << " is beyond the analysed lattice (|index| <= 2^40)");
  const int64_t k = l.kernel[ax], s = l.stride[ax], p = l.padding[ax], d = l.dilation[ax];
  auto keep = [&](int64_t i) {
    if (!bounded(in) || (i >= 0 && i < in)) src.push_back(i);
  };
  switch (l.kind) {
    case RfKind::conv:
    case RfKind::pool:
      for (int64_t j = 0; j < k; ++j) keep(o * s - p + j * d);
      break;
    case RfKind::transposed:  // output o = i*s - p + j*d: the taps j whose input index is an integer
      for (int64_t j = 0; j < k; ++j) {
        const int64_t t = o + p - j * d;
        if (floor_mod(t, s) == 0) keep(floor_div(t, s));
      }
      break;
    case RfKind::nearest: {  // src = min(floor(float(o) * ratio), in - 1), as PyTorch 1.13
      const float ratio = upsample_ratio(l, ax, in, out);
      int64_t i = static_cast<int64_t>(std::floor(static_cast<float>(o) * ratio));
      if (bounded(in)) i = std::min(i, in - 1);
      keep(i);
      break;
    }
    case RfKind::bilinear: {  // the two neighbours of the source point, those with non-zero weight
      float src_f;
      if (l.align_corners) {
        CL_CHECK(bounded(in), l.path << ": align_corners needs the input size");
        src_f = out > 1 ? static_cast<float>(in - 1) / static_cast<float>(out - 1) * static_cast<float>(o) : 0.f;
      } else {
        const float ratio = upsample_ratio(l, ax, in, out);
        src_f = static_cast<float>(static_cast<double>(ratio) * (static_cast<double>(o) + 0.5) - 0.5);
        if (bounded(in)) src_f = std::max(src_f, 0.f);  // PyTorch clamps at 0; the lattice has no border
      }
      const int64_t i0 = static_cast<int64_t>(std::floor(src_f));
      const int64_t i1 = bounded(in) && i0 >= in - 1 ? i0 : i0 + 1;
      const float l1 = std::min(std::max(src_f - static_cast<float>(i0), 0.f), 1.f);
      if (l1 < 1.f) keep(i0);
      if (l1 > 0.f && i1 != i0) keep(i1);
      break;
    }
    case RfKind::residual:
      CL_FAIL(l.path << ": a residual block has no single index map");
  }
}

std::vector<Pair> rf_sizes(const std::vector<RfLayer>& layers, Pair in) {
  std::vector<Pair> sizes = {in};
  for (const RfLayer& l : layers) sizes.push_back(bounded(in[0]) ? rf_output_size(l, sizes.back()) : Pair{-1, -1});
  return sizes;
}

namespace {

struct AxisState {
  double rf = 1, jump = 1, start = 0;
};

// Largest spread (max - min input index) an output pixel of this layer reads, over all output phases.
// Convs, pools and transposed convs are taken on the unbounded lattice (the theoretical value);
// upsampling uses the real sizes when known (with an explicit size the ratio depends on them).
int64_t layer_spread(const RfLayer& l, int ax, int64_t in, int64_t out) {
  const bool resample = l.kind == RfKind::nearest || l.kind == RfKind::bilinear;
  const bool use_sizes = resample && bounded(in);
  const int64_t n = use_sizes ? std::min<int64_t>(out, 512) : (resample ? 64 : l.stride[ax]);
  int64_t spread = 0;
  std::vector<int64_t> src;
  for (int64_t o = 0; o < n; ++o) {
    src.clear();
    rf_sources(l, ax, o, use_sizes ? in : -1, use_sizes ? out : -1, src);
    if (src.empty()) continue;
    const auto [lo, hi] = std::minmax_element(src.begin(), src.end());
    spread = std::max(spread, *hi - *lo);
  }
  return spread;
}

void add_rows(const std::vector<RfLayer>& layers, Pair in, std::array<AxisState, 2>& st, std::vector<RfRow>& rows) {
  const std::vector<Pair> sizes = rf_sizes(layers, in);
  for (size_t i = 0; i < layers.size(); ++i) {
    const RfLayer& l = layers[i];
    if (l.kind == RfKind::residual) {  // the body's window contains the identity's single pixel
      add_rows(l.body, sizes[i], st, rows);
      continue;
    }
    RfRow r{l.path, l.type, l.kernel, l.stride, l.padding, l.dilation, sizes[i + 1], {}, {}, {}};
    for (int ax = 0; ax < 2; ++ax) {
      AxisState& a = st[static_cast<size_t>(ax)];
      const int64_t in_n = sizes[i][ax], out_n = sizes[i + 1][ax];
      const double ext = static_cast<double>(l.dilation[ax] * (l.kernel[ax] - 1));  // dilated extent - 1
      a.rf += static_cast<double>(layer_spread(l, ax, in_n, out_n)) * a.jump;
      switch (l.kind) {
        case RfKind::conv:
        case RfKind::pool:
          a.start += (ext / 2 - static_cast<double>(l.padding[ax])) * a.jump;
          a.jump *= static_cast<double>(l.stride[ax]);
          break;
        case RfKind::transposed:
          a.start += (static_cast<double>(l.padding[ax]) - ext / 2) / static_cast<double>(l.stride[ax]) * a.jump;
          a.jump /= static_cast<double>(l.stride[ax]);
          break;
        default: {  // upsampling: output o sits at (o + 0.5) * ratio - 0.5 (nearest reads pixel 0 for o = 0)
          const double ratio = bounded(in_n) ? static_cast<double>(in_n) / static_cast<double>(out_n)
                                             : 1.0 / (*l.scale)[static_cast<size_t>(ax)];
          if (l.kind == RfKind::bilinear && !l.align_corners) a.start += (0.5 * ratio - 0.5) * a.jump;
          a.jump *= ratio;
        }
      }
      r.rf[static_cast<size_t>(ax)] = a.rf, r.jump[static_cast<size_t>(ax)] = a.jump;
      r.start[static_cast<size_t>(ax)] = a.start;
    }
    rows.push_back(r);
  }
}

// m is a map over the output of layer l (axis ax); rewrites it as a map over l's input.
void pull_axis(const RfLayer& l, int ax, int64_t in, int64_t out, CoverageMap& m) {
  const int64_t n = ax == 0 ? m.H : m.W, origin = ax == 0 ? m.y0 : m.x0;
  std::vector<std::vector<int64_t>> src(static_cast<size_t>(n));
  int64_t lo = INT64_MAX, hi = INT64_MIN;
  for (int64_t o = 0; o < n; ++o) {
    rf_sources(l, ax, origin + o, in, out, src[static_cast<size_t>(o)]);
    for (int64_t i : src[static_cast<size_t>(o)]) lo = std::min(lo, i), hi = std::max(hi, i);
  }
  CoverageMap r;
  if (lo > hi) {  // nothing read (every tap in the padding, or a transposed-conv phase with no tap)
    m = r;
    return;
  }
  r.y0 = ax == 0 ? lo : m.y0, r.x0 = ax == 0 ? m.x0 : lo;
  CL_CHECK(hi - lo < kMaxCoverageSide, l.path << ": the coverage map would span " << hi - lo + 1
                                              << " pixels, more than the " << kMaxCoverageSide << " it draws");
  r.H = ax == 0 ? hi - lo + 1 : m.H, r.W = ax == 0 ? m.W : hi - lo + 1;
  CL_CHECK(r.H * r.W <= kMaxCoverageArea, l.path << ": the coverage map would be " << r.H << "x" << r.W
                                                 << " pixels, more than the " << kMaxCoverageArea << " it draws");
  r.count.assign(static_cast<size_t>(r.H * r.W), 0.0);
  for (int64_t o = 0; o < n; ++o)
    for (int64_t i : src[static_cast<size_t>(o)]) {
      if (ax == 0)
        for (int64_t x = 0; x < m.W; ++x) r.count[static_cast<size_t>((i - lo) * r.W + x)] += m.at(o, x);
      else
        for (int64_t y = 0; y < m.H; ++y) r.count[static_cast<size_t>(y * r.W + (i - lo))] += m.at(y, o);
    }
  m = std::move(r);
}

CoverageMap add_maps(const CoverageMap& a, const CoverageMap& b) {
  if (a.H == 0) return b;
  if (b.H == 0) return a;
  CoverageMap r;
  r.y0 = std::min(a.y0, b.y0), r.x0 = std::min(a.x0, b.x0);
  r.H = std::max(a.y0 + a.H, b.y0 + b.H) - r.y0, r.W = std::max(a.x0 + a.W, b.x0 + b.W) - r.x0;
  r.count.assign(static_cast<size_t>(r.H * r.W), 0.0);
  for (const CoverageMap* m : {&a, &b})
    for (int64_t y = 0; y < m->H; ++y)
      for (int64_t x = 0; x < m->W; ++x)
        r.count[static_cast<size_t>((m->y0 - r.y0 + y) * r.W + (m->x0 - r.x0 + x))] += m->at(y, x);
  return r;
}

void pull_back(const std::vector<RfLayer>& layers, Pair in, CoverageMap& m) {
  const std::vector<Pair> sizes = rf_sizes(layers, in);
  for (size_t i = layers.size(); i-- > 0;) {
    const RfLayer& l = layers[i];
    if (l.kind == RfKind::residual) {
      CoverageMap body = m;
      pull_back(l.body, sizes[i], body);
      m = add_maps(m, body);
      continue;
    }
    pull_axis(l, 0, sizes[i][0], sizes[i + 1][0], m);
    if (m.H == 0) return;
    pull_axis(l, 1, sizes[i][1], sizes[i + 1][1], m);
    if (m.W == 0) return;
  }
}

}  // namespace

// The analysis walks every tap of every output phase and draws the coverage map pixel by pixel, so
// its inputs are bounded where a network layer's are not: far above any real network, low enough that a
// typed number never becomes an endless loop or a map of petabytes.
constexpr int64_t kMaxRfArg = 4096;    // kernel, stride, padding, dilation, output_padding
constexpr size_t kMaxRfLayers = 4096;  // layers in one analysed stack (bodies included)

void check_rf_layers(const std::vector<RfLayer>& layers, size_t& count) {
  for (const RfLayer& l : layers) {
    CL_CHECK(++count <= kMaxRfLayers, "rf: more than " << kMaxRfLayers << " layers to analyse");
    for (int ax = 0; ax < 2; ++ax)
      CL_CHECK(l.kernel[ax] <= kMaxRfArg && l.stride[ax] <= kMaxRfArg && l.padding[ax] <= kMaxRfArg &&
                   l.dilation[ax] <= kMaxRfArg && l.output_padding[ax] <= kMaxRfArg,
               l.path << " (" << l.type << "): the receptive-field analysis takes kernel, stride, padding and "
                      << "dilation up to " << kMaxRfArg << ", got kernel " << l.kernel[ax] << ", stride "
                      << l.stride[ax] << ", padding " << l.padding[ax] << ", dilation " << l.dilation[ax]);
    if (l.scale)
      for (double s : *l.scale)
        CL_CHECK(std::isfinite(s) && s >= 1.0 / kMaxRfArg && s <= kMaxRfArg,
                 l.path << " (" << l.type << "): the receptive-field analysis takes scale_factor in [1/" << kMaxRfArg
                        << ", " << kMaxRfArg << "], got " << s);
    check_rf_layers(l.body, count);
  }
}

RfAnalysis analyse_stack(const std::vector<RfLayer>& layers, const RfOptions& opt) {
  size_t count = 0;
  check_rf_layers(layers, count);
  RfAnalysis a;
  a.input_size = opt.input_size;
  const std::vector<Pair> sizes = rf_sizes(layers, opt.input_size);
  a.output_size = sizes.back();
  std::array<AxisState, 2> st{};
  add_rows(layers, opt.input_size, st, a.rows);
  CL_CHECK(!a.rows.empty(), "rf: no spatial layer to analyse (an empty stack or block)");

  const bool bnd = bounded(opt.input_size[0]);
  a.pixel = opt.pixel ? *opt.pixel : bnd ? Pair{a.output_size[0] / 2, a.output_size[1] / 2} : Pair{0, 0};
  if (bnd)
    CL_CHECK(a.pixel[0] >= 0 && a.pixel[0] < a.output_size[0] && a.pixel[1] >= 0 && a.pixel[1] < a.output_size[1],
             "rf: output pixel (" << a.pixel[0] << "," << a.pixel[1] << ") is outside the " << a.output_size[0] << "x"
                                  << a.output_size[1] << " output");
  CoverageMap m{a.pixel[0], a.pixel[1], 1, 1, {1.0}};
  pull_back(layers, opt.input_size, m);

  // Crop to the bounding box of the reached pixels, then count the holes inside it.
  int64_t y_lo = INT64_MAX, y_hi = -1, x_lo = INT64_MAX, x_hi = -1;
  for (int64_t y = 0; y < m.H; ++y)
    for (int64_t x = 0; x < m.W; ++x)
      if (m.at(y, x) != 0) y_lo = std::min(y_lo, y), y_hi = std::max(y_hi, y), x_lo = std::min(x_lo, x), x_hi = std::max(x_hi, x);
  if (y_hi < 0) return a;  // the output pixel reads nothing
  CoverageMap& c = a.coverage;
  c.y0 = m.y0 + y_lo, c.x0 = m.x0 + x_lo, c.H = y_hi - y_lo + 1, c.W = x_hi - x_lo + 1;
  for (int64_t y = y_lo; y <= y_hi; ++y)
    for (int64_t x = x_lo; x <= x_hi; ++x) {
      const double v = m.at(y, x);
      c.count.push_back(v);
      a.max_count = std::max(a.max_count, v);
      (v != 0 ? a.reached : a.holes) += 1;
    }
  a.hole_share = static_cast<double>(a.holes) / static_cast<double>(c.H * c.W);
  a.exact = a.max_count < 9007199254740992.0;  // 2^53
  return a;
}

HdcVerdict hdc_check(int64_t kernel, const std::vector<int64_t>& rates) {
  HdcVerdict v;
  v.kernel = kernel, v.rates = rates;
  CL_CHECK(!rates.empty(), "hdc: no dilation rates");
  for (int64_t r : rates) CL_CHECK(r >= 1, "hdc: dilation must be >= 1, got " << r);
  const size_t n = rates.size();
  v.M.assign(n, 0);
  v.M[n - 1] = rates[n - 1];
  for (size_t i = n - 1; i-- > 0;) {
    const int64_t next = v.M[i + 1], r = rates[i];
    v.M[i] = std::max({next - 2 * r, next - 2 * (next - r), r});
  }
  v.formula_applies = n >= 2 && kernel > 0;
  std::ostringstream os;
  if (v.formula_applies) {
    v.M2 = v.M[1];
    v.formula_ok = v.M2 <= kernel;
    if (!v.formula_ok) {
      os << "M_2 = " << v.M2 << " > K = " << kernel << ": the top layers leave gaps of " << v.M2
         << " that the first layer's kernel cannot fill";
      v.fails.push_back(os.str());
    }
  }
  v.common_factor = std::accumulate(rates.begin(), rates.end(), int64_t{0}, [](int64_t a, int64_t b) { return std::gcd(a, b); });
  if (v.common_factor > 1) {
    os.str("");
    os << "the rates share the factor " << v.common_factor << ": every path moves in steps of " << v.common_factor
       << ", so only one input pixel in " << v.common_factor * v.common_factor << " is read";
    v.fails.push_back(os.str());
  }
  return v;
}

std::vector<RfLayer> rf_schedule(const std::vector<int64_t>& kernels, const std::vector<int64_t>& dilations,
                                 const std::vector<int64_t>& strides) {
  CL_CHECK(!dilations.empty(), "rf: --dilations is empty (give e.g. --dilations 1,2,5)");
  const size_t n = dilations.size();
  auto pick = [&](const std::vector<int64_t>& v, size_t i, const char* what, int64_t dflt) {
    if (v.empty()) return dflt;
    CL_CHECK(v.size() == 1 || v.size() == n,
             "rf: --" << what << " needs one value or one per layer (" << n << "), got " << v.size());
    return v.size() == 1 ? v[0] : v[i];
  };
  std::vector<RfLayer> out;
  for (size_t i = 0; i < n; ++i) {
    const int64_t k = pick(kernels, i, "kernel", 3), d = dilations[i], s = pick(strides, i, "strides", 1);
    CL_CHECK(k >= 1, "rf: kernel must be >= 1, got " << k << " (layer " << i << ")");
    CL_CHECK(d >= 1, "rf: dilation must be >= 1, got " << d << " (layer " << i << ")");
    CL_CHECK(s >= 1, "rf: stride must be >= 1, got " << s << " (layer " << i << ")");
    RfLayer l;
    l.type = "conv2d", l.path = "layer " + std::to_string(i), l.top = static_cast<int64_t>(i);
    l.kernel = {k, k}, l.dilation = {d, d}, l.stride = {s, s}, l.padding = {d * (k - 1) / 2, d * (k - 1) / 2};
    out.push_back(l);
  }
  return out;
}

}  // namespace convlab

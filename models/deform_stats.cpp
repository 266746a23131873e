// models/deform_stats.cpp: sampling points and offset statistics of DeformConv2d layers (models/deform_stats.h).
// Statistics are sums in double over the points in a fixed order (single-threaded: a few thousand points per
// image), so they are identical on 1 and 2 threads; in training they are summed per batch shard and folded
// (core/shards.h), so N processes log the numbers of one.
#include "models/deform_stats.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "core/error.h"
#include "core/shards.h"
#include "layers/conv_layers.h"

namespace convlab {

using nlohmann::json;

DeformGeometry deform_geometry(const DeformConv2d& layer, const Shape& in) {
  const Conv2d* off = nullptr;
  bool modulated = false;
  for (const auto& [name, child] : layer.children()) {
    if (name == "offset") off = dynamic_cast<const Conv2d*>(child.get());
    if (name == "mask") modulated = true;
  }
  CL_CHECK(off, "deform_conv2d: the layer has no offset predictor");
  CL_CHECK(in.size() == 4, "deform_conv2d: expected an input [N, C, H, W], got " << shape_str(in));
  const Conv2dOptions& o = off->options();
  DeformGeometry g;
  g.H = in[2], g.W = in[3];
  g.kernel = o.kernel_size, g.stride = o.stride, g.padding = o.padding, g.dilation = o.dilation;
  g.modulated = modulated;
  g.offset_groups = o.out_channels / (2 * g.taps());  // the predictor gives 2*OG*T channels
  const Shape out = off->output_shape(in);
  g.H_out = out[2], g.W_out = out[3];
  return g;
}

namespace {

void check_tensors(const DeformGeometry& g, const Tensor& offset, const Tensor& mask) {
  const int64_t T = g.taps(), OG = g.offset_groups;
  CL_CHECK(offset.defined() && offset.dim() == 4 && offset.size(1) == 2 * OG * T && offset.size(2) == g.H_out &&
               offset.size(3) == g.W_out,
           "deform offsets: expected [N, " << 2 * OG * T << ", " << g.H_out << ", " << g.W_out << "], got "
                                           << (offset.defined() ? shape_str(offset.shape()) : "none"));
  CL_CHECK(mask.defined() == g.modulated, "deform mask: " << (g.modulated ? "missing for a v2 layer" : "given for a v1 layer"));
  if (mask.defined())
    CL_CHECK(mask.shape() == (Shape{offset.size(0), OG * T, g.H_out, g.W_out}),
             "deform mask: expected [" << offset.size(0) << ", " << OG * T << ", " << g.H_out << ", " << g.W_out
                                       << "], got " << shape_str(mask.shape()));
}

// The integer part of tap t's position for output pixel (oh, ow), as the kernel forms it.
int64_t base_y(const DeformGeometry& g, int64_t t, int64_t oh) {
  return oh * g.stride[0] - g.padding[0] + t / g.kernel[1] * g.dilation[0];
}
int64_t base_x(const DeformGeometry& g, int64_t t, int64_t ow) {
  return ow * g.stride[1] - g.padding[1] + t % g.kernel[1] * g.dilation[1];
}

}  // namespace

bool reads_padding(const DeformGeometry& g, double y, double x) {
  // Neighbour rows floor(y) (weight 1 - frac) and floor(y) + 1 (weight frac): one of them is outside
  // [0, H) with a non-zero weight exactly when y < 0 or y > H - 1 (same for x). NaN counts as outside.
  return !(y >= 0 && y <= double(g.H - 1) && x >= 0 && x <= double(g.W - 1));
}

std::vector<SamplePoint> deform_sample_points(const DeformGeometry& g, const Tensor& offset, const Tensor& mask,
                                              int64_t n, int64_t oh, int64_t ow) {
  check_tensors(g, offset, mask);
  CL_CHECK(n >= 0 && n < offset.size(0), "deform points: image " << n << " of a batch of " << offset.size(0));
  CL_CHECK(oh >= 0 && oh < g.H_out && ow >= 0 && ow < g.W_out,
           "deform points: output pixel " << oh << "," << ow << " is outside the layer's output " << g.H_out << "x"
                                          << g.W_out);
  const int64_t T = g.taps(), HWo = g.H_out * g.W_out, p = oh * g.W_out + ow;
  std::vector<SamplePoint> pts;
  for (int64_t og = 0; og < g.offset_groups; ++og)
    for (int64_t t = 0; t < T; ++t) {
      const float* dy = offset.data() + ((n * g.offset_groups + og) * 2 * T + 2 * t) * HWo;
      SamplePoint s;
      s.og = og, s.tap = t;
      s.regular_y = double(base_y(g, t, oh)), s.regular_x = double(base_x(g, t, ow));
      s.dy = dy[p], s.dx = dy[HWo + p];
      s.y = double(static_cast<float>(base_y(g, t, oh)) + dy[p]);
      s.x = double(static_cast<float>(base_x(g, t, ow)) + dy[HWo + p]);
      s.mask = mask.defined() ? double(mask.data()[((n * g.offset_groups + og) * T + t) * HWo + p]) : 1.0;
      pts.push_back(s);
    }
  return pts;
}

DeformStats deform_stats(const DeformGeometry& g, const Tensor& offset, const Tensor& mask) {
  check_tensors(g, offset, mask);
  const int64_t N = offset.size(0), T = g.taps(), OG = g.offset_groups, HWo = g.H_out * g.W_out;
  // Per batch shard (core/shards.h; one shard outside training): [sum of lengths, outside, regular outside,
  // 5 mask bins], the counts exact in double; the shards folded in shard order, the maximum over all ranks.
  constexpr int64_t kSums = 8;
  const BatchShards& bs = batch_shards();
  const int64_t shards = local_shards(N, "deform statistics"), per = N / shards;
  std::vector<double> part(static_cast<size_t>(shards * kSums), 0.0), sum(kSums);
  DeformStats s;
  s.points = N / shards * bs.total * OG * T * HWo;
  for (int64_t k = 0; k < shards; ++k) {
    double* ps = part.data() + k * kSums;
    for (int64_t n = k * per; n < (k + 1) * per; ++n)
      for (int64_t og = 0; og < OG; ++og)
        for (int64_t t = 0; t < T; ++t) {
          const float* dy = offset.data() + ((n * OG + og) * 2 * T + 2 * t) * HWo;
          const float* dx = dy + HWo;
          const float* m = mask.defined() ? mask.data() + ((n * OG + og) * T + t) * HWo : nullptr;
          for (int64_t oh = 0; oh < g.H_out; ++oh)
            for (int64_t ow = 0; ow < g.W_out; ++ow) {
              const int64_t p = oh * g.W_out + ow, by = base_y(g, t, oh), bx = base_x(g, t, ow);
              const double len = std::hypot(double(dy[p]), double(dx[p]));
              ps[0] += len;
              s.max_abs_offset = std::max(s.max_abs_offset, len);
              ps[1] += reads_padding(g, double(static_cast<float>(by) + dy[p]), double(static_cast<float>(bx) + dx[p]));
              ps[2] += reads_padding(g, double(by), double(bx));
              if (m && std::isfinite(m[p]))  // a non-finite mask (diverged weights) has no bin
                ps[3 + static_cast<size_t>(std::clamp(std::floor(m[p] * 5.f), 0.f, 4.f))] += 1;
            }
        }
  }
  fold_shards(part.data(), kSums, sum.data());
  if (bs.distributed()) {  // the largest length of any rank (a maximum: the same in any order)
    std::vector<double> all(static_cast<size_t>(bs.comm->size()));
    bs.comm->all_gather(&s.max_abs_offset, sizeof(double), all.data());
    s.max_abs_offset = *std::max_element(all.begin(), all.end());
  }
  if (g.modulated) s.mask_histogram.assign(sum.begin() + 3, sum.end());
  if (s.points > 0) {
    s.mean_abs_offset = sum[0] / double(s.points);
    s.outside_share = sum[1] / double(s.points);
    s.regular_outside_share = sum[2] / double(s.points);
    for (double& h : s.mask_histogram) h /= double(s.points);
  }
  return s;
}

json DeformStats::to_json() const {
  json j = {{"points", points},
            {"mean_abs_offset", mean_abs_offset},
            {"max_abs_offset", max_abs_offset},
            {"outside_share", outside_share},
            {"regular_outside_share", regular_outside_share}};
  if (!mask_histogram.empty()) j["mask_histogram"] = mask_histogram;
  return j;
}

namespace {

// Depth-first over containers; every other module maps its input shape through output_shape().
void walk(const Module& m, const std::string& prefix, Shape& shape, std::vector<DeformLayerRef>& out) {
  if (const auto* d = dynamic_cast<const DeformConv2d*>(&m)) out.push_back({prefix, d, shape});
  if (m.type() == "sequential") {
    for (const auto& [name, child] : m.children()) walk(*child, prefix.empty() ? name : prefix + "." + name, shape, out);
    return;
  }
  if (m.type() == "residual") {
    Shape body = shape;  // y = x + body(x): the body keeps the shape
    for (const auto& [name, child] : m.children()) walk(*child, prefix + "." + name, body, out);
    return;
  }
  shape = m.output_shape(shape);
}

}  // namespace

std::vector<DeformLayerRef> find_deform_layers(const Module& model, const Shape& in) {
  std::vector<DeformLayerRef> out;
  Shape s = in;
  walk(model, "", s, out);
  return out;
}

std::string log_deform_stats(const Module& model, const Shape& input, json& record) {
  const std::vector<DeformLayerRef> layers = find_deform_layers(model, input);
  if (layers.empty()) return "";
  json arr = json::array();
  std::string line = "deform";
  for (const DeformLayerRef& r : layers) {
    const Tensor& off = r.layer->last_offset();
    if (!off.defined()) continue;
    const DeformGeometry g = deform_geometry(*r.layer, r.input);
    if (off.size(2) != g.H_out || off.size(3) != g.W_out) continue;  // the last forward was on another size
    const DeformStats s = deform_stats(g, off, r.layer->last_mask());
    json j = s.to_json();
    j["layer"] = r.name;
    arr.push_back(j);
    char buf[160];
    std::snprintf(buf, sizeof buf, " [%s] |offset| %.3f px, padding %.1f%% (grid %.1f%%)", r.name.c_str(),
                  s.mean_abs_offset, 100 * s.outside_share, 100 * s.regular_outside_share);
    line += buf;
    if (!s.mask_histogram.empty()) {
      line += ", mask";
      for (double h : s.mask_histogram) {
        std::snprintf(buf, sizeof buf, " %.0f", 100 * h);
        line += buf;
      }
      line += " %";
    }
  }
  if (arr.empty()) return "";
  record["deform"] = arr;
  return line;
}

}  // namespace convlab

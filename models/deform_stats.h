// models/deform_stats.h: looking inside trained deformable convolutions.
//  - The sampling points of a DeformConv2d (layers/family_layers.h), computed exactly as core/deform_conv2d
//    reads them: for output pixel (oh, ow), tap t = kh*kW + kw and offset group og,
//        y = float(oh*sH - pH + kh*dH) + offset[n, og*2T + 2t,     oh, ow]    (the integer part first,
//        x = float(ow*sW - pW + kw*dW) + offset[n, og*2T + 2t + 1, oh, ow]     then + offset: torchvision)
//    in the coordinates of the layer's input (pixel centres at 0, 1, ...), with mask[n, og*T + t, oh, ow]
//    (v2) weighting the sample. A point reads zero padding when any of its bilinear neighbours with a
//    non-zero weight lies outside the input: exactly when y < 0, y > H-1, x < 0 or x > W-1.
//  - Offset statistics: mean offset length, share of points reading padding
//    (and the same share for the regular grid, i.e. zero offsets, for comparison), mask histogram (v2);
//    logged by `convlab train` (metrics.jsonl "deform") from the offsets each layer computed in its last
//    forward: no extra forward pass.
//  `convlab deform-viz` draws the sampling points of chosen output pixels over an image.
#pragma once
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/ops.h"
#include "layers/family_layers.h"
#include "layers/module.h"

namespace convlab {

// One DeformConv2d applied to an input of H x W.
struct DeformGeometry {
  int64_t H = 0, W = 0, H_out = 0, W_out = 0;
  Pair kernel{3, 3}, stride{1, 1}, padding{0, 0}, dilation{1, 1};
  int64_t offset_groups = 1;
  bool modulated = false;
  int64_t taps() const { return kernel[0] * kernel[1]; }
};
// The layer's hyper-parameters (read from its offset predictor, which shares kernel/stride/padding/dilation)
// and the sizes for input shape `in` [N, C, H, W].
DeformGeometry deform_geometry(const DeformConv2d& layer, const Shape& in);

struct SamplePoint {
  int64_t og = 0, tap = 0;
  double regular_y = 0, regular_x = 0;  // base grid + dilation (offset 0)
  double dy = 0, dx = 0;                // the learned offset
  double y = 0, x = 0;                  // where the layer samples (float arithmetic, as the kernel)
  double mask = 1;                      // v2: sigmoid of the mask predictor; v1: 1
};
// Every (og, tap) point of output pixel (oh, ow) of image n. offset [N, 2*OG*T, H_out, W_out]; mask
// [N, OG*T, H_out, W_out] or undefined (v1). Throws convlab::Error on a shape misfit or a pixel outside.
std::vector<SamplePoint> deform_sample_points(const DeformGeometry& g, const Tensor& offset, const Tensor& mask,
                                              int64_t n, int64_t oh, int64_t ow);
bool reads_padding(const DeformGeometry& g, double y, double x);

struct DeformStats {
  int64_t points = 0;                 // N * OG * T * H_out * W_out sampling points
  double mean_abs_offset = 0;         // mean of sqrt(dy^2 + dx^2) over the points, input pixels
  double max_abs_offset = 0;
  double outside_share = 0;           // points reading zero padding (y < 0, y > H-1, x < 0 or x > W-1)
  double regular_outside_share = 0;   // the same for the regular grid (all offsets 0): the padding baseline
  std::vector<double> mask_histogram; // v2: share of mask values in [0, .2), [.2, .4), ... [.8, 1]; v1 empty
  nlohmann::json to_json() const;
};
DeformStats deform_stats(const DeformGeometry& g, const Tensor& offset, const Tensor& mask);

// The deformable layers of a model: every DeformConv2d, nested blocks included, with its state-dict prefix
// ("3" for the fourth top-level layer, "2.body.1" inside a residual) and its input shape for model input `in`.
struct DeformLayerRef {
  std::string name;
  const DeformConv2d* layer = nullptr;
  Shape input;
};
std::vector<DeformLayerRef> find_deform_layers(const Module& model, const Shape& in);

// Training hook (models/train/segmentation.cpp): adds record["deform"] = [{layer, stats...}] for every deformable
// layer that has run a forward on a batch of shape `input`, from the offsets of that forward; returns a
// short log line ("" when the model has no deformable layer).
std::string log_deform_stats(const Module& model, const Shape& input, nlohmann::json& record);

}  // namespace convlab

// core/upsample.h: torch.nn.functional.interpolate for 4-D inputs, modes "nearest" and "bilinear"
// (align_corners false or true), by scale factor or explicit output size, with backward.
// Semantics are PyTorch 1.13's to the index, including its traps (see core/upsample.cpp):
//   - with a scale factor, H_out = trunc(H * scale) and the source ratio is 1/scale (not H/H_out), as
//     F.interpolate does when recompute_scale_factor is not set;
//   - nearest: src = min(floor(dst * ratio), in - 1) in float32 (forward and backward; PyTorch's own
//     backward special-cases out == in and out == 2 * in, see core/upsample.cpp);
//   - bilinear, align_corners=false: src = max(0, (dst + 0.5) * ratio - 0.5); align_corners=true:
//     src = dst * (in - 1) / (out - 1) (the scale factor, if given, only sets the output size);
//     out == in is an exact copy.
// Limits: 4-D [N, C, H, W] only; no recompute_scale_factor, antialias, bicubic, area or nearest-exact.
#pragma once
#include <array>
#include <optional>
#include <string>

#include "core/conv.h"

namespace convlab {

enum class UpsampleMode { nearest, bilinear };

// "nearest" | "bilinear"; throws convlab::Error naming the accepted modes otherwise.
UpsampleMode upsample_mode(const std::string& name);
const char* upsample_mode_name(UpsampleMode m);

struct UpsampleArgs {
  UpsampleMode mode = UpsampleMode::nearest;
  std::optional<Pair> size = std::nullopt;                    // output (H_out, W_out); exactly one of size and scale
  std::optional<std::array<double, 2>> scale = std::nullopt;  // scale_factor (h, w), each > 0
  bool align_corners = false;                  // bilinear only (true with nearest is an error, as in PyTorch)
};

// input [N, C, H, W] -> output [N, C, H_out, W_out].
struct UpsampleDims {
  int64_t N = 0, C = 0, H = 0, W = 0, H_out = 0, W_out = 0;
  UpsampleMode mode = UpsampleMode::nearest;
  bool align_corners = false;
  double scale_h = 0, scale_w = 0;  // the given scale factors; 0 when the output size was given
  int64_t planes() const { return N * C; }
};

// Checks the arguments against input [N, C, H, W] (naming `op`) and computes the output size.
UpsampleDims upsample_dims(const Shape& input, const UpsampleArgs& a, const char* op = "upsample");

// ---- raw kernels: x [N, C, H, W], y / dy [N, C, H_out, W_out]; forward overwrites y, backward
// ACCUMULATES into dx. Parallel over the N*C planes, sequential inside one: thread-count independent.
void upsample_nearest_forward(const float* x, const UpsampleDims& d, float* y);
void upsample_nearest_backward(const float* dy, const UpsampleDims& d, float* dx);
void upsample_bilinear_forward(const float* x, const UpsampleDims& d, float* y);
void upsample_bilinear_backward(const float* dy, const UpsampleDims& d, float* dx);

// ---- differentiable op ----
// torch.nn.functional.interpolate(x, size | scale_factor, mode, align_corners). x [N, C, H, W].
Tensor upsample(const Tensor& x, const UpsampleArgs& a);

}  // namespace convlab

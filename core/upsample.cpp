// core/upsample.cpp: nearest and bilinear upsampling (torch.nn.functional.interpolate), forward and backward.
//
// Both modes are separable: every output row oh reads input rows chosen by a per-axis table, and every
// output column ow input columns chosen by another. The tables are built once per call (O(H_out + W_out))
// with PyTorch 1.13's float32 arithmetic, because which input pixel a border output picks depends on it:
//   ratio = 1/scale when a scale factor was given, else in/out (float division)       [align_corners=false]
//   ratio = (in-1)/(out-1), or 0 when out == 1                                          [align_corners=true]
// Nearest: src = min(floor(float(dst) * ratio), in-1), always. Trap: PyTorch 1.13 CPU also has a helper
//   (nearest_idx) that copies when out == in and takes dst/2 when out == 2*in; its forward uses it only for
//   channels-last-contiguous inputs (C == 1, or H == W == 1), its backward always. With a scale factor such
//   as 1.1 on 4 pixels (out 4) or 2.1 on 4 (out 8) PyTorch's backward is then not the gradient of its NCHW
//   forward. convlab uses the formula above in both directions (the forward of NCHW PyTorch, and its adjoint).
// Bilinear: src = float((double)ratio * (dst + 0.5) - 0.5) clamped at 0 (align_corners=false) or
//   src = ratio * dst (true); i0 = trunc(src), i1 = i0 + 1 unless i0 is the last pixel, l1 = src - i0,
//   l0 = 1 - l1; y = l0h * (l0w x[i0h,i0w] + l1w x[i0h,i1w]) + l1h * (l0w x[i1h,i0w] + l1w x[i1h,i1w]).
//   out == in is an exact copy (PyTorch special case) even when a scale factor was given.
// Backward: the adjoint, scattering dy through the same taps and weights (dx += l * dy).
#include "core/upsample.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "core/error.h"
#include "core/ops.h"

namespace convlab {
namespace {

// PyTorch's compute_scales_value<float>: 1/scale when a scale factor was given, else in/out.
float ratio_of(int64_t in, int64_t out, double scale) {
  return scale > 0 ? static_cast<float>(1.0 / scale) : static_cast<float>(in) / static_cast<float>(out);
}

std::vector<int64_t> nearest_table(int64_t in, int64_t out, double scale) {
  std::vector<int64_t> t(out);
  const float ratio = ratio_of(in, out, scale);
  for (int64_t o = 0; o < out; ++o)
    t[o] = std::min(static_cast<int64_t>(std::floor(static_cast<float>(o) * ratio)), in - 1);
  return t;
}

struct LinearTap {
  int64_t i0, i1;  // the two source pixels (equal at the last pixel)
  float l0, l1;    // their weights, l0 + l1 = 1
};

std::vector<LinearTap> linear_table(int64_t in, int64_t out, bool align_corners, double scale) {
  std::vector<LinearTap> t(out);
  if (out == in) {
    for (int64_t o = 0; o < out; ++o) t[o] = {o, o, 1.f, 0.f};
    return t;
  }
  const float ratio = align_corners ? (out > 1 ? static_cast<float>(in - 1) / static_cast<float>(out - 1) : 0.f)
                                    : ratio_of(in, out, scale);
  for (int64_t o = 0; o < out; ++o) {
    float src;
    if (align_corners) {
      src = ratio * static_cast<float>(o);
    } else {  // computed in double and rounded once to float, as PyTorch's (dst + 0.5) promotes
      src = static_cast<float>(static_cast<double>(ratio) * (static_cast<double>(o) + 0.5) - 0.5);
      if (src < 0.f) src = 0.f;
    }
    const int64_t i0 = static_cast<int64_t>(src);  // src >= 0: truncation is floor
    const float l1 = std::min(std::max(src - static_cast<float>(i0), 0.f), 1.f);
    t[o] = {i0, i0 + (i0 < in - 1 ? 1 : 0), 1.f - l1, l1};
  }
  return t;
}

}  // namespace

UpsampleMode upsample_mode(const std::string& name) {
  if (name == "nearest") return UpsampleMode::nearest;
  if (name == "bilinear") return UpsampleMode::bilinear;
  CL_FAIL("upsample: unknown mode '" << name << "' (supported: nearest, bilinear)");
}

const char* upsample_mode_name(UpsampleMode m) { return m == UpsampleMode::nearest ? "nearest" : "bilinear"; }

UpsampleDims upsample_dims(const Shape& x, const UpsampleArgs& a, const char* op) {
  CL_CHECK(x.size() == 4, op << ": input must be 4-D [N, C, H, W], got input " << shape_str(x));
  for (int64_t v : x) CL_CHECK(v >= 1, op << ": input " << shape_str(x) << " has an empty dimension");
  CL_CHECK(a.size.has_value() != a.scale.has_value(),
           op << ": give exactly one of size and scale_factor (got "
              << (a.size ? "both" : "neither") << ") for input " << shape_str(x));
  CL_CHECK(!(a.align_corners && a.mode == UpsampleMode::nearest),
           op << ": align_corners can only be set with mode bilinear, got mode nearest");
  UpsampleDims d;
  d.N = x[0], d.C = x[1], d.H = x[2], d.W = x[3];
  d.mode = a.mode;
  d.align_corners = a.align_corners;
  if (a.size) {
    d.H_out = (*a.size)[0], d.W_out = (*a.size)[1];
    CL_CHECK(d.H_out >= 1 && d.W_out >= 1,
             op << ": size must be >= 1, got [" << d.H_out << "," << d.W_out << "] for input " << shape_str(x));
  } else {
    const auto [sh, sw] = *a.scale;
    CL_CHECK(std::isfinite(sh) && std::isfinite(sw) && sh > 0 && sw > 0,
             op << ": scale_factor must be > 0, got [" << sh << "," << sw << "]");
    const double h = static_cast<double>(d.H) * sh, w = static_cast<double>(d.W) * sw;
    CL_CHECK(h < 2147483648.0 && w < 2147483648.0,
             op << ": scale_factor [" << sh << "," << sw << "] gives a too large output for input " << shape_str(x));
    d.H_out = static_cast<int64_t>(h);  // PyTorch truncates the double product
    d.W_out = static_cast<int64_t>(w);
    CL_CHECK(d.H_out >= 1 && d.W_out >= 1, op << ": scale_factor [" << sh << "," << sw << "] gives output size "
                                              << d.H_out << "x" << d.W_out << " for input " << shape_str(x)
                                              << "; output sizes must be >= 1");
    d.scale_h = sh, d.scale_w = sw;
  }
  numel_of({d.N, d.C, d.H_out, d.W_out});  // before the index tables are sized by H_out and W_out
  return d;
}

void upsample_nearest_forward(const float* x, const UpsampleDims& d, float* y) {
  const std::vector<int64_t> th = nearest_table(d.H, d.H_out, d.scale_h);
  const std::vector<int64_t> tw = nearest_table(d.W, d.W_out, d.scale_w);
#pragma omp parallel for schedule(static) if (d.planes() * d.H_out * d.W_out > 32768)
  for (int64_t p = 0; p < d.planes(); ++p) {
    const float* xp = x + p * d.H * d.W;
    float* yp = y + p * d.H_out * d.W_out;
    for (int64_t oh = 0; oh < d.H_out; ++oh) {
      const float* xrow = xp + th[oh] * d.W;
      float* yrow = yp + oh * d.W_out;
      for (int64_t ow = 0; ow < d.W_out; ++ow) yrow[ow] = xrow[tw[ow]];
    }
  }
}

void upsample_nearest_backward(const float* dy, const UpsampleDims& d, float* dx) {
  const std::vector<int64_t> th = nearest_table(d.H, d.H_out, d.scale_h);
  const std::vector<int64_t> tw = nearest_table(d.W, d.W_out, d.scale_w);
#pragma omp parallel for schedule(static) if (d.planes() * d.H_out * d.W_out > 32768)
  for (int64_t p = 0; p < d.planes(); ++p) {
    float* dxp = dx + p * d.H * d.W;
    const float* dyp = dy + p * d.H_out * d.W_out;
    for (int64_t oh = 0; oh < d.H_out; ++oh) {  // each dx pixel sums its dy pixels in (oh, ow) order
      float* dxrow = dxp + th[oh] * d.W;
      const float* dyrow = dyp + oh * d.W_out;
      for (int64_t ow = 0; ow < d.W_out; ++ow) dxrow[tw[ow]] += dyrow[ow];
    }
  }
}

void upsample_bilinear_forward(const float* x, const UpsampleDims& d, float* y) {
  const std::vector<LinearTap> th = linear_table(d.H, d.H_out, d.align_corners, d.scale_h);
  const std::vector<LinearTap> tw = linear_table(d.W, d.W_out, d.align_corners, d.scale_w);
#pragma omp parallel for schedule(static) if (d.planes() * d.H_out * d.W_out > 32768)
  for (int64_t p = 0; p < d.planes(); ++p) {
    const float* xp = x + p * d.H * d.W;
    float* yp = y + p * d.H_out * d.W_out;
    for (int64_t oh = 0; oh < d.H_out; ++oh) {
      const LinearTap h = th[oh];
      const float* r0 = xp + h.i0 * d.W;
      const float* r1 = xp + h.i1 * d.W;
      float* yrow = yp + oh * d.W_out;
      for (int64_t ow = 0; ow < d.W_out; ++ow) {
        const LinearTap w = tw[ow];
        const float t0 = r0[w.i0] * w.l0 + r0[w.i1] * w.l1;
        const float t1 = r1[w.i0] * w.l0 + r1[w.i1] * w.l1;
        yrow[ow] = t0 * h.l0 + t1 * h.l1;
      }
    }
  }
}

void upsample_bilinear_backward(const float* dy, const UpsampleDims& d, float* dx) {
  const std::vector<LinearTap> th = linear_table(d.H, d.H_out, d.align_corners, d.scale_h);
  const std::vector<LinearTap> tw = linear_table(d.W, d.W_out, d.align_corners, d.scale_w);
#pragma omp parallel for schedule(static) if (d.planes() * d.H_out * d.W_out > 32768)
  for (int64_t p = 0; p < d.planes(); ++p) {
    float* dxp = dx + p * d.H * d.W;
    const float* dyp = dy + p * d.H_out * d.W_out;
    for (int64_t oh = 0; oh < d.H_out; ++oh) {
      const LinearTap h = th[oh];
      float* r0 = dxp + h.i0 * d.W;
      float* r1 = dxp + h.i1 * d.W;
      const float* dyrow = dyp + oh * d.W_out;
      for (int64_t ow = 0; ow < d.W_out; ++ow) {
        const LinearTap w = tw[ow];
        const float g = dyrow[ow];
        r0[w.i0] += h.l0 * w.l0 * g;
        r0[w.i1] += h.l0 * w.l1 * g;
        r1[w.i0] += h.l1 * w.l0 * g;
        r1[w.i1] += h.l1 * w.l1 * g;
      }
    }
  }
}

Tensor upsample(const Tensor& x, const UpsampleArgs& a) {
  const UpsampleDims d = upsample_dims(x.shape(), a);
  Tensor y = Tensor::empty({d.N, d.C, d.H_out, d.W_out});  // [N, C, H_out, W_out]
  const bool nearest = d.mode == UpsampleMode::nearest;
  if (nearest) upsample_nearest_forward(x.data(), d, y.data());
  else upsample_bilinear_forward(x.data(), d, y.data());
  if (any_requires_grad({&x}))  // the backward reads no values: the node keeps x's gradient slot only
    record(y, nearest ? "upsample_nearest" : "upsample_bilinear", {x}, [sx = GradSlot(x), d, nearest](const Tensor& g) {
      if (!sx.requires_grad()) return;
      if (nearest) upsample_nearest_backward(g.data(), d, grad_buffer(sx));
      else upsample_bilinear_backward(g.data(), d, grad_buffer(sx));
    });
  return y;
}

}  // namespace convlab

// core/pool.cpp: max_pool2d, avg_pool2d and adaptive_avg_pool2d, forward and backward (PyTorch 1.13 CPU
// semantics, see core/pool.h for the output-size rule).
//
// max:  y = max over the window's taps inside the input (padding never wins: it is -inf, not 0).
//       dx[argmax] += dy, with argmax saved by the forward (so ties and NaNs route the gradient exactly
//       where PyTorch does: the first maximum in window order, the last NaN).
// avg:  the window [oh*s - p, oh*s - p + k) is first clipped to the padded input [-p, in + p) (this size is
//       the divisor with count_include_pad), then to the input [0, in) (the summed taps, and the divisor
//       without count_include_pad). dx[tap] += dy / divisor for every summed tap.
// adaptive avg: window [floor(i*in/out), ceil((i+1)*in/out)) per axis, y = sum / kh / kw (PyTorch's
//       two divisions), dx[tap] += dy / kh / kw.
// Every kernel runs one N*C plane per job and never writes outside its plane, so results do not depend on
// the thread count.
#include "core/pool.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <memory>
#include <vector>

#include "core/error.h"
#include "core/ops.h"

namespace convlab {
namespace {

constexpr int64_t kParallelMin = 32768;  // outputs below which a parallel region costs more than it saves

// Floor division for a possibly negative numerator (PyTorch's div_rtn), positive denominator.
int64_t floor_div(int64_t a, int64_t b) { return a >= 0 ? a / b : -((-a + b - 1) / b); }

// First tap start + j*step that is >= 0 (PyTorch: while (start < 0) start += step).
int64_t first_valid(int64_t start, int64_t step) { return start >= 0 ? start : start + (-start + step - 1) / step * step; }

PoolDims pool_dims(const Shape& x, Pair k, Pair s, Pair p, Pair dil, bool ceil_mode, const char* op) {
  CL_CHECK(x.size() == 4, op << ": input must be 4-D [N, C, H, W], got input " << shape_str(x));
  for (int64_t v : x) CL_CHECK(v >= 1, op << ": input " << shape_str(x) << " has an empty dimension");
  CL_CHECK(k[0] >= 1 && k[1] >= 1, op << ": kernel_size must be >= 1, got [" << k[0] << "," << k[1] << "]");
  CL_CHECK(s[0] >= 1 && s[1] >= 1, op << ": stride must be >= 1, got [" << s[0] << "," << s[1] << "]");
  CL_CHECK(p[0] >= 0 && p[1] >= 0, op << ": padding must be >= 0, got [" << p[0] << "," << p[1] << "]");
  CL_CHECK(dil[0] >= 1 && dil[1] >= 1, op << ": dilation must be >= 1, got [" << dil[0] << "," << dil[1] << "]");
  for (int ax = 0; ax < 2; ++ax)  // keeps the size formula inside int64 (as check_conv_args does)
    CL_CHECK(k[ax] <= kMaxConvArg && s[ax] <= kMaxConvArg && dil[ax] <= kMaxConvArg,
             op << ": kernel_size, stride and dilation must be at most " << kMaxConvArg << ", got kernel_size ["
                << k[0] << "," << k[1] << "], stride [" << s[0] << "," << s[1] << "], dilation [" << dil[0] << ","
                << dil[1] << "]");
  numel_of(x);
  CL_CHECK(p[0] <= k[0] / 2 && p[1] <= k[1] / 2,
           op << ": padding [" << p[0] << "," << p[1] << "] must be at most half of kernel_size [" << k[0] << ","
              << k[1] << "]");
  PoolDims d;
  d.N = x[0], d.C = x[1], d.H = x[2], d.W = x[3];
  d.kH = k[0], d.kW = k[1], d.sH = s[0], d.sW = s[1], d.pH = p[0], d.pW = p[1], d.dH = dil[0], d.dW = dil[1];
  d.H_out = pool_output_size(d.H, d.kH, d.sH, d.pH, d.dH, ceil_mode);
  d.W_out = pool_output_size(d.W, d.kW, d.sW, d.pW, d.dW, ceil_mode);
  CL_CHECK(d.H_out >= 1 && d.W_out >= 1,
           op << ": output size " << d.H_out << "x" << d.W_out << " is too small for input " << shape_str(x)
              << " (kernel_size [" << k[0] << "," << k[1] << "], stride [" << s[0] << "," << s[1] << "], padding ["
              << p[0] << "," << p[1] << "], dilation [" << dil[0] << "," << dil[1] << "])");
  numel_of({d.N, d.C, d.H_out, d.W_out});
  return d;
}

// Avg window of output o along one axis: summed taps [lo, hi) and the count_include_pad divisor part.
struct AvgSpan {
  int64_t lo, hi, padded;
};
inline AvgSpan avg_span(int64_t o, int64_t in, int64_t k, int64_t s, int64_t p) {
  const int64_t a = o * s - p;
  const int64_t b = std::min(a + k, in + p);
  return {std::max<int64_t>(a, 0), std::min(b, in), b - a};
}

// Adaptive window of output o: [floor(o*in/out), ceil((o+1)*in/out)) in exact integer arithmetic.
inline int64_t adaptive_start(int64_t o, int64_t out, int64_t in) { return (o / out) * in + ((o % out) * in) / out; }
inline int64_t adaptive_end(int64_t o, int64_t out, int64_t in) { return 1 + ((o + 1) * in - 1) / out; }

bool parallel(const PoolDims& d) { return d.planes() * d.H_out * d.W_out > kParallelMin; }

}  // namespace

int64_t pool_output_size(int64_t in, int64_t k, int64_t s, int64_t p, int64_t d, bool ceil_mode) {
  int64_t out = floor_div(in + 2 * p - d * (k - 1) - 1 + (ceil_mode ? s - 1 : 0), s) + 1;
  if (ceil_mode && (out - 1) * s >= in + p) --out;  // the last window must start inside input or left padding
  return out;
}

PoolDims max_pool2d_dims(const Shape& x, const MaxPool2dArgs& a, const char* op) {
  return pool_dims(x, a.kernel_size, a.stride.value_or(a.kernel_size), a.padding, a.dilation, a.ceil_mode, op);
}

PoolDims avg_pool2d_dims(const Shape& x, const AvgPool2dArgs& a, const char* op) {
  return pool_dims(x, a.kernel_size, a.stride.value_or(a.kernel_size), a.padding, {1, 1}, a.ceil_mode, op);
}

// ---------------------------------------------------------------------------------------------- max
void max_pool2d_forward(const float* x, const PoolDims& d, float* y, int64_t* argmax) {
#pragma omp parallel for schedule(static) if (parallel(d))
  for (int64_t p = 0; p < d.planes(); ++p) {
    const float* xp = x + p * d.H * d.W;
    const int64_t o0 = p * d.H_out * d.W_out;
    for (int64_t oh = 0; oh < d.H_out; ++oh) {
      const int64_t hs = oh * d.sH - d.pH;
      const int64_t h0 = first_valid(hs, d.dH), h1 = std::min(hs + (d.kH - 1) * d.dH + 1, d.H);
      for (int64_t ow = 0; ow < d.W_out; ++ow) {
        const int64_t ws = ow * d.sW - d.pW;
        const int64_t w0 = first_valid(ws, d.dW), w1 = std::min(ws + (d.kW - 1) * d.dW + 1, d.W);
        float best = -std::numeric_limits<float>::infinity();
        // PyTorch starts from the first valid tap, so an all -inf window still routes its gradient there.
        // A window with no valid tap at all (only reachable with dilation > input) gets -inf and no gradient.
        int64_t at = (h0 < h1 && w0 < w1) ? h0 * d.W + w0 : -1;
        for (int64_t ih = h0; ih < h1; ih += d.dH)
          for (int64_t iw = w0; iw < w1; iw += d.dW) {
            const float v = xp[ih * d.W + iw];
            if (v > best || std::isnan(v)) best = v, at = ih * d.W + iw;
          }
        y[o0 + oh * d.W_out + ow] = best;
        if (argmax) argmax[o0 + oh * d.W_out + ow] = at;
      }
    }
  }
}

void max_pool2d_backward(const float* dy, const int64_t* argmax, const PoolDims& d, float* dx) {
  const int64_t HWo = d.H_out * d.W_out;
#pragma omp parallel for schedule(static) if (parallel(d))
  for (int64_t p = 0; p < d.planes(); ++p) {
    float* dxp = dx + p * d.H * d.W;
    for (int64_t o = p * HWo; o < (p + 1) * HWo; ++o)
      if (argmax[o] >= 0) dxp[argmax[o]] += dy[o];
  }
}

// ---------------------------------------------------------------------------------------------- avg
void avg_pool2d_forward(const float* x, const PoolDims& d, bool count_include_pad, float* y) {
#pragma omp parallel for schedule(static) if (parallel(d))
  for (int64_t p = 0; p < d.planes(); ++p) {
    const float* xp = x + p * d.H * d.W;
    float* yp = y + p * d.H_out * d.W_out;
    for (int64_t oh = 0; oh < d.H_out; ++oh) {
      const AvgSpan h = avg_span(oh, d.H, d.kH, d.sH, d.pH);
      for (int64_t ow = 0; ow < d.W_out; ++ow) {
        const AvgSpan w = avg_span(ow, d.W, d.kW, d.sW, d.pW);
        if (h.lo >= h.hi || w.lo >= w.hi) {
          yp[oh * d.W_out + ow] = 0.f;
          continue;
        }
        float s = 0.f;
        for (int64_t ih = h.lo; ih < h.hi; ++ih)
          for (int64_t iw = w.lo; iw < w.hi; ++iw) s += xp[ih * d.W + iw];
        const int64_t div = count_include_pad ? h.padded * w.padded : (h.hi - h.lo) * (w.hi - w.lo);
        yp[oh * d.W_out + ow] = s / static_cast<float>(div);
      }
    }
  }
}

void avg_pool2d_backward(const float* dy, const PoolDims& d, bool count_include_pad, float* dx) {
#pragma omp parallel for schedule(static) if (parallel(d))
  for (int64_t p = 0; p < d.planes(); ++p) {
    float* dxp = dx + p * d.H * d.W;
    const float* dyp = dy + p * d.H_out * d.W_out;
    for (int64_t oh = 0; oh < d.H_out; ++oh) {
      const AvgSpan h = avg_span(oh, d.H, d.kH, d.sH, d.pH);
      for (int64_t ow = 0; ow < d.W_out; ++ow) {
        const AvgSpan w = avg_span(ow, d.W, d.kW, d.sW, d.pW);
        if (h.lo >= h.hi || w.lo >= w.hi) continue;
        const int64_t div = count_include_pad ? h.padded * w.padded : (h.hi - h.lo) * (w.hi - w.lo);
        const float g = dyp[oh * d.W_out + ow] / static_cast<float>(div);
        for (int64_t ih = h.lo; ih < h.hi; ++ih)
          for (int64_t iw = w.lo; iw < w.hi; ++iw) dxp[ih * d.W + iw] += g;
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------- adaptive
void adaptive_avg_pool2d_forward(const float* x, const PoolDims& d, float* y) {
#pragma omp parallel for schedule(static) if (parallel(d))
  for (int64_t p = 0; p < d.planes(); ++p) {
    const float* xp = x + p * d.H * d.W;
    float* yp = y + p * d.H_out * d.W_out;
    for (int64_t oh = 0; oh < d.H_out; ++oh) {
      const int64_t h0 = adaptive_start(oh, d.H_out, d.H), h1 = adaptive_end(oh, d.H_out, d.H);
      for (int64_t ow = 0; ow < d.W_out; ++ow) {
        const int64_t w0 = adaptive_start(ow, d.W_out, d.W), w1 = adaptive_end(ow, d.W_out, d.W);
        float s = 0.f;
        for (int64_t ih = h0; ih < h1; ++ih)
          for (int64_t iw = w0; iw < w1; ++iw) s += xp[ih * d.W + iw];
        yp[oh * d.W_out + ow] = s / static_cast<float>(h1 - h0) / static_cast<float>(w1 - w0);
      }
    }
  }
}

void adaptive_avg_pool2d_backward(const float* dy, const PoolDims& d, float* dx) {
#pragma omp parallel for schedule(static) if (parallel(d))
  for (int64_t p = 0; p < d.planes(); ++p) {
    float* dxp = dx + p * d.H * d.W;
    const float* dyp = dy + p * d.H_out * d.W_out;
    for (int64_t oh = 0; oh < d.H_out; ++oh) {
      const int64_t h0 = adaptive_start(oh, d.H_out, d.H), h1 = adaptive_end(oh, d.H_out, d.H);
      for (int64_t ow = 0; ow < d.W_out; ++ow) {
        const int64_t w0 = adaptive_start(ow, d.W_out, d.W), w1 = adaptive_end(ow, d.W_out, d.W);
        const float g = dyp[oh * d.W_out + ow] / static_cast<float>(h1 - h0) / static_cast<float>(w1 - w0);
        for (int64_t ih = h0; ih < h1; ++ih)
          for (int64_t iw = w0; iw < w1; ++iw) dxp[ih * d.W + iw] += g;
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------- ops
Tensor max_pool2d(const Tensor& x, const MaxPool2dArgs& a) {
  const PoolDims d = max_pool2d_dims(x.shape(), a);
  Tensor y = Tensor::empty({d.N, d.C, d.H_out, d.W_out});  // [N, C, H_out, W_out]
  // The argmax is only kept when a backward will need it.
  std::shared_ptr<std::vector<int64_t>> argmax;
  if (any_requires_grad({&x})) argmax = std::make_shared<std::vector<int64_t>>(y.numel());
  max_pool2d_forward(x.data(), d, y.data(), argmax ? argmax->data() : nullptr);
  if (argmax)
    record(y, "max_pool2d", {x}, [sx = GradSlot(x), d, argmax](const Tensor& g) {  // argmax, not x's values
      if (sx.requires_grad()) max_pool2d_backward(g.data(), argmax->data(), d, grad_buffer(sx));
    });
  return y;
}

Tensor avg_pool2d(const Tensor& x, const AvgPool2dArgs& a) {
  const PoolDims d = avg_pool2d_dims(x.shape(), a);
  Tensor y = Tensor::empty({d.N, d.C, d.H_out, d.W_out});  // [N, C, H_out, W_out]
  const bool cip = a.count_include_pad;
  avg_pool2d_forward(x.data(), d, cip, y.data());
  if (any_requires_grad({&x}))  // the backward reads no values: the node keeps x's gradient slot only
    record(y, "avg_pool2d", {x}, [sx = GradSlot(x), d, cip](const Tensor& g) {
      if (sx.requires_grad()) avg_pool2d_backward(g.data(), d, cip, grad_buffer(sx));
    });
  return y;
}

Tensor adaptive_avg_pool2d(const Tensor& x, Pair out) {
  const char* op = "adaptive_avg_pool2d";
  const Shape& s = x.shape();
  CL_CHECK(s.size() == 4, op << ": input must be 4-D [N, C, H, W], got input " << shape_str(s));
  for (int64_t v : s) CL_CHECK(v >= 1, op << ": input " << shape_str(s) << " has an empty dimension");
  CL_CHECK(out[0] >= 1 && out[1] >= 1,
           op << ": output_size must be >= 1, got [" << out[0] << "," << out[1] << "] for input " << shape_str(s));
  numel_of(s), numel_of({s[0], s[1], out[0], out[1]});  // sizes within the element limit: index math fits int64
  PoolDims d;
  d.N = s[0], d.C = s[1], d.H = s[2], d.W = s[3], d.H_out = out[0], d.W_out = out[1];
  Tensor y = Tensor::empty({d.N, d.C, d.H_out, d.W_out});  // [N, C, H_out, W_out]
  adaptive_avg_pool2d_forward(x.data(), d, y.data());
  if (any_requires_grad({&x}))
    record(y, "adaptive_avg_pool2d", {x}, [sx = GradSlot(x), d](const Tensor& g) {
      if (sx.requires_grad()) adaptive_avg_pool2d_backward(g.data(), d, grad_buffer(sx));
    });
  return y;
}

}  // namespace convlab

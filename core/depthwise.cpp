// core/depthwise.cpp: direct kernels for depthwise conv2d (groups == C_in, C_out = multiplier * C_in,
// weight [C_out, 1, kH, kW]); output channel co reads input channel co / multiplier.
// GEMMs with one input channel per group are the slow path everywhere, so each output row is built as a
// sum of shifted, scaled input rows: y[oh, ow] += w[kh, kw] * x[oh*s - p + kh*d, ow*s - p + kw*d], over
// the interval of ow where the input column is inside the image (the rest reads padding = 0).
#include <algorithm>

#include "core/conv.h"

namespace convlab {
namespace {

// Output columns whose input column ow*s - p + off lies in [0, W): [lo, hi).
inline void valid_cols(const ConvDims& d, int64_t off, int64_t& lo, int64_t& hi) {
  const int64_t a = d.pW - off;
  lo = a <= 0 ? 0 : (a + d.sW - 1) / d.sW;
  const int64_t b = d.W - 1 + d.pW - off;
  hi = b < 0 ? 0 : std::min(d.W_out, b / d.sW + 1);
  lo = std::min(lo, hi);
}

// sum_i a[i] * b[i*stride], eight independent partial sums in a fixed order (vectorisable, deterministic).
inline float dot(const float* a, const float* b, int64_t n, int64_t stride) {
  float s[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  int64_t i = 0;
  if (stride == 1) {
    for (; i + 8 <= n; i += 8)
      for (int l = 0; l < 8; ++l) s[l] += a[i + l] * b[i + l];
  }
  float tail = 0.f;
  for (; i < n; ++i) tail += a[i] * b[i * stride];
  return ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7])) + tail;
}

}  // namespace

bool is_depthwise(const ConvDims& d) { return d.G > 1 && d.G == d.C_in && d.C_out % d.C_in == 0; }

void depthwise_forward(const float* x, const float* w, const float* b, const ConvDims& d, float* y) {
  const int64_t mult = d.C_out / d.C_in, HWo = d.hw_out(), planes = d.N * d.C_out;
#pragma omp parallel for schedule(static)
  for (int64_t p = 0; p < planes; ++p) {
    const int64_t n = p / d.C_out, co = p % d.C_out, ci = co / mult;
    const float* xp = x + (n * d.C_in + ci) * d.H * d.W;
    const float* wp = w + co * d.kH * d.kW;
    float* yp = y + p * HWo;
    std::fill(yp, yp + HWo, b ? b[co] : 0.f);
    for (int64_t oh = 0; oh < d.H_out; ++oh) {
      float* yrow = yp + oh * d.W_out;
      for (int64_t kh = 0; kh < d.kH; ++kh) {
        const int64_t ih = oh * d.sH - d.pH + kh * d.dH;
        if (ih < 0 || ih >= d.H) continue;
        for (int64_t kw = 0; kw < d.kW; ++kw) {
          const int64_t off = kw * d.dW - d.pW;
          int64_t lo, hi;
          valid_cols(d, kw * d.dW, lo, hi);
          const float wv = wp[kh * d.kW + kw];
          const float* xrow = xp + ih * d.W + off;  // xrow[ow * s] is input column ow*s - p + kw*d
          if (d.sW == 1) {
            for (int64_t ow = lo; ow < hi; ++ow) yrow[ow] += wv * xrow[ow];
          } else {
            for (int64_t ow = lo; ow < hi; ++ow) yrow[ow] += wv * xrow[ow * d.sW];
          }
        }
      }
    }
  }
}

void depthwise_backward(const float* x, const float* w, const float* dy, const ConvDims& d, float* dx,
                        float* dw, float* db) {
  const int64_t mult = d.C_out / d.C_in, HWo = d.hw_out(), taps = d.kH * d.kW;
  if (db) bias_backward(dy, d.N, d.C_out, HWo, db);
  if (dx) {  // the adjoint of the forward: scatter each dy row back through every tap
    const int64_t planes = d.N * d.C_in;
#pragma omp parallel for schedule(static)
    for (int64_t p = 0; p < planes; ++p) {
      const int64_t n = p / d.C_in, ci = p % d.C_in;
      float* dxp = dx + p * d.H * d.W;
      for (int64_t co = ci * mult; co < (ci + 1) * mult; ++co) {
        const float* dyp = dy + (n * d.C_out + co) * HWo;
        const float* wp = w + co * taps;
        for (int64_t oh = 0; oh < d.H_out; ++oh) {
          const float* dyrow = dyp + oh * d.W_out;
          for (int64_t kh = 0; kh < d.kH; ++kh) {
            const int64_t ih = oh * d.sH - d.pH + kh * d.dH;
            if (ih < 0 || ih >= d.H) continue;
            for (int64_t kw = 0; kw < d.kW; ++kw) {
              int64_t lo, hi;
              valid_cols(d, kw * d.dW, lo, hi);
              const float wv = wp[kh * d.kW + kw];
              float* dxrow = dxp + ih * d.W + kw * d.dW - d.pW;
              if (d.sW == 1) {
                for (int64_t ow = lo; ow < hi; ++ow) dxrow[ow] += wv * dyrow[ow];
              } else {
                for (int64_t ow = lo; ow < hi; ++ow) dxrow[ow * d.sW] += wv * dyrow[ow];
              }
            }
          }
        }
      }
    }
  }
  if (dw) {  // dw[co, tap] += sum over n and output pixels, in a fixed order per co
#pragma omp parallel for schedule(static)
    for (int64_t co = 0; co < d.C_out; ++co) {
      const int64_t ci = co / mult;
      double acc[64] = {0};  // taps <= 64 handled here; larger kernels loop in blocks below
      for (int64_t t0 = 0; t0 < taps; t0 += 64) {
        const int64_t t1 = std::min(taps, t0 + 64);
        std::fill(acc, acc + 64, 0.0);
        for (int64_t n = 0; n < d.N; ++n) {
          const float* dyp = dy + (n * d.C_out + co) * HWo;
          const float* xp = x + (n * d.C_in + ci) * d.H * d.W;
          for (int64_t t = t0; t < t1; ++t) {
            const int64_t kh = t / d.kW, kw = t % d.kW;
            int64_t lo, hi;
            valid_cols(d, kw * d.dW, lo, hi);
            float s = 0.f;
            for (int64_t oh = 0; oh < d.H_out; ++oh) {
              const int64_t ih = oh * d.sH - d.pH + kh * d.dH;
              if (ih < 0 || ih >= d.H || hi <= lo) continue;
              const float* xrow = xp + ih * d.W + kw * d.dW - d.pW;
              s += dot(dyp + oh * d.W_out + lo, xrow + lo * d.sW, hi - lo, d.sW);
            }
            acc[t - t0] += s;
          }
        }
        for (int64_t t = t0; t < t1; ++t) dw[co * taps + t] += static_cast<float>(acc[t - t0]);
      }
    }
  }
}

}  // namespace convlab

// core/im2col.cpp: im2col / col2im with stride, padding and dilation.
// cols row r = (c, kh, kw) (row-major over the group's input channels and kernel taps), column = (oh, ow).
// For each row and output row, the valid output columns form one interval [ow_lo, ow_hi): outside it the
// tap reads padding. Computing the interval once per (kw) keeps the inner loop branch-free (a memcpy when
// the stride is 1).
#include <algorithm>
#include <cstring>

#include "core/conv.h"

namespace convlab {
namespace {

// Output columns ow whose input column iw = ow*s - p + kw*d lies in [0, W): [lo, hi).
inline void valid_range(int64_t W, int64_t W_out, int64_t s, int64_t p, int64_t off, int64_t& lo,
                        int64_t& hi) {
  // iw >= 0  <=> ow >= (p - off) / s, rounded up;  iw <= W - 1 <=> ow <= (W - 1 + p - off) / s, rounded down.
  const int64_t a = p - off;
  lo = a <= 0 ? 0 : (a + s - 1) / s;
  const int64_t b = W - 1 + p - off;
  hi = b < 0 ? 0 : std::min(W_out, b / s + 1);
  lo = std::min(lo, hi);
}

}  // namespace

void im2col(const float* x, const ConvDims& d, float* cols, int64_t ldc) {
  const int64_t C = d.cin_g(), HWo = ldc > 0 ? ldc : d.hw_out();
  for (int64_t c = 0; c < C; ++c) {
    const float* xc = x + c * d.H * d.W;
    for (int64_t kh = 0; kh < d.kH; ++kh) {
      for (int64_t kw = 0; kw < d.kW; ++kw) {
        float* row = cols + ((c * d.kH + kh) * d.kW + kw) * HWo;
        int64_t lo, hi;
        valid_range(d.W, d.W_out, d.sW, d.pW, kw * d.dW, lo, hi);
        for (int64_t oh = 0; oh < d.H_out; ++oh) {
          float* out = row + oh * d.W_out;
          const int64_t ih = oh * d.sH - d.pH + kh * d.dH;
          if (ih < 0 || ih >= d.H) {
            for (int64_t ow = 0; ow < d.W_out; ++ow) out[ow] = 0.f;
            continue;
          }
          const float* in = xc + ih * d.W - d.pW + kw * d.dW;  // in[ow*s] is input column iw
          // Plain loops rather than memset/memcpy calls: rows are often short (7-14 columns in a DCGAN).
          for (int64_t ow = 0; ow < lo; ++ow) out[ow] = 0.f;
          if (d.sW == 1) {
            for (int64_t ow = lo; ow < hi; ++ow) out[ow] = in[ow];
          } else {
            for (int64_t ow = lo; ow < hi; ++ow) out[ow] = in[ow * d.sW];
          }
          for (int64_t ow = hi; ow < d.W_out; ++ow) out[ow] = 0.f;
        }
      }
    }
  }
}

void col2im(const float* cols, const ConvDims& d, float* x, int64_t ldc) {
  const int64_t C = d.cin_g(), HWo = ldc > 0 ? ldc : d.hw_out();
  for (int64_t c = 0; c < C; ++c) {
    float* xc = x + c * d.H * d.W;
    for (int64_t kh = 0; kh < d.kH; ++kh) {
      for (int64_t kw = 0; kw < d.kW; ++kw) {
        const float* row = cols + ((c * d.kH + kh) * d.kW + kw) * HWo;
        int64_t lo, hi;
        valid_range(d.W, d.W_out, d.sW, d.pW, kw * d.dW, lo, hi);
        for (int64_t oh = 0; oh < d.H_out; ++oh) {
          const int64_t ih = oh * d.sH - d.pH + kh * d.dH;
          if (ih < 0 || ih >= d.H) continue;
          const float* src = row + oh * d.W_out;
          float* out = xc + ih * d.W - d.pW + kw * d.dW;
          if (d.sW == 1) {
            for (int64_t ow = lo; ow < hi; ++ow) out[ow] += src[ow];
          } else {
            for (int64_t ow = lo; ow < hi; ++ow) out[ow * d.sW] += src[ow];
          }
        }
      }
    }
  }
}

}  // namespace convlab

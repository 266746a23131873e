// tests/reference.h: slow direct-loop convolutions, written straight from the definitions, as the oracle
// for the fast kernels. Double accumulation; no im2col, no GEMM, no shortcuts.
#pragma once
#include "core/ops.h"

namespace convlab::reference {

// y[n, co, oh, ow] = b[co] + sum_{ci in group, kh, kw} w[co, ci, kh, kw] x[n, g*Cg + ci, oh*s - p + kh*d, ...]
inline Tensor conv2d(const Tensor& x, const Tensor& w, const Tensor& b, const Conv2dArgs& a) {
  const ConvDims d = conv2d_dims(x.shape(), w.shape(), b.defined() ? &b.shape() : nullptr, a);
  Tensor y = Tensor::zeros({d.N, d.C_out, d.H_out, d.W_out});
  const int64_t Cg = d.cin_g(), Mg = d.cout_g();
  for (int64_t n = 0; n < d.N; ++n)
    for (int64_t co = 0; co < d.C_out; ++co) {
      const int64_t g = co / Mg;
      for (int64_t oh = 0; oh < d.H_out; ++oh)
        for (int64_t ow = 0; ow < d.W_out; ++ow) {
          double s = b.defined() ? b.data()[co] : 0.0;
          for (int64_t ci = 0; ci < Cg; ++ci)
            for (int64_t kh = 0; kh < d.kH; ++kh)
              for (int64_t kw = 0; kw < d.kW; ++kw) {
                const int64_t ih = oh * d.sH - d.pH + kh * d.dH, iw = ow * d.sW - d.pW + kw * d.dW;
                if (ih < 0 || ih >= d.H || iw < 0 || iw >= d.W) continue;
                s += double(w.data()[((co * Cg + ci) * d.kH + kh) * d.kW + kw]) *
                     double(x.data()[((n * d.C_in + g * Cg + ci) * d.H + ih) * d.W + iw]);
              }
          y.data()[((n * d.C_out + co) * d.H_out + oh) * d.W_out + ow] = static_cast<float>(s);
        }
    }
  return y;
}

}  // namespace convlab::reference

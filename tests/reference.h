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

// Scatter form, straight from the definition of the transposed conv (input [N, C_in, H_in, W_in], weight
// [C_in, C_out/G, kH, kW]): for every input pixel and tap,
//   y[n, g*Cog + co, ih*s - p + kh*d, iw*s - p + kw*d] += x[n, ci, ih, iw] * w[ci, co, kh, kw]
// (targets outside the output are dropped; output_padding only enlarges the output), then + b[co].
inline Tensor conv_transpose2d(const Tensor& x, const Tensor& w, const Tensor& b, const ConvTranspose2dArgs& a) {
  const Shape& xs = x.shape();
  const Shape& ws = w.shape();
  const int64_t N = xs[0], Ci = xs[1], Hi = xs[2], Wi = xs[3], G = a.groups;
  const int64_t Cog = ws[1], kH = ws[2], kW = ws[3], Co = Cog * G, Cig = Ci / G;
  const int64_t Ho = (Hi - 1) * a.stride[0] - 2 * a.padding[0] + a.dilation[0] * (kH - 1) + a.output_padding[0] + 1;
  const int64_t Wo = (Wi - 1) * a.stride[1] - 2 * a.padding[1] + a.dilation[1] * (kW - 1) + a.output_padding[1] + 1;
  std::vector<double> acc(static_cast<size_t>(N * Co * Ho * Wo), 0.0);
  for (int64_t n = 0; n < N; ++n)
    for (int64_t ci = 0; ci < Ci; ++ci) {
      const int64_t g = ci / Cig;
      for (int64_t ih = 0; ih < Hi; ++ih)
        for (int64_t iw = 0; iw < Wi; ++iw) {
          const double xv = x.data()[((n * Ci + ci) * Hi + ih) * Wi + iw];
          for (int64_t co = 0; co < Cog; ++co)
            for (int64_t kh = 0; kh < kH; ++kh)
              for (int64_t kw = 0; kw < kW; ++kw) {
                const int64_t oh = ih * a.stride[0] - a.padding[0] + kh * a.dilation[0];
                const int64_t ow = iw * a.stride[1] - a.padding[1] + kw * a.dilation[1];
                if (oh < 0 || oh >= Ho || ow < 0 || ow >= Wo) continue;
                acc[((n * Co + g * Cog + co) * Ho + oh) * Wo + ow] +=
                    xv * double(w.data()[((ci * Cog + co) * kH + kh) * kW + kw]);
              }
        }
    }
  Tensor y = Tensor::empty({N, Co, Ho, Wo});
  for (int64_t i = 0; i < y.numel(); ++i) {
    const int64_t co = (i / (Ho * Wo)) % Co;
    y.data()[i] = static_cast<float>(acc[i] + (b.defined() ? double(b.data()[co]) : 0.0));
  }
  return y;
}

}  // namespace convlab::reference

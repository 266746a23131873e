// core/conv_transpose2d.h: transposed convolution (torch.nn.functional.conv_transpose2d), the adjoint of
// conv2d. Kernels are written in terms of the *corresponding conv2d*: the conv2d whose input has our
// output's shape and whose output has our input's shape, with the same weight, stride, padding, dilation
// and groups. conv_transpose2d(x) is then exactly that conv2d's input-gradient map applied to x.
#pragma once
#include "core/conv.h"

namespace convlab {

struct ConvTranspose2dArgs {
  Pair stride{1, 1};
  Pair padding{0, 0};
  Pair output_padding{0, 0};  // extra rows/columns at the bottom/right; < stride or < dilation per axis
  Pair dilation{1, 1};
  int64_t groups = 1;
};

// Checks input [N, C_in, H_in, W_in], weight [C_in, C_out/groups, kH, kW], bias [C_out] and the arguments;
// returns the dims of the corresponding conv2d: d.N = N, d.C_in = C_out, d.H x d.W = our output
// (H_out = (H_in-1)*s - 2p + d*(k-1) + output_padding + 1), d.C_out = C_in, d.H_out x d.W_out = H_in x W_in.
ConvDims conv_transpose2d_dims(const Shape& input, const Shape& weight, const Shape* bias,
                               const ConvTranspose2dArgs& a, const char* op = "conv_transpose2d");

// ---- raw kernels (core/conv_transpose2d.cpp); d as returned by conv_transpose2d_dims ----
// y [N, d.C_in, d.H, d.W] = conv_transpose(x [N, d.C_out, d.H_out, d.W_out], w) + b (b may be null).
// Overwrites y.
void conv_transpose2d_forward(const float* x, const float* w, const float* b, const ConvDims& d, float* y);
// Accumulates into whichever of dx (x's shape), dw [C_in, C_out/G, kH, kW], db [C_out] is non-null.
void conv_transpose2d_backward(const float* x, const float* w, const float* dy, const ConvDims& d, float* dx,
                               float* dw, float* db);

// ---- differentiable op ----
// torch.nn.functional.conv_transpose2d. x [N, C_in, H_in, W_in], w [C_in, C_out/groups, kH, kW],
// b [C_out] or undefined -> [N, C_out, H_out, W_out].
Tensor conv_transpose2d(const Tensor& x, const Tensor& w, const Tensor& b, const ConvTranspose2dArgs& a = {});

}  // namespace convlab

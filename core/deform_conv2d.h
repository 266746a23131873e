// core/deform_conv2d.h: deformable convolution v1 and v2 (torchvision.ops.deform_conv2d semantics).
//
//   y[n, co, oh, ow] = b[co] + sum_{ci in group(co), kh, kw} w[co, ci, kh, kw] *
//                      m[n, og, t, oh, ow] * bilinear(x[n, ci], oh*sH - pH + kh*dH + dy[n, og, t, oh, ow],
//                                                               ow*sW - pW + kw*dW + dx[n, og, t, oh, ow])
// with t = kh*kW + kw (taps row-major), og = ci / (C_in / offset_groups), m = 1 for v1 (no mask).
// Shapes: x [N, C_in, H, W], w [C_out, C_in/G, kH, kW], offset [N, 2*OG*kH*kW, H_out, W_out] holding
// (dy, dx) pairs per tap, mask [N, OG*kH*kW, H_out, W_out], b [C_out]; H_out/W_out as conv2d.
// G is C_in / w.shape[1] and OG is offset.shape[1] / (2*kH*kW), both inferred as torchvision does.
// Implementation: core/deform_sampling.cpp (bilinear tables, deformable im2col / col2im, coordinate
// gradients) and core/deform_conv2d.cpp (checks, GEMMs, threading, the autograd op).
#pragma once
#include <cstdint>
#include <optional>

#include "core/conv.h"

namespace convlab {

struct DeformConv2dArgs {
  Pair stride{1, 1};
  Pair padding{0, 0};
  Pair dilation{1, 1};
  std::optional<int64_t> groups;         // inferred from the weight; when given it must agree
  std::optional<int64_t> offset_groups;  // inferred from the offset; when given it must agree
};

struct DeformDims {
  ConvDims c;         // the conv part (G = weight groups, H_out/W_out as conv2d)
  int64_t OG = 1;     // offset groups
  bool mask = false;  // v2
  int64_t taps() const { return c.kH * c.kW; }
  int64_t cin_og() const { return c.C_in / OG; }  // input channels per offset group
  // The padded plane the sampler reads: one zero row/column on every side plus a spare zero row at the
  // bottom, so the four neighbours of any sample point are addressable without branches.
  int64_t Wp() const { return c.W + 2; }
  int64_t Hp() const { return c.H + 3; }
  int64_t plane() const { return Hp() * Wp(); }
  int64_t table_rows() const { return OG * taps(); }  // one row of H_out*W_out entries per (og, tap)
};

// Checks every shape (op name, argument and shapes in the message) and returns the dims. `offset` is
// required; `mask` and `bias` may be null.
DeformDims deform_conv2d_dims(const Shape& input, const Shape& weight, const Shape* offset, const Shape* mask,
                              const Shape* bias, const DeformConv2dArgs& a);

// ---- sampling kernels (core/deform_sampling.cpp), one image and one tile of output pixels at a time ----
// Channels-last buffers: xpT / dxT [Hp*Wp, C_in] (the zero-bordered plane); colsT / dcolsT [P, C_in*T] for a
// tile of P output pixels, the columns of weight group g at [g*K, (g+1)*K), K = C_in/G*T, ordered
// (tap, channel): colsT[i, g*K + t*Cg + cl] (the weight is permuted to [C_out, T, C_in/G] to match).
//
// Bilinear table of a tile: per (og, tap) row r = og*T + t and tile pixel i, the padded-plane pixel index of
// the top-left neighbour and the four neighbour weights (y0,x0) (y0,x1) (y1,x0) (y1,x1), already multiplied
// by the mask; entry r*ld + i.
struct DeformTable {
  int32_t* base = nullptr;                             // [OG*T, ld]
  float* w[4] = {nullptr, nullptr, nullptr, nullptr};  // [OG*T, ld] each
  int64_t ld = 0;                                      // tile length P
};
int64_t deform_table_floats(const DeformDims& d, int64_t P);  // size of the buffer deform_table_view carves
DeformTable deform_table_view(float* buf, const DeformDims& d, int64_t P);
// Rows [r0, r1) of the table of the tile of output pixels [p0, p1) of one image.
void deform_build_table(const float* offset_n, const float* mask_n, const DeformDims& d, int64_t r0, int64_t r1,
                        int64_t p0, int64_t p1, const DeformTable& tab);
// xpT rows [y0, y1) of the padded plane (0 <= y < Hp) from x_n [C_in, H, W], border zeros included.
void deform_pad_channels_last(const float* x_n, const DeformDims& d, int64_t y0, int64_t y1, float* xpT);
// dx_n [C_in, H, W] += the image part of dxT, image rows [y0, y1).
void deform_add_channels_last(const float* dxT, const DeformDims& d, int64_t y0, int64_t y1, float* dx_n);
// Tile pixels [i0, i1), every tap and channel:
//  colsT (may be null): WRITES the samples (deformable im2col);
//  S     (may be null): WRITES S[k][r*ld + i] = sum over the offset group's channels of dcols * value of
//                       neighbour k (needs dcolsT).
void deform_gather(const float* xpT, const DeformTable& tab, const DeformDims& d, int64_t i0, int64_t i1,
                   float* colsT, const float* dcolsT, float* const* S);
// Deformable col2im of the first n tile pixels for channels [c0, c1): ACCUMULATES dcols scattered through
// the bilinear weights into dxT. Each element receives its terms in the same order whatever the channel range.
void deform_scatter(const DeformTable& tab, const DeformDims& d, int64_t n, int64_t c0, int64_t c1,
                    const float* dcolsT, float* dxT);
// ACCUMULATES grad_offset / grad_mask (either may be null) of one image, rows [r0, r1), output pixels [p0, p1),
// from the S of the tile starting at p0 (row stride ld).
void deform_coord_grads(const float* offset_n, const float* mask_n, const float* const* S, int64_t ld,
                        const DeformDims& d, int64_t r0, int64_t r1, int64_t p0, int64_t p1, float* doffset_n,
                        float* dmask_n);

// ---- whole-op kernels (core/deform_conv2d.cpp) ----
// y [N, C_out, H_out, W_out] = deform_conv2d(...), overwritten. mask and b may be null.
void deform_conv2d_forward(const float* x, const float* offset, const float* mask, const float* w, const float* b,
                           const DeformDims& d, float* y);
// Accumulates into whichever of dx, doffset, dmask, dw, db is non-null (shapes of x, offset, mask, w, b).
void deform_conv2d_backward(const float* x, const float* offset, const float* mask, const float* w, const float* dy,
                            const DeformDims& d, float* dx, float* doffset, float* dmask, float* dw, float* db);

// ---- the differentiable op ----
// torchvision.ops.deform_conv2d(input, offset, weight, bias, stride, padding, dilation, mask).
// bias and mask may be undefined tensors.
Tensor deform_conv2d(const Tensor& input, const Tensor& offset, const Tensor& weight, const Tensor& bias,
                     const Tensor& mask, const DeformConv2dArgs& a = {});

}  // namespace convlab

// core/conv2d_short.h: conv2d's GEMMs for output rows shorter than a vector, with the pixels as the GEMM's rows
// (core/conv2d_short.cpp; internal to core/conv2d.cpp). Each function is one job of conv2d.cpp's loops: images
// n0..n0+nn-1 (a block, side by side) of group g, single-threaded, with the bits of the im2col + GEMM path.
#pragma once
#include <cstdint>

#include "core/conv.h"

namespace convlab {

// The turned-around GEMMs apply: output rows shorter than 16, not a 1x1 stride-1 conv, and a bordered block of
// nn images small enough to copy; each pass adds its own conditions (where it measured faster).
bool short_rows_apply(const ConvDims& d, int64_t nn);
// Tests only: off, every conv takes the im2col + GEMM path (the reference these paths are compared with).
void set_short_rows_gemm(bool on);
bool short_rows_forward_applies(const ConvDims& d, int64_t nn);
bool short_rows_dw_applies(const ConvDims& d, int64_t nn);
bool short_rows_dx_applies(const ConvDims& d, int64_t nn);

// y[n0.., group g] = conv (no bias); accumulate: y += conv. The nn images may be part of a block of `block`
// images (the im2col path's GEMM, whose K blocking and accumulation they reproduce).
void short_rows_forward(const float* x, const float* w, const ConvDims& d, int64_t n0, int64_t nn, int64_t g,
                        float* y, bool accumulate, int64_t block);
// dwt [K, C_out/G] (the transpose of group g's dW, its rows in short_rows_dw_row's order) = beta * dwt +
// cols(x) x dyg^T, dyg [C_out/G, nn*HWo].
int64_t short_rows_dw_row(const ConvDims& d, int64_t k);  // the row of dwt holding cols row k = (c, kh, kw)
void short_rows_weight_grad(const float* x, const float* dyg, const ConvDims& d, int64_t n0, int64_t nn, int64_t g,
                            float beta, float* dwt);
// dx[n0.., group g] += col2im(W_g^T dy), dy [N, C_out, HWo] read in place, wtap: W tap-major (short_rows_tap_major).
void short_rows_input_grad(const float* dy, const float* wtap, const ConvDims& d, int64_t n0, int64_t nn, int64_t g,
                           float* dx);
// wtap [C_out, kH*kW, C_in/G] <- w [C_out, C_in/G, kH, kW]
void short_rows_tap_major(const float* w, const ConvDims& d, float* wtap);

}  // namespace convlab

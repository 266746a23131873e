// core/pool.h: 2-D pooling with PyTorch 1.13 semantics: max_pool2d (with dilation and ceil_mode; backward
// through the saved argmax), avg_pool2d (ceil_mode, count_include_pad) and adaptive_avg_pool2d.
//
// Output size (max and avg; avg has d = 1), per axis:
//   out = floor((in + 2p - d(k-1) - 1 + (ceil_mode ? s-1 : 0)) / s) + 1,
//   and with ceil_mode, out -= 1 when the last window would start at or beyond in + p (in the right padding).
// Checks, as PyTorch: k, s, d >= 1, p >= 0, p <= k/2 (per axis, integer half), out >= 1.
// adaptive_avg_pool2d: output cell i of an axis averages input [floor(i*in/out), ceil((i+1)*in/out)).
// Limits: 4-D [N, C, H, W] only; no divisor_override, no return_indices.
#pragma once
#include <optional>

#include "core/conv.h"

namespace convlab {

struct MaxPool2dArgs {
  Pair kernel_size{1, 1};
  std::optional<Pair> stride = std::nullopt;  // default: kernel_size
  Pair padding{0, 0};
  Pair dilation{1, 1};
  bool ceil_mode = false;
};

struct AvgPool2dArgs {
  Pair kernel_size{1, 1};
  std::optional<Pair> stride = std::nullopt;  // default: kernel_size
  Pair padding{0, 0};
  bool ceil_mode = false;
  bool count_include_pad = true;  // divide by the window size clipped to the padded input, not to the input
};

// input [N, C, H, W] -> output [N, C, H_out, W_out]; window of output (oh, ow) starts at
// (oh*sH - pH, ow*sW - pW) and takes kH x kW taps spaced dH, dW apart.
struct PoolDims {
  int64_t N = 0, C = 0, H = 0, W = 0;
  int64_t kH = 1, kW = 1, sH = 1, sW = 1, pH = 0, pW = 0, dH = 1, dW = 1;
  int64_t H_out = 0, W_out = 0;
  int64_t planes() const { return N * C; }
};

// One axis of the output-size rule above.
int64_t pool_output_size(int64_t in, int64_t k, int64_t s, int64_t p, int64_t d, bool ceil_mode);

// Checks the arguments against input [N, C, H, W], naming `op`.
PoolDims max_pool2d_dims(const Shape& input, const MaxPool2dArgs& a, const char* op = "max_pool2d");
PoolDims avg_pool2d_dims(const Shape& input, const AvgPool2dArgs& a, const char* op = "avg_pool2d");

// ---- raw kernels: forward overwrites y; backward ACCUMULATES into dx. Parallel over the N*C planes. ----
// argmax [N, C, H_out, W_out] (may be null): flat index ih*W + iw of the maximum inside its plane; ties
// go to the first tap in row-major window order, a NaN wins (and propagates), as in PyTorch.
void max_pool2d_forward(const float* x, const PoolDims& d, float* y, int64_t* argmax);
void max_pool2d_backward(const float* dy, const int64_t* argmax, const PoolDims& d, float* dx);
void avg_pool2d_forward(const float* x, const PoolDims& d, bool count_include_pad, float* y);
void avg_pool2d_backward(const float* dy, const PoolDims& d, bool count_include_pad, float* dx);
// Adaptive: only N, C, H, W, H_out, W_out of d are used.
void adaptive_avg_pool2d_forward(const float* x, const PoolDims& d, float* y);
void adaptive_avg_pool2d_backward(const float* dy, const PoolDims& d, float* dx);

// ---- differentiable ops ----
Tensor max_pool2d(const Tensor& x, const MaxPool2dArgs& a);  // [N, C, H, W] -> [N, C, H_out, W_out]
Tensor avg_pool2d(const Tensor& x, const AvgPool2dArgs& a);
Tensor adaptive_avg_pool2d(const Tensor& x, Pair output_size);  // -> [N, C, output_size]

}  // namespace convlab

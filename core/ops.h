// core/ops.h: every differentiable operation of convlab, declared in one place.
//
// Shape notation used in comments throughout the project:
//   N batch, C channels (C_in, C_out), H/W spatial (H_out, W_out), k kernel (kH, kW), G groups,
//   [N, C, H, W] a tensor's shape, row-major (the last index is contiguous).
// Every op returns a new tensor (views are noted) and, when an input requires grad and grad mode is on,
// records its backward on the result. Backward closures accumulate (+=) into the inputs' gradients.
// Conv-family ops are declared in core/conv.h (and its siblings), included at the end.
#pragma once
#include <vector>

#include "core/tensor.h"

namespace convlab {

// ---- elementwise, with NumPy/PyTorch broadcasting ----
Tensor add(const Tensor& a, const Tensor& b);
Tensor sub(const Tensor& a, const Tensor& b);
Tensor mul(const Tensor& a, const Tensor& b);
Tensor div(const Tensor& a, const Tensor& b);
Tensor add_scalar(const Tensor& a, float s);
Tensor mul_scalar(const Tensor& a, float s);
Tensor neg(const Tensor& a);
Tensor exp(const Tensor& a);
Tensor log(const Tensor& a);
Tensor sqrt(const Tensor& a);
Tensor square(const Tensor& a);
Tensor relu(const Tensor& a);
Tensor leaky_relu(const Tensor& a, float negative_slope = 0.01f);
Tensor sigmoid(const Tensor& a);
Tensor tanh(const Tensor& a);
Shape broadcast_shape(const Shape& a, const Shape& b, const char* op);
// Sums `g` over the broadcast dimensions so that it has `shape` (the backward of broadcasting).
Tensor sum_to(const Tensor& g, const Shape& shape);

// ---- reductions ----
Tensor sum(const Tensor& a);  // [1]
Tensor mean(const Tensor& a);  // [1]
Tensor sum(const Tensor& a, std::vector<int64_t> axes, bool keepdim = false);
Tensor mean(const Tensor& a, std::vector<int64_t> axes, bool keepdim = false);

// ---- shape ----
Tensor reshape(const Tensor& a, Shape shape);  // view; one dimension may be -1
Tensor flatten(const Tensor& a, int64_t start_dim = 1);  // view: [N, ...] -> [N, prod(...)]
Tensor permute(const Tensor& a, const std::vector<int64_t>& dims);
Tensor concat(const std::vector<Tensor>& ts, int64_t dim);
Tensor slice(const Tensor& a, int64_t dim, int64_t start, int64_t end);  // [start, end) along dim

// ---- linear algebra ----
Tensor matmul(const Tensor& a, const Tensor& b);  // [M, K] x [K, N] -> [M, N]
Tensor linear(const Tensor& x, const Tensor& w, const Tensor& b);  // [N, in] x [out, in]^T + [out]

// ---- regularisation ----
class Rng;
// Inverted dropout: zeroes each element with probability p and scales the rest by 1/(1-p); identity when
// !training or p == 0. The mask is drawn from `rng` in element order (deterministic for a seed).
Tensor dropout(const Tensor& x, float p, bool training, Rng& rng);

}  // namespace convlab

#include "core/batch_norm.h"
#include "core/loss.h"
#include "core/optim.h"
#include "core/conv.h"
#include "core/deform_conv2d.h"
#include "core/separable.h"
#include "core/upsample.h"
#include "core/pool.h"
#include "core/conv_transpose2d.h"

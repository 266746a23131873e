// core/batch_norm.h: batch normalisation over (N, H, W) per channel, torch.nn.functional.batch_norm.
#pragma once
#include "core/tensor.h"

namespace convlab {

// x [N, C, H, W] (or [N, C]); weight/bias [C] (may be undefined: affine=false).
// training: normalise with the batch statistics (biased variance) and update running_mean/running_var in
// place with `momentum` (PyTorch's convention: new = (1 - momentum) * old + momentum * batch, running_var
// from the unbiased variance). Eval: normalise with the running statistics.
Tensor batch_norm2d(const Tensor& x, const Tensor& weight, const Tensor& bias, Tensor running_mean,
                    Tensor running_var, bool training, float momentum = 0.1f, float eps = 1e-5f);

}  // namespace convlab

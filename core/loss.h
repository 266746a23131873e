// core/loss.h: losses, each a scalar [1] with its backward.
#pragma once
#include <cstdint>
#include <vector>

#include "core/tensor.h"

namespace convlab {

// Per-pixel softmax cross-entropy, torch.nn.functional.cross_entropy: logits [N, C, H, W] (or [N, C]),
// target class ids [N*H*W] (row-major N, H, W). Optional class weights [C]; pixels whose target equals
// ignore_index count for nothing. Mean over the (weighted) counted pixels, as PyTorch's reduction='mean'.
Tensor cross_entropy(const Tensor& logits, const std::vector<int32_t>& target,
                     const std::vector<float>& class_weights = {}, int32_t ignore_index = -100);

// torch.nn.functional.binary_cross_entropy_with_logits, mean over elements (numerically stable form).
Tensor bce_with_logits(const Tensor& logits, const Tensor& target);

// torch.nn.functional.mse_loss, mean over elements.
Tensor mse_loss(const Tensor& input, const Tensor& target);

}  // namespace convlab

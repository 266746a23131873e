// core/separable.h: depthwise separable convolution (MobileNet / Xception style), a composition of two
// conv2d calls and no kernel of its own:
//   mid = conv2d(x, depthwise_weight, depthwise_bias, stride, padding, dilation, groups = C_in)
//   y   = conv2d(mid, pointwise_weight, pointwise_bias)            (1x1, stride 1, no padding)
// Shapes: x [N, C_in, H, W], depthwise_weight [C_in*multiplier, 1, kH, kW], depthwise_bias [C_in*multiplier],
// mid [N, C_in*multiplier, H_out, W_out], pointwise_weight [C_out, C_in*multiplier, 1, 1],
// pointwise_bias [C_out], y [N, C_out, H_out, W_out].
// The backward is the two conv2d backwards chained by the tape (mid is an ordinary intermediate tensor).
#pragma once
#include "core/conv.h"

namespace convlab {

// args.stride / padding / dilation apply to the depthwise step; args.groups must be 1 (the depthwise
// groups are implied by the input's channel count). Either bias may be undefined.
Tensor depthwise_separable_conv2d(const Tensor& x, const Tensor& depthwise_weight, const Tensor& depthwise_bias,
                                  const Tensor& pointwise_weight, const Tensor& pointwise_bias,
                                  const Conv2dArgs& args = {});

}  // namespace convlab

// models/op_case/resample_args.h: the hyper-parameter fields of the `upsample`, `max_pool2d` and `avg_pool2d`
// op cases, read from an OpCall's raw JSON fields with type checks that name the field.
//   upsample:   mode ("nearest" | "bilinear", default "nearest"), size (int or [h, w]),
//               scale_factor (number or [h, w] of numbers), align_corners (true/false, bilinear only).
//   max_pool2d: kernel_size (required), stride (default kernel_size), padding, dilation, ceil_mode.
//   avg_pool2d: kernel_size (required), stride (default kernel_size), padding, ceil_mode, count_include_pad.
#pragma once
#include "core/pool.h"
#include "core/upsample.h"
#include "models/op_case/op_case.h"

namespace convlab {

UpsampleArgs upsample_args(const OpCall& c);
MaxPool2dArgs max_pool2d_args(const OpCall& c);
AvgPool2dArgs avg_pool2d_args(const OpCall& c);

}  // namespace convlab

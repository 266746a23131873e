// models/op_case/op_registry.cpp: the ops `convlab op` runs, with the fields and tensors each takes.
// Adding an op: write it in core/ (forward + backward side by side), then add one entry here.
#include "core/error.h"
#include "models/op_case/op_case.h"
#include "models/op_case/resample_args.h"

namespace convlab {

const std::vector<OpSpec>& op_specs() {
  static const std::vector<OpSpec> specs = {
      {"conv2d", {"stride", "padding", "dilation", "groups"}, {"input", "weight"}, {"bias"},
       [](const OpCall& c) { return conv2d(c.get("input"), c.get("weight"), c.get("bias"), c.conv_args()); }},
      {"conv_transpose2d", {"stride", "padding", "output_padding", "dilation", "groups"}, {"input", "weight"}, {"bias"},
       [](const OpCall& c) {
         ConvTranspose2dArgs a{c.pair("stride", {1, 1}), c.pair("padding", {0, 0}), c.pair("output_padding", {0, 0}),
                               c.pair("dilation", {1, 1}), c.integer("groups", 1)};
         return conv_transpose2d(c.get("input"), c.get("weight"), c.get("bias"), a);
       }},
      {"deform_conv2d", {"stride", "padding", "dilation", "groups", "offset_groups"}, {"input", "weight", "offset"},
       {"mask", "bias"},
       [](const OpCall& c) {
         DeformConv2dArgs a;
         const Conv2dArgs ca = c.conv_args();
         a.stride = ca.stride, a.padding = ca.padding, a.dilation = ca.dilation;
         if (c.fields.contains("groups")) a.groups = c.integer("groups", 1);
         if (c.fields.contains("offset_groups")) a.offset_groups = c.integer("offset_groups", 1);
         return deform_conv2d(c.get("input"), c.get("offset"), c.get("weight"), c.get("bias"), c.get("mask"), a);
       }},
      {"depthwise_separable_conv2d", {"stride", "padding", "dilation"}, {"input", "depthwise_weight", "pointwise_weight"},
       {"depthwise_bias", "pointwise_bias"},
       [](const OpCall& c) {
         return depthwise_separable_conv2d(c.get("input"), c.get("depthwise_weight"), c.get("depthwise_bias"),
                                           c.get("pointwise_weight"), c.get("pointwise_bias"), c.conv_args());
       }},
      {"upsample", {"mode", "size", "scale_factor", "align_corners"}, {"input"}, {},
       [](const OpCall& c) { return upsample(c.get("input"), upsample_args(c)); }},
      {"max_pool2d", {"kernel_size", "stride", "padding", "dilation", "ceil_mode"}, {"input"}, {},
       [](const OpCall& c) { return max_pool2d(c.get("input"), max_pool2d_args(c)); }},
      {"avg_pool2d", {"kernel_size", "stride", "padding", "ceil_mode", "count_include_pad"}, {"input"}, {},
       [](const OpCall& c) { return avg_pool2d(c.get("input"), avg_pool2d_args(c)); }},
  };
  return specs;
}

}  // namespace convlab

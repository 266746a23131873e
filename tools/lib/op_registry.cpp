// tools/lib/op_registry.cpp: the ops `convlab op` runs, with the fields and tensors each takes.
// Adding an op: write it in core/ (forward + backward side by side), then add one entry here.
#include "core/error.h"
#include "tools/lib/op_case.h"

namespace convlab {

const std::vector<OpSpec>& op_specs() {
  static const std::vector<OpSpec> specs = {
      {"conv2d", {"stride", "padding", "dilation", "groups"}, {"input", "weight"}, {"bias"},
       [](const OpCall& c) { return conv2d(c.get("input"), c.get("weight"), c.get("bias"), c.conv_args()); }},
  };
  return specs;
}

}  // namespace convlab

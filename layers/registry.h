// layers/registry.h: the one visible table mapping config type names to layer constructors.
// A factory reads its options (Options reports the JSON path), takes the input shape from the previous
// layer (in_channels is inferred from it, and checked when given) and draws its initial weights from rng.
#pragma once
#include <functional>
#include <string>
#include <vector>

#include "core/random.h"
#include "layers/module.h"
#include "layers/options.h"

namespace convlab {

using LayerFactory = std::function<ModulePtr(Options& o, const Shape& in, Rng& rng)>;

struct LayerType {
  std::string name;
  std::string summary;  // one line for docs and `--help`
  LayerFactory make;
};

const std::vector<LayerType>& layer_types();
const LayerType* find_layer_type(const std::string& name);

// in_channels: inferred from `in` (dim 1); when the config gives it, it must agree.
int64_t infer_in_channels(Options& o, const Shape& in);

}  // namespace convlab

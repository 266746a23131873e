// models/config.h: the config language.
//  - load_config(): reads a JSON file, resolves "extends" (a path relative to the file; the child's keys
//    override the parent's, objects merge recursively, lists are replaced), then applies --set overrides.
//  - apply_set(): one override "a.b[2].c=value"; value is parsed as JSON when it is valid JSON, else taken
//    as a string ("--set model.layers[3].dilation=5", "--set name=run2").
//  - build_layers(): a Sequential from a list of layer objects. Each object has a "type" from the layer
//    registry (layers/registry.cpp) and that layer's options; any entry may carry "repeat": N; the
//    container types "sequential" and "residual" take a nested "layers" list. in_channels flows from layer
//    to layer through the shape-only pass, so a network that does not fit is refused before training with
//    the layer's JSON path, type and both shapes.
#pragma once
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/random.h"
#include "layers/module.h"

namespace convlab {

constexpr int64_t kMaxRepeat = 1000;  // "repeat": copies of one layer entry

nlohmann::json load_config(const std::string& path, const std::vector<std::string>& sets = {});
void apply_set(nlohmann::json& config, const std::string& assignment);
// The config a convlab checkpoint stores in its "config" metadata, checked like a config file (JSON depth
// limit). `format` (e.g. "convlab-gan-generator") is required to match when not empty; `expected` names what
// the user should have given in the error message.
nlohmann::json checkpoint_config(const std::map<std::string, std::string>& metadata, const std::string& path,
                                 const std::string& format = "", const std::string& expected = "");

// config[key] when present (it must be an object), else an empty object.
const nlohmann::json& config_section(const nlohmann::json& config, const char* key);

// A run's name must be usable as one folder name under the runs directory.
void check_run_name(const std::string& name);
nlohmann::json merge_json(const nlohmann::json& base, const nlohmann::json& over);

// Builds the layers at `path` (e.g. "model.layers") for input shape `in` ([N, C, H, W]). With `record`, also
// lists every module built, in order (repeats expanded, a container before its layers), as
// {"path": "model.layers[3]", "type": "conv2d", "options": {each option in effect, defaults included}}.
std::shared_ptr<Sequential> build_layers(const nlohmann::json& layers, const Shape& in, Rng& rng,
                                         const std::string& path, nlohmann::json* record = nullptr);

// The first difference between two networks' build records that changes the network (layer types, kernel,
// stride, padding, dilation, groups, channels, bias, modes, ...), as one line naming the config's path:
// "model.layers[3].dilation: checkpoint has 2, config has 5"; "" when they build the same network, however
// their configs spell it (defaults written out or not, 2 or [2, 2]).
std::string network_difference(const nlohmann::json& checkpoint_record, const nlohmann::json& config_record);

// The layer summary `convlab train` prints: one row per layer (model.at(i)): index, type, output shape,
// parameters, and, when `layers` (the config's layer list the model was built from) is given, each conv's or
// pool's kernel, stride, padding and dilation ("3" or "3x5" for [h, w]) and the receptive field after it
// (receptive_field.h on the real sizes of `in`; a block shows "-" for the geometry and the rf after it; layers
// that do not change the rf, e.g. batch norm, leave those columns empty). A network the rf analysis cannot
// follow gets one line saying why instead.
std::string describe_model(const Sequential& model, const Shape& in, const nlohmann::json& layers = nullptr);

}  // namespace convlab

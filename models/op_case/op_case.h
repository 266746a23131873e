// models/op_case/op_case.h: the `convlab op` case format (docs/op-case.md): parse a case, run the op's
// forward and backward through convlab's autograd, and build the JSON result.
// Every malformed case throws convlab::Error with a one-line message naming the field and the shapes.
#pragma once
#include <functional>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/ops.h"

namespace convlab {

// One parsed call: the hyper-parameters (raw JSON) and the named input tensors.
struct OpCall {
  std::string op;
  nlohmann::json fields;               // hyper-parameter fields of the case, validated against the spec
  std::map<std::string, Tensor> tensors;  // inputs (requires_grad) without grad_output
  Tensor grad_output;                   // undefined: all ones

  bool has(const std::string& name) const { return tensors.count(name) > 0; }
  Tensor get(const std::string& name) const;  // undefined when absent
  Pair pair(const std::string& field, Pair dflt) const;         // [h, w] or a single integer
  int64_t integer(const std::string& field, int64_t dflt) const;
  Conv2dArgs conv_args() const;  // stride, padding, dilation, groups with PyTorch's defaults
};

struct OpSpec {
  std::string name;
  std::vector<std::string> fields;    // hyper-parameters the op takes
  std::vector<std::string> required;  // tensor names
  std::vector<std::string> optional;  // tensor names
  std::function<Tensor(const OpCall&)> run;  // the forward; records the backward
};

// The ops `convlab op` knows (models/op_case/op_registry.cpp).
const std::vector<OpSpec>& op_specs();
const OpSpec* find_op(const std::string& name);

// Parses a case from JSON text; throws convlab::Error naming the problem.
OpCall parse_case(const std::string& text);

struct OpResult {
  Tensor output;
  std::map<std::string, Tensor> grads;
  int repeat = 0;
  double forward_ms = 0, backward_ms = 0;
};

// Runs forward + backward once (and, with repeat > 0, times `repeat` more of each, medians).
OpResult run_case(const OpCall& call, int repeat = 0);

// The result JSON of the spec; `stats` prints {shape, sum, abs_sum, min, max} instead of data.
nlohmann::json result_json(const OpCall& call, const OpResult& r, bool stats);

// A tensor as {"shape", "data"} and back (used by goldens and tests too).
nlohmann::json tensor_json(const Tensor& t, bool stats = false);
Tensor tensor_from_json(const nlohmann::json& j, const std::string& path);

}  // namespace convlab

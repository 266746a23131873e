// models/op_case/op_case.cpp: parse, run and print op cases.
#include "models/op_case/op_case.h"

#include <algorithm>
#include <chrono>
#include <cmath>

#include "core/error.h"
#include "core/random.h"
#include "data/json.h"

namespace convlab {
namespace {

using nlohmann::json;

std::string brief(const json& v) { return json_brief(v, 40); }

// Input elements of one case, all tensors together (256 MiB of float32): checked on the shapes before any
// tensor is allocated or filled.
constexpr int64_t kMaxCaseElements = int64_t(1) << 26;

std::string join(const std::vector<std::string>& v) {
  std::string s;
  for (const auto& x : v) s += (s.empty() ? "" : ", ") + x;
  return s.empty() ? "(none)" : s;
}

double median_ms(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0.0 : v[v.size() / 2];
}

}  // namespace

Shape tensor_shape_from_json(const json& j, const std::string& path) {
  CL_CHECK(j.is_object(), path << ": expected an object {\"shape\", \"data\"|\"random\"}, got " << brief(j));
  for (const auto& [k, v] : j.items())
    CL_CHECK(k == "shape" || k == "data" || k == "random",
             path << ": unknown field '" << k << "' (a tensor has shape and data, or shape and random)");
  CL_CHECK(j.contains("shape"), path << ".shape: missing");
  const json& js = j["shape"];
  CL_CHECK(js.is_array() && !js.empty() && js.size() <= 8,
           path << ".shape: expected a list of 1 to 8 dimensions, got " << brief(js));
  Shape shape;
  int64_t total = 1;
  for (size_t i = 0; i < js.size(); ++i) {
    int64_t d;
    CL_CHECK(json_to_int(js[i], d) && d >= 1,
             path << ".shape[" << i << "]: expected an integer >= 1, got " << brief(js[i]));
    shape.push_back(d);
    CL_CHECK(!__builtin_mul_overflow(total, d, &total) && total <= kMaxCaseElements,
             path << ": shape " << json_brief(js) << " has more than " << kMaxCaseElements
                  << " elements (the limit for one op case)");
  }
  return shape;
}

Tensor tensor_from_json(const json& j, const std::string& path) {
  const Shape shape = tensor_shape_from_json(j, path);
  const bool has_data = j.contains("data"), has_random = j.contains("random");
  CL_CHECK(has_data != has_random, path << ": give exactly one of data or random");
  Tensor t = Tensor::empty(shape);
  if (has_random) {
    int64_t seed;
    CL_CHECK(json_to_int(j["random"], seed) && seed >= 0,
             path << ".random: expected a non-negative integer seed, got " << brief(j["random"]));
    Rng rng(static_cast<uint64_t>(seed));
    fill_uniform(t, rng, -1.f, 1.f);
    return t;
  }
  const json& jd = j["data"];
  CL_CHECK(jd.is_array(), path << ".data: expected a list of numbers, got " << brief(jd));
  CL_CHECK(static_cast<int64_t>(jd.size()) == t.numel(),
           path << ".data: shape " << shape_str(shape) << " needs " << t.numel() << " values, got " << jd.size());
  float* p = t.data();
  for (size_t i = 0; i < jd.size(); ++i) {
    CL_CHECK(jd[i].is_number(), path << ".data[" << i << "]: expected a number, got " << brief(jd[i]));
    const double v = jd[i].get<double>();
    CL_CHECK(std::isfinite(v) && std::fabs(v) <= 3.4028234663852886e38,
             path << ".data[" << i << "]: " << brief(jd[i]) << " is not a finite float32");
    p[i] = static_cast<float>(v);
  }
  return t;
}

json tensor_json(const Tensor& t, bool stats) {
  json j;
  j["shape"] = t.shape();
  const float* p = t.data();
  const int64_t n = t.numel();
  if (stats) {
    double s = 0, as = 0;
    float mn = n ? p[0] : 0.f, mx = n ? p[0] : 0.f;
    for (int64_t i = 0; i < n; ++i) {
      s += p[i];
      as += std::fabs(p[i]);
      mn = std::min(mn, p[i]);
      mx = std::max(mx, p[i]);
    }
    j["sum"] = s;
    j["abs_sum"] = as;
    j["min"] = mn;
    j["max"] = mx;
  } else {
    json d = json::array();
    d.get_ref<json::array_t&>().reserve(n);
    for (int64_t i = 0; i < n; ++i) d.push_back(p[i]);
    j["data"] = std::move(d);
  }
  return j;
}

Tensor OpCall::get(const std::string& name) const {
  auto it = tensors.find(name);
  return it == tensors.end() ? Tensor() : it->second;
}

Pair OpCall::pair(const std::string& f, Pair dflt) const {
  if (!fields.contains(f)) return dflt;
  const json& v = fields[f];
  int64_t a, b;
  if (json_to_int(v, a)) return {a, a};
  CL_CHECK(v.is_array() && v.size() == 2 && json_to_int(v[0], a) && json_to_int(v[1], b),
           op << ": " << f << " must be an integer or a pair [h, w] of integers, got " << brief(v));
  return {a, b};
}

int64_t OpCall::integer(const std::string& f, int64_t dflt) const {
  if (!fields.contains(f)) return dflt;
  int64_t v;
  CL_CHECK(json_to_int(fields[f], v), op << ": " << f << " must be an integer, got " << brief(fields[f]));
  return v;
}

Conv2dArgs OpCall::conv_args() const {
  Conv2dArgs a;
  a.stride = pair("stride", {1, 1});
  a.padding = pair("padding", {0, 0});
  a.dilation = pair("dilation", {1, 1});
  a.groups = integer("groups", 1);
  return a;
}

const OpSpec* find_op(const std::string& name) {
  for (const OpSpec& s : op_specs())
    if (s.name == name) return &s;
  return nullptr;
}

OpCall parse_case(const std::string& text) {
  const json j = parse_json(text, "case");
  CL_CHECK(j.is_object(), "case: expected a JSON object, got " << brief(j));
  CL_CHECK(j.contains("op") && j["op"].is_string(), "case: missing field 'op' (a string)");
  OpCall call;
  call.op = j["op"].get<std::string>();
  const OpSpec* spec = find_op(call.op);
  if (!spec) {
    std::vector<std::string> names;
    for (const OpSpec& s : op_specs()) names.push_back(s.name);
    CL_FAIL("case: unknown op '" << call.op << "' (known: " << join(names) << ")");
  }
  for (const auto& [k, v] : j.items()) {
    if (k == "op" || k == "tensors") continue;
    CL_CHECK(std::find(spec->fields.begin(), spec->fields.end(), k) != spec->fields.end(),
             call.op << ": unknown field '" << k << "' (this op takes: " << join(spec->fields) << ")");
    call.fields[k] = v;
  }
  CL_CHECK(j.contains("tensors") && j["tensors"].is_object(), call.op << ": missing object 'tensors'");
  const json& jt = j["tensors"];
  auto known = [&](const std::string& n) {
    return n == "grad_output" || std::count(spec->required.begin(), spec->required.end(), n) ||
           std::count(spec->optional.begin(), spec->optional.end(), n);
  };
  int64_t total = 0;
  for (const auto& [k, v] : jt.items()) {
    CL_CHECK(known(k), call.op << ": unknown tensor '" << k << "' (this op takes: " << join(spec->required)
                               << "; optional: " << join(spec->optional) << ", grad_output)");
    total += numel_of(tensor_shape_from_json(v, "tensors." + k));  // each <= kMaxCaseElements: no overflow
    CL_CHECK(total <= kMaxCaseElements,
             call.op << ": the case's tensors hold more than " << kMaxCaseElements << " elements in all");
  }
  for (const auto& [k, v] : jt.items()) {
    Tensor t = tensor_from_json(v, "tensors." + k);
    if (k == "grad_output") call.grad_output = t;
    else call.tensors[k] = t.set_requires_grad(true);
  }
  for (const std::string& r : spec->required)
    CL_CHECK(call.has(r), call.op << ": missing tensor '" << r << "'");
  return call;
}

namespace {
Tensor forward_checked(const OpCall& call) {
  Tensor out = find_op(call.op)->run(call);
  if (call.grad_output.defined())
    CL_CHECK(call.grad_output.shape() == out.shape(),
             call.op << ": grad_output " << shape_str(call.grad_output.shape()) << " must match the output "
                     << shape_str(out.shape()));
  return out;
}

void zero_grads(const OpCall& call) {
  for (auto& [k, t] : call.tensors) {
    Tensor h = t;
    h.zero_grad();
  }
}
}  // namespace

OpResult run_case(const OpCall& call, int repeat) {
  OpResult r;
  Tensor out = forward_checked(call);
  const Tensor go = call.grad_output.defined() ? call.grad_output : Tensor::ones(out.shape());
  zero_grads(call);
  out.backward(go);
  r.output = out.detach();
  for (auto& [k, t] : call.tensors) {
    Tensor g = t.grad();
    r.grads[k] = g.defined() ? g.clone() : Tensor::zeros(t.shape());
  }
  if (repeat > 0) {
    using clock = std::chrono::steady_clock;
    std::vector<double> fwd, bwd;
    for (int i = -1; i < repeat; ++i) {  // i == -1 is the warm-up
      zero_grads(call);
      auto t0 = clock::now();
      Tensor o = find_op(call.op)->run(call);
      auto t1 = clock::now();
      o.backward(go);
      auto t2 = clock::now();
      if (i < 0) continue;
      fwd.push_back(std::chrono::duration<double, std::milli>(t1 - t0).count());
      bwd.push_back(std::chrono::duration<double, std::milli>(t2 - t1).count());
    }
    r.repeat = repeat;
    r.forward_ms = median_ms(fwd);
    r.backward_ms = median_ms(bwd);
  }
  return r;
}

json result_json(const OpCall& call, const OpResult& r, bool stats) {
  json j;
  j["op"] = call.op;
  j["output"] = tensor_json(r.output, stats);
  json g = json::object();
  for (const auto& [k, t] : r.grads) g[k] = tensor_json(t, stats);
  j["grads"] = std::move(g);
  if (r.repeat > 0)
    j["timing"] = {{"repeat", r.repeat}, {"forward_ms", r.forward_ms}, {"backward_ms", r.backward_ms}};
  return j;
}

}  // namespace convlab

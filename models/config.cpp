// models/config.cpp: see config.h.
#include "models/config.h"

#include <filesystem>
#include <set>
#include <sstream>

#include "core/error.h"
#include "layers/options.h"
#include "layers/registry.h"
#include "tools/lib/io.h"

namespace convlab {

using nlohmann::json;
namespace fs = std::filesystem;

const json& config_section(const json& config, const char* key) {
  static const json empty = json::object();
  if (!config.contains(key)) return empty;
  CL_CHECK(config[key].is_object(), key << ": expected an object");
  return config[key];
}

void check_run_name(const std::string& name) {
  CL_CHECK(!name.empty() && name.find('/') == std::string::npos && name != "." && name != "..",
           "name: '" << name << "' cannot name a run folder");
}

json merge_json(const json& base, const json& over) {
  if (!base.is_object() || !over.is_object()) return over;
  json out = base;
  for (const auto& [k, v] : over.items()) out[k] = out.contains(k) ? merge_json(out[k], v) : v;
  return out;
}

namespace {

json parse_file(const std::string& path) {
  const std::string text = read_text_file(path);
  try {
    return json::parse(text);
  } catch (const json::parse_error& e) {
    std::string what = e.what();
    throw Error(path + ": not valid JSON (" + what.substr(what.find(':') + 2) + ")");
  }
}

json load_with_extends(const std::string& path, std::set<std::string>& chain) {
  const std::string canon = fs::weakly_canonical(path).string();
  CL_CHECK(!chain.count(canon), path << ": \"extends\" forms a cycle");
  chain.insert(canon);
  json j = parse_file(path);
  CL_CHECK(j.is_object(), path << ": a config must be a JSON object");
  if (j.contains("extends")) {
    CL_CHECK(j["extends"].is_string(), path << ": extends: expected a file name, got " << j["extends"].dump());
    const fs::path parent = fs::path(path).parent_path() / j["extends"].get<std::string>();
    json base = load_with_extends(parent.string(), chain);
    j.erase("extends");
    j = merge_json(base, j);
  }
  return j;
}

}  // namespace

json load_config(const std::string& path, const std::vector<std::string>& sets) {
  std::set<std::string> chain;
  json j = load_with_extends(path, chain);
  for (const auto& s : sets) apply_set(j, s);
  return j;
}

void apply_set(json& config, const std::string& assignment) {
  const size_t eq = assignment.find('=');
  CL_CHECK(eq != std::string::npos && eq > 0, "--set " << assignment << ": expected PATH=VALUE");
  const std::string path = assignment.substr(0, eq), text = assignment.substr(eq + 1);
  json value;
  try {
    value = json::parse(text);
  } catch (const json::parse_error&) {
    value = text;
  }
  json* node = &config;
  std::string walked;
  size_t i = 0;
  while (i < path.size()) {
    if (path[i] == '[') {
      const size_t close = path.find(']', i);
      CL_CHECK(close != std::string::npos, "--set " << path << ": unclosed [");
      const std::string idx = path.substr(i + 1, close - i - 1);
      CL_CHECK(!idx.empty() && idx.find_first_not_of("0123456789") == std::string::npos,
               "--set " << path << ": [" << idx << "] is not a list index");
      const size_t k = std::stoul(idx);
      CL_CHECK(node->is_array() && k < node->size(),
               "--set " << path << ": " << (walked.empty() ? "config" : walked) << " has no element [" << k << "]");
      node = &(*node)[k];
      walked += "[" + idx + "]";
      i = close + 1;
      if (i < path.size() && path[i] == '.') ++i;
    } else {
      const size_t end = path.find_first_of(".[", i);
      const std::string key = path.substr(i, end == std::string::npos ? std::string::npos : end - i);
      CL_CHECK(!key.empty(), "--set " << path << ": empty key");
      CL_CHECK(node->is_object() || node->is_null(),
               "--set " << path << ": " << (walked.empty() ? "config" : walked) << " is not an object");
      node = &(*node)[key];
      walked += (walked.empty() ? "" : ".") + key;
      i = end == std::string::npos ? path.size() : end;
      if (i < path.size() && path[i] == '.') ++i;
    }
  }
  *node = value;
}

namespace {

void add_layers(Sequential& seq, const json& layers, Shape& shape, Rng& rng, const std::string& path);

ModulePtr build_one(const json& entry, Shape& shape, Rng& rng, const std::string& path) {
  Options o(entry, path);
  CL_CHECK(entry.contains("type") && entry["type"].is_string(), path << ".type: missing (a layer type name)");
  const std::string type = entry["type"].get<std::string>();
  ModulePtr m;
  if (type == "sequential" || type == "residual") {
    CL_CHECK(entry.contains("layers"), path << ".layers: missing (a " << type << " block lists its layers)");
    auto body = build_layers(o.raw("layers"), shape, rng, path + ".layers");
    if (type == "sequential") {
      m = body;
      shape = body->output_shape(shape);
    } else {
      m = std::make_shared<Residual>(body);
      try {
        m->output_shape(shape);
      } catch (const Error& e) {
        throw Error(path + ": " + e.what());
      }
    }
  } else {
    const LayerType* lt = find_layer_type(type);
    if (!lt) {
      std::vector<std::string> names = {"sequential", "residual"};
      for (const auto& t : layer_types()) names.push_back(t.name);
      const std::string hint = did_you_mean(type, names);
      CL_FAIL(path << ".type: unknown layer type '" << type << "'"
                   << (hint.empty() ? "" : " (did you mean '" + hint + "'?)"));
    }
    m = lt->make(o, shape, rng);
    try {
      shape = m->output_shape(shape);
    } catch (const Error& e) {
      throw Error(path + " (" + type + "): " + e.what());
    }
  }
  o.finish({"type", "repeat"});
  return m;
}

void add_layers(Sequential& seq, const json& layers, Shape& shape, Rng& rng, const std::string& path) {
  CL_CHECK(layers.is_array(), path << ": expected a list of layers");
  for (size_t i = 0; i < layers.size(); ++i) {
    const std::string p = path + "[" + std::to_string(i) + "]";
    const json& e = layers[i];
    CL_CHECK(e.is_object(), p << ": expected a layer object, got " << e.dump().substr(0, 40));
    int64_t repeat = 1;
    if (e.contains("repeat")) {
      CL_CHECK(e["repeat"].is_number_integer() && e["repeat"].get<int64_t>() >= 1,
               p << ".repeat: expected a positive integer, got " << e["repeat"].dump());
      repeat = e["repeat"].get<int64_t>();
    }
    for (int64_t r = 0; r < repeat; ++r) seq.add(build_one(e, shape, rng, p));
  }
}

}  // namespace

std::shared_ptr<Sequential> build_layers(const json& layers, const Shape& in, Rng& rng, const std::string& path) {
  auto seq = std::make_shared<Sequential>();
  Shape shape = in;
  add_layers(*seq, layers, shape, rng, path);
  CL_CHECK(seq->size() > 0, path << ": no layers");
  return seq;
}

std::string describe_model(const Sequential& model, const Shape& in) {
  std::ostringstream os;
  Shape s = in;
  os << "input " << shape_str(in) << "\n";
  for (size_t i = 0; i < model.size(); ++i) {
    const ModulePtr& m = model.at(i);
    s = m->output_shape(s);
    os << "  " << i << " " << m->type() << " -> " << shape_str(s) << "  (" << m->num_parameters() << " params)\n";
  }
  os << "total parameters: " << model.num_parameters() << "\n";
  return os.str();
}

}  // namespace convlab

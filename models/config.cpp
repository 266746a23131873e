// models/config.cpp: see config.h.
#include "models/config.h"

#include <algorithm>
#include <filesystem>
#include <set>
#include <sstream>

#include "core/error.h"
#include "layers/options.h"
#include "layers/registry.h"
#include "data/files.h"
#include "data/json.h"
#include "models/receptive_field.h"

namespace convlab {

using nlohmann::json;
namespace fs = std::filesystem;

const json& config_section(const json& config, const char* key) {
  static const json empty = json::object();
  if (!config.contains(key)) return empty;
  CL_CHECK(config[key].is_object(), key << ": expected an object");
  return config[key];
}

json checkpoint_config(const std::map<std::string, std::string>& metadata, const std::string& path,
                       const std::string& format, const std::string& expected) {
  const auto it = metadata.find("config");
  const auto fmt = metadata.find("format");
  const bool format_ok = format.empty() || (fmt != metadata.end() && fmt->second == format);
  CL_CHECK(it != metadata.end() && format_ok,
           "checkpoint " << path << ": not a convlab " << (expected.empty() ? "checkpoint with a stored config" : expected));
  return parse_json(it->second, "checkpoint " + path + ": its config metadata");
}

void check_run_name(const std::string& name) {
  const bool printable = std::all_of(name.begin(), name.end(), [](char c) { return static_cast<unsigned char>(c) >= 0x20; });
  CL_CHECK(!name.empty() && name.size() <= 200 && printable && name.find('/') == std::string::npos && name != "." &&
               name != "..",
           "name: " << json_brief(nlohmann::json(name)) << " cannot name a run folder (1-200 characters, no '/' or "
                    << "control characters)");
}

json merge_json(const json& base, const json& over) {
  if (!base.is_object() || !over.is_object()) return over;
  json out = base;
  for (const auto& [k, v] : over.items()) out[k] = out.contains(k) ? merge_json(out[k], v) : v;
  return out;
}

namespace {

constexpr int64_t kMaxConfigBytes = 64 << 20;  // a config is a few KB; an op case with data at most MBs
constexpr size_t kMaxExtends = 32;             // files in one "extends" chain

json parse_file(const std::string& path) { return parse_json(read_file_bytes(path, "", kMaxConfigBytes), path); }

json load_with_extends(const std::string& path, std::vector<std::string>& chain) {
  std::error_code ec;
  const std::string canon = fs::weakly_canonical(path, ec).string();
  CL_CHECK(!ec, path << ": cannot resolve (" << ec.message() << ")");
  CL_CHECK(std::find(chain.begin(), chain.end(), canon) == chain.end(), path << ": \"extends\" forms a cycle");
  CL_CHECK(chain.size() < kMaxExtends, path << ": \"extends\" chain longer than " << kMaxExtends << " files");
  chain.push_back(canon);
  json j = parse_file(path);
  CL_CHECK(j.is_object(), path << ": a config must be a JSON object");
  if (j.contains("extends")) {
    CL_CHECK(j["extends"].is_string(), path << ": extends: expected a file name, got " << json_brief(j["extends"]));
    const fs::path parent = fs::path(path).parent_path() / j["extends"].get<std::string>();
    json base = load_with_extends(parent.string(), chain);
    j.erase("extends");
    j = merge_json(base, j);
  }
  return j;
}

}  // namespace

json load_config(const std::string& path, const std::vector<std::string>& sets) {
  std::vector<std::string> chain;
  json j = load_with_extends(path, chain);
  for (const auto& s : sets) apply_set(j, s);
  return j;
}

void apply_set(json& config, const std::string& assignment) {
  const size_t eq = assignment.find('=');
  CL_CHECK(eq != std::string::npos && eq > 0, "--set " << assignment << ": expected PATH=VALUE");
  const std::string path = assignment.substr(0, eq), text = assignment.substr(eq + 1);
  CL_CHECK(is_utf8(assignment), "--set: the assignment is not valid UTF-8");
  // JSON when it parses (numbers, lists, objects, true/false/null, "quoted"), else the text as a string.
  const json value = is_json(text) ? parse_json(text, "--set " + path) : json(text);
  json* node = &config;
  std::string walked;
  size_t i = 0;
  while (i < path.size()) {
    if (path[i] == '[') {
      const size_t close = path.find(']', i);
      CL_CHECK(close != std::string::npos, "--set " << path << ": unclosed [");
      const std::string idx = path.substr(i + 1, close - i - 1);
      CL_CHECK(!idx.empty() && idx.size() <= 9 && idx.find_first_not_of("0123456789") == std::string::npos,
               "--set " << path << ": [" << idx << "] is not a list index");
      const size_t k = std::stoul(idx);  // at most 9 digits: cannot overflow
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

constexpr size_t kMaxModules = 10000;  // layers in one network, repeats and nested blocks included

// Counts the modules of one network while it is built (nested repeats multiply).
struct BuildCount {
  size_t modules = 0;
  json* record = nullptr;  // build_layers()'s `record`
};

std::shared_ptr<Sequential> build_seq(const json& layers, const Shape& in, Rng& rng, const std::string& path,
                                      BuildCount& count);

ModulePtr build_one(const json& entry, Shape& shape, Rng& rng, const std::string& path, BuildCount& count) {
  CL_CHECK(++count.modules <= kMaxModules, path << ": the network has more than " << kMaxModules << " layers");
  Options o(entry, path);
  CL_CHECK(entry.contains("type") && entry["type"].is_string(), path << ".type: missing (a layer type name)");
  const std::string type = entry["type"].get<std::string>();
  ModulePtr m;
  if (count.record) count.record->push_back({{"path", path}, {"type", type}, {"options", json::object()}});
  const size_t own_index = count.record ? count.record->size() - 1 : 0;
  if (type == "sequential" || type == "residual") {
    CL_CHECK(entry.contains("layers"), path << ".layers: missing (a " << type << " block lists its layers)");
    auto body = build_seq(o.raw("layers"), shape, rng, path + ".layers", count);
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
    try {
      m = lt->make(o, shape, rng);
    } catch (const Error& e) {  // errors of the options already name the path; others (sizes) get it here
      const std::string what = e.what();
      if (what.rfind(path, 0) == 0) throw;
      throw Error(path + " (" + type + "): " + what);
    }
    try {
      shape = m->output_shape(shape);
    } catch (const Error& e) {
      throw Error(path + " (" + type + "): " + e.what());
    }
  }
  o.finish({"type", "repeat"});
  if (count.record) (*count.record)[own_index]["options"] = o.effective();  // children may have grown the list
  return m;
}

void add_layers(Sequential& seq, const json& layers, Shape& shape, Rng& rng, const std::string& path,
                BuildCount& count) {
  CL_CHECK(layers.is_array(), path << ": expected a list of layers");
  for (size_t i = 0; i < layers.size(); ++i) {
    const std::string p = path + "[" + std::to_string(i) + "]";
    const json& e = layers[i];
    CL_CHECK(e.is_object(), p << ": expected a layer object, got " << json_brief(e));
    int64_t repeat = 1;
    if (e.contains("repeat")) {
      CL_CHECK(e["repeat"].is_number_integer() && e["repeat"].get<int64_t>() >= 1 &&
                   e["repeat"].get<int64_t>() <= kMaxRepeat,
               p << ".repeat: expected an integer in [1, " << kMaxRepeat << "], got " << json_brief(e["repeat"]));
      repeat = e["repeat"].get<int64_t>();
    }
    for (int64_t r = 0; r < repeat; ++r) seq.add(build_one(e, shape, rng, p, count));
  }
}

std::shared_ptr<Sequential> build_seq(const json& layers, const Shape& in, Rng& rng, const std::string& path,
                                      BuildCount& count) {
  auto seq = std::make_shared<Sequential>();
  Shape shape = in;
  add_layers(*seq, layers, shape, rng, path, count);
  CL_CHECK(seq->size() > 0, path << ": no layers");
  return seq;
}

}  // namespace

std::shared_ptr<Sequential> build_layers(const json& layers, const Shape& in, Rng& rng, const std::string& path,
                                         json* record) {
  BuildCount count;
  if (record) *record = json::array();
  count.record = record;
  return build_seq(layers, in, rng, path, count);
}

std::string network_difference(const json& checkpoint, const json& config) {
  // Options that only steer training (BN's running-average momentum, dropout's p, the offset predictor's
  // learning-rate factor) or that are checked against the shapes anyway (in_channels) do not tell networks apart.
  static const std::set<std::string> kIgnored = {"momentum", "p", "offset_lr_mult", "in_channels", "in_features",
                                                  "num_features"};
  const auto text = [](const json& v) { return v.is_string() ? v.get<std::string>() : v.dump(); };
  const size_t n = std::min(checkpoint.size(), config.size());
  for (size_t i = 0; i < n; ++i) {
    const json &a = checkpoint[i], &b = config[i];
    const std::string path = b["path"].get<std::string>();
    if (a["type"] != b["type"])
      return path + ".type: checkpoint has " + text(a["type"]) + ", config has " + text(b["type"]);
    for (const auto& [k, v] : a["options"].items())
      if (!kIgnored.count(k) && (!b["options"].contains(k) || b["options"][k] != v))
        return path + "." + k + ": checkpoint has " + text(v) + ", config has " +
               (b["options"].contains(k) ? text(b["options"][k]) : "(not set)");
    for (const auto& [k, v] : b["options"].items())
      if (!kIgnored.count(k) && !a["options"].contains(k))
        return path + "." + k + ": checkpoint has (not set), config has " + text(v);
  }
  if (checkpoint.size() > n)
    return checkpoint[n]["path"].get<std::string>() + ": checkpoint has " + std::to_string(checkpoint.size()) +
           " layers, config has " + std::to_string(config.size()) + " (checkpoint continues with " +
           text(checkpoint[n]["type"]) + ")";
  if (config.size() > n)
    return config[n]["path"].get<std::string>() + ": checkpoint has " + std::to_string(checkpoint.size()) +
           " layers, config has " + std::to_string(config.size()) + " (config continues with " +
           text(config[n]["type"]) + ")";
  return "";
}

namespace {

std::string pair_text(Pair p) { return p[0] == p[1] ? std::to_string(p[0]) : std::to_string(p[0]) + "x" + std::to_string(p[1]); }

std::string rf_text(const std::array<double, 2>& rf) {
  const auto one = [](double v) {
    std::ostringstream os;
    os << v;
    return os.str();
  };
  return rf[0] == rf[1] ? one(rf[0]) : one(rf[0]) + "x" + one(rf[1]);
}

// The receptive-field rows (receptive_field.h, bounded by the input size) of each top-level module of a
// network built from `layers`: a module's rows are those of its config entry (a block's inner layers, a
// resize_conv2d's upsample and conv). Empty when `layers` is not given.
std::vector<std::vector<RfRow>> rf_rows_per_module(const json& layers, size_t modules, const Shape& in) {
  std::vector<std::vector<RfRow>> per(modules);
  if (!layers.is_array() || in.size() != 4) return per;
  std::vector<std::string> paths;  // model.layers[i], its repeats model.layers[i]#2, ... (as rf_model names them)
  for (size_t i = 0; i < layers.size(); ++i) {
    const json& e = layers[i];
    const int64_t repeat = e.is_object() && e.contains("repeat") && e["repeat"].is_number_integer() ? e["repeat"].get<int64_t>() : 1;
    const std::string p = "model.layers[" + std::to_string(i) + "]";
    for (int64_t r = 0; r < repeat; ++r) paths.push_back(r == 0 ? p : p + "#" + std::to_string(r + 1));
  }
  if (paths.size() != modules) return per;
  const RfModel m = rf_model(json{{"model", {{"layers", layers}}}});
  const RfAnalysis a = analyse_stack(m.layers, {.input_size = {in[2], in[3]}, .pixel = std::nullopt});
  size_t k = 0;
  for (const RfRow& row : a.rows) {  // rows come in module order
    const auto owns = [&](const std::string& p) { return row.path == p || row.path.rfind(p + ".", 0) == 0; };
    while (k < paths.size() && !owns(paths[k])) ++k;
    if (k == paths.size()) break;
    per[k].push_back(row);
  }
  return per;
}

}  // namespace

std::string describe_model(const Sequential& model, const Shape& in, const json& layers) {
  std::vector<std::vector<RfRow>> rf;
  std::string rf_note;
  try {
    rf = rf_rows_per_module(layers, model.size(), in);
  } catch (const Error& e) {
    rf.assign(model.size(), {});
    rf_note = std::string("receptive field not shown: ") + e.what();
  }
  std::vector<std::vector<std::string>> table = {
      {"#", "layer", "output", "params", "kernel", "stride", "padding", "dilation", "rf"}};
  Shape s = in;
  for (size_t i = 0; i < model.size(); ++i) {
    const ModulePtr& m = model.at(i);
    s = m->output_shape(s);
    std::vector<std::string> row = {std::to_string(i), m->type(), shape_str(s), std::to_string(m->num_parameters())};
    const std::vector<RfRow>& rows = rf[i];
    const RfRow* geometry = nullptr;  // the one conv / pool / transposed conv of this module
    int with_kernel = 0;
    for (const RfRow& r : rows)
      if (r.type.find("upsample") == std::string::npos) geometry = &r, ++with_kernel;
    if (with_kernel == 1 && (rows.size() == 1 || m->type() == "resize_conv2d"))
      for (Pair p : {geometry->kernel, geometry->stride, geometry->padding, geometry->dilation}) row.push_back(pair_text(p));
    else if (!rows.empty())
      row.insert(row.end(), 4, "-");
    if (!rows.empty()) row.push_back(rf_text(rows.back().rf));
    table.push_back(row);
  }
  std::vector<size_t> width(table.front().size(), 0);
  for (const auto& r : table)
    for (size_t c = 0; c < r.size(); ++c) width[c] = std::max(width[c], r[c].size());
  std::ostringstream os;
  os << "input " << shape_str(in) << "\n";
  for (const auto& r : table) {
    std::string line = " ";
    for (size_t c = 0; c < r.size(); ++c) line += " " + r[c] + std::string(c + 1 < r.size() ? width[c] - r[c].size() + 1 : 0, ' ');
    while (!line.empty() && line.back() == ' ') line.pop_back();
    os << line << "\n";
  }
  if (!rf_note.empty()) os << "  (" << rf_note << ")\n";
  os << "total parameters: " << model.num_parameters() << "\n";
  return os.str();
}

}  // namespace convlab

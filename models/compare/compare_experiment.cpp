// models/compare/compare_experiment.cpp: reading and checking a `convlab compare` experiment file (format:
// docs/compare.md). Everything a user can get wrong is refused here, before any training starts, with one
// line "compare FILE: experiment.KEY: ..." (unknown keys get a did-you-mean, as in configs).
#include <algorithm>
#include <filesystem>
#include <numeric>
#include <optional>
#include <set>

#include "core/error.h"
#include "data/json.h"
#include "layers/options.h"
#include "models/config.h"
#include "models/compare/compare.h"
#include "data/files.h"

namespace convlab {

using nlohmann::json;
namespace fs = std::filesystem;

namespace {

const std::vector<std::string> kSections = {"data", "loss", "optimizer", "schedule", "train"};
// Config values compare sets itself in every run: a `set` naming one of them is refused.
const std::vector<std::string> kControlled = {"name", "seed", "train.steps", "train.val_every", "train.checkpoint_every"};

std::vector<std::string> string_list(Options& o, const std::string& key) {
  std::vector<std::string> out;
  if (!o.has(key)) return out;
  const json& v = o.raw(key);
  CL_CHECK(v.is_array(), o.path() << "." << key << ": expected a list of strings, got " << json_brief(v));
  for (size_t i = 0; i < v.size(); ++i) {
    CL_CHECK(v[i].is_string(), o.path() << "." << key << "[" << i << "]: expected a string, got " << json_brief(v[i]));
    out.push_back(v[i].get<std::string>());
  }
  return out;
}

// A list of "PATH=VALUE" overrides; refuses the keys compare controls.
std::vector<std::string> set_list(Options& o, const std::string& key) {
  std::vector<std::string> sets = string_list(o, key);
  for (size_t i = 0; i < sets.size(); ++i) {
    const size_t eq = sets[i].find('=');
    CL_CHECK(eq != std::string::npos && eq > 0, o.path() << "." << key << "[" << i << "]: '" << sets[i]
                                                         << "' is not PATH=VALUE");
    const std::string path = sets[i].substr(0, eq);
    CL_CHECK(std::find(kControlled.begin(), kControlled.end(), path) == kControlled.end(),
             o.path() << "." << key << "[" << i << "]: " << path
                      << " is set by compare itself (run names, seeds, budgets and val_every come from the experiment)");
  }
  return sets;
}

std::vector<int64_t> unique_ints(Options& o, const std::string& key, std::optional<std::vector<int64_t>> dflt, int64_t min) {
  std::vector<int64_t> v = o.int_list(key, dflt, min);
  std::set<int64_t> seen;
  for (int64_t x : v) CL_CHECK(seen.insert(x).second, o.path() << "." << key << ": " << x << " is listed twice");
  return v;
}

std::string variant_name_or_hint(const std::string& who, const std::string& name, const std::vector<std::string>& names) {
  const std::string hint = did_you_mean(name, names);
  CL_CHECK(std::find(names.begin(), names.end(), name) != names.end(),
           who << ": no variant named '" << name << "'" << (hint.empty() ? "" : " (did you mean '" + hint + "'?)"));
  return name;
}

void read_budget_keys(Options& o, Experiment& e, bool required) {
  if (o.has("seeds") || required) e.seeds = unique_ints(o, "seeds", std::vector<int64_t>{0, 1, 2}, 0);
  if (o.has("budgets") || required) {
    e.budgets = unique_ints(o, "budgets", std::nullopt, 1);
    std::sort(e.budgets.begin(), e.budgets.end());
  }
  if (o.has("val_every")) e.val_every = o.integer("val_every", std::nullopt, 1);
}

Experiment parse(const json& j, const std::string& path, const std::string& preset) {
  Experiment e;
  e.file = path;
  Options top(j, "experiment");
  e.name = top.string("name", fs::path(path).stem().string());
  try {
    check_run_name(e.name);
  } catch (const Error&) {
    CL_FAIL("experiment.name: '" << e.name << "' cannot name a folder");
  }
  e.description = top.string("description", "");
  read_budget_keys(top, e, true);
  e.param_tolerance = top.number("param_tolerance", 0.02);
  CL_CHECK(e.param_tolerance >= 0, "experiment.param_tolerance: expected a number >= 0, got " << e.param_tolerance);
  e.sets = set_list(top, "set");
  e.from_layer = top.integer("from_layer", -1, -1);
  e.converged_gain = top.number("converged_gain", 0.5);
  CL_CHECK(e.converged_gain > 0, "experiment.converged_gain: expected a number > 0 (mIoU points), got " << e.converged_gain);
  if (top.has("artefact_rates")) e.artefact_rates = unique_ints(top, "artefact_rates", std::nullopt, 2);

  if (!top.has("variants"))  // a misspelt "variants" is the likelier mistake: name it
    for (const auto& [k, v] : j.items())
      CL_CHECK(did_you_mean(k, {"variants"}).empty(), "experiment." << k << ": unknown key (did you mean 'variants'?)");
  CL_CHECK(top.has("variants"), "experiment.variants: missing (a list of {name, config, set})");
  const json& vs = top.raw("variants");
  CL_CHECK(vs.is_array() && !vs.empty(), "experiment.variants: expected a non-empty list of {name, config, set}");
  const fs::path base = fs::path(path).parent_path();
  std::vector<std::string> names;
  for (size_t i = 0; i < vs.size(); ++i) {
    Options v(vs[i], "experiment.variants[" + std::to_string(i) + "]");
    CompareVariant cv;
    cv.name = v.string("name", std::nullopt);
    CL_CHECK(!cv.name.empty() && cv.name.find_first_of("/\\ ") == std::string::npos && cv.name != "." && cv.name != "..",
             v.path() << ".name: '" << cv.name << "' cannot name a run folder");
    CL_CHECK(std::find(names.begin(), names.end(), cv.name) == names.end(),
             v.path() << ".name: '" << cv.name << "' is used by two variants");
    names.push_back(cv.name);
    const std::string cfg = v.string("config", std::nullopt);
    const fs::path p = fs::path(cfg).is_absolute() ? fs::path(cfg) : base / cfg;
    CL_CHECK(fs::is_regular_file(p), v.path() << ".config: no such file '" << cfg << "' (looked for " << p.string()
                                              << "; paths are relative to the experiment file)");
    cv.config = p.lexically_normal().string();
    cv.sets = set_list(v, "set");
    cv.from_layer = v.integer("from_layer", -1, -1);
    v.finish({"set"});
    e.variants.push_back(std::move(cv));
  }

  if (top.has("pairs")) {
    const json& ps = top.raw("pairs");
    CL_CHECK(ps.is_array(), "experiment.pairs: expected a list of [a, b] variant-name pairs");
    for (size_t i = 0; i < ps.size(); ++i) {
      const std::string who = "experiment.pairs[" + std::to_string(i) + "]";
      CL_CHECK(ps[i].is_array() && ps[i].size() == 2 && ps[i][0].is_string() && ps[i][1].is_string(),
               who << ": expected [a, b] (two variant names: a - b is reported), got " << json_brief(ps[i]));
      const std::string a = variant_name_or_hint(who, ps[i][0], names), b = variant_name_or_hint(who, ps[i][1], names);
      CL_CHECK(a != b, who << ": compares '" << a << "' with itself");
      e.pairs.emplace_back(a, b);
    }
  } else {
    for (size_t i = 1; i < names.size(); ++i) e.pairs.emplace_back(names[i], names[0]);
  }
  e.same = top.has("same") ? string_list(top, "same") : kSections;
  for (size_t i = 0; i < e.same.size(); ++i)
    if (std::find(kSections.begin(), kSections.end(), e.same[i]) == kSections.end()) {
      const std::string hint = did_you_mean(e.same[i], kSections);
      CL_FAIL("experiment.same[" << i << "]: '" << e.same[i] << "' is not a config section (data, loss, optimizer, schedule, train)"
                                 << (hint.empty() ? "" : "; did you mean '" + hint + "'?"));
    }

  // Presets: "full" is the top level; "short" and "quick" sections override it. Both sections are checked
  // whichever is used, so a typo in one is found before its first run.
  CL_CHECK(preset == "full" || preset == "short" || preset == "quick",
           "experiment: unknown budget preset '" << preset << "' (full, short or quick)");
  e.preset = preset;
  e.label = top.string("label", "");
  for (const char* sec : {"short", "quick"}) {
    if (!top.has(sec)) {
      CL_CHECK(preset != sec, "experiment." << sec << ": missing: " << (preset == "quick" ? "--quick" : "--budget short")
                                            << " needs a " << sec << " section (seeds, budgets, val_every, set, variants, variant_set)");
      continue;
    }
    Options q(top.raw(sec), std::string("experiment.") + sec);
    const bool use = preset == sec;
    Experiment tmp;
    tmp.seeds = e.seeds, tmp.budgets = e.budgets, tmp.val_every = e.val_every;
    read_budget_keys(q, tmp, false);
    if (q.has("budgets") && !q.has("val_every")) tmp.val_every = 0;  // the main val_every may not divide them
    const std::vector<std::string> sets = set_list(q, "set");
    const std::string description = q.string("description", e.description), label = q.string("label", e.label);
    std::vector<std::string> keep = names;
    if (q.has("variants")) {
      keep = string_list(q, "variants");
      CL_CHECK(!keep.empty(), q.path() << ".variants: expected a non-empty list of variant names");
      for (size_t i = 0; i < keep.size(); ++i) variant_name_or_hint(q.path() + ".variants[" + std::to_string(i) + "]", keep[i], names);
    }
    std::vector<std::pair<std::string, std::vector<std::string>>> vsets;  // variant (or "*") -> its extra sets
    if (q.has("variant_set")) {
      const json& vs_obj = q.raw("variant_set");
      CL_CHECK(vs_obj.is_object(), q.path() << ".variant_set: expected {\"variant\" or \"*\": [\"PATH=VALUE\", ...]}");
      Options vo(vs_obj, q.path() + ".variant_set");
      for (const auto& [k, v] : vs_obj.items()) {
        if (k != "*") variant_name_or_hint(vo.path() + "." + k, k, names);
        vsets.emplace_back(k, set_list(vo, k));
      }
    }
    q.finish({"seeds", "budgets", "val_every", "set", "variants", "variant_set", "description", "label"});
    if (!use) continue;
    e.quick = preset == "quick";
    e.seeds = tmp.seeds, e.budgets = tmp.budgets, e.val_every = tmp.val_every;
    e.sets.insert(e.sets.end(), sets.begin(), sets.end());
    e.description = description;
    e.label = label;
    std::vector<CompareVariant> kept;
    for (CompareVariant& cv : e.variants) {
      if (std::find(keep.begin(), keep.end(), cv.name) == keep.end()) continue;
      const std::vector<std::string>* extra = nullptr;
      for (const auto& [k, v] : vsets)
        if (k == "*" && !extra) extra = &v;
      for (const auto& [k, v] : vsets)
        if (k == cv.name) extra = &v;  // a named entry replaces "*"
      if (extra) cv.sets.insert(cv.sets.end(), extra->begin(), extra->end());
      kept.push_back(cv);
    }
    e.variants = kept;
    std::vector<std::pair<std::string, std::string>> pairs;
    for (const auto& pr : e.pairs)
      if (std::find(keep.begin(), keep.end(), pr.first) != keep.end() && std::find(keep.begin(), keep.end(), pr.second) != keep.end())
        pairs.push_back(pr);
    e.pairs = pairs;
  }
  top.finish({"seeds", "budgets", "val_every", "set", "pairs", "same", "quick", "short"});

  if (e.val_every == 0) e.val_every = std::accumulate(e.budgets.begin(), e.budgets.end(), int64_t(0),
                                                      [](int64_t a, int64_t b) { return std::gcd(a, b); });
  for (int64_t b : e.budgets)
    CL_CHECK(b % e.val_every == 0, "experiment" << (e.preset == "full" ? "" : "." + e.preset) << ".val_every: " << e.val_every
                                                << " does not divide the budget " << b << " (validation must fall on every budget)");
  return e;
}

}  // namespace

Experiment load_experiment(const std::string& path, const std::string& preset) {
  try {
    const json j = parse_json(read_text_file(path), "");  // the catch below names the file
    CL_CHECK(j.is_object(), "an experiment must be a JSON object");
    return parse(j, path, preset);
  } catch (const Error& err) {
    const std::string m = err.what();
    if (m.rfind(path, 0) == 0) throw;  // read_text_file already names the file
    throw Error("compare " + path + ": " + m);
  }
}

}  // namespace convlab

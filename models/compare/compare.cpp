// models/compare/compare.cpp: the experiment of `convlab compare`: resolves each variant's config, refuses
// mismatched settings or parameter counts, trains every (seed, variant) run (seed-major, so an interrupted experiment already has
// whole seeds), skips runs that finished with the same config and resumes interrupted ones, then computes
// the per-variant summaries and paired differences and writes results.json, report.md and report.html
// (each through a temp file and a rename: a report on disk is always complete).

#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <iomanip>
#include <ostream>
#include <set>
#include <sstream>

#include "core/error.h"
#include "data/json.h"
#include "models/config.h"
#include "models/seg_task.h"
#include "data/files.h"
#include "models/compare/compare.h"
#include "models/compare/compare_runs.h"

namespace convlab {

using nlohmann::json;
namespace fs = std::filesystem;
using namespace compare_detail;

namespace {

std::string minutes(double s) {
  char buf[32];
  if (s >= 90) std::snprintf(buf, sizeof buf, "%.1f min", s / 60);
  else std::snprintf(buf, sizeof buf, "%.0f s", s);
  return buf;
}

// The variant's config with the experiment's and its own overrides, and the keys compare controls.
json resolve(const Experiment& e, const CompareVariant& v) {
  std::vector<std::string> sets = e.sets;
  sets.insert(sets.end(), v.sets.begin(), v.sets.end());
  json cfg;
  try {
    cfg = load_config(v.config, sets);
    CL_CHECK(cfg.value("task", "segmentation") == "segmentation", "task: compare trains segmentation configs only");
    json& tr = cfg["train"];
    tr["steps"] = e.budgets.back();
    tr["val_every"] = e.val_every;
    tr["checkpoint_every"] = e.val_every;  // an interrupted run resumes from its last validation
    cfg["seed"] = e.seeds.front();
    cfg["name"] = run_name(v, e.seeds.front());
    make_seg_task(cfg, /*with_data=*/false);  // refuses a bad config before anything trains
  } catch (const Error& err) {
    CL_FAIL("compare " << e.file << ": variant '" << v.name << "' (" << v.config << "): " << err.what());
  }
  return cfg;
}

// First place where two JSON values differ, as a path ("data.image_size"), or "" when equal.
std::string first_difference(const json& a, const json& b, const std::string& path) {
  if (a == b) return "";
  if (a.is_object() && b.is_object()) {
    for (const auto& [k, v] : a.items()) {
      if (!b.contains(k)) return path + "." + k;
      const std::string d = first_difference(v, b[k], path + "." + k);
      if (!d.empty()) return d;
    }
    for (const auto& [k, v] : b.items())
      if (!a.contains(k)) return path + "." + k;
  }
  return path;
}

json at_path(const json& j, const std::string& path) {  // "data.image_size" -> value (null when absent)
  const json* node = &j;
  size_t i = 0;
  while (i < path.size()) {
    const size_t dot = path.find('.', i);
    const std::string k = path.substr(i, dot == std::string::npos ? std::string::npos : dot - i);
    if (!node->is_object() || !node->contains(k)) return nullptr;
    node = &(*node)[k];
    i = dot == std::string::npos ? path.size() : dot + 1;
  }
  return *node;
}

void check_matched(const Experiment& e, const std::vector<json>& cfgs, const std::vector<json>& info) {
  for (size_t i = 1; i < cfgs.size(); ++i)
    for (const std::string& s : e.same) {
      const std::string d = first_difference(cfgs[0].value(s, json::object()), cfgs[i].value(s, json::object()), s);
      CL_CHECK(d.empty(), "compare " << e.file << ": variants '" << e.variants[0].name << "' and '" << e.variants[i].name
                                     << "' differ in " << d << " (" << at_path(cfgs[0], d).dump() << " vs "
                                     << at_path(cfgs[i], d).dump() << "); compare needs the same " << s
                                     << " for every variant (see \"same\")");
    }
  size_t lo = 0, hi = 0;
  for (size_t i = 1; i < info.size(); ++i) {
    if (info[i]["parameters"] < info[lo]["parameters"]) lo = i;
    if (info[i]["parameters"] > info[hi]["parameters"]) hi = i;
  }
  const double pl = info[lo]["parameters"], ph = info[hi]["parameters"], rel = (ph - pl) / std::max(pl, 1.0);
  CL_CHECK(rel <= e.param_tolerance, "compare " << e.file << ": parameter counts differ by " << std::fixed << std::setprecision(1)
                                                << 100 * rel << "% ('"
                                                << e.variants[lo].name << "' " << int64_t(pl) << ", '" << e.variants[hi].name
                                                << "' " << int64_t(ph) << "), more than param_tolerance "
                                                << 100 * e.param_tolerance << "%");
}

// What the runs of this invocation actually are, from the first variant's resolved config (so a quick or
// short report describes its own settings, not the full study's).
json settings_of(const Experiment& e, const json& cfg) {
  const json& d = config_section(cfg, "data");
  const json& tr = config_section(cfg, "train");
  int64_t width = 0;
  const json& layers = cfg["model"]["layers"];
  if (layers.is_array() && !layers.empty() && layers[0].is_object() && layers[0].contains("out_channels")) width = layers[0]["out_channels"];
  return {{"preset", e.preset}, {"label", e.label}, {"image_size", d.value("image_size", json(nullptr))},
          {"val_size", d.value("val_size", json(nullptr))}, {"batch_size", tr.value("batch_size", json(nullptr))},
          {"width", width}, {"steps", e.budgets.back()}, {"budgets", e.budgets}, {"val_every", e.val_every},
          {"seeds", e.seeds}, {"variants", e.variants.size()}};
}

}  // namespace

StudyResult compare_command(const CompareCommand& c) {
  const auto wall0 = std::chrono::steady_clock::now();
  const double cpu0 = cpu_seconds();
  CL_CHECK(!c.quick || c.budget == "full", "compare: --quick and --budget " << c.budget << " exclude each other");
  const Experiment e = load_experiment(c.experiment, c.quick ? "quick" : c.budget);
  const std::function<void(const std::string&)> say = [&](const std::string& s) {
    if (!c.quiet && c.log) *c.log << s << std::flush;
  };
  const fs::path out = c.out.empty() ? fs::path("runs") / "compare" / (e.name + (e.preset == "full" ? "" : "-" + e.preset)) : fs::path(c.out);
  const fs::path runs_dir = out / "runs", pics = out / "pictures";

  // 1. Resolve and check every variant before anything is written or trained.
  std::vector<json> cfgs, info;
  std::set<std::string> trained_now;  // distributed: the runs the ranks trained before rank 0 assembles the results
  std::vector<double> step_s;  // seconds per training step of each variant, probed here and now
  auto probe_all = [&] {
    for (size_t i = step_s.size(); i < cfgs.size(); ++i) step_s.push_back(probe_step_seconds(cfgs[i]));
  };
  bool fresh = c.fresh;  // --fresh; false once the ranks of a distributed compare have retrained every run
  int64_t canvas = 0;  // the largest coverage window: every variant's map is drawn on it, at one scale
  for (size_t pass = 0; pass < 2; ++pass) {  // pass 0 checks; pass 1 (cheap: shape arithmetic) draws the coverage
    if (pass == 1) {
      check_matched(e, cfgs, info);
      for (const json& v : info)
        for (const json& w : v["coverage_stack"]["window"]) canvas = std::max(canvas, w.get<int64_t>());
      fs::create_directories(runs_dir);
      fs::create_directories(pics);
      info.clear();
      if (c.comm && c.comm->size() > 1 && c.estimate_only) {  // nothing to train: rank 0 times the variants alone
        if (c.comm->rank() != 0) return {};
      } else if (c.comm && c.comm->size() > 1) {  // distributed: this rank's share of the runs first (see CompareCommand)
        if (c.comm->rank() == 0) probe_all();  // what each run costs, for dealing them out
        trained_now = train_distributed(e, cfgs, c, runs_dir, step_s, say);
        if (c.comm->rank() != 0) return {};
        fresh = false;
      }
    }
    for (size_t i = 0; i < e.variants.size(); ++i) {
      const CompareVariant& v = e.variants[i];
      if (pass == 0) cfgs.push_back(resolve(e, v));
      try {
        info.push_back(analyse_variant(cfgs[i], v.from_layer >= 0 ? v.from_layer : e.from_layer,
                                       pass ? (pics / (v.name + "_coverage.png")).string() : "", canvas));
      } catch (const Error& err) {
        CL_FAIL("compare " << e.file << ": variant '" << v.name << "': " << err.what());
      }
    }
  }

  std::vector<int64_t> rates = e.artefact_rates;
  if (rates.empty()) {
    std::set<int64_t> found;
    for (const json& cfg : cfgs) collect_rates(cfg["model"]["layers"], found);
    rates.assign(found.begin(), found.end());
    if (rates.empty()) rates = {2};
  }

  // 2. Time estimate from a few real steps of each variant (runs already finished are not counted).
  const int64_t steps = e.budgets.back(), n_runs = int64_t(e.variants.size() * e.seeds.size());
  double estimate = 0;
  int64_t todo = 0;
  probe_all();
  for (size_t i = 0; i < e.variants.size(); ++i) {
    // Validated by the probe's task build above; a section may still be absent (defaults), so read safely.
    const auto key = [&](const char* sec, const char* k, int64_t dflt) {
      const json& c = cfgs[i];
      int64_t v = dflt;
      if (c.contains(sec) && c[sec].is_object() && c[sec].contains(k)) json_to_int(c[sec][k], v);
      return std::max<int64_t>(v, 1);
    };
    const int64_t val_size = key("data", "val_size", 256), B = key("train", "batch_size", 16);
    // A validation pass is forward-only: about a third of a training step per batch.
    const double per_run = step_s[i] * (double(steps) + double(steps / e.val_every) * double((val_size + B - 1) / B) / 3.0);
    for (int64_t seed : e.seeds) {
      const json cfg = with_seed(cfgs[i], e.variants[i], seed);
      if (run_state(runs_dir / cfg["name"].get<std::string>(), cfg, fresh) != RunState::finished) estimate += per_run, ++todo;
    }
  }
  say("compare " + e.name + (e.preset == "full" ? "" : " (" + e.preset + ")") + ": " + std::to_string(e.variants.size()) + " variants x " +
      std::to_string(e.seeds.size()) + " seeds, " + std::to_string(steps) + " steps each, output " + out.string() + "\n");
  say("estimate: " + std::to_string(todo) + " of " + std::to_string(n_runs) + " runs to train, about " + minutes(estimate) +
      " on this machine now (" + std::to_string(int(1000 * step_s.front())) + " ms per step of '" + e.variants.front().name + "')\n");
  if (c.estimate_only) {  // the time a run of this preset would take, from the probe: nothing is trained
    json per = json::object();
    for (size_t i = 0; i < e.variants.size(); ++i) per[e.variants[i].name] = step_s[i];
    StudyResult r;
    r.json = {{"experiment", e.name}, {"preset", e.preset}, {"label", e.label}, {"settings", settings_of(e, cfgs.front())},
              {"estimate", {{"seconds", estimate}, {"runs_to_train", todo}, {"runs", n_runs}, {"steps", steps},
                            {"step_seconds", per}}}};
    char buf[256];
    std::snprintf(buf, sizeof buf, "estimate for %s (%s): %lld of %lld runs of %lld steps to train, about %s on this machine now\n",
                  e.name.c_str(), e.preset.c_str(), (long long)todo, (long long)n_runs, (long long)steps, minutes(estimate).c_str());
    r.text = buf;
    for (size_t i = 0; i < e.variants.size(); ++i)
      r.text += "  " + e.variants[i].name + ": " + std::to_string(int(1000 * step_s[i])) + " ms per training step\n";
    return r;
  }

  // 3. Train, seed-major. A run is skipped when it finished with the same config, resumed when it stopped early.
  json variants = json::array();
  for (size_t i = 0; i < e.variants.size(); ++i) {
    json v = info[i];
    v["name"] = e.variants[i].name;
    v["config"] = e.variants[i].config;
    v["sets"] = e.variants[i].sets;
    v["step_seconds_probe"] = step_s[i];
    v["runs"] = json::array();
    variants.push_back(v);
  }
  int64_t k = 0;
  for (int64_t seed : e.seeds)
    for (size_t i = 0; i < e.variants.size(); ++i) {
      const json cfg = with_seed(cfgs[i], e.variants[i], seed);
      const fs::path d = runs_dir / cfg["name"].get<std::string>();
      const RunState state = run_state(d, cfg, fresh);
      const bool finished = state == RunState::finished, resume = state == RunState::resume;
      json timing;
      std::string tag = "[";  // appended piecewise: GCC 12's -Wrestrict misfires on "[" + std::string here at -O3
      tag += std::to_string(++k) + "/" + std::to_string(n_runs) + "] " + cfg["name"].get<std::string>();
      if (finished && fs::exists(d / "compare_timing.json")) {
        timing = json::parse(read_text_file((d / "compare_timing.json").string()));
        // Trained just now by the ranks of this distributed compare: not skipped.
        const bool by_rank = trained_now.count(cfg["name"].get<std::string>()) > 0;
        timing["skipped"] = !by_rank;
        const int64_t procs = timing.value("processes", int64_t(1)), first = timing.value("rank", int64_t(0));
        say(tag + (!by_rank ? ": finished earlier, not retrained\n"
                   : procs > 1 ? ": trained by ranks " + std::to_string(first) + "-" + std::to_string(first + procs - 1) +
                                     " (data-parallel)\n"
                               : ": trained by rank " + std::to_string(first) + "\n"));
      } else if (finished) {  // finished, but its timing file was lost: the trainer's wall time is all there is
        timing = {{"wall_s", json::parse(read_text_file((d / "summary.json").string()))["train_seconds"]}, {"cpu_s", nullptr},
                  {"resumed", false}, {"skipped", true}};
        say(tag + ": finished earlier, not retrained\n");
      } else {
        say(tag + (resume ? ": resuming" : ": training") + "...");
        try {
          timing = train_run(cfg, runs_dir, resume, -1, nullptr, c.stop_requested);
        } catch (const Error& err) {
          say("\n");
          CL_FAIL("compare " << e.file << ": run " << cfg["name"].get<std::string>() << ": " << err.what());
        }
        timing["skipped"] = false;
      }
      json r = read_run_metrics(d.string(), e.budgets);
      if (!timing["skipped"].get<bool>()) {
        const json& m = r["at"][std::to_string(steps)]["miou"];
        char buf[128];
        std::snprintf(buf, sizeof buf, " %.1f s wall, %.1f s CPU; mIoU %.1f%% at step %lld\n", timing["wall_s"].get<double>(),
                      timing["cpu_s"].get<double>(), m.is_number() ? m.get<double>() : NAN, (long long)steps);
        say(buf);
      }
      r["seed"] = seed;
      // Artefacts of the final weights: reused from compare_artefacts.json when the run was not retrained and
      // the rates (and, for the first seed, the picture) are there; else measured and stored.
      const fs::path art_file = d / "compare_artefacts.json", art_png = pics / (e.variants[i].name + "_artefact.png");
      const bool first_seed = seed == e.seeds.front();
      json art;
      if (timing["skipped"].get<bool>() && fs::exists(art_file) && (!first_seed || fs::exists(art_png))) {
        try {
          const json cached = json::parse(read_text_file(art_file.string()));
          if (cached.is_object() && cached.value("rates", json()) == json(rates) && cached.contains("artefacts")) art = cached["artefacts"];
        } catch (const std::exception&) {
        }
      }
      if (art.is_null()) {
        art = run_artefacts(cfg, (d / "model.safetensors").string(), rates, first_seed ? art_png.string() : "");
        write_file_atomic(art_file.string(), json({{"rates", rates}, {"artefacts", art}}).dump(2) + "\n");
      }
      r["artefacts"] = art;
      r["run_dir"] = fs::relative(d, out).string();
      // Whole: the timing covers all of the run's training (not resumed, or every part timed: "parts" >= 1).
      timing["whole"] = timing["cpu_s"].is_number() && timing["wall_s"].is_number() &&
                        (timing.contains("parts") && timing["parts"].is_number_integer() ? timing["parts"].get<int64_t>() >= 1
                                                                                         : !timing.value("resumed", false));
      r["timing"] = timing;
      variants[i]["runs"].push_back(r);
    }

  // 4. Summaries, ERF pictures (untrained at the stack input; trained seed-0 run at the model input).
  for (size_t i = 0; i < e.variants.size(); ++i) {
    json& v = variants[i];
    v["summary"] = summarise(v["runs"], e.budgets);
    v["artefacts"] = artefact_summary(v["runs"], rates);
    v["artefacts"]["worst"] = v["runs"][0]["artefacts"]["worst"];
    v["convergence"] = convergence(v["runs"], e.budgets.back(), e.converged_gain);
    const std::string n = e.variants[i].name;
    const int64_t fl = v["from_layer"];
    const fs::path first = runs_dir / run_name(e.variants[i], e.seeds.front());
    v["erf_initial"] = variant_erf(cfgs[i], fl, "", (pics / (n + "_erf_initial.png")).string());
    v["erf_trained"] = variant_erf(with_seed(cfgs[i], e.variants[i], e.seeds.front()), fl, (first / "model.safetensors").string(),
                                   (pics / (n + "_erf_trained.png")).string());
    // The first run's predictions, copied next to the other pictures: report.md and pictures/ read without runs/.
    const fs::path val_png = first / ("val_" + std::to_string(steps) + ".png"), pred_png = pics / (n + "_predictions.png");
    std::error_code ec;
    if (fs::exists(val_png)) fs::copy_file(val_png, pred_png, fs::copy_options::overwrite_existing, ec);
    else fs::remove(pred_png, ec);
    CL_CHECK(!ec, "compare: cannot copy " << val_png.string() << " to " << pred_png.string() << ": " << ec.message());
    v["pictures"] = {{"coverage", "pictures/" + n + "_coverage.png"}, {"erf_initial", "pictures/" + n + "_erf_initial.png"},
                     {"erf_trained", "pictures/" + n + "_erf_trained.png"}, {"artefact", "pictures/" + n + "_artefact.png"},
                     {"predictions", fs::exists(val_png) ? json("pictures/" + n + "_predictions.png") : json(nullptr)}};
  }
  json pairs = json::array();
  for (const auto& [a, b] : e.pairs) {
    for (int64_t budget : e.budgets)
      for (const char* m : {"miou", "large", "small", "thin"}) pairs.push_back(pair_result(variants, a, b, budget, m));
    pairs.push_back(pair_result(variants, a, b, e.budgets.back(), "artefact", rates.front()));
  }

  const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - wall0).count();
  // What all the runs cost when they were trained (whichever invocations, machines and processes): the sum of
  // the runs timed whole; a run resumed after an untimed part counts at its variant's mean whole run.
  double runs_wall = 0, runs_cpu = 0;
  int64_t timed = 0, stood_in = 0;
  for (const json& v : variants) {
    double vw = 0, vc = 0;
    int64_t n = 0;
    for (const json& r : v["runs"])
      if (r["timing"]["whole"].get<bool>()) vw += r["timing"]["wall_s"].get<double>(), vc += r["timing"]["cpu_s"].get<double>(), ++n;
    for (const json& r : v["runs"]) {
      if (r["timing"]["whole"].get<bool>()) {
        runs_wall += r["timing"]["wall_s"].get<double>(), runs_cpu += r["timing"]["cpu_s"].get<double>(), ++timed;
      } else if (n > 0) {
        runs_wall += vw / double(n), runs_cpu += vc / double(n), ++timed, ++stood_in;
      }
    }
  }
  json res = {{"experiment", e.name}, {"description", e.description}, {"file", fs::path(e.file).filename().string()}, {"quick", e.quick},
              {"preset", e.preset}, {"label", e.label}, {"settings", settings_of(e, cfgs.front())}, {"artefact_rates", rates},
              {"converged_gain", e.converged_gain},
              {"artefact_metric", "share of the spectral energy of each map (class probabilities; last feature maps) at the "
                                  "frequencies of period r (multiples of 1/r cycles per pixel in both axes, DC excluded, "
                                  "each channel's mean removed), averaged over validation images: 1 = a pure r-periodic "
                                  "pattern, ~0 = smooth"},
              {"seeds", e.seeds}, {"budgets", e.budgets}, {"val_every", e.val_every}, {"param_tolerance", e.param_tolerance},
              {"common_sets", e.sets},
              {"rule", "a difference exceeds the seed-to-seed spread when the 95% confidence interval of the mean paired "
                       "difference excludes 0: |mean| > t(0.975, n-1) * sd / sqrt(n) (two-sided paired t-test at 5%)"},
              {"pairing", "runs with the same seed share their training batches (images, order, flips) and the validation "
                          "set; each network's weights are drawn from that same seed"},
              {"variants", variants}, {"pairs", pairs},
              {"timing", {{"estimated_s", estimate}, {"wall_s", wall}, {"cpu_s", cpu_seconds() - cpu0},
                          {"runs_trained", todo + int64_t(trained_now.size())}, {"runs", n_runs}, {"runs_timed", timed}, {"runs_wall_s", runs_wall},
                          {"runs_cpu_s", runs_cpu}, {"runs_at_variant_mean", stood_in}}}};
  write_file_atomic((out / "curves_miou.svg").string(), compare_svg(res, "miou"));
  write_file_atomic((out / "curves_loss.svg").string(), compare_svg(res, "loss"));
  write_file_atomic((out / "results.json").string(), res.dump(2) + "\n");
  write_file_atomic((out / "report.md").string(), compare_markdown(res));
  write_file_atomic((out / "report.html").string(), compare_html(res, out.string()));
  StudyResult r;
  r.json = res;
  r.text = compare_text(res) + "wrote " + (out / "report.md").string() + ", report.html, results.json\n";
  return r;
}

}  // namespace convlab

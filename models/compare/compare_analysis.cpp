// models/compare/compare_analysis.cpp: the measurements `convlab compare` takes besides training: parameter count
// and coverage (receptive_field.h), the effective receptive field (erf.h), a step-time probe for the time
// estimate, the metrics of a finished run, and the paired-difference statistics.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <fstream>
#include <map>

#include "core/error.h"
#include "data/json.h"
#include "data/batch.h"
#include "data/safetensors.h"
#include "models/erf.h"
#include "models/receptive_field.h"
#include "models/seg_task.h"
#include "models/compare/compare.h"

namespace convlab {

using nlohmann::json;

double t_critical_975(int64_t dof) {
  CL_CHECK(dof >= 1, "t_critical_975: dof must be >= 1, got " << dof);
  // Two-sided 5% critical values of Student's t (standard tables), then the Cornish-Fisher expansion
  // z + (z^3 + z) / (4 dof), which is within 0.002 of the exact value from dof 30 on.
  static const double table[30] = {12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228,
                                   2.201,  2.179, 2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086,
                                   2.080,  2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042};
  if (dof <= 30) return table[dof - 1];
  const double z = 1.959964;
  return z + (z * z * z + z) / (4.0 * double(dof));
}

PairedStats paired_stats(const std::vector<double>& diffs) {
  PairedStats s;
  s.n = int64_t(diffs.size());
  if (s.n == 0) return s;
  for (double d : diffs) s.mean += d, s.a_higher += d > 0, s.b_higher += d < 0;
  s.mean /= double(s.n);
  if (s.n < 2) return s;  // one seed: no spread to compare with
  double ss = 0;
  for (double d : diffs) ss += (d - s.mean) * (d - s.mean);
  s.sd = std::sqrt(ss / double(s.n - 1));
  s.half_width = t_critical_975(s.n - 1) * s.sd / std::sqrt(double(s.n));
  s.exceeds = std::fabs(s.mean) > s.half_width;
  return s;
}

namespace {

int64_t resolve_from_layer(const RfModel& m, int64_t from_layer) {
  CL_CHECK(m.layers.size() >= 2, "compare: the network has " << m.layers.size() << " spatial layer(s): no stack after a stem");
  return from_layer >= 0 ? from_layer : m.layers[1].top;
}

json coverage_json(const RfAnalysis& a) {
  return {{"holes", a.holes}, {"hole_share", a.hole_share}, {"reached", a.reached},
          {"window", {a.coverage.H, a.coverage.W}}, {"rf", a.rows.empty() ? 1.0 : a.rows.back().rf[0]}};
}

}  // namespace

json analyse_variant(const json& config, int64_t from_layer, const std::string& coverage_png) {
  const SegTask t = make_seg_task(config, /*with_data=*/false);
  const RfModel m = rf_model(config);
  const int64_t from_top = resolve_from_layer(m, from_layer);
  size_t from = 0;
  while (from < m.layers.size() && m.layers[from].top < from_top) ++from;
  CL_CHECK(from < m.layers.size(), "from_layer: " << from_top << " is past the last spatial layer (" << m.layers.back().path << ")");
  const RfAnalysis whole = analyse_stack(m.layers, {.input_size = m.input_size, .pixel = std::nullopt});
  const Pair sub_in = rf_sizes(m.layers, m.input_size)[from];
  const std::vector<RfLayer> stack(m.layers.begin() + static_cast<long>(from), m.layers.end());
  const RfAnalysis sub = analyse_stack(stack, {.input_size = sub_in, .pixel = std::nullopt});
  const CoverageMap& cv = sub.coverage;
  if (!coverage_png.empty() && cv.H > 0)
    write_png(coverage_png, titled_heatmap(cv.count, cv.H, cv.W, {230, 30, 30}, "no path (hole)",
                                           "coverage at " + stack.front().path + " input: paths per pixel"));
  return {{"parameters", t.model->num_parameters()},
          {"rf", whole.rows.empty() ? 1.0 : whole.rows.back().rf[0]},
          {"from_layer", from_top},
          {"stack_path", stack.front().path},
          {"stack_input_size", sub_in[0]},
          {"coverage_stack", coverage_json(sub)},
          {"coverage_input", coverage_json(whole)}};
}

json variant_erf(const json& config, int64_t from_layer, const std::string& checkpoint, const std::string& png) {
  const bool trained = !checkpoint.empty();
  SegTask t = make_seg_task(config, /*with_data=*/trained);
  const int64_t S = t.input_shape[2];
  ErfOptions o;
  o.samples = 16;
  o.seed = 0;
  if (trained) {
    const auto f = safetensors::load(checkpoint);
    safetensors::copy_into(f, t.model->state_dict(), checkpoint);
    std::vector<int64_t> idx;
    for (int64_t i = 0; i < std::min<int64_t>(o.samples, t.val_set->size()); ++i) idx.push_back(i);
    o.images = make_batch(*t.val_set, idx).images;  // real images: a trained net's ReLUs depend on them
  } else {
    o.from_layer = resolve_from_layer(rf_model(config), from_layer);
  }
  o.config = config;
  const ErfResult r = compute_erf(*t.model, {8, 3, S, S}, o);
  write_erf_png(r, png, std::string(trained ? "trained" : "initial") + ": ERF at " + r.measured_path + ", log scale",
                S <= 32 ? 8 : 4);
  json j = r.to_json();
  j.erase("map");
  j["inputs"] = trained ? "validation images" : "N(0,1) images";
  j["weights"] = trained ? "trained" : "initial";
  return j;
}

double probe_step_seconds(const json& config) {
  SegTask t = make_seg_task(config);
  auto opt = make_optimizer(t.optimizer_config, *t.model);
  t.model->train();
  EpochOrder order(t.train_set->size(), t.seed);
  std::vector<double> secs;
  for (int64_t s = 0; s < 3; ++s) {
    const auto t0 = std::chrono::steady_clock::now();
    Rng aug(sample_seed(t.seed, s));
    SegBatch b = make_batch(*t.train_set, order.batch(s, t.train.batch_size), t.augment, aug);
    opt->zero_grad();
    Tensor loss = cross_entropy(t.model->forward(b.images), b.labels, t.class_weights, t.ignore_index);
    loss.backward();
    opt->step();
    if (s > 0) secs.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  return std::min(secs[0], secs[1]);  // the quieter of two: a time estimate, not a benchmark
}

json read_run_metrics(const std::string& run_dir, const std::vector<int64_t>& budgets) {
  const std::string path = run_dir + "/metrics.jsonl";
  std::ifstream f(path);
  CL_CHECK(f, "compare: " << path << ": cannot read");
  std::map<int64_t, json> val;
  std::map<int64_t, double> loss;
  for (std::string line; std::getline(f, line);) {
    if (line.empty()) continue;
    // Lines of a run folder on disk: read defensively (a line cut by an interruption, or edited by hand).
    if (!is_json(line)) continue;  // a line cut by an interruption; the resumed run rewrote what follows it
    const json j = json::parse(line);
    int64_t step = 0;
    if (!j.is_object() || !j.contains("step") || !json_to_int(j["step"], step)) continue;
    if (j.value("split", "") == "val") val[step] = j;  // a resumed run may repeat a step: the last one counts
    else if (j.contains("loss_avg") && j["loss_avg"].is_number()) loss[step] = j["loss_avg"];
  }
  auto pct = [](const json& v) { return v.is_number() ? json(100.0 * v.get<double>()) : json(nullptr); };
  auto field = [](const json& m, const char* k) { return m.contains(k) ? m[k] : json(); };
  auto sub = [](const json& m, const char* k, const char* key) {
    return m.contains(k) && m[k].is_object() && m[k].contains(key) ? m[k][key] : json();
  };
  json out = {{"at", json::object()}, {"curve", json::array()}, {"loss", json::array()}};
  for (const auto& [step, m] : val) {
    out["curve"].push_back({step, pct(field(m, "miou")), field(m, "loss")});
    out["at"][std::to_string(step)] = {
        {"miou", pct(field(m, "miou"))},           {"pixel_accuracy", pct(field(m, "pixel_accuracy"))},
        {"large", pct(sub(m, "bucket_miou", "large"))}, {"medium", pct(sub(m, "bucket_miou", "medium"))},
        {"small", pct(sub(m, "bucket_miou", "small"))}, {"thin", pct(sub(m, "bucket_miou", "thin"))},
        {"line", pct(sub(m, "class_iou", "line"))},   {"val_loss", field(m, "loss")}};
  }
  for (int64_t b : budgets)
    CL_CHECK(out["at"].contains(std::to_string(b)), "compare: " << path << " has no validation at step " << b);
  for (const auto& [step, l] : loss) out["loss"].push_back({step, l});
  return out;
}

}  // namespace convlab

// models/compare/compare_analysis.cpp: the measurements `convlab compare` takes besides training: parameter count
// and coverage (receptive_field.h), the effective receptive field (erf.h), a step-time probe for the time
// estimate, the metrics of a finished run, and the paired-difference statistics.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <set>
#include <fstream>
#include <map>

#include "core/error.h"
#include "data/picture.h"
#include "data/json.h"
#include "data/batch.h"
#include "data/safetensors.h"
#include "models/erf.h"
#include "models/gridding_artefacts.h"
#include "models/study/study.h"
#include "data/png.h"
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

json analyse_variant(const json& config, int64_t from_layer, const std::string& coverage_png, int64_t canvas) {
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
  if (!coverage_png.empty() && cv.H > 0) {
    RgbImage img;
    if (canvas >= std::max(cv.H, cv.W)) {  // centred on a common canvas; outside the window: white
      const int64_t cell = cell_size(canvas, canvas) / 2 + 1, oy = (canvas - cv.H) / 2, ox = (canvas - cv.W) / 2;
      const RgbImage map = heatmap(cv.count, cv.H, cv.W, {230, 30, 30}, cell);
      img = RgbImage(canvas * cell, canvas * cell, 255);
      for (int64_t y = 0; y < map.H; ++y)
        for (int64_t x = 0; x < map.W; ++x)
          for (int64_t ch = 0; ch < 3; ++ch)
            img.rgb[size_t(((oy * cell + y) * img.W + ox * cell + x) * 3 + ch)] = map.rgb[size_t((y * map.W + x) * 3 + ch)];
    } else {
      img = heatmap(cv.count, cv.H, cv.W, {230, 30, 30}, cell_size(cv.H, cv.W));
    }
    double mx = 0;
    for (double v : cv.count) mx = std::max(mx, v);
    ColourBar bar;
    bar.min_label = "0";
    bar.max_label = fmt(mx, 6);
    bar.extra = {{"no path (hole)", {230, 30, 30}}};
    write_png(coverage_png, annotate_map(img, "coverage at " + stack.front().path + " input: paths per pixel", bar,
                                         text_scale_for(img.W)));
  }
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

json run_artefacts(const json& config, const std::string& checkpoint, const std::vector<int64_t>& rates,
                   const std::string& png) {
  CL_CHECK(!rates.empty(), "compare: no artefact rates");
  NoGradGuard ng;
  SegTask t = make_seg_task(config, /*with_data=*/true);
  const auto f = safetensors::load(checkpoint);
  safetensors::copy_into(f, t.model->state_dict(), checkpoint);
  t.model->eval();
  const Sequential& net = *t.model;
  CL_CHECK(net.size() >= 2, "compare: the network has one layer: no feature maps before its last layer");
  const int64_t n = t.val_set->size(), B = std::max<int64_t>(1, t.train.batch_size), R = int64_t(rates.size());
  std::vector<double> prob_sum(size_t(R), 0.0), feat_sum(size_t(R), 0.0);
  int64_t worst = -1, images = 0;
  double worst_share = -1;
  // Forward to the last layer's input (the last feature maps), then the last layer (the logits).
  auto forward = [&](const Tensor& x, Tensor& feats) {
    Tensor h = x;
    for (size_t k = 0; k + 1 < net.size(); ++k) h = net.at(k)->forward(h);
    feats = h;
    return net.at(net.size() - 1)->forward(h);
  };
  // Softmax over the class dimension of logits [N, K, H, W], in double, stored as float.
  auto softmax = [](const Tensor& logits) {
    const int64_t N = logits.size(0), K = logits.size(1), HW = logits.size(2) * logits.size(3);
    std::vector<float> p(size_t(logits.numel()));
    const float* z = logits.data();
    for (int64_t b = 0; b < N; ++b)
      for (int64_t i = 0; i < HW; ++i) {
        double mx = z[b * K * HW + i], s = 0;
        for (int64_t k = 1; k < K; ++k) mx = std::max(mx, double(z[(b * K + k) * HW + i]));
        for (int64_t k = 0; k < K; ++k) s += std::exp(double(z[(b * K + k) * HW + i]) - mx);
        for (int64_t k = 0; k < K; ++k) p[size_t((b * K + k) * HW + i)] = float(std::exp(double(z[(b * K + k) * HW + i]) - mx) / s);
      }
    return Tensor::from(logits.shape(), p);
  };
  for (int64_t start = 0; start < n; start += B) {
    std::vector<int64_t> idx;
    for (int64_t i = start; i < std::min(n, start + B); ++i) idx.push_back(i);
    const SegBatch b = make_batch(*t.val_set, idx);
    Tensor feats;
    const Tensor probs = softmax(forward(b.images, feats));
    for (int64_t k = 0; k < b.B; ++k, ++images)
      for (int64_t ri = 0; ri < R; ++ri) {
        const double sp = grid_energy_share(probs, k, rates[size_t(ri)]);
        prob_sum[size_t(ri)] += sp;
        feat_sum[size_t(ri)] += grid_energy_share(feats, k, rates[size_t(ri)]);
        if (ri == 0 && sp > worst_share) worst_share = sp, worst = start + k;
      }
  }
  CL_CHECK(images > 0, "compare: no validation images for the artefact metric");
  json probs_j = json::object(), feats_j = json::object();
  for (int64_t ri = 0; ri < R; ++ri) {
    probs_j[std::to_string(rates[size_t(ri)])] = prob_sum[size_t(ri)] / double(images);
    feats_j[std::to_string(rates[size_t(ri)])] = feat_sum[size_t(ri)] / double(images);
  }
  json out = {{"rates", rates}, {"images", images}, {"probs", probs_j}, {"features", feats_j},
              {"worst", {{"image", worst}, {"rate", rates[0]}, {"share", worst_share}}}};
  if (!png.empty()) {  // the most affected image: image | label | prediction | grid component of its worst class map
    const SegBatch b = make_batch(*t.val_set, {worst});
    Tensor feats;
    const Tensor probs = softmax(forward(b.images, feats));
    const int64_t K = probs.size(1), H = probs.size(2), W = probs.size(3), r = rates[0];
    std::vector<int32_t> pred(size_t(H * W), 0);
    for (int64_t i = 0; i < H * W; ++i)
      for (int64_t k = 1; k < K; ++k)
        if (probs.data()[k * H * W + i] > probs.data()[pred[size_t(i)] * H * W + i]) pred[size_t(i)] = int32_t(k);
    int64_t worst_c = 0;
    double worst_e = -1;
    std::vector<double> comp;
    for (int64_t c = 0; c < K; ++c) {
      std::vector<double> g = grid_component(probs.data(), K, H, W, c, r);
      double e = 0;
      for (double v : g) e += v * v;
      if (e > worst_e) worst_e = e, worst_c = c, comp = std::move(g);
    }
    const int64_t Hc = r * (H / r), Wc = r * (W / r);
    const int64_t up = H <= 32 ? 4 : 2;
    RgbImage prob(W, H);  // the most affected class's probability map, black 0 .. white 1
    for (int64_t i = 0; i < H * W; ++i) {
      const float p = std::clamp(probs.data()[worst_c * H * W + i], 0.f, 1.f);
      for (int64_t ch = 0; ch < 3; ++ch) prob.rgb[size_t(i * 3 + ch)] = uint8_t(std::lround(255.0 * p));
    }
    const RgbImage row = compose_grid({{upscale(tensor_to_rgb(b.images, 0, 0.f, 1.f), up), upscale(labels_to_rgb(b.labels.data(), H, W), up),
                                        upscale(labels_to_rgb(pred.data(), H, W), up), upscale(prob, up),
                                        diverging_heatmap(comp, Hc, Wc, up)}});
    write_png(png, row);
    out["worst"]["class"] = t.val_set->class_names().at(size_t(worst_c));
  }
  return out;
}

json convergence(const json& runs, int64_t last_budget, double threshold) {
  const int64_t from_target = last_budget - last_budget / 5;  // the start of the last fifth
  std::vector<double> gains;
  int64_t from = -1;
  for (const json& r : runs) {
    double at_from = NAN, at_last = NAN;
    int64_t f = -1;
    for (const json& p : r["curve"]) {
      const int64_t step = p[0].get<int64_t>();
      if (!p[1].is_number()) continue;
      if (step <= from_target && step > f) f = step, at_from = p[1].get<double>();
      if (step == last_budget) at_last = p[1].get<double>();
    }
    if (f < 0 || !std::isfinite(at_from) || !std::isfinite(at_last)) continue;
    from = f;
    gains.push_back(at_last - at_from);
  }
  double mean = 0;
  for (double g : gains) mean += g;
  if (gains.empty()) return {{"from_step", nullptr}, {"to_step", last_budget}, {"gains", gains}, {"gain_mean", nullptr},
                             {"threshold", threshold}, {"converged", nullptr}};
  mean /= double(gains.size());
  return {{"from_step", from}, {"to_step", last_budget}, {"gains", gains}, {"gain_mean", mean}, {"threshold", threshold},
          {"converged", mean < threshold}};
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

// Mean and sample sd over seeds of every metric at every budget; null values are left out.
json summarise(const json& runs, const std::vector<int64_t>& budgets) {
  json out = json::object();
  for (int64_t b : budgets) {
    const std::string k = std::to_string(b);
    json per = json::object();
    for (const char* m : {"miou", "pixel_accuracy", "large", "medium", "small", "thin", "line"}) {
      std::vector<double> v;
      for (const json& r : runs)
        if (r["at"][k][m].is_number()) v.push_back(r["at"][k][m]);
      double mean = 0, ss = 0;
      for (double x : v) mean += x;
      mean = v.empty() ? NAN : mean / double(v.size());
      for (double x : v) ss += (x - mean) * (x - mean);
      per[m] = {{"mean", v.empty() ? json(nullptr) : json(mean)},
                {"sd", v.size() < 2 ? json(nullptr) : json(std::sqrt(ss / double(v.size() - 1)))}, {"n", v.size()}};
    }
    out[k] = per;
  }
  return out;
}

namespace {
std::string signed_pts(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%+.2f", v);
  return buf;
}
}  // namespace

// metric: a key of run["at"][budget] (IoUs in %), or "artefact": the class probabilities' grid-energy share at
// `rate` of the final weights, in % (budget = the last one).
json pair_result(const json& variants, const std::string& a, const std::string& b, int64_t budget,
                 const std::string& metric, int64_t rate) {
  auto runs_of = [&](const std::string& n) -> const json& {
    size_t i = 0;
    while (i + 1 < variants.size() && variants[i]["name"] != n) ++i;  // names were checked by load_experiment
    return variants[i]["runs"];
  };
  const json &ra = runs_of(a), &rb = runs_of(b);
  const std::string k = std::to_string(budget);
  std::vector<double> d;
  json seeds = json::array();
  auto value = [&](const json& run) -> json {
    if (metric != "artefact") return run["at"][k][metric];
    const json& v = run["artefacts"]["probs"][std::to_string(rate)];
    return v.is_number() ? json(100.0 * v.get<double>()) : json();
  };
  for (size_t i = 0; i < ra.size(); ++i) {
    const json x = value(ra[i]), y = value(rb[i]);
    if (x.is_number() && y.is_number()) d.push_back(x.get<double>() - y.get<double>()), seeds.push_back(ra[i]["seed"]);
  }
  const PairedStats s = paired_stats(d);
  const std::string label = metric == "miou"       ? "mIoU"
                            : metric == "thin"     ? "thin-structure IoU"
                            : metric == "artefact" ? "grid-energy share of the class probabilities at period " + std::to_string(rate) + " (%)"
                                                   : metric + "-object IoU";
  std::string sentence = a + " - " + b + " after " + std::to_string(budget) + " steps, " + label + ": ";
  if (s.n == 0) {
    sentence += "no values (no such pixels in the validation set, or no run has them).";
  } else if (s.n >= 2 && s.sd == 0 && s.mean == 0) {
    sentence += "identical on all " + std::to_string(s.n) + " seeds (+0.00 points): no difference.";
  } else {
    sentence += signed_pts(s.mean) + " points";
    if (s.n >= 2) {
      char buf[160];
      std::snprintf(buf, sizeof buf, " (sd %.2f over %lld seeds, %s higher on %lld/%lld; 95%% CI [%+.2f, %+.2f])", s.sd,
                    (long long)s.n, a.c_str(), (long long)s.a_higher, (long long)s.n, s.mean - s.half_width, s.mean + s.half_width);
      sentence += buf;
      sentence += s.exceeds ? ": exceeds the seed-to-seed spread." : ": within the seed-to-seed spread (not distinguishable from noise).";
    } else {
      sentence += " (one seed: the seed-to-seed spread cannot be estimated).";
    }
  }
  return {{"a", a}, {"b", b}, {"budget", budget}, {"metric", metric}, {"rate", rate ? json(rate) : json(nullptr)},
          {"seeds", seeds}, {"diffs", d}, {"n", s.n},
          {"mean", s.n ? json(s.mean) : json(nullptr)}, {"sd", s.n >= 2 ? json(s.sd) : json(nullptr)},
          {"ci95", s.n >= 2 ? json({s.mean - s.half_width, s.mean + s.half_width}) : json(nullptr)},
          {"a_higher", s.a_higher}, {"b_higher", s.b_higher}, {"exceeds", s.n >= 2 ? json(s.exceeds) : json(nullptr)},
          {"sentence", sentence}};
}

// Dilation rates > 1 of every layer in a config's model (nested "layers" lists included).
void collect_rates(const json& layers, std::set<int64_t>& out) {
  if (!layers.is_array()) return;
  for (const json& l : layers) {
    if (!l.is_object()) continue;
    if (l.contains("dilation")) {
      const json& d = l["dilation"];
      if (d.is_number_integer() && d.get<int64_t>() > 1) out.insert(d.get<int64_t>());
      if (d.is_array())
        for (const json& x : d)
          if (x.is_number_integer() && x.get<int64_t>() > 1) out.insert(x.get<int64_t>());
    }
    if (l.contains("layers")) collect_rates(l["layers"], out);
  }
}

// Mean and sample sd over runs of run["artefacts"][kind][rate].
json artefact_summary(const json& runs, const std::vector<int64_t>& rates) {
  json out = json::object();
  for (const char* kind : {"probs", "features"}) {
    json per = json::object();
    for (int64_t r : rates) {
      std::vector<double> v;
      for (const json& run : runs) v.push_back(run["artefacts"][kind][std::to_string(r)].get<double>());
      double mean = 0, ss = 0;
      for (double x : v) mean += x;
      mean /= double(v.size());
      for (double x : v) ss += (x - mean) * (x - mean);
      per[std::to_string(r)] = {{"mean", mean}, {"sd", v.size() < 2 ? json(nullptr) : json(std::sqrt(ss / double(v.size() - 1)))},
                                {"n", v.size()}};
    }
    out[kind] = per;
  }
  return out;
}

}  // namespace convlab

// models/compare/compare_report.cpp: the reports of `convlab compare`, all made from results.json: the text table
// (stdout), report.md (pictures and curves linked as files next to it) and report.html (self-contained:
// inline CSS, curves as inline SVG, pictures as base64 data: URIs, no external reference).
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <map>

#include "core/error.h"
#include "models/compare/compare.h"

namespace convlab {

using nlohmann::json;

namespace {

const char* kColours[] = {"#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b", "#e377c2"};
const char* colour(size_t i) { return kColours[i % 8]; }

std::string num(double v, int digits) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.*f", digits, v);
  return buf;
}

// "31.2 ± 2.1" from {"mean", "sd"} (sd omitted with one seed), "n/a" without values.
std::string mean_sd(const json& s, const std::string& pm = " ± ") {
  if (!s["mean"].is_number()) return "n/a";
  return num(s["mean"], 1) + (s["sd"].is_number() ? pm + num(s["sd"], 1) : "");
}

// Mean over the runs timed whole (a run resumed after an untimed part is left out: its time is a part's).
std::string time_per_run(const json& v, const char* key) {
  double sum = 0;
  int64_t n = 0;
  for (const json& r : v["runs"])
    if (r.contains("timing") && r["timing"].is_object() && r["timing"].value("whole", false) && r["timing"][key].is_number())
      sum += r["timing"][key].get<double>(), ++n;
  return n ? num(sum / double(n), sum / double(n) < 10 ? 1 : 0) + " s" : "n/a";
}

std::string holes(const json& cov) {
  return std::to_string(cov["holes"].get<int64_t>()) + " (" + num(100 * cov["hole_share"].get<double>(), 0) + "%)";
}

std::string holes_or_dash(const json& v, const char* key) { return v.contains(key) ? holes(v[key]) : "n/a"; }

// The Time section's text: what all the runs cost when they were trained (summed over their compare_timing.json,
// whichever invocations trained them), then this invocation.
std::string time_text(const json& res) {
  const json& tm = res["timing"];
  std::string t;
  const int64_t timed = tm.value("runs_timed", int64_t(0));
  if (timed > 0 && tm["runs_cpu_s"].is_number()) {
    const double cpu = tm["runs_cpu_s"].get<double>();
    const int64_t mean = tm.value("runs_at_variant_mean", int64_t(0));
    t += (timed == 1 ? std::string("The run: ") : "All " + std::to_string(timed) + " runs: ") + num(cpu, 0) + " CPU-s of training and validation (" + num(cpu / 3600, 1) +
         " CPU-hours; " + num(tm["runs_wall_s"].get<double>(), 0) + " s of run wall time summed" +
         (mean > 0 ? "; " + std::to_string(mean) + " of them resumed after an interruption that was not timed, counted at their variant's mean run"
                   : "") + "). ";
  }
  t += "This invocation: " + num(tm["wall_s"], 0) + " s wall, " + num(tm["cpu_s"], 0) + " s CPU (" +
       std::to_string(tm["runs_trained"].get<int64_t>()) + " of " + std::to_string(tm["runs"].get<int64_t>()) +
       " runs trained; runs finished earlier are reused); estimated beforehand: " + num(tm["estimated_s"], 0) + " s.";
  return t;
}

// "+0.3 (yes)" / "+4.1 (NO)": the mean mIoU gain over the last fifth of the schedule and the verdict.
std::string gain_cell(const json& v) {
  if (!v.contains("convergence") || !v["convergence"]["gain_mean"].is_number()) return "n/a";
  const json& c = v["convergence"];
  char buf[48];
  std::snprintf(buf, sizeof buf, "%+.1f (%s)", c["gain_mean"].get<double>(), c["converged"].get<bool>() ? "yes" : "NO");
  return buf;
}

// A grid-energy share (a fraction in results.json) shown in %, three decimals: the shares of trained nets are
// hundredths of a percent, so a fraction's four decimals hid their differences and spreads.
std::string share_cell(const json& s, const std::string& pm) {
  if (!s.is_object() || !s["mean"].is_number()) return "n/a";
  return num(100 * s["mean"].get<double>(), 3) + (s["sd"].is_number() ? pm + num(100 * s["sd"].get<double>(), 3) : "");
}

std::string headline_rate(const json& res) {
  return res.contains("artefact_rates") && !res["artefact_rates"].empty() ? std::to_string(res["artefact_rates"][0].get<int64_t>()) : "2";
}

// The main table: one row per variant; mIoU at every budget, the object-size buckets at the last budget, the
// convergence check, the gridding-artefact share at the first rate.
std::vector<std::vector<std::string>> main_table(const json& res, const std::string& pm) {
  const std::string last = std::to_string(res["budgets"].back().get<int64_t>()), r = headline_rate(res);
  std::vector<std::string> head = {"variant", "params", "RF", "holes at stack input", "holes at image"};
  for (const json& b : res["budgets"]) head.push_back("mIoU @" + std::to_string(b.get<int64_t>()));
  for (const char* m : {"large", "small", "thin"}) head.push_back(std::string(m) + " @" + last);
  head.insert(head.end(), {"gain in last fifth (converged?)", "grid energy r=" + r + ": probs (%)", "grid energy r=" + r + ": features (%)",
                           "wall / run", "CPU / run"});
  std::vector<std::vector<std::string>> rows = {head};
  for (const json& v : res["variants"]) {
    std::vector<std::string> row = {v["name"], std::to_string(v["parameters"].get<int64_t>()), num(v["rf"], 0),
                                    holes(v["coverage_stack"]), holes_or_dash(v, "coverage_input")};
    for (const json& b : res["budgets"]) row.push_back(mean_sd(v["summary"][std::to_string(b.get<int64_t>())]["miou"], pm));
    for (const char* m : {"large", "small", "thin"}) row.push_back(mean_sd(v["summary"][last][m], pm));
    row.push_back(gain_cell(v));
    const bool art = v.contains("artefacts");
    row.push_back(art ? share_cell(v["artefacts"]["probs"][r], pm) : "n/a");
    row.push_back(art ? share_cell(v["artefacts"]["features"][r], pm) : "n/a");
    row.push_back(time_per_run(v, "wall_s"));
    row.push_back(time_per_run(v, "cpu_s"));
    rows.push_back(row);
  }
  return rows;
}

// Gridding-artefact shares at every rate, probabilities and features.
std::vector<std::vector<std::string>> artefact_table(const json& res, const std::string& pm) {
  std::vector<std::string> head = {"variant"};
  for (const char* kind : {"probs", "features"})
    for (const json& r : res["artefact_rates"]) head.push_back(std::string(kind) + " r=" + std::to_string(r.get<int64_t>()) + " (%)");
  head.push_back("most affected image (r=" + headline_rate(res) + ", first seed)");
  std::vector<std::vector<std::string>> rows = {head};
  for (const json& v : res["variants"]) {
    std::vector<std::string> row = {v["name"]};
    for (const char* kind : {"probs", "features"})
      for (const json& r : res["artefact_rates"]) row.push_back(share_cell(v["artefacts"][kind][std::to_string(r.get<int64_t>())], pm));
    const json& w = v["artefacts"]["worst"];
    row.push_back("#" + std::to_string(w["image"].get<int64_t>()) + ": " + num(100 * w["share"].get<double>(), 2) + "%" +
                  (w.contains("class") ? " (" + w["class"].get<std::string>() + ")" : ""));
    rows.push_back(row);
  }
  return rows;
}

std::string metric_label(const json& p) {
  const std::string m = p["metric"];
  if (m == "artefact") return "grid energy r=" + std::to_string(p["rate"].get<int64_t>()) + " (%)";
  return m == "miou" ? "mIoU" : m == "large" ? "large IoU" : m == "small" ? "small IoU" : m == "thin" ? "thin IoU" : m;
}

// Pair results the reports show: mIoU at every budget, the object-size buckets at the last one (results.json
// has them at every budget).
std::vector<const json*> shown_pairs(const json& res) {
  std::vector<const json*> out;
  for (const json& p : res["pairs"])
    if (p["metric"] == "miou" || p["budget"] == res["budgets"].back()) out.push_back(&p);
  return out;
}

// The paired differences as one table: pair x budget x metric -> mean, 95% CI, seeds won, verdict.
std::vector<std::vector<std::string>> pair_table(const json& res) {
  std::vector<std::vector<std::string>> rows = {{"a - b", "budget", "metric", "mean", "95% CI", "a higher on", "verdict"}};
  for (const json* pp : shown_pairs(res)) {
    const json& p = *pp;
    std::vector<std::string> row = {p["a"].get<std::string>() + " - " + p["b"].get<std::string>(),
                                    std::to_string(p["budget"].get<int64_t>()), metric_label(p)};
    const int64_t n = p["n"];
    if (n == 0) {
      row.insert(row.end(), {"n/a", "n/a", "n/a", "no values"});
    } else {
      // Grid-energy shares (in %) are hundredths of a percent: four decimals, so their differences and CIs read.
      const int d = p["metric"] == "artefact" ? 4 : 2;
      char ci[96] = "n/a (1 seed)", mean[48];
      if (p["ci95"].is_array()) std::snprintf(ci, sizeof ci, "[%+.*f, %+.*f]", d, p["ci95"][0].get<double>(), d, p["ci95"][1].get<double>());
      std::snprintf(mean, sizeof mean, "%+.*f", d, p["mean"].get<double>());
      row.push_back(mean);
      row.push_back(ci);
      row.push_back(std::to_string(p["a_higher"].get<int64_t>()) + "/" + std::to_string(n));
      const bool same = p["mean"].get<double>() == 0 && p["sd"].is_number() && p["sd"].get<double>() == 0;
      row.push_back(same                          ? "identical on every seed"
                    : p["exceeds"].is_boolean() ? (p["exceeds"].get<bool>() ? "exceeds the spread" : "within the spread")
                                                : "one seed");
    }
    rows.push_back(row);
  }
  return rows;
}

// The settings this invocation's runs used (a quick or short report describes its own, not the full study's).
std::string settings_line(const json& res, bool markdown) {
  if (!res.contains("settings")) return "";
  const json& s = res["settings"];
  auto v = [&](const char* k) { return s[k].is_number() ? std::to_string(s[k].get<int64_t>()) : std::string("?"); };
  const std::string b = markdown ? "**" : "";
  std::string t = "Budget preset " + b + s["preset"].get<std::string>() + b;
  if (!s["label"].get<std::string>().empty()) t += ", " + s["label"].get<std::string>();
  t += ". Settings: " + v("variants") + " variants, width " + v("width") + ", " + v("image_size") + "x" + v("image_size") + " images, batch " +
       v("batch_size") + ", " + v("steps") + " steps (validated every " + v("val_every") + " on " + v("val_size") + " images), seeds";
  for (const json& x : s["seeds"]) t += " " + std::to_string(x.get<int64_t>());
  return t + ".";
}

// Bucket table at one (earlier) budget.
std::vector<std::vector<std::string>> budget_table(const json& res, int64_t budget, const std::string& pm) {
  std::vector<std::vector<std::string>> rows = {{"variant", "mIoU", "large", "medium", "small", "thin", "line class", "pixel acc."}};
  for (const json& v : res["variants"]) {
    const json& s = v["summary"][std::to_string(budget)];
    rows.push_back({v["name"], mean_sd(s["miou"], pm), mean_sd(s["large"], pm), mean_sd(s["medium"], pm), mean_sd(s["small"], pm),
                    mean_sd(s["thin"], pm), mean_sd(s["line"], pm), mean_sd(s["pixel_accuracy"], pm)});
  }
  return rows;
}

std::string md_table(const std::vector<std::vector<std::string>>& rows) {
  std::string s;
  for (size_t i = 0; i < rows.size(); ++i) {
    s += "|";
    for (const auto& c : rows[i]) s += " " + c + " |";
    s += "\n";
    if (i == 0) {
      s += "|";
      for (size_t k = 0; k < rows[0].size(); ++k) s += k ? "---:|" : "---|";
      s += "\n";
    }
  }
  return s;
}

std::string esc(const std::string& t) {
  std::string s;
  for (char ch : t) s += ch == '<' ? "&lt;" : ch == '>' ? "&gt;" : ch == '&' ? "&amp;" : ch == '"' ? "&quot;" : std::string(1, ch);
  return s;
}

std::string html_table(const std::vector<std::vector<std::string>>& rows) {
  std::string s = "<table>\n";
  for (size_t i = 0; i < rows.size(); ++i) {
    s += "<tr>";
    for (const auto& c : rows[i]) s += (i ? "<td>" : "<th>") + esc(c) + (i ? "</td>" : "</th>");
    s += "</tr>\n";
  }
  return s + "</table>\n";
}

std::string base64(const std::string& bytes) {
  static const char* tab = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  size_t i = 0;
  for (; i + 2 < bytes.size(); i += 3) {
    const uint32_t v = uint32_t(uint8_t(bytes[i])) << 16 | uint32_t(uint8_t(bytes[i + 1])) << 8 | uint8_t(bytes[i + 2]);
    for (int k = 3; k >= 0; --k) out += tab[(v >> (6 * k)) & 63];
  }
  if (i < bytes.size()) {  // 1 or 2 bytes left: pad with '='
    const bool two = i + 1 < bytes.size();
    const uint32_t v = uint32_t(uint8_t(bytes[i])) << 16 | (two ? uint32_t(uint8_t(bytes[i + 1])) << 8 : 0u);
    out += tab[(v >> 18) & 63];
    out += tab[(v >> 12) & 63];
    out += two ? tab[(v >> 6) & 63] : '=';
    out += '=';
  }
  return out;
}

std::string data_uri(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  CL_CHECK(f, "compare: cannot read " << path << " for report.html");
  return "data:image/png;base64," + base64(std::string(std::istreambuf_iterator<char>(f), {}));
}

// One line naming the variants that converged and those that did not (the last-fifth rule).
std::string convergence_line(const json& res) {
  std::string yes, no, from;
  for (const json& v : res["variants"]) {
    if (!v.contains("convergence") || !v["convergence"]["converged"].is_boolean()) continue;
    if (v["convergence"]["from_step"].is_number()) from = std::to_string(v["convergence"]["from_step"].get<int64_t>());
    std::string& list = v["convergence"]["converged"].get<bool>() ? yes : no;
    list += (list.empty() ? "" : ", ") + v["name"].get<std::string>();
  }
  const double th = res.contains("converged_gain") ? res["converged_gain"].get<double>() : 0.5;
  std::string t = "Convergence (mean validation mIoU gain from step " + from + " to step " +
                  std::to_string(res["budgets"].back().get<int64_t>()) + ", the last fifth of the schedule, below " + num(th, 1) +
                  " points): converged: " + (yes.empty() ? "none" : yes) + "; NOT converged: " + (no.empty() ? "none" : no) + ".";
  if (!no.empty()) t += " The last budget's numbers of the variants not converged are not final values.";
  return t;
}

std::string erf_caption(const json& e) {
  return "r50 " + num(e["r50"], 1) + ", r95 " + num(e["r95"], 1) + ", zeros in RF box " +
         std::to_string(e["zero_pixels"].get<int64_t>()) + "/" + std::to_string(e["rf_pixels"].get<int64_t>());
}

}  // namespace

std::string compare_svg(const json& res, const std::string& metric) {
  const bool miou = metric == "miou";
  const double W = 720, H = 320, L = 56, R = 150, T = 30, B = 42;  // plot area [L, W-R] x [T, H-B]
  double xmax = double(res["budgets"].back().get<int64_t>()), ymax = miou ? 10 : 0.1;
  const char* key = miou ? "curve" : "loss";
  for (const json& v : res["variants"])
    for (const json& r : v["runs"])
      for (const json& p : r[key])
        if (p[1].is_number()) ymax = std::max(ymax, p[1].get<double>());
  ymax = miou ? std::ceil(ymax / 10) * 10 : std::ceil(ymax * 5) / 5;
  auto X = [&](double x) { return num(L + (W - L - R) * x / xmax, 1); };
  auto Y = [&](double y) { return num(H - B - (H - T - B) * y / ymax, 1); };
  std::string s = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" + num(W, 0) + "\" height=\"" + num(H, 0) +
                  "\" viewBox=\"0 0 " + num(W, 0) + " " + num(H, 0) + "\" font-family=\"sans-serif\" font-size=\"11\">\n";
  s += "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n";
  s += "<text x=\"" + num(L, 0) + "\" y=\"18\" font-size=\"13\">" +
       std::string(miou ? "validation mIoU (%) vs step" : "training loss (running average) vs step") +
       ": thick = mean over seeds, thin = each seed</text>\n";
  for (int i = 0; i <= 5; ++i) {  // grid and ticks
    const double y = ymax * i / 5, x = xmax * i / 5;
    s += "<line x1=\"" + X(0) + "\" x2=\"" + X(xmax) + "\" y1=\"" + Y(y) + "\" y2=\"" + Y(y) + "\" stroke=\"#ddd\"/>\n";
    s += "<text x=\"" + num(L - 6, 0) + "\" y=\"" + Y(y) + "\" text-anchor=\"end\" dy=\"4\">" + num(y, miou ? 0 : 1) + "</text>\n";
    s += "<text x=\"" + X(x) + "\" y=\"" + num(H - B + 16, 0) + "\" text-anchor=\"middle\">" + num(x, 0) + "</text>\n";
  }
  for (const json& b : res["budgets"])
    s += "<line x1=\"" + X(b.get<double>()) + "\" x2=\"" + X(b.get<double>()) + "\" y1=\"" + Y(0) + "\" y2=\"" + Y(ymax) +
         "\" stroke=\"#999\" stroke-dasharray=\"4 3\"/>\n";
  s += "<text x=\"" + X(xmax / 2) + "\" y=\"" + num(H - 6, 0) + "\" text-anchor=\"middle\">step (dashed: budgets)</text>\n";
  size_t vi = 0;
  for (const json& v : res["variants"]) {
    std::map<int64_t, std::pair<double, int>> mean;  // step -> (sum, count) over seeds
    for (const json& r : v["runs"]) {
      std::string pts;
      for (const json& p : r[key])
        if (p[1].is_number()) {
          pts += X(p[0].get<double>()) + "," + Y(p[1].get<double>()) + " ";
          auto& m = mean[p[0].get<int64_t>()];
          m.first += p[1].get<double>(), ++m.second;
        }
      s += "<polyline fill=\"none\" stroke=\"" + std::string(colour(vi)) + "\" stroke-opacity=\"0.35\" stroke-width=\"1\" points=\"" + pts + "\"/>\n";
    }
    std::string pts;
    for (const auto& [step, m] : mean)
      if (m.second == int(v["runs"].size())) pts += X(double(step)) + "," + Y(m.first / m.second) + " ";
    s += "<polyline fill=\"none\" stroke=\"" + std::string(colour(vi)) + "\" stroke-width=\"2.5\" points=\"" + pts + "\"/>\n";
    const double ly = T + 16 * double(vi) + 8;
    s += "<line x1=\"" + num(W - R + 12, 0) + "\" x2=\"" + num(W - R + 36, 0) + "\" y1=\"" + num(ly, 0) + "\" y2=\"" + num(ly, 0) +
         "\" stroke=\"" + colour(vi) + "\" stroke-width=\"2.5\"/>\n";
    s += "<text x=\"" + num(W - R + 42, 0) + "\" y=\"" + num(ly + 4, 0) + "\">" + esc(v["name"]) + "</text>\n";
    ++vi;
  }
  return s + "</svg>\n";
}

std::string compare_text(const json& res) {
  std::string t = "experiment " + res["experiment"].get<std::string>() + (res["quick"].get<bool>() ? " (quick)" : "") + ": " +
                  std::to_string(res["seeds"].size()) + " seeds, budgets";
  for (const json& b : res["budgets"]) t += " " + std::to_string(b.get<int64_t>());
  t += " steps; IoU in %, mean +- sd over seeds\n";
  t += settings_line(res, false) + "\n";
  t += format_table(main_table(res, " +- "));
  t += convergence_line(res) + "\n";
  t += "\ngridding artefacts, in % (" + res["artefact_metric"].get<std::string>() + "):\n";
  t += format_table(artefact_table(res, " +- "));
  t += "\npaired differences in points (" + res["rule"].get<std::string>() + "):\n";
  t += format_table(pair_table(res));
  t += "time: " + time_text(res) + "\n";
  return t;
}

namespace {

// The picture kinds shown per variant, each as one row with every variant side by side.
struct PictureRow {
  const char* key;
  const char* title;
};
const PictureRow kPictureRows[] = {
    {"coverage", "Coverage of the studied stack (paths from the centre output pixel to each stack input pixel; red: no path), every map on one common scale, so receptive-field sizes compare by eye"},
    {"erf_initial", "Effective receptive field at initialisation (stack input, N(0,1) images; log scale, red: exact zero inside the RF box)"},
    {"erf_trained", "Effective receptive field of the trained first-seed run (image input, validation images)"},
    {"artefact", "Most affected validation image (first seed): image | label | prediction | its most affected class-probability map | that map's grid component (blue -, red +, scaled to its own maximum: read its size from the share)"},
    {"predictions", "Validation predictions of the first seed at the last budget (image | label | prediction)"},
};

std::string picture_caption(const json& v, const std::string& key) {
  if (key == "coverage") return holes(v["coverage_stack"]) + " holes";
  if (key == "erf_initial") return erf_caption(v["erf_initial"]);
  if (key == "erf_trained") return erf_caption(v["erf_trained"]);
  if (key == "artefact" && v.contains("artefacts")) {
    const json& w = v["artefacts"]["worst"];
    return "image #" + std::to_string(w["image"].get<int64_t>()) + ", share " + num(100 * w["share"].get<double>(), 2) + "% at r=" +
           std::to_string(w["rate"].get<int64_t>()) + (w.contains("class") ? ", class " + w["class"].get<std::string>() : "");
  }
  return "";
}

}  // namespace

std::string compare_markdown(const json& res) {
  const std::string name = res["experiment"];
  std::string m = "# convlab compare: " + name + (res["quick"].get<bool>() ? " (quick)" : "") + "\n\n";
  if (!res["description"].get<std::string>().empty()) m += res["description"].get<std::string>() + "\n\n";
  m += settings_line(res, true) + "\n\n";
  m += "Experiment file `" + res["file"].get<std::string>() + "`; one run per variant and seed, validated at every budget (";
  for (const json& b : res["budgets"]) m += std::to_string(b.get<int64_t>()) + " ";
  m += "steps): the earlier budgets are the same runs observed part-way (the LR schedule spans the last budget), so they "
       "measure how fast each net learns, the last one where it got to. Pairing: " + res["pairing"].get<std::string>() + ".\n\n";
  m += "## Results (IoU in %, mean ± sd over seeds)\n\n" + md_table(main_table(res, " ± ")) + "\n";
  m += "RF: theoretical receptive field of the whole net (px). Holes: pixels inside the centre output's receptive field "
       "that no path reaches (exact coverage map), at the input of the studied stack and at the image. large / small: mIoU "
       "over pixels of large / small objects; thin: the 1 px lines. Gain in the last fifth: mean validation mIoU gain over "
       "the last fifth of the schedule (converged when below the threshold). Grid energy: the gridding-artefact share in % (below). "
       "Time: wall and CPU seconds per run (training and validation).\n\n" + convergence_line(res) + "\n\n";
  m += "## Gridding artefacts\n\nMetric: " + res["artefact_metric"].get<std::string>() + ". Shown in % (100 = a pure pattern), mean ± sd over seeds.\n\n" +
       md_table(artefact_table(res, " ± ")) + "\n";
  for (const json& b : res["budgets"])
    m += "### After " + std::to_string(b.get<int64_t>()) + " steps\n\n" + md_table(budget_table(res, b, " ± ")) + "\n";
  m += "## Paired differences (points)\n\nRule: " + res["rule"].get<std::string>() + ". **Bold**: exceeds the spread. mIoU at "
       "every budget, the object sizes and the grid-energy share of the class probabilities (in %, first rate) at the "
       "last (results.json has every budget).\n\n";
  auto rows = pair_table(res);
  for (size_t i = 1; i < rows.size(); ++i)
    if (rows[i][6] == "exceeds the spread") rows[i][3] = "**" + rows[i][3] + "**", rows[i][6] = "**" + rows[i][6] + "**";
  m += md_table(rows) + "\n";
  m += "## Learning curves\n\n![validation mIoU](curves_miou.svg)\n\n![training loss](curves_loss.svg)\n\n";
  m += "## Pictures\n\nEach row shows every variant side by side (left to right:";
  for (const json& v : res["variants"]) m += " " + v["name"].get<std::string>();
  m += ").\n\n";
  for (const PictureRow& pr : kPictureRows) {
    std::string line;
    for (const json& v : res["variants"])
      if (v["pictures"].contains(pr.key) && v["pictures"][pr.key].is_string())
        line += "![" + v["name"].get<std::string>() + "](" + v["pictures"][pr.key].get<std::string>() + ") ";
    if (line.empty()) continue;
    m += "**" + std::string(pr.title) + ".**\n\n" + line + "\n\n";
  }
  m += "## Time\n\n" + time_text(res) + "\n";
  return m;
}

std::string compare_html(const json& res, const std::string& dir) {
  // The markdown's content with the same tables; pictures and curves inlined.
  std::string h = "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>convlab compare: " + esc(res["experiment"]) +
                  "</title>\n<style>body{font-family:sans-serif;max-width:1400px;margin:2em auto;padding:0 1em;color:#222}"
                  "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}"
                  "td:first-child,th:first-child{text-align:left}th{background:#f3f3f3}.row{display:flex;gap:10px;"
                  "flex-wrap:nowrap;overflow-x:auto;align-items:flex-start;padding-bottom:6px}.row figure{margin:0;flex:none}"
                  "figcaption{font-size:12px;max-width:260px}img{image-rendering:pixelated}"
                  "tr.up td{background:#d9f2d9}tr.down td{background:#f8d7d7}tr.within td{color:#777}</style>\n"
                  "</head><body>\n";
  h += "<h1>convlab compare: " + esc(res["experiment"]) + (res["quick"].get<bool>() ? " (quick)" : "") + "</h1>\n";
  h += "<p>" + esc(res["description"]) + "</p>\n";
  h += "<p>" + esc(settings_line(res, false)) + " Pairing: " + esc(res["pairing"]) + ". Earlier budgets are the same runs part-way "
       "(learning speed).</p>\n";
  h += "<h2>Results (IoU in %, mean ± sd over seeds)</h2>\n" + html_table(main_table(res, " ± "));
  h += "<p>" + esc(convergence_line(res)) + "</p>\n";
  h += "<h2>Gridding artefacts</h2>\n<p>Metric: " + esc(res["artefact_metric"]) + ". Shown in % (100 = a pure pattern), mean ± sd over seeds.</p>\n" + html_table(artefact_table(res, " ± "));
  for (const json& b : res["budgets"])
    h += "<h3>After " + std::to_string(b.get<int64_t>()) + " steps</h3>\n" + html_table(budget_table(res, b, " ± "));
  h += "<h2>Paired differences (points)</h2>\n<p>Rule: " + esc(res["rule"]) + ". Coloured rows exceed the spread (green: a "
       "higher, red: b higher); grey rows are within it, whatever their sign.</p>\n<table>\n";
  const auto rows = pair_table(res);
  const auto shown = shown_pairs(res);
  for (size_t i = 0; i < rows.size(); ++i) {
    std::string cls;
    if (i > 0) {
      const json& p = *shown[i - 1];
      const bool yes = p["exceeds"].is_boolean() && p["exceeds"].get<bool>();
      cls = yes ? (p["mean"].get<double>() > 0 ? " class=\"up\"" : " class=\"down\"") : " class=\"within\"";
    }
    h += "<tr" + cls + ">";
    for (const auto& c : rows[i]) h += (i ? "<td>" : "<th>") + esc(c) + (i ? "</td>" : "</th>");
    h += "</tr>\n";
  }
  h += "</table>\n<h2>Learning curves</h2>\n" + compare_svg(res, "miou") + compare_svg(res, "loss");
  h += "<h2>Pictures</h2>\n";
  for (const PictureRow& pr : kPictureRows) {
    std::string row;
    for (const json& v : res["variants"])
      if (v["pictures"].contains(pr.key) && v["pictures"][pr.key].is_string())
        row += "<figure><img alt=\"" + esc(v["name"]) + " " + pr.key + "\" src=\"" + data_uri(dir + "/" + v["pictures"][pr.key].get<std::string>()) +
               "\"><figcaption><b>" + esc(v["name"]) + "</b> " + esc(picture_caption(v, pr.key)) + "</figcaption></figure>\n";
    if (!row.empty()) h += "<h3>" + esc(pr.title) + "</h3>\n<div class=\"row\">\n" + row + "</div>\n";
  }
  h += "<h2>Time</h2>\n<p>" + esc(time_text(res)) + "</p>\n</body></html>\n";
  return h;
}

}  // namespace convlab

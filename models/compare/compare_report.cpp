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

std::string time_per_run(const json& v, const char* key) {
  double sum = 0;
  int64_t n = 0;
  for (const json& r : v["runs"])
    if (r.contains("timing") && r["timing"].is_object() && r["timing"].contains(key) && r["timing"][key].is_number())
      sum += r["timing"][key].get<double>(), ++n;
  return n ? num(sum / double(n), sum / double(n) < 10 ? 1 : 0) + " s" : "n/a";
}

std::string holes(const json& cov) {
  return std::to_string(cov["holes"].get<int64_t>()) + " (" + num(100 * cov["hole_share"].get<double>(), 0) + "%)";
}

// The main table: one row per variant; mIoU at every budget, the object-size buckets at the last budget.
std::vector<std::vector<std::string>> main_table(const json& res, const std::string& pm) {
  const std::string last = std::to_string(res["budgets"].back().get<int64_t>());
  std::vector<std::string> head = {"variant", "params", "RF", "holes at stack input"};
  for (const json& b : res["budgets"]) head.push_back("mIoU @" + std::to_string(b.get<int64_t>()));
  for (const char* m : {"large", "small", "thin"}) head.push_back(std::string(m) + " @" + last);
  head.insert(head.end(), {"wall / run", "CPU / run"});
  std::vector<std::vector<std::string>> rows = {head};
  for (const json& v : res["variants"]) {
    std::vector<std::string> row = {v["name"], std::to_string(v["parameters"].get<int64_t>()), num(v["rf"], 0),
                                    holes(v["coverage_stack"])};
    for (const json& b : res["budgets"]) row.push_back(mean_sd(v["summary"][std::to_string(b.get<int64_t>())]["miou"], pm));
    for (const char* m : {"large", "small", "thin"}) row.push_back(mean_sd(v["summary"][last][m], pm));
    row.push_back(time_per_run(v, "wall_s"));
    row.push_back(time_per_run(v, "cpu_s"));
    rows.push_back(row);
  }
  return rows;
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

// The difference sentences, grouped by budget: mIoU for every pair, then the object-size buckets.
std::vector<std::string> sentences(const json& res, bool buckets) {
  std::vector<std::string> out;
  for (const json& p : res["pairs"])
    if ((p["metric"] == "miou") != buckets) out.push_back(p["sentence"]);
  return out;
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
  t += format_table(main_table(res, " +- "));
  t += "\npaired differences (" + res["rule"].get<std::string>() + "):\n";
  for (const auto& s : sentences(res, false)) t += "  " + s + "\n";
  for (const auto& s : sentences(res, true))
    if (s.find("after " + std::to_string(res["budgets"].back().get<int64_t>()) + " steps") != std::string::npos) t += "  " + s + "\n";
  const json& tm = res["timing"];
  t += "time: " + num(tm["wall_s"], 0) + " s wall, " + num(tm["cpu_s"], 0) + " s CPU (" + std::to_string(tm["runs_trained"].get<int64_t>()) +
       " of " + std::to_string(tm["runs"].get<int64_t>()) + " runs trained now; estimated " + num(tm["estimated_s"], 0) + " s)\n";
  return t;
}

std::string compare_markdown(const json& res) {
  const std::string name = res["experiment"];
  std::string m = "# convlab compare: " + name + (res["quick"].get<bool>() ? " (quick)" : "") + "\n\n";
  if (!res["description"].get<std::string>().empty()) m += res["description"].get<std::string>() + "\n\n";
  m += "Experiment file `" + res["file"].get<std::string>() + "`; seeds";
  for (const json& s : res["seeds"]) m += " " + std::to_string(s.get<int64_t>());
  m += "; one run per variant and seed, validated at every budget (";
  for (const json& b : res["budgets"]) m += std::to_string(b.get<int64_t>()) + " ";
  m += "steps): the earlier budgets are the same runs observed part-way (the LR schedule spans the last budget), so they "
       "measure how fast each net learns, the last one where it got to. Pairing: " + res["pairing"].get<std::string>() + ".\n\n";
  m += "## Results (IoU in %, mean ± sd over seeds)\n\n" + md_table(main_table(res, " ± ")) + "\n";
  m += "RF: theoretical receptive field of the whole net (px). Holes: input pixels of the studied stack (from the layer "
       "after the stem) inside the centre output's receptive field that no path reaches (exact coverage map); the "
       "dilation-1 stem fills them at the image input. large / small: mIoU over pixels of large / small objects; thin: "
       "the 1 px lines. Time: wall and CPU seconds per run (training and validation).\n\n";
  for (const json& b : res["budgets"])
    m += "### After " + std::to_string(b.get<int64_t>()) + " steps\n\n" + md_table(budget_table(res, b, " ± ")) + "\n";
  m += "## Paired differences\n\nRule: " + res["rule"].get<std::string>() + ".\n\n";
  for (const auto& s : sentences(res, false)) m += "- " + s + "\n";
  m += "\nBy object size:\n\n";
  for (const auto& s : sentences(res, true)) m += "- " + s + "\n";
  m += "\n## Learning curves\n\n![validation mIoU](curves_miou.svg)\n\n![training loss](curves_loss.svg)\n\n";
  m += "## Pictures per variant\n\nCoverage: paths from the centre output pixel to each input pixel of the stack (red: "
       "no path). ERF (log scale, red: exact zero inside the RF box): initial weights at the stack input (N(0,1) "
       "images), and the trained seed-" + std::to_string(res["seeds"][0].get<int64_t>()) + " run at the image input "
       "(validation images). Predictions: validation images, labels, predictions at the last budget.\n\n";
  for (const json& v : res["variants"]) {
    const json& p = v["pictures"];
    m += "### " + v["name"].get<std::string>() + "\n\n![coverage](" + p["coverage"].get<std::string>() + ") ![ERF initial](" +
         p["erf_initial"].get<std::string>() + ") ![ERF trained](" + p["erf_trained"].get<std::string>() + ")\n\n";
    m += "ERF initial: " + erf_caption(v["erf_initial"]) + "; trained: " + erf_caption(v["erf_trained"]) + ".\n\n";
    if (p["predictions"].is_string()) m += "![predictions](" + p["predictions"].get<std::string>() + ")\n\n";
  }
  const json& tm = res["timing"];
  m += "## Time\n\n" + num(tm["wall_s"], 0) + " s wall, " + num(tm["cpu_s"], 0) + " s CPU for this invocation (" +
       std::to_string(tm["runs_trained"].get<int64_t>()) + " of " + std::to_string(tm["runs"].get<int64_t>()) +
       " runs trained; runs finished earlier are reused); estimated beforehand: " + num(tm["estimated_s"], 0) + " s.\n";
  return m;
}

std::string compare_html(const json& res, const std::string& dir) {
  // The markdown's content with the same tables; pictures and curves inlined.
  std::string h = "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>convlab compare: " + esc(res["experiment"]) +
                  "</title>\n<style>body{font-family:sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}"
                  "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}"
                  "td:first-child,th:first-child{text-align:left}th{background:#f3f3f3}.pics{display:flex;gap:12px;"
                  "flex-wrap:wrap;align-items:flex-start}.pics figure{margin:0}figcaption{font-size:12px;max-width:320px}"
                  "img{image-rendering:pixelated;max-width:320px}li{margin:3px 0}.yes{color:#060}.no{color:#777}</style>\n"
                  "</head><body>\n";
  h += "<h1>convlab compare: " + esc(res["experiment"]) + (res["quick"].get<bool>() ? " (quick)" : "") + "</h1>\n";
  h += "<p>" + esc(res["description"]) + "</p>\n";
  h += "<p>Seeds";
  for (const json& s : res["seeds"]) h += " " + std::to_string(s.get<int64_t>());
  h += "; budgets";
  for (const json& b : res["budgets"]) h += " " + std::to_string(b.get<int64_t>());
  h += " steps (earlier budgets: the same runs part-way, i.e. learning speed). Pairing: " + esc(res["pairing"]) + ".</p>\n";
  h += "<h2>Results (IoU in %, mean ± sd over seeds)</h2>\n" + html_table(main_table(res, " ± "));
  for (const json& b : res["budgets"])
    h += "<h3>After " + std::to_string(b.get<int64_t>()) + " steps</h3>\n" + html_table(budget_table(res, b, " ± "));
  h += "<h2>Paired differences</h2>\n<p>Rule: " + esc(res["rule"]) + ".</p>\n<ul>\n";
  for (const json& p : res["pairs"]) {
    const bool yes = p["exceeds"].is_boolean() && p["exceeds"].get<bool>();
    h += "<li class=\"" + std::string(yes ? "yes" : "no") + "\">" + esc(p["sentence"]) + "</li>\n";
  }
  h += "</ul>\n<h2>Learning curves</h2>\n" + compare_svg(res, "miou") + compare_svg(res, "loss");
  h += "<h2>Pictures per variant</h2>\n<p>Coverage of the stack (red: no path); ERF at initialisation (stack input, "
       "N(0,1) images) and trained (image input, validation images), log scale, red = exact zero inside the RF box; "
       "predictions of the first seed at the last budget (image | label | prediction).</p>\n";
  for (const json& v : res["variants"]) {
    const json& p = v["pictures"];
    h += "<h3>" + esc(v["name"]) + "</h3>\n<div class=\"pics\">\n";
    h += "<figure><img alt=\"coverage\" src=\"" + data_uri(dir + "/" + p["coverage"].get<std::string>()) +
         "\"><figcaption>coverage at " + esc(v["stack_path"]) + " input: " + holes(v["coverage_stack"]) + " holes</figcaption></figure>\n";
    h += "<figure><img alt=\"ERF initial\" src=\"" + data_uri(dir + "/" + p["erf_initial"].get<std::string>()) +
         "\"><figcaption>ERF, initial weights: " + esc(erf_caption(v["erf_initial"])) + "</figcaption></figure>\n";
    h += "<figure><img alt=\"ERF trained\" src=\"" + data_uri(dir + "/" + p["erf_trained"].get<std::string>()) +
         "\"><figcaption>ERF, trained: " + esc(erf_caption(v["erf_trained"])) + "</figcaption></figure>\n";
    if (p["predictions"].is_string())
      h += "<figure><img alt=\"predictions\" src=\"" + data_uri(dir + "/" + p["predictions"].get<std::string>()) +
           "\"><figcaption>validation predictions</figcaption></figure>\n";
    h += "</div>\n";
  }
  const json& tm = res["timing"];
  h += "<h2>Time</h2>\n<p>" + num(tm["wall_s"], 0) + " s wall, " + num(tm["cpu_s"], 0) + " s CPU for this invocation (" +
       std::to_string(tm["runs_trained"].get<int64_t>()) + " of " + std::to_string(tm["runs"].get<int64_t>()) +
       " runs trained); estimated beforehand: " + num(tm["estimated_s"], 0) + " s.</p>\n</body></html>\n";
  return h;
}

}  // namespace convlab

// models/train/curves.cpp: see curves.h.
#include "models/train/curves.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <sstream>

namespace convlab {

using nlohmann::json;

std::string xml_escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      default: out += c;
    }
  }
  return out;
}

std::vector<CurveSeries> curve_series(const std::vector<json>& records, const std::string& metric) {
  std::vector<CurveSeries> out;
  auto add = [&](const std::string& name, double step, double v) {
    if (!std::isfinite(v)) return;
    auto it = std::find_if(out.begin(), out.end(), [&](const CurveSeries& s) { return s.name == name; });
    if (it == out.end()) it = out.insert(out.end(), CurveSeries{name, {}});
    it->points.emplace_back(step, v);
  };
  for (const json& r : records) {
    if (!r.is_object() || !r.contains("step") || !r["step"].is_number()) continue;
    const double step = r["step"].get<double>();
    const bool train = r.value("split", "") == "train";
    const std::string prefix = train ? "train " : "val ";
    for (const char* k : {"loss", "loss_d", "loss_g"})
      if (r.contains(k) && r[k].is_number()) add(prefix + k, step, r[k].get<double>());
    if (!train && !metric.empty() && r.contains(metric) && r[metric].is_number())
      add(prefix + (metric == "miou" ? "mIoU" : metric), step, r[metric].get<double>());
  }
  return out;
}

namespace {

// Tick positions: steps of 1, 2 or 5 times a power of ten, about `n` of them over [lo, hi].
std::vector<double> nice_ticks(double lo, double hi, int n) {
  const double raw = (hi - lo) / n;
  const double p = std::pow(10.0, std::floor(std::log10(raw)));
  double step = 10 * p;
  for (double m : {1.0, 2.0, 5.0})
    if (m * p >= raw) {
      step = m * p;
      break;
    }
  std::vector<double> t;
  for (double v = std::ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) t.push_back(std::abs(v) < step * 1e-9 ? 0 : v);
  return t;
}

std::string num(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.4g", v);
  return buf;
}

std::string coord(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2f", v);
  return buf;
}

const char* kColors[] = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b"};

// One panel: frame, ticks and grid, a polyline per series, the legend at its top right.
void panel(std::ostringstream& os, const std::vector<const CurveSeries*>& series, const std::vector<int>& colors,
           double x0, double y0, double w, double h, const std::string& ylabel) {
  os << "<g class=\"panel\">\n";
  os << "<rect x=\"" << coord(x0) << "\" y=\"" << coord(y0) << "\" width=\"" << coord(w) << "\" height=\"" << coord(h)
     << "\" fill=\"none\" stroke=\"#333\"/>\n";
  os << "<text x=\"" << coord(x0 - 48) << "\" y=\"" << coord(y0 + h / 2) << "\" transform=\"rotate(-90 " << coord(x0 - 48)
     << " " << coord(y0 + h / 2) << ")\" text-anchor=\"middle\">" << xml_escape(ylabel) << "</text>\n";
  double xmin = INFINITY, xmax = -INFINITY, ymin = INFINITY, ymax = -INFINITY;
  for (const CurveSeries* s : series)
    for (const auto& [x, y] : s->points) {
      xmin = std::min(xmin, x), xmax = std::max(xmax, x), ymin = std::min(ymin, y), ymax = std::max(ymax, y);
    }
  if (!(xmin <= xmax)) {
    os << "<text x=\"" << coord(x0 + w / 2) << "\" y=\"" << coord(y0 + h / 2) << "\" text-anchor=\"middle\">no data yet</text>\n</g>\n";
    return;
  }
  if (xmax - xmin < 1) xmax = xmin + 1;
  if (ymax - ymin < 1e-12) ymin -= 0.5 * std::max(std::abs(ymin), 1e-3), ymax += 0.5 * std::max(std::abs(ymax), 1e-3);
  const double pad = 0.05 * (ymax - ymin);
  ymin -= pad, ymax += pad;
  auto X = [&](double x) { return x0 + (x - xmin) / (xmax - xmin) * w; };
  auto Y = [&](double y) { return y0 + h - (y - ymin) / (ymax - ymin) * h; };
  for (double t : nice_ticks(xmin, xmax, 6)) {
    os << "<line x1=\"" << coord(X(t)) << "\" y1=\"" << coord(y0 + h) << "\" x2=\"" << coord(X(t)) << "\" y2=\"" << coord(y0 + h + 5)
       << "\" stroke=\"#333\"/><text x=\"" << coord(X(t)) << "\" y=\"" << coord(y0 + h + 18) << "\" text-anchor=\"middle\">"
       << num(t) << "</text>\n";
  }
  for (double t : nice_ticks(ymin, ymax, 5)) {
    os << "<line x1=\"" << coord(x0 - 5) << "\" y1=\"" << coord(Y(t)) << "\" x2=\"" << coord(x0 + w) << "\" y2=\"" << coord(Y(t))
       << "\" stroke=\"#ddd\"/><text x=\"" << coord(x0 - 8) << "\" y=\"" << coord(Y(t) + 4) << "\" text-anchor=\"end\">"
       << num(t) << "</text>\n";
  }
  for (size_t i = 0; i < series.size(); ++i) {
    const char* c = kColors[colors[i] % 6];
    os << "<polyline class=\"series\" fill=\"none\" stroke=\"" << c << "\" stroke-width=\"1.5\" points=\"";
    for (const auto& [x, y] : series[i]->points) os << coord(X(x)) << "," << coord(Y(y)) << " ";
    os << "\"/>\n";
    if (series[i]->points.size() == 1)
      os << "<circle cx=\"" << coord(X(series[i]->points[0].first)) << "\" cy=\"" << coord(Y(series[i]->points[0].second))
         << "\" r=\"3\" fill=\"" << c << "\"/>\n";
    const double ly = y0 + 14 + 16 * double(i);
    os << "<g class=\"legend\"><line x1=\"" << coord(x0 + w - 150) << "\" y1=\"" << coord(ly - 4) << "\" x2=\"" << coord(x0 + w - 130)
       << "\" y2=\"" << coord(ly - 4) << "\" stroke=\"" << c << "\" stroke-width=\"2\"/><text x=\"" << coord(x0 + w - 125)
       << "\" y=\"" << coord(ly) << "\">" << xml_escape(series[i]->name) << "</text></g>\n";
  }
  os << "</g>\n";
}

bool is_loss(const std::string& name) {
  for (const char* k : {" loss", " loss_d", " loss_g"}) {
    const std::string s(k);
    if (name.size() >= s.size() && name.compare(name.size() - s.size(), s.size(), s) == 0) return true;
  }
  return false;
}

}  // namespace

std::string curves_svg(const std::vector<CurveSeries>& series, const std::string& title) {
  const double W = 720, H = 560, left = 70, top = 40, pw = 620, ph = 210, gap = 60;
  std::vector<const CurveSeries*> losses, metrics;
  std::vector<int> lc, mc;
  for (size_t i = 0; i < series.size(); ++i) {
    (is_loss(series[i].name) ? losses : metrics).push_back(&series[i]);
    (is_loss(series[i].name) ? lc : mc).push_back(int(i));
  }
  std::ostringstream os;
  os << "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
     << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << W << "\" height=\"" << H << "\" viewBox=\"0 0 " << W << " " << H
     << "\" font-family=\"sans-serif\" font-size=\"12\">\n"
     << "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
     << "<text x=\"" << W / 2 << "\" y=\"22\" text-anchor=\"middle\" font-size=\"15\">" << xml_escape(title) << "</text>\n";
  panel(os, losses, lc, left, top, pw, ph, "loss");
  panel(os, metrics, mc, left, top + ph + gap, pw, ph, "metric");
  os << "<text x=\"" << left + pw / 2 << "\" y=\"" << H - 8 << "\" text-anchor=\"middle\">step</text>\n</svg>\n";
  return os.str();
}

std::string run_index_html(const std::string& title, const std::string& picture, const std::string& summary_json) {
  std::ostringstream os;
  os << "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>" << xml_escape(title) << "</title></head>\n<body>\n"
     << "<h1>" << xml_escape(title) << "</h1>\n<p><img src=\"curves.svg\" alt=\"training curves\"></p>\n";
  if (!picture.empty())
    os << "<h2>" << xml_escape(picture) << "</h2>\n<p><img src=\"" << xml_escape(picture) << "\" alt=\"latest validation\"></p>\n";
  if (!summary_json.empty())
    os << "<h2><a href=\"summary.json\">summary.json</a></h2>\n<pre>" << xml_escape(summary_json) << "</pre>\n";
  os << "<p><a href=\"metrics.jsonl\">metrics.jsonl</a> <a href=\"config.json\">config.json</a></p>\n</body></html>\n";
  return os.str();
}

}  // namespace convlab

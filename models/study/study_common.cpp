// models/study/study_common.cpp: text tables and heatmaps shared by the study commands (see study.h).
#include <algorithm>
#include <cmath>
#include <cstdio>

#include "data/picture.h"
#include "models/study/study.h"

namespace convlab {

std::string format_table(const std::vector<std::vector<std::string>>& rows) {
  std::vector<size_t> width;
  for (const auto& r : rows)
    for (size_t i = 0; i < r.size(); ++i) {
      if (width.size() <= i) width.push_back(0);
      width[i] = std::max(width[i], r[i].size());
    }
  std::string s;
  for (const auto& r : rows) {
    std::string line;
    for (size_t i = 0; i < r.size(); ++i) {
      line += r[i];
      if (i + 1 < r.size()) line += std::string(width[i] - r[i].size() + 2, ' ');
    }
    while (!line.empty() && line.back() == ' ') line.pop_back();
    s += "  " + line + "\n";
  }
  return s;
}

std::string fmt(double v, int digits) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*g", digits, v);
  return buf;
}

namespace {

void paint(RgbImage& img, int64_t y, int64_t x, int64_t cell, std::array<uint8_t, 3> c) {
  for (int64_t dy = 0; dy < cell; ++dy)
    for (int64_t dx = 0; dx < cell; ++dx) std::copy(c.begin(), c.end(), img.at(y * cell + dy, x * cell + dx));
}

}  // namespace

int64_t cell_size(int64_t H, int64_t W) { return std::clamp<int64_t>(512 / std::max<int64_t>({H, W, 1}), 1, 32); }

RgbImage heatmap(const std::vector<double>& v, int64_t H, int64_t W, std::array<uint8_t, 3> zero, int64_t cell) {
  double mx = 0;
  for (double x : v) mx = std::max(mx, x);
  RgbImage img(W * cell, H * cell);
  for (int64_t y = 0; y < H; ++y)
    for (int64_t x = 0; x < W; ++x) {
      const double t = v[static_cast<size_t>(y * W + x)];
      paint(img, y, x, cell, t == 0 ? zero : ramp_colour(mx > 0 ? t / mx : 0));
    }
  return img;
}

RgbImage titled_heatmap(const std::vector<double>& v, int64_t H, int64_t W, std::array<uint8_t, 3> zero,
                        const std::string& zero_name, const std::string& title) {
  const RgbImage map = heatmap(v, H, W, zero, cell_size(H, W));
  double mx = 0;
  for (double x : v) mx = std::max(mx, x);
  ColourBar bar;
  bar.min_label = "0";
  bar.max_label = fmt(mx, 6);
  bar.extra = {{zero_name, zero}};
  return annotate_map(map, title, bar, text_scale_for(map.W));
}

RgbImage diverging_heatmap(const std::vector<double>& v, int64_t H, int64_t W, int64_t cell) {
  double mx = 0;
  for (double x : v) mx = std::max(mx, std::fabs(x));
  RgbImage img(W * cell, H * cell);
  for (int64_t y = 0; y < H; ++y)
    for (int64_t x = 0; x < W; ++x) {
      const double t = v[static_cast<size_t>(y * W + x)];
      std::array<uint8_t, 3> c{215, 215, 215};
      if (t != 0) {
        const double a = 0.25 + 0.75 * std::fabs(t) / mx;  // even a tiny entry is visibly non-grey
        const auto fade = [&](double full) { return static_cast<uint8_t>(std::lround(255 * (1 - a) + full * a)); };
        c = t > 0 ? std::array<uint8_t, 3>{fade(178), fade(24), fade(43)} : std::array<uint8_t, 3>{fade(33), fade(102), fade(172)};
      }
      paint(img, y, x, cell, c);
    }
  return img;
}

}  // namespace convlab

// models/study/study_common.cpp: text tables and heatmaps shared by the study commands (see study.h).
#include <algorithm>
#include <cmath>
#include <cstdio>

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

// Five stops of a perceptually ordered dark-blue -> teal -> green -> yellow ramp (no red in it, so the
// red "zero" colour of the coverage maps stands out).
std::array<uint8_t, 3> ramp(double t) {
  static const double stops[5][3] = {{48, 18, 84}, {59, 82, 139}, {33, 145, 140}, {94, 201, 98}, {253, 231, 37}};
  t = std::clamp(t, 0.0, 1.0) * 4;
  const int i = std::min(3, static_cast<int>(t));
  const double f = t - i;
  std::array<uint8_t, 3> c{};
  for (int k = 0; k < 3; ++k) c[static_cast<size_t>(k)] = static_cast<uint8_t>(std::lround(stops[i][k] * (1 - f) + stops[i + 1][k] * f));
  return c;
}

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
      paint(img, y, x, cell, t == 0 ? zero : ramp(mx > 0 ? t / mx : 0));
    }
  return img;
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

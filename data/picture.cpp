// data/picture.cpp: see picture.h. The font is convlab's own 5x7 design, one string per character ('#' on,
// '.' off; rows left to right, top first), parsed once into bit rows.
#include "data/picture.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"

namespace convlab {

namespace {

constexpr int kFirst = 32, kLast = 126;

using GlyphTable = std::array<std::array<uint8_t, kGlyphH>, kLast - kFirst + 1>;

GlyphTable parse_font() {
  static const char* const kArt[kLast - kFirst + 1] = {
      /*   */ "..... ..... ..... ..... ..... ..... .....",
      /* ! */ "..#.. ..#.. ..#.. ..#.. ..#.. ..... ..#..",
      /* " */ ".#.#. .#.#. ..... ..... ..... ..... .....",
      /* # */ ".#.#. .#.#. ##### .#.#. ##### .#.#. .#.#.",
      /* $ */ "..#.. .#### #.#.. .###. ..#.# ####. ..#..",
      /* % */ "##... ##..# ...#. ..#.. .#... #..## ...##",
      /* & */ ".##.. #..#. #.#.. .#... #.#.# #..#. .##.#",
      /* ' */ "..#.. ..#.. ..... ..... ..... ..... .....",
      /* ( */ "...#. ..#.. .#... .#... .#... ..#.. ...#.",
      /* ) */ ".#... ..#.. ...#. ...#. ...#. ..#.. .#...",
      /* * */ "..... ..#.. #.#.# .###. #.#.# ..#.. .....",
      /* + */ "..... ..#.. ..#.. ##### ..#.. ..#.. .....",
      /* , */ "..... ..... ..... ..... .##.. ..#.. .#...",
      /* - */ "..... ..... ..... ##### ..... ..... .....",
      /* . */ "..... ..... ..... ..... ..... .##.. .##..",
      /* / */ "..... ....# ...#. ..#.. .#... #.... .....",
      /* 0 */ ".###. #...# #..## #.#.# ##..# #...# .###.",
      /* 1 */ "..#.. .##.. ..#.. ..#.. ..#.. ..#.. .###.",
      /* 2 */ ".###. #...# ....# ...#. ..#.. .#... #####",
      /* 3 */ "##### ...#. ..#.. ...#. ....# #...# .###.",
      /* 4 */ "...#. ..##. .#.#. #..#. ##### ...#. ...#.",
      /* 5 */ "##### #.... ####. ....# ....# #...# .###.",
      /* 6 */ "..##. .#... #.... ####. #...# #...# .###.",
      /* 7 */ "##### ....# ...#. ..#.. .#... .#... .#...",
      /* 8 */ ".###. #...# #...# .###. #...# #...# .###.",
      /* 9 */ ".###. #...# #...# .#### ....# ...#. .##..",
      /* : */ "..... .##.. .##.. ..... .##.. .##.. .....",
      /* ; */ "..... .##.. .##.. ..... .##.. ..#.. .#...",
      /* < */ "...#. ..#.. .#... #.... .#... ..#.. ...#.",
      /* = */ "..... ..... ##### ..... ##### ..... .....",
      /* > */ ".#... ..#.. ...#. ....# ...#. ..#.. .#...",
      /* ? */ ".###. #...# ....# ...#. ..#.. ..... ..#..",
      /* @ */ ".###. #...# ....# .##.# #.#.# #.#.# .###.",
      /* A */ ".###. #...# #...# ##### #...# #...# #...#",
      /* B */ "####. #...# #...# ####. #...# #...# ####.",
      /* C */ ".###. #...# #.... #.... #.... #...# .###.",
      /* D */ "###.. #..#. #...# #...# #...# #..#. ###..",
      /* E */ "##### #.... #.... ####. #.... #.... #####",
      /* F */ "##### #.... #.... ####. #.... #.... #....",
      /* G */ ".###. #...# #.... #.### #...# #...# .####",
      /* H */ "#...# #...# #...# ##### #...# #...# #...#",
      /* I */ ".###. ..#.. ..#.. ..#.. ..#.. ..#.. .###.",
      /* J */ "..### ...#. ...#. ...#. ...#. #..#. .##..",
      /* K */ "#...# #..#. #.#.. ##... #.#.. #..#. #...#",
      /* L */ "#.... #.... #.... #.... #.... #.... #####",
      /* M */ "#...# ##.## #.#.# #.#.# #...# #...# #...#",
      /* N */ "#...# #...# ##..# #.#.# #..## #...# #...#",
      /* O */ ".###. #...# #...# #...# #...# #...# .###.",
      /* P */ "####. #...# #...# ####. #.... #.... #....",
      /* Q */ ".###. #...# #...# #...# #.#.# #..#. .##.#",
      /* R */ "####. #...# #...# ####. #.#.. #..#. #...#",
      /* S */ ".#### #.... #.... .###. ....# ....# ####.",
      /* T */ "##### ..#.. ..#.. ..#.. ..#.. ..#.. ..#..",
      /* U */ "#...# #...# #...# #...# #...# #...# .###.",
      /* V */ "#...# #...# #...# #...# #...# .#.#. ..#..",
      /* W */ "#...# #...# #...# #.#.# #.#.# #.#.# .#.#.",
      /* X */ "#...# #...# .#.#. ..#.. .#.#. #...# #...#",
      /* Y */ "#...# #...# .#.#. ..#.. ..#.. ..#.. ..#..",
      /* Z */ "##### ....# ...#. ..#.. .#... #.... #####",
      /* [ */ ".###. .#... .#... .#... .#... .#... .###.",
      /* \ */ "..... #.... .#... ..#.. ...#. ....# .....",
      /* ] */ ".###. ...#. ...#. ...#. ...#. ...#. .###.",
      /* ^ */ "..#.. .#.#. #...# ..... ..... ..... .....",
      /* _ */ "..... ..... ..... ..... ..... ..... #####",
      /* ` */ ".#... ..#.. ..... ..... ..... ..... .....",
      /* a */ "..... ..... .###. ....# .#### #...# .####",
      /* b */ "#.... #.... #.##. ##..# #...# #...# ####.",
      /* c */ "..... ..... .###. #.... #.... #...# .###.",
      /* d */ "....# ....# .##.# #..## #...# #...# .####",
      /* e */ "..... ..... .###. #...# ##### #.... .###.",
      /* f */ "..##. .#..# .#... ###.. .#... .#... .#...",
      /* g */ "..... ..... .#### #...# .#### ....# .###.",
      /* h */ "#.... #.... #.##. ##..# #...# #...# #...#",
      /* i */ "..#.. ..... .##.. ..#.. ..#.. ..#.. .###.",
      /* j */ "...#. ..... ..##. ...#. ...#. #..#. .##..",
      /* k */ "#.... #.... #..#. #.#.. ##... #.#.. #..#.",
      /* l */ ".##.. ..#.. ..#.. ..#.. ..#.. ..#.. .###.",
      /* m */ "..... ..... ##.#. #.#.# #.#.# #...# #...#",
      /* n */ "..... ..... #.##. ##..# #...# #...# #...#",
      /* o */ "..... ..... .###. #...# #...# #...# .###.",
      /* p */ "..... ..... ####. #...# ####. #.... #....",
      /* q */ "..... ..... .#### #...# .#### ....# ....#",
      /* r */ "..... ..... #.##. ##..# #.... #.... #....",
      /* s */ "..... ..... .###. #.... .###. ....# ####.",
      /* t */ ".#... .#... ###.. .#... .#... .#..# ..##.",
      /* u */ "..... ..... #...# #...# #...# #..## .##.#",
      /* v */ "..... ..... #...# #...# #...# .#.#. ..#..",
      /* w */ "..... ..... #...# #...# #.#.# #.#.# .#.#.",
      /* x */ "..... ..... #...# .#.#. ..#.. .#.#. #...#",
      /* y */ "..... ..... #...# #...# .#### ....# .###.",
      /* z */ "..... ..... ##### ...#. ..#.. .#... #####",
      /* { */ "...#. ..#.. ..#.. .#... ..#.. ..#.. ...#.",
      /* | */ "..#.. ..#.. ..#.. ..#.. ..#.. ..#.. ..#..",
      /* } */ ".#... ..#.. ..#.. ...#. ..#.. ..#.. .#...",
      /* ~ */ "..... ..... .#... #.#.# ...#. ..... .....",
  };
  GlyphTable t{};
  for (size_t g = 0; g < t.size(); ++g)
    for (int r = 0; r < kGlyphH; ++r) {
      uint8_t bits = 0;
      for (int c = 0; c < kGlyphW; ++c) bits = uint8_t(bits << 1 | (kArt[g][r * (kGlyphW + 1) + c] == '#'));
      t[g][size_t(r)] = bits;
    }
  return t;
}

void check_scale(int scale) { CL_CHECK(scale >= 1 && scale <= 64, "picture: text scale must be in [1, 64], got " << scale); }

void fill(RgbImage& img, int64_t y0, int64_t x0, int64_t h, int64_t w, Rgb c) {
  for (int64_t y = std::max<int64_t>(0, y0); y < std::min(img.H, y0 + h); ++y)
    for (int64_t x = std::max<int64_t>(0, x0); x < std::min(img.W, x0 + w); ++x) std::copy(c.begin(), c.end(), img.at(y, x));
}

void paste(RgbImage& dst, const RgbImage& src, int64_t y0, int64_t x0) {
  for (int64_t y = 0; y < src.H; ++y) std::copy_n(src.at(y, 0), 3 * src.W, dst.at(y0 + y, x0));
}

const Rgb kInk{0, 0, 0}, kPaper{255, 255, 255}, kSwatchBorder{96, 96, 96};

// Legend geometry (picture.h): swatch 9s, gap 3s, entries 10s apart, rows 11s, margin 3s.
int64_t entry_width(const LegendEntry& e, int s) { return 9 * s + 3 * s + text_width(e.name, s); }

// Rows of entry indices for a strip whose inner width is `inner`.
std::vector<std::vector<size_t>> legend_rows(const std::vector<LegendEntry>& entries, int64_t inner, int s) {
  std::vector<std::vector<size_t>> rows;
  int64_t x = 0;
  for (size_t i = 0; i < entries.size(); ++i) {
    const int64_t w = entry_width(entries[i], s);
    if (rows.empty() || (x > 0 && x + 10 * s + w > inner)) {
      rows.emplace_back();
      x = 0;
    } else if (x > 0) {
      x += 10 * s;
    }
    rows.back().push_back(i);
    x += w;
  }
  return rows;
}

}  // namespace

const std::array<uint8_t, kGlyphH>& glyph(char c) {
  static const GlyphTable table = parse_font();
  const int i = static_cast<unsigned char>(c);
  return table[size_t(i >= kFirst && i <= kLast ? i - kFirst : '?' - kFirst)];
}

int64_t text_width(const std::string& text, int scale) {
  check_scale(scale);
  return text.empty() ? 0 : (int64_t(kGlyphW + 1) * int64_t(text.size()) - 1) * scale;
}

void draw_text(RgbImage& img, int64_t y, int64_t x, const std::string& text, Rgb colour, int scale) {
  check_scale(scale);
  for (size_t k = 0; k < text.size(); ++k) {
    const auto& g = glyph(text[k]);
    const int64_t gx = x + int64_t(k) * (kGlyphW + 1) * scale;
    for (int r = 0; r < kGlyphH; ++r)
      for (int c = 0; c < kGlyphW; ++c)
        if (g[size_t(r)] >> (kGlyphW - 1 - c) & 1) fill(img, y + r * scale, gx + c * scale, scale, scale, colour);
  }
}

int text_scale_for(int64_t width) { return width >= 384 ? 2 : 1; }

std::vector<std::string> default_class_names(int64_t n) {
  std::vector<std::string> names;
  for (int64_t k = 0; k < n; ++k) names.push_back("class " + std::to_string(k));
  return names;
}

std::vector<LegendEntry> class_legend(const std::vector<std::string>& names) {
  std::vector<LegendEntry> out;
  for (size_t k = 0; k < names.size(); ++k) out.push_back({names[k], palette_colour(int64_t(k))});
  return out;
}

RgbImage legend_strip(const std::vector<LegendEntry>& entries, int64_t width, int s) {
  check_scale(s);
  int64_t widest = 0;
  for (const LegendEntry& e : entries) widest = std::max(widest, entry_width(e, s));
  const int64_t W = std::max(width, widest + 6 * s);
  const auto rows = legend_rows(entries, W - 6 * s, s);
  RgbImage img(W, 6 * s + int64_t(rows.size()) * 11 * s, 255);
  for (size_t r = 0; r < rows.size(); ++r) {
    int64_t x = 3 * s;
    const int64_t y = 3 * s + int64_t(r) * 11 * s;
    for (size_t i : rows[r]) {
      const LegendEntry& e = entries[i];
      fill(img, y, x, 9 * s, 9 * s, kSwatchBorder);
      fill(img, y + s, x + s, 7 * s, 7 * s, e.colour);
      draw_text(img, y + s, x + 12 * s, e.name, kInk, s);
      x += entry_width(e, s) + 10 * s;
    }
  }
  return img;
}

RgbImage add_legend(const RgbImage& img, const std::vector<LegendEntry>& entries, int scale) {
  const RgbImage strip = legend_strip(entries, img.W, scale);
  RgbImage out(std::max(img.W, strip.W), img.H + strip.H, 255);
  paste(out, img, 0, 0);
  paste(out, strip, img.H, 0);
  return out;
}

Rgb ramp_colour(double t) {
  static const double stops[5][3] = {{48, 18, 84}, {59, 82, 139}, {33, 145, 140}, {94, 201, 98}, {253, 231, 37}};
  t = std::clamp(t, 0.0, 1.0) * 4;
  const int i = std::min(3, static_cast<int>(t));
  const double f = t - i;
  Rgb c{};
  for (int k = 0; k < 3; ++k) c[size_t(k)] = static_cast<uint8_t>(std::lround(stops[i][k] * (1 - f) + stops[i + 1][k] * f));
  return c;
}

ColourBarStrip colour_bar_strip(const ColourBar& bar, int64_t width, int s) {
  check_scale(s);
  CL_CHECK(bar.colour != nullptr, "colour bar: no colour function");
  const int64_t lw = text_width(bar.min_label, s), rw = text_width(bar.max_label, s);
  const int64_t W = std::max(width, lw + rw + 8 * s + 64 * s);
  const RgbImage extra = bar.extra.empty() ? RgbImage() : legend_strip(bar.extra, W, s);
  ColourBarStrip out;
  out.img = RgbImage(std::max(W, extra.W), 9 * s + extra.H, 255);
  out.bar_y0 = 0, out.bar_x0 = lw + 4 * s, out.bar_h = 9 * s, out.bar_w = W - lw - rw - 8 * s;
  draw_text(out.img, s, 0, bar.min_label, kInk, s);
  draw_text(out.img, s, W - rw, bar.max_label, kInk, s);
  for (int64_t i = 0; i < out.bar_w; ++i)
    fill(out.img, out.bar_y0, out.bar_x0 + i, out.bar_h, 1, bar.colour(out.bar_w > 1 ? double(i) / double(out.bar_w - 1) : 1.0));
  if (extra.H > 0) paste(out.img, extra, 9 * s, 0);
  return out;
}

std::array<int64_t, 2> annotated_map_origin(int s) { return {4 * s + text_height(s) + 3 * s, 4 * s}; }

RgbImage annotate_map(const RgbImage& map, const std::string& title, const ColourBar& bar, int s) {
  check_scale(s);
  const int64_t inner = std::max(map.W, text_width(title, s));
  const ColourBarStrip cb = colour_bar_strip(bar, inner, s);
  const int64_t W = std::max(inner, cb.img.W) + 8 * s;
  const auto [my, mx] = annotated_map_origin(s);
  RgbImage out(W, my + map.H + 3 * s + cb.img.H + 4 * s, 255);
  draw_text(out, 4 * s, 4 * s, title, kInk, s);
  paste(out, map, my, mx);
  paste(out, cb.img, my + map.H + 3 * s, 4 * s);
  return out;
}

}  // namespace convlab

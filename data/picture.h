// data/picture.h: words and keys drawn into the pictures convlab writes (RgbImage, data/png.h): a 5x7 bitmap
// font of printable ASCII, class-colour legends for segmentation pictures, and titles with colour bars for
// heatmaps (ERF, coverage and overlap maps). Everything returns a new image; nothing is written here.
//
// Layout, in units of the text scale s (1: glyphs 5x7 px; 2: 10x14 px):
//  - text: glyphs 5s wide, 7s tall, one column (s px) apart: text_width(n chars) = (6n - 1) s.
//  - legend strip: entries (a 9s x 9s swatch with a s px grey border, 3s px gap, the name) flow left to right,
//    10s px apart, and wrap onto rows 11s px tall; the strip has a 3s px margin all round:
//    height = 6s + rows * 11s, width = max(`width`, widest entry + 6s).
//  - colour bar strip: min label, 4s px gap, the bar (9s px tall, at least 64s px wide), 4s px gap, max label;
//    the bar's column i of W is colour(i / (W - 1)), so its first column shows the min and its last the max.
//    Special colours (`extra`, e.g. "no path" in red) follow as legend rows below it.
//  - annotated map: 4s px white margin, the title, 3s px, the map, 3s px, the colour bar strip, 4s px.
#pragma once
#include <array>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "data/png.h"

namespace convlab {

using Rgb = std::array<uint8_t, 3>;

// ---- text ----
inline constexpr int kGlyphW = 5, kGlyphH = 7;
// The glyph of `c` as 7 rows, top first; bit 4 of a row is its leftmost column. Characters outside printable
// ASCII (32..126) are drawn as '?'.
const std::array<uint8_t, kGlyphH>& glyph(char c);
int64_t text_width(const std::string& text, int scale = 1);  // 0 for ""
inline int64_t text_height(int scale = 1) { return int64_t(kGlyphH) * scale; }
// Draws `text` with its top-left corner at (y, x) in `colour`; pixels outside the image are skipped.
// Throws convlab::Error for scale < 1.
void draw_text(RgbImage& img, int64_t y, int64_t x, const std::string& text, Rgb colour, int scale = 1);
// The text scale for a picture `width` px wide: 2 from 384 px on, else 1.
int text_scale_for(int64_t width);

// ---- class legends ----
struct LegendEntry {
  std::string name;
  Rgb colour{0, 0, 0};
};
// "class 0", "class 1", ...: the names of a network's classes when its config names none.
std::vector<std::string> default_class_names(int64_t n);
// names[k] with palette_colour(k) (the colours of labels_to_rgb).
std::vector<LegendEntry> class_legend(const std::vector<std::string>& names);
RgbImage legend_strip(const std::vector<LegendEntry>& entries, int64_t width, int scale = 1);
// `img` with its legend strip below it, on white (as wide as the wider of the two).
RgbImage add_legend(const RgbImage& img, const std::vector<LegendEntry>& entries, int scale = 1);

// ---- titles and colour bars ----
// The heatmaps' dark blue -> teal -> green -> yellow ramp (no red in it: red marks holes), t in [0, 1].
Rgb ramp_colour(double t);
struct ColourBar {
  std::function<Rgb(double)> colour = ramp_colour;  // t in [0, 1] -> colour
  std::string min_label, max_label;                 // the values at t = 0 and t = 1
  std::vector<LegendEntry> extra;                   // colours off the scale (holes, outside the box, ...)
};
struct ColourBarStrip {
  RgbImage img;
  int64_t bar_y0 = 0, bar_x0 = 0, bar_h = 0, bar_w = 0;  // where the bar is in img
};
ColourBarStrip colour_bar_strip(const ColourBar& bar, int64_t width, int scale = 1);
// The map under a title line and over its colour bar, on white.
RgbImage annotate_map(const RgbImage& map, const std::string& title, const ColourBar& bar, int scale = 1);
// Where annotate_map puts the map's top-left corner (for tests and overlays).
std::array<int64_t, 2> annotated_map_origin(int scale = 1);

}  // namespace convlab

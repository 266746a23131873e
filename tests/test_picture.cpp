// tests/test_picture.cpp: words and keys in the pictures (issue 15, "curves and legends"): the 5x7 font, class
// legends on segmentation pictures (validation grids, predict masks), titles and colour bars on ERF, coverage
// and overlap maps, the layer summary's geometry and receptive-field columns, and the config check that
// compares resolved values (a pool's default stride, padding "same") instead of the JSON text.
#include <gtest/gtest.h>

#include <filesystem>
#include <set>
#include <sstream>

#include "data/picture.h"
#include "data/png.h"
#include "models/config.h"
#include "models/erf.h"
#include "models/receptive_field.h"
#include "models/seg_predict.h"
#include "models/seg_task.h"
#include "models/study/study.h"
#include "tests/testing.h"

namespace convlab {
namespace {

using nlohmann::json;
namespace fs = std::filesystem;

Rgb pixel(const RgbImage& img, int64_t y, int64_t x) { return {img.at(y, x)[0], img.at(y, x)[1], img.at(y, x)[2]}; }

int64_t count_colour(const RgbImage& img, Rgb c, int64_t y0 = 0, int64_t y1 = -1) {
  int64_t n = 0;
  for (int64_t y = y0; y < (y1 < 0 ? img.H : y1); ++y)
    for (int64_t x = 0; x < img.W; ++x) n += pixel(img, y, x) == c;
  return n;
}

TEST(Picture, FontHasADistinctGlyphForEveryPrintableCharacter) {
  std::set<std::array<uint8_t, kGlyphH>> seen;
  for (int c = 33; c <= 126; ++c) {
    const auto& g = glyph(char(c));
    EXPECT_TRUE(seen.insert(g).second) << "glyph of '" << char(c) << "' repeats another";
    int on = 0;
    for (uint8_t row : g) {
      on += __builtin_popcount(row);
      EXPECT_LT(row, 1 << kGlyphW) << char(c);
    }
    EXPECT_GT(on, 0) << "glyph of '" << char(c) << "' is empty";
  }
  for (uint8_t row : glyph(' ')) EXPECT_EQ(row, 0);
  EXPECT_EQ(glyph('\n'), glyph('?'));  // not printable: drawn as '?'
  EXPECT_EQ(glyph(char(200)), glyph('?'));
  EXPECT_EQ(text_width("", 1), 0);
  EXPECT_EQ(text_width("abc", 1), 17);
  EXPECT_EQ(text_width("abc", 2), 34);
  EXPECT_NE(testing::error_of([] { text_width("a", 0); }).find("text scale"), std::string::npos);
}

TEST(Picture, DrawTextPaintsTheGlyphBitsAtItsScale) {
  RgbImage img(20, 20, 255);
  draw_text(img, 2, 3, "L", {10, 20, 30}, 2);  // 'L': the left column and the bottom row
  const auto& g = glyph('L');
  for (int r = 0; r < kGlyphH; ++r)
    for (int c = 0; c < kGlyphW; ++c) {
      const bool on = g[size_t(r)] >> (kGlyphW - 1 - c) & 1;
      for (int d = 0; d < 4; ++d)
        EXPECT_EQ(pixel(img, 2 + 2 * r + d / 2, 3 + 2 * c + d % 2), (on ? Rgb{10, 20, 30} : Rgb{255, 255, 255})) << r << "," << c;
    }
  EXPECT_EQ(count_colour(img, {10, 20, 30}), 4 * (7 + 4));  // 11 cells of 2x2
  RgbImage small(4, 4, 0);
  draw_text(small, -3, 2, "WWW", {255, 0, 0});  // clipped, not out of bounds
  EXPECT_GT(count_colour(small, {255, 0, 0}), 0);
}

TEST(Picture, LegendStripAddsRowsOfSwatchesAndNames) {
  const std::vector<std::string> names = {"background", "disc", "square"};
  const auto legend = class_legend(names);
  ASSERT_EQ(legend.size(), 3u);
  EXPECT_EQ(legend[2].colour, palette_colour(2));
  const RgbImage img(200, 30, 77);
  // Wide enough for one row: 3 + 11 + 3 px at scale 1.
  const RgbImage one = add_legend(img, legend, 1);
  EXPECT_EQ(one.W, 200);
  EXPECT_EQ(one.H, 30 + 6 + 11);
  EXPECT_EQ(pixel(one, 0, 0), (Rgb{77, 77, 77}));  // the picture, unchanged, on top
  EXPECT_EQ(pixel(one, 29, 199), (Rgb{77, 77, 77}));
  for (int64_t k = 1; k < 3; ++k) EXPECT_EQ(count_colour(one, palette_colour(k), 30), 49) << "swatch of class " << k;
  EXPECT_EQ(pixel(one, 30 + 3, 3), (Rgb{96, 96, 96}));  // the first swatch's border, then its colour inside
  EXPECT_EQ(pixel(one, 30 + 4, 4), palette_colour(0));
  // The names are drawn: "disc" in black right of its swatch (second entry: 3 + 71 + 10 px from the left).
  const int64_t name_x = 3 + (9 + 3 + text_width("background")) + 10 + 12;
  RgbImage want(text_width("disc"), kGlyphH, 255);
  draw_text(want, 0, 0, "disc", {0, 0, 0});
  for (int64_t y = 0; y < want.H; ++y)
    for (int64_t x = 0; x < want.W; ++x) EXPECT_EQ(pixel(one, 30 + 4 + y, name_x + x), pixel(want, y, x)) << y << "," << x;
  // Narrow: one entry a row, and the strip widens to its widest entry; scale 2 doubles everything.
  const RgbImage narrow = add_legend(RgbImage(40, 10, 0), legend, 1);
  EXPECT_EQ(narrow.H, 10 + 6 + 3 * 11);
  EXPECT_EQ(narrow.W, 9 + 3 + text_width("background") + 6);
  EXPECT_EQ(add_legend(RgbImage(400, 30, 0), legend, 2).H, 30 + 2 * (6 + 11));
  EXPECT_EQ(default_class_names(2), (std::vector<std::string>{"class 0", "class 1"}));
}

TEST(Picture, ColourBarRunsFromTheMinColourToTheMaxColour) {
  const ColourBar bar{.colour = ramp_colour, .min_label = "0", .max_label = "12", .extra = {{"no path", {230, 30, 30}}}};
  const ColourBarStrip cb = colour_bar_strip(bar, 200, 1);
  EXPECT_EQ(cb.img.W, 200);
  EXPECT_EQ(cb.bar_x0, text_width("0") + 4);
  EXPECT_EQ(cb.bar_w, 200 - text_width("0") - text_width("12") - 8);
  EXPECT_EQ(cb.bar_h, 9);
  for (int64_t y = cb.bar_y0; y < cb.bar_y0 + cb.bar_h; ++y) {
    EXPECT_EQ(pixel(cb.img, y, cb.bar_x0), ramp_colour(0));
    EXPECT_EQ(pixel(cb.img, y, cb.bar_x0 + cb.bar_w - 1), ramp_colour(1));
  }
  for (int64_t i = 1; i < cb.bar_w; ++i)  // the ramp's green rises from stop to stop: the bar is ordered
    EXPECT_GE(pixel(cb.img, 0, cb.bar_x0 + i)[1], pixel(cb.img, 0, cb.bar_x0 + i - 1)[1]) << i;
  EXPECT_EQ(count_colour(cb.img, {230, 30, 30}), 49);  // the "no path" key below the bar
  EXPECT_EQ(cb.img.H, 9 + 6 + 11);
  // Labels in ink at both ends.
  EXPECT_GT(count_colour(cb.img, {0, 0, 0}, 0, 9), 0);
  // A narrow request still gets a usable bar.
  EXPECT_GE(colour_bar_strip(bar, 10, 1).bar_w, 64);
}

TEST(Picture, AnnotatedMapHasTitleMapAndBar) {
  RgbImage map(50, 40, 0);
  map.at(5, 7)[0] = 200;
  const ColourBar bar{.colour = ramp_colour, .min_label = "0", .max_label = "9", .extra = {}};
  const RgbImage out = annotate_map(map, "ERF of layer 5, log scale", bar, 1);
  const auto [y0, x0] = annotated_map_origin(1);
  EXPECT_EQ(y0, 4 + 7 + 3);
  EXPECT_EQ(x0, 4);
  for (int64_t y = 0; y < map.H; ++y)
    for (int64_t x = 0; x < map.W; ++x) ASSERT_EQ(pixel(out, y0 + y, x0 + x), pixel(map, y, x)) << y << "," << x;
  EXPECT_EQ(out.W, std::max<int64_t>(text_width("ERF of layer 5, log scale"), 64 + 8 + 2 * 5) + 8);
  EXPECT_GT(count_colour(out, {0, 0, 0}, 4, 11), 20);  // the title's ink
  // Below the map: the bar's first and last columns.
  const int64_t by = y0 + map.H + 3;
  EXPECT_EQ(pixel(out, by + 4, x0 + text_width("0") + 4), ramp_colour(0));
  EXPECT_EQ(pixel(out, by + 4, out.W - 4 - text_width("9") - 4 - 1), ramp_colour(1));
}

TEST(Picture, CoverageAndOverlapMapsAreTitledWithTheirScale) {
  const std::vector<double> v = {0, 1, 2, 4};
  const RgbImage out = titled_heatmap(v, 2, 2, {230, 30, 30}, "no path", "coverage: paths per input pixel");
  const int64_t cell = cell_size(2, 2);
  const RgbImage bare = heatmap(v, 2, 2, {230, 30, 30}, cell);
  const int s = text_scale_for(bare.W);
  const auto [y0, x0] = annotated_map_origin(s);
  for (int64_t y = 0; y < bare.H; y += 7)
    for (int64_t x = 0; x < bare.W; x += 7) ASSERT_EQ(pixel(out, y0 + y, x0 + x), pixel(bare, y, x));
  // The bar ends on the colour of the largest value: the heatmap's brightest cell.
  const Rgb top = pixel(bare, cell + 1, cell + 1);
  EXPECT_EQ(top, ramp_colour(1));
  EXPECT_GE(count_colour(out, top, y0 + bare.H), 9 * s);
  EXPECT_GE(count_colour(out, {230, 30, 30}, y0 + bare.H), 49 * s * s);  // the "no path" key
}

TEST(Picture, ErfPictureShowsTheDecadesItDraws) {
  ErfResult r;
  r.map = Tensor::zeros({9, 9});
  r.map.data()[4 * 9 + 4] = 0.5f;
  r.map.data()[4 * 9 + 5] = 0.5e-5f;
  r.box = {2, 2, 5, 5};
  r.measured_path = "model.layers[5] input";
  const RgbImage bare = erf_image(r, 8, -1);
  const RgbImage pic = erf_picture(r, "", 8, -1);
  const auto [y0, x0] = annotated_map_origin(1);
  for (int64_t y = 0; y < bare.H; ++y)
    for (int64_t x = 0; x < bare.W; ++x) ASSERT_EQ(pixel(pic, y0 + y, x0 + x), pixel(bare, y, x));
  // Title "ERF at model.layers[5] input, log scale" in ink, as draw_text draws it.
  const std::string title = "ERF at model.layers[5] input, log scale";
  RgbImage want(text_width(title), kGlyphH, 255);
  draw_text(want, 0, 0, title, {0, 0, 0});
  for (int64_t y = 0; y < want.H; ++y)
    for (int64_t x = 0; x < want.W; ++x) ASSERT_EQ(pixel(pic, 4 + y, 4 + x), pixel(want, y, x));
  // The max pixel has the bar's max colour, the pixel 5 decades down its min colour; the bar holds both.
  EXPECT_EQ(pixel(bare, 4 * 8, 4 * 8), ramp_colour(1));
  EXPECT_EQ(pixel(bare, 4 * 8, 5 * 8), ramp_colour(0));
  const int64_t below = y0 + bare.H;
  EXPECT_GT(count_colour(pic, ramp_colour(1), below), 0);
  EXPECT_GT(count_colour(pic, ramp_colour(0), below), 0);
  EXPECT_GE(count_colour(pic, {230, 30, 30}, below), 49);  // the holes' key
  // Labels: the max (0.5) and max * 1e-5 (5e-06), as text, right and left of the bar.
  const int64_t by = below + 3;
  RgbImage lo(text_width("5e-06"), kGlyphH, 255), hi(text_width("0.5"), kGlyphH, 255);
  draw_text(lo, 0, 0, "5e-06", {0, 0, 0});
  draw_text(hi, 0, 0, "0.5", {0, 0, 0});
  for (int64_t y = 0; y < kGlyphH; ++y) {
    for (int64_t x = 0; x < lo.W; ++x) ASSERT_EQ(pixel(pic, by + 1 + y, 4 + x), pixel(lo, y, x));
    for (int64_t x = 0; x < hi.W; ++x) ASSERT_EQ(pixel(pic, by + 1 + y, pic.W - 4 - hi.W + x), pixel(hi, y, x));
  }
}

TEST(Picture, PredictMaskCarriesTheClassLegend) {
  SegPrediction p;
  p.classes = 3, p.H = 8, p.W = 10;
  p.labels.assign(80, 0);
  for (int64_t i = 40; i < 80; ++i) p.labels[size_t(i)] = i < 60 ? 1 : 2;
  const std::vector<std::string> names = {"background", "cat", "dog"};
  const RgbImage bare = class_map_picture(p, names, false);
  EXPECT_EQ(bare.W, 10);
  EXPECT_EQ(bare.H, 8);
  const RgbImage pic = class_map_picture(p, names, true);
  const RgbImage strip = legend_strip(class_legend(names), 10, 1);
  EXPECT_EQ(pic.H, 8 + strip.H);
  EXPECT_EQ(pic.W, strip.W);
  for (int64_t k = 1; k < 3; ++k) EXPECT_EQ(count_colour(pic, palette_colour(k), 8), 49) << k;
  EXPECT_NE(testing::error_of([&] { class_map_picture(p, {"a", "b"}); }).find("2 class names for a network of 3 classes"),
            std::string::npos);
}

TEST(Picture, ClassNamesComeFromTheConfig) {
  EXPECT_EQ(config_class_names(json::object(), 6),
            (std::vector<std::string>{"background", "disc", "square", "triangle", "ring", "line"}));
  EXPECT_EQ(config_class_names(json{{"classes", {"ring", "disc"}}}, 3),
            (std::vector<std::string>{"background", "ring", "disc"}));
  EXPECT_EQ(config_class_names(json{{"dataset", "digits"}}, 11).back(), "9");
  EXPECT_EQ(config_class_names(json{{"dataset", "folder"}, {"classes", {"bg", "cat"}}}, 2),
            (std::vector<std::string>{"bg", "cat"}));
  EXPECT_EQ(config_class_names(json{{"dataset", "folder"}, {"classes", {"bg", "cat"}}}, 4),
            default_class_names(4));  // the network has other classes than the config names
  // A network built without data (predict) knows its names from the config too.
  json c = load_config(testing::source_path("configs/hdc_seg.json"));
  EXPECT_EQ(make_seg_task(c, false).class_names.at(5), "line");
}

// ---- the layer summary (`convlab train`) ----

std::vector<std::string> summary_row(const std::string& summary, const std::string& index) {
  std::istringstream is(summary);
  for (std::string line; std::getline(is, line);) {
    std::istringstream ls(line);
    std::vector<std::string> cells;
    for (std::string c; ls >> c;) cells.push_back(c);
    if (!cells.empty() && cells[0] == index) return cells;
  }
  return {};
}

TEST(Picture, LayerSummaryShowsGeometryAndReceptiveField) {
  const json layers = json::parse(R"([
      {"type": "conv2d", "out_channels": 4, "kernel_size": 3, "padding": 1},
      {"type": "batch_norm2d"}, {"type": "relu"},
      {"type": "conv2d", "out_channels": 4, "kernel_size": 3, "padding": "same", "dilation": 2},
      {"type": "max_pool2d", "kernel_size": 2},
      {"type": "conv2d", "out_channels": 4, "kernel_size": [3, 5], "padding": [1, 2], "repeat": 2},
      {"type": "residual", "layers": [{"type": "conv2d", "out_channels": 4, "kernel_size": 3, "padding": 1},
                                      {"type": "conv2d", "out_channels": 4, "kernel_size": 3, "padding": 1}]},
      {"type": "upsample", "scale_factor": 2}])");
  const Shape in = {2, 3, 32, 32};
  Rng rng(0);
  const auto model = build_layers(layers, in, rng, "model.layers");
  const std::string s = describe_model(*model, in, layers);
  EXPECT_NE(s.find("#  layer"), std::string::npos) << s;
  EXPECT_NE(s.find("kernel  stride  padding  dilation  rf"), std::string::npos) << s;
  // The receptive field after each layer, as receptive_field.h computes it on the same sizes.
  const RfAnalysis a = analyse_stack(rf_model(json{{"model", {{"layers", layers}}}}).layers,
                                     {.input_size = {32, 32}, .pixel = std::nullopt});
  ASSERT_EQ(a.rows.size(), 8u);
  const auto rf = [&](size_t i) { return a.rows[i].rf; };
  EXPECT_EQ(summary_row(s, "0"), (std::vector<std::string>{"0", "conv2d", "[2,4,32,32]", "112", "3", "1", "1", "1", "3"}));
  EXPECT_EQ(summary_row(s, "1").size(), 4u) << s;  // batch norm: no geometry, no rf
  const auto dilated = summary_row(s, "3");  // "same" resolved to its number
  EXPECT_EQ(dilated, (std::vector<std::string>{"3", "conv2d", "[2,4,32,32]", "148", "3", "1", "2", "2", "7"})) << s;
  EXPECT_EQ(rf(1)[0], 7.0);
  EXPECT_EQ(summary_row(s, "4"), (std::vector<std::string>{"4", "max_pool2d", "[2,4,16,16]", "0", "2", "2", "0", "1", "8"}));
  EXPECT_EQ(rf(2)[0], 8.0);
  const auto rect = summary_row(s, "6");  // the second repeat of a [3, 5] kernel
  ASSERT_EQ(rect.size(), 9u) << s;
  EXPECT_EQ(rect[4], "3x5");
  EXPECT_EQ(rect[6], "1x2");
  std::ostringstream want;
  want << rf(4)[0] << "x" << rf(4)[1];
  EXPECT_EQ(rect[8], want.str());
  const auto block = summary_row(s, "7");  // a residual block: the rf after its body
  ASSERT_EQ(block.size(), 9u) << s;
  EXPECT_EQ(block[4], "-");
  std::ostringstream after;
  after << rf(6)[0] << "x" << rf(6)[1];
  EXPECT_EQ(block[8], after.str());
  EXPECT_EQ(summary_row(s, "8")[4], "-");  // upsample: no kernel
  // Without the layer list (a network built in code), the old columns only.
  EXPECT_EQ(summary_row(describe_model(*model, in), "0").size(), 4u);
}

// ---- the config check on load (issue 15, item 3): resolved values, not JSON text ----

TEST(Picture, NetworkCheckComparesResolvedValues) {
  const json base = json::parse(R"({"model": {"layers": [
      {"type": "conv2d", "out_channels": 4, "kernel_size": 3, "padding": "same", "dilation": 2},
      {"type": "max_pool2d", "kernel_size": 2},
      {"type": "avg_pool2d", "kernel_size": 2},
      {"type": "resize_conv2d", "out_channels": 4, "kernel_size": 3, "padding": 1},
      {"type": "conv2d", "out_channels": 4, "kernel_size": 3, "padding": "valid"},
      {"type": "upsample", "size": 16},
      {"type": "conv2d", "out_channels": 3, "kernel_size": 1}]}, "data": {"image_size": 16}})");
  const auto record = [](const json& c) { return make_seg_task(c, false).layer_record; };
  json spelled = base;
  spelled["model"]["layers"][0]["padding"] = 2;  // what "same" means for k=3, d=2
  spelled["model"]["layers"][1]["stride"] = 2;   // torch's default: the kernel size
  spelled["model"]["layers"][2]["stride"] = {2, 2};
  spelled["model"]["layers"][3]["scale_factor"] = 2;  // resize_conv2d's default
  spelled["model"]["layers"][4]["padding"] = 0;  // "valid"
  EXPECT_EQ(network_difference(record(base), record(spelled)), "");
  EXPECT_EQ(network_difference(record(spelled), record(base)), "");
  json other = base;
  other["model"]["layers"][1]["stride"] = 1;
  EXPECT_EQ(network_difference(record(base), record(other)), "model.layers[1].stride: checkpoint has 2, config has 1");
  json same_size = base;  // padding 2 written as [2, 1] is another layer (and another size: the upsample evens it)
  same_size["model"]["layers"][0]["padding"] = {2, 1};
  EXPECT_EQ(network_difference(record(base), record(same_size)), "model.layers[0].padding: checkpoint has 2, config has [2,1]");
}

}  // namespace
}  // namespace convlab

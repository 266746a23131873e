// data/png.h: PNG reading and writing through stb (Debian's libstb-dev), and the small image helpers the
// tools use to show results: tensor -> RGB bytes, a fixed palette for label maps, a grid compositor.
//
// RgbImage is 8-bit RGB, interleaved, row-major ([H, W, 3]). Writing is atomic (temp file + rename).
#pragma once
#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "core/tensor.h"

namespace convlab {

struct RgbImage {
  int64_t W = 0, H = 0;
  std::vector<uint8_t> rgb;  // [H, W, 3]
  RgbImage() = default;
  RgbImage(int64_t w, int64_t h, uint8_t fill = 0) : W(w), H(h), rgb(static_cast<size_t>(w * h * 3), fill) {}
  uint8_t* at(int64_t y, int64_t x) { return rgb.data() + 3 * (y * W + x); }
  const uint8_t* at(int64_t y, int64_t x) const { return rgb.data() + 3 * (y * W + x); }
};

struct PngImage {
  int64_t W = 0, H = 0, channels = 0;  // channels as stored in the file: 1 grey, 2 grey+alpha, 3 RGB, 4 RGBA
  std::vector<uint8_t> pixels;         // [H, W, channels]
};

// Writes an 8-bit RGB PNG atomically; throws convlab::Error "png PATH: ..." on failure.
void write_png(const std::string& path, const uint8_t* rgb, int64_t W, int64_t H);
void write_png(const std::string& path, const RgbImage& img);
// An 8-bit greyscale PNG ([H, W] bytes), e.g. a class-index mask whose pixel values are class ids.
void write_png_grey(const std::string& path, const uint8_t* grey, int64_t W, int64_t H);
// Reads any PNG stb understands, 8 bits per channel; throws convlab::Error "png PATH: <stb's reason>".
PngImage read_png(const std::string& path);
// Decodes a PNG or JPEG (libjpeg-turbo: data/jpeg.h) held in memory, 8 bits per channel; `source` names it in
// errors ("image SOURCE: ..."). The size in the file's header is checked before decoding: width * height *
// channels above max_tensor_elements() is refused, so a small file claiming a huge image allocates nothing.
PngImage decode_image(const std::string& bytes, const std::string& source);
// A PNG or JPEG file, decoded as decode_image does (read_png: PNG only).
PngImage read_image(const std::string& path);
// Expands a grey / grey+alpha / RGBA image to RGB (alpha dropped).
RgbImage to_rgb(const PngImage& img);

// Image tensor to bytes: [3, H, W] or [1, H, W] (grey, replicated) or [H, W]; values mapped linearly
// from [lo, hi] to [0, 255] and clamped. Use lo = -1 for [-1, 1] (tanh) images.
RgbImage tensor_to_rgb(const Tensor& t, float lo = 0.f, float hi = 1.f);
// Item b of a batch [B, C, H, W] (C = 1 or 3).
RgbImage tensor_to_rgb(const Tensor& batch, int64_t b, float lo, float hi);

// Fixed palette of 16 distinguishable colours; class 0 (background) is black. Classes >= 16 wrap; a
// negative id (ignore) is drawn mid-grey.
std::array<uint8_t, 3> palette_colour(int64_t cls);
RgbImage labels_to_rgb(const int32_t* labels, int64_t H, int64_t W);

// Nearest-neighbour enlargement (e.g. 28 px digits shown at 4x).
RgbImage upscale(const RgbImage& img, int64_t factor);

// Rows of tiles with `sep` px separators (value sep_value, e.g. 255 white) between tiles and around the
// grid. Tiles may differ in size: each column is as wide as its widest tile and each row as tall as its
// tallest; smaller tiles sit top-left on the separator colour.
RgbImage compose_grid(const std::vector<std::vector<RgbImage>>& rows, int64_t sep = 2, uint8_t sep_value = 255);

}  // namespace convlab

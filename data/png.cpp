// data/png.cpp: see png.h. This is the one translation unit that compiles stb_image / stb_image_write
// (the PNG decoder only); other files include <stb_image.h> for declarations if they must, but should call
// read_png / write_png instead.
#include "data/png.h"
#include "data/jpeg.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "core/error.h"
#include "data/files.h"

#define STB_IMAGE_IMPLEMENTATION
#define STBI_ONLY_PNG
#define STBI_NO_STDIO  // we read the bytes ourselves: errors then name the path and errno
#define STB_IMAGE_WRITE_IMPLEMENTATION
#define STBI_WRITE_NO_STDIO  // we write to memory, then atomically to disk
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#pragma GCC diagnostic ignored "-Wsign-compare"
#include <stb_image.h>
#include <stb_image_write.h>
#pragma GCC diagnostic pop

namespace convlab {

namespace {
void write_png_channels(const std::string& path, const uint8_t* px, int64_t W, int64_t H, int channels) {
  CL_CHECK(W > 0 && H > 0 && W < (1 << 24) && H < (1 << 24),
           "png " << path << ": bad image size " << W << "x" << H);
  CL_CHECK(px != nullptr, "png " << path << ": no pixels");
  std::string bytes;
  auto sink = [](void* ctx, void* data, int size) {
    static_cast<std::string*>(ctx)->append(static_cast<const char*>(data), static_cast<size_t>(size));
  };
  const int ok = stbi_write_png_to_func(sink, &bytes, static_cast<int>(W), static_cast<int>(H), channels, px,
                                        static_cast<int>(channels * W));
  CL_CHECK(ok != 0, "png " << path << ": encoding failed");
  write_file_bytes_atomic(path, bytes, "png");
}
}  // namespace

void write_png(const std::string& path, const uint8_t* rgb, int64_t W, int64_t H) {
  write_png_channels(path, rgb, W, H, 3);
}

void write_png_grey(const std::string& path, const uint8_t* grey, int64_t W, int64_t H) {
  write_png_channels(path, grey, W, H, 1);
}

void write_png(const std::string& path, const RgbImage& img) {
  CL_CHECK(static_cast<int64_t>(img.rgb.size()) == img.W * img.H * 3,
           "png " << path << ": image holds " << img.rgb.size() << " bytes, " << img.W << "x" << img.H
                  << " RGB needs " << img.W * img.H * 3);
  write_png(path, img.rgb.data(), img.W, img.H);
}

namespace {

constexpr int kMaxImageSide = 16384;  // decoded before anything checks it against a network: bounded here

// stb_image 2.27 (Debian 12's libstb-dev) trusts a PNG's chunk lengths: an IDAT length past the end of the file
// makes it reallocate up to 2 GiB before it notices, and a zero-length IDAT before any data is copied with
// memcpy(NULL, p, 0), undefined behaviour (both found by tests/fuzz/fuzz_image). The chunks are walked here
// first: one that runs past the end is refused (the file is truncated or corrupt), empty IDATs are dropped (they
// carry nothing; stb does not check chunk CRCs, so the image decodes the same).
std::string checked_png_chunks(const std::string& b, const std::string& what) {
  const auto be32 = [&](size_t i) {
    return uint32_t(static_cast<unsigned char>(b[i])) << 24 | uint32_t(static_cast<unsigned char>(b[i + 1])) << 16 |
           uint32_t(static_cast<unsigned char>(b[i + 2])) << 8 | uint32_t(static_cast<unsigned char>(b[i + 3]));
  };
  std::string out = b.substr(0, 8);
  size_t pos = 8;
  while (pos + 12 <= b.size()) {
    const uint64_t len = be32(pos);
    CL_CHECK(pos + 12 + len <= b.size(), what << ": cannot decode (a PNG chunk of " << len << " bytes runs past the "
                                              << "end of the file: truncated or corrupt)");
    const bool empty_idat = len == 0 && b.compare(pos + 4, 4, "IDAT") == 0;
    if (!empty_idat) out.append(b, pos, size_t(12 + len));
    pos += size_t(12 + len);
    if (b.compare(pos - 8 - len, 4, "IEND") == 0) break;
  }
  return out;  // bytes after IEND (or a partial chunk header) are left out: stb would not read them
}

// `what` prefixes every error ("png PATH", "image SOURCE"). Header first: the size is checked before stb
// allocates anything for the pixels.
PngImage decode(const std::string& file_bytes, const std::string& what) {
  CL_CHECK(!file_bytes.empty(), what << ": empty file");
  static const unsigned char kPngSig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
  // PNG through stb; JPEG through libjpeg-turbo (data/jpeg.h). Debian 12's stb_image 2.27 JPEG decoder has
  // undefined behaviour on malformed files that no check outside it can rule out (the fuzzer found an
  // out-of-bounds write in its Huffman tables, shifts by 32 in the baseline and progressive AC decoders and a
  // read of an undefined Huffman table), so it is not compiled in.
  const bool png = file_bytes.size() >= 8 && std::memcmp(file_bytes.data(), kPngSig, 8) == 0;
  if (!png && looks_like_jpeg(file_bytes)) return decode_jpeg(file_bytes, what);
  CL_CHECK(png, what << ": neither a PNG nor a JPEG file");
  const std::string bytes = checked_png_chunks(file_bytes, what);
  CL_CHECK(bytes.size() < (1ull << 31), what << ": file too large");
  const auto* data = reinterpret_cast<const stbi_uc*>(bytes.data());
  const int len = static_cast<int>(bytes.size());
  int w = 0, h = 0, c = 0;
  CL_CHECK(stbi_info_from_memory(data, len, &w, &h, &c) != 0,
           what << ": cannot decode (" << stbi_failure_reason() << ")");
  CL_CHECK(w > 0 && h > 0 && c >= 1 && c <= 4, what << ": bad image header (" << w << "x" << h << ", " << c << " channels)");
  CL_CHECK(w <= kMaxImageSide && h <= kMaxImageSide,
           what << ": image " << w << "x" << h << " is larger than " << kMaxImageSide << " pixels on a side");
  CL_CHECK(int64_t(w) * h * c <= max_tensor_elements(),
           what << ": image " << w << "x" << h << "x" << c << " is larger than the limit of " << max_tensor_elements()
                << " values");
  int w2 = 0, h2 = 0, c2 = 0;
  stbi_uc* px = stbi_load_from_memory(data, len, &w2, &h2, &c2, 0);
  CL_CHECK(px != nullptr, what << ": cannot decode (" << stbi_failure_reason() << ")");
  PngImage img;
  img.W = w2;
  img.H = h2;
  img.channels = c2;
  if (w2 != w || h2 != h || c2 != c) {  // never seen: stb's header and decoder agree
    stbi_image_free(px);
    CL_CHECK(false, what << ": header says " << w << "x" << h << "x" << c << ", decoder gave " << w2 << "x" << h2
                         << "x" << c2);
  }
  img.pixels.assign(px, px + static_cast<size_t>(w2) * h2 * c2);
  stbi_image_free(px);
  return img;
}

}  // namespace

PngImage read_png(const std::string& path) {
  const std::string bytes = read_file_bytes(path, "png");
  static const unsigned char kSig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
  CL_CHECK(bytes.size() >= 8 && std::memcmp(bytes.data(), kSig, 8) == 0,
           "png " << path << ": not a PNG file (bad signature)");
  return decode(bytes, "png " + path);
}

PngImage decode_image(const std::string& bytes, const std::string& source) {
  return decode(bytes, "image " + source);
}

PngImage read_image(const std::string& path) { return decode_image(read_file_bytes(path, "image"), path); }

RgbImage to_rgb(const PngImage& img) {
  CL_CHECK(img.channels >= 1 && img.channels <= 4, "png: unsupported channel count " << img.channels);
  RgbImage out(img.W, img.H);
  for (int64_t p = 0; p < img.W * img.H; ++p) {
    const uint8_t* s = img.pixels.data() + p * img.channels;
    for (int c = 0; c < 3; ++c) out.rgb[3 * p + c] = img.channels >= 3 ? s[c] : s[0];
  }
  return out;
}

namespace {
uint8_t to_byte(float v, float lo, float hi) {
  const float u = (v - lo) / (hi - lo);
  if (!(u > 0.f)) return 0;  // also NaN
  if (u >= 1.f) return 255;
  return static_cast<uint8_t>(std::lround(u * 255.f));
}

RgbImage planes_to_rgb(const float* p, int64_t C, int64_t H, int64_t W, float lo, float hi) {
  RgbImage out(W, H);
  for (int64_t y = 0; y < H; ++y)
    for (int64_t x = 0; x < W; ++x)
      for (int64_t c = 0; c < 3; ++c) out.at(y, x)[c] = to_byte(p[(C == 3 ? c : 0) * H * W + y * W + x], lo, hi);
  return out;
}
}  // namespace

RgbImage tensor_to_rgb(const Tensor& t, float lo, float hi) {
  CL_CHECK(hi > lo, "tensor_to_rgb: need hi > lo, got [" << lo << ", " << hi << "]");
  const Shape& s = t.shape();
  if (s.size() == 2) return planes_to_rgb(t.data(), 1, s[0], s[1], lo, hi);
  CL_CHECK(s.size() == 3 && (s[0] == 1 || s[0] == 3),
           "tensor_to_rgb: expected an image [3, H, W], [1, H, W] or [H, W], got " << shape_str(s));
  return planes_to_rgb(t.data(), s[0], s[1], s[2], lo, hi);
}

RgbImage tensor_to_rgb(const Tensor& batch, int64_t b, float lo, float hi) {
  CL_CHECK(hi > lo, "tensor_to_rgb: need hi > lo, got [" << lo << ", " << hi << "]");
  const Shape& s = batch.shape();
  CL_CHECK(s.size() == 4 && (s[1] == 1 || s[1] == 3),
           "tensor_to_rgb: expected a batch [B, 1 or 3, H, W], got " << shape_str(s));
  CL_CHECK(b >= 0 && b < s[0], "tensor_to_rgb: item " << b << " out of range for batch " << shape_str(s));
  return planes_to_rgb(batch.data() + b * s[1] * s[2] * s[3], s[1], s[2], s[3], lo, hi);
}

std::array<uint8_t, 3> palette_colour(int64_t cls) {
  // Background black, then saturated hues ordered so neighbouring ids contrast.
  static const uint8_t kPalette[16][3] = {
      {0, 0, 0},       {230, 25, 75},  {60, 180, 75},   {255, 225, 25}, {0, 130, 200},   {245, 130, 48},
      {145, 30, 180},  {70, 240, 240}, {240, 50, 230},  {210, 245, 60}, {250, 190, 212}, {0, 128, 128},
      {220, 190, 255}, {170, 110, 40}, {255, 250, 200}, {128, 0, 0}};
  if (cls < 0) return {128, 128, 128};
  const uint8_t* c = kPalette[cls % 16];
  return {c[0], c[1], c[2]};
}

RgbImage labels_to_rgb(const int32_t* labels, int64_t H, int64_t W) {
  CL_CHECK(labels != nullptr && H > 0 && W > 0, "labels_to_rgb: empty label map " << H << "x" << W);
  RgbImage out(W, H);
  for (int64_t p = 0; p < H * W; ++p) {
    const auto c = palette_colour(labels[p]);
    std::copy(c.begin(), c.end(), out.rgb.begin() + 3 * p);
  }
  return out;
}

RgbImage upscale(const RgbImage& img, int64_t f) {
  CL_CHECK(f >= 1, "upscale: factor must be >= 1, got " << f);
  RgbImage out(img.W * f, img.H * f);
  for (int64_t y = 0; y < out.H; ++y)
    for (int64_t x = 0; x < out.W; ++x) std::copy_n(img.at(y / f, x / f), 3, out.at(y, x));
  return out;
}

RgbImage compose_grid(const std::vector<std::vector<RgbImage>>& rows, int64_t sep, uint8_t sep_value) {
  CL_CHECK(!rows.empty(), "compose_grid: no rows");
  CL_CHECK(sep >= 0, "compose_grid: separator must be >= 0, got " << sep);
  std::vector<int64_t> col_w, row_h(rows.size(), 0);
  for (size_t r = 0; r < rows.size(); ++r)
    for (size_t c = 0; c < rows[r].size(); ++c) {
      if (col_w.size() <= c) col_w.push_back(0);
      col_w[c] = std::max(col_w[c], rows[r][c].W);
      row_h[r] = std::max(row_h[r], rows[r][c].H);
    }
  CL_CHECK(!col_w.empty(), "compose_grid: no tiles");
  int64_t W = sep, H = sep;
  for (int64_t w : col_w) W += w + sep;
  for (int64_t h : row_h) H += h + sep;
  RgbImage out(W, H, sep_value);
  int64_t y0 = sep;
  for (size_t r = 0; r < rows.size(); ++r) {
    int64_t x0 = sep;
    for (size_t c = 0; c < rows[r].size(); ++c) {
      const RgbImage& t = rows[r][c];
      CL_CHECK(static_cast<int64_t>(t.rgb.size()) == t.W * t.H * 3,
               "compose_grid: tile (" << r << ", " << c << ") holds " << t.rgb.size() << " bytes for " << t.W
                                      << "x" << t.H);
      for (int64_t y = 0; y < t.H; ++y) std::copy_n(t.at(y, 0), 3 * t.W, out.at(y0 + y, x0));
      x0 += col_w[c] + sep;
    }
    y0 += row_h[r] + sep;
  }
  return out;
}

}  // namespace convlab

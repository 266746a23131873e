// data/jpeg.h: JPEG decoding through libjpeg-turbo (Debian's libjpeg62-turbo-dev), for images only (masks stay
// PNG: a lossy mask would invent class ids at every edge).
//
// Why not stb_image: Debian 12's stb 2.27 JPEG decoder has undefined behaviour on malformed files (found by
// tests/fuzz/fuzz_image). libjpeg-turbo is the decoder the distributions keep patched.
//
// Hostile input: every libjpeg error AND every corrupt-data warning stops decoding (error_exit / emit_message
// longjmp back out of libjpeg; nothing calls exit()), the library is destroyed and convlab::Error is thrown
// ("image SOURCE: corrupt JPEG (<libjpeg's message>)"). The header's size is checked (16384 px a side, the
// tensor element limit) before the pixels are allocated, and libjpeg's own working memory is capped
// (kMaxJpegWorkBytes; beyond it, e.g. a progressive file claiming a huge image, libjpeg refuses, it has no
// backing store). Output: 8-bit RGB (grey and YCbCr converted by libjpeg); CMYK / YCCK are refused.
#pragma once
#include <cstdint>
#include <string>

#include "data/png.h"

namespace convlab {

inline constexpr int64_t kMaxJpegWorkBytes = int64_t(512) << 20;

// True when `bytes` starts like a JPEG (SOI marker FF D8 FF).
bool looks_like_jpeg(const std::string& bytes);
// `what` prefixes errors ("image photo.jpg"). channels is always 3.
PngImage decode_jpeg(const std::string& bytes, const std::string& what);

}  // namespace convlab

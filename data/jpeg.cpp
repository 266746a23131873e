// data/jpeg.cpp: see jpeg.h. The libjpeg calls live in decode_raw(), which holds no C++ object with a
// destructor between setjmp and the calls that may longjmp (a longjmp over one would skip it): its output
// buffer is malloc'd, recorded in a struct the caller owns, and freed on the error path.
#include "data/jpeg.h"

#include <csetjmp>
#include <cstdio>  // jpeglib.h needs FILE
#include <cstdlib>
#include <cstring>
#include <memory>

#include <jpeglib.h>

#include "core/error.h"
#include "core/tensor.h"

namespace convlab {

namespace {

constexpr int64_t kMaxSide = 16384;  // as for PNG (data/png.cpp)

struct ErrorMgr {
  jpeg_error_mgr pub;  // first member: libjpeg sees a jpeg_error_mgr*
  std::jmp_buf jump;
  char message[JMSG_LENGTH_MAX];
};

[[noreturn]] void on_error(j_common_ptr c) {
  auto* e = reinterpret_cast<ErrorMgr*>(c->err);
  (*c->err->format_message)(c, e->message);
  std::longjmp(e->jump, 1);
}

// Level -1 is a warning about corrupt data (a truncated file, a bad Huffman code): refused like an error, so
// no half-garbage image is ever returned. Other levels are trace messages: ignored.
void on_message(j_common_ptr c, int level) {
  if (level < 0) on_error(c);
}

struct Raw {
  unsigned char* volatile pixels = nullptr;  // malloc'd, [H, W, 3]
  int64_t W = 0, H = 0, components = 0;
  int status = 0;  // 0 ok, 1 libjpeg error (message in ErrorMgr), 2 too large (W, H set), 3 colour space, 4 no memory
};

void decode_raw(const unsigned char* data, unsigned long size, ErrorMgr* err, Raw* out) {
  jpeg_decompress_struct cinfo;
  std::memset(&cinfo, 0, sizeof cinfo);
  cinfo.err = jpeg_std_error(&err->pub);
  err->pub.error_exit = on_error;
  err->pub.emit_message = on_message;
  if (setjmp(err->jump)) {
    jpeg_destroy_decompress(&cinfo);
    std::free(out->pixels);
    out->pixels = nullptr;
    out->status = 1;
    return;
  }
  jpeg_create_decompress(&cinfo);
  cinfo.mem->max_memory_to_use = static_cast<long>(kMaxJpegWorkBytes);
  jpeg_mem_src(&cinfo, data, size);
  jpeg_read_header(&cinfo, TRUE);
  out->W = cinfo.image_width;
  out->H = cinfo.image_height;
  out->components = cinfo.num_components;
  if (out->W < 1 || out->H < 1 || out->W > kMaxSide || out->H > kMaxSide || out->W * out->H * 3 > max_tensor_elements()) {
    jpeg_destroy_decompress(&cinfo);
    out->status = 2;
    return;
  }
  if (cinfo.jpeg_color_space == JCS_CMYK || cinfo.jpeg_color_space == JCS_YCCK) {
    jpeg_destroy_decompress(&cinfo);
    out->status = 3;
    return;
  }
  cinfo.out_color_space = JCS_RGB;
  jpeg_start_decompress(&cinfo);
  if (cinfo.output_components != 3 || int64_t(cinfo.output_width) != out->W || int64_t(cinfo.output_height) != out->H)
    on_error(reinterpret_cast<j_common_ptr>(&cinfo));  // never seen: libjpeg honours JCS_RGB at full size
  const size_t row = static_cast<size_t>(out->W) * 3;
  out->pixels = static_cast<unsigned char*>(std::malloc(row * static_cast<size_t>(out->H)));
  if (out->pixels == nullptr) {
    jpeg_destroy_decompress(&cinfo);
    out->status = 4;
    return;
  }
  while (cinfo.output_scanline < cinfo.output_height) {
    JSAMPROW r = out->pixels + row * cinfo.output_scanline;
    jpeg_read_scanlines(&cinfo, &r, 1);
  }
  jpeg_finish_decompress(&cinfo);
  jpeg_destroy_decompress(&cinfo);
}

}  // namespace

bool looks_like_jpeg(const std::string& b) {
  return b.size() >= 3 && static_cast<unsigned char>(b[0]) == 0xFF && static_cast<unsigned char>(b[1]) == 0xD8 &&
         static_cast<unsigned char>(b[2]) == 0xFF;
}

PngImage decode_jpeg(const std::string& bytes, const std::string& what) {
  CL_CHECK(looks_like_jpeg(bytes), what << ": not a JPEG file");
  CL_CHECK(bytes.size() < (1ull << 31), what << ": file too large");
  ErrorMgr err;
  std::memset(&err, 0, sizeof err);
  Raw raw;
  decode_raw(reinterpret_cast<const unsigned char*>(bytes.data()), static_cast<unsigned long>(bytes.size()), &err, &raw);
  const std::unique_ptr<unsigned char, void (*)(void*)> owned(raw.pixels, std::free);
  CL_CHECK(raw.status != 1, what << ": corrupt or unsupported JPEG (" << err.message << ")");
  CL_CHECK(raw.status != 2, what << ": image " << raw.W << "x" << raw.H << " is larger than " << kMaxSide
                                 << " pixels on a side or than the limit of " << max_tensor_elements() << " values");
  CL_CHECK(raw.status != 3, what << ": CMYK JPEG is not supported (convert it to RGB)");
  CL_CHECK(raw.status != 4, what << ": out of memory for a " << raw.W << "x" << raw.H << " image");
  PngImage img;
  img.W = raw.W;
  img.H = raw.H;
  img.channels = 3;
  img.pixels.assign(owned.get(), owned.get() + static_cast<size_t>(raw.W * raw.H * 3));
  return img;
}

}  // namespace convlab

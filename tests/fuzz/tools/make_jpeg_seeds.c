/* tests/fuzz/tools/make_jpeg_seeds.c: writes the JPEG seeds of tests/fuzz/corpus/image/ with libjpeg (Debian's
 * libjpeg-dev; not a build dependency of convlab, only needed to regenerate these few files):
 * baseline grey, baseline 4:2:0 / 4:2:2 / 4:4:4 colour, progressive colour and grey, restart markers, CMYK
 * (Adobe), optimised Huffman tables, arithmetic coding is left out (stb does not decode it).
 *   cc -O2 -o /tmp/make_jpeg_seeds tests/fuzz/tools/make_jpeg_seeds.c -ljpeg && /tmp/make_jpeg_seeds tests/fuzz/corpus/image
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jpeglib.h>

static void write_jpeg(const char* dir, const char* name, int w, int h, int comps, J_COLOR_SPACE cs, int quality,
                       int h_samp, int v_samp, int progressive, int restart_rows, int optimize) {
  char path[1024];
  snprintf(path, sizeof path, "%s/%s", dir, name);
  FILE* f = fopen(path, "wb");
  if (!f) { perror(path); exit(1); }
  struct jpeg_compress_struct c;
  struct jpeg_error_mgr err;
  c.err = jpeg_std_error(&err);
  jpeg_create_compress(&c);
  jpeg_stdio_dest(&c, f);
  c.image_width = w;
  c.image_height = h;
  c.input_components = comps;
  c.in_color_space = cs;
  jpeg_set_defaults(&c);
  jpeg_set_quality(&c, quality, TRUE);
  if (comps == 3) {
    c.comp_info[0].h_samp_factor = h_samp;
    c.comp_info[0].v_samp_factor = v_samp;
  }
  if (progressive) jpeg_simple_progression(&c);
  c.restart_in_rows = restart_rows;
  c.optimize_coding = optimize;
  jpeg_start_compress(&c, TRUE);
  unsigned char* row = malloc((size_t)w * comps);
  while (c.next_scanline < c.image_height) {
    const int y = c.next_scanline;
    for (int x = 0; x < w; ++x)
      for (int k = 0; k < comps; ++k) row[x * comps + k] = (unsigned char)((x * 37 + y * 11 + k * 80) ^ (x * y));
    JSAMPROW r = row;
    jpeg_write_scanlines(&c, &r, 1);
  }
  jpeg_finish_compress(&c);
  jpeg_destroy_compress(&c);
  free(row);
  fclose(f);
}

int main(int argc, char** argv) {
  const char* dir = argc > 1 ? argv[1] : ".";
  write_jpeg(dir, "grey_8x8.jpg", 8, 8, 1, JCS_GRAYSCALE, 75, 1, 1, 0, 0, 0);
  write_jpeg(dir, "rgb420_16x16.jpg", 16, 16, 3, JCS_RGB, 60, 2, 2, 0, 0, 0);
  write_jpeg(dir, "rgb422_13x9.jpg", 13, 9, 3, JCS_RGB, 60, 2, 1, 0, 0, 1);
  write_jpeg(dir, "rgb444_7x5.jpg", 7, 5, 3, JCS_RGB, 90, 1, 1, 0, 0, 0);
  write_jpeg(dir, "progressive_rgb420_16x16.jpg", 16, 16, 3, JCS_RGB, 60, 2, 2, 1, 0, 0);
  write_jpeg(dir, "progressive_grey_9x9.jpg", 9, 9, 1, JCS_GRAYSCALE, 70, 1, 1, 1, 0, 0);
  write_jpeg(dir, "restart_rgb420_32x16.jpg", 32, 16, 3, JCS_RGB, 50, 2, 2, 0, 1, 0);
  write_jpeg(dir, "cmyk_8x8.jpg", 8, 8, 4, JCS_CMYK, 60, 1, 1, 0, 0, 0);
  return 0;
}

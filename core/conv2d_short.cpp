// core/conv2d_short.cpp: conv2d's three GEMMs for short output rows, turned around so the pixels are the rows.
//
// With output rows narrower than a vector (DCGAN's discriminator: 14x14 -> 7x7 at 64 -> 128 channels) the
// im2col + GEMM path makes the pixels its vector dimension, so every panel row is a few 7-float runs copied out
// of the bordered input, and the input gradient writes a [K, pixels] matrix (2.2 MB per block) that col2im then
// reads back. Here the channels are the vector dimension and the pixels are broadcast straight from where they
// live (sgemm_indirect_a, core/gemm_indirect.cpp):
//   forward      y^T [pixels, C_out/G]      = cols^T x W_g^T       A: the bordered input (pixel x tap offsets)
//   weight grad  dW_g^T [K, C_out/G]       += cols x dy^T          A: the bordered input (tap x pixel offsets)
//   input grad   dcols^T [pixels, taps x C] = dy^T x W_g (tap-major) A: dy in place; added into dx tap by tap
// Same bits as the im2col + GEMM path:
//  - each element is the same FMA chain over the same K blocks (the caller's kc is the one sgemm picks for the
//    untransposed problem);
//  - the taps that read padding are skipped (pixels grouped by the padding taps they share): such a term is
//    +0 * b, which leaves a chain that starts at +0 unchanged when b is finite (with an inf or NaN weight or
//    gradient the im2col path would turn 0 * inf into NaN; this one does not);
//  - the input gradient adds its columns into a channels-last copy of dx one kernel tap after the other, which for
//    every dx element is col2im's order (taps ascending within the element's channel).
#include "core/conv2d_short.h"

#include <algorithm>
#include <array>
#include <atomic>
#include <cstring>
#include <vector>

#include "core/cpu.h"
#include "core/gemm.h"
#include "core/gemm_kernel.h"
#include "core/workspace.h"

namespace convlab {
namespace {


// A zero-bordered copy [nn, C/G, plane] of a block of images of group g (each plane (H + 2pH) x (W + 2pW) floats,
// then zeros up to an odd number of cache lines), with the offset of every cols row (tap) and every cols column
// (pixel) in it: cols[r][j] = p[tap[r] + pix[j]].
struct Bordered {
  int64_t Wp, plane, image;
  float* p;
  std::vector<int64_t>& tap;
  std::vector<int64_t>& pix;
};

Bordered bordered(const ConvDims& d, int64_t nn, int slot) {
  thread_local std::vector<int64_t> tap, pix;
  // Planes an odd number of cache lines apart: the taps of one pixel read the same spot of every channel's plane,
  // and at a power-of-two stride (16 x 16 floats is 1 KB) those lines would share a handful of L1 sets.
  const int64_t Hp = d.H + 2 * d.pH, Wp = d.W + 2 * d.pW, lines = (Hp * Wp + 15) / 16;
  const int64_t plane = (lines | 1) * 16, image = d.cin_g() * plane;
  Bordered b{Wp, plane, image, workspace(slot, nn * image), tap, pix};
  tap.resize(size_t(d.k_rows()));
  for (int64_t c = 0, r = 0; c < d.cin_g(); ++c)
    for (int64_t kh = 0; kh < d.kH; ++kh)
      for (int64_t kw = 0; kw < d.kW; ++kw) tap[size_t(r++)] = c * plane + kh * d.dH * Wp + kw * d.dW;
  pix.resize(size_t(nn * d.hw_out()));
  for (int64_t i = 0, j = 0; i < nn; ++i)
    for (int64_t oh = 0; oh < d.H_out; ++oh)
      for (int64_t ow = 0; ow < d.W_out; ++ow) pix[size_t(j++)] = i * image + oh * d.sH * Wp + ow * d.sW;
  return b;
}

// dst[0, n) = src[0, n) for the input rows here (a few to a few dozen floats): std::copy_n becomes a memmove call
// per row, whose call costs more than the copy (3% of a DCGAN discriminator's pass in a profile).
inline void copy_row(const float* src, int64_t n, float* dst) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) std::memcpy(dst + i, src + i, 8 * sizeof(float));
  if (i + 4 <= n) std::memcpy(dst + i, src + i, 4 * sizeof(float)), i += 4;
  if (i + 2 <= n) std::memcpy(dst + i, src + i, 2 * sizeof(float)), i += 2;
  if (i < n) dst[i] = src[i];
}

// b <- the images' channels of group g from t [N, C_in, H, W] (images n0..), borders zero.
void fill_bordered(const Bordered& b, const float* t, const ConvDims& d, int64_t n0, int64_t nn, int64_t g) {
  for (int64_t i = 0; i < nn; ++i)
    for (int64_t c = 0; c < d.cin_g(); ++c) {
      float* dst = b.p + i * b.image + c * b.plane;
      const float* src = t + ((n0 + i) * d.C_in + g * d.cin_g() + c) * d.H * d.W;
      // zero the border only: pH rows above, pH rows below and the padding past them, pW columns either side
      std::fill(dst, dst + d.pH * b.Wp, 0.f);
      std::fill(dst + (d.pH + d.H) * b.Wp, dst + b.plane, 0.f);
      for (int64_t h = 0; h < d.H; ++h) {
        float* row = dst + (d.pH + h) * b.Wp;
        for (int64_t q = 0; q < d.pW; ++q) row[q] = row[d.pW + d.W + q] = 0.f;
        copy_row(src + h * d.W, d.W, row + d.pW);
      }
    }
}

std::atomic<bool> g_enabled{true};  // set_short_rows_gemm

}  // namespace

void set_short_rows_gemm(bool on) { g_enabled = on; }

bool short_rows_apply(const ConvDims& d, int64_t nn) {
  if (!g_enabled) return false;
  const bool one_by_one = d.kH == 1 && d.kW == 1 && d.sH == 1 && d.sW == 1 && d.pH == 0 && d.pW == 0;
  return !one_by_one && d.W_out < Im2colPacker::kMinInPlaceRun &&  // longer rows: read in place there
        
         double(nn) * double(d.cin_g()) * (double(d.H + 2 * d.pH) * double(d.W + 2 * d.pW) + 32) <= Im2colPacker::kMaxBorderedFloats;
}

// The forward's and the weight gradient's vectors run along the output channels: at least one whole vector. The
// forward also transposes its [pixels, C_out/G] result into y, which pays only when K is at least C_out/G
// (measured: DCGAN's first layer, K = 16 and 64 channels, ran its forward 0.52 -> 0.93 ms turned around).
bool short_rows_forward_applies(const ConvDims& d, int64_t nn) {
  return short_rows_apply(d, nn) && d.cout_g() >= 16 && d.k_rows() >= d.cout_g();
}
// The weight gradient also wants 16+ input channels per group: its rows go tap-major, a group of rows per kernel
// tap (DCGAN's first layer, one input channel, ran 16 one-row groups: 1.8 -> 2.7 ms; in cols order it was still
// 4-7% slower than the packer path).
bool short_rows_dw_applies(const ConvDims& d, int64_t nn) {
  return short_rows_apply(d, nn) && d.cout_g() >= 16 && d.cin_g() >= 16;
}

bool short_rows_dx_applies(const ConvDims& d, int64_t nn) {
  // Vectors along the input channels of a tap; K (C_out/G terms) of at least 16 (a 1-channel head's K = 1 GEMM is
  // all stores) and one K block: each dcols element is complete when it reaches the sink.
  return short_rows_apply(d, nn) && d.cin_g() >= 16 && d.cout_g() >= 16 &&
         gemm_k_block(d.k_rows(), nn * d.hw_out(), d.cout_g()) >= d.cout_g();
}

namespace {

// [lo, hi): the kernel offsets (rows kh, or columns kw) whose input, at output position o, lies inside the image
// (size n, padding p, stride s, dilation dl, kernel k): the others read padding.
void inside(int64_t o, int64_t n, int64_t p, int64_t s, int64_t dl, int64_t k, int64_t& lo, int64_t& hi) {
  lo = 0, hi = k;
  while (lo < k && o * s - p + lo * dl < 0) ++lo;
  while (hi > lo && o * s - p + (hi - 1) * dl >= n) --hi;
}

// The output pixels of one image grouped by the padding taps they share (a DCGAN 7x7 map: the 5x5 inside, four
// edges, four corners): pixel p's class, and per class the taps that read inside the image (keep[k], k = (c, kh,
// kw) in cols order). The turned-around GEMMs skip the other taps: their A is a zero of the border.
struct PixelClasses {
  std::vector<int64_t> of;          // [HWo]: class of each pixel
  std::vector<uint8_t> keep;        // [classes, K]
  std::vector<int64_t> kh_lo, kh_hi, kw_lo, kw_hi;  // per class
  int64_t count = 0;
};

const PixelClasses& pixel_classes(const ConvDims& d) {
  thread_local PixelClasses pc;
  thread_local std::array<int64_t, 11> key{};  // the dims it was made for: made again only when they change
  const std::array<int64_t, 11> now{d.H, d.W, d.cin_g(), d.kH, d.kW, d.sH, d.sW, d.pH, d.pW, d.dH, d.dW};
  if (now == key) return pc;
  key = now;
  pc.of.assign(size_t(d.hw_out()), 0);
  pc.kh_lo.clear(), pc.kh_hi.clear(), pc.kw_lo.clear(), pc.kw_hi.clear();
  pc.count = 0;
  for (int64_t oh = 0; oh < d.H_out; ++oh)
    for (int64_t ow = 0; ow < d.W_out; ++ow) {
      int64_t hl, hh, wl, wh;
      inside(oh, d.H, d.pH, d.sH, d.dH, d.kH, hl, hh);
      inside(ow, d.W, d.pW, d.sW, d.dW, d.kW, wl, wh);
      int64_t c = 0;
      while (c < pc.count && !(pc.kh_lo[size_t(c)] == hl && pc.kh_hi[size_t(c)] == hh && pc.kw_lo[size_t(c)] == wl &&
                               pc.kw_hi[size_t(c)] == wh))
        ++c;
      if (c == pc.count) pc.kh_lo.push_back(hl), pc.kh_hi.push_back(hh), pc.kw_lo.push_back(wl), pc.kw_hi.push_back(wh), ++pc.count;
      pc.of[size_t(oh * d.W_out + ow)] = c;
    }
  const int64_t K = d.k_rows();
  pc.keep.assign(size_t(pc.count * K), 0);
  for (int64_t c = 0; c < pc.count; ++c)
    for (int64_t k = 0; k < K; ++k) {
      const int64_t kh = k / d.kW % d.kH, kw = k % d.kW;
      pc.keep[size_t(c * K + k)] = kh >= pc.kh_lo[size_t(c)] && kh < pc.kh_hi[size_t(c)] &&
                                   kw >= pc.kw_lo[size_t(c)] && kw < pc.kw_hi[size_t(c)];
    }
  return pc;
}

}  // namespace

void short_rows_forward(const float* x, const float* w, const ConvDims& d, int64_t n0, int64_t nn, int64_t g,
                        float* y, bool accumulate, int64_t block) {
  const int64_t K = d.k_rows(), HWo = d.hw_out(), Mg = d.cout_g(), L = nn * HWo;
  const Bordered b = bordered(d, nn, 3);
  fill_bordered(b, x, d, n0, nn, g);
  // The block's pixels ordered by class (then image, then position): row q of the GEMM is pixel order[q], and each
  // class is one group of rows that skips its padding taps.
  const PixelClasses& pc = pixel_classes(d);
  thread_local std::vector<int64_t> order, row_of, a_off;
  thread_local std::vector<IndirectRows> groups;
  order.clear(), groups.clear();
  for (int64_t c = 0; c < pc.count; ++c) {
    const int64_t m0 = int64_t(order.size());
    for (int64_t i = 0; i < nn; ++i)
      for (int64_t p = 0; p < HWo; ++p)
        if (pc.of[size_t(p)] == c) order.push_back(i * HWo + p);
    groups.push_back({m0, int64_t(order.size()) - m0, pc.keep.data() + c * K});
  }
  row_of.resize(size_t(L)), a_off.resize(size_t(L));
  for (int64_t q = 0; q < L; ++q) row_of[size_t(order[size_t(q)])] = q, a_off[size_t(q)] = b.pix[size_t(order[size_t(q)])];
  float* yt = workspace(2, L * Mg);  // y^T [L, Mg] of the block, rows in the GEMM's order
  // The untransposed path writes one image straight into y (so accumulates in the chain), several into a block
  // added to y afterwards: start from y's values in the first case for the same sums.
  const bool in_chain = accumulate && block == 1;
  if (in_chain)
    for (int64_t m = 0; m < Mg; ++m)
      for (int64_t p = 0; p < HWo; ++p) yt[row_of[size_t(p)] * Mg + m] = y[(n0 * d.C_out + g * Mg + m) * HWo + p];
  sgemm_indirect_a(L, Mg, K, b.p, a_off.data(), b.tap.data(), true, w + g * Mg * K, K,
                   gemm_k_block(Mg, block * HWo, K), in_chain ? 1.f : 0.f, yt, Mg, &groups);
  for (int64_t i = 0; i < nn; ++i)
    for (int64_t m = 0; m < Mg; ++m) {
      float* dst = y + ((n0 + i) * d.C_out + g * Mg + m) * HWo;
      const int64_t* rows = row_of.data() + i * HWo;
      const float* src = yt + m;
      if (accumulate && !in_chain)
        for (int64_t p = 0; p < HWo; ++p) dst[p] += src[rows[p] * Mg];
      else
        for (int64_t p = 0; p < HWo; ++p) dst[p] = src[rows[p] * Mg];
    }
}

int64_t short_rows_dw_row(const ConvDims& d, int64_t k) {
  const int64_t T = d.kH * d.kW;
  return k % T * d.cin_g() + k / T;
}

void short_rows_weight_grad(const float* x, const float* dyg, const ConvDims& d, int64_t n0, int64_t nn, int64_t g,
                            float beta, float* dwt) {
  const int64_t K = d.k_rows(), Mg = d.cout_g(), HWo = d.hw_out(), L = nn * HWo, T = d.kH * d.kW;
  const Bordered b = bordered(d, nn, 3);
  fill_bordered(b, x, d, n0, nn, g);
  // Rows tap-major (row t * Cg + c is cols row k = c * T + t): the rows of one kernel tap are one group, which skips
  // the pixels where that tap reads padding.
  const PixelClasses& pc = pixel_classes(d);
  thread_local std::vector<int64_t> a_off;
  thread_local std::vector<uint8_t> keep;
  thread_local std::vector<IndirectRows> groups;
  a_off.resize(size_t(K)), keep.resize(size_t(T * L)), groups.clear();
  for (int64_t k = 0; k < K; ++k) a_off[size_t(short_rows_dw_row(d, k))] = b.tap[size_t(k)];
  for (int64_t t = 0; t < T; ++t) {
    uint8_t* kt = keep.data() + t * L;
    for (int64_t p = 0; p < HWo; ++p) kt[p] = pc.keep[size_t(pc.of[size_t(p)] * K + t)];
    for (int64_t i = 1; i < nn; ++i) std::copy_n(kt, HWo, kt + i * HWo);
    groups.push_back({t * d.cin_g(), d.cin_g(), kt});
  }
  sgemm_indirect_a(K, Mg, L, b.p, a_off.data(), b.pix.data(), true, dyg, L, gemm_k_block(Mg, K, L), beta, dwt, Mg,
                   &groups);
}
namespace {

// dst[c * ld + r] = src[r * ls + c] for r < R, c < C: 8 x 8 blocks through ymm registers where the CPU has AVX2,
// scalar elsewhere (a copy: the same bits on every target). A strided scalar loop here was 5% of DCGAN's
// 14x14 -> 7x7 layer.
void transpose_scalar(const float* src, int64_t r0, int64_t R, int64_t c0, int64_t C, int64_t ls, float* dst,
                      int64_t ld) {
  for (int64_t r = r0; r < R; ++r)
    for (int64_t c = c0; c < C; ++c) dst[c * ld + r] = src[r * ls + c];
}
#ifdef CONVLAB_GEMM_AVX2
CONVLAB_AVX2_TARGET void transpose_avx2(const float* src, int64_t R, int64_t C, int64_t ls, float* dst, int64_t ld) {
  int64_t r0 = 0;
  for (; r0 + 8 <= R; r0 += 8) {
    int64_t c0 = 0;
    for (; c0 + 8 <= C; c0 += 8) {
      __m256 v[8];
      for (int i = 0; i < 8; ++i) v[i] = _mm256_loadu_ps(src + (r0 + i) * ls + c0);
      gemm_detail::transpose8(v);
      for (int i = 0; i < 8; ++i) _mm256_storeu_ps(dst + (c0 + i) * ld + r0, v[i]);
    }
    transpose_scalar(src, r0, r0 + 8, c0, C, ls, dst, ld);
  }
  transpose_scalar(src, r0, R, 0, C, ls, dst, ld);
}
#endif
void transpose(const float* src, int64_t R, int64_t C, int64_t ls, float* dst, int64_t ld) {
#ifdef CONVLAB_GEMM_AVX2
  if (active_isa() != Isa::scalar) return transpose_avx2(src, R, C, ls, dst, ld);
#endif
  transpose_scalar(src, 0, R, 0, C, ls, dst, ld);
}

// Adds a tile of dcols^T into the channels-last dx scratch: row r of the tile is pixel order[i0 + r], its columns
// [j0, j0 + n) are channels j0 % Cg .. of kernel tap t = j0 / Cg (sgemm_indirect_a_rows cuts panels inside a tap),
// and the pixel's tap t lands at position pos[pixel] + tap[t] of the scratch, inside the image (the row groups only
// want the taps that do). Each tap's panels come one after the other, taps ascending: every dx element gets its
// contributions in col2im's order, taps ascending.
struct AddIntoDx : RowSink {
  float* scratch;            // [nn, H, W, Cg]
  const int64_t* order;      // GEMM row -> pixel of the block
  const int64_t* pos;        // pixel -> its output position's offset in the scratch (top-left tap, may be outside)
  const int64_t* tap;        // kernel tap -> offset from there
  int64_t Cg;
  AddIntoDx(float* s, const int64_t* o, const int64_t* p, const int64_t* t, int64_t c)
      : scratch(s), order(o), pos(p), tap(t), Cg(c) {}
  void rows(int64_t i0, int rows, int64_t j0, int64_t n, const float* t, int64_t ldt) const override {
    const int64_t off = tap[j0 / Cg] + j0 % Cg;
    for (int r = 0; r < rows; ++r) {
      float* dst = scratch + (pos[order[i0 + r]] + off);  // inside the image: the group wants this tap
      const float* src = t + r * ldt;
      for (int64_t c = 0; c < n; ++c) dst[c] += src[c];
    }
  }
};

}  // namespace

void short_rows_input_grad(const float* dy, const float* wtap, const ConvDims& d, int64_t n0, int64_t nn, int64_t g,
                           float* dx) {
  const int64_t HWo = d.hw_out(), Mg = d.cout_g(), Cg = d.cin_g(), L = nn * HWo, T = d.kH * d.kW, HW = d.H * d.W;
  const PixelClasses& pc = pixel_classes(d);
  // GEMM rows: the block's pixels by class (the taps they reach inside the image), then image, then position.
  thread_local std::vector<int64_t> order, rows_off, m_off, pos, tap;
  thread_local std::vector<uint8_t> wanted;
  thread_local std::vector<IndirectRows> groups;
  order.clear(), groups.clear();
  wanted.resize(size_t(pc.count * T));
  for (int64_t c = 0; c < pc.count; ++c) {
    const int64_t m0 = int64_t(order.size());
    for (int64_t i = 0; i < nn; ++i)
      for (int64_t p = 0; p < HWo; ++p)
        if (pc.of[size_t(p)] == c) order.push_back(i * HWo + p);
    for (int64_t t = 0; t < T; ++t) wanted[size_t(c * T + t)] = pc.keep[size_t(c * d.k_rows() + t)];
    groups.push_back({m0, int64_t(order.size()) - m0, wanted.data() + c * T});
  }
  // A = dy^T read in place: row q is pixel order[q] = (image i, position p), at dy[n0 + i, g*Mg + m, p].
  rows_off.resize(size_t(L)), pos.resize(size_t(L));
  for (int64_t q = 0; q < L; ++q) {
    const int64_t j = order[size_t(q)], i = j / HWo, p = j % HWo;
    rows_off[size_t(q)] = i * d.C_out * HWo + p;
  }
  for (int64_t i = 0; i < nn; ++i)
    for (int64_t oh = 0; oh < d.H_out; ++oh)
      for (int64_t ow = 0; ow < d.W_out; ++ow)
        pos[size_t(i * HWo + oh * d.W_out + ow)] = ((i * d.H + oh * d.sH - d.pH) * d.W + ow * d.sW - d.pW) * Cg;
  tap.resize(size_t(T));
  for (int64_t t = 0; t < T; ++t) tap[size_t(t)] = (t / d.kW * d.dH * d.W + t % d.kW * d.dW) * Cg;
  m_off.resize(size_t(Mg));
  for (int64_t m = 0; m < Mg; ++m) m_off[size_t(m)] = m * HWo;
  // dx of the block, channels last, starting from its values (gradients accumulate)
  float* scratch = workspace(3, nn * HW * Cg);
  for (int64_t i = 0; i < nn; ++i)
    transpose(dx + ((n0 + i) * d.C_in + g * Cg) * HW, Cg, HW, HW, scratch + i * HW * Cg, Cg);
  sgemm_indirect_a_rows(L, T * Cg, Mg, dy + (n0 * d.C_out + g * Mg) * HWo, rows_off.data(), m_off.data(), false,
                        wtap + g * Mg * T * Cg, T * Cg, Cg, &groups,
                        AddIntoDx(scratch, order.data(), pos.data(), tap.data(), Cg));
  for (int64_t i = 0; i < nn; ++i)
    transpose(scratch + i * HW * Cg, HW, Cg, Cg, dx + ((n0 + i) * d.C_in + g * Cg) * HW, HW);
}

void short_rows_tap_major(const float* w, const ConvDims& d, float* wtap) {
  const int64_t T = d.kH * d.kW, Cg = d.cin_g();
  for (int64_t m = 0; m < d.C_out; ++m)
    for (int64_t c = 0; c < Cg; ++c)
      for (int64_t t = 0; t < T; ++t) wtap[(m * T + t) * Cg + c] = w[(m * Cg + c) * T + t];
}

}  // namespace convlab

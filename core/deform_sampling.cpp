// core/deform_sampling.cpp: the bilinear sampling of deform_conv2d and its adjoints, one image at a time.
//
// Sample point of output pixel (oh, ow), tap t = (i, j), offset group og:
//   y = (oh*sH - pH + i*dH) + dy,  x = (ow*sW - pW + j*dW) + dx   (integer part first, then + offset, in float,
//                                                                 as torchvision computes it)
// torchvision's bilinear rule: with y0 = floor(y), x0 = floor(x), lh = y - y0, lw = x - x0,
//   value = (1-lh)(1-lw) v(y0,x0) + (1-lh) lw v(y0,x0+1) + lh (1-lw) v(y0+1,x0) + lh lw v(y0+1,x0+1),
// where each neighbour OUTSIDE the image reads 0 on its own. So a point up to one pixel outside keeps partial
// weight; a point with y <= -1, y >= H, x <= -1 or x >= W reads 0 (its in-image neighbours get weight 0).
//
// Layout trick 1: the image is copied channels-last into a plane with a zero border (one row/column on each
// side, plus a spare zero row at the bottom): xpT [Hp*Wp, C_in]. Any point with y in [-1, H) and x in [-1, W)
// has its four neighbours inside that plane, the out-of-image ones reading the zero border, so gathers and
// scatters need no branches; points outside that box point at an all-zero 2x2 block with weight 0.
// Layout trick 2: channels-last makes the four neighbours of one sample point, for all the channels of a
// group, four contiguous runs: the sampling is plain 8-wide vector loads/stores over channels (no gathers),
// one table lookup per (pixel, tap). The columns are pixel-major, colsT [HWo, C_in*T], and within a weight
// group ordered (tap, channel): colsT[p, g*K + t*Cg + cl] (the weight is permuted to match by the caller).
//
// Coordinate gradients (torchvision's get_coordinate_weight, also at whole-pixel positions): with
// S_k = sum over the offset group's channels of dcols * v_k (k = (y0,x0), (y0,x1), (y1,x0), (y1,x1)),
//   d/dy = m * ((1-lw)(S_2 - S_0) + lw (S_3 - S_1)),   d/dx = m * ((1-lh)(S_1 - S_0) + lh (S_3 - S_2)),
//   d/dmask = (1-lh)(1-lw) S_0 + (1-lh) lw S_1 + lh (1-lw) S_2 + lh lw S_3.
// Trap: torchvision does NOT zero the coordinate gradient at y = -1 or x = -1 exactly (the value there is 0,
// but the neighbour at row/column 0 has a nonzero slope): the [-1, H) x [-1, W) box keeps that case.
// Every multiply-add is a fused fma in vector and scalar code alike, so how channels fall into vector blocks
// never changes a result.
#include <algorithm>
#include <cmath>
#include <cstring>

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#endif

#include "core/cpu.h"
#include "core/deform_conv2d.h"
#include "core/workspace.h"


namespace convlab {
namespace {

// The sample points of one table row r = og*T + t of one image, output pixel by output pixel.
struct Sample {
  float y, x, m;
};

struct RowSampler {
  const float *dy, *dx, *mask;  // this row's offsets and mask (mask may be null)
  int64_t y0, x0, sH, sW, W_out;
  RowSampler(const float* offset_n, const float* mask_n, const DeformDims& d, int64_t r) {
    const int64_t T = d.taps(), HWo = d.c.hw_out(), og = r / T, t = r % T;
    dy = offset_n + (og * 2 * T + 2 * t) * HWo, dx = dy + HWo;
    mask = mask_n ? mask_n + r * HWo : nullptr;
    y0 = t / d.c.kW * d.c.dH - d.c.pH, x0 = t % d.c.kW * d.c.dW - d.c.pW;
    sH = d.c.sH, sW = d.c.sW, W_out = d.c.W_out;
  }
  // Output pixel p = oh*W_out + ow. The integer part first, then + offset (torchvision's order).
  Sample at(int64_t p, int64_t oh, int64_t ow) const {
    return {static_cast<float>(oh * sH + y0) + dy[p], static_cast<float>(ow * sW + x0) + dx[p], mask ? mask[p] : 1.f};
  }
};

// y in [-1, H) and x in [-1, W) (false for NaN): at least one neighbour may be inside.
inline bool in_box(const Sample& s, const DeformDims& d) {
  return s.y >= -1.f && s.y < static_cast<float>(d.c.H) && s.x >= -1.f && s.x < static_cast<float>(d.c.W);
}

// The channels of offset group og that also lie in weight group g: [lo, hi) (empty when lo >= hi).
inline void segment(const DeformDims& d, int64_t og, int64_t g, int64_t& lo, int64_t& hi) {
  lo = std::max(og * d.cin_og(), g * d.c.cin_g());
  hi = std::min((og + 1) * d.cin_og(), (g + 1) * d.c.cin_g());
}

// One table entry: the channels-last index of the top-left neighbour and the four (masked) weights.
struct Entry {
  int64_t b;
  float w[4];
};

inline Entry entry(const DeformTable& tab, int64_t e, int64_t C) {
  return {static_cast<int64_t>(tab.base[e]) * C, {tab.w[0][e], tab.w[1][e], tab.w[2][e], tab.w[3][e]}};
}

// The vector kernels, once per target (core/deform_sampling_kernels.inc).
namespace scalar {
#define CONVLAB_DEFORM_SIMD 0
#include "core/deform_sampling_kernels.inc"
#undef CONVLAB_DEFORM_SIMD
}  // namespace scalar
#if defined(__x86_64__) && defined(__GNUC__)
#define CONVLAB_DEFORM_HAVE_AVX2 1
CONVLAB_TARGET_AVX2_BEGIN
namespace avx2 {
#define CONVLAB_DEFORM_SIMD 1
#include "core/deform_sampling_kernels.inc"
#undef CONVLAB_DEFORM_SIMD
}  // namespace avx2
CONVLAB_TARGET_END
#endif

bool use_avx2();
void transpose_any(const float* src, int64_t lds, int64_t nc, int64_t nx, float* dst, int64_t ldd) {
#ifdef CONVLAB_DEFORM_HAVE_AVX2
  if (use_avx2()) return avx2::transpose(src, lds, nc, nx, dst, ldd);
#endif
  scalar::transpose(src, lds, nc, nx, dst, ldd);
}

bool use_avx2() {
#ifdef CONVLAB_DEFORM_HAVE_AVX2
  return active_isa() != Isa::scalar;
#else
  return false;
#endif
}

template <bool kCols, bool kSums>
void gather_any(const float* xpT, const DeformTable& tab, const DeformDims& d, int64_t i0, int64_t i1,
                float* colsT, const float* dcolsT, float* const* S) {
#ifdef CONVLAB_DEFORM_HAVE_AVX2
  if (use_avx2()) return avx2::gather_impl<kCols, kSums>(xpT, tab, d, i0, i1, colsT, dcolsT, S);
#endif
  scalar::gather_impl<kCols, kSums>(xpT, tab, d, i0, i1, colsT, dcolsT, S);
}

template <bool kMask>
void build_table_impl(const float* offset_n, const float* mask_n, const DeformDims& d, int64_t r0, int64_t r1,
                      int64_t p0, int64_t p1, const DeformTable& tab) {
  const int32_t Wp = static_cast<int32_t>(d.Wp());
  const int32_t zero_block = static_cast<int32_t>((d.c.H + 1) * Wp);  // rows H+1, H+2 of the padded plane
  const float Hf = static_cast<float>(d.c.H), Wf = static_cast<float>(d.c.W);
  for (int64_t r = r0; r < r1; ++r) {
    const RowSampler rs(offset_n, mask_n, d, r);
    for (int64_t p = p0; p < p1;) {
      const int64_t oh = p / d.c.W_out, ow0 = p % d.c.W_out, n = std::min(d.c.W_out - ow0, p1 - p);
      const float yb = static_cast<float>(oh * rs.sH + rs.y0);
      const float* __restrict dy = rs.dy + p;
      const float* __restrict dx = rs.dx + p;
      const float* __restrict mk = kMask ? rs.mask + p : nullptr;
      int32_t* __restrict base = tab.base + r * tab.ld + (p - p0);
      float* __restrict w0 = tab.w[0] + r * tab.ld + (p - p0);
      float* __restrict w1 = tab.w[1] + r * tab.ld + (p - p0);
      float* __restrict w2 = tab.w[2] + r * tab.ld + (p - p0);
      float* __restrict w3 = tab.w[3] + r * tab.ld + (p - p0);
      for (int64_t k = 0; k < n; ++k) {
        const float y = yb + dy[k];  // the integer part first, then + offset (torchvision's order)
        const float x = static_cast<float>((ow0 + k) * rs.sW + rs.x0) + dx[k];
        const bool inside = y >= -1.f && y < Hf && x >= -1.f && x < Wf;
        const float ys = inside ? y : 0.f, xs = inside ? x : 0.f, m = inside ? (kMask ? mk[k] : 1.f) : 0.f;
        const float fy = std::floor(ys), fx = std::floor(xs);
        const float lh = ys - fy, lw = xs - fx, hh = 1.f - lh, hw = 1.f - lw;
        base[k] = inside ? (static_cast<int32_t>(fy) + 1) * Wp + static_cast<int32_t>(fx) + 1 : zero_block;
        w0[k] = m * (hh * hw);
        w1[k] = m * (hh * lw);
        w2[k] = m * (lh * hw);
        w3[k] = m * (lh * lw);
      }
      p += n;
    }
  }
}

}  // namespace

int64_t deform_table_floats(const DeformDims& d, int64_t P) { return 5 * d.table_rows() * P; }

DeformTable deform_table_view(float* buf, const DeformDims& d, int64_t P) {
  static_assert(sizeof(int32_t) == sizeof(float));
  const int64_t R = d.table_rows() * P;
  DeformTable t;
  t.base = reinterpret_cast<int32_t*>(buf);
  for (int k = 0; k < 4; ++k) t.w[k] = buf + (k + 1) * R;
  t.ld = P;
  return t;
}

void deform_build_table(const float* offset_n, const float* mask_n, const DeformDims& d, int64_t r0, int64_t r1,
                        int64_t p0, int64_t p1, const DeformTable& tab) {
  if (mask_n) return build_table_impl<true>(offset_n, mask_n, d, r0, r1, p0, p1, tab);
  build_table_impl<false>(offset_n, mask_n, d, r0, r1, p0, p1, tab);
}

void deform_pad_channels_last(const float* x_n, const DeformDims& d, int64_t y0, int64_t y1, float* xpT) {
  const int64_t H = d.c.H, W = d.c.W, C = d.c.C_in, Wp = d.Wp();
  for (int64_t py = y0; py < y1; ++py) {  // padded rows: image row py - 1 when 1 <= py <= H, else zeros
    float* row = xpT + py * Wp * C;
    if (py < 1 || py > H) {
      std::fill(row, row + Wp * C, 0.f);
      continue;
    }
    std::fill(row, row + C, 0.f);
    std::fill(row + (W + 1) * C, row + Wp * C, 0.f);
    transpose_any(x_n + (py - 1) * W, H * W, C, W, row + C, C);
  }
}

void deform_add_channels_last(const float* dxT, const DeformDims& d, int64_t y0, int64_t y1, float* dx_n) {
  const int64_t H = d.c.H, W = d.c.W, C = d.c.C_in, Wp = d.Wp();
  float* tmp = workspace(6, C * W);  // one image row, [C, W]
  for (int64_t yy = y0; yy < y1; ++yy) {
    transpose_any(dxT + ((yy + 1) * Wp + 1) * C, C, W, C, tmp, W);
    for (int64_t c = 0; c < C; ++c) {
      float* dst = dx_n + (c * H + yy) * W;
      for (int64_t xx = 0; xx < W; ++xx) dst[xx] += tmp[c * W + xx];
    }
  }
}

void deform_gather(const float* xpT, const DeformTable& tab, const DeformDims& d, int64_t i0, int64_t i1,
                   float* colsT, const float* dcolsT, float* const* S) {
  if (colsT && S) return gather_any<true, true>(xpT, tab, d, i0, i1, colsT, dcolsT, S);
  if (colsT) return gather_any<true, false>(xpT, tab, d, i0, i1, colsT, dcolsT, S);
  if (S) return gather_any<false, true>(xpT, tab, d, i0, i1, colsT, dcolsT, S);
}

void deform_scatter(const DeformTable& tab, const DeformDims& d, int64_t n, int64_t c0, int64_t c1,
                    const float* dcolsT, float* dxT) {
#ifdef CONVLAB_DEFORM_HAVE_AVX2
  if (use_avx2()) return avx2::scatter_impl(tab, d, n, c0, c1, dcolsT, dxT);
#endif
  scalar::scatter_impl(tab, d, n, c0, c1, dcolsT, dxT);
}

void deform_coord_grads(const float* offset_n, const float* mask_n, const float* const* S, int64_t ld,
                        const DeformDims& d, int64_t r0, int64_t r1, int64_t p0, int64_t p1, float* doffset_n,
                        float* dmask_n) {
  const int64_t T = d.taps(), HWo = d.c.hw_out();
  for (int64_t r = r0; r < r1; ++r) {
    const int64_t og = r / T, t = r % T;
    float* gy = doffset_n ? doffset_n + (og * 2 * T + 2 * t) * HWo : nullptr;
    float* gx = doffset_n ? gy + HWo : nullptr;
    float* gm = dmask_n ? dmask_n + r * HWo : nullptr;
    const RowSampler rs(offset_n, mask_n, d, r);
    int64_t oh = p0 / d.c.W_out, ow = p0 % d.c.W_out;
    for (int64_t p = p0; p < p1; ++p) {
      const Sample s = rs.at(p, oh, ow);
      if (++ow == d.c.W_out) ow = 0, ++oh;
      if (!in_box(s, d)) continue;  // every neighbour outside: S is 0 there, so is the gradient
      const int64_t e = r * ld + p - p0;
      const float s0 = S[0][e], s1 = S[1][e], s2 = S[2][e], s3 = S[3][e];
      const float lh = s.y - std::floor(s.y), lw = s.x - std::floor(s.x), hh = 1.f - lh, hw = 1.f - lw;
      if (gy) {
        gy[p] += s.m * (hw * (s2 - s0) + lw * (s3 - s1));
        gx[p] += s.m * (hh * (s1 - s0) + lh * (s3 - s2));
      }
      if (gm) gm[p] += hh * hw * s0 + hh * lw * s1 + lh * hw * s2 + lh * lw * s3;
    }
  }
}

}  // namespace convlab

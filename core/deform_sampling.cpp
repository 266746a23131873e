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

#include "core/deform_conv2d.h"
#include "core/workspace.h"

#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>
#define CONVLAB_DEFORM_AVX2 1
#endif

namespace convlab {
namespace {

// ---- 8 lanes over channels: AVX2, or plain arrays with the same arithmetic elsewhere ----
#ifdef CONVLAB_DEFORM_AVX2
using F8 = __m256;
inline F8 load8(const float* p) { return _mm256_loadu_ps(p); }
inline void store8(float* p, F8 a) { _mm256_storeu_ps(p, a); }
inline F8 zero8() { return _mm256_setzero_ps(); }
inline F8 set8(float v) { return _mm256_set1_ps(v); }
inline F8 mul8(F8 a, F8 b) { return _mm256_mul_ps(a, b); }
inline F8 fma8(F8 a, F8 b, F8 c) { return _mm256_fmadd_ps(a, b, c); }  // a*b + c, one rounding
#else
struct F8 {
  float v[8];
};
inline F8 load8(const float* p) {
  F8 r;
  std::memcpy(r.v, p, sizeof r.v);
  return r;
}
inline void store8(float* p, F8 a) { std::memcpy(p, a.v, sizeof a.v); }
inline F8 zero8() { return F8{}; }
inline F8 set8(float v) {
  F8 r;
  std::fill(r.v, r.v + 8, v);
  return r;
}
inline F8 mul8(F8 a, F8 b) {
  for (int i = 0; i < 8; ++i) a.v[i] *= b.v[i];
  return a;
}
inline F8 fma8(F8 a, F8 b, F8 c) {
  for (int i = 0; i < 8; ++i) c.v[i] = std::fma(a.v[i], b.v[i], c.v[i]);
  return c;
}
#endif

// out[k] = the lanes of a[k] summed (a fixed pairwise order; the same in both builds).
inline void hsum4(F8 a0, F8 a1, F8 a2, F8 a3, float* out) {
#ifdef CONVLAB_DEFORM_AVX2
  const __m256 h = _mm256_hadd_ps(_mm256_hadd_ps(a0, a1), _mm256_hadd_ps(a2, a3));  // per 128-bit half
  _mm_storeu_ps(out, _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1)));
#else
  const F8* a[4] = {&a0, &a1, &a2, &a3};
  for (int k = 0; k < 4; ++k) {
    const float* v = a[k]->v;
    out[k] = ((v[0] + v[1]) + (v[2] + v[3])) + ((v[4] + v[5]) + (v[6] + v[7]));
  }
#endif
}

// dst[x * ldd + c] = src[c * lds + x] for x < nx, c < nc (a [nc, nx] -> [nx, nc] transpose), in 8x8 tiles.
// Element-wise strided loops are slow here: the source rows are a plane (often 4 KiB) apart.
inline void transpose(const float* src, int64_t lds, int64_t nc, int64_t nx, float* dst, int64_t ldd) {
  int64_t c0 = 0;
#ifdef CONVLAB_DEFORM_AVX2
  for (; c0 + 8 <= nc; c0 += 8) {
    int64_t x0 = 0;
    for (; x0 + 8 <= nx; x0 += 8) {
      __m256 r[8], u[8];
      for (int i = 0; i < 8; ++i) r[i] = _mm256_loadu_ps(src + (c0 + i) * lds + x0);
      for (int i = 0; i < 8; i += 2) {
        u[i] = _mm256_unpacklo_ps(r[i], r[i + 1]);
        u[i + 1] = _mm256_unpackhi_ps(r[i], r[i + 1]);
      }
      for (int i = 0; i < 8; i += 4) {
        r[i] = _mm256_shuffle_ps(u[i], u[i + 2], 0x44);
        r[i + 1] = _mm256_shuffle_ps(u[i], u[i + 2], 0xEE);
        r[i + 2] = _mm256_shuffle_ps(u[i + 1], u[i + 3], 0x44);
        r[i + 3] = _mm256_shuffle_ps(u[i + 1], u[i + 3], 0xEE);
      }
      // r[0..3]: columns x0+{0,1,2,3} (channels 0-3 | x+4 in the high half), r[4..7]: channels 4-7.
      for (int i = 0; i < 4; ++i) {
        _mm256_storeu_ps(dst + (x0 + i) * ldd + c0, _mm256_permute2f128_ps(r[i], r[i + 4], 0x20));
        _mm256_storeu_ps(dst + (x0 + i + 4) * ldd + c0, _mm256_permute2f128_ps(r[i], r[i + 4], 0x31));
      }
    }
    for (; x0 < nx; ++x0)
      for (int64_t c = c0; c < c0 + 8; ++c) dst[x0 * ldd + c] = src[c * lds + x0];
  }
#endif
  for (int64_t c = c0; c < nc; ++c)
    for (int64_t x = 0; x < nx; ++x) dst[x * ldd + c] = src[c * lds + x];
}

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

template <bool kCols, bool kSums>
void gather_impl(const float* xpT, const DeformTable& tab, const DeformDims& d, int64_t i0, int64_t i1,
                 float* colsT, const float* dcolsT, float* const* S) {
  const int64_t T = d.taps(), C = d.c.C_in, KT = C * T, K = d.c.cin_g() * T;
  const int64_t Cg = d.c.cin_g(), down = d.Wp() * C;  // channels-last offsets of the right / lower neighbour
  for (int64_t p = i0; p < i1; ++p) {  // tile-local pixel
    for (int64_t og = 0; og < d.OG; ++og) {
      for (int64_t t = 0; t < T; ++t) {
        const int64_t e = (og * T + t) * tab.ld + p;
        const Entry en = entry(tab, e, C);
        const float* x0 = xpT + en.b;
        const F8 w0 = set8(en.w[0]), w1 = set8(en.w[1]), w2 = set8(en.w[2]), w3 = set8(en.w[3]);
        F8 s0 = zero8(), s1 = zero8(), s2 = zero8(), s3 = zero8();
        float t0 = 0.f, t1 = 0.f, t2 = 0.f, t3 = 0.f;  // the channels past the last full block of 8
        for (int64_t g = og * d.cin_og() / Cg; g * Cg < (og + 1) * d.cin_og(); ++g) {
          int64_t lo, hi;
          segment(d, og, g, lo, hi);
          const int64_t col0 = p * KT + g * K + t * Cg - g * Cg;  // + c: the (t, c) column of this pixel
          int64_t c = lo;
          for (; c + 8 <= hi; c += 8) {
            const F8 v0 = load8(x0 + c), v1 = load8(x0 + C + c), v2 = load8(x0 + down + c),
                     v3 = load8(x0 + down + C + c);
            if (kCols) store8(colsT + col0 + c, fma8(w3, v3, fma8(w2, v2, fma8(w1, v1, mul8(w0, v0)))));
            if (kSums) {
              const F8 gv = load8(dcolsT + col0 + c);
              s0 = fma8(gv, v0, s0), s1 = fma8(gv, v1, s1), s2 = fma8(gv, v2, s2), s3 = fma8(gv, v3, s3);
            }
          }
          for (; c < hi; ++c) {
            const float v0 = x0[c], v1 = x0[C + c], v2 = x0[down + c], v3 = x0[down + C + c];
            if (kCols)
              colsT[col0 + c] =
                  std::fma(en.w[3], v3, std::fma(en.w[2], v2, std::fma(en.w[1], v1, en.w[0] * v0)));
            if (kSums) {
              const float gv = dcolsT[col0 + c];
              t0 = std::fma(gv, v0, t0), t1 = std::fma(gv, v1, t1), t2 = std::fma(gv, v2, t2),
              t3 = std::fma(gv, v3, t3);
            }
          }
        }
        if (kSums) {
          float h[4];
          hsum4(s0, s1, s2, s3, h);
          S[0][e] = h[0] + t0, S[1][e] = h[1] + t1, S[2][e] = h[2] + t2, S[3][e] = h[3] + t3;
        }
      }
    }
  }
}

// Table rows [r0, r1) for output pixels [p0, p1), one output row segment at a time (a branch-free loop the
// compiler vectorises). Points outside the [-1, H) x [-1, W) box get the zero block and weight 0.
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
    transpose(x_n + (py - 1) * W, H * W, C, W, row + C, C);
  }
}

void deform_add_channels_last(const float* dxT, const DeformDims& d, int64_t y0, int64_t y1, float* dx_n) {
  const int64_t H = d.c.H, W = d.c.W, C = d.c.C_in, Wp = d.Wp();
  float* tmp = workspace(6, C * W);  // one image row, [C, W]
  for (int64_t yy = y0; yy < y1; ++yy) {
    transpose(dxT + ((yy + 1) * Wp + 1) * C, C, W, C, tmp, W);
    for (int64_t c = 0; c < C; ++c) {
      float* dst = dx_n + (c * H + yy) * W;
      for (int64_t xx = 0; xx < W; ++xx) dst[xx] += tmp[c * W + xx];
    }
  }
}

void deform_gather(const float* xpT, const DeformTable& tab, const DeformDims& d, int64_t i0, int64_t i1,
                   float* colsT, const float* dcolsT, float* const* S) {
  if (colsT && S) return gather_impl<true, true>(xpT, tab, d, i0, i1, colsT, dcolsT, S);
  if (colsT) return gather_impl<true, false>(xpT, tab, d, i0, i1, colsT, dcolsT, S);
  if (S) return gather_impl<false, true>(xpT, tab, d, i0, i1, colsT, dcolsT, S);
}

void deform_scatter(const DeformTable& tab, const DeformDims& d, int64_t n, int64_t c0, int64_t c1,
                    const float* dcolsT, float* dxT) {
  const int64_t T = d.taps(), C = d.c.C_in, KT = C * T, K = d.c.cin_g() * T;
  const int64_t Cg = d.c.cin_g(), down = d.Wp() * C;
  const int64_t nb[4] = {0, C, down, down + C};  // channels-last offsets of the four neighbours
  for (int64_t p = 0; p < n; ++p) {
    for (int64_t og = 0; og < d.OG; ++og) {
      for (int64_t t = 0; t < T; ++t) {
        const Entry en = entry(tab, (og * T + t) * tab.ld + p, C);
        for (int64_t g = og * d.cin_og() / Cg; g * Cg < (og + 1) * d.cin_og(); ++g) {
          int64_t lo, hi;
          segment(d, og, g, lo, hi);
          lo = std::max(lo, c0), hi = std::min(hi, c1);
          const float* gp = dcolsT + p * KT + g * K + t * Cg - g * Cg;  // gp[c]: dcols of channel c
          // dx[neighbour k, c] += w_k * dcols[c] (the four neighbours are distinct pixels).
          float* q = dxT + en.b;
          const F8 w0 = set8(en.w[0]), w1 = set8(en.w[1]), w2 = set8(en.w[2]), w3 = set8(en.w[3]);
          int64_t c = lo;
          for (; c + 8 <= hi; c += 8) {
            const F8 gv = load8(gp + c);
            store8(q + c, fma8(w0, gv, load8(q + c)));
            store8(q + nb[1] + c, fma8(w1, gv, load8(q + nb[1] + c)));
            store8(q + nb[2] + c, fma8(w2, gv, load8(q + nb[2] + c)));
            store8(q + nb[3] + c, fma8(w3, gv, load8(q + nb[3] + c)));
          }
          for (; c < hi; ++c)
            for (int k = 0; k < 4; ++k) q[nb[k] + c] = std::fma(en.w[k], gp[c], q[nb[k] + c]);
        }
      }
    }
  }
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

// core/depthwise.cpp: direct kernels for depthwise conv2d (groups == C_in, C_out = multiplier * C_in,
// weight [C_out, 1, kH, kW]); output channel co reads input channel co / multiplier.
// GEMMs with one input channel per group are the slow path everywhere, so the kernels work plane by plane:
//   y[n, co, oh, ow] = b[co] + sum_{kh,kw} w[co, kh, kw] * x[n, ci, oh*s - p + kh*d, ow*s - p + kw*d]
// (taps outside the image read padding = 0).
//
// Two paths:
//  * plain: any kernel / stride / dilation / padding; each output row is a sum of shifted, scaled input rows
//    over the interval of ow where the input column is inside the image. The reference for the fast path.
//  * "same 3x3" (3x3, stride 1, dilation 1, padding 1, W >= 8; core/depthwise_same3x3.inc, compiled for AVX2
//    and for the scalar target with the same bits): 8 output columns per vector, the 9 taps
//    accumulated in a register (one store per output vector), the border columns handled by shifting a
//    zero into the vector instead of branching, the border rows by compile-time row ranges. dx is the same
//    correlation run on dy with the kernel flipped (accumulated into dx); dw keeps 9 vector accumulators
//    (and db a 10th) per (n, co) plane while it streams dy and x. The backward does dx, dw and db plane by
//    plane, so each dy plane is read from memory once and reused from L1/L2. Measured limits and numbers:
//    docs/perf_depthwise.md.
// Parallel over (n, c) planes with static scheduling; every output element and every per-plane dw partial
// is computed by one thread in a fixed order, and the partials are reduced over n in order afterwards, so
// results are bit-identical for any thread count. dw and db are summed per batch shard (core/shards.h: the
// shard's images in order) and the shard partials folded in shard order, so ranks holding a few shards each
// get the bits of one process holding them all; outside training there is one shard.
#include <algorithm>

#include <cmath>
#include <cstring>
#include <vector>

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#endif

#include "core/shards.h"
#include "core/conv.h"
#include "core/cpu.h"
#include "core/workspace.h"

namespace convlab {
namespace {

// ---------------------------------------------------------------- plain path (any geometry)

// Output columns whose input column ow*s - p + off lies in [0, W): [lo, hi).
inline void valid_cols(const ConvDims& d, int64_t off, int64_t& lo, int64_t& hi) {
  const int64_t a = d.pW - off;
  lo = a <= 0 ? 0 : (a + d.sW - 1) / d.sW;
  const int64_t b = d.W - 1 + d.pW - off;
  hi = b < 0 ? 0 : std::min(d.W_out, b / d.sW + 1);
  lo = std::min(lo, hi);
}

// sum_i a[i] * b[i*stride], eight independent partial sums in a fixed order (vectorisable, deterministic).
inline float dot(const float* a, const float* b, int64_t n, int64_t stride) {
  float s[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  int64_t i = 0;
  if (stride == 1) {
    for (; i + 8 <= n; i += 8)
      for (int l = 0; l < 8; ++l) s[l] += a[i + l] * b[i + l];
  }
  float tail = 0.f;
  for (; i < n; ++i) tail += a[i] * b[i * stride];
  return ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7])) + tail;
}

void forward_plain(const float* x, const float* w, const float* b, const ConvDims& d, float* y) {
  const int64_t mult = d.C_out / d.C_in, HWo = d.hw_out(), planes = d.N * d.C_out;
#pragma omp parallel for schedule(static)
  for (int64_t p = 0; p < planes; ++p) {
    const int64_t n = p / d.C_out, co = p % d.C_out, ci = co / mult;
    const float* xp = x + (n * d.C_in + ci) * d.H * d.W;
    const float* wp = w + co * d.kH * d.kW;
    float* yp = y + p * HWo;
    std::fill(yp, yp + HWo, b ? b[co] : 0.f);
    for (int64_t oh = 0; oh < d.H_out; ++oh) {
      float* yrow = yp + oh * d.W_out;
      for (int64_t kh = 0; kh < d.kH; ++kh) {
        const int64_t ih = oh * d.sH - d.pH + kh * d.dH;
        if (ih < 0 || ih >= d.H) continue;
        for (int64_t kw = 0; kw < d.kW; ++kw) {
          const int64_t off = kw * d.dW - d.pW;
          int64_t lo, hi;
          valid_cols(d, kw * d.dW, lo, hi);
          const float wv = wp[kh * d.kW + kw];
          const float* xrow = xp + ih * d.W + off;  // xrow[ow * s] is input column ow*s - p + kw*d
          if (d.sW == 1) {
            for (int64_t ow = lo; ow < hi; ++ow) yrow[ow] += wv * xrow[ow];
          } else {
            for (int64_t ow = lo; ow < hi; ++ow) yrow[ow] += wv * xrow[ow * d.sW];
          }
        }
      }
    }
  }
}

void backward_plain(const float* x, const float* w, const float* dy, const ConvDims& d, float* dx,
                    float* dw) {
  const int64_t mult = d.C_out / d.C_in, HWo = d.hw_out(), taps = d.kH * d.kW;
  if (dx) {  // the adjoint of the forward: scatter each dy row back through every tap
    const int64_t planes = d.N * d.C_in;
#pragma omp parallel for schedule(static)
    for (int64_t p = 0; p < planes; ++p) {
      const int64_t n = p / d.C_in, ci = p % d.C_in;
      float* dxp = dx + p * d.H * d.W;
      for (int64_t co = ci * mult; co < (ci + 1) * mult; ++co) {
        const float* dyp = dy + (n * d.C_out + co) * HWo;
        const float* wp = w + co * taps;
        for (int64_t oh = 0; oh < d.H_out; ++oh) {
          const float* dyrow = dyp + oh * d.W_out;
          for (int64_t kh = 0; kh < d.kH; ++kh) {
            const int64_t ih = oh * d.sH - d.pH + kh * d.dH;
            if (ih < 0 || ih >= d.H) continue;
            for (int64_t kw = 0; kw < d.kW; ++kw) {
              int64_t lo, hi;
              valid_cols(d, kw * d.dW, lo, hi);
              const float wv = wp[kh * d.kW + kw];
              float* dxrow = dxp + ih * d.W + kw * d.dW - d.pW;
              if (d.sW == 1) {
                for (int64_t ow = lo; ow < hi; ++ow) dxrow[ow] += wv * dyrow[ow];
              } else {
                for (int64_t ow = lo; ow < hi; ++ow) dxrow[ow * d.sW] += wv * dyrow[ow];
              }
            }
          }
        }
      }
    }
  }
  if (dw) {  // dw[co, tap] += sum over n and output pixels, in a fixed order per co
    // One double partial per batch shard (core/shards.h; one shard outside training): the shard's images in
    // order, then the shards folded in shard order. part [shards, C_out * taps].
    const int64_t shards = local_shards(d.N, "depthwise conv2d"), per = d.N / shards, wsize = d.C_out * taps;
    std::vector<double> part(static_cast<size_t>(shards * wsize)), sum(static_cast<size_t>(wsize));
#pragma omp parallel for schedule(static)
    for (int64_t co = 0; co < d.C_out; ++co) {
      const int64_t ci = co / mult;
      double acc[64];  // taps are handled in blocks of 64
      for (int64_t k = 0; k < shards; ++k)
        for (int64_t t0 = 0; t0 < taps; t0 += 64) {
          const int64_t t1 = std::min(taps, t0 + 64);
          std::fill(acc, acc + 64, 0.0);
          for (int64_t n = k * per; n < (k + 1) * per; ++n) {
            const float* dyp = dy + (n * d.C_out + co) * HWo;
            const float* xp = x + (n * d.C_in + ci) * d.H * d.W;
            for (int64_t t = t0; t < t1; ++t) {
              const int64_t kh = t / d.kW, kw = t % d.kW;
              int64_t lo, hi;
              valid_cols(d, kw * d.dW, lo, hi);
              float s = 0.f;
              for (int64_t oh = 0; oh < d.H_out; ++oh) {
                const int64_t ih = oh * d.sH - d.pH + kh * d.dH;
                if (ih < 0 || ih >= d.H || hi <= lo) continue;
                const float* xrow = xp + ih * d.W + kw * d.dW - d.pW;
                s += dot(dyp + oh * d.W_out + lo, xrow + lo * d.sW, hi - lo, d.sW);
              }
              acc[t - t0] += s;
            }
          }
          std::copy(acc, acc + (t1 - t0), part.data() + k * wsize + co * taps + t0);
        }
    }
    fold_shards(part.data(), wsize, sum.data());
    for (int64_t i = 0; i < wsize; ++i) dw[i] += static_cast<float>(sum[size_t(i)]);
  }
}

// ---------------------------------------------------------------- "same 3x3" path, once per target
// Output [H, W] == input [H, W] here; W >= 8 so that every row holds at least one full vector.
bool is_same3x3(const ConvDims& d) {
  return d.kH == 3 && d.kW == 3 && d.sH == 1 && d.sW == 1 && d.dH == 1 && d.dW == 1 && d.pH == 1 &&
         d.pW == 1 && d.W >= 8;
}

// dw [C_out, 9] (and db [C_out] when fused) += the per-plane partials part [N, C_out, 10] of the "same 3x3"
// backward (9 taps, then the bias): summed over the images of each batch shard in order (core/shards.h; one
// shard outside training), the shards folded in shard order. Plain code shared by every SIMD target.
void add_plane_partials(const double* part, const ConvDims& d, bool fuse_db, float* dw, float* db) {
  const int64_t shards = local_shards(d.N, "depthwise conv2d"), per = d.N / shards, cols = d.C_out * 10;
  const int nt = fuse_db ? 10 : 9;
  std::vector<double> shard_part(static_cast<size_t>(shards * cols)), sum(static_cast<size_t>(cols));  // [shards, C_out, 10]
  for (int64_t k = 0; k < shards; ++k)
    for (int64_t co = 0; co < d.C_out; ++co)
      for (int t = 0; t < nt; ++t) {
        double s = 0.0;
        for (int64_t n = k * per; n < (k + 1) * per; ++n) s += part[(n * d.C_out + co) * 10 + t];
        shard_part[size_t(k * cols + co * 10 + t)] = s;
      }
  fold_shards(shard_part.data(), cols, sum.data());
  for (int64_t co = 0; co < d.C_out; ++co)
    for (int t = 0; t < nt; ++t) {
      const float s = static_cast<float>(sum[size_t(co * 10 + t)]);
      if (t < 9) dw[co * 9 + t] += s;
      else db[co] += s;
    }
}

namespace scalar {
#define CL_DW_INLINE inline
struct V {
  float v[8];
};
inline V vload(const float* p) {
  V r;
  std::memcpy(r.v, p, sizeof r.v);
  return r;
}
inline void vstore(float* p, const V& a) { std::memcpy(p, a.v, sizeof a.v); }
inline V vset(float x) {
  V r;
  std::fill(r.v, r.v + 8, x);
  return r;
}
inline V vzero() { return vset(0.f); }
inline V vfma(const V& a, const V& b, V c) {
  for (int l = 0; l < 8; ++l) c.v[l] = std::fma(a.v[l], b.v[l], c.v[l]);
  return c;
}
inline V vadd(V a, const V& b) {
  for (int l = 0; l < 8; ++l) a.v[l] += b.v[l];
  return a;
}
inline V shift_in_zero_left(const V& b) {
  V r;
  r.v[0] = 0.f;
  for (int l = 1; l < 8; ++l) r.v[l] = b.v[l - 1];
  return r;
}
inline V shift_in_zero_right(const V& b) {
  V r;
  for (int l = 0; l < 7; ++l) r.v[l] = b.v[l + 1];
  r.v[7] = 0.f;
  return r;
}
inline V vload_from(const float* p, int first) {
  V r = vload(p);
  for (int l = 0; l < first; ++l) r.v[l] = 0.f;
  return r;
}
inline void pin(V&, V&, V&) {}
#include "core/depthwise_same3x3.inc"
#undef CL_DW_INLINE
}  // namespace scalar

#if defined(__x86_64__) && defined(__GNUC__)
#define CONVLAB_DEPTHWISE_AVX2 1
CONVLAB_TARGET_AVX2_BEGIN
namespace avx2 {
#define CL_DW_INLINE inline __attribute__((always_inline))
using V = __m256;
CL_DW_INLINE V vload(const float* p) { return _mm256_loadu_ps(p); }
CL_DW_INLINE void vstore(float* p, V a) { _mm256_storeu_ps(p, a); }
CL_DW_INLINE V vset(float x) { return _mm256_set1_ps(x); }
CL_DW_INLINE V vzero() { return _mm256_setzero_ps(); }
CL_DW_INLINE V vfma(V a, V b, V c) { return _mm256_fmadd_ps(a, b, c); }
CL_DW_INLINE V vadd(V a, V b) { return _mm256_add_ps(a, b); }
CL_DW_INLINE V shift_in_zero_left(V b) {  // [0, b0, ..., b6]
  const V t = _mm256_permute2f128_ps(b, b, 0x08);  // [0 | b0..b3]
  return _mm256_castsi256_ps(_mm256_alignr_epi8(_mm256_castps_si256(b), _mm256_castps_si256(t), 12));
}
CL_DW_INLINE V shift_in_zero_right(V b) {  // [b1, ..., b7, 0]
  const V t = _mm256_permute2f128_ps(b, b, 0x81);  // [b4..b7 | 0]
  return _mm256_castsi256_ps(_mm256_alignr_epi8(_mm256_castps_si256(t), _mm256_castps_si256(b), 4));
}
CL_DW_INLINE V vload_from(const float* p, int first) {  // an AND with a lane mask: masked lanes are +0
  const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  const V keep = _mm256_castsi256_ps(_mm256_cmpgt_epi32(lane, _mm256_set1_epi32(first - 1)));
  return _mm256_and_ps(keep, _mm256_loadu_ps(p));
}
// Keep the taps in registers: folded into the FMAs as memory operands, each would be loaded once per
// output row that uses it, and the loads (half of them split across cache lines) become the bottleneck.
CL_DW_INLINE void pin(V& a, V& b, V& c) { __asm__("" : "+x"(a), "+x"(b), "+x"(c)); }
#include "core/depthwise_same3x3.inc"
#undef CL_DW_INLINE
}  // namespace avx2
CONVLAB_TARGET_END
#endif

bool use_avx2() {
#ifdef CONVLAB_DEPTHWISE_AVX2
  return active_isa() != Isa::scalar;
#else
  return false;
#endif
}

}  // namespace

bool is_depthwise(const ConvDims& d) { return d.G > 1 && d.G == d.C_in && d.C_out % d.C_in == 0; }

void depthwise_forward(const float* x, const float* w, const float* b, const ConvDims& d, float* y) {
  if (is_same3x3(d)) {
#ifdef CONVLAB_DEPTHWISE_AVX2
    if (use_avx2()) return avx2::forward_same3x3(x, w, b, d, y);
#endif
    return scalar::forward_same3x3(x, w, b, d, y);
  }
  forward_plain(x, w, b, d, y);
}

void depthwise_backward(const float* x, const float* w, const float* dy, const ConvDims& d, float* dx,
                        float* dw, float* db) {
  if (is_same3x3(d)) {
#ifdef CONVLAB_DEPTHWISE_AVX2
    if (use_avx2()) return avx2::backward_same3x3(x, w, dy, d, dx, dw, db);
#endif
    return scalar::backward_same3x3(x, w, dy, d, dx, dw, db);
  }
  if (db) bias_backward(dy, d.N, d.C_out, d.hw_out(), db);
  backward_plain(x, w, dy, d, dx, dw);
}

}  // namespace convlab

// core/depthwise.cpp: direct kernels for depthwise conv2d (groups == C_in, C_out = multiplier * C_in,
// weight [C_out, 1, kH, kW]); output channel co reads input channel co / multiplier.
// GEMMs with one input channel per group are the slow path everywhere, so the kernels work plane by plane:
//   y[n, co, oh, ow] = b[co] + sum_{kh,kw} w[co, kh, kw] * x[n, ci, oh*s - p + kh*d, ow*s - p + kw*d]
// (taps outside the image read padding = 0).
//
// Two paths:
//  * plain: any kernel / stride / dilation / padding; each output row is a sum of shifted, scaled input rows
//    over the interval of ow where the input column is inside the image. The reference for the fast path.
//  * AVX2 "same 3x3" (3x3, stride 1, dilation 1, padding 1, W >= 8): 8 output columns per vector, the 9 taps
//    accumulated in a register (one store per output vector), the border columns handled by shifting a
//    zero into the vector instead of branching, the border rows by compile-time row ranges. dx is the same
//    correlation run on dy with the kernel flipped (accumulated into dx); dw keeps 9 vector accumulators
//    (and db a 10th) per (n, co) plane while it streams dy and x. The backward does dx, dw and db plane by
//    plane, so each dy plane is read from memory once and reused from L1/L2. Measured limits and numbers:
//    docs/perf_depthwise.md.
// Parallel over (n, c) planes with static scheduling; every output element and every per-plane dw partial
// is computed by one thread in a fixed order, and the partials are reduced over n in order afterwards, so
// results are bit-identical for any thread count.
#include <algorithm>

#if defined(__AVX2__) && defined(__FMA__) && !defined(CONVLAB_DEPTHWISE_PLAIN)
#include <immintrin.h>
#define CONVLAB_DEPTHWISE_AVX2 1
#endif

#include "core/conv.h"
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
#pragma omp parallel for schedule(static)
    for (int64_t co = 0; co < d.C_out; ++co) {
      const int64_t ci = co / mult;
      double acc[64];  // taps are handled in blocks of 64
      for (int64_t t0 = 0; t0 < taps; t0 += 64) {
        const int64_t t1 = std::min(taps, t0 + 64);
        std::fill(acc, acc + 64, 0.0);
        for (int64_t n = 0; n < d.N; ++n) {
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
        for (int64_t t = t0; t < t1; ++t) dw[co * taps + t] += static_cast<float>(acc[t - t0]);
      }
    }
  }
}

#ifdef CONVLAB_DEPTHWISE_AVX2
// ---------------------------------------------------------------- AVX2 path: 3x3, stride 1, padding 1

#define CL_DW_INLINE inline __attribute__((always_inline))

// Output [H, W] == input [H, W] here; W >= 8 so that every row holds at least one full vector.
bool is_same3x3(const ConvDims& d) {
  return d.kH == 3 && d.kW == 3 && d.sH == 1 && d.sW == 1 && d.dH == 1 && d.dW == 1 && d.pH == 1 &&
         d.pW == 1 && d.W >= 8;
}

// Where a vector of 8 output columns sits in its row: inner vectors read columns ow-1 .. ow+8 from memory;
// the first vector (ow = 0) must read column -1 as 0, the last (ow = W-8) column W as 0.
enum class Edge { inner, left, right, both };

CL_DW_INLINE __m256 shift_in_zero_left(__m256 b) {  // [0, b0, ..., b6]
  const __m256 t = _mm256_permute2f128_ps(b, b, 0x08);  // [0 | b0..b3]
  return _mm256_castsi256_ps(_mm256_alignr_epi8(_mm256_castps_si256(b), _mm256_castps_si256(t), 12));
}
CL_DW_INLINE __m256 shift_in_zero_right(__m256 b) {  // [b1, ..., b7, 0]
  const __m256 t = _mm256_permute2f128_ps(b, b, 0x81);  // [b4..b7 | 0]
  return _mm256_castsi256_ps(_mm256_alignr_epi8(_mm256_castps_si256(t), _mm256_castps_si256(b), 4));
}

// The three horizontal taps of one input row for output columns ow .. ow+7:
// a = row[ow-1 ..], b = row[ow ..], c = row[ow+1 ..], padding columns read as 0.
template <Edge E>
CL_DW_INLINE void row_taps(const float* row, int64_t ow, __m256& a, __m256& b, __m256& c) {
  b = _mm256_loadu_ps(row + ow);
  if constexpr (E == Edge::left || E == Edge::both) a = shift_in_zero_left(b);
  else a = _mm256_loadu_ps(row + ow - 1);
  if constexpr (E == Edge::right || E == Edge::both) c = shift_in_zero_right(b);
  else c = _mm256_loadu_ps(row + ow + 1);
  // Keep the taps in registers: folded into the FMAs as memory operands, each would be loaded once per
  // output row that uses it, and the loads (half of them split across cache lines) become the bottleneck.
  __asm__("" : "+x"(a), "+x"(b), "+x"(c));
}

// Output rows are done NOUT = 3 or 2 (or 1) at a time: the group oh .. oh+NOUT-1 reads the window of
// input rows oh-1 .. oh+NOUT, each row's taps are loaded once for all outputs that use them, and the
// outputs are independent FMA chains (one chain of 9 dependent FMAs is latency-bound). Window rows
// outside the image are left out at compile time: only rows [R0, R1) of the window exist, and `rows`
// points at window row R0. Output j uses window rows j .. j+2, always in ascending order, so a row gets
// the same bits in any group.
// One vector of NOUT output rows: s[j] = (ACC ? out[j*W + ow ..] : bias)
//                                         + sum over window rows r of sum_k wv[3(r-j) + k] * tap_k(row r).
template <Edge E, int R0, int R1, int NOUT, bool ACC>
CL_DW_INLINE void conv_vec(const float* rows, int64_t W, const __m256* wv, __m256 bias, const float* out,
                           int64_t ow, __m256* s) {
  for (int j = 0; j < NOUT; ++j) s[j] = ACC ? _mm256_loadu_ps(out + j * W + ow) : bias;
#pragma GCC unroll 5
  for (int r = R0; r < R1; ++r) {
    __m256 a, b, c;
    row_taps<E>(rows + (r - R0) * W, ow, a, b, c);
#pragma GCC unroll 3
    for (int j = 0; j < NOUT; ++j) {
      if (r - j < 0 || r - j > 2) continue;
      s[j] = _mm256_fmadd_ps(wv[3 * (r - j)], a, s[j]);
      s[j] = _mm256_fmadd_ps(wv[3 * (r - j) + 1], b, s[j]);
      s[j] = _mm256_fmadd_ps(wv[3 * (r - j) + 2], c, s[j]);
    }
  }
}

// NOUT output rows (out + j*W): out = (ACC ? out : bias) + correlation. The last vector starts at W-8 and
// overlaps the one before it when W % 8 != 0: it is computed first, from the values `out` had before the
// row, and stored last, so overlapped lanes are written twice with the same value instead of being
// accumulated twice.
template <int R0, int R1, int NOUT, bool ACC>
CL_DW_INLINE void conv_row(const float* rows, int64_t W, const __m256* taps, __m256 bias, float* out) {
  // A local copy of the taps: __m256 may alias anything, so through the pointer every store to `out`
  // would force the compiler to reload them from memory.
  __m256 wv[9];
  for (int t = 0; t < 9; ++t) wv[t] = taps[t];
  __m256 right[NOUT], s[NOUT];
  if (W == 8) conv_vec<Edge::both, R0, R1, NOUT, ACC>(rows, W, wv, bias, out, 0, right);
  else conv_vec<Edge::right, R0, R1, NOUT, ACC>(rows, W, wv, bias, out, W - 8, right);
  if (W > 8) {
    conv_vec<Edge::left, R0, R1, NOUT, ACC>(rows, W, wv, bias, out, 0, s);
    for (int j = 0; j < NOUT; ++j) _mm256_storeu_ps(out + j * W, s[j]);
  }
  for (int64_t ow = 8; ow + 8 < W; ow += 8) {
    conv_vec<Edge::inner, R0, R1, NOUT, ACC>(rows, W, wv, bias, out, ow, s);
    for (int j = 0; j < NOUT; ++j) _mm256_storeu_ps(out + j * W + ow, s[j]);
  }
  for (int j = 0; j < NOUT; ++j) _mm256_storeu_ps(out + j * W + W - 8, right[j]);
}

// One plane: out [H, W] (+)= "same" 3x3 correlation of in [H, W] with taps wv[3*r + k] (input row oh-1+r,
// column ow-1+k).
template <bool ACC>
void conv_plane(const float* in, int64_t H, int64_t W, const __m256* wv, __m256 bias, float* out) {
  if (H == 1) return conv_row<1, 2, 1, ACC>(in, W, wv, bias, out);
  if (H == 2) return conv_row<1, 3, 2, ACC>(in, W, wv, bias, out);
  conv_row<1, 4, 2, ACC>(in, W, wv, bias, out);  // rows 0, 1: no input row -1
  int64_t oh = 2;
  for (; oh + 3 < H; oh += 3) conv_row<0, 5, 3, ACC>(in + (oh - 1) * W, W, wv, bias, out + oh * W);
  for (; oh + 2 < H; oh += 2) conv_row<0, 4, 2, ACC>(in + (oh - 1) * W, W, wv, bias, out + oh * W);
  if (oh + 2 == H) conv_row<0, 3, 2, ACC>(in + (oh - 1) * W, W, wv, bias, out + oh * W);  // no row H
  else conv_row<0, 2, 1, ACC>(in + (oh - 1) * W, W, wv, bias, out + oh * W);           // last, alone
}

// dw taps of one vector of NOUT dy rows: acc[3(r-j) + k] += d[j] * tap_k(window row r); with DB also
// acc[9] += d[j] (the bias gradient, fused here so that dy is streamed once).
template <Edge E, int R0, int R1, int NOUT, bool DB>
CL_DW_INLINE void grad_vec(const float* rows, int64_t W, const __m256* d, int64_t ow, __m256* acc) {
  if constexpr (DB)
    for (int j = 0; j < NOUT; ++j) acc[9] = _mm256_add_ps(acc[9], d[j]);
#pragma GCC unroll 5
  for (int r = R0; r < R1; ++r) {
    __m256 a, b, c;
    row_taps<E>(rows + (r - R0) * W, ow, a, b, c);
#pragma GCC unroll 3
    for (int j = 0; j < NOUT; ++j) {
      if (r - j < 0 || r - j > 2) continue;
      acc[3 * (r - j)] = _mm256_fmadd_ps(d[j], a, acc[3 * (r - j)]);
      acc[3 * (r - j) + 1] = _mm256_fmadd_ps(d[j], b, acc[3 * (r - j) + 1]);
      acc[3 * (r - j) + 2] = _mm256_fmadd_ps(d[j], c, acc[3 * (r - j) + 2]);
    }
  }
}

// NOUT dy rows (dy + j*W). The last vector (at W-8) may overlap columns already counted: their dy lanes
// are zeroed.
template <int R0, int R1, int NOUT, bool DB>
CL_DW_INLINE void grad_row(const float* rows, int64_t W, const float* dy, __m256* acc) {
  __m256 d[NOUT];
  auto load = [&](int64_t ow, __m256 keep) {
    for (int j = 0; j < NOUT; ++j) d[j] = _mm256_and_ps(keep, _mm256_loadu_ps(dy + j * W + ow));
  };
  load(0, _mm256_castsi256_ps(_mm256_set1_epi32(-1)));
  if (W == 8) return grad_vec<Edge::both, R0, R1, NOUT, DB>(rows, W, d, 0, acc);
  grad_vec<Edge::left, R0, R1, NOUT, DB>(rows, W, d, 0, acc);
  int64_t ow = 8;
  for (; ow + 8 < W; ow += 8) {
    for (int j = 0; j < NOUT; ++j) d[j] = _mm256_loadu_ps(dy + j * W + ow);
    grad_vec<Edge::inner, R0, R1, NOUT, DB>(rows, W, d, ow, acc);
  }
  const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  load(W - 8, _mm256_castsi256_ps(_mm256_cmpgt_epi32(lane, _mm256_set1_epi32(int(ow - (W - 8)) - 1))));
  grad_vec<Edge::right, R0, R1, NOUT, DB>(rows, W, d, W - 8, acc);
}

// Adds the 8 lanes of each of the n accumulators into out in double (lane order fixed) and clears them.
CL_DW_INLINE void flush(__m256* acc, int n, double* out) {
  alignas(32) float l[8];
  for (int t = 0; t < n; ++t) {
    _mm256_store_ps(l, acc[t]);
    out[t] += ((double(l[0]) + l[1]) + (double(l[2]) + l[3])) +
              ((double(l[4]) + l[5]) + (double(l[6]) + l[7]));
    acc[t] = _mm256_setzero_ps();
  }
}

// out[kh*3 + kw] += sum_{oh, ow} dy[oh, ow] * x[oh-1+kh, ow-1+kw] for one plane pair x, dy [H, W], two dy
// rows at a time (9 accumulators + 2 dy + 3 taps fill the 16 registers); with DB also out[9] += sum dy.
// The float lanes are flushed into double after every block of rows (~256 products per lane and tap; the
// block depends on W only, not on threads), which bounds the rounding on large planes.
template <bool DB>
void grad_plane(const float* x, const float* dy, int64_t H, int64_t W, double* out) {
  __m256 acc[10];
  for (auto& a : acc) a = _mm256_setzero_ps();
  const int64_t block = 2 * std::max<int64_t>(1, 1024 / W);
  for (int64_t oh = 0; oh < H; oh += 2) {
    const float* dyr = dy + oh * W;
    if (H == 1) grad_row<1, 2, 1, DB>(x, W, dyr, acc);
    else if (H == 2) grad_row<1, 3, 2, DB>(x, W, dyr, acc);
    else if (oh == 0) grad_row<1, 4, 2, DB>(x, W, dyr, acc);
    else if (oh + 2 < H) grad_row<0, 4, 2, DB>(x + (oh - 1) * W, W, dyr, acc);
    else if (oh + 2 == H) grad_row<0, 3, 2, DB>(x + (oh - 1) * W, W, dyr, acc);
    else grad_row<0, 2, 1, DB>(x + (oh - 1) * W, W, dyr, acc);
    if ((oh + 2) % block == 0 || oh + 2 >= H) flush(acc, DB ? 10 : 9, out);
  }
}

void forward_same3x3(const float* x, const float* w, const float* b, const ConvDims& d, float* y) {
  const int64_t mult = d.C_out / d.C_in, HW = d.H * d.W, planes = d.N * d.C_out;
#pragma omp parallel for schedule(static)
  for (int64_t p = 0; p < planes; ++p) {
    const int64_t n = p / d.C_out, co = p % d.C_out, ci = co / mult;
    __m256 wv[9];
    for (int t = 0; t < 9; ++t) wv[t] = _mm256_set1_ps(w[co * 9 + t]);
    conv_plane<false>(x + (n * d.C_in + ci) * HW, d.H, d.W, wv, _mm256_set1_ps(b ? b[co] : 0.f), y + p * HW);
  }
}

// dx[n, ci] += sum over the group's co of the "same" correlation of dy[n, co] with w[co] flipped
// (dx[ih, iw] = sum w[kh, kw] dy[ih+1-kh, iw+1-kw]); dw partials per (n, co) plane in double, then summed
// over n in order. With dw requested, db is summed in the same pass (partials side by side), otherwise by
// bias_backward. Per plane, the dw pass re-reads dy from L1/L2 right after the dx pass.
void backward_same3x3(const float* x, const float* w, const float* dy, const ConvDims& d, float* dx,
                      float* dw, float* db) {
  const int64_t mult = d.C_out / d.C_in, HW = d.H * d.W, planes = d.N * d.C_in;
  if (db && !dw) bias_backward(dy, d.N, d.C_out, HW, db);
  if (!dx && !dw) return;
  const bool fuse_db = db && dw;
  // [N, C_out, 10] doubles: 9 taps, then the bias
  double* part = dw ? reinterpret_cast<double*>(shared_workspace(0, 2 * d.N * d.C_out * 10)) : nullptr;
#pragma omp parallel for schedule(static)
  for (int64_t p = 0; p < planes; ++p) {
    const int64_t n = p / d.C_in, ci = p % d.C_in;
    for (int64_t co = ci * mult; co < (ci + 1) * mult; ++co) {
      const float* dyp = dy + (n * d.C_out + co) * HW;
      if (dx) {
        __m256 wv[9];
        for (int t = 0; t < 9; ++t) wv[t] = _mm256_set1_ps(w[co * 9 + 8 - t]);
        conv_plane<true>(dyp, d.H, d.W, wv, _mm256_setzero_ps(), dx + p * HW);
      }
      if (dw) {
        double* o = part + (n * d.C_out + co) * 10;
        std::fill(o, o + 10, 0.0);
        if (fuse_db) grad_plane<true>(x + p * HW, dyp, d.H, d.W, o);
        else grad_plane<false>(x + p * HW, dyp, d.H, d.W, o);
      }
    }
  }
  if (dw) {  // partials summed over n in order: the same bits for any thread count
    for (int64_t co = 0; co < d.C_out; ++co)
      for (int t = 0; t < (fuse_db ? 10 : 9); ++t) {
        double s = 0.0;
        for (int64_t n = 0; n < d.N; ++n) s += part[(n * d.C_out + co) * 10 + t];
        if (t < 9) dw[co * 9 + t] += static_cast<float>(s);
        else db[co] += static_cast<float>(s);
      }
  }
}
#endif  // CONVLAB_DEPTHWISE_AVX2

}  // namespace

bool is_depthwise(const ConvDims& d) { return d.G > 1 && d.G == d.C_in && d.C_out % d.C_in == 0; }

void depthwise_forward(const float* x, const float* w, const float* b, const ConvDims& d, float* y) {
#ifdef CONVLAB_DEPTHWISE_AVX2
  if (is_same3x3(d)) return forward_same3x3(x, w, b, d, y);
#endif
  forward_plain(x, w, b, d, y);
}

void depthwise_backward(const float* x, const float* w, const float* dy, const ConvDims& d, float* dx,
                        float* dw, float* db) {
#ifdef CONVLAB_DEPTHWISE_AVX2
  if (is_same3x3(d)) return backward_same3x3(x, w, dy, d, dx, dw, db);
#endif
  if (db) bias_backward(dy, d.N, d.C_out, d.hw_out(), db);
  backward_plain(x, w, dy, d, dx, dw);
}

}  // namespace convlab

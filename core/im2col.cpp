// core/im2col.cpp: im2col / col2im with stride, padding and dilation.
// cols row r = (c, kh, kw) (row-major over the group's input channels and kernel taps), column = (oh, ow).
// For each row and output row, the valid output columns form one interval [ow_lo, ow_hi): outside it the
// tap reads padding. Computing the interval once per (kw) keeps the inner loop branch-free (a memcpy when
// the stride is 1).
#include <algorithm>
#include <cstring>
#include <vector>

#include "core/conv.h"
#include "core/cpu.h"
#include "core/gemm_kernel.h"
#include "core/workspace.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define CONVLAB_COPY_AVX2 1
#endif

namespace convlab {
namespace {

// Output columns ow whose input column iw = ow*s - p + kw*d lies in [0, W): [lo, hi).
inline void valid_range(int64_t W, int64_t W_out, int64_t s, int64_t p, int64_t off, int64_t& lo,
                        int64_t& hi) {
  // iw >= 0  <=> ow >= (p - off) / s, rounded up;  iw <= W - 1 <=> ow <= (W - 1 + p - off) / s, rounded down.
  const int64_t a = p - off;
  lo = a <= 0 ? 0 : (a + s - 1) / s;
  const int64_t b = W - 1 + p - off;
  hi = b < 0 ? 0 : std::min(W_out, b / s + 1);
  lo = std::min(lo, hi);
}

// ---- short output rows (W_out < 16: DCGAN's 7x7 and 14x14 maps) ----
// There the interval loops above cost more per row of 7 than the copy itself (profiled: im2col was ~21% of a
// DCGAN step). Instead each input plane goes once into a zero-bordered scratch plane [H + 2pH, W + 2pW], and
// every tap reads its H_out*W_out values through an index table built once per call: no bounds test, no
// per-row setup. Every read lands inside the bordered plane, because H_out = (H + 2pH - dH(kH-1) - 1)/sH + 1
// bounds the largest row read, (H_out-1) sH + (kH-1) dH, by H + 2pH - 1 (columns likewise).
struct ShortRows {
  int64_t Hp, Wp, taps, HWo;
  std::vector<int32_t>& table;  // [taps, HWo]: position in the bordered plane read by tap t at output j
  std::vector<float>& plane;    // [Hp, Wp], borders zero
};

bool use_short_rows(const ConvDims& d) {
  return d.W_out < 16 && d.kH * d.kW * d.hw_out() <= (1 << 16) && (d.H + 2 * d.pH) * (d.W + 2 * d.pW) < (1 << 30);
}

ShortRows short_rows(const ConvDims& d) {
  thread_local std::vector<int32_t> table;
  thread_local std::vector<float> plane;
  ShortRows r{d.H + 2 * d.pH, d.W + 2 * d.pW, d.kH * d.kW, d.hw_out(), table, plane};
  table.resize(size_t(r.taps * r.HWo));
  for (int64_t kh = 0; kh < d.kH; ++kh)
    for (int64_t kw = 0; kw < d.kW; ++kw)
      for (int64_t oh = 0; oh < d.H_out; ++oh)
        for (int64_t ow = 0; ow < d.W_out; ++ow)
          table[size_t(((kh * d.kW + kw) * d.H_out + oh) * d.W_out + ow)] =
              int32_t((oh * d.sH + kh * d.dH) * r.Wp + ow * d.sW + kw * d.dW);
  plane.assign(size_t(r.Hp * r.Wp), 0.f);
  return r;
}

// plane interior <- x plane [H, W] (the borders stay zero)
void load_plane(const float* xc, const ConvDims& d, ShortRows& r) {
  for (int64_t h = 0; h < d.H; ++h)
    std::copy(xc + h * d.W, xc + (h + 1) * d.W, r.plane.data() + (h + d.pH) * r.Wp + d.pW);
}

void im2col_short(const float* x, const ConvDims& d, float* cols, int64_t ldc) {
  ShortRows r = short_rows(d);
  const int32_t* tab = r.table.data();
  const float* pl = r.plane.data();
  for (int64_t c = 0; c < d.cin_g(); ++c) {
    load_plane(x + c * d.H * d.W, d, r);
    for (int64_t t = 0; t < r.taps; ++t) {
      float* row = cols + (c * r.taps + t) * ldc;
      const int32_t* tt = tab + t * r.HWo;
      for (int64_t j = 0; j < r.HWo; ++j) row[j] = pl[tt[j]];
    }
  }
}

// The same additions in the same order as col2im's interval loops (taps ascending; one output per position
// and tap), so both paths give bit-identical sums; the border cells collect the padding taps and are dropped.
void col2im_short(const float* cols, const ConvDims& d, float* x, int64_t ldc) {
  ShortRows r = short_rows(d);
  const int32_t* tab = r.table.data();
  float* pl = r.plane.data();
  for (int64_t c = 0; c < d.cin_g(); ++c) {
    float* xc = x + c * d.H * d.W;
    load_plane(xc, d, r);
    for (int64_t t = 0; t < r.taps; ++t) {
      const float* row = cols + (c * r.taps + t) * ldc;
      const int32_t* tt = tab + t * r.HWo;
      for (int64_t j = 0; j < r.HWo; ++j) pl[tt[j]] += row[j];
    }
    for (int64_t h = 0; h < d.H; ++h) {
      const float* src = pl + (h + d.pH) * r.Wp + d.pW;
      std::copy(src, src + d.W, xc + h * d.W);
    }
    if (c + 1 < d.cin_g()) std::fill(r.plane.begin(), r.plane.end(), 0.f);  // borders collected padding taps
  }
}

}  // namespace

void im2col(const float* x, const ConvDims& d, float* cols, int64_t ldc) {
  const int64_t C = d.cin_g(), HWo = ldc > 0 ? ldc : d.hw_out();
  if (use_short_rows(d)) return im2col_short(x, d, cols, HWo);
  for (int64_t c = 0; c < C; ++c) {
    const float* xc = x + c * d.H * d.W;
    for (int64_t kh = 0; kh < d.kH; ++kh) {
      for (int64_t kw = 0; kw < d.kW; ++kw) {
        float* row = cols + ((c * d.kH + kh) * d.kW + kw) * HWo;
        int64_t lo, hi;
        valid_range(d.W, d.W_out, d.sW, d.pW, kw * d.dW, lo, hi);
        for (int64_t oh = 0; oh < d.H_out; ++oh) {
          float* out = row + oh * d.W_out;
          const int64_t ih = oh * d.sH - d.pH + kh * d.dH;
          if (ih < 0 || ih >= d.H) {
            for (int64_t ow = 0; ow < d.W_out; ++ow) out[ow] = 0.f;
            continue;
          }
          const float* in = xc + ih * d.W - d.pW + kw * d.dW;  // in[ow*s] is input column iw
          // Plain loops rather than memset/memcpy calls: rows are often short (7-14 columns in a DCGAN).
          for (int64_t ow = 0; ow < lo; ++ow) out[ow] = 0.f;
          if (d.sW == 1) {
            for (int64_t ow = lo; ow < hi; ++ow) out[ow] = in[ow];
          } else {
            for (int64_t ow = lo; ow < hi; ++ow) out[ow] = in[ow * d.sW];
          }
          for (int64_t ow = hi; ow < d.W_out; ++ow) out[ow] = 0.f;
        }
      }
    }
  }
}

void col2im(const float* cols, const ConvDims& d, float* x, int64_t ldc) {
  const int64_t C = d.cin_g(), HWo = ldc > 0 ? ldc : d.hw_out();
  if (use_short_rows(d)) return col2im_short(cols, d, x, HWo);
  for (int64_t c = 0; c < C; ++c) {
    float* xc = x + c * d.H * d.W;
    for (int64_t kh = 0; kh < d.kH; ++kh) {
      for (int64_t kw = 0; kw < d.kW; ++kw) {
        const float* row = cols + ((c * d.kH + kh) * d.kW + kw) * HWo;
        int64_t lo, hi;
        valid_range(d.W, d.W_out, d.sW, d.pW, kw * d.dW, lo, hi);
        for (int64_t oh = 0; oh < d.H_out; ++oh) {
          const int64_t ih = oh * d.sH - d.pH + kh * d.dH;
          if (ih < 0 || ih >= d.H) continue;
          const float* src = row + oh * d.W_out;
          float* out = xc + ih * d.W - d.pW + kw * d.dW;
          if (d.sW == 1) {
            for (int64_t ow = lo; ow < hi; ++ow) out[ow] += src[ow];
          } else {
            for (int64_t ow = lo; ow < hi; ++ow) out[ow * d.sW] += src[ow];
          }
        }
      }
    }
  }
}

namespace {
constexpr int64_t kRunSlack = 8;  // copy_runs reads whole ymm vectors past a run
}  // namespace

Im2colPacker::Im2colPacker(const float* x, const ConvDims& d, int64_t n0, int64_t nn, int64_t g, bool transposed)
    : xg_(x + (n0 * d.C_in + g * d.cin_g()) * d.H * d.W), d_(d), transposed_(transposed) {
  const int64_t T = d.kH * d.kW, Cg = d.cin_g(), K = d.k_rows();
  // Rows of the bordered buffer are phase-split by the stride: padded column w sits at (w % sW) * Wq + w / sW,
  // Wq = ceil(Wp / sW), so the columns one cols row reads along an output row (w = ow*sW + kw*dW) are
  // consecutive for every stride, and each output row is one unit-stride run.
  const int64_t Hp = d.H + 2 * d.pH, Wp = d.W + 2 * d.pW, Wq = (Wp + d.sW - 1) / d.sW, Wr = Wq * d.sW;
  if (double(nn) * double(Cg) * double(Hp) * double(Wr) <= kMaxBorderedFloats) {
    // padded [nn, Cg, Hp, Wr]: the images' channels of group g with pH / pW zero rows and columns around them
    const int64_t plane = Hp * Wr, image = Cg * plane;
    const auto at = [&](int64_t w) { return w % d.sW * Wq + w / d.sW; };
    // kRunSlack zero floats past the end: copy_runs reads whole vectors that may reach past a run's last float
    float* p = workspace(3, nn * image + kRunSlack);
    std::fill(p + nn * image, p + nn * image + kRunSlack, 0.f);
    for (int64_t i = 0; i < nn; ++i)
      for (int64_t c = 0; c < Cg; ++c) {
        float* dst = p + i * image + c * plane;
        const float* src = xg_ + i * d.C_in * d.H * d.W + c * d.H * d.W;
        std::fill(dst, dst + plane, 0.f);
        for (int64_t h = 0; h < d.H; ++h) {
          float* row = dst + (d.pH + h) * Wr;
          const float* in = src + h * d.W;
          // phase q holds the input columns w with (pW + w) % sW == q, consecutively from at(pW + w)
          for (int64_t q = 0; q < d.sW; ++q) {
            const int64_t w0 = ((q - d.pW) % d.sW + d.sW) % d.sW;
            float* o = row + (w0 < d.W ? at(d.pW + w0) : 0);
            for (int64_t w = w0; w < d.W; w += d.sW) *o++ = in[w];
          }
        }
      }
    padded_ = p;
    row_off_.resize(size_t(K));
    for (int64_t r = 0; r < K; ++r)
      row_off_[size_t(r)] = r / T * plane + r % T / d.kW * d.dH * Wr + at(r % d.kW * d.dW);
    const int64_t HWo = d.hw_out();
    if (!transposed && d.W_out >= kMinInPlaceRun) {  // the GEMM reads the buffer in place, output row by row
      run_off_.resize(size_t(nn * d.H_out));
      for (int64_t i = 0; i < nn; ++i)
        for (int64_t oh = 0; oh < d.H_out; ++oh) run_off_[size_t(i * d.H_out + oh)] = i * image + oh * d.sH * Wr;
      in_place_ = {p, row_off_.data(), run_off_.data(), d.W_out};
      return;
    }
    col_off_.resize(size_t(nn * HWo));
    for (int64_t i = 0; i < nn; ++i)
      for (int64_t oh = 0; oh < d.H_out; ++oh)
        for (int64_t ow = 0; ow < d.W_out; ++ow)
          col_off_[size_t(i * HWo + oh * d.W_out + ow)] = i * image + oh * d.sH * Wr + ow;
    return;
  }
  rows_.resize(size_t(K));
  for (int64_t r = 0; r < K; ++r) {
    const int64_t c = r / T, kh = r % T / d.kW, kw = r % d.kW;
    PackRow& ro = rows_[size_t(r)];
    ro = {c * d.H * d.W, kh * d.dH - d.pH, kw * d.dW - d.pW, 0, 0};
    valid_range(d.W, d.W_out, d.sW, d.pW, kw * d.dW, ro.lo, ro.hi);
  }
}

namespace {

// Where column j of the side-by-side cols matrix sits: image, output row, output column.
struct ColPos {
  int64_t img, oh, ow;
};
ColPos col_pos(const ConvDims& d, int64_t j) {
  const int64_t HWo = d.hw_out();
  return {j / HWo, j % HWo / d.W_out, j % d.W_out};
}

// out[0 .. count) = cols[row][j .. j + count) of the side-by-side im2col matrix (xg: the first image of the
// block; pos = col_pos(j)), walked output row by output row (and image by image): copies of the input row the
// tap reads, zeros where it reads padding.
void copy_cols(const float* xg, const ConvDims& d, const PackRow& ro, ColPos pos, int64_t count, float* out) {
  const int64_t image = d.C_in * d.H * d.W;
  int64_t img = pos.img, oh = pos.oh, ow = pos.ow;
  while (count > 0) {
    const int64_t seg = std::min(d.W_out - ow, count), end = ow + seg;
    const int64_t ih = oh * d.sH + ro.ih0;
    if (ih < 0 || ih >= d.H) {
      for (int64_t q = 0; q < seg; ++q) out[q] = 0.f;
    } else {
      const float* in = xg + img * image + ro.chan + ih * d.W + ro.iw0;  // in[ow*sW]: the input column
      const int64_t a = std::clamp(ro.lo, ow, end), b = std::clamp(ro.hi, a, end);
      // out[t]: output column ow + t
      const int64_t ta = a - ow, tb = b - ow;
      for (int64_t t = 0; t < ta; ++t) out[t] = 0.f;
      if (d.sW == 1) {
        const float* src = in + ow;
        for (int64_t t = ta; t < tb; ++t) out[t] = src[t];
      } else {
        for (int64_t t = ta; t < tb; ++t) out[t] = in[(ow + t) * d.sW];
      }
      for (int64_t t = tb; t < seg; ++t) out[t] = 0.f;
    }
    out += seg, count -= seg, ow = end;
    if (ow == d.W_out) {
      ow = 0;
      if (++oh == d.H_out) oh = 0, ++img;
    }
  }
}

}  // namespace

namespace {

// Consecutive entries of an offset table: out[at + t] = base[off + t] for t < len. In the bordered buffer one
// output row's columns form one run.
struct Run {
  int64_t at, len, off;
};
void make_runs(const int64_t* off, int64_t count, std::vector<Run>& runs) {
  runs.clear();
  for (int64_t a = 0; a < count;) {
    int64_t b = a + 1;
    while (b < count && off[b] == off[b - 1] + 1) ++b;
    runs.push_back({a, b - a, off[a]});
    a = b;
  }
}

#ifdef CONVLAB_COPY_AVX2
// Runs with ymm loads and stores. Runs are 7 to 64 floats, too short for a memcpy call and its setup (a memcpy
// per run was ~9% of seg_wide's pass), and masked stores are slow on AMD: a run's last vector is copied whole
// when the row has room for it (out[0, width) is written in order, so the floats past the run are rewritten
// by the next run or by the caller's zero fill) and the source has kRunSlack floats past its end.
// A copy: every target gives the same bits.
__attribute__((target("avx2"))) void copy_runs_avx2(const float* base, const std::vector<Run>& runs, int64_t width,
                                                    float* out) {
  for (const Run& r : runs) {
    const float* src = base + r.off;
    float* dst = out + r.at;
    const int64_t room = width - r.at;
    int64_t t = 0;
    for (; t < r.len && t + 8 <= room; t += 8) _mm256_storeu_ps(dst + t, _mm256_loadu_ps(src + t));
    for (; t < r.len; ++t) dst[t] = src[t];
  }
}
#endif

// out[run.at + t] = base[run.off + t]; out has `width` writable floats, and out[0, width) may be overwritten
// past the runs (see copy_runs_avx2).
void copy_runs(const float* base, const std::vector<Run>& runs, int64_t width, bool simd, float* out) {
#ifdef CONVLAB_COPY_AVX2
  if (simd) return copy_runs_avx2(base, runs, width, out);
#else
  (void)simd, (void)width;
#endif
  for (const Run& r : runs) std::copy_n(base + r.off, r.len, out + r.at);
}

// out[(run.at + t) * w + c] = src[c][run.off + t] for c < 8 (zero for c >= cols): 8 cols rows of a pixel chunk
// written as 8 columns of a transposed panel (rows w floats apart, out 32-byte aligned).
void transpose_runs_scalar(const float* const* src, int cols, const Run& r, int64_t t0, int64_t w, float* out) {
  for (int64_t t = t0; t < r.len; ++t)
    for (int c = 0; c < 8; ++c) out[(r.at + t) * w + c] = c < cols ? src[c][r.off + t] : 0.f;
}

#ifdef CONVLAB_COPY_AVX2
CONVLAB_AVX2_TARGET void transpose_runs_avx2(const float* const* src, int cols, const std::vector<Run>& runs,
                                             int64_t w, float* out) {
  for (const Run& r : runs) {
    int64_t t = 0;
    for (; t + 8 <= r.len; t += 8) {
      __m256 v[8];
      for (int c = 0; c < 8; ++c) v[c] = c < cols ? _mm256_loadu_ps(src[c] + r.off + t) : _mm256_setzero_ps();
      gemm_detail::transpose8(v);
      float* o = out + (r.at + t) * w;
      for (int i = 0; i < 8; ++i) _mm256_store_ps(o + i * w, v[i]);
    }
    transpose_runs_scalar(src, cols, r, t, w, out);
  }
}
#endif

// A copy: every target gives the same bits.
void transpose_runs(const float* const* src, int cols, const std::vector<Run>& runs, int64_t w, bool simd, float* out) {
#ifdef CONVLAB_COPY_AVX2
  if (simd) return transpose_runs_avx2(src, cols, runs, w, out);
#else
  (void)simd;
#endif
  for (const Run& r : runs) transpose_runs_scalar(src, cols, r, 0, w, out);
}

}  // namespace

// Bordered path (when the GEMM does not read the buffer in place): non-transposed, each panel's columns become
// runs once and are copied for every row straight into the panel; transposed, the chunk's pixel range becomes
// runs once and 8 cols rows at a time are transposed from the buffer into 8 panel columns (output rows shorter
// than kMinInPlaceRun: copied into a stage the GEMM's packer transposes).
void Im2colPacker::pack_bordered(int64_t k0, int64_t kc, int64_t j0, int64_t n, int nr, int lane, float* dst) const {
  thread_local std::vector<Run> runs;
  const bool simd = active_isa() != Isa::scalar;
  if (!transposed_) {
    for (int64_t p0 = 0; p0 < n; p0 += nr) {
      const int64_t cnt = std::min<int64_t>(nr, n - p0);
      const int64_t w = cnt == nr ? nr : (cnt + lane - 1) / lane * lane;
      make_runs(col_off_.data() + j0 + p0, cnt, runs);
      float* panel = dst + p0 * kc;
      for (int64_t k = 0; k < kc; ++k) {
        float* o = panel + k * w;
        copy_runs(padded_ + row_off_[size_t(k0 + k)], runs, w, simd, o);
        for (int64_t c = cnt; c < w; ++c) o[c] = 0.f;
      }
    }
    return;
  }
  make_runs(col_off_.data() + k0, kc, runs);
  if (d_.W_out < kMinInPlaceRun) {  // short runs: copied into a stage [n, kc] that the GEMM's packer transposes
    thread_local std::vector<float> stage;
    stage.resize(size_t(kc * n));
    for (int64_t c = 0; c < n; ++c)
      copy_runs(padded_ + row_off_[size_t(j0 + c)], runs, (n - c) * kc, simd, stage.data() + c * kc);
    return sgemm_pack_b(true, stage.data(), kc, n, nr, lane, kc, dst);
  }
  // op(B)[k][c] = cols[j0 + c][k0 + k]: 8 cols rows (8 panel columns) at a time, each pixel run read as 8-float
  // vectors from the bordered buffer and transposed 8 x 8 straight into the panel rows.
  for (int64_t p0 = 0; p0 < n; p0 += nr) {
    const int64_t cnt = std::min<int64_t>(nr, n - p0);
    const int64_t w = cnt == nr ? nr : (cnt + lane - 1) / lane * lane;
    float* panel = dst + p0 * kc;
    for (int64_t g = 0; g < w; g += 8) {
      const int cols = int(std::clamp<int64_t>(cnt - g, 0, 8));
      const float* src[8];
      for (int c = 0; c < 8; ++c) src[c] = c < cols ? padded_ + row_off_[size_t(j0 + p0 + g + c)] : nullptr;
      transpose_runs(src, cols, runs, w, simd, panel + g);
    }
  }
}

// Walked path: the block is staged in a per-thread buffer (kc x n floats, L2-sized by the GEMM's blocking) as
// plain rows, one copy_cols walk per cols row, then packed by the GEMM's own packer: im2col's values without
// writing and re-reading the whole column matrix through memory.
void Im2colPacker::pack(int64_t k0, int64_t kc, int64_t j0, int64_t n, int nr, int lane, float* dst) const {
  if (padded_) return pack_bordered(k0, kc, j0, n, nr, lane, dst);
  thread_local std::vector<float> stage;
  stage.resize(size_t(kc * n));
  const PackRow* rows = rows_.data();
  if (!transposed_) {  // op(B) = cols: stage [kc, n], row k = cols row k0 + k over columns [j0, j0 + n)
    const ColPos pos = col_pos(d_, j0);
    for (int64_t k = 0; k < kc; ++k) copy_cols(xg_, d_, rows[k0 + k], pos, n, stage.data() + k * n);
    sgemm_pack_b(false, stage.data(), n, n, nr, lane, kc, dst);
  } else {  // op(B) = cols^T: stage [n, kc], row c = cols row j0 + c over columns [k0, k0 + kc)
    const ColPos pos = col_pos(d_, k0);
    for (int64_t c = 0; c < n; ++c) copy_cols(xg_, d_, rows[j0 + c], pos, kc, stage.data() + c * kc);
    sgemm_pack_b(true, stage.data(), kc, n, nr, lane, kc, dst);
  }
}

}  // namespace convlab

// core/gemm.cpp: packed, cache-blocked SGEMM (micro-kernels in core/gemm_kernel.h) and the Eigen oracle.
//
// Loop nest (one call, one thread): for pc (K chunks of kc), for ic (M blocks of mc): pack A block;
//   for jc (N blocks of nc): pack B block, then jr (nr-wide panels) x ir (mr-high panels) micro-kernels.
// Blocking targets one Zen3 core (32 KiB L1d, 512 KiB L2; the Haswell..Zen4 AVX2 family is similar):
//  - kc: a packed B micro-panel (kc x nr floats) plus one A micro-panel must stay in L1 while the ir loop
//    reuses the B panel for every A panel; kc is also the number of k steps between C loads/stores.
//  - mc: the packed A block (mc x kc) stays in L2 and is re-read once per B micro-panel.
//  - nc: the packed B block is written then consumed at once, so it only needs to sit in L2 next to A.
// ic is outside jc so that for the conv shapes (M <= a few hundred) A is packed once per K chunk and B is
// packed exactly once; a problem with M > mc re-packs B per M block, which is cheap next to its compute.
// Sizes are balanced (equal blocks) and depend only on M, N, K and the tile shape: never on threads.
// A B operand given by a packer that offers it in place (BPacker::InPlace, the conv's zero-bordered input) is
// not packed: jc/jr become runs (output rows) cut into nr-wide tiles, and the micro-kernels read row k of the
// tile at base + row_off[k] (an indirect convolution). kc is the packed path's, so the bits are too.
#include "core/gemm.h"

#include <Eigen/Core>
#include <omp.h>

#include <algorithm>
#include <cstdlib>
#include <new>

#include "core/cpu.h"
#include "core/gemm_internal.h"

namespace convlab {
namespace {
using RowMat = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using ConstMap = Eigen::Map<const RowMat, Eigen::Unaligned, Eigen::OuterStride<>>;
using MutMap = Eigen::Map<RowMat, Eigen::Unaligned, Eigen::OuterStride<>>;
}  // namespace

namespace gemm_detail {
namespace {

thread_local PackBuffer tl_pack_a, tl_pack_b;

// Slack after a packed A block: the AVX2 packer writes whole 8-float rows that overlap the next panel.
constexpr int64_t kPackSlack = 2 * kLane;


#ifdef CONVLAB_GEMM_AVX2
// The non-transposed A packer's vector part: transposes 8 k x rows blocks; each transposed row is stored
// whole (8 floats) at stride `rows`, the next store overwriting its padding, hence kPackSlack. Returns the
// first k it did not pack. Packing only moves values (and multiplies by alpha, one rounding either way), so
// the scalar loop gives the same bits.
CONVLAB_AVX2_TARGET int64_t pack_a_rows_avx2(const float* src, int64_t lda, int rows, int64_t kc, float alpha,
                                             float* dst) {
  const __m256 va = _mm256_set1_ps(alpha);
  int64_t k = 0;
  for (; k + kLane <= kc; k += kLane) {
    __m256 v[8];
    for (int r = 0; r < 8; ++r)
      v[r] = r < rows ? _mm256_mul_ps(va, _mm256_loadu_ps(src + r * lda + k)) : _mm256_setzero_ps();
    transpose8(v);
    for (int t = 0; t < 8; ++t) _mm256_storeu_ps(dst + (k + t) * rows, v[t]);
  }
  return k;
}
#endif

// Packs rows [0, rows) x k [0, kc) of op(A) (src points at op(A)[0][0]) into one micro-panel of height
// `rows`: dst[k * rows + r] = alpha * op(A)[r][k]. simd: the CPU runs the AVX2 packer.
void pack_a_panel(bool trans, const float* src, int64_t lda, int rows, int64_t kc, float alpha, float* dst,
                  bool simd) {
  if (trans) {  // op(A)[r][k] = src[k * lda + r]: each k is a contiguous run of `rows` floats
    for (int64_t k = 0; k < kc; ++k)
      for (int r = 0; r < rows; ++r) dst[k * rows + r] = alpha * src[k * lda + r];
    return;
  }
  int64_t k = 0;
#ifdef CONVLAB_GEMM_AVX2
  if (simd) k = pack_a_rows_avx2(src, lda, rows, kc, alpha, dst);
#else
  (void)simd;
#endif
  for (; k < kc; ++k)
    for (int r = 0; r < rows; ++r) dst[k * rows + r] = alpha * src[r * lda + k];
}

// Full nr-wide panels of a non-transposed B: dst panel p, row k = src[k * ldb + p * nr ...], n % nr == 0.
template <int NR>
void pack_b_rows(const float* src, int64_t ldb, int64_t n, int64_t kc, float* dst) {
  for (int64_t k = 0; k < kc; ++k) {
    const float* s = src + k * ldb;
    float* d = dst + k * NR;
    for (int64_t j = 0; j < n; j += NR, d += NR * kc)
      for (int c = 0; c < NR; ++c) d[c] = s[j + c];
  }
}
#ifdef CONVLAB_GEMM_AVX2
template <int NR>
CONVLAB_AVX2_TARGET void pack_b_rows_avx2(const float* src, int64_t ldb, int64_t n, int64_t kc, float* dst) {
  for (int64_t k = 0; k < kc; ++k) {
    const float* s = src + k * ldb;
    float* d = dst + k * NR;
    for (int64_t j = 0; j < n; j += NR, d += NR * kc) {
#pragma GCC unroll 3
      for (int c = 0; c < NR; c += kLane) _mm256_store_ps(d + c, _mm256_loadu_ps(s + j + c));
    }
  }
}

// The transposed B packer's vector part for one 8-column group: 8 x 8 transposes; returns the first k left.
CONVLAB_AVX2_TARGET int64_t pack_b_cols_avx2(const float* s, int64_t ldb, int cols, int64_t kc, float* dp,
                                             int w) {
  int64_t k = 0;
  for (; k + kLane <= kc; k += kLane) {
    __m256 v[8];
    for (int c = 0; c < 8; ++c) v[c] = c < cols ? _mm256_loadu_ps(s + c * ldb + k) : _mm256_setzero_ps();
    transpose8(v);
    for (int t = 0; t < 8; ++t) _mm256_store_ps(dp + (k + t) * w, v[t]);
  }
  return k;
}
#endif

template <int NR>
void pack_b_full(const float* src, int64_t ldb, int64_t n, int64_t kc, float* dst, bool simd) {
#ifdef CONVLAB_GEMM_AVX2
  if (simd) return pack_b_rows_avx2<NR>(src, ldb, n, kc, dst);
#else
  (void)simd;
#endif
  pack_b_rows<NR>(src, ldb, n, kc, dst);
}

}  // namespace

// Packs columns [0, n) x k [0, kc) of op(B) (src points at op(B)[0][0]) into consecutive micro-panels of
// width nr (the last one w = round_up(n mod nr, lane) wide, zero padded): dst[k * w + c] = op(B)[k][c].
void pack_b_block(bool trans, const float* src, int64_t ldb, int64_t n, int nr, int lane, int64_t kc, float* dst,
                  bool simd) {
  if (!trans) {
    // op(B)[k][c] = src[k * ldb + c]. Walk each source row across the whole block: per panel instead, a
    // short bite of every row touches kc different pages (ldb is often a power of two, so they also
    // collide in a few L1/L2 sets and lines shared by two panels are fetched twice).
    const int64_t full = n / nr * nr;
    switch (nr) {
      case 16: pack_b_full<16>(src, ldb, full, kc, dst, simd); break;
      case 24: pack_b_full<24>(src, ldb, full, kc, dst, simd); break;
      case 48: pack_b_full<48>(src, ldb, full, kc, dst, simd); break;
      default: pack_b_full<64>(src, ldb, full, kc, dst, simd); break;
    }
    if (full < n) {
      const int n_valid = static_cast<int>(n - full), w = static_cast<int>(round_up(n_valid, lane));
      float* d = dst + full * kc;
      for (int64_t k = 0; k < kc; ++k) {
        const float* s = src + k * ldb + full;
        int c = 0;
        for (; c < n_valid; ++c) d[k * w + c] = s[c];
        for (; c < w; ++c) d[k * w + c] = 0.f;
      }
    }
    return;
  }
  // op(B)[k][c] = src[c * ldb + k]: rows of the stored B are contiguous in k; transpose 8 x 8 blocks.
  for (int64_t j = 0; j < n; j += nr) {
    const int n_valid = static_cast<int>(std::min<int64_t>(nr, n - j));
    const int w = static_cast<int>(round_up(n_valid, lane));
    float* dp = dst + j * kc;
    for (int g = 0; g < w; g += kLane) {
      const int cols = std::min(kLane, n_valid - g);
      const float* s = src + (j + g) * ldb;
      int64_t k = 0;
#ifdef CONVLAB_GEMM_AVX2
      if (simd) k = pack_b_cols_avx2(s, ldb, cols, kc, dp + g, w);
#endif
      for (; k < kc; ++k)
        for (int c = 0; c < kLane; ++c) dp[k * w + g + c] = c < cols ? s[c * ldb + k] : 0.f;
    }
  }
}

void scale_c(int64_t M, int64_t N, float beta, float* C, int64_t ldc) {
  if (beta == 1.f) return;
  for (int64_t i = 0; i < M; ++i) {
    float* c = C + i * ldc;
    if (beta == 0.f) std::fill(c, c + N, 0.f);
    else
      for (int64_t j = 0; j < N; ++j) c[j] *= beta;
  }
}

// The micro-kernel for an r x (nv lanes) tile of `tile`'s target, packed or indirect B.
MicroKernel select_for(const Tile& tile, int r, int nv, BMode mode) {
#ifdef CONVLAB_GEMM_AVX512
  if (tile.lane == kLane512) return select_kernel_512(r, nv, mode);
#endif
  return select_kernel(r, nv, active_isa() == Isa::scalar, mode);
}

namespace {

// Multiplies a packed A block (mcur rows) by a packed B block (ncur columns) into C, tile by tile; edge
// tiles get the kernel of their own size. (Inlining the full-tile kernel here measured no faster.)
void macro_kernel(const Tile& tile, int64_t mcur, int64_t ncur, int64_t kc, const float* pa, const float* pb,
                  float* c, int64_t ldc, float beta) {
  const int mr = tile.mr, nr = tile.nr();
  auto select = [&](int r, int nv) { return select_for(tile, r, nv, kPacked); };
  const MicroKernel full = select(mr, tile.nv);
  for (int64_t j = 0; j < ncur; j += nr) {
    const int n_valid = static_cast<int>(std::min<int64_t>(nr, ncur - j));
    const int nv = static_cast<int>(ceil_div(n_valid, tile.lane));
    for (int64_t i = 0; i < mcur; i += mr) {
      const int rows = static_cast<int>(std::min<int64_t>(mr, mcur - i));
      const MicroKernel kern = (rows == mr && nv == tile.nv) ? full : select(rows, nv);
      kern(kc, pa + i * kc, nullptr, pb + j * kc, nullptr, c + i * ldc + j, ldc, beta, n_valid);
    }
  }
}

// The macro kernel on B read in place (BPacker::InPlace): column tiles cut at run boundaries, the micro-kernels
// given row k's offset instead of a packed panel. Rows [k0, k0 + kc) of B, rows [0, mcur) of the packed A block.
void macro_kernel_in_place(const Tile& tile, int64_t mcur, int64_t N, int64_t k0, int64_t kc, const float* pa,
                           const BPacker::InPlace& b, float* c, int64_t ldc, float beta) {
  const int mr = tile.mr, nr = tile.nr();
  const MicroKernel full = select_for(tile, mr, tile.nv, kInPlace);
  const int64_t runs = N / b.run_len;
  const int64_t* off = b.row_off + k0;
  for (int64_t r = 0; r < runs; ++r)
    for (int64_t t = 0; t < b.run_len; t += nr) {
      const int n_valid = static_cast<int>(std::min<int64_t>(nr, b.run_len - t));
      const int nv = static_cast<int>(ceil_div(n_valid, tile.lane));
      const BMode mode = n_valid == nv * tile.lane ? kInPlace : kInPlaceTail;  // edge: last vector masked
      const float* src = b.base + b.run_off[r] + t;
      float* cj = c + r * b.run_len + t;
      for (int64_t i = 0; i < mcur; i += mr) {
        const int rows = static_cast<int>(std::min<int64_t>(mr, mcur - i));
        const MicroKernel kern = (rows == mr && nv == tile.nv) ? full : select_for(tile, rows, nv, mode);
        kern(kc, pa + i * kc, nullptr, src, off, cj + i * ldc, ldc, beta, n_valid);
      }
    }
}

void sgemm_packed(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
                  int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc,
                  const BPacker* packer = nullptr) {
  Tile tile = cheapest_tile(kTiles, M, N);
  // K blocking comes from the AVX2 tile model on the whole N on every target and both ways of reading B: it
  // decides where C = acc + C splits each element's sum, so it must not depend on either for the same bits.
  const int64_t kc = k_block(M, N, K);
  const BPacker::InPlace* in_place = packer ? packer->in_place() : nullptr;
  // Read in place, the tiles only need to cover one run.
  const int64_t tile_n = in_place ? in_place->run_len : N;
  if (in_place) tile = cheapest_tile(kTiles, M, tile_n);
#ifdef CONVLAB_GEMM_AVX512
  if (active_isa() == Isa::avx512) tile = cheapest_tile(kTiles512, M, tile_n);
#endif
  const int mr = tile.mr, nr = tile.nr();
  const bool simd = active_isa() != Isa::scalar;
  const int64_t mc_max = std::max<int64_t>(mr, kABlockFloats / kc / mr * mr);
  const int64_t mc = round_up(ceil_div(M, ceil_div(M, mc_max)), mr);
  const int64_t nc_max = std::max<int64_t>(nr, kBBlockFloats / kc / nr * nr);
  const int64_t nc = round_up(ceil_div(N, ceil_div(N, nc_max)), nr);

  // Reserve for the largest block any shape can produce, so later calls never reallocate.
  float* pa = tl_pack_a.get(mc * kc + kPackSlack, kABlockFloats + 3 * kMaxR * kMaxKc + kPackSlack);
  float* pb = tl_pack_b.get(nc * kc, kBBlockFloats + 3 * kMaxNV * kLane * kMaxKc);

  for (int64_t p0 = 0; p0 < K; p0 += kc) {
    const int64_t kcur = std::min(kc, K - p0);
    const float beta_p = p0 == 0 ? beta : 1.f;  // later K chunks accumulate onto the first
    for (int64_t i0 = 0; i0 < M; i0 += mc) {
      const int64_t mcur = std::min(mc, M - i0);
      for (int64_t i = 0; i < mcur; i += mr) {
        const int rows = static_cast<int>(std::min<int64_t>(mr, mcur - i));
        const float* src = trans_a ? A + p0 * lda + (i0 + i) : A + (i0 + i) * lda + p0;
        pack_a_panel(trans_a, src, lda, rows, kcur, alpha, pa + i * kcur, simd);
      }
      if (in_place) {
        macro_kernel_in_place(tile, mcur, N, p0, kcur, pa, *in_place, C + i0 * ldc, ldc, beta_p);
        continue;
      }
      for (int64_t j0 = 0; j0 < N; j0 += nc) {
        const int64_t ncur = std::min(nc, N - j0);
        if (packer) packer->pack(p0, kcur, j0, ncur, nr, tile.lane, pb);
        else
          pack_b_block(trans_b, trans_b ? B + j0 * ldb + p0 : B + p0 * ldb + j0, ldb, ncur, nr, tile.lane, kcur, pb,
                       simd);
        macro_kernel(tile, mcur, ncur, kcur, pa, pb, C + i0 * ldc + j0, ldc, beta_p);
      }
    }
  }
}

}  // namespace
}  // namespace gemm_detail

void sgemm_reference(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha,
                     const float* A, int64_t lda, const float* B, int64_t ldb, float beta, float* C,
                     int64_t ldc) {
  if (M <= 0 || N <= 0) return;
  MutMap c(C, M, N, Eigen::OuterStride<>(ldc));
  if (beta == 0.f) c.setZero();
  else if (beta != 1.f) c *= beta;
  if (K <= 0) return;
  ConstMap a(A, trans_a ? K : M, trans_a ? M : K, Eigen::OuterStride<>(lda));
  ConstMap b(B, trans_b ? N : K, trans_b ? K : N, Eigen::OuterStride<>(ldb));
  if (!trans_a && !trans_b) c.noalias() += alpha * a * b;
  else if (trans_a && !trans_b) c.noalias() += alpha * a.transpose() * b;
  else if (!trans_a && trans_b) c.noalias() += alpha * a * b.transpose();
  else c.noalias() += alpha * a.transpose() * b.transpose();
}

void sgemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
           int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  if (M <= 0 || N <= 0) return;
  // BLAS convention: with nothing to add, A and B are not read at all (C = beta * C).
  if (K <= 0 || alpha == 0.f) {
    gemm_detail::scale_c(M, N, beta, C, ldc);
    return;
  }
  gemm_detail::sgemm_packed(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

void sgemm_pack_b(bool trans, const float* src, int64_t ldb, int64_t n, int nr, int lane, int64_t kc, float* dst) {
  gemm_detail::pack_b_block(trans, src, ldb, n, nr, lane, kc, dst, active_isa() != Isa::scalar);
}

void sgemm_packer(bool trans_a, int64_t M, int64_t N, int64_t K, const float* A, int64_t lda, const BPacker& b,
                  float beta, float* C, int64_t ldc) {
  if (M <= 0 || N <= 0) return;
  if (K <= 0) {
    gemm_detail::scale_c(M, N, beta, C, ldc);
    return;
  }
  gemm_detail::sgemm_packed(trans_a, false, M, N, K, 1.f, A, lda, nullptr, 0, beta, C, ldc, &b);
}

void sgemm_parallel(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha,
                    const float* A, int64_t lda, const float* B, int64_t ldb, float beta, float* C,
                    int64_t ldc) {
  using gemm_detail::ceil_div;
  using gemm_detail::round_up;
  if (M <= 0 || N <= 0) return;
  // C is cut along its longer side into equal blocks (each one a plain sgemm), as a function of the shape
  // alone. The block count is a power of two (1..kMaxBlocks) so 2 or 4 threads get equal shares under
  // schedule(static). Every block packs the shared operand (all of A for column blocks) again, costing
  // about 16 / (block length) of its compute, hence the minimum length; kMinBlockFlops keeps blocks long
  // enough to amortise waking a sleeping thread. Block edges fall on multiples of both tile shapes (lcm of
  // the widths 16/24 and heights 6/4), so blocking adds no edge tiles.
  constexpr int64_t kMaxBlocks = 8;
  constexpr double kMinBlockFlops = 2e6;
  const bool split_n = N >= M;
  const int64_t len = split_n ? N : M, align = split_n ? 48 : 12, min_len = split_n ? 96 : 48;
  const double flops = 2.0 * static_cast<double>(M) * static_cast<double>(N) *
                       static_cast<double>(std::max<int64_t>(K, 1));
  int64_t want = 1;
  while (want < kMaxBlocks && flops >= 2.0 * static_cast<double>(want) * kMinBlockFlops &&
         len >= 2 * want * min_len)
    want *= 2;
  const int64_t block = round_up(ceil_div(len, want), align);
  const int64_t nb = ceil_div(len, block);
#pragma omp parallel for schedule(static) if (nb > 1)
  for (int64_t b = 0; b < nb; ++b) {
    const int64_t o = b * block, n = std::min(block, len - o);
    if (split_n) {
      const float* bb = trans_b ? B + o * ldb : B + o;
      sgemm(trans_a, trans_b, M, n, K, alpha, A, lda, bb, ldb, beta, C + o, ldc);
    } else {
      const float* ab = trans_a ? A + o : A + o * lda;
      sgemm(trans_a, trans_b, n, N, K, alpha, ab, lda, B, ldb, beta, C + o * ldc, ldc);
    }
  }
}

}  // namespace convlab

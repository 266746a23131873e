// core/gemm_kernel.h: register-tile micro-kernels for core/gemm.cpp (internal, not part of the API).
//
// A micro-kernel multiplies one packed A micro-panel (kc steps of R floats: column k of R rows of op(A))
// by one B micro-panel (kc steps of 8*NV floats: row k of 8*NV columns of op(B)) and writes
// C = acc + beta * C for an R x n_valid tile (n_valid <= 8*NV). alpha is already folded into the packed A.
// beta == 0 stores without reading C, so NaN/garbage in C never leaks into the result.
// B comes one of two ways (template parameter Mode): packed (kPacked: row k at b + k*8*NV, aligned, zero padded),
// or read in place (an indirect convolution: row k at b + off[k], unaligned). In place, a tile whose n_valid
// fills its NV vectors reads them whole (kInPlace); an edge tile (kInPlaceTail) loads its last vector masked,
// so nothing past column n_valid - 1 of a row is read (the lanes past it stay zero and are never stored).
// kIndirectA: A read in place instead of packed (core/gemm_indirect.cpp), and the k steps listed: off holds pairs,
// step k broadcasting a[a_off[r] + off[2k]] for row r (a conv's bordered input, dy) and reading row off[2k + 1] of
// the packed B panel. The list may skip terms whose A is zero for every row of the tile (padding taps).
//
// AVX2/FMA: accumulators live in R*NV ymm registers. With 16 ymm registers, R*NV + NV + 1 <= 16 bounds
// the tile: 6x16 (12 acc + 2 B + 1 broadcast) and 4x24 (12 + 3 + 1) are the two full shapes used.
// One k step costs max(R*NV/2 cycles of FMA throughput, 4 cycles of FMA latency): tiles with fewer than
// 8 accumulators are latency bound, which is why gemm.cpp's cost model prefers shapes with few edge rows.
// Trap: every loop over the acc[R][NV] array must be fully unrolled (the GCC unroll pragmas). A single
// runtime-indexed access makes GCC keep the whole array on the stack and the kernel runs at half speed.
//
// Targets (core/cpu.h): the AVX2 and AVX-512 kernels are compiled through the target attribute into a
// baseline x86-64 build and called only when the CPU has them; the scalar kernel is plain C++ with std::fma.
// All three compute every C element as the same FMA chain (acc = fma(a, b, acc) over k from 0, then
// C = fma(beta, C, acc)), so with the same packing and K blocking they give the same bits.
#pragma once
#include <cmath>
#include <cstdint>

#if defined(__x86_64__) && defined(__GNUC__)
#define CONVLAB_GEMM_AVX2 1
#define CONVLAB_AVX2_TARGET __attribute__((target("avx2,fma")))
#include <immintrin.h>
#else
#define CONVLAB_AVX2_TARGET
#endif

namespace convlab::gemm_detail {

enum BMode : int { kPacked = 0, kInPlace = 1, kInPlaceTail = 2, kIndirectA = 3 };

constexpr int kLane = 8;  // floats per ymm register; packed B panels are multiples of this wide

#ifdef CONVLAB_GEMM_AVX2
// Transposes the 8 x 8 block held in r[0..8) (row i in r[i]) in place: the packers' building block (gemm.cpp's
// A and B packers, im2col.cpp's cols^T panels).
CONVLAB_AVX2_TARGET inline void transpose8(__m256 r[8]) {
  const __m256 t0 = _mm256_unpacklo_ps(r[0], r[1]), t1 = _mm256_unpackhi_ps(r[0], r[1]);
  const __m256 t2 = _mm256_unpacklo_ps(r[2], r[3]), t3 = _mm256_unpackhi_ps(r[2], r[3]);
  const __m256 t4 = _mm256_unpacklo_ps(r[4], r[5]), t5 = _mm256_unpackhi_ps(r[4], r[5]);
  const __m256 t6 = _mm256_unpacklo_ps(r[6], r[7]), t7 = _mm256_unpackhi_ps(r[6], r[7]);
  const __m256 s0 = _mm256_shuffle_ps(t0, t2, 0x44), s1 = _mm256_shuffle_ps(t0, t2, 0xEE);
  const __m256 s2 = _mm256_shuffle_ps(t1, t3, 0x44), s3 = _mm256_shuffle_ps(t1, t3, 0xEE);
  const __m256 s4 = _mm256_shuffle_ps(t4, t6, 0x44), s5 = _mm256_shuffle_ps(t4, t6, 0xEE);
  const __m256 s6 = _mm256_shuffle_ps(t5, t7, 0x44), s7 = _mm256_shuffle_ps(t5, t7, 0xEE);
  r[0] = _mm256_permute2f128_ps(s0, s4, 0x20);
  r[1] = _mm256_permute2f128_ps(s1, s5, 0x20);
  r[2] = _mm256_permute2f128_ps(s2, s6, 0x20);
  r[3] = _mm256_permute2f128_ps(s3, s7, 0x20);
  r[4] = _mm256_permute2f128_ps(s0, s4, 0x31);
  r[5] = _mm256_permute2f128_ps(s1, s5, 0x31);
  r[6] = _mm256_permute2f128_ps(s2, s6, 0x31);
  r[7] = _mm256_permute2f128_ps(s3, s7, 0x31);
}
#endif

// Stores an R x n_valid tile held in tmp (row stride W) into C with beta (edge tiles, scalar path).
template <int R, int W>
inline void store_tile_scalar(const float* tmp, float* c, int64_t ldc, float beta, int n_valid) {
  for (int r = 0; r < R; ++r) {
    float* cr = c + r * ldc;
    const float* tr = tmp + r * W;
    if (beta == 0.f) {
      for (int j = 0; j < n_valid; ++j) cr[j] = tr[j];
    } else {
      for (int j = 0; j < n_valid; ++j) cr[j] = std::fma(beta, cr[j], tr[j]);
    }
  }
}

#ifdef CONVLAB_GEMM_AVX2

template <int R, int NV, int Mode>
CONVLAB_AVX2_TARGET void micro_kernel(int64_t kc, const float* __restrict a, const int64_t* __restrict a_off,
                                      const float* __restrict b, const int64_t* __restrict off, float* __restrict c,
                                      int64_t ldc, float beta, int n_valid) {
  static_assert(R * NV + NV + 1 <= 16, "tile does not fit the 16 ymm registers");
  __m256 acc[R][NV];
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) acc[r][v] = _mm256_setzero_ps();

  // Pull the C tile towards L1 while the k loop runs (its first touch would otherwise stall the stores).
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r) {
    const char* row = reinterpret_cast<const char*>(c + r * ldc);
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) _mm_prefetch(row + v * kLane * sizeof(float), _MM_HINT_T0);
    _mm_prefetch(row + (kLane * NV - 1) * sizeof(float), _MM_HINT_T0);
  }

  // kInPlaceTail: lanes of the last vector below n_valid - (NV-1)*8 are loaded
  const __m256i tail = _mm256_cmpgt_epi32(_mm256_set1_epi32(n_valid - (NV - 1) * kLane),
                                          _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
  const float* ar[R];  // kIndirectA: row r of A
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r) ar[r] = Mode == kIndirectA ? a + a_off[r] : a;
#pragma GCC unroll 4
  for (int64_t k = 0; k < kc; ++k) {
    __m256 bv[NV];
    if constexpr (Mode == kInPlace || Mode == kInPlaceTail) {
      const float* bk = b + off[k];
#pragma GCC unroll 4
      for (int v = 0; v < NV; ++v)
        bv[v] = Mode == kInPlaceTail && v == NV - 1 ? _mm256_maskload_ps(bk + v * kLane, tail)
                                                     : _mm256_loadu_ps(bk + v * kLane);
    } else if constexpr (Mode == kIndirectA) {
      const float* bk = b + off[2 * k + 1] * (NV * kLane);
#pragma GCC unroll 4
      for (int v = 0; v < NV; ++v) bv[v] = _mm256_load_ps(bk + v * kLane);
    } else {
#pragma GCC unroll 4
      for (int v = 0; v < NV; ++v) bv[v] = _mm256_load_ps(b + v * kLane);
      b += NV * kLane;
    }
    const int64_t ak = Mode == kIndirectA ? off[2 * k] : 0;
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) {
      const __m256 av = Mode == kIndirectA ? _mm256_broadcast_ss(ar[r] + ak) : _mm256_broadcast_ss(a + r);
#pragma GCC unroll 4
      for (int v = 0; v < NV; ++v) acc[r][v] = _mm256_fmadd_ps(av, bv[v], acc[r][v]);
    }
    if constexpr (Mode != kIndirectA) a += R;
  }

  if (n_valid == NV * kLane) {
    if (beta == 0.f) {
#pragma GCC unroll 8
      for (int r = 0; r < R; ++r)
#pragma GCC unroll 4
        for (int v = 0; v < NV; ++v) _mm256_storeu_ps(c + r * ldc + v * kLane, acc[r][v]);
    } else {
      const __m256 vb = _mm256_set1_ps(beta);
#pragma GCC unroll 8
      for (int r = 0; r < R; ++r)
#pragma GCC unroll 4
        for (int v = 0; v < NV; ++v) {
          float* p = c + r * ldc + v * kLane;
          _mm256_storeu_ps(p, _mm256_fmadd_ps(vb, _mm256_loadu_ps(p), acc[r][v]));
        }
    }
    return;
  }
  alignas(32) float tmp[R * NV * kLane];
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) _mm256_store_ps(tmp + (r * NV + v) * kLane, acc[r][v]);
  store_tile_scalar<R, NV * kLane>(tmp, c, ldc, beta, n_valid);
}

#endif

// Scalar target: the same packed layout and the same FMA chain per element, in plain C++.
template <int R, int NV, int Mode>
void micro_kernel_scalar(int64_t kc, const float* __restrict a, const int64_t* __restrict a_off,
                         const float* __restrict b, const int64_t* __restrict off, float* __restrict c, int64_t ldc,
                         float beta, int n_valid) {
  constexpr int W = NV * kLane;
  constexpr bool b_packed = Mode == kPacked || Mode == kIndirectA;
  float acc[R * W] = {};
  const int cols = Mode == kInPlaceTail ? n_valid : W;
  for (int64_t k = 0; k < kc; ++k) {
    const float* bk = Mode == kIndirectA ? b + off[2 * k + 1] * W : b_packed ? b : b + off[k];
    for (int r = 0; r < R; ++r) {
      const float ar = Mode == kIndirectA ? a[a_off[r] + off[2 * k]] : a[r];
      for (int j = 0; j < cols; ++j) acc[r * W + j] = std::fma(ar, bk[j], acc[r * W + j]);
    }
    if constexpr (Mode != kIndirectA) a += R;
    if constexpr (Mode == kPacked) b += W;
  }
  store_tile_scalar<R, W>(acc, c, ldc, beta, n_valid);
}

// (kc, A (packed, or the base of an indirect A), A row offsets (kIndirectA only, else null), B, row offsets (of B in
// place, of A's k for kIndirectA, else null), C, ldc, beta, n_valid)
using MicroKernel = void (*)(int64_t, const float*, const int64_t*, const float*, const int64_t*, float*, int64_t, float,
                             int);

// select_kernel(R, NV) -> micro_kernel<R, NV>; shapes that would spill (R*NV + NV + 1 > 16) are never
// dispatched and stay null.
constexpr int kMaxR = 8;  // the AVX-512 tiles are up to 8 rows high; the AVX2 ones up to 6
constexpr int kMaxNV = 3;

template <int R, int NV, bool Scalar, int Mode>
constexpr MicroKernel kernel_or_null() {
  if constexpr (R * NV + NV + 1 > 16) return nullptr;
#ifdef CONVLAB_GEMM_AVX2
  else if constexpr (!Scalar) return &micro_kernel<R, NV, Mode>;
#endif
  else return &micro_kernel_scalar<R, NV, Mode>;
}

template <int R, bool Scalar, int Mode>
constexpr MicroKernel kKernelRow[kMaxNV] = {kernel_or_null<R, 1, Scalar, Mode>(), kernel_or_null<R, 2, Scalar, Mode>(),
                                            kernel_or_null<R, 3, Scalar, Mode>()};

template <bool Scalar, int Mode>
constexpr const MicroKernel* kKernelRows[kMaxR] = {
    kKernelRow<1, Scalar, Mode>, kKernelRow<2, Scalar, Mode>, kKernelRow<3, Scalar, Mode>, kKernelRow<4, Scalar, Mode>,
    kKernelRow<5, Scalar, Mode>, kKernelRow<6, Scalar, Mode>, kKernelRow<7, Scalar, Mode>, kKernelRow<8, Scalar, Mode>};

// The 8-lane kernels: AVX2, or the scalar target's twins; B packed or read in place (BMode).
inline MicroKernel select_kernel(int r, int nv, bool scalar, BMode mode) {
  static constexpr const MicroKernel* const* rows[2][4] = {
      {kKernelRows<false, kPacked>, kKernelRows<false, kInPlace>, kKernelRows<false, kInPlaceTail>,
       kKernelRows<false, kIndirectA>},
      {kKernelRows<true, kPacked>, kKernelRows<true, kInPlace>, kKernelRows<true, kInPlaceTail>,
       kKernelRows<true, kIndirectA>}};
  return rows[scalar ? 1 : 0][mode][r - 1][nv - 1];
}

// ---- AVX-512 (F): the same contract with 16-float zmm lanes and 32 registers ----
// Packed B panels are 16 * NV wide. Every C element is one FMA chain over k in the same order as the AVX2
// and scalar kernels, starting from 0, then C = acc + beta * C with one fused multiply-add (the AVX2
// kernel's _mm256_fmadd_ps(beta, C, acc), and store_tile_scalar's std::fma(beta, cr, tr)): with K blocked
// identically (gemm.cpp takes kc from the AVX2 tile model on every target) the results are the same bits.
// Compiled for AVX-512 through the target attribute, so a build for any x86-64 carries it; gemm.cpp calls
// it only when the CPU has AVX-512F.
#if defined(__x86_64__) && defined(__GNUC__)
#define CONVLAB_GEMM_AVX512 1
constexpr int kLane512 = 16;
constexpr int kMaxNV512 = 4;

template <int R, int NV, int Mode>
__attribute__((target("avx512f,fma,avx2"))) void micro_kernel_512(int64_t kc, const float* __restrict a,
                                                                  const int64_t* __restrict a_off,
                                                                  const float* __restrict b,
                                                                  const int64_t* __restrict off,
                                                                  float* __restrict c, int64_t ldc, float beta,
                                                                  int n_valid) {
  static_assert(R * NV + NV + 1 <= 32, "tile does not fit the 32 zmm registers");
  __m512 acc[R][NV];
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) acc[r][v] = _mm512_setzero_ps();
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r) {
    const char* row = reinterpret_cast<const char*>(c + r * ldc);
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) _mm_prefetch(row + v * kLane512 * sizeof(float), _MM_HINT_T0);
  }
  const int last = n_valid - (NV - 1) * kLane512;  // kInPlaceTail: valid lanes of the last vector
  const __mmask16 tail = last >= kLane512 ? __mmask16(0xFFFF) : __mmask16((1u << (last > 0 ? last : 0)) - 1u);
  const float* ar[R];  // kIndirectA: row r of A
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r) ar[r] = Mode == kIndirectA ? a + a_off[r] : a;
#pragma GCC unroll 2
  for (int64_t k = 0; k < kc; ++k) {
    __m512 bv[NV];
    if constexpr (Mode == kInPlace || Mode == kInPlaceTail) {
      const float* bk = b + off[k];
#pragma GCC unroll 4
      for (int v = 0; v < NV; ++v)
        bv[v] = Mode == kInPlaceTail && v == NV - 1 ? _mm512_maskz_loadu_ps(tail, bk + v * kLane512)
                                                     : _mm512_loadu_ps(bk + v * kLane512);
    } else if constexpr (Mode == kIndirectA) {
      const float* bk = b + off[2 * k + 1] * (NV * kLane512);
#pragma GCC unroll 4
      for (int v = 0; v < NV; ++v) bv[v] = _mm512_load_ps(bk + v * kLane512);
    } else {
#pragma GCC unroll 4
      for (int v = 0; v < NV; ++v) bv[v] = _mm512_load_ps(b + v * kLane512);
      b += NV * kLane512;
    }
    const int64_t ak = Mode == kIndirectA ? off[2 * k] : 0;
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) {
      const __m512 av = _mm512_set1_ps(Mode == kIndirectA ? ar[r][ak] : a[r]);
#pragma GCC unroll 4
      for (int v = 0; v < NV; ++v) acc[r][v] = _mm512_fmadd_ps(av, bv[v], acc[r][v]);
    }
    if constexpr (Mode != kIndirectA) a += R;
  }
  // Full and edge tiles alike: lanes past n_valid are masked off (C beyond the tile is never touched).
  const __m512 vb = _mm512_set1_ps(beta);
#pragma GCC unroll 4
  for (int v = 0; v < NV; ++v) {
    const int left = n_valid - v * kLane512;
    if (left <= 0) break;
    const __mmask16 m = left >= kLane512 ? __mmask16(0xFFFF) : __mmask16((1u << left) - 1u);
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) {
      float* p = c + r * ldc + v * kLane512;
      if (beta == 0.f) _mm512_mask_storeu_ps(p, m, acc[r][v]);
      else _mm512_mask_storeu_ps(p, m, _mm512_fmadd_ps(vb, _mm512_maskz_loadu_ps(m, p), acc[r][v]));
    }
  }
}

template <int R, int NV, int Mode>
constexpr MicroKernel kernel_512_or_null() {
  if constexpr (R * NV + NV + 1 <= 32) return &micro_kernel_512<R, NV, Mode>;
  else return nullptr;
}

template <int R, int Mode>
constexpr MicroKernel kKernelRow512[kMaxNV512] = {kernel_512_or_null<R, 1, Mode>(), kernel_512_or_null<R, 2, Mode>(),
                                                  kernel_512_or_null<R, 3, Mode>(), kernel_512_or_null<R, 4, Mode>()};

template <int Mode>
constexpr const MicroKernel* kKernelRows512[kMaxR] = {kKernelRow512<1, Mode>, kKernelRow512<2, Mode>, kKernelRow512<3, Mode>,
                                                      kKernelRow512<4, Mode>, kKernelRow512<5, Mode>, kKernelRow512<6, Mode>,
                                                      kKernelRow512<7, Mode>, kKernelRow512<8, Mode>};

inline MicroKernel select_kernel_512(int r, int nv, BMode mode) {
  static constexpr const MicroKernel* const* rows[4] = {kKernelRows512<kPacked>, kKernelRows512<kInPlace>,
                                                        kKernelRows512<kInPlaceTail>, kKernelRows512<kIndirectA>};
  return rows[mode][r - 1][nv - 1];
}
#endif

}  // namespace convlab::gemm_detail

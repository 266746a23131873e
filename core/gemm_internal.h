// core/gemm_internal.h: the packed GEMM's blocking, tiles and packers, shared by core/gemm.cpp and
// core/gemm_indirect.cpp (internal, not part of the API).
#pragma once
#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <new>

#include "core/gemm_kernel.h"

namespace convlab::gemm_detail {

constexpr int64_t kL1PanelFloats = 5 * 1024;    // 20 KiB for the B micro-panel: kc = this / nr
constexpr int64_t kABlockFloats = 48 * 1024;    // 192 KiB packed A block in L2
constexpr int64_t kBBlockFloats = 32 * 1024;    // 128 KiB packed B block in L2
constexpr int64_t kMaxKc = kL1PanelFloats / 16;  // the narrowest full panel (16) gets the deepest kc

inline int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }
inline int64_t round_up(int64_t a, int64_t b) { return ceil_div(a, b) * b; }

// Register tile of the full micro-kernel: mr rows x (lane * nv) columns (lane: 8 floats AVX2, 16 AVX-512).
struct Tile {
  int mr;
  int nv;
  int lane = kLane;
  int nr() const { return nv * lane; }
};
inline constexpr Tile kTiles[] = {{4, 3}, {6, 2}};  // on a cost tie the first wins: 4x24 measured faster
// AVX-512: 24 accumulators of the 32 zmm registers; mr <= 8 keeps pack_a_panel's 8-row transposes.
inline constexpr Tile kTiles512[] = {{8, 3, 16}, {6, 4, 16}};

// Cycles per k step of an r x (lane*nv) tile: FMA throughput (2/cycle) or latency (4 cycles per chain).
inline double tile_cycles(int r, int nv) { return std::max(4.0, 0.5 * r * nv); }

// Modelled cost of covering M x N with a tile shape, edges included; the cheapest shape wins.
inline double tile_cost(const Tile& t, int64_t M, int64_t N) {
  const int64_t full_m = M / t.mr, full_n = N / t.nr();
  const int rem_m = static_cast<int>(M % t.mr);
  const int rem_nv = static_cast<int>(ceil_div(N % t.nr(), t.lane));
  double row_full = full_n * tile_cycles(t.mr, t.nv);
  double row_rem = rem_m ? full_n * tile_cycles(rem_m, t.nv) : 0;
  if (rem_nv) {
    row_full += tile_cycles(t.mr, rem_nv);
    if (rem_m) row_rem += tile_cycles(rem_m, rem_nv);
  }
  return full_m * row_full + row_rem;
}

// Thread-local packing buffer, sized once for the largest block any call can ask for and reused after.
struct PackBuffer {
  float* data = nullptr;
  int64_t cap = 0;
  PackBuffer() = default;
  PackBuffer(const PackBuffer&) = delete;
  PackBuffer& operator=(const PackBuffer&) = delete;
  ~PackBuffer() { std::free(data); }
  float* get(int64_t floats, int64_t reserve) {
    if (floats > cap) {
      std::free(data);
      cap = std::max(floats, reserve);
      data = static_cast<float*>(std::aligned_alloc(64, static_cast<size_t>(round_up(cap * 4, 64))));
      if (!data) {
        cap = 0;
        throw std::bad_alloc();
      }
    }
    return data;
  }
};
// Cheapest tile of a target for covering M x N (edges included).
template <size_t S>
Tile cheapest_tile(const Tile (&tiles)[S], int64_t M, int64_t N) {
  Tile best = tiles[0];
  for (const Tile& t : tiles)
    if (tile_cost(t, M, N) < tile_cost(best, M, N)) best = t;
  return best;
}

// The K block of C[M,N] = A[M,K] B[K,N] (where C = acc + C splits each element's FMA chain): from the AVX2 tile
// model on M x N on every target, so the bits never depend on the target or on how B is read.
inline int64_t k_block(int64_t M, int64_t N, int64_t K) {
  const int64_t kc_max = kL1PanelFloats / cheapest_tile(kTiles, M, N).nr();
  return ceil_div(K, ceil_div(K, kc_max));
}

// Packs columns [0, n) x k [0, kc) of op(B) (src points at op(B)[0][0]) into consecutive micro-panels of
// width nr (the last one w = round_up(n mod nr, lane) wide, zero padded): dst[k * w + c] = op(B)[k][c].
void pack_b_block(bool trans, const float* src, int64_t ldb, int64_t n, int nr, int lane, int64_t kc, float* dst,
                  bool simd);
// C[M,N] *= beta (beta 0: zeroed, whatever C held).
void scale_c(int64_t M, int64_t N, float beta, float* C, int64_t ldc);
// The micro-kernel for an r x (nv lanes) tile of `tile`'s target and mode (null for shapes that would spill).
MicroKernel select_for(const Tile& tile, int r, int nv, BMode mode);

}  // namespace convlab::gemm_detail

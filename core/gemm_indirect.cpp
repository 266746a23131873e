// core/gemm_indirect.cpp: the GEMM with A read in place (micro-kernel mode kIndirectA, core/gemm_kernel.h).
//
// Used where a conv's GEMM is turned around so that the pixels are its rows (core/conv2d_short.cpp): with output
// rows shorter than a vector (DCGAN's 7x7 maps) the pixels are a poor vector dimension, because every panel row
// of the im2col matrix is a few 7-float runs to copy, while the channels (64, 128) fill whole vectors. A's
// elements are then broadcast straight from the bordered input through two offset tables, and only B (weights or
// dy, small) is packed.
//
// Loop nest (one call, one thread): for pc (K chunks of kc, the caller's), for jc (N blocks of nc): pack B block;
// for jr (nr-wide panels) x ir (mr-high row tiles): micro-kernel. The tile is the packed GEMM's for this M x N on
// the target; every C element is one FMA chain over its K block, then C = acc + beta * C, as in core/gemm.cpp.
#include <algorithm>
#include <vector>

#include "core/cpu.h"
#include "core/gemm.h"
#include "core/gemm_internal.h"

namespace convlab {
namespace gemm_detail {
namespace {

thread_local PackBuffer tl_pack_ind, tl_rows;

Tile indirect_tile(int64_t M, int64_t N) {
#ifdef CONVLAB_GEMM_AVX512
  if (active_isa() == Isa::avx512) return cheapest_tile(kTiles512, M, N);
#endif
  return cheapest_tile(kTiles, M, N);
}

}  // namespace
}  // namespace gemm_detail

int64_t gemm_k_block(int64_t M, int64_t N, int64_t K) { return gemm_detail::k_block(M, N, K); }

void sgemm_indirect_a(int64_t M, int64_t N, int64_t K, const float* a, const int64_t* a_off, const int64_t* k_off,
                      bool trans_b, const float* B, int64_t ldb, int64_t kc, float beta, float* C, int64_t ldc,
                      const std::vector<IndirectRows>* groups) {
  using namespace gemm_detail;
  if (M <= 0 || N <= 0) return;
  if (K <= 0) return scale_c(M, N, beta, C, ldc);
  kc = std::clamp<int64_t>(kc, 1, K);
  const Tile tile = indirect_tile(M, N);
  const int mr = tile.mr, nr = tile.nr();
  const bool simd = active_isa() != Isa::scalar;
  const int64_t nc_max = std::max<int64_t>(nr, kBBlockFloats / kc / nr * nr);
  const int64_t nc = round_up(ceil_div(N, ceil_div(N, nc_max)), nr);
  float* pb = tl_pack_ind.get(nc * kc, nc * kc);
  const IndirectRows all{0, M, nullptr};  // no groups: every row, every term
  const IndirectRows* gs = groups ? groups->data() : &all;
  const size_t ngroups = groups ? groups->size() : 1;
  thread_local std::vector<int64_t> steps;  // per group and K block: (A offset, B row) of each kept term
  thread_local std::vector<int64_t> first;  // per group: where its steps start, and how many
  for (int64_t p0 = 0; p0 < K; p0 += kc) {
    const int64_t kcur = std::min(kc, K - p0);
    const float beta_p = p0 == 0 ? beta : 1.f;  // later K chunks accumulate onto the first
    steps.resize(size_t(2 * kcur) * ngroups), first.resize(2 * ngroups);
    for (size_t gi = 0; gi < ngroups; ++gi) {
      const uint8_t* keep = gs[gi].keep;
      int64_t* st = steps.data() + 2 * kcur * int64_t(gi);
      int64_t n = 0;
      for (int64_t k = 0; k < kcur; ++k)
        if (!keep || keep[p0 + k]) st[2 * n] = k_off[p0 + k], st[2 * n + 1] = k, ++n;
      first[2 * gi] = 2 * kcur * int64_t(gi), first[2 * gi + 1] = n;
    }
    for (int64_t j0 = 0; j0 < N; j0 += nc) {
      const int64_t ncur = std::min(nc, N - j0);
      pack_b_block(trans_b, trans_b ? B + j0 * ldb + p0 : B + p0 * ldb + j0, ldb, ncur, nr, tile.lane, kcur, pb, simd);
      const MicroKernel full = select_for(tile, mr, tile.nv, kIndirectA);
      for (size_t gi = 0; gi < ngroups; ++gi) {
        const IndirectRows& g = gs[gi];
        const int64_t* st = steps.data() + first[2 * gi];
        const int64_t count = first[2 * gi + 1];
        // Row tiles outside: the A rows a tile broadcasts (scattered lines of the bordered input) are fetched once
        // for all panels of the packed B block, which stays in L2.
        for (int64_t i = g.m0; i < g.m0 + g.rows; i += mr) {
          const int rows = static_cast<int>(std::min<int64_t>(mr, g.m0 + g.rows - i));
          for (int64_t j = 0; j < ncur; j += nr) {
            const int n_valid = static_cast<int>(std::min<int64_t>(nr, ncur - j));
            const int nv = static_cast<int>(ceil_div(n_valid, tile.lane));
            const MicroKernel kern = (rows == mr && nv == tile.nv) ? full : select_for(tile, rows, nv, kIndirectA);
            kern(count, a, a_off + i, pb + j * kcur, st, C + i * ldc + j0 + j, ldc, beta_p, n_valid);
          }
        }
      }
    }
  }
}

void sgemm_indirect_a_rows(int64_t M, int64_t N, int64_t K, const float* a, const int64_t* a_off,
                           const int64_t* k_off, bool trans_b, const float* B, int64_t ldb, int64_t group,
                           const std::vector<IndirectRows>* row_groups, const RowSink& sink) {
  using namespace gemm_detail;
  if (M <= 0 || N <= 0) return;
  const Tile tile = indirect_tile(M, std::min(N, group));
  const int mr = tile.mr, nr = tile.nr();
  const bool simd = active_isa() != Isa::scalar;
  group = std::clamp<int64_t>(group, 1, N);
  const IndirectRows all{0, M, nullptr};  // no row groups: every row wants every column group
  const IndirectRows* rgs = row_groups ? row_groups->data() : &all;
  const size_t nrgs = row_groups ? row_groups->size() : 1;
  float* t = tl_rows.get(mr * nr, mr * nr);
  float* pb = tl_pack_ind.get(nr * std::max<int64_t>(K, 1), nr * std::max<int64_t>(K, 1));
  thread_local std::vector<int64_t> steps;  // (A offset, B row) of every term
  steps.resize(size_t(2 * K));
  for (int64_t k = 0; k < K; ++k) steps[size_t(2 * k)] = k_off[k], steps[size_t(2 * k + 1)] = k;
  for (int64_t g0 = 0; g0 < N; g0 += group) {
    const int64_t gcols = std::min(group, N - g0);
    for (int64_t j0 = g0; j0 < g0 + gcols; j0 += nr) {  // one panel, packed just before every row tile reads it
      const int n_valid = static_cast<int>(std::min<int64_t>(nr, g0 + gcols - j0));
      const int nv = static_cast<int>(ceil_div(n_valid, tile.lane));
      if (K > 0) pack_b_block(trans_b, trans_b ? B + j0 * ldb : B + j0, ldb, n_valid, nr, tile.lane, K, pb, simd);
      for (size_t ri = 0; ri < nrgs; ++ri) {
        const IndirectRows& rg = rgs[ri];
        if (rg.keep && !rg.keep[g0 / group]) continue;
        for (int64_t i = rg.m0; i < rg.m0 + rg.rows; i += mr) {
          const int rows = static_cast<int>(std::min<int64_t>(mr, rg.m0 + rg.rows - i));
          if (K > 0) {
            select_for(tile, rows, nv, kIndirectA)(K, a, a_off + i, pb, steps.data(), t, nr, 0.f, n_valid);
          } else {
            for (int r = 0; r < rows; ++r) std::fill(t + r * nr, t + r * nr + n_valid, 0.f);
          }
          sink.rows(i, rows, j0, n_valid, t, nr);
        }
      }
    }
  }
}

}  // namespace convlab

// core/gemm.h: single-precision GEMM used by every conv kernel.
// Row-major throughout: C[M,N] = alpha * op(A)[M,K] * op(B)[K,N] + beta * C, where op(A) is A or A^T
// (A stored [M,K] with leading dimension lda, or [K,M] when trans_a) and likewise for B.
// beta == 0 means C is overwritten (its old contents, even NaN, are ignored).
//
// sgemm() is single-threaded: callers parallelise outer loops (batch, groups) themselves.
// sgemm_parallel() splits C into fixed column/row blocks over OpenMP threads; each C element is computed by
// exactly one thread in the same order, so results do not depend on the thread count.
// sgemm_reference() is the plain Eigen path kept beside the fast one as the oracle for tests.
#pragma once
#include <cstdint>
#include <vector>

namespace convlab {

void sgemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
           int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc);

void sgemm_parallel(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha,
                    const float* A, int64_t lda, const float* B, int64_t ldb, float beta, float* C,
                    int64_t ldc);

// A B operand that is never stored whole (an implicit im2col, core/im2col.cpp): the GEMM asks it for one
// block at a time, already in the packed layout, where it would otherwise pack a stored B. pack() fills the
// micro-panels of op(B) rows [k0, k0 + kc) x columns [j0, j0 + n): panel p (columns p*nr ..) starts at
// dst + p*nr*kc, its row k holds `width` floats (nr, or round_up(n mod nr, lane) for the last panel),
// columns past n zero: dst[p*nr*kc + k*width + c] = op(B)[k0 + k][j0 + p*nr + c].
struct BPacker {
  virtual ~BPacker() = default;
  virtual void pack(int64_t k0, int64_t kc, int64_t j0, int64_t n, int nr, int lane, float* dst) const = 0;

  // B read in place instead of packed (an indirect convolution): op(B)[k][r * run_len + t] =
  // base[row_off[k] + run_off[r] + t] for the N / run_len runs r and t < run_len (nothing past a run's last
  // column is read: edge tiles load their last vector masked). The GEMM then cuts its column tiles at run
  // boundaries and never calls pack(); each C element is still one FMA chain over the same K blocks, so the bits
  // are those of the packed path. A packer that cannot, or whose runs are too short to pay, returns null.
  struct InPlace {
    const float* base;
    const int64_t* row_off;  // [K]
    const int64_t* run_off;  // [N / run_len]
    int64_t run_len;
  };
  virtual const InPlace* in_place() const { return nullptr; }
};

// Packs a stored block the way the GEMM packs B (op(B) = src [kc, n] with leading dimension ldb, or src^T
// when trans): for a BPacker that stages its block in a small buffer first.
void sgemm_pack_b(bool trans, const float* src, int64_t ldb, int64_t n, int nr, int lane, int64_t kc, float* dst);

// C = op(A) * B + beta * C with B given by a packer (alpha = 1). The same blocking, kernels and bits as
// sgemm() on the stored B: only where the packed panels come from differs.
void sgemm_packer(bool trans_a, int64_t M, int64_t N, int64_t K, const float* A, int64_t lda, const BPacker& b,
                  float beta, float* C, int64_t ldc);

// C[M,N] = A x op(B) + beta * C with A read in place, never packed: A[i][k] = a[a_off[i] + k_off[k]] (a conv's
// zero-bordered input, with a pixel and a tap offset table; or dy, see core/conv2d_short.cpp). kc: the K block,
// given by the caller so that each C element is the FMA chain of the transposed problem it stands for
// (C^T = op(B)^T A^T through sgemm on stored operands blocks K the same way: gemm_k_block(N, M, K)).
// groups (optional): rows [m0, m0 + rows) whose A is zero at every term k with keep[k] == 0 (a conv's pixels that
// share their padding taps); those terms are skipped. A term a*b with a == +0 and b finite leaves the chain's
// value unchanged (the chain starts at +0 and so never holds -0), so for finite B the bits are those of the full sum.
struct IndirectRows {
  int64_t m0, rows;
  const uint8_t* keep;  // [K], or null: every term
};
void sgemm_indirect_a(int64_t M, int64_t N, int64_t K, const float* a, const int64_t* a_off, const int64_t* k_off,
                      bool trans_b, const float* B, int64_t ldb, int64_t kc, float beta, float* C, int64_t ldc,
                      const std::vector<IndirectRows>* groups = nullptr);

// The K block sgemm() uses for C[M,N] = A[M,K] B[K,N]: each element's FMA chain restarts from 0 every kc terms
// and is added to C.
int64_t gemm_k_block(int64_t M, int64_t N, int64_t K);

// A x op(B) (A read in place as above, one K block: every element one FMA chain over all K, from 0), computed a
// tile at a time and handed to sink.rows(i0, rows, j0, n, t, ldt) instead of stored: t[r * ldt + q] is element
// (i0 + r, j0 + q). The columns come in groups of `group` (a conv's input channels of one kernel tap), group after
// group, cut into panels inside a group; row_groups (optional) say which groups each range of rows wants
// (keep[column group]), and only those tiles are computed.
struct RowSink {
  virtual ~RowSink() = default;
  virtual void rows(int64_t i0, int rows, int64_t j0, int64_t n, const float* t, int64_t ldt) const = 0;
};
void sgemm_indirect_a_rows(int64_t M, int64_t N, int64_t K, const float* a, const int64_t* a_off,
                           const int64_t* k_off, bool trans_b, const float* B, int64_t ldb, int64_t group,
                           const std::vector<IndirectRows>* row_groups, const RowSink& sink);

void sgemm_reference(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha,
                     const float* A, int64_t lda, const float* B, int64_t ldb, float beta, float* C,
                     int64_t ldc);

}  // namespace convlab

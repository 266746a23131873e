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

namespace convlab {

void sgemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
           int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc);

void sgemm_parallel(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha,
                    const float* A, int64_t lda, const float* B, int64_t ldb, float beta, float* C,
                    int64_t ldc);

void sgemm_reference(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha,
                     const float* A, int64_t lda, const float* B, int64_t ldb, float beta, float* C,
                     int64_t ldc);

}  // namespace convlab

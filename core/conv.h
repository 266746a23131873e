// core/conv.h: the convolution family (PyTorch / torchvision semantics to the letter).
// Raw kernels work on const float* plus a dims struct so they are testable without autograd; the public
// functions check shapes, run the kernels and record the backward.
#pragma once
#include <array>
#include <cstdint>
#include <vector>

#include "core/gemm.h"
#include "core/tensor.h"

namespace convlab {

using Pair = std::array<int64_t, 2>;  // (h, w)

struct Conv2dArgs {
  Pair stride{1, 1};
  Pair padding{0, 0};
  Pair dilation{1, 1};
  int64_t groups = 1;
};

// Everything a conv kernel needs. For conv2d: input [N, C_in, H, W], weight [C_out, C_in/G, kH, kW],
// output [N, C_out, H_out, W_out] with H_out = (H + 2p - d(k-1) - 1) / s + 1.
struct ConvDims {
  int64_t N = 0, C_in = 0, H = 0, W = 0;
  int64_t C_out = 0, kH = 0, kW = 0, G = 1;
  int64_t sH = 1, sW = 1, pH = 0, pW = 0, dH = 1, dW = 1;
  int64_t H_out = 0, W_out = 0;
  int64_t cin_g() const { return C_in / G; }
  int64_t cout_g() const { return C_out / G; }
  int64_t k_rows() const { return cin_g() * kH * kW; }  // rows of the im2col matrix of one group
  int64_t hw_out() const { return H_out * W_out; }
};

// Checks the hyper-parameters (stride in [1, kMaxConvArg], padding in [0, kMaxConvArg], dilation in
// [1, kMaxConvArg], groups >= 1) naming `op`.
constexpr int64_t kMaxConvArg = int64_t(1) << 24;
void check_conv_args(const Conv2dArgs& a, const char* op);
// Input, weight, output and one image's im2col columns each within max_tensor_elements(), checked before
// any kernel allocates scratch (an exception cannot leave an OpenMP region).
void check_conv_sizes(const ConvDims& d, const char* op);

// conv2d: checks input [N, C_in, H, W] against weight [C_out, C_in/groups, kH, kW] and bias [C_out].
ConvDims conv2d_dims(const Shape& input, const Shape& weight, const Shape* bias, const Conv2dArgs& a,
                     const char* op = "conv2d");

// ---- raw kernels (core/im2col.cpp, core/conv2d.cpp, core/depthwise.cpp) ----
// im2col of one image's group: x [C, H, W] (C = d.cin_g()) -> cols [C*kH*kW, H_out*W_out], rows ldc apart
// (ldc = 0: H_out*W_out; a larger ldc lets several images share one cols matrix side by side).
void im2col(const float* x, const ConvDims& d, float* cols, int64_t ldc = 0);
// col2im: the adjoint of im2col; ACCUMULATES cols (rows ldc apart, as above) into x [C, H, W].
void col2im(const float* cols, const ConvDims& d, float* x, int64_t ldc = 0);

// The im2col matrix of images [n0, n0 + nn) of group g side by side (cols [K, nn*HWo], image i in columns
// [i*HWo, (i+1)*HWo)), handed to the GEMM block by block in its packed layout instead of being stored
// (BPacker, core/gemm.h): the same values, so the same bits, without writing and re-reading K x nn*HWo floats
// (9.4 MB for one 64x64 image at 64 channels, far beyond L2). x is the whole batch [N, C_in, H, W].
// One row of the im2col matrix: its channel's offset in the image, input row = oh*sH + ih0, input column =
// ow*sW + iw0, and the output columns [lo, hi) that read inside the image.
struct PackRow {
  int64_t chan, ih0, iw0, lo, hi;
};

// Two ways to read the matrix: normally the block's input is first copied once into a zero-bordered buffer
// [nn, C/G, H + 2pH, W + 2pW] (a per-thread workspace; rows phase-split by the stride, see im2col.cpp), where
// cols[r][j] = padded[row_off[r] + col_off[j]] with no bounds test. With output rows of at least
// kMinInPlaceRun columns the GEMM reads that buffer in place (in_place(): no packing at all; the weight
// gradient's cols^T is transposed from it 8 x 8 into the panels); with shorter rows a panel row is a few
// contiguous runs (one per output row) copied into the GEMM's panel. When the buffer would be large (a padding
// much wider than the image) the rows are walked with their bounds instead (PackRow).
class Im2colPacker : public BPacker {
 public:
  // transposed: op(B) = cols^T [nn*HWo, K] (the weight gradient's dy x cols^T) instead of cols.
  Im2colPacker(const float* x, const ConvDims& d, int64_t n0, int64_t nn, int64_t g, bool transposed = false);
  void pack(int64_t k0, int64_t kc, int64_t j0, int64_t n, int nr, int lane, float* dst) const override;
  // Bordered, not transposed, and output rows of at least kMinInPlaceRun columns: the GEMM reads the rows of
  // the bordered buffer in place (one run per output row) instead of packing them.
  const InPlace* in_place() const override { return in_place_.base ? &in_place_ : nullptr; }
  bool bordered() const { return padded_ != nullptr; }
  static constexpr int64_t kMinInPlaceRun = 16;
  // The bordered copy of a block is used up to this many floats (16 MB per thread); past it (paddings far wider than
  // the image) the rows are walked with their bounds instead.
  static constexpr double kMaxBorderedFloats = double(int64_t(1) << 22);

 private:
  void pack_bordered(int64_t k0, int64_t kc, int64_t j0, int64_t n, int nr, int lane, float* dst) const;
  const float* xg_;  // image n0, first channel of group g
  ConvDims d_;
  bool transposed_;
  std::vector<PackRow> rows_;  // [K]  (walked path)
  const float* padded_ = nullptr;  // [nn, C/G, Hp, sW * ceil(Wp / sW)] (bordered path), or null
  std::vector<int64_t> row_off_;   // [K]: offset of cols row r = (c, kh, kw) in padded_
  std::vector<int64_t> col_off_;   // [nn*HWo]: offset of cols column j = (image, oh, ow) in padded_
  std::vector<int64_t> run_off_;   // [nn*H_out]: offset of output row (image, oh) in padded_ (in place)
  InPlace in_place_{};
};

// y [N, C_out, H_out, W_out] = conv(x, w) + b (b may be null). Overwrites y.
void conv2d_forward(const float* x, const float* w, const float* b, const ConvDims& d, float* y);
// Accumulates into whichever of dx [N, C_in, H, W], dw [C_out, C_in/G, kH, kW], db [C_out] is non-null.
void conv2d_backward(const float* x, const float* w, const float* dy, const ConvDims& d, float* dx,
                     float* dw, float* db);
// Direct kernels for depthwise convs (G == C_in, C_out = multiplier * C_in), same contracts.
bool is_depthwise(const ConvDims& d);
void depthwise_forward(const float* x, const float* w, const float* b, const ConvDims& d, float* y);
void depthwise_backward(const float* x, const float* w, const float* dy, const ConvDims& d, float* dx,
                        float* dw, float* db);
// db[c] += sum over n and pixels of dy[n, c, :, :] (fixed order, parallel over channels).
void bias_backward(const float* dy, int64_t N, int64_t C, int64_t HW, float* db);

// A conv's jobs are (image block, group) pairs, each one GEMM. The GEMM is split over the threads only when its
// job is the whole op (`jobs` == 1), and never in training with batch shards (core/shards.h): a split changes
// the GEMM's K blocking, and a process holding one shard must compute what a process holding all of them does.
bool split_gemm_inside(int64_t jobs);
// One GEMM of a job (C = A B + beta C, alpha 1): sgemm_parallel when parallel_inside, else sgemm.
void job_gemm(bool parallel_inside, bool ta, bool tb, int64_t M, int64_t N, int64_t K, const float* A,
              int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc);

// ---- differentiable ops ----
// torch.nn.functional.conv2d. x [N, C_in, H, W], w [C_out, C_in/groups, kH, kW], b [C_out] or undefined.
Tensor conv2d(const Tensor& x, const Tensor& w, const Tensor& b, const Conv2dArgs& a = {});

}  // namespace convlab

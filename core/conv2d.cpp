// core/conv2d.cpp: conv2d forward and backward (im2col + GEMM), shape checks, and the autograd op.
//
// Forward, per image n and group g:   y[n,g] [C_out/G, HWo] = W_g [C_out/G, K] x cols [K, HWo],
//   K = C_in/G * kH * kW, cols = im2col(x[n,g]) (or x itself for 1x1/stride-1/no-padding convs).
// Backward:  dcols = W_g^T dy[n,g], dx[n,g] += col2im(dcols) (stride 1: dx += conv of dy with the flipped,
//   transposed kernel instead, see dx_as_conv);   dW_g += sum_n dy[n,g] cols^T;
//   db[c] += sum over n and pixels of dy[n,c].
// Output rows shorter than 16 columns (DCGAN's 7x7 and 14x14 maps) turn the three GEMMs around, pixels as rows and
// channels as vectors, with the same bits (core/conv2d_short.h).
// Parallelism: (image block, g) jobs across OpenMP threads (a block is one image, or several side by side
// when the output is small: images_per_block), single-threaded GEMM inside; with one job the GEMM
// itself is split (sgemm_parallel). dW is reduced over fixed batch chunks then summed in chunk order, so
// 1 and 2 threads give bit-identical gradients. The input- and weight-gradient jobs share one parallel region,
// dealt to the threads by their images (run_dealt, core/threads.h); which thread runs a job never changes a bit.
#include <omp.h>

#include <algorithm>
#include <vector>

#include "core/error.h"
#include "core/conv2d_short.h"
#include "core/gemm.h"
#include "core/ops.h"
#include "core/shards.h"
#include "core/threads.h"
#include "core/workspace.h"

namespace convlab {
namespace {

constexpr int64_t kWeightGradChunks = 4;  // fixed: independent of the thread count

bool cols_are_input(const ConvDims& d) {
  return d.kH == 1 && d.kW == 1 && d.sH == 1 && d.sW == 1 && d.pH == 0 && d.pW == 0;
}

}  // namespace

void job_gemm(bool parallel_inside, bool ta, bool tb, int64_t M, int64_t N, int64_t K, const float* A,
              int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  if (parallel_inside) sgemm_parallel(ta, tb, M, N, K, 1.f, A, lda, B, ldb, beta, C, ldc);
  else sgemm(ta, tb, M, N, K, 1.f, A, lda, B, ldb, beta, C, ldc);
}

bool split_gemm_inside(int64_t jobs) { return jobs == 1 && batch_shards().total == 1; }

void check_conv_args(const Conv2dArgs& a, const char* op) {
  CL_CHECK(a.stride[0] >= 1 && a.stride[1] >= 1,
           op << ": stride must be >= 1, got [" << a.stride[0] << "," << a.stride[1] << "]");
  CL_CHECK(a.padding[0] >= 0 && a.padding[1] >= 0,
           op << ": padding must be >= 0, got [" << a.padding[0] << "," << a.padding[1] << "]");
  CL_CHECK(a.dilation[0] >= 1 && a.dilation[1] >= 1,
           op << ": dilation must be >= 1, got [" << a.dilation[0] << "," << a.dilation[1] << "]");
  CL_CHECK(a.groups >= 1, op << ": groups must be >= 1, got " << a.groups);
  // Upper bounds keep every size formula inside int64 (dimensions are at most max_tensor_elements() each).
  for (int ax = 0; ax < 2; ++ax)
    CL_CHECK(a.stride[ax] <= kMaxConvArg && a.padding[ax] <= kMaxConvArg && a.dilation[ax] <= kMaxConvArg,
             op << ": stride, padding and dilation must be at most " << kMaxConvArg << ", got stride [" << a.stride[0]
                << "," << a.stride[1] << "], padding [" << a.padding[0] << "," << a.padding[1] << "], dilation ["
                << a.dilation[0] << "," << a.dilation[1] << "]");
}

void check_conv_sizes(const ConvDims& d, const char* op) {
  const auto at_most = [&](const Shape& s, const char* what) {
    try {
      numel_of(s);
    } catch (const Error& e) {
      CL_FAIL(op << ": " << what << " " << shape_str(s) << " is too large (" << e.what() << ")");
    }
  };
  at_most({d.N, d.C_in, d.H, d.W}, "input");
  at_most({d.C_out, d.cin_g(), d.kH, d.kW}, "weight");
  at_most({d.N, d.C_out, d.H_out, d.W_out}, "output");
  at_most({d.k_rows(), d.hw_out()}, "im2col columns of one image");
}

ConvDims conv2d_dims(const Shape& x, const Shape& w, const Shape* b, const Conv2dArgs& a, const char* op) {
  check_conv_args(a, op);
  CL_CHECK(x.size() == 4, op << ": input must be 4-D [N, C_in, H, W], got input " << shape_str(x));
  CL_CHECK(w.size() == 4, op << ": weight must be 4-D [C_out, C_in/groups, kH, kW], got weight " << shape_str(w));
  for (int64_t v : x) CL_CHECK(v >= 1, op << ": input " << shape_str(x) << " has an empty dimension");
  for (int64_t v : w) CL_CHECK(v >= 1, op << ": weight " << shape_str(w) << " has an empty dimension");
  numel_of(x), numel_of(w);  // each dimension within the element limit before any arithmetic on it
  ConvDims d;
  d.N = x[0], d.C_in = x[1], d.H = x[2], d.W = x[3];
  d.C_out = w[0], d.kH = w[2], d.kW = w[3], d.G = a.groups;
  d.sH = a.stride[0], d.sW = a.stride[1], d.pH = a.padding[0], d.pW = a.padding[1];
  d.dH = a.dilation[0], d.dW = a.dilation[1];
  CL_CHECK(d.C_in % d.G == 0, op << ": input channels " << d.C_in << " not divisible by groups=" << d.G
                                 << " (input " << shape_str(x) << ", weight " << shape_str(w) << ")");
  CL_CHECK(d.C_out % d.G == 0, op << ": weight " << shape_str(w) << " has " << d.C_out
                                  << " output channels, not divisible by groups=" << d.G);
  CL_CHECK(w[1] * d.G == d.C_in, op << ": weight " << shape_str(w) << " expects input with " << w[1] * d.G
                                    << " channels (groups=" << d.G << "), got input " << shape_str(x));
  if (b) {
    CL_CHECK(b->size() == 1 && (*b)[0] == d.C_out,
             op << ": bias " << shape_str(*b) << " must be [" << d.C_out << "] for weight " << shape_str(w));
  }
  const int64_t ekH = d.dH * (d.kH - 1) + 1, ekW = d.dW * (d.kW - 1) + 1;
  CL_CHECK(d.H + 2 * d.pH >= ekH && d.W + 2 * d.pW >= ekW,
           op << ": kernel " << ekH << "x" << ekW << " (dilated) is larger than the padded input "
              << d.H + 2 * d.pH << "x" << d.W + 2 * d.pW << " (input " << shape_str(x) << ", weight "
              << shape_str(w) << ")");
  d.H_out = (d.H + 2 * d.pH - ekH) / d.sH + 1;
  d.W_out = (d.W + 2 * d.pW - ekW) / d.sW + 1;
  check_conv_sizes(d, op);
  return d;
}

namespace {

// Images side by side in one GEMM. Small outputs (a DCGAN discriminator's 14x14 -> 7x7, a 7x7 -> 1x1 head)
// make per-image GEMMs so thin (N = 49 or 1 columns) that packing the weights and the ragged column tiles
// cost more than the arithmetic; nb images give cols [K, nb*HWo] and one GEMM per block. The block size
// depends on the shape only, never on the thread count, so results stay bit-identical across threads.
int64_t images_per_block(const ConvDims& d) {
  if (cols_are_input(d)) return 1;  // x is the cols matrix in place
  constexpr int64_t kMinCols = 512, kMaxColFloats = int64_t(1) << 20;  // >= 512 columns, <= 4 MB of cols
  const int64_t HWo = d.hw_out(), K = d.k_rows();
  int64_t nb = (kMinCols + HWo - 1) / HWo;
  nb = std::min(nb, std::max<int64_t>(1, kMaxColFloats / (K * HWo)));
  return std::max<int64_t>(1, std::min(nb, d.N));
}

// Blocks of up to images_per_block images side by side, cut at the batch-shard boundaries in training
// (core/shards.h): a block, and so every GEMM shape and its bits, is the same whether one process holds the whole
// batch or several processes hold a shard each. Outside training one shard spans the batch.
struct ImageBlocks {
  int64_t nb, per, per_blocks, count;
  explicit ImageBlocks(const ConvDims& d) {
    const int64_t shards = batch_shards().total > 1 ? local_shards(d.N, "conv2d") : 1;
    per = d.N / shards;
    nb = std::min(images_per_block(d), per);
    per_blocks = (per + nb - 1) / nb;
    count = shards * per_blocks;
  }
  int64_t first(int64_t j) const { return (j / per_blocks) * per + (j % per_blocks) * nb; }
  int64_t size(int64_t j) const { return std::min(nb, per - (j % per_blocks) * nb); }
};

// cols [K, nn*HWo] of images n0..n0+nn-1 of group g (image i in columns [i*HWo, (i+1)*HWo)).
void block_cols(const float* x, const ConvDims& d, int64_t n0, int64_t nn, int64_t g, float* cols) {
  const int64_t L = nn * d.hw_out();
  for (int64_t i = 0; i < nn; ++i)
    im2col(x + ((n0 + i) * d.C_in + g * d.cin_g()) * d.H * d.W, d, cols + i * d.hw_out(), L);
}

// Copies between a block matrix [Mg, nn*HWo] and the images' channel rows of group g in t [N, C_out, HWo].
// accumulate: t += blk instead of t = blk.
void scatter_block(const float* blk, const ConvDims& d, int64_t n0, int64_t nn, int64_t g, float* t,
                   bool accumulate) {
  const int64_t HWo = d.hw_out(), Mg = d.cout_g(), L = nn * HWo;
  for (int64_t i = 0; i < nn; ++i)
    for (int64_t m = 0; m < Mg; ++m) {
      const float* src = blk + m * L + i * HWo;
      float* dst = t + ((n0 + i) * d.C_out + g * Mg + m) * HWo;
      if (accumulate)
        for (int64_t p = 0; p < HWo; ++p) dst[p] += src[p];
      else
        std::copy_n(src, HWo, dst);
    }
}
void gather_block(const float* t, const ConvDims& d, int64_t n0, int64_t nn, int64_t g, float* blk) {
  const int64_t HWo = d.hw_out(), Mg = d.cout_g(), L = nn * HWo;
  for (int64_t i = 0; i < nn; ++i)
    for (int64_t m = 0; m < Mg; ++m)
      std::copy_n(t + ((n0 + i) * d.C_out + g * Mg + m) * HWo, HWo, blk + m * L + i * HWo);
}

}  // namespace

namespace {

// y (+)= the im2col + GEMM conv of x with w over d (plus b unless null): the forward pass, and the stride-1
// input gradient (a conv of dy, see transposed_for_dx). accumulate: y += conv, else y = conv.
void forward_gemm(const float* x, const float* w, const float* b, const ConvDims& d, float* y, bool accumulate) {
  const int64_t K = d.k_rows(), HWo = d.hw_out(), Mg = d.cout_g(), Cg = d.cin_g();
  const ImageBlocks ib(d);
  const int64_t jobs = ib.count * d.G;
  const bool whole = split_gemm_inside(jobs);  // core/conv.h
  const bool direct = cols_are_input(d);
  const auto add_bias = [&](int64_t n0, int64_t nn, int64_t g) {
    for (int64_t i = 0; i < nn; ++i)
      for (int64_t m = 0; m < Mg; ++m) {
        const float bv = b[g * Mg + m];
        float* row = y + ((n0 + i) * d.C_out + g * Mg + m) * HWo;
        for (int64_t p = 0; p < HWo; ++p) row[p] += bv;
      }
  };
  if (!whole && short_rows_forward_applies(d, ib.nb)) {
    // Short output rows: pixels as the GEMM's rows (conv2d_short.h). A block's images are independent rows there,
    // so each block is cut in two halves dealt to the threads by their images: the blocks of 11 and 9 images of a
    // DCGAN discriminator left a thread idle for two images under a static schedule. Each half keeps its block's
    // K blocking and accumulation, so the bits are the block's.
    struct Half {
      int64_t block, g, i0, count;
    };
    std::vector<Half> halves;
    std::vector<int64_t> cost;
    for (int64_t j = 0; j < jobs; ++j) {
      const int64_t nn = ib.size(j / d.G), h = (nn + 1) / 2;
      halves.push_back({j / d.G, j % d.G, 0, h}), cost.push_back(h);
      if (h < nn) halves.push_back({j / d.G, j % d.G, h, nn - h}), cost.push_back(nn - h);
    }
    run_dealt(cost, [&](int64_t k) {
      const Half& hf = halves[size_t(k)];
      const int64_t n0 = ib.first(hf.block) + hf.i0;
      short_rows_forward(x, w, d, n0, hf.count, hf.g, y, accumulate, ib.size(hf.block));
      if (b) add_bias(n0, hf.count, hf.g);
    });
    return;
  }
#pragma omp parallel for schedule(static) if (jobs > 1)
  for (int64_t j = 0; j < jobs; ++j) {
    const int64_t n0 = ib.first(j / d.G), g = j % d.G, nn = ib.size(j / d.G), L = nn * HWo;
    // nn == 1: straight into y; else into a block matrix scattered (added) to the images afterwards.
    float* yg = nn == 1 ? y + (n0 * d.C_out + g * Mg) * HWo : workspace(2, Mg * L);
    const float beta = accumulate && nn == 1 ? 1.f : 0.f;
    if (direct) {  // x itself is the cols matrix (nb = 1)
      job_gemm(whole, false, false, Mg, L, K, w + g * Mg * K, K, x + (n0 * d.C_in + g * Cg) * d.H * d.W, L,
               beta, yg, L);
    } else if (whole) {  // one job: the GEMM itself is split over the threads, from stored columns
      float* cols = workspace(0, K * L);
      block_cols(x, d, n0, nn, g, cols);
      job_gemm(true, false, false, Mg, L, K, w + g * Mg * K, K, cols, L, beta, yg, L);
    } else {  // the columns are packed straight from x, block by block (Im2colPacker)
      sgemm_packer(false, Mg, L, K, w + g * Mg * K, K, Im2colPacker(x, d, n0, nn, g), beta, yg, L);
    }
    if (nn > 1) scatter_block(yg, d, n0, nn, g, y, accumulate);
    if (b) add_bias(n0, nn, g);
  }
}

// For stride 1, dx is itself a convolution of dy (no col2im, no [K, HWo] dcols matrix whose GEMM has only
// C_out/G terms per element):
//   dx[n, g*Cg + c, ih, iw] = sum_{m, kh', kw'} Wt[g*Cg + c, m, kh', kw'] * dy[n, g*Mg + m, ih - p' + kh'*d, ...]
// with the kernel flipped and transposed, Wt[g*Cg + c, m, kh', kw'] = W[g*Mg + m, c, kH-1-kh', kW-1-kw'],
// padding p' = d*(k-1) - p and the same dilation; its output is [H, W] again. Needs p' >= 0 on both axes
// (padding at most the dilated kernel's extent minus one, true for every "same" conv) and C_in/G >= 16.
ConvDims transposed_for_dx(const ConvDims& d);
bool dx_as_conv(const ConvDims& d) {
  if (d.sH != 1 || d.sW != 1 || d.pH > d.dH * (d.kH - 1) || d.pW > d.dW * (d.kW - 1)) return false;
  // The conv's GEMM has C_in/G rows: with a handful (an RGB stem) its tiles are all edge and latency-bound,
  // slower than the K-row dcols GEMM + col2im (measured: stem 6.7 against 4.5 ms per pass).
  if (d.cin_g() < 16) return false;
  const ConvDims t = transposed_for_dx(d);  // its columns must fit the tensor limit like the forward's do
  return t.k_rows() * t.hw_out() <= max_tensor_elements();
}

ConvDims transposed_for_dx(const ConvDims& d) {
  ConvDims t = d;
  t.C_in = d.C_out, t.H = d.H_out, t.W = d.W_out;
  t.C_out = d.C_in;
  t.pH = d.dH * (d.kH - 1) - d.pH, t.pW = d.dW * (d.kW - 1) - d.pW;
  t.H_out = d.H, t.W_out = d.W;
  return t;
}

// Wt [C_in, C_out/G, kH, kW] from W [C_out, C_in/G, kH, kW] (see dx_as_conv).
void flip_transpose_weight(const float* w, const ConvDims& d, float* wt) {
  const int64_t Mg = d.cout_g(), Cg = d.cin_g(), T = d.kH * d.kW;
  for (int64_t g = 0; g < d.G; ++g)
    for (int64_t c = 0; c < Cg; ++c)
      for (int64_t m = 0; m < Mg; ++m)
        for (int64_t t = 0; t < T; ++t)
          wt[((g * Cg + c) * Mg + m) * T + t] = w[((g * Mg + m) * Cg + c) * T + (T - 1 - t)];
}

}  // namespace

void conv2d_forward(const float* x, const float* w, const float* b, const ConvDims& d, float* y) {
  if (is_depthwise(d)) return depthwise_forward(x, w, b, d, y);
  forward_gemm(x, w, b, d, y, false);
}

// db[c] += sum over n and pixels of dy[n, c]: per batch shard (core/shards.h) a double sum over its images in
// order, the shards folded in order (outside training: one shard, the images in order).
void bias_backward(const float* dy, int64_t N, int64_t C, int64_t HW, float* db) {
  const int64_t shards = local_shards(N, "bias gradient"), per = N / shards;
  std::vector<double> part(static_cast<size_t>(shards * C)), sum(static_cast<size_t>(C));
#pragma omp parallel for schedule(static) if (C * N * HW > 32768)
  for (int64_t c = 0; c < C; ++c) for (int64_t k = 0; k < shards; ++k) {
    double acc = 0.0;
    for (int64_t n = k * per; n < (k + 1) * per; ++n) {
      const float* p = dy + (n * C + c) * HW;
      // 16 independent partial sums in a fixed order: vectorises and hides the add latency, and the order
      // does not depend on the thread count.
      float s[16] = {0.f};
      int64_t i = 0;
      for (; i + 16 <= HW; i += 16)
        for (int l = 0; l < 16; ++l) s[l] += p[i + l];
      float t = 0.f;
      for (; i < HW; ++i) t += p[i];
      for (int l = 0; l < 16; l += 2) t += s[l] + s[l + 1];
      acc += t;
    }
    part[size_t(k * C + c)] = acc;
  }
  fold_shards(part.data(), C, sum.data());
  for (int64_t c = 0; c < C; ++c) db[c] += static_cast<float>(sum[size_t(c)]);
}

void conv2d_backward(const float* x, const float* w, const float* dy, const ConvDims& d, float* dx, float* dw,
                     float* db) {
  if (is_depthwise(d)) return depthwise_backward(x, w, dy, d, dx, dw, db);
  const int64_t K = d.k_rows(), HWo = d.hw_out(), Mg = d.cout_g(), Cg = d.cin_g();
  const ImageBlocks ib(d);
  const int64_t blocks = ib.count;
  const bool direct = cols_are_input(d);
  if (db) bias_backward(dy, d.N, d.C_out, HWo, db);
  // dy of a block as one [Mg, nn*HWo] matrix: in place for a single image, else gathered into slot 2.
  auto block_dy = [&](int64_t n0, int64_t nn, int64_t g) -> const float* {
    if (nn == 1) return dy + (n0 * d.C_out + g * Mg) * HWo;
    float* blk = workspace(2, Mg * nn * HWo);
    gather_block(dy, d, n0, nn, g, blk);
    return blk;
  };

  const bool dx_by_conv = dx && !direct && dx_as_conv(d);
  if (dx_by_conv) {  // dx += conv(dy, flipped and transposed W), see dx_as_conv
    float* wt = shared_workspace(1, d.C_out * K);
    flip_transpose_weight(w, d, wt);
    forward_gemm(dy, wt, nullptr, transposed_for_dx(d), dx, true);
  }
  // Else dx[n,g] += col2im(W_g^T dy[n,g]), one job per (block, group).
  const int64_t dx_jobs = dx && !dx_by_conv ? blocks * d.G : 0;
  const bool dx_whole = split_gemm_inside(dx_jobs);  // core/conv.h
  // Short output rows: dy read in place, dcols added to dx as they come, from W tap-major (conv2d_short.h).
  const bool dx_short = dx_jobs > 0 && !dx_whole && short_rows_dx_applies(d, ib.nb);
  float* wtap = dx_short ? shared_workspace(2, d.C_out * K) : nullptr;
  if (dx_short) short_rows_tap_major(w, d, wtap);
  const auto dx_job = [&](int64_t j) {
    const int64_t n0 = ib.first(j / d.G), g = j % d.G, nn = ib.size(j / d.G), L = nn * HWo;
    if (dx_short) return short_rows_input_grad(dy, wtap, d, n0, nn, g, dx);
    const float* dyg = block_dy(n0, nn, g);
    if (direct) {
      float* dxg = dx + (n0 * d.C_in + g * Cg) * d.H * d.W;
      job_gemm(dx_whole, true, false, K, HWo, Mg, w + g * Mg * K, K, dyg, HWo, 1.f, dxg, HWo);
    } else {
      float* dcols = workspace(1, K * L);
      job_gemm(dx_whole, true, false, K, L, Mg, w + g * Mg * K, K, dyg, L, 0.f, dcols, L);
      for (int64_t i = 0; i < nn; ++i)
        col2im(dcols + i * HWo, d, dx + ((n0 + i) * d.C_in + g * Cg) * d.H * d.W, L);
    }
  };

  // dW_g += sum over blocks of dy[block,g] cols[block,g]^T, over fixed chunks of blocks, one job per (chunk, group).
  // Chunks: fixed groups of blocks (at most kWeightGradChunks), or in training the batch shards (core/shards.h:
  // chunk c is shard c, its blocks cut inside it, the chunks folded in shard order).
  const bool sharded = batch_shards().total > 1;
  const int64_t chunks = sharded ? blocks / ib.per_blocks : std::min(blocks, kWeightGradChunks);
  const int64_t wsize = d.C_out * K;
  float* partial = dw ? shared_workspace(0, chunks * wsize) : nullptr;
  const int64_t dw_jobs = dw ? chunks * d.G : 0;
  const bool dw_whole = split_gemm_inside(dw_jobs);  // core/conv.h
  // Short output rows: each group's partial is kept transposed, [K, Mg] (conv2d_short.h).
  const bool transposed = dw && !dw_whole && short_rows_dw_applies(d, ib.nb);
  const auto chunk_blocks = [&](int64_t c, int64_t& b0, int64_t& b1) {
    b0 = sharded ? c * ib.per_blocks : blocks * c / chunks;
    b1 = sharded ? (c + 1) * ib.per_blocks : blocks * (c + 1) / chunks;
  };
  const auto dw_job = [&](int64_t j) {
    const int64_t c = j / d.G, g = j % d.G;
    int64_t b0, b1;
    chunk_blocks(c, b0, b1);
    float* pw = partial + c * wsize + g * Mg * K;
    for (int64_t bl = b0; bl < b1; ++bl) {
      const int64_t n0 = ib.first(bl), nn = ib.size(bl), L = nn * HWo;
      const float* dyg = block_dy(n0, nn, g);
      const float beta = bl == b0 ? 0.f : 1.f;
      if (transposed) {
        short_rows_weight_grad(x, dyg, d, n0, nn, g, beta, pw);
      } else if (direct) {
        job_gemm(dw_whole, false, true, Mg, K, L, dyg, L, x + (n0 * d.C_in + g * Cg) * d.H * d.W, L, beta, pw, K);
      } else if (dw_whole) {
        float* cols = workspace(0, K * L);
        block_cols(x, d, n0, nn, g, cols);
        job_gemm(true, false, true, Mg, K, L, dyg, L, cols, L, beta, pw, K);
      } else {  // cols^T packed straight from x (Im2colPacker)
        sgemm_packer(false, Mg, K, L, dyg, L, Im2colPacker(x, d, n0, nn, g, true), beta, pw, K);
      }
    }
  };

  if (dx_jobs > 1 && dw_jobs > 1) {
    // Both gradients' jobs dealt over the threads together by their images (costliest first to the least loaded):
    // blocks of 11 and 9 images left one thread idle for two images in each pass under a static schedule.
    std::vector<int64_t> cost;
    for (int64_t j = 0; j < dx_jobs; ++j) cost.push_back(ib.size(j / d.G));
    for (int64_t j = 0; j < dw_jobs; ++j) {
      int64_t b0, b1, images = 0;
      chunk_blocks(j / d.G, b0, b1);
      for (int64_t bl = b0; bl < b1; ++bl) images += ib.size(bl);
      cost.push_back(images);
    }
    run_dealt(cost, [&](int64_t j) { j < dx_jobs ? dx_job(j) : dw_job(j - dx_jobs); });
  } else {
#pragma omp parallel for schedule(static) if (dx_jobs > 1)
    for (int64_t j = 0; j < dx_jobs; ++j) dx_job(j);
#pragma omp parallel for schedule(static) if (dw_jobs > 1)
    for (int64_t j = 0; j < dw_jobs; ++j) dw_job(j);
  }
  if (!dw) return;

  float* sum = shared_workspace(1, wsize);  // the chunks summed in order, in the partials' layout
  if (sharded) {
    fold_shards(partial, wsize, sum);
  } else {  // s = ((0 + p_0) + p_1) + ... per element, chunk by chunk over contiguous ranges (vectorises)
    constexpr int64_t kRange = 4096;
#pragma omp parallel for schedule(static) if (wsize > 16384)
    for (int64_t r0 = 0; r0 < wsize; r0 += kRange) {
      const int64_t r1 = std::min(wsize, r0 + kRange);
      for (int64_t i = r0; i < r1; ++i) sum[i] = 0.f + partial[i];
      for (int64_t c = 1; c < chunks; ++c)
        for (int64_t i = r0; i < r1; ++i) sum[i] += partial[c * wsize + i];
    }
  }
  if (!transposed) {
#pragma omp parallel for schedule(static) if (wsize > 16384)
    for (int64_t i = 0; i < wsize; ++i) dw[i] += sum[i];
  } else {  // dw (g, m, k) += sum (g, row(k), m): 16 x 16 tiles of each group's transpose
    std::vector<int64_t> row(static_cast<size_t>(K));
    for (int64_t k = 0; k < K; ++k) row[size_t(k)] = short_rows_dw_row(d, k);
    const int64_t tiles_m = (Mg + 15) / 16, tiles_k = (K + 15) / 16, tiles = d.G * tiles_m * tiles_k;
#pragma omp parallel for schedule(static) if (wsize > 16384)
    for (int64_t t = 0; t < tiles; ++t) {
      const int64_t g = t / (tiles_m * tiles_k), m0 = t % tiles_m * 16, k0 = t / tiles_m % tiles_k * 16;
      const float* src = sum + g * K * Mg;
      float* dst = dw + g * Mg * K;
      for (int64_t m = m0; m < std::min(Mg, m0 + 16); ++m)
        for (int64_t k = k0; k < std::min(K, k0 + 16); ++k) dst[m * K + k] += src[row[size_t(k)] * Mg + m];
    }
  }
}

Tensor conv2d(const Tensor& x, const Tensor& w, const Tensor& b, const Conv2dArgs& a) {
  const ConvDims d = conv2d_dims(x.shape(), w.shape(), b.defined() ? &b.shape() : nullptr, a);
  Tensor y = Tensor::empty({d.N, d.C_out, d.H_out, d.W_out});  // [N, C_out, H_out, W_out]
  conv2d_forward(x.data(), w.data(), b.defined() ? b.data() : nullptr, d, y.data());
  record(y, "conv2d", {x, w, b}, [x, w, b, d](const Tensor& g) {
    conv2d_backward(x.data(), w.data(), g.data(), d, x.requires_grad() ? grad_buffer(x) : nullptr,
                    w.requires_grad() ? grad_buffer(w) : nullptr,
                    b.defined() && b.requires_grad() ? grad_buffer(b) : nullptr);
  });
  return y;
}

}  // namespace convlab

// core/conv_transpose2d.cpp: conv_transpose2d forward and backward, shape checks, and the autograd op.
//
// A transposed conv is the adjoint of the corresponding conv2d (see conv_transpose2d.h): in the notation of
// that conv2d's ConvDims d (so d.C_out = our C_in, d.C_in = our C_out, d.H_out x d.W_out = our input size),
// with K = C_out/G * kH * kW and P = H_in * W_in, per image n and group g:
//   forward:   cols [K, P] = W_g^T [K, C_in/G] x x[n,g] [C_in/G, P];   y[n,g] = col2im(cols) (+ b)
//   backward:  cols = im2col(dy[n,g]);  dx[n,g] += W_g cols;  dW_g += sum_n x[n,g] cols^T;  db = sum dy.
// i.e. the forward is conv2d's input-gradient pass and dx is conv2d's forward pass: nothing is ever
// zero-stuffed. W_g = w[g*C_in/G ...] is stored [C_in/G, K] row-major, exactly as the GEMMs want it.
// Parallelism: forward over (block of images, group) jobs, backward over (fixed batch chunk, group) jobs,
// single-threaded GEMMs inside (split GEMMs when there is one job). dW and db are summed per chunk, then
// the chunks in order, so 1 and 2 threads give bit-identical results.
#include "core/conv_transpose2d.h"

#include <omp.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "core/error.h"
#include "core/shards.h"
#include "core/gemm.h"
#include "core/workspace.h"

namespace convlab {
namespace {

constexpr int64_t kWeightGradChunks = 4;  // fixed: independent of the thread count

// 1x1 kernel, stride 1, no padding: col2im is the identity, the GEMM writes the output directly.
// The GEMM result is the output itself only when the output has exactly the input's size: output_padding
// (allowed below the dilation even for 1x1 kernels) adds rows/columns that no tap reaches.
bool cols_are_output(const ConvDims& d) {
  return d.kH == 1 && d.kW == 1 && d.sH == 1 && d.sW == 1 && d.pH == 0 && d.pW == 0 && d.H == d.H_out &&
         d.W == d.W_out;
}

// 1x1 input, no padding, dilation 1, output exactly the kernel (output_padding 0): each image's cols [K, 1]
// is its output, so the whole batch is one GEMM per group, [N, C_in/G] x [C_in/G, K] (DCGAN's first layer).
bool pointwise_input(const ConvDims& d) {
  return d.H_out == 1 && d.W_out == 1 && d.pH == 0 && d.pW == 0 && d.H == d.kH && d.W == d.kW;
}

// How the columns of a block of images are laid out (chosen from the shape alone, by measurement):
//  kDirect    1x1 kernel, stride 1, no padding: cols [K, P] is y[n,g] (forward) or dy[n,g] (backward).
//  kPerImage  cols [K, P] of one image through im2col.cpp's im2col/col2im. Right when the weight is small
//             next to an image (K <= P, e.g. DCGAN's last layer, C_out = 1): nothing to amortise.
//  kBatched   K > P (e.g. 7x7 inputs, K = 64*4*4): per-image GEMMs would be thin (P = 49 columns) and
//             re-pack the whole weight for every image, so nb images share one GEMM of nb*P rows, in the
//             pixel-major layout colsT [nb*P, K] of col2im_pixel_major below. Measured on dcgan_g2:
//             ~25% less GEMM time than per image; blocks of ~kTargetRows rows were the sweet spot.
// Images are cut into kWeightGradChunks fixed chunks (the units of the dW reduction), each chunk into
// balanced blocks of at most nb_max images. Nothing depends on the thread count.
enum class Layout { kDirect, kPerImage, kBatched };
constexpr int64_t kTargetRows = 512;

struct Batching {
  Layout layout;
  int64_t chunks;
  std::vector<int64_t> bound;        // block b covers images [bound[b], bound[b+1])
  std::vector<int64_t> first_block;  // chunk c covers blocks [first_block[c], first_block[c+1])
  // shard_chunks > 0: the chunks are the batch shards of core/shards.h (training), else at most kWeightGradChunks.
  explicit Batching(const ConvDims& d, int64_t shard_chunks = 0)
      : chunks(shard_chunks > 0 ? shard_chunks : std::min(d.N, kWeightGradChunks)) {
    const int64_t P = d.hw_out();
    layout = cols_are_output(d) ? Layout::kDirect : d.k_rows() <= P ? Layout::kPerImage : Layout::kBatched;
    const int64_t nb_max = layout == Layout::kBatched ? std::max<int64_t>(1, (kTargetRows + P - 1) / P) : 1;
    bound.push_back(0);
    for (int64_t c = 0; c < chunks; ++c) {
      first_block.push_back(static_cast<int64_t>(bound.size()) - 1);
      const int64_t n0 = d.N * c / chunks, len = d.N * (c + 1) / chunks - n0;
      const int64_t nblk = (len + nb_max - 1) / nb_max;
      for (int64_t i = 1; i <= nblk; ++i) bound.push_back(n0 + len * i / nblk);
    }
    first_block.push_back(static_cast<int64_t>(bound.size()) - 1);
  }
  int64_t blocks() const { return static_cast<int64_t>(bound.size()) - 1; }
};

// Xb [C_in/G, nb*P]: channel rows of images n0..n0+nb-1 (group g) side by side; no copy when nb == 1.
const float* gather_images(const float* x, const ConvDims& d, int64_t n0, int64_t nb, int64_t g, float* buf) {
  const int64_t Cig = d.cout_g(), P = d.hw_out();
  if (nb == 1) return x + (n0 * d.C_out + g * Cig) * P;
  for (int64_t c = 0; c < Cig; ++c)
    for (int64_t i = 0; i < nb; ++i)
      std::memcpy(buf + (c * nb + i) * P, x + ((n0 + i) * d.C_out + g * Cig + c) * P, sizeof(float) * P);
  return buf;
}

// The adjoint of gather_images, accumulating: dx[n0+i, g, c, :] += dxb[c, i*P ...].
void scatter_images(const float* dxb, const ConvDims& d, int64_t n0, int64_t nb, int64_t g, float* dx) {
  const int64_t Cig = d.cout_g(), P = d.hw_out();
  for (int64_t c = 0; c < Cig; ++c)
    for (int64_t i = 0; i < nb; ++i) {
      float* out = dx + ((n0 + i) * d.C_out + g * Cig + c) * P;
      const float* src = dxb + (c * nb + i) * P;
      for (int64_t k = 0; k < P; ++k) out[k] += src[k];
    }
}

// Pixel-major columns. colsT [P, K] of one image: row = input pixel (ih, iw), column = (c, kh, kw) with
// c < C_out/G, i.e. the transpose of im2col.cpp's [K, P] layout. Input pixel (ih, iw) and tap (kh, kw) meet
// output pixel (ih*s - p + kh*d, iw*s - p + kw*d), so for a fixed pixel, channel and kh the kW taps touch
// one output row at columns ox0 + kw*dW: a contiguous run when the dilation is 1 (DCGAN: 4 floats). That
// run is the unit of work here, instead of im2col.cpp's rows of W_in floats at stride s, which for 7x7
// inputs were 7-float strided loops and cost 2-3x more.
struct TapRange {
  int64_t lo, hi;  // valid taps [lo, hi): output coordinate start + k*dil inside [0, size)
};
inline TapRange tap_range(int64_t start, int64_t dil, int64_t k, int64_t size) {
  // start + k*dil >= 0  <=> k >= ceil(-start / dil);   start + k*dil <= size-1 <=> k <= floor((size-1-start)/dil)
  const int64_t lo = start >= 0 ? 0 : (-start + dil - 1) / dil;
  const int64_t e = size - 1 - start;
  const int64_t hi = e < 0 ? 0 : std::min(k, e / dil + 1);
  return {std::min(lo, hi), hi};
}

// Calls f.template operator()<L>() with the run length L as a compile-time constant for the common short
// runs at dilation 1 (unrolled; 4 floats = one SSE op), L = 0 otherwise (runtime length and dilation).
// The runtime-length loop cost ~2.5x more on dcgan_g2.
template <class F>
inline void with_run_length(int64_t len, int64_t dil, F&& f) {
  if (dil == 1 && len == 4) f.template operator()<4>();
  else if (dil == 1 && len == 3) f.template operator()<3>();
  else if (dil == 1 && len == 2) f.template operator()<2>();
  else if (len == 1) f.template operator()<1>();
  else f.template operator()<0>();
}

// img [C_out/G, H_out, W_out] (our output, one image and group) += scatter of colsT [P, K].
void col2im_pixel_major(const float* colsT, const ConvDims& d, float* img) {
  const int64_t K = d.k_rows(), Q = d.H * d.W, kk = d.kH * d.kW;
  for (int64_t ih = 0; ih < d.H_out; ++ih) {
    const int64_t oy0 = ih * d.sH - d.pH;
    const TapRange rh = tap_range(oy0, d.dH, d.kH, d.H);
    for (int64_t iw = 0; iw < d.W_out; ++iw) {
      const int64_t ox0 = iw * d.sW - d.pW;
      const TapRange rw = tap_range(ox0, d.dW, d.kW, d.W);
      const float* src = colsT + (ih * d.W_out + iw) * K + rw.lo;
      for (int64_t kh = rh.lo; kh < rh.hi; ++kh) {
        float* out = img + (oy0 + kh * d.dH) * d.W + ox0 + rw.lo * d.dW;  // channel 0's run
        const float* s = src + kh * d.kW;
        with_run_length(rw.hi - rw.lo, d.dW, [&]<int L>() {
          const int64_t len = L ? L : rw.hi - rw.lo, dil = L ? 1 : d.dW;
          float* po = out;
          const float* ps = s;
          for (int64_t c = 0; c < d.cin_g(); ++c, po += Q, ps += kk)
            for (int64_t t = 0; t < len; ++t) po[t * dil] += ps[t];
        });
      }
    }
  }
}

// The adjoint: colsT [P, K] = the patches of img [C_out/G, H_out, W_out], zero where they leave the image.
void im2col_pixel_major(const float* img, const ConvDims& d, float* colsT) {
  const int64_t K = d.k_rows(), Q = d.H * d.W, kk = d.kH * d.kW;
  for (int64_t ih = 0; ih < d.H_out; ++ih) {
    const int64_t oy0 = ih * d.sH - d.pH;
    const TapRange rh = tap_range(oy0, d.dH, d.kH, d.H);
    for (int64_t iw = 0; iw < d.W_out; ++iw) {
      const int64_t ox0 = iw * d.sW - d.pW;
      const TapRange rw = tap_range(ox0, d.dW, d.kW, d.W);
      float* dst = colsT + (ih * d.W_out + iw) * K;
      if (rh.hi - rh.lo < d.kH || rw.hi - rw.lo < d.kW) std::fill(dst, dst + K, 0.f);  // border pixel
      for (int64_t kh = rh.lo; kh < rh.hi; ++kh) {
        const float* in = img + (oy0 + kh * d.dH) * d.W + ox0 + rw.lo * d.dW;  // channel 0's run
        float* o = dst + kh * d.kW + rw.lo;
        with_run_length(rw.hi - rw.lo, d.dW, [&]<int L>() {
          const int64_t len = L ? L : rw.hi - rw.lo, dil = L ? 1 : d.dW;
          const float* pi = in;
          float* po = o;
          for (int64_t c = 0; c < d.cin_g(); ++c, pi += Q, po += kk)
            for (int64_t t = 0; t < len; ++t) po[t] = pi[t * dil];
        });
      }
    }
  }
}

void add_bias(const float* b, int64_t C, int64_t HW, float* y) {
  for (int64_t c = 0; c < C; ++c) {
    float* row = y + c * HW;
    const float bv = b[c];
    for (int64_t i = 0; i < HW; ++i) row[i] += bv;
  }
}

}  // namespace

ConvDims conv_transpose2d_dims(const Shape& x, const Shape& w, const Shape* b, const ConvTranspose2dArgs& a,
                               const char* op) {
  check_conv_args(Conv2dArgs{a.stride, a.padding, a.dilation, a.groups}, op);
  const Pair& s = a.stride;
  const Pair& dil = a.dilation;
  const Pair& op_ = a.output_padding;
  CL_CHECK(op_[0] >= 0 && op_[1] >= 0,
           op << ": output_padding must be >= 0, got [" << op_[0] << "," << op_[1] << "]");
  for (int ax = 0; ax < 2; ++ax) {
    // PyTorch's rule. With op >= s the extra rows would be a whole extra input row's worth, i.e. another
    // input size; with op < d they still fall inside the last (dilated) kernel footprint.
    CL_CHECK(op_[ax] < s[ax] || op_[ax] < dil[ax],
             op << ": output padding must be smaller than either stride or dilation, got output_padding ["
                << op_[0] << "," << op_[1] << "] with stride [" << s[0] << "," << s[1] << "] and dilation ["
                << dil[0] << "," << dil[1] << "] (" << (ax == 0 ? "height" : "width") << ": " << op_[ax]
                << " >= stride " << s[ax] << " and >= dilation " << dil[ax] << ")");
  }
  CL_CHECK(x.size() == 4, op << ": input must be 4-D [N, C_in, H, W], got input " << shape_str(x));
  CL_CHECK(w.size() == 4,
           op << ": weight must be 4-D [C_in, C_out/groups, kH, kW], got weight " << shape_str(w));
  for (int64_t v : x) CL_CHECK(v >= 1, op << ": input " << shape_str(x) << " has an empty dimension");
  for (int64_t v : w) CL_CHECK(v >= 1, op << ": weight " << shape_str(w) << " has an empty dimension");
  numel_of(x), numel_of(w);  // each dimension within the element limit before any arithmetic on it
  const int64_t G = a.groups;
  CL_CHECK(w[0] == x[1], op << ": weight " << shape_str(w) << " expects input with " << w[0]
                            << " channels (weight dim 0 is C_in), got input " << shape_str(x));
  CL_CHECK(x[1] % G == 0, op << ": input channels " << x[1] << " not divisible by groups=" << G << " (input "
                             << shape_str(x) << ", weight " << shape_str(w) << ")");
  ConvDims d;
  d.N = x[0], d.C_out = x[1], d.H_out = x[2], d.W_out = x[3];
  d.C_in = w[1] * G, d.kH = w[2], d.kW = w[3], d.G = G;
  d.sH = s[0], d.sW = s[1], d.pH = a.padding[0], d.pW = a.padding[1], d.dH = dil[0], d.dW = dil[1];
  if (b) {
    CL_CHECK(b->size() == 1 && (*b)[0] == d.C_in, op << ": bias " << shape_str(*b) << " must be [" << d.C_in
                                                    << "] (C_out = weight dim 1 * groups) for weight "
                                                    << shape_str(w));
  }
  int64_t out[2];
  for (int ax = 0; ax < 2; ++ax) {
    const int64_t in = x[2 + ax], k = w[2 + ax], p = a.padding[ax];
    out[ax] = (in - 1) * s[ax] - 2 * p + dil[ax] * (k - 1) + op_[ax] + 1;
    CL_CHECK(out[ax] >= 1, op << ": output " << (ax == 0 ? "height" : "width") << " would be "
                              << "(in-1)*stride - 2*padding + dilation*(k-1) + output_padding + 1 = (" << in
                              << "-1)*" << s[ax] << " - 2*" << p << " + " << dil[ax] << "*(" << k << "-1) + "
                              << op_[ax] << " + 1 = " << out[ax] << ", must be >= 1 (input " << shape_str(x)
                              << ", weight " << shape_str(w) << ")");
  }
  d.H = out[0], d.W = out[1];
  check_conv_sizes(d, op);
  return d;
}

// ---- forward: y[n,g] = col2im(W_g^T x[n,g]) + b ----
void conv_transpose2d_forward(const float* x, const float* w, const float* b, const ConvDims& d, float* y) {
  const int64_t Cig = d.cout_g(), Cog = d.cin_g(), K = d.k_rows(), P = d.hw_out(), Q = d.H * d.W;
  // In training the batch is cut at its shards (core/shards.h): no GEMM spans two, so the GEMM shapes and their
  // bits do not depend on how many processes share the batch.
  const int64_t shards = batch_shards().total > 1 ? local_shards(d.N, "conv_transpose2d") : 0;
  if (pointwise_input(d)) {
    // Y_g [N, K] (row stride C_out*kH*kW) = X_g [N, C_in/G] (row stride C_in) x W_g [C_in/G, K], per shard
    const int64_t parts = std::max<int64_t>(shards, 1), per = d.N / parts;
    for (int64_t k = 0; k < parts; ++k)
      for (int64_t g = 0; g < d.G; ++g)
        sgemm_parallel(false, false, per, K, Cig, 1.f, x + k * per * d.C_out + g * Cig, d.C_out, w + g * Cig * K, K,
                       0.f, y + k * per * d.G * K + g * K, d.G * K);
    if (b) {
#pragma omp parallel for schedule(static) if (d.N > 1)
      for (int64_t n = 0; n < d.N; ++n) add_bias(b, d.C_in, Q, y + n * d.C_in * Q);
    }
    return;
  }
  const Batching bt(d, shards);
  const int64_t jobs = bt.blocks() * d.G;
  const bool whole = split_gemm_inside(jobs);  // core/conv.h
#pragma omp parallel for schedule(static) if (jobs > 1)
  for (int64_t j = 0; j < jobs; ++j) {
    const int64_t n0 = bt.bound[j / d.G], nb = bt.bound[j / d.G + 1] - n0, g = j % d.G, ld = nb * P;
    const float* wg = w + g * Cig * K;                    // [C_in/G, K]
    const float* xg = x + (n0 * d.C_out + g * Cig) * P;  // [C_in/G, P] (first image of the block)
    float* yg = y + (n0 * d.C_in + g * Cog) * Q;          // [C_out/G, H_out, W_out] (first image)
    if (bt.layout == Layout::kDirect) {  // y[n,g] = W_g^T x[n,g]
      job_gemm(whole, true, false, K, P, Cig, wg, K, xg, P, 0.f, yg, P);
    } else if (bt.layout == Layout::kPerImage) {  // cols [K, P] = W_g^T x[n,g]
      float* cols = workspace(0, K * P);
      job_gemm(whole, true, false, K, P, Cig, wg, K, xg, P, 0.f, cols, P);
      std::memset(yg, 0, sizeof(float) * Cog * Q);
      col2im(cols, d, yg);
    } else {  // colsT [nb*P, K] = Xb^T W_g, Xb [C_in/G, nb*P] = the block's images side by side
      float* colsT = workspace(0, ld * K);
      job_gemm(whole, true, false, ld, K, Cig, gather_images(x, d, n0, nb, g, workspace(1, Cig * ld)), ld, wg,
               K, 0.f, colsT, K);
      for (int64_t i = 0; i < nb; ++i) {
        float* yi = y + ((n0 + i) * d.C_in + g * Cog) * Q;
        std::memset(yi, 0, sizeof(float) * Cog * Q);
        col2im_pixel_major(colsT + i * P * K, d, yi);
      }
    }
    if (b)
      for (int64_t i = 0; i < nb; ++i) add_bias(b + g * Cog, Cog, Q, y + ((n0 + i) * d.C_in + g * Cog) * Q);
  }
}

// ---- backward ----
void conv_transpose2d_backward(const float* x, const float* w, const float* dy, const ConvDims& d, float* dx,
                               float* dw, float* db) {
  // In training the batch sums (dW, db) are per batch shard, folded in shard order (core/shards.h).
  const bool sharded = batch_shards().total > 1;
  const int64_t shards = sharded ? local_shards(d.N, "conv_transpose2d") : 0;
  const int64_t Cig = d.cout_g(), Cog = d.cin_g(), K = d.k_rows(), P = d.hw_out(), Q = d.H * d.W;
  if (!dx && !dw && !db) return;
  if (pointwise_input(d)) {
    if (db) bias_backward(dy, d.N, d.C_in, Q, db);
    for (int64_t g = 0; g < d.G; ++g) {
      const float* dyg = dy + g * K;  // dY_g [N, K], row stride C_out*kH*kW
      // dX_g [N, C_in/G] += dY_g W_g^T;  dW_g [C_in/G, K] += X_g^T dY_g
      if (dx) {
        // A long reduction (K) with short sides (N x C_in/G): sgemm_parallel would cut the short side
        // unevenly, so K is cut into fixed parts instead (shape-only), whose products are summed in order.
        // In training, one such product per batch shard (rows n0..n0+rows-1).
        const int64_t nsh = std::max<int64_t>(shards, 1), rows = d.N / nsh;
        const int64_t parts = 2.0 * rows * Cig * K > 4e6 ? 2 : 1, xs = rows * Cig;
        float* part = shared_workspace(1, parts * xs);
        for (int64_t sh = 0; sh < nsh; ++sh) {
          const int64_t n0 = sh * rows;
#pragma omp parallel for schedule(static) if (parts > 1)
          for (int64_t t = 0; t < parts; ++t) {
            const int64_t k0 = K * t / parts, k1 = K * (t + 1) / parts;
            sgemm(false, true, rows, Cig, k1 - k0, 1.f, dyg + n0 * d.G * K + k0, d.G * K, w + g * Cig * K + k0, K, 0.f,
                  part + t * xs, Cig);
          }
          for (int64_t n = 0; n < rows; ++n)
            for (int64_t c = 0; c < Cig; ++c) {
              float s = 0.f;
              for (int64_t t = 0; t < parts; ++t) s += part[t * xs + n * Cig + c];
              dx[(n0 + n) * d.C_out + g * Cig + c] += s;
            }
        }
      }
      if (dw && sharded) {  // per shard dW_g (beta 0), folded in shard order, then added
        const int64_t per = d.N / shards, ws = Cig * K;
        float* part = shared_workspace(0, shards * ws);
        float* folded = shared_workspace(2, ws);
        for (int64_t k = 0; k < shards; ++k)
          sgemm_parallel(true, false, Cig, K, per, 1.f, x + k * per * d.C_out + g * Cig, d.C_out,
                         dyg + k * per * d.G * K, d.G * K, 0.f, part + k * ws, K);
        fold_shards(part, ws, folded);
        for (int64_t i = 0; i < ws; ++i) dw[g * Cig * K + i] += folded[i];
      } else if (dw) {
        sgemm_parallel(true, false, Cig, K, d.N, 1.f, x + g * Cig, d.C_out, dyg, d.G * K, 1.f, dw + g * Cig * K,
                       K);
      }
    }
    return;
  }
  // Jobs are (chunk, group); a chunk walks its blocks in order, summing its own partial dW.
  const Batching bt(d, shards);
  const int64_t wsize = d.C_out * K;
  float* partial = dw ? shared_workspace(0, bt.chunks * wsize) : nullptr;
  // db is summed in the same jobs (one parallel region instead of two, and C_out = 1 still splits):
  // per chunk in double, chunks added in order.
  double* partial_db = db ? reinterpret_cast<double*>(shared_workspace(1, 2 * bt.chunks * d.C_in)) : nullptr;
  const int64_t jobs = bt.chunks * d.G;
  const bool whole = split_gemm_inside(jobs);  // core/conv.h
#pragma omp parallel for schedule(static) if (jobs > 1)
  for (int64_t j = 0; j < jobs; ++j) {
    const int64_t c = j / d.G, g = j % d.G;
    const float* wg = w + g * Cig * K;  // [C_in/G, K]
    if (db) {
      double* pdb = partial_db + c * d.C_in + g * Cog;
      std::fill(pdb, pdb + Cog, 0.0);
      for (int64_t n = bt.bound[bt.first_block[c]]; n < bt.bound[bt.first_block[c + 1]]; ++n)
        for (int64_t co = 0; co < Cog; ++co) {
          const float* p = dy + (n * d.C_in + g * Cog + co) * Q;
          float s = 0.f;
          for (int64_t i = 0; i < Q; ++i) s += p[i];
          pdb[co] += s;
        }
    }
    for (int64_t blk = bt.first_block[c]; blk < bt.first_block[c + 1] && (dx || dw); ++blk) {
      const int64_t n0 = bt.bound[blk], nb = bt.bound[blk + 1] - n0, ld = nb * P;
      // cols [K, P] (direct: dy[n,g] itself; per image: im2col of it) or colsT [nb*P, K] (batched)
      const float* cols = dy + (n0 * d.C_in + g * Cog) * Q;
      if (bt.layout == Layout::kPerImage) {
        float* buf = workspace(0, K * P);
        im2col(cols, d, buf);
        cols = buf;
      } else if (bt.layout == Layout::kBatched) {
        float* buf = workspace(0, ld * K);
        for (int64_t i = 0; i < nb; ++i) im2col_pixel_major(dy + ((n0 + i) * d.C_in + g * Cog) * Q, d, buf + i * P * K);
        cols = buf;
      }
      const bool tc = bt.layout == Layout::kBatched;  // cols stored transposed
      const int64_t ldc = tc ? K : P;
      if (dx) {  // dXb [C_in/G, nb*P] = W_g cols, added to each image's dx[n,g]
        if (nb == 1) {
          job_gemm(whole, false, tc, Cig, P, K, wg, K, cols, ldc, 1.f, dx + (n0 * d.C_out + g * Cig) * P, P);
        } else {
          float* dxb = workspace(2, Cig * ld);
          job_gemm(whole, false, tc, Cig, ld, K, wg, K, cols, ldc, 0.f, dxb, ld);
          scatter_images(dxb, d, n0, nb, g, dx);
        }
      }
      if (dw)  // partial dW_g [C_in/G, K] += Xb cols^T
        job_gemm(whole, false, !tc, Cig, K, ld, gather_images(x, d, n0, nb, g, workspace(1, Cig * ld)), ld,
                 cols, ldc, blk == bt.first_block[c] ? 0.f : 1.f, partial + c * wsize + g * Cig * K, K);
    }
  }
  if (sharded) {
    if (db) {
      std::vector<double> folded(static_cast<size_t>(d.C_in));
      fold_shards(partial_db, d.C_in, folded.data());
      for (int64_t co = 0; co < d.C_in; ++co) db[co] += static_cast<float>(folded[size_t(co)]);
    }
    if (dw) {
      float* folded = shared_workspace(2, wsize);
      fold_shards(partial, wsize, folded);
      for (int64_t i = 0; i < wsize; ++i) dw[i] += folded[i];
    }
    return;
  }
  if (db)
    for (int64_t co = 0; co < d.C_in; ++co) {
      double s = 0.0;
      for (int64_t c = 0; c < bt.chunks; ++c) s += partial_db[c * d.C_in + co];
      db[co] += static_cast<float>(s);
    }
  if (dw) {
#pragma omp parallel for schedule(static) if (wsize > 16384)
    for (int64_t i = 0; i < wsize; ++i) {
      float s = 0.f;
      for (int64_t c = 0; c < bt.chunks; ++c) s += partial[c * wsize + i];
      dw[i] += s;
    }
  }
}

Tensor conv_transpose2d(const Tensor& x, const Tensor& w, const Tensor& b, const ConvTranspose2dArgs& a) {
  const ConvDims d = conv_transpose2d_dims(x.shape(), w.shape(), b.defined() ? &b.shape() : nullptr, a);
  Tensor y = Tensor::empty({d.N, d.C_in, d.H, d.W});  // [N, C_out, H_out, W_out]
  conv_transpose2d_forward(x.data(), w.data(), b.defined() ? b.data() : nullptr, d, y.data());
  record(y, "conv_transpose2d", {x, w, b}, [x, w, b, d](const Tensor& g) {
    conv_transpose2d_backward(x.data(), w.data(), g.data(), d, x.requires_grad() ? grad_buffer(x) : nullptr,
                              w.requires_grad() ? grad_buffer(w) : nullptr,
                              b.defined() && b.requires_grad() ? grad_buffer(b) : nullptr);
  });
  return y;
}

}  // namespace convlab

// core/deform_conv2d.cpp: deform_conv2d v1/v2 forward and backward (deformable im2col + GEMM), the shape
// checks and the autograd op. The sampling kernels and the layouts they use are in core/deform_sampling.cpp.
//
// Per image, in tiles of kTile output pixels (so a tile's buffers stay in L2, whatever the image size):
//  Forward:  table of the tile; colsT [P, C_in*T] = mask * bilinear samples; per group g
//            y[n,g][:, tile] = W'_g [C_out/G, K] x colsT_g^T, with W' the weight permuted to (tap, channel)
//            columns, the order of colsT; then + b.
//  Backward: dcolsT_g = dy[n,g][:, tile]^T W'_g; the gather pass recomputes colsT (for dW) and the sums S_k
//            (for doffset / dmask, see deform_sampling.cpp); the scatter pass adds dcols through the bilinear
//            weights into the padded dx (deformable col2im); dW'_g += dy[n,g][:, tile] colsT_g; the offset and
//            mask gradients of the tile from S. db[c] += sum of dy[n,c].
// Threading (bit-identical for any thread count; the mode depends on the shape only):
//  - N >= 2: whole images per thread. The forward splits images; the backward splits min(N, 8) fixed batch
//    chunks, each owning its images' dx / doffset / dmask (a race-free scatter) and one dW' partial; the
//    partials are summed in chunk order at the end.
//  - N == 1: the phases of the image are split instead: padded rows, table rows, sub-tiles of pixels for the
//    gathers, channel blocks for the scatter (each channel of dx has one owner), sgemm_parallel for the GEMMs.
// Batch shards (core/shards.h, training): every image is computed as in one process (no GEMM split over
// threads, see split_gemms); dW' gets one partial per image, the images of each shard are added in order and
// the shards folded in shard order; db by bias_backward. dx, doffset and dmask are per image: no fold.

#include <algorithm>
#include <climits>
#include <vector>

#include "core/deform_conv2d.h"
#include "core/error.h"
#include "core/shards.h"
#include "core/gemm.h"
#include "core/workspace.h"

namespace convlab {
namespace {

constexpr int64_t kWeightGradChunks = 8;  // fixed: independent of the thread count
constexpr int64_t kTile = 256;            // output pixels per tile: a tile's buffers stay in L2
constexpr int64_t kSubTile = 16;          // tile pixels per job when one image is split over threads
constexpr int64_t kChannelBlock = 8;      // channels per scatter job when one image is split

// Workspace slots (per thread): the buffers of one image / tile.
enum Slot { kCols = 0, kDcols = 1, kPadded = 2, kTable = 3, kSums = 4, kDxPadded = 5 };

bool split_images(const DeformDims& d) { return d.c.N >= 2; }

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

// With one image (N == 1) its GEMMs are the op's only jobs and are split over the threads (sgemm_parallel),
// except in training with batch shards (split_gemm_inside, core/conv.h): a rank holding one image must compute
// the bits of a process holding several.
bool split_gemms(const DeformDims& d) { return !split_images(d) && split_gemm_inside(1); }

// W [C_out, Cg, T] -> W' [C_out, T, Cg], the (tap, channel) column order of colsT. Shared scratch.
const float* permute_weight(const float* w, const DeformDims& d) {
  const int64_t T = d.taps(), Cg = d.c.cin_g(), K = Cg * T;
  float* wp = shared_workspace(1, d.c.C_out * K);
  for (int64_t co = 0; co < d.c.C_out; ++co)
    for (int64_t cl = 0; cl < Cg; ++cl)
      for (int64_t t = 0; t < T; ++t) wp[co * K + t * Cg + cl] = w[co * K + cl * T + t];
  return wp;
}

// Channels-last zero-bordered copy of image n.
float* pad_image(const float* x, const DeformDims& d, int64_t n, bool inner) {
  float* xpT = workspace(kPadded, d.c.C_in * d.plane());
  const float* xn = x + n * d.c.C_in * d.c.H * d.c.W;
#pragma omp parallel for schedule(static) if (inner)
  for (int64_t y = 0; y < d.Hp(); ++y) deform_pad_channels_last(xn, d, y, y + 1, xpT);
  return xpT;
}

// The bilinear table of output pixels [p0, p1) of image n.
DeformTable tile_table(const float* offset, const float* mask, const DeformDims& d, int64_t n, int64_t p0,
                       int64_t p1, bool inner) {
  const int64_t HWo = d.c.hw_out(), R = d.table_rows();
  const DeformTable tab = deform_table_view(workspace(kTable, deform_table_floats(d, kTile)), d, p1 - p0);
  const float* on = offset + n * 2 * R * HWo;
  const float* mn = mask ? mask + n * R * HWo : nullptr;
#pragma omp parallel for schedule(static) if (inner)
  for (int64_t r = 0; r < R; ++r) deform_build_table(on, mn, d, r, r + 1, p0, p1, tab);
  return tab;
}

// Gathers tile pixels [0, P): split in sub-tiles over threads when `inner`.
void tile_gather(const float* xpT, const DeformTable& tab, const DeformDims& d, int64_t P, bool inner, float* colsT,
                 const float* dcolsT, float* const* S) {
  const int64_t jobs = inner ? ceil_div(P, kSubTile) : 1;
#pragma omp parallel for schedule(static) if (inner)
  for (int64_t j = 0; j < jobs; ++j)
    deform_gather(xpT, tab, d, inner ? j * kSubTile : 0, inner ? std::min(P, (j + 1) * kSubTile) : P, colsT, dcolsT,
                  S);
}

}  // namespace

DeformDims deform_conv2d_dims(const Shape& x, const Shape& w, const Shape* off, const Shape* mask, const Shape* b,
                              const DeformConv2dArgs& a) {
  const char* op = "deform_conv2d";
  CL_CHECK(off, op << ": offset is required (a mask without an offset is not deformable convolution)");
  CL_CHECK(x.size() == 4, op << ": input must be 4-D [N, C_in, H, W], got input " << shape_str(x));
  CL_CHECK(w.size() == 4, op << ": weight must be 4-D [C_out, C_in/groups, kH, kW], got weight " << shape_str(w));
  for (int64_t v : x) CL_CHECK(v >= 1, op << ": input " << shape_str(x) << " has an empty dimension");
  for (int64_t v : w) CL_CHECK(v >= 1, op << ": weight " << shape_str(w) << " has an empty dimension");
  CL_CHECK(x[1] % w[1] == 0, op << ": weight " << shape_str(w) << " needs input channels divisible by " << w[1]
                                << ", got input " << shape_str(x));
  const int64_t G = x[1] / w[1];
  if (a.groups)
    CL_CHECK(*a.groups == G, op << ": groups=" << *a.groups << " disagrees with input " << shape_str(x)
                                << " and weight " << shape_str(w) << " (which imply groups=" << G << ")");
  Conv2dArgs ca{a.stride, a.padding, a.dilation, G};
  DeformDims d;
  d.c = conv2d_dims(x, w, b, ca, op);  // stride/padding/dilation, C_out % G, bias, kernel vs padded input
  const int64_t T = d.taps();
  CL_CHECK(off->size() == 4, op << ": offset must be 4-D [N, 2*offset_groups*kH*kW, H_out, W_out], got offset "
                                << shape_str(*off));
  const Shape& o = *off;
  CL_CHECK(o[0] == d.c.N, op << ": offset " << shape_str(o) << " must have the batch size of input " << shape_str(x));
  CL_CHECK(o[1] >= 2 * T && o[1] % (2 * T) == 0,
           op << ": offset " << shape_str(o) << " must have a positive multiple of 2*kH*kW = " << 2 * T
              << " channels (weight " << shape_str(w) << ")");
  d.OG = o[1] / (2 * T);
  if (a.offset_groups)
    CL_CHECK(*a.offset_groups == d.OG, op << ": offset_groups=" << *a.offset_groups << " disagrees with offset "
                                          << shape_str(o) << " (which implies offset_groups=" << d.OG << ")");
  CL_CHECK(d.c.C_in % d.OG == 0, op << ": offset_groups=" << d.OG << " (offset " << shape_str(o)
                                    << ") does not divide the input channels of input " << shape_str(x));
  CL_CHECK(o[2] == d.c.H_out && o[3] == d.c.W_out,
           op << ": offset " << shape_str(o) << " must have the output size " << d.c.H_out << "x" << d.c.W_out
              << " (input " << shape_str(x) << ", weight " << shape_str(w) << ")");
  if (mask) {
    const Shape want = {d.c.N, d.OG * T, d.c.H_out, d.c.W_out};
    CL_CHECK(*mask == want, op << ": mask " << shape_str(*mask) << " must be " << shape_str(want)
                               << " (offset_groups*kH*kW channels, output size; offset " << shape_str(o) << ")");
    d.mask = true;
  }
  CL_CHECK(d.plane() < INT32_MAX,
           op << ": input " << shape_str(x) << " is too large for 32-bit sample indices");
  return d;
}

void deform_conv2d_forward(const float* x, const float* offset, const float* mask, const float* w, const float* b,
                           const DeformDims& d, float* y) {
  const int64_t T = d.taps(), HWo = d.c.hw_out(), Cg = d.c.cin_g(), Mg = d.c.cout_g(), K = Cg * T;
  const int64_t KT = d.c.C_in * T;
  const float* wp = permute_weight(w, d);
  const bool gemm_inside = split_gemms(d);
  auto image = [&](int64_t n, bool inner) {
    const float* xpT = pad_image(x, d, n, inner);
    float* colsT = workspace(kCols, kTile * KT);  // [P, C_in*T]
    for (int64_t p0 = 0; p0 < HWo; p0 += kTile) {
      const int64_t P = std::min(kTile, HWo - p0);
      const DeformTable tab = tile_table(offset, mask, d, n, p0, p0 + P, inner);
      tile_gather(xpT, tab, d, P, inner, colsT, nullptr, nullptr);
      for (int64_t g = 0; g < d.c.G; ++g)  // y_g[:, tile] [Mg, P] = W'_g [Mg, K] x colsT_g^T
        job_gemm(gemm_inside, false, true, Mg, P, K, wp + g * Mg * K, K, colsT + g * K, KT, 0.f,
             y + (n * d.c.C_out + g * Mg) * HWo + p0, HWo);
    }
    if (b) {
      for (int64_t co = 0; co < d.c.C_out; ++co) {
        float* row = y + (n * d.c.C_out + co) * HWo;
        for (int64_t i = 0; i < HWo; ++i) row[i] += b[co];
      }
    }
  };
  if (split_images(d)) {
#pragma omp parallel for schedule(static)
    for (int64_t n = 0; n < d.c.N; ++n) image(n, false);
  } else {
    for (int64_t n = 0; n < d.c.N; ++n) image(n, true);
  }
}

void deform_conv2d_backward(const float* x, const float* offset, const float* mask, const float* w, const float* dy,
                            const DeformDims& d, float* dx, float* doffset, float* dmask, float* dw, float* db) {
  const int64_t T = d.taps(), HWo = d.c.hw_out(), Cg = d.c.cin_g(), Mg = d.c.cout_g(), K = Cg * T;
  const int64_t R = d.table_rows(), KT = d.c.C_in * T, CHW = d.c.C_in * d.c.H * d.c.W;
  if (!mask) dmask = nullptr;
  if (db) bias_backward(dy, d.c.N, d.c.C_out, HWo, db);
  const bool need_sums = doffset || dmask, need_dcols = dx || need_sums;
  if (!need_dcols && !dw) return;

  const bool outer = split_images(d), gemm_inside = split_gemms(d);
  // dW' partials: min(N, 8) fixed batch chunks; in training with batch shards one per image, summed per shard
  // below (a chunk never spans two shards, and its bits do not depend on how many images a rank holds).
  const bool sharded = batch_shards().total > 1;
  const int64_t shards = sharded ? local_shards(d.c.N, "deform_conv2d") : 1;
  const int64_t chunks = sharded ? d.c.N : outer ? std::min(d.c.N, kWeightGradChunks) : 1;
  const int64_t wsize = d.c.C_out * K;
  const float* wp = permute_weight(w, d);
  float* partial = dw ? shared_workspace(0, chunks * wsize) : nullptr;  // dW' [C_out, T, Cg] per chunk

  // One image, tile by tile; `first` starts its chunk's dW' partial (beta = 0).
  auto image = [&](int64_t n, bool inner, float* pw, bool first) {
    const float* xpT = pad_image(x, d, n, inner);
    float* colsT = dw ? workspace(kCols, kTile * KT) : nullptr;
    float* dcolsT = need_dcols ? workspace(kDcols, kTile * KT) : nullptr;
    float* dxT = dx ? workspace(kDxPadded, d.c.C_in * d.plane()) : nullptr;
    float* sums = need_sums ? workspace(kSums, 4 * R * kTile) : nullptr;
    if (dxT) std::fill(dxT, dxT + d.c.C_in * d.plane(), 0.f);
    const float* dyn = dy + n * d.c.C_out * HWo;
    for (int64_t p0 = 0; p0 < HWo; p0 += kTile) {
      const int64_t P = std::min(kTile, HWo - p0);
      const DeformTable tab = tile_table(offset, mask, d, n, p0, p0 + P, inner);
      float* S[4] = {nullptr, nullptr, nullptr, nullptr};  // [R, P] each
      if (sums)
        for (int k = 0; k < 4; ++k) S[k] = sums + k * R * P;
      if (dcolsT) {  // dcolsT_g [P, K] = dy_g[:, tile]^T [P, Mg] x W'_g [Mg, K]
        for (int64_t g = 0; g < d.c.G; ++g)
          job_gemm(gemm_inside, true, false, P, K, Mg, dyn + g * Mg * HWo + p0, HWo, wp + g * Mg * K, K, 0.f,
                   dcolsT + g * K, KT);
      }
      if (colsT || sums) tile_gather(xpT, tab, d, P, inner, colsT, dcolsT, sums ? S : nullptr);
      if (dxT) {  // the scatter; split by channel blocks (each owns its channels of dxT) when `inner`
        const int64_t jobs = inner ? ceil_div(d.c.C_in, kChannelBlock) : 1;
#pragma omp parallel for schedule(static) if (inner)
        for (int64_t j = 0; j < jobs; ++j)
          deform_scatter(tab, d, P, inner ? j * kChannelBlock : 0,
                         inner ? std::min(d.c.C_in, (j + 1) * kChannelBlock) : d.c.C_in, dcolsT, dxT);
      }
      if (colsT) {  // dW'_g += dy_g[:, tile] [Mg, P] x colsT_g [P, K]
        for (int64_t g = 0; g < d.c.G; ++g)
          job_gemm(gemm_inside, false, false, Mg, K, P, dyn + g * Mg * HWo + p0, HWo, colsT + g * K, KT,
                   first && p0 == 0 ? 0.f : 1.f, pw + g * Mg * K, K);
      }
      if (sums) {
        float* don = doffset ? doffset + n * 2 * R * HWo : nullptr;
        float* dmn = dmask ? dmask + n * R * HWo : nullptr;
        const float* on = offset + n * 2 * R * HWo;
        const float* mn = mask ? mask + n * R * HWo : nullptr;
#pragma omp parallel for schedule(static) if (inner)
        for (int64_t r = 0; r < R; ++r) deform_coord_grads(on, mn, S, P, d, r, r + 1, p0, p0 + P, don, dmn);
      }
    }
    if (dxT) {
#pragma omp parallel for schedule(static) if (inner)
      for (int64_t yy = 0; yy < d.c.H; ++yy) deform_add_channels_last(dxT, d, yy, yy + 1, dx + n * CHW);
    }
  };

  if (outer) {
#pragma omp parallel for schedule(static)
    for (int64_t j = 0; j < chunks; ++j) {
      const int64_t n0 = d.c.N * j / chunks, n1 = d.c.N * (j + 1) / chunks;
      for (int64_t n = n0; n < n1; ++n) image(n, false, partial ? partial + j * wsize : nullptr, n == n0);
    }
  } else {
    for (int64_t n = 0; n < d.c.N; ++n) image(n, true, partial, n == 0);
  }
  if (dw) {  // dw [C_out, Cg, T] += sum over chunks (in order) of dW' [C_out, T, Cg]
    std::vector<float> folded;  // sharded: dW' [C_out, T, Cg] of the global batch
    if (sharded) {  // each shard's images in order -> [shards, C_out, T, Cg], folded in shard order (core/shards.h)
      const int64_t per = d.c.N / shards;
      std::vector<float> part(static_cast<size_t>(shards * wsize));
#pragma omp parallel for schedule(static) if (shards * wsize > 16384)
      for (int64_t i = 0; i < wsize; ++i)
        for (int64_t k = 0; k < shards; ++k) {
          float s = 0.f;
          for (int64_t n = k * per; n < (k + 1) * per; ++n) s += partial[n * wsize + i];
          part[size_t(k * wsize + i)] = s;
        }
      folded.resize(static_cast<size_t>(wsize));
      fold_shards(part.data(), wsize, folded.data());
    }
#pragma omp parallel for schedule(static) if (wsize > 16384)
    for (int64_t co = 0; co < d.c.C_out; ++co)
      for (int64_t cl = 0; cl < Cg; ++cl)
        for (int64_t t = 0; t < T; ++t) {
          float s = 0.f;
          if (sharded) s = folded[size_t(co * K + t * Cg + cl)];
          else
            for (int64_t j = 0; j < chunks; ++j) s += partial[j * wsize + co * K + t * Cg + cl];
          dw[co * K + cl * T + t] += s;
        }
  }
}

Tensor deform_conv2d(const Tensor& x, const Tensor& offset, const Tensor& w, const Tensor& b, const Tensor& mask,
                     const DeformConv2dArgs& a) {
  CL_CHECK(x.defined() && w.defined(), "deform_conv2d: input and weight are required");
  const DeformDims d = deform_conv2d_dims(x.shape(), w.shape(), offset.defined() ? &offset.shape() : nullptr,
                                          mask.defined() ? &mask.shape() : nullptr,
                                          b.defined() ? &b.shape() : nullptr, a);
  Tensor y = Tensor::empty({d.c.N, d.c.C_out, d.c.H_out, d.c.W_out});  // [N, C_out, H_out, W_out]
  const float* mp = mask.defined() ? mask.data() : nullptr;
  deform_conv2d_forward(x.data(), offset.data(), mp, w.data(), b.defined() ? b.data() : nullptr, d, y.data());
  record(y, "deform_conv2d", {x, offset, w, b, mask}, [x, offset, w, b, mask, d](const Tensor& g) {
    auto grad = [](const Tensor& t) { return t.defined() && t.requires_grad() ? grad_buffer(t) : nullptr; };
    deform_conv2d_backward(x.data(), offset.data(), mask.defined() ? mask.data() : nullptr, w.data(), g.data(), d,
                           grad(x), grad(offset), grad(mask), grad(w), grad(b));
  });
  return y;
}

}  // namespace convlab

// core/shape_ops.cpp: reshape (a view), permute, concat, slice, matmul and linear.
#include <algorithm>
#include <vector>

#include "core/shards.h"
#include "core/error.h"
#include "core/gemm.h"
#include "core/ops.h"

namespace convlab {

Tensor reshape(const Tensor& a, Shape shape) {
  int64_t known = 1, infer = -1;
  for (size_t i = 0; i < shape.size(); ++i) {
    if (shape[i] == -1) {
      CL_CHECK(infer < 0, "reshape: more than one -1 in " << shape_str(shape));
      infer = static_cast<int64_t>(i);
    } else {
      CL_CHECK(shape[i] >= 0, "reshape: bad dimension in " << shape_str(shape));
      known *= shape[i];
    }
  }
  if (infer >= 0) {
    CL_CHECK(known > 0 && a.numel() % known == 0,
             "reshape: cannot view " << shape_str(a.shape()) << " as " << shape_str(shape));
    shape[infer] = a.numel() / known;
  }
  CL_CHECK(numel_of(shape) == a.numel(),
           "reshape: cannot view " << shape_str(a.shape()) << " as " << shape_str(shape));
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = a.impl()->storage;
  impl->offset = a.impl()->offset;
  impl->shape = shape;
  Tensor out(std::move(impl));
  if (any_requires_grad({&a}))  // the backward reads no values: the node keeps a's gradient slot only
    record(out, "reshape", {a}, [sa = GradSlot(a)](const Tensor& g) { accumulate_grad(sa, g); });
  return out;
}

Tensor flatten(const Tensor& a, int64_t start_dim) {
  CL_CHECK(start_dim >= 0 && start_dim < std::max<int64_t>(a.dim(), 1),
           "flatten: start_dim " << start_dim << " out of range for " << shape_str(a.shape()));
  Shape s(a.shape().begin(), a.shape().begin() + start_dim);
  s.push_back(-1);
  if (a.numel() == 0) s.back() = 0;
  return reshape(a, s);
}

namespace {
// out[perm-index] = in[index]: generic strided copy.
void permute_copy(const float* src, const Shape& in_shape, const std::vector<int64_t>& dims, float* dst) {
  const size_t r = in_shape.size();
  std::vector<int64_t> in_strides(r, 1);
  for (int64_t i = static_cast<int64_t>(r) - 2; i >= 0; --i) in_strides[i] = in_strides[i + 1] * in_shape[i + 1];
  Shape out_shape(r);
  std::vector<int64_t> st(r);
  for (size_t i = 0; i < r; ++i) {
    out_shape[i] = in_shape[dims[i]];
    st[i] = in_strides[dims[i]];
  }
  std::vector<int64_t> idx(r, 0);
  int64_t off = 0;
  for (int64_t i = 0, n = numel_of(in_shape); i < n; ++i) {
    dst[i] = src[off];
    for (int64_t d = static_cast<int64_t>(r) - 1; d >= 0; --d) {
      if (++idx[d] < out_shape[d]) {
        off += st[d];
        break;
      }
      off -= st[d] * (out_shape[d] - 1);
      idx[d] = 0;
    }
  }
}
}  // namespace

Tensor permute(const Tensor& a, const std::vector<int64_t>& dims) {
  const int64_t r = a.dim();
  CL_CHECK(static_cast<int64_t>(dims.size()) == r,
           "permute: " << dims.size() << " dims given for " << shape_str(a.shape()));
  std::vector<int64_t> inv(r, -1);
  for (int64_t i = 0; i < r; ++i) {
    CL_CHECK(dims[i] >= 0 && dims[i] < r && inv[dims[i]] < 0,
             "permute: dims are not a permutation of 0.." << r - 1);
    inv[dims[i]] = i;
  }
  Shape out_shape(r);
  for (int64_t i = 0; i < r; ++i) out_shape[i] = a.shape()[dims[i]];
  Tensor out = Tensor::empty(out_shape);
  permute_copy(a.data(), a.shape(), dims, out.data());
  if (any_requires_grad({&a}))
    record(out, "permute", {a}, [sa = GradSlot(a), inv, out_shape](const Tensor& g) {
      Tensor back = Tensor::empty(sa.shape());
      permute_copy(g.data(), out_shape, inv, back.data());
      accumulate_grad(sa, back);
    });
  return out;
}

Tensor concat(const std::vector<Tensor>& ts, int64_t dim) {
  CL_CHECK(!ts.empty(), "concat: no tensors");
  const int64_t r = ts[0].dim();
  if (dim < 0) dim += r;
  CL_CHECK(dim >= 0 && dim < r, "concat: dim out of range for " << shape_str(ts[0].shape()));
  Shape out_shape = ts[0].shape();
  out_shape[dim] = 0;
  for (const Tensor& t : ts) {
    const Shape& s = t.shape();
    CL_CHECK(t.dim() == r, "concat: tensors " << shape_str(ts[0].shape()) << " and " << shape_str(s)
                                              << " differ in rank");
    out_shape[dim] += s[dim];
    for (int64_t d = 0; d < r; ++d)
      CL_CHECK(d == dim || t.shape()[d] == ts[0].shape()[d],
               "concat: tensors " << shape_str(ts[0].shape()) << " and " << shape_str(t.shape())
                                  << " differ outside dim " << dim);
  }
  int64_t outer = 1, inner = 1;
  for (int64_t d = 0; d < dim; ++d) outer *= out_shape[d];
  for (int64_t d = dim + 1; d < r; ++d) inner *= out_shape[d];
  Tensor out = Tensor::empty(out_shape);
  int64_t at = 0;
  for (const Tensor& t : ts) {
    const int64_t len = t.shape()[dim] * inner;
    for (int64_t o = 0; o < outer; ++o)
      std::copy_n(t.data() + o * len, len, out.data() + o * out_shape[dim] * inner + at);
    at += len;
  }
  std::vector<GradSlot> slots;  // concat reads no input values in its backward
  if (grad_mode_enabled())
    for (const Tensor& t : ts) slots.emplace_back(t);
  record(out, "concat", std::vector<Tensor>(ts), [slots, outer, inner, out_shape, dim](const Tensor& g) {
    int64_t at = 0;
    for (const GradSlot& t : slots) {
      const int64_t len = t.shape()[dim] * inner;
      if (t.requires_grad()) {
        float* gt = grad_buffer(t);
        for (int64_t o = 0; o < outer; ++o) {
          const float* src = g.data() + o * out_shape[dim] * inner + at;
          for (int64_t i = 0; i < len; ++i) gt[o * len + i] += src[i];
        }
      }
      at += len;
    }
  });
  return out;
}

Tensor slice(const Tensor& a, int64_t dim, int64_t start, int64_t end) {
  const int64_t r = a.dim();
  if (dim < 0) dim += r;
  CL_CHECK(dim >= 0 && dim < r, "slice: dim out of range for " << shape_str(a.shape()));
  const int64_t n = a.shape()[dim];
  CL_CHECK(0 <= start && start <= end && end <= n,
           "slice: range [" << start << ", " << end << ") out of bounds for dim " << dim << " of "
                            << shape_str(a.shape()));
  int64_t outer = 1, inner = 1;
  for (int64_t d = 0; d < dim; ++d) outer *= a.shape()[d];
  for (int64_t d = dim + 1; d < r; ++d) inner *= a.shape()[d];
  Shape out_shape = a.shape();
  out_shape[dim] = end - start;
  Tensor out = Tensor::empty(out_shape);
  const int64_t len = (end - start) * inner;
  for (int64_t o = 0; o < outer; ++o)
    std::copy_n(a.data() + (o * n + start) * inner, len, out.data() + o * len);
  if (any_requires_grad({&a}))
    record(out, "slice", {a}, [sa = GradSlot(a), outer, inner, n, start, len](const Tensor& g) {
      float* ga = grad_buffer(sa);
      for (int64_t o = 0; o < outer; ++o)
        for (int64_t i = 0; i < len; ++i) ga[(o * n + start) * inner + i] += g.data()[o * len + i];
    });
  return out;
}

Tensor matmul(const Tensor& a, const Tensor& b) {
  if (grad_mode_enabled() && (a.requires_grad() || b.requires_grad())) require_single_process("matmul");
  CL_CHECK(a.dim() == 2 && b.dim() == 2 && a.size(1) == b.size(0),
           "matmul: cannot multiply " << shape_str(a.shape()) << " by " << shape_str(b.shape()));
  const int64_t M = a.size(0), K = a.size(1), N = b.size(1);
  Tensor out = Tensor::empty({M, N});
  sgemm_parallel(false, false, M, N, K, 1.f, a.data(), K, b.data(), N, 0.f, out.data(), N);
  record(out, "matmul", {a, b}, [a, b, M, N, K](const Tensor& g) {
    // dA[M,K] += dC[M,N] B^T ; dB[K,N] += A^T dC
    if (a.requires_grad()) sgemm_parallel(false, true, M, K, N, 1.f, g.data(), N, b.data(), N, 1.f, grad_buffer(a), K);
    if (b.requires_grad()) sgemm_parallel(true, false, K, N, M, 1.f, a.data(), K, g.data(), N, 1.f, grad_buffer(b), N);
  });
  return out;
}

Tensor linear(const Tensor& x, const Tensor& w, const Tensor& b) {
  CL_CHECK(x.dim() == 2 && w.dim() == 2 && x.size(1) == w.size(1),
           "linear: weight " << shape_str(w.shape()) << " expects input [N," << (w.dim() == 2 ? w.size(1) : -1)
                             << "], got input " << shape_str(x.shape()));
  const int64_t N = x.size(0), I = x.size(1), O = w.size(0);
  if (b.defined())
    CL_CHECK(b.dim() == 1 && b.size(0) == O,
             "linear: bias " << shape_str(b.shape()) << " does not match weight " << shape_str(w.shape()));
  // In training with batch shards (core/shards.h) every GEMM covers one shard's rows, and the weight and bias
  // gradients are one partial per shard folded in shard order: the bits do not depend on how many processes
  // share the batch. Outside training: one GEMM over the whole batch, as always.
  const int64_t shards = batch_shards().total > 1 ? local_shards(N, "linear") : 1, per = N / shards;
  Tensor out = Tensor::empty({N, O});
  // out[N,O] = x[N,I] w^T
  for (int64_t k = 0; k < shards; ++k)
    sgemm_parallel(false, true, per, O, I, 1.f, x.data() + k * per * I, I, w.data(), I, 0.f, out.data() + k * per * O, O);
  if (b.defined())
    for (int64_t n = 0; n < N; ++n)
      for (int64_t o = 0; o < O; ++o) out.data()[n * O + o] += b.data()[o];
  record(out, "linear", {x, w, b}, [x, w, b, N, I, O, shards, per](const Tensor& g) {
    if (x.requires_grad())
      for (int64_t k = 0; k < shards; ++k)
        sgemm_parallel(false, false, per, I, O, 1.f, g.data() + k * per * O, O, w.data(), I, 1.f,
                       grad_buffer(x) + k * per * I, I);
    const bool db = b.defined() && b.requires_grad();
    if (shards == 1 && batch_shards().total == 1) {
      if (w.requires_grad()) sgemm_parallel(true, false, O, I, N, 1.f, g.data(), O, x.data(), I, 1.f, grad_buffer(w), I);
      if (db) {
        float* gb = grad_buffer(b);
        for (int64_t n = 0; n < N; ++n)
          for (int64_t o = 0; o < O; ++o) gb[o] += g.data()[n * O + o];
      }
      return;
    }
    if (w.requires_grad()) {  // dW [O, I] per shard from zero, folded in shard order
      std::vector<float> part(static_cast<size_t>(shards * O * I)), sum(static_cast<size_t>(O * I));
      for (int64_t k = 0; k < shards; ++k)
        sgemm_parallel(true, false, O, I, per, 1.f, g.data() + k * per * O, O, x.data() + k * per * I, I, 0.f,
                       part.data() + k * O * I, I);
      fold_shards(part.data(), O * I, sum.data());
      float* gw = grad_buffer(w);
      for (int64_t i = 0; i < O * I; ++i) gw[i] += sum[size_t(i)];
    }
    if (db) {
      std::vector<float> part(static_cast<size_t>(shards * O), 0.f), sum(static_cast<size_t>(O));
      for (int64_t k = 0; k < shards; ++k)
        for (int64_t n = k * per; n < (k + 1) * per; ++n)
          for (int64_t o = 0; o < O; ++o) part[size_t(k * O + o)] += g.data()[n * O + o];
      fold_shards(part.data(), O, sum.data());
      float* gb = grad_buffer(b);
      for (int64_t o = 0; o < O; ++o) gb[o] += sum[size_t(o)];
    }
  });
  return out;
}

}  // namespace convlab

// core/reduce.cpp: sum and mean over all elements or over axes. Sums run in a fixed order (double
// accumulators for the full reductions) so results do not depend on the thread count.
#include <algorithm>

#include "core/shards.h"
#include "core/error.h"
#include "core/ops.h"

namespace convlab {
namespace {

std::vector<int64_t> normalise_axes(std::vector<int64_t> axes, int64_t rank, const char* op) {
  for (auto& a : axes) {
    CL_CHECK(a >= -rank && a < rank, op << ": axis " << a << " out of range for rank " << rank);
    if (a < 0) a += rank;
  }
  std::sort(axes.begin(), axes.end());
  CL_CHECK(std::adjacent_find(axes.begin(), axes.end()) == axes.end(), op << ": repeated axis");
  return axes;
}

// Broadcasts g (shape `kept`, with reduced axes of size 1) back to `full`, times `scale`.
Tensor expand_to(const Tensor& g, const Shape& full, float scale) {
  Tensor ones = Tensor::full(full, scale);
  return mul(ones, g);
}

}  // namespace

Tensor sum(const Tensor& a) {
  if (grad_mode_enabled() && a.requires_grad()) require_single_process("sum");
  double acc = 0.0;
  const float* p = a.data();
  for (int64_t i = 0, n = a.numel(); i < n; ++i) acc += p[i];
  Tensor out = Tensor::scalar(static_cast<float>(acc));
  if (any_requires_grad({&a}))
    record(out, "sum", {a}, [sa = GradSlot(a)](const Tensor& g) {
      const float gv = g.data()[0];
      float* ga = grad_buffer(sa);
      for (int64_t i = 0, n = sa.numel(); i < n; ++i) ga[i] += gv;
    });
  return out;
}

Tensor mean(const Tensor& a) {
  CL_CHECK(a.numel() > 0, "mean: empty tensor " << shape_str(a.shape()));
  return mul_scalar(sum(a), 1.f / static_cast<float>(a.numel()));
}

Tensor sum(const Tensor& a, std::vector<int64_t> axes, bool keepdim) {
  axes = normalise_axes(std::move(axes), a.dim(), "sum");
  Shape kept = a.shape();
  for (int64_t ax : axes) kept[ax] = 1;
  Tensor out = sum_to(a.detach(), kept);
  // Sum over no axes (or size-1 axes) hands back a view of a's storage: still a new tensor, never an alias.
  if (out.impl()->storage == a.impl()->storage) out = a.detach().clone();
  const Shape full = a.shape();
  if (any_requires_grad({&a}))
    record(out, "sum_axes", {a}, [sa = GradSlot(a), full](const Tensor& g) {
      accumulate_grad(sa, expand_to(g, full, 1.f));
    });
  if (keepdim) return out;
  Shape squeezed;
  for (int64_t d = 0; d < a.dim(); ++d)
    if (!std::binary_search(axes.begin(), axes.end(), d)) squeezed.push_back(a.shape()[d]);
  if (squeezed.empty()) squeezed.push_back(1);
  return reshape(out, squeezed);
}

Tensor mean(const Tensor& a, std::vector<int64_t> axes, bool keepdim) {
  axes = normalise_axes(std::move(axes), a.dim(), "mean");
  int64_t count = 1;
  for (int64_t ax : axes) count *= a.shape()[ax];
  CL_CHECK(count > 0, "mean: empty reduction over " << shape_str(a.shape()));
  return mul_scalar(sum(a, axes, keepdim), 1.f / static_cast<float>(count));
}

}  // namespace convlab

// core/elementwise.cpp: broadcasting binary ops and unary activations, forward and backward side by side.
#include <cmath>

#include "core/shards.h"
#include "core/error.h"
#include "core/ops.h"

namespace convlab {

Shape broadcast_shape(const Shape& a, const Shape& b, const char* op) {
  const size_t n = std::max(a.size(), b.size());
  Shape out(n);
  for (size_t i = 0; i < n; ++i) {
    const int64_t da = i < n - a.size() ? 1 : a[i - (n - a.size())];
    const int64_t db = i < n - b.size() ? 1 : b[i - (n - b.size())];
    CL_CHECK(da == db || da == 1 || db == 1,
             op << ": shapes " << shape_str(a) << " and " << shape_str(b) << " do not broadcast");
    out[i] = da == 1 ? db : da;
  }
  return out;
}

namespace {

// Strides of `s` seen from a broadcast result of rank `rank` (0 on broadcast dimensions).
std::vector<int64_t> bstrides(const Shape& s, const Shape& out) {
  std::vector<int64_t> st(out.size(), 0);
  int64_t stride = 1;
  for (int64_t i = static_cast<int64_t>(s.size()) - 1; i >= 0; --i) {
    const size_t o = i + (out.size() - s.size());
    st[o] = s[i] == 1 ? 0 : stride;
    stride *= s[i];
  }
  return st;
}

// Calls f(out_index, a_index, b_index) for every element of the broadcast result, in order.
template <class F>
void for_each_broadcast(const Shape& out, const Shape& sa, const Shape& sb, F&& f) {
  const int64_t n = numel_of(out);
  if (sa == out && sb == out) {
    for (int64_t i = 0; i < n; ++i) f(i, i, i);
    return;
  }
  const auto ta = bstrides(sa, out), tb = bstrides(sb, out);
  const size_t r = out.size();
  std::vector<int64_t> idx(r, 0);
  int64_t ia = 0, ib = 0;
  for (int64_t i = 0; i < n; ++i) {
    f(i, ia, ib);
    for (int64_t d = static_cast<int64_t>(r) - 1; d >= 0; --d) {
      if (++idx[d] < out[d]) {
        ia += ta[d];
        ib += tb[d];
        break;
      }
      ia -= ta[d] * (out[d] - 1);
      ib -= tb[d] * (out[d] - 1);
      idx[d] = 0;
    }
  }
}

template <class F>
Tensor binary_forward(const Tensor& a, const Tensor& b, const char* op, F&& f) {
  Tensor out = Tensor::empty(broadcast_shape(a.shape(), b.shape(), op));
  const float* pa = a.data();
  const float* pb = b.data();
  float* po = out.data();
  for_each_broadcast(out.shape(), a.shape(), b.shape(),
                     [&](int64_t i, int64_t ia, int64_t ib) { po[i] = f(pa[ia], pb[ib]); });
  return out;
}

constexpr int64_t kParallelElems = 1 << 16;  // below ~256 KB a parallel region costs more than it saves

// The functor is copied into a local and the pointers are __restrict: with `f` reached through a reference (as
// OpenMP's outlined body sees it) the compiler must assume a store to po[i] may change the captured slope. With
// that and -fno-trapping-math (CMakeLists.txt) selects such as leaky_relu's vectorise into blends; before, the loop
// ran scalar with an unpredictable branch per element (leaky_relu was ~12% of a DCGAN step).
template <class F>
Tensor unary_forward(const Tensor& a, const F& f) {
  Tensor out = Tensor::empty(a.shape());
  const float* __restrict pa = a.data();
  float* __restrict po = out.data();
  const int64_t n = a.numel();
  // Element-independent: splitting across threads cannot change a result. Small tensors stay serial.
#pragma omp parallel if (n >= kParallelElems)
  {
    const F fl = f;
#pragma omp for schedule(static)
    for (int64_t i = 0; i < n; ++i) po[i] = fl(pa[i]);
  }
  return out;
}

// Backward of a unary op whose local derivative is d(x, y) with x the input and y the output. An op whose
// derivative does not read x passes y's values as x too (and one that reads neither, g's), so its closure keeps
// only what the derivative reads: the loop and its values are the same whichever it keeps.
template <class D>
void unary_backward(const GradSlot& a, const float* x, const float* y, const Tensor& g, const D& d) {
  float* __restrict ga = grad_buffer(a);
  const float* __restrict pa = x;
  const float* __restrict py = y;
  const float* __restrict pg = g.data();
  const int64_t n = a.numel();
#pragma omp parallel if (n >= kParallelElems)
  {
    const D dl = d;  // a local copy, as in unary_forward, so the loop vectorises
#pragma omp for schedule(static)
    for (int64_t i = 0; i < n; ++i) ga[i] += pg[i] * dl(pa[i], py[i]);
  }
}

// What a unary op's backward reads besides the incoming gradient, and so what its graph node keeps alive.
enum class Reads { input, output, nothing };

template <class F, class D>
Tensor unary(const Tensor& a, const char* name, F&& f, D d, Reads reads) {
  Tensor out = unary_forward(a, f);
  if (!any_requires_grad({&a})) return out;
  const GradSlot slot(a);
  if (reads == Reads::input) {
    record(out, name, {a}, [slot, a, d](const Tensor& g) { unary_backward(slot, a.data(), a.data(), g, d); });
  } else if (reads == Reads::output) {
    const Tensor y = out.detach();
    record(out, name, {a}, [slot, y, d](const Tensor& g) { unary_backward(slot, y.data(), y.data(), g, d); });
  } else {
    record(out, name, {a}, [slot, d](const Tensor& g) { unary_backward(slot, g.data(), g.data(), g, d); });
  }
  return out;
}

}  // namespace

Tensor sum_to(const Tensor& g, const Shape& shape) {
  if (g.shape() == shape) return g;
  Tensor out = Tensor::zeros(shape);
  const float* pg = g.data();
  float* po = out.data();
  for_each_broadcast(g.shape(), g.shape(), shape, [&](int64_t i, int64_t, int64_t io) { po[io] += pg[i]; });
  return out;
}

Tensor add(const Tensor& a, const Tensor& b) {
  Tensor out = binary_forward(a, b, "add", [](float x, float y) { return x + y; });
  if (!any_requires_grad({&a, &b})) return out;
  const GradSlot sa(a), sb(b);  // add reads neither input's values
  record(out, "add", {a, b}, [sa, sb](const Tensor& g) {
    accumulate_grad(sa, sum_to(g, sa.shape()));
    accumulate_grad(sb, sum_to(g, sb.shape()));
  });
  return out;
}

Tensor sub(const Tensor& a, const Tensor& b) {
  Tensor out = binary_forward(a, b, "sub", [](float x, float y) { return x - y; });
  if (!any_requires_grad({&a, &b})) return out;
  const GradSlot sa(a), sb(b);
  record(out, "sub", {a, b}, [sa, sb](const Tensor& g) {
    accumulate_grad(sa, sum_to(g, sa.shape()));
    if (sb.requires_grad()) accumulate_grad(sb, sum_to(mul_scalar(g, -1.f), sb.shape()));
  });
  return out;
}

Tensor mul(const Tensor& a, const Tensor& b) {
  Tensor out = binary_forward(a, b, "mul", [](float x, float y) { return x * y; });
  if (!any_requires_grad({&a, &b})) return out;
  // Each input's values are kept only when the other one's gradient needs them.
  const GradSlot sa(a), sb(b);
  const Tensor ad = sb.requires_grad() ? a.detach() : Tensor(), bd = sa.requires_grad() ? b.detach() : Tensor();
  record(out, "mul", {a, b}, [sa, sb, ad, bd](const Tensor& g) {
    if (bd.defined()) accumulate_grad(sa, sum_to(mul(g, bd), sa.shape()));
    if (ad.defined()) accumulate_grad(sb, sum_to(mul(g, ad), sb.shape()));
  });
  return out;
}

Tensor div(const Tensor& a, const Tensor& b) {
  Tensor out = binary_forward(a, b, "div", [](float x, float y) { return x / y; });
  if (!any_requires_grad({&a, &b})) return out;
  const GradSlot sa(a), sb(b);
  const Tensor ad = sb.requires_grad() ? a.detach() : Tensor(), bd = b.detach();  // b's values: both need them
  record(out, "div", {a, b}, [sa, sb, ad, bd](const Tensor& g) {
    if (sa.requires_grad()) accumulate_grad(sa, sum_to(div(g, bd), sa.shape()));
    if (ad.defined() && sb.requires_grad())  // d(a/b)/db = -a/b^2
      accumulate_grad(sb, sum_to(neg(div(mul(g, ad), square(bd))), sb.shape()));
  });
  return out;
}

Tensor add_scalar(const Tensor& a, float s) {
  return unary(a, "add_scalar", [s](float x) { return x + s; }, [](float, float) { return 1.f; }, Reads::nothing);
}
Tensor mul_scalar(const Tensor& a, float s) {
  return unary(a, "mul_scalar", [s](float x) { return x * s; }, [s](float, float) { return s; }, Reads::nothing);
}
Tensor neg(const Tensor& a) { return mul_scalar(a, -1.f); }
Tensor exp(const Tensor& a) {
  return unary(a, "exp", [](float x) { return std::exp(x); }, [](float, float y) { return y; }, Reads::output);
}
Tensor log(const Tensor& a) {
  return unary(a, "log", [](float x) { return std::log(x); }, [](float x, float) { return 1.f / x; },
               Reads::input);
}
Tensor sqrt(const Tensor& a) {
  return unary(a, "sqrt", [](float x) { return std::sqrt(x); }, [](float, float y) { return 0.5f / y; },
               Reads::output);
}
Tensor square(const Tensor& a) {
  return unary(a, "square", [](float x) { return x * x; }, [](float x, float) { return 2.f * x; }, Reads::input);
}
// ReLU's mask from its output: y = x > 0 ? x : 0 is > 0 exactly where x > 0 (+-0, NaN and negatives all give
// y = 0), so the gradient has the same bits and the node keeps y (which the next layer keeps anyway) instead of x.
Tensor relu(const Tensor& a) {
  return unary(a, "relu", [](float x) { return x > 0.f ? x : 0.f; },
               [](float, float y) { return y > 0.f ? 1.f : 0.f; }, Reads::output);
}
// The same holds for leaky ReLU with a slope >= 0: slope * x is never > 0 where x is not (x <= 0 or NaN; an
// underflow gives -0). A negative (or NaN) slope breaks that, so it keeps x.
Tensor leaky_relu(const Tensor& a, float slope) {
  const auto f = [slope](float x) { return x > 0.f ? x : slope * x; };
  if (slope >= 0.f)
    return unary(a, "leaky_relu", f, [slope](float, float y) { return y > 0.f ? 1.f : slope; }, Reads::output);
  return unary(a, "leaky_relu", f, [slope](float x, float) { return x > 0.f ? 1.f : slope; }, Reads::input);
}
Tensor sigmoid(const Tensor& a) {
  return unary(a, "sigmoid", [](float x) { return 1.f / (1.f + std::exp(-x)); },
               [](float, float y) { return y * (1.f - y); }, Reads::output);
}
Tensor tanh(const Tensor& a) {
  return unary(a, "tanh", [](float x) { return std::tanh(x); }, [](float, float y) { return 1.f - y * y; },
               Reads::output);
}

}  // namespace convlab

#include "core/random.h"

namespace convlab {

Tensor dropout(const Tensor& x, float p, bool training, Rng& rng) {
  CL_CHECK(p >= 0.f && p < 1.f, "dropout: p must be in [0, 1), got " << p);
  if (!training || p == 0.f) return x;
  Tensor mask = Tensor::empty(x.shape());
  const float keep = 1.f / (1.f - p);
  float* m = mask.data();
  // The mask of the global batch, drawn in order on every process (core/shards.h); this process keeps its
  // shards' part, and every process's generator ends in the same state. One process: the whole mask.
  const BatchShards& s = batch_shards();
  const int64_t n = x.numel(), per_shard = n / local_shards(x.dim() > 0 ? x.size(0) : 1, "dropout");
  const int64_t lo = s.first * per_shard, hi = lo + n, total = s.total * per_shard;
  for (int64_t i = 0; i < total; ++i) {
    const float v = rng.uniform() < p ? 0.f : keep;
    if (i >= lo && i < hi) m[i - lo] = v;
  }
  return mul(x, mask);
}

}  // namespace convlab

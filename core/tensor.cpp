// core/tensor.cpp: storage, tensor handles and the backward walk.
#include "core/tensor.h"

#include <malloc.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <sstream>
#include <unordered_set>

#include "core/error.h"

namespace convlab {
namespace {

thread_local bool g_grad_enabled = true;

// Keep freed blocks in the heap instead of returning them to the OS: re-faulting 1-10 MB buffers after
// every op cost PyTorch 2-4x on the benchmark shapes. Done once, before the first tensor is allocated.
struct MallocPolicy {
  MallocPolicy() {
    mallopt(M_MMAP_THRESHOLD, 256 << 20);
    mallopt(M_TRIM_THRESHOLD, 1 << 30);
  }
};
const MallocPolicy g_malloc_policy;

}  // namespace

std::string shape_str(const Shape& s) {
  std::ostringstream os;
  os << '[';
  for (size_t i = 0; i < s.size(); ++i) os << (i ? "," : "") << s[i];
  os << ']';
  return os.str();
}

namespace {
std::atomic<int64_t> g_max_elements{int64_t(1) << 30};
}  // namespace

int64_t max_tensor_elements() { return g_max_elements.load(std::memory_order_relaxed); }
void set_max_tensor_elements(int64_t n) {
  CL_CHECK(n >= 1, "max_tensor_elements: expected a positive count, got " << n);
  g_max_elements.store(n, std::memory_order_relaxed);
}

int64_t checked_mul(int64_t a, int64_t b, const char* what) {
  int64_t r;
  CL_CHECK(!__builtin_mul_overflow(a, b, &r), what << ": " << a << " * " << b << " overflows a 64-bit size");
  return r;
}

int64_t checked_add(int64_t a, int64_t b, const char* what) {
  int64_t r;
  CL_CHECK(!__builtin_add_overflow(a, b, &r), what << ": " << a << " + " << b << " overflows a 64-bit size");
  return r;
}

int64_t numel_of(const Shape& s) {
  int64_t n = 1;
  bool overflow = false;
  for (int64_t d : s) {
    CL_CHECK(d >= 0, "tensor: negative dimension in shape " << shape_str(s));
    overflow = overflow || __builtin_mul_overflow(n, d, &n);
  }
  // A zero dimension makes the product 0 even after an overflowing prefix: such a shape is still refused,
  // since its other dimensions are not sizes anything could hold.
  CL_CHECK(!overflow && n <= max_tensor_elements(),
           "tensor: shape " << shape_str(s) << " has more than " << max_tensor_elements()
                            << " elements (the per-tensor limit)");
  return n;
}

namespace {
std::atomic<int64_t> g_live_bytes{0}, g_peak_bytes{0};
}  // namespace

int64_t Storage::live_bytes() { return g_live_bytes.load(std::memory_order_relaxed); }
int64_t Storage::peak_bytes() { return g_peak_bytes.load(std::memory_order_relaxed); }
void Storage::reset_peak_bytes() { g_peak_bytes.store(live_bytes(), std::memory_order_relaxed); }

Storage::Storage(int64_t n) : n_(n) {
  CL_CHECK(n >= 0 && n <= max_tensor_elements(),
           "tensor: cannot allocate " << n << " floats (the per-tensor limit is " << max_tensor_elements() << ")");
  // malloc(bytes + 64), aligned by hand, the block's address kept in the 8 bytes before data_. Not aligned_alloc:
  // glibc carves an aligned block out of a larger request (size + alignment + header), so a freed 8 MiB
  // activation never fits the next 8 MiB request; each went to the top of the heap, leaving the hole behind
  // (hdc_step: 84 MiB of free heap under 117 MiB of tensors). Same-size requests now reuse each other's blocks.
  const size_t bytes = ((static_cast<size_t>(std::max<int64_t>(n, 1)) * sizeof(float)) + 63) / 64 * 64;
  void* raw = std::malloc(bytes + 64);
  if (!raw) throw Error("out of memory allocating " + std::to_string(n) + " floats");
  const uintptr_t aligned = (reinterpret_cast<uintptr_t>(raw) + sizeof(void*) + 63) / 64 * 64;
  data_ = reinterpret_cast<float*>(aligned);
  reinterpret_cast<void**>(data_)[-1] = raw;
  const int64_t live = g_live_bytes.fetch_add(n_ * int64_t(sizeof(float)), std::memory_order_relaxed) +
                       n_ * int64_t(sizeof(float));
  int64_t peak = g_peak_bytes.load(std::memory_order_relaxed);
  while (live > peak && !g_peak_bytes.compare_exchange_weak(peak, live, std::memory_order_relaxed)) {
  }
}

Storage::~Storage() {
  g_live_bytes.fetch_sub(n_ * int64_t(sizeof(float)), std::memory_order_relaxed);
  std::free(reinterpret_cast<void**>(data_)[-1]);
}

AutogradMeta& TensorImpl::meta() {
  if (!autograd) {
    autograd = std::make_shared<AutogradMeta>();
    autograd->shape = shape;
  }
  return *autograd;
}

GradSlot::GradSlot(const Tensor& t) {
  if (t.defined()) {
    t.impl()->meta();
    meta_ = t.impl()->autograd;
  }
}

bool GradSlot::requires_grad() const { return meta_ && meta_->requires_grad; }

const Shape& GradSlot::shape() const {
  CL_CHECK(meta_, "autograd: use of an undefined gradient slot");
  return meta_->shape;
}

Tensor Tensor::empty(const Shape& shape) {
  for (int64_t d : shape) CL_CHECK(d >= 0, "tensor: negative dimension in shape " << shape_str(shape));
  auto impl = std::make_shared<TensorImpl>();
  impl->shape = shape;
  impl->storage = std::make_shared<Storage>(numel_of(shape));
  return Tensor(std::move(impl));
}

Tensor Tensor::zeros(const Shape& shape) { return full(shape, 0.f); }

namespace {
constexpr int64_t kParallelElems = 1 << 16;  // fills and adds below ~256 KB stay serial

// Element-independent loops, split across threads for large tensors (results cannot depend on the split).
void parallel_fill(float* p, int64_t n, float v) {
#pragma omp parallel for schedule(static) if (n >= kParallelElems)
  for (int64_t i = 0; i < n; ++i) p[i] = v;
}
}  // namespace

Tensor Tensor::full(const Shape& shape, float v) {
  Tensor t = empty(shape);
  parallel_fill(t.data(), t.numel(), v);
  return t;
}

Tensor Tensor::from(const Shape& shape, const std::vector<float>& values) {
  CL_CHECK(numel_of(shape) == static_cast<int64_t>(values.size()),
           "tensor: shape " << shape_str(shape) << " needs " << numel_of(shape) << " values, got "
                            << values.size());
  Tensor t = empty(shape);
  std::copy(values.begin(), values.end(), t.data());
  return t;
}

const Shape& Tensor::shape() const {
  CL_CHECK(impl_, "tensor: use of an undefined tensor");
  return impl_->shape;
}

int64_t Tensor::size(int64_t d) const {
  const int64_t n = dim();
  CL_CHECK(d >= -n && d < n, "tensor: dimension " << d << " out of range for shape " << shape_str(shape()));
  return shape()[d < 0 ? d + n : d];
}

int64_t Tensor::numel() const { return numel_of(shape()); }
float* Tensor::data() { return impl_->storage->data() + impl_->offset; }
const float* Tensor::data() const { return impl_->storage->data() + impl_->offset; }

std::vector<float> Tensor::to_vector() const { return std::vector<float>(data(), data() + numel()); }

float Tensor::item() const {
  CL_CHECK(numel() == 1, "item: tensor of shape " << shape_str(shape()) << " has more than one element");
  return data()[0];
}

float Tensor::at(std::initializer_list<int64_t> idx) const {
  CL_CHECK(static_cast<int64_t>(idx.size()) == dim(),
           "at: " << idx.size() << " indices for shape " << shape_str(shape()));
  int64_t off = 0, d = 0;
  for (int64_t i : idx) {
    CL_CHECK(i >= 0 && i < shape()[d], "at: index " << i << " out of range for shape " << shape_str(shape()));
    off = off * shape()[d++] + i;
  }
  return data()[off];
}

bool Tensor::requires_grad() const { return impl_ && impl_->autograd && impl_->autograd->requires_grad; }

Tensor& Tensor::set_requires_grad(bool r) {
  CL_CHECK(is_leaf() || r, "set_requires_grad: only leaf tensors can stop requiring grad");
  if (r || impl_->autograd) impl_->meta().requires_grad = r;
  return *this;
}

bool Tensor::is_leaf() const { return !impl_->autograd || !impl_->autograd->grad_fn; }

Tensor Tensor::grad() const {
  if (!impl_ || !impl_->autograd || !impl_->autograd->grad) return Tensor();
  auto g = std::make_shared<TensorImpl>();
  g->storage = impl_->autograd->grad;
  g->shape = impl_->shape;
  return Tensor(std::move(g));
}

void Tensor::zero_grad() {
  if (impl_->autograd) impl_->autograd->grad.reset();
}

Tensor Tensor::detach() const {
  auto d = std::make_shared<TensorImpl>();
  d->storage = impl_->storage;
  d->offset = impl_->offset;
  d->shape = impl_->shape;
  return Tensor(std::move(d));
}

Tensor Tensor::clone() const {
  Tensor c = empty(shape());
  std::copy_n(data(), numel(), c.data());
  return c;
}

const std::shared_ptr<Node>& Tensor::grad_fn() const {
  static const std::shared_ptr<Node> none;
  return impl_->autograd ? impl_->autograd->grad_fn : none;
}

namespace {
float* grad_buffer_of(AutogradMeta& m) {
  if (!m.grad) {
    m.grad = std::make_shared<Storage>(numel_of(m.shape));
    parallel_fill(m.grad->data(), numel_of(m.shape), 0.f);
  }
  return m.grad->data();
}

// Adds g (same numel as the slot) into the slot's gradient.
void accumulate_into(AutogradMeta& m, const Tensor& g) {
  const int64_t n = numel_of(m.shape);
  CL_CHECK(g.numel() == n, "backward: gradient " << shape_str(g.shape()) << " does not fit tensor "
                                                 << shape_str(m.shape));
  float* dst = grad_buffer_of(m);
  const float* src = g.data();
#pragma omp parallel for schedule(static) if (n >= kParallelElems)
  for (int64_t i = 0; i < n; ++i) dst[i] += src[i];
}
}  // namespace

float* grad_buffer(const Tensor& t) { return grad_buffer_of(t.impl()->meta()); }

float* grad_buffer(const GradSlot& t) {
  CL_CHECK(t.defined(), "autograd: use of an undefined gradient slot");
  return grad_buffer_of(*t.meta());
}

// Adds g (same numel as t) into t's gradient, when t wants one.
void accumulate_grad(const Tensor& t, const Tensor& g) {
  if (!t.defined() || !t.requires_grad()) return;
  accumulate_into(t.impl()->meta(), g);
}

void accumulate_grad(const GradSlot& t, const Tensor& g) {
  if (!t.requires_grad()) return;
  accumulate_into(*t.meta(), g);
}

bool grad_mode_enabled() { return g_grad_enabled; }

bool any_requires_grad(std::initializer_list<const Tensor*> ts) {
  if (!g_grad_enabled) return false;
  for (const Tensor* t : ts)
    if (t && t->defined() && t->requires_grad()) return true;
  return false;
}

bool record(Tensor& out, const char* name, std::vector<Tensor> inputs,
            std::function<void(const Tensor& grad_out)> backward) {
  if (!g_grad_enabled) return false;
  std::vector<std::shared_ptr<AutogradMeta>> kept;
  for (Tensor& t : inputs)
    if (t.defined() && t.requires_grad()) kept.push_back(t.impl()->autograd);
  if (kept.empty()) return false;
  auto node = std::make_shared<Node>();
  node->name = name;
  node->inputs = std::move(kept);
  node->backward = std::move(backward);
  AutogradMeta& m = out.impl()->meta();
  m.grad_fn = std::move(node);
  m.requires_grad = true;
  return true;
}

NoGradGuard::NoGradGuard() : prev_(g_grad_enabled) { g_grad_enabled = false; }
NoGradGuard::~NoGradGuard() { g_grad_enabled = prev_; }

void Tensor::backward(const Tensor& grad_output, bool keep_graph) const {
  CL_CHECK(requires_grad(), "backward: tensor " << shape_str(shape()) << " does not require grad");
  if (grad_output.defined()) {
    CL_CHECK(grad_output.shape() == shape(), "backward: grad_output " << shape_str(grad_output.shape())
                                                 << " does not match output " << shape_str(shape()));
  } else {
    CL_CHECK(numel() == 1, "backward: output " << shape_str(shape())
                               << " is not a scalar; pass grad_output explicitly");
  }
  // Reverse topological order by an iterative depth-first search over grad_fn edges.
  // `order` holds owning pointers: freeing a node's graph must not destroy slots still to be visited. They are
  // gradient slots (AutogradMeta), not tensors, so holding them keeps no activation alive.
  std::vector<std::shared_ptr<AutogradMeta>> order;
  std::unordered_set<AutogradMeta*> seen;
  std::vector<std::pair<std::shared_ptr<AutogradMeta>, size_t>> stack{{impl_->autograd, 0}};
  seen.insert(impl_->autograd.get());
  while (!stack.empty()) {
    auto& [t, next] = stack.back();
    CL_CHECK(!t->graph_freed, "backward: the graph behind tensor " << shape_str(t->shape)
                                  << " was freed by an earlier backward (pass keep_graph to go through it twice)");
    if (t->grad_fn && next < t->grad_fn->inputs.size()) {
      const auto& child = t->grad_fn->inputs[next++];
      if (seen.insert(child.get()).second) stack.push_back({child, 0});
    } else {
      order.push_back(t);
      stack.pop_back();
    }
  }
  // Seed the output gradient.
  float* g = grad_buffer(*this);
  const int64_t n = numel();
  if (grad_output.defined()) {
    const float* go = grad_output.data();
#pragma omp parallel for schedule(static) if (n >= kParallelElems)
    for (int64_t i = 0; i < n; ++i) g[i] += go[i];
  } else {
    g[0] += 1.f;
  }
  NoGradGuard no_grad;  // backward closures compute with plain tensors
  for (auto it = order.rbegin(); it != order.rend(); ++it) {
    AutogradMeta* t = it->get();
    if (!t->grad_fn) continue;  // a leaf: its gradient stays
    if (t->grad) {
      auto gi = std::make_shared<TensorImpl>();
      gi->storage = t->grad;
      gi->shape = t->shape;
      t->grad.reset();  // intermediate gradients are not kept (PyTorch's retain_grad is not offered)
      t->grad_fn->backward(Tensor(std::move(gi)));
    }
    if (!keep_graph) {  // frees the closure and with it the tensors it saved, before the next node runs
      t->grad_fn.reset();
      t->graph_freed = true;
    }
  }
}

}  // namespace convlab

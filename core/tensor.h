// core/tensor.h: float32 tensors (row-major, NCHW for images) and the reverse-mode autograd tape.
//
// A Tensor is a cheap handle (shared_ptr) to a TensorImpl: a shape, an offset into shared Storage, and the
// autograd fields. Every tensor is contiguous; views (reshape, narrow along dim 0, detach) share storage,
// every other op allocates its result.
//
// Autograd: an op whose inputs require grad records a Node on its output (grad_fn). The Node lists the
// inputs it propagates to and a backward closure that ACCUMULATES (+=) into their gradient buffers through
// grad_buffer(), so a tensor used twice needs no special case. backward() walks the graph in reverse
// topological order and frees each node's closure as soon as it has run (unless keep_graph). Closures must
// never capture their own output Tensor (that would be a reference cycle); they capture output.detach() when
// they need its values.
//
// Memory: a tensor's autograd state (gradient, grad_fn) lives in an AutogradMeta apart from its values, and the
// graph's edges point at that, never at the values. So the graph keeps an activation alive only when a closure
// captures the Tensor because its backward reads the values; a closure that only sends gradient to an input
// captures a GradSlot (the meta alone). ReLU, for instance, keeps its output (mask y > 0, the same bits as
// x > 0) and not its input, so conv + BN + ReLU keeps BN's input and ReLU's output (the next conv's input) as
// PyTorch does, and BN's output is freed as soon as ReLU has consumed it.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace convlab {

using Shape = std::vector<int64_t>;
std::string shape_str(const Shape& s);  // "[2,3,4,4]"
// The product of the dimensions. Shapes come from configs, checkpoints and op cases, so the product is
// checked: a negative dimension, a product that overflows int64 or one above max_tensor_elements() throws
// convlab::Error naming the shape (never a wrapped, small count that a buffer would then be sized by).
int64_t numel_of(const Shape& s);

// Upper bound on the elements of any one tensor or scratch buffer (default 2^30 floats = 4 GiB), checked
// before anything is allocated. A process that needs more (or, like a fuzzer, less) sets it once at start.
int64_t max_tensor_elements();
void set_max_tensor_elements(int64_t n);
// a * b for sizes derived from input; throws convlab::Error naming `what` when it overflows int64.
int64_t checked_mul(int64_t a, int64_t b, const char* what);
int64_t checked_add(int64_t a, int64_t b, const char* what);

// 64-byte aligned float buffer.
class Storage {
 public:
  explicit Storage(int64_t n);
  ~Storage();
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;
  float* data() { return data_; }
  int64_t size() const { return n_; }
  // Bytes (4 per float) held by all Storage objects alive in the process right now: tensors, gradients and
  // workspaces. What the tests use to count the activations a graph keeps.
  static int64_t live_bytes();
  // The highest live_bytes() since the process started or the last reset_peak_bytes(): set against the peak
  // RSS, it tells the tensors' own high-water mark from the allocator's overhead.
  static int64_t peak_bytes();
  static void reset_peak_bytes();

 private:
  float* data_ = nullptr;
  int64_t n_ = 0;
};

struct Node;
struct TensorImpl;
struct AutogradMeta;

class Tensor {
 public:
  Tensor() = default;
  explicit Tensor(std::shared_ptr<TensorImpl> impl) : impl_(std::move(impl)) {}

  // Factories.
  static Tensor empty(const Shape& shape);  // uninitialised
  static Tensor zeros(const Shape& shape);
  static Tensor full(const Shape& shape, float v);
  static Tensor ones(const Shape& shape) { return full(shape, 1.f); }
  static Tensor from(const Shape& shape, const std::vector<float>& values);
  static Tensor scalar(float v) { return from({1}, {v}); }

  bool defined() const { return impl_ != nullptr; }
  const Shape& shape() const;
  int64_t dim() const { return static_cast<int64_t>(shape().size()); }
  int64_t size(int64_t d) const;  // negative d counts from the end
  int64_t numel() const;
  float* data();
  const float* data() const;
  std::vector<float> to_vector() const;
  float item() const;  // the value of a one-element tensor
  float at(std::initializer_list<int64_t> idx) const;

  // Autograd.
  bool requires_grad() const;
  Tensor& set_requires_grad(bool r = true);
  bool is_leaf() const;
  Tensor grad() const;       // undefined when no gradient has been accumulated
  void zero_grad();          // drops the gradient buffer
  void backward(const Tensor& grad_output = Tensor(), bool keep_graph = false) const;
  Tensor detach() const;     // shares storage, no history
  Tensor clone() const;      // deep copy, no history
  const std::shared_ptr<Node>& grad_fn() const;

  TensorImpl* impl() const { return impl_.get(); }
  const std::shared_ptr<TensorImpl>& impl_ptr() const { return impl_; }
  bool same(const Tensor& o) const { return impl_ == o.impl_; }

 private:
  std::shared_ptr<TensorImpl> impl_;
};

// The autograd state of one tensor, apart from its values (see the top of this file).
struct AutogradMeta {
  Shape shape;
  bool requires_grad = false;
  std::shared_ptr<Storage> grad;  // same numel as the tensor, contiguous
  std::shared_ptr<Node> grad_fn;
  bool graph_freed = false;  // a backward() already consumed (and freed) the graph that produced it
};

struct TensorImpl {
  std::shared_ptr<Storage> storage;
  int64_t offset = 0;
  Shape shape;
  std::shared_ptr<AutogradMeta> autograd;  // null until the tensor takes part in autograd
  AutogradMeta& meta();                    // creates it on first use
};

// Where a backward closure sends an input's gradient, without keeping the input's values alive: capture
// GradSlot(x) instead of x when the backward does not read x.
class GradSlot {
 public:
  GradSlot() = default;
  explicit GradSlot(const Tensor& t);  // an undefined t gives an undefined slot
  bool defined() const { return meta_ != nullptr; }
  bool requires_grad() const;
  const Shape& shape() const;
  int64_t numel() const { return numel_of(shape()); }
  AutogradMeta* meta() const { return meta_.get(); }

 private:
  std::shared_ptr<AutogradMeta> meta_;
};

struct Node {
  const char* name = "";
  // The gradient slots this node sends gradient to (only inputs requiring grad are kept): never their values.
  std::vector<std::shared_ptr<AutogradMeta>> inputs;
  std::function<void(const Tensor& grad_out)> backward;
};

// Gradient buffer of t, created zero-filled on first use; backward closures accumulate into it.
float* grad_buffer(const Tensor& t);
float* grad_buffer(const GradSlot& t);
// Adds g (same number of elements) into t's gradient when t requires grad; otherwise does nothing.
void accumulate_grad(const Tensor& t, const Tensor& g);
void accumulate_grad(const GradSlot& t, const Tensor& g);

// Is gradient recording on (not inside a NoGradGuard) and does any of these tensors require grad?
bool any_requires_grad(std::initializer_list<const Tensor*> ts);
bool grad_mode_enabled();

// Attach a Node to `out` when grad mode is on and any of `inputs` requires grad; returns whether it did.
// Undefined tensors in `inputs` (absent optional arguments) are skipped.
bool record(Tensor& out, const char* name, std::vector<Tensor> inputs,
            std::function<void(const Tensor& grad_out)> backward);

class NoGradGuard {
 public:
  NoGradGuard();
  ~NoGradGuard();
  NoGradGuard(const NoGradGuard&) = delete;
  NoGradGuard& operator=(const NoGradGuard&) = delete;

 private:
  bool prev_;
};

}  // namespace convlab

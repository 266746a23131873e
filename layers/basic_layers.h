// layers/basic_layers.h: activations, batch norm, linear, flatten, dropout.
#pragma once
#include <functional>

#include "core/random.h"
#include "layers/module.h"

namespace convlab {

// A parameter-free elementwise layer (relu, leaky_relu, tanh, sigmoid, identity).
class Activation : public Module {
 public:
  Activation(std::string type, std::function<Tensor(const Tensor&)> f) : type_(std::move(type)), f_(std::move(f)) {}
  std::string type() const override { return type_; }
  Tensor forward(const Tensor& x) override { return f_(x); }
  Shape output_shape(const Shape& in) const override { return in; }

 private:
  std::string type_;
  std::function<Tensor(const Tensor&)> f_;
};

struct BatchNorm2dOptions {
  int64_t num_features = 0;
  double eps = 1e-5, momentum = 0.1;
  bool affine = true, track_running_stats = true;
};

// torch.nn.BatchNorm2d: weight (gamma) = 1, bias (beta) = 0, running_mean = 0, running_var = 1,
// num_batches_tracked (shape [] as in PyTorch; a float in memory, written to checkpoints as int64).
class BatchNorm2d : public Module {
 public:
  explicit BatchNorm2d(const BatchNorm2dOptions& opt);
  std::string type() const override { return "batch_norm2d"; }
  Tensor forward(const Tensor& x) override;
  Shape output_shape(const Shape& in) const override;

 private:
  BatchNorm2dOptions opt_;
};

class Linear : public Module {
 public:
  Linear(int64_t in_features, int64_t out_features, bool bias, Rng& rng);
  std::string type() const override { return "linear"; }
  Tensor forward(const Tensor& x) override;
  Shape output_shape(const Shape& in) const override;

 private:
  int64_t in_, out_;
  bool bias_;
};

class Flatten : public Module {
 public:
  std::string type() const override { return "flatten"; }
  Tensor forward(const Tensor& x) override { return flatten(x, 1); }
  Shape output_shape(const Shape& in) const override;
};

class Dropout : public Module {
 public:
  Dropout(float p, uint64_t seed) : p_(p), rng_(seed) {}
  std::string type() const override { return "dropout"; }
  Tensor forward(const Tensor& x) override { return dropout(x, p_, training(), rng_); }
  Shape output_shape(const Shape& in) const override { return in; }
  Rng& rng() { return rng_; }

 private:
  float p_;
  Rng rng_;
};

}  // namespace convlab

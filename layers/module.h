// layers/module.h: the Module base of every layer, and the Sequential / Residual containers.
// A Module owns named parameters and buffers with PyTorch's names and layouts ("weight", "bias",
// "running_mean", ...) so that a state dict maps 1:1 onto the equivalent torch.nn module. Children are
// named too; names nest with dots ("layers.3.weight"), as in PyTorch.
// Composition is at run time: a config builds a tree of Modules; output_shape() is the shape-only pass that
// refuses a network whose shapes do not fit before any training starts.
#pragma once
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "core/ops.h"

namespace convlab {

class Module {
 public:
  virtual ~Module() = default;
  virtual std::string type() const = 0;  // the config type name, e.g. "conv2d"
  virtual Tensor forward(const Tensor& x) = 0;
  // Shape-only pass: the output shape for input `in`; throws convlab::Error naming both shapes on misfit.
  virtual Shape output_shape(const Shape& in) const = 0;

  void train(bool on = true);
  void eval() { train(false); }
  bool training() const { return training_; }

  // Recursive, in registration order, names as PyTorch's state_dict() gives them.
  std::vector<std::pair<std::string, Tensor>> named_parameters(const std::string& prefix = "") const;
  std::vector<std::pair<std::string, Tensor>> named_buffers(const std::string& prefix = "") const;
  std::vector<Tensor> parameters() const;
  // Parameters then buffers, as torch's state_dict() lists them (sharing storage with the module).
  std::vector<std::pair<std::string, Tensor>> state_dict() const;
  int64_t num_parameters() const;
  const std::vector<std::pair<std::string, std::shared_ptr<Module>>>& children() const { return children_; }

  // Per-parameter learning-rate multiplier (1 by default), e.g. DeformConv2d's offset predictor.
  float lr_multiplier(const Tensor& p) const;
  // Sets the learning-rate multiplier of every parameter of this module and its children.
  void scale_lr(float mult);

 protected:
  Tensor& register_parameter(const std::string& name, Tensor t, float lr_mult = 1.f);
  Tensor& register_buffer(const std::string& name, Tensor t);
  template <class M>
  std::shared_ptr<M> register_module(const std::string& name, std::shared_ptr<M> m) {
    children_.emplace_back(name, m);
    return m;
  }
  // The parameter or buffer tensor registered under `name` (for subclasses' forward()).
  Tensor& param(const std::string& name);
  const Tensor& param(const std::string& name) const;  // for output_shape(): a reference into this module
  Tensor& buffer(const std::string& name);

 private:
  struct Param {
    std::string name;
    Tensor t;
    float lr_mult;
  };
  std::vector<Param> params_;
  std::vector<std::pair<std::string, Tensor>> buffers_;
  std::vector<std::pair<std::string, std::shared_ptr<Module>>> children_;
  bool training_ = true;
};

using ModulePtr = std::shared_ptr<Module>;

class Sequential : public Module {
 public:
  Sequential() = default;
  void add(ModulePtr m);  // named "0", "1", ... as in torch.nn.Sequential
  std::string type() const override { return "sequential"; }
  Tensor forward(const Tensor& x) override;
  Shape output_shape(const Shape& in) const override;
  size_t size() const { return children().size(); }
  const ModulePtr& at(size_t i) const { return children()[i].second; }
};

// y = x + body(x): body must keep the shape (checked in the shape-only pass).
class Residual : public Module {
 public:
  explicit Residual(ModulePtr body);
  std::string type() const override { return "residual"; }
  Tensor forward(const Tensor& x) override;
  Shape output_shape(const Shape& in) const override;

 private:
  ModulePtr body_;
};

}  // namespace convlab

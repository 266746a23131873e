// core/optim.h: optimizers (SGD with momentum / weight decay, Adam, AdamW) and learning-rate schedules,
// following torch.optim's update rules exactly. Each parameter may carry a learning-rate multiplier.
// State (moments, step count) is exposed as named tensors so checkpoints can save and restore it.
#pragma once
#include <string>
#include <utility>
#include <vector>

#include "core/tensor.h"

namespace convlab {

struct ParamRef {
  std::string name;
  Tensor tensor;
  float lr_mult = 1.f;
};

class Optimizer {
 public:
  explicit Optimizer(std::vector<ParamRef> params) : params_(std::move(params)) {}
  virtual ~Optimizer() = default;
  virtual void step() = 0;  // parameters without a gradient are skipped
  void zero_grad();
  void set_lr(double lr) { lr_ = lr; }
  double lr() const { return lr_; }
  int64_t steps() const { return steps_; }
  // Named state tensors ("exp_avg.<param>", ..., "step") for checkpoints, and restoring them.
  virtual std::vector<std::pair<std::string, Tensor>> state() const = 0;
  virtual void load_state(const std::vector<std::pair<std::string, Tensor>>& s) = 0;
  const std::vector<ParamRef>& params() const { return params_; }

 protected:
  std::vector<ParamRef> params_;
  double lr_ = 1e-3;
  int64_t steps_ = 0;
};

struct SgdOptions {
  double lr = 0.01, momentum = 0, weight_decay = 0, dampening = 0;
  bool nesterov = false;
};

class Sgd : public Optimizer {
 public:
  Sgd(std::vector<ParamRef> params, const SgdOptions& o);
  void step() override;
  std::vector<std::pair<std::string, Tensor>> state() const override;
  void load_state(const std::vector<std::pair<std::string, Tensor>>& s) override;

 private:
  SgdOptions o_;
  std::vector<Tensor> buf_;  // momentum buffers
};

struct AdamOptions {
  double lr = 1e-3, beta1 = 0.9, beta2 = 0.999, eps = 1e-8, weight_decay = 0;
  bool decoupled = false;  // AdamW: decay the weights directly instead of adding to the gradient
};

class Adam : public Optimizer {
 public:
  Adam(std::vector<ParamRef> params, const AdamOptions& o);
  void step() override;
  std::vector<std::pair<std::string, Tensor>> state() const override;
  void load_state(const std::vector<std::pair<std::string, Tensor>>& s) override;

 private:
  AdamOptions o_;
  std::vector<Tensor> m_, v_;
};

struct LrSchedule {
  std::string kind = "constant";  // constant | poly | step | cosine
  double base_lr = 1e-3;
  int64_t total_steps = 1;
  double power = 0.9;             // poly: lr = base * (1 - t/T)^power
  int64_t step_size = 1000;       // step: lr = base * gamma^(t / step_size)
  double gamma = 0.1;
  double min_lr = 0;              // cosine: min + (base - min) * (1 + cos(pi t/T)) / 2
  int64_t warmup_steps = 0;       // linear warm-up from base/warmup to base over the first steps
  double lr_at(int64_t step) const;
};

}  // namespace convlab

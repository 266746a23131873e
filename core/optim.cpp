// core/optim.cpp: torch.optim's update rules.
//   SGD:   g += wd*p;  buf = momentum*buf + (1-dampening)*g (buf = g on the first step);
//          g = nesterov ? g + momentum*buf : buf;  p -= lr*g
//   Adam:  g += wd*p (Adam) or p *= 1 - lr*wd (AdamW);  m = b1*m + (1-b1)*g;  v = b2*v + (1-b2)*g^2;
//          p -= lr / (1-b1^t) * m / (sqrt(v) / sqrt(1-b2^t) + eps)
#include "core/optim.h"

#include <cmath>

#include "core/error.h"

namespace convlab {

void Optimizer::zero_grad() {
  for (ParamRef& p : params_) p.tensor.zero_grad();
}

namespace {
std::vector<Tensor> zeros_like_all(const std::vector<ParamRef>& ps) {
  std::vector<Tensor> out;
  for (const ParamRef& p : ps) out.push_back(Tensor::zeros(p.tensor.shape()));
  return out;
}

void load_named(const std::vector<std::pair<std::string, Tensor>>& s, const std::string& key, Tensor& dst) {
  for (const auto& [k, t] : s)
    if (k == key) {
      CL_CHECK(t.shape() == dst.shape(), "optimizer state " << key << ": shape " << shape_str(t.shape())
                                                            << " does not match " << shape_str(dst.shape()));
      std::copy_n(t.data(), t.numel(), dst.data());
      return;
    }
  CL_FAIL("optimizer state: missing " << key);
}

int64_t load_steps(const std::vector<std::pair<std::string, Tensor>>& s) {
  for (const auto& [k, t] : s)
    if (k == "step") {  // a float in a file: checked before it becomes an integer
      const float v = t.item();
      CL_CHECK(std::isfinite(v) && v >= 0 && v < 9e15f && v == std::floor(v),
               "optimizer state: step " << v << " is not a step count");
      return static_cast<int64_t>(v);
    }
  CL_FAIL("optimizer state: missing step");
}
}  // namespace

Sgd::Sgd(std::vector<ParamRef> params, const SgdOptions& o) : Optimizer(std::move(params)), o_(o) {
  lr_ = o.lr;
  buf_ = zeros_like_all(params_);
}

void Sgd::step() {
  ++steps_;
  for (size_t i = 0; i < params_.size(); ++i) {
    Tensor g = params_[i].tensor.grad();
    if (!g.defined()) continue;
    float* p = params_[i].tensor.data();
    const float* gd = g.data();
    float* b = buf_[i].data();
    const float lr = float(lr_ * params_[i].lr_mult), mom = float(o_.momentum), wd = float(o_.weight_decay);
    for (int64_t j = 0, n = g.numel(); j < n; ++j) {
      float d = gd[j] + wd * p[j];
      if (mom != 0.f) {
        b[j] = steps_ == 1 ? d : mom * b[j] + float(1 - o_.dampening) * d;
        d = o_.nesterov ? d + mom * b[j] : b[j];
      }
      p[j] -= lr * d;
    }
  }
}

std::vector<std::pair<std::string, Tensor>> Sgd::state() const {
  std::vector<std::pair<std::string, Tensor>> s;
  for (size_t i = 0; i < params_.size(); ++i) s.emplace_back("momentum_buffer." + params_[i].name, buf_[i]);
  s.emplace_back("step", Tensor::scalar(float(steps_)));
  return s;
}

void Sgd::load_state(const std::vector<std::pair<std::string, Tensor>>& s) {
  for (size_t i = 0; i < params_.size(); ++i) load_named(s, "momentum_buffer." + params_[i].name, buf_[i]);
  steps_ = load_steps(s);
}

Adam::Adam(std::vector<ParamRef> params, const AdamOptions& o) : Optimizer(std::move(params)), o_(o) {
  lr_ = o.lr;
  m_ = zeros_like_all(params_);
  v_ = zeros_like_all(params_);
}

void Adam::step() {
  ++steps_;
  const double bc1 = 1 - std::pow(o_.beta1, double(steps_)), bc2 = 1 - std::pow(o_.beta2, double(steps_));
  const float b1 = float(o_.beta1), b2 = float(o_.beta2), eps = float(o_.eps);
  const float sqrt_bc2 = float(std::sqrt(bc2));
  for (size_t i = 0; i < params_.size(); ++i) {
    Tensor g = params_[i].tensor.grad();
    if (!g.defined()) continue;
    float* p = params_[i].tensor.data();
    const float* gd = g.data();
    float* m = m_[i].data();
    float* v = v_[i].data();
    const double lr = lr_ * params_[i].lr_mult;
    const float step_size = float(lr / bc1), wd = float(o_.weight_decay);
    const float decay = o_.decoupled ? float(1.0 - lr * o_.weight_decay) : 1.f;
    for (int64_t j = 0, n = g.numel(); j < n; ++j) {
      const float d = o_.decoupled ? gd[j] : gd[j] + wd * p[j];
      p[j] *= decay;
      m[j] = b1 * m[j] + (1 - b1) * d;
      v[j] = b2 * v[j] + (1 - b2) * d * d;
      p[j] -= step_size * m[j] / (std::sqrt(v[j]) / sqrt_bc2 + eps);
    }
  }
}

std::vector<std::pair<std::string, Tensor>> Adam::state() const {
  std::vector<std::pair<std::string, Tensor>> s;
  for (size_t i = 0; i < params_.size(); ++i) {
    s.emplace_back("exp_avg." + params_[i].name, m_[i]);
    s.emplace_back("exp_avg_sq." + params_[i].name, v_[i]);
  }
  s.emplace_back("step", Tensor::scalar(float(steps_)));
  return s;
}

void Adam::load_state(const std::vector<std::pair<std::string, Tensor>>& s) {
  for (size_t i = 0; i < params_.size(); ++i) {
    load_named(s, "exp_avg." + params_[i].name, m_[i]);
    load_named(s, "exp_avg_sq." + params_[i].name, v_[i]);
  }
  steps_ = load_steps(s);
}

double LrSchedule::lr_at(int64_t t) const {
  double lr = base_lr;
  const double T = double(std::max<int64_t>(total_steps, 1));
  const double frac = std::min(1.0, double(t) / T);
  if (kind == "poly") lr = base_lr * std::pow(1.0 - frac, power);
  else if (kind == "step") lr = base_lr * std::pow(gamma, double(t / std::max<int64_t>(step_size, 1)));
  else if (kind == "cosine") lr = min_lr + (base_lr - min_lr) * 0.5 * (1.0 + std::cos(M_PI * frac));
  else CL_CHECK(kind == "constant", "lr schedule: unknown kind '" << kind << "' (constant, poly, step, cosine)");
  if (warmup_steps > 0 && t < warmup_steps) lr *= double(t + 1) / double(warmup_steps);
  return lr;
}

}  // namespace convlab

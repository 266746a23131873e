// layers/module.cpp: see module.h.
#include "layers/module.h"

#include "core/error.h"

namespace convlab {

void Module::train(bool on) {
  training_ = on;
  for (auto& [n, c] : children_) c->train(on);
}

std::vector<std::pair<std::string, Tensor>> Module::named_parameters(const std::string& prefix) const {
  std::vector<std::pair<std::string, Tensor>> out;
  for (const Param& p : params_) out.emplace_back(prefix + p.name, p.t);
  for (const auto& [n, c] : children_)
    for (auto& kv : c->named_parameters(prefix + n + ".")) out.push_back(std::move(kv));
  return out;
}

std::vector<std::pair<std::string, Tensor>> Module::named_buffers(const std::string& prefix) const {
  std::vector<std::pair<std::string, Tensor>> out;
  for (const auto& [n, t] : buffers_) out.emplace_back(prefix + n, t);
  for (const auto& [n, c] : children_)
    for (auto& kv : c->named_buffers(prefix + n + ".")) out.push_back(std::move(kv));
  return out;
}

std::vector<std::pair<std::string, Tensor>> Module::state_dict() const {
  auto s = named_parameters();
  for (auto& kv : named_buffers()) s.push_back(std::move(kv));
  return s;
}

std::vector<Tensor> Module::parameters() const {
  std::vector<Tensor> out;
  for (auto& [n, t] : named_parameters()) out.push_back(t);
  return out;
}

int64_t Module::num_parameters() const {
  int64_t n = 0;
  for (auto& [name, t] : named_parameters()) n += t.numel();
  return n;
}

float Module::lr_multiplier(const Tensor& p) const {
  for (const Param& q : params_)
    if (q.t.same(p)) return q.lr_mult;
  for (const auto& [n, c] : children_) {
    for (auto& [name, t] : c->named_parameters())
      if (t.same(p)) return c->lr_multiplier(p);
  }
  return 1.f;
}

void Module::scale_lr(float mult) {
  for (Param& p : params_) p.lr_mult = mult;
  for (auto& [n, c] : children_) c->scale_lr(mult);
}

Tensor& Module::register_parameter(const std::string& name, Tensor t, float lr_mult) {
  t.set_requires_grad(true);
  params_.push_back({name, std::move(t), lr_mult});
  return params_.back().t;
}

Tensor& Module::register_buffer(const std::string& name, Tensor t) {
  buffers_.emplace_back(name, std::move(t));
  return buffers_.back().second;
}

Tensor& Module::param(const std::string& name) {
  for (Param& p : params_)
    if (p.name == name) return p.t;
  CL_FAIL(type() << ": no parameter '" << name << "'");
}

const Tensor& Module::param(const std::string& name) const { return const_cast<Module*>(this)->param(name); }

Tensor& Module::buffer(const std::string& name) {
  for (auto& [n, t] : buffers_)
    if (n == name) return t;
  CL_FAIL(type() << ": no buffer '" << name << "'");
}

void Sequential::add(ModulePtr m) { register_module(std::to_string(children().size()), std::move(m)); }

Tensor Sequential::forward(const Tensor& x) {
  Tensor h = x;
  for (const auto& [n, c] : children()) h = c->forward(h);
  return h;
}

Shape Sequential::output_shape(const Shape& in) const {
  Shape s = in;
  for (size_t i = 0; i < children().size(); ++i) {
    try {
      s = children()[i].second->output_shape(s);
    } catch (const Error& e) {
      throw Error("layer " + std::to_string(i) + " (" + children()[i].second->type() + "): " + e.what());
    }
  }
  return s;
}

Residual::Residual(ModulePtr body) : body_(register_module("body", std::move(body))) {}

Tensor Residual::forward(const Tensor& x) { return add(x, body_->forward(x)); }

Shape Residual::output_shape(const Shape& in) const {
  const Shape out = body_->output_shape(in);
  CL_CHECK(out == in, "residual: body maps " << shape_str(in) << " to " << shape_str(out)
                                             << "; a residual block must keep the shape");
  return in;
}

}  // namespace convlab

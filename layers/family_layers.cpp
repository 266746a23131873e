// layers/family_layers.cpp: see family_layers.h.
#include "layers/family_layers.h"

#include "core/error.h"
#include "layers/registry.h"

namespace convlab {

// ---- ConvTranspose2d ----
ConvTranspose2d::ConvTranspose2d(int64_t in, int64_t out, Pair k, const ConvTranspose2dArgs& a, bool bias, Rng& rng)
    : a_(a), bias_(bias) {
  Tensor w = Tensor::empty({in, out / a.groups, k[0], k[1]});
  Tensor b = bias ? Tensor::empty({out}) : Tensor();
  // PyTorch computes fan_in from weight dim 1 (C_out/groups) times the kernel for transposed convs too.
  default_init(w, &b, rng);
  register_parameter("weight", w);
  if (bias) register_parameter("bias", b);
}

ModulePtr ConvTranspose2d::from(Options& o, const Shape& in, Rng& rng) {
  const int64_t cin = infer_in_channels(o, in), cout = o.integer("out_channels", std::nullopt, 1, kMaxChannels);
  const Pair k = o.pair("kernel_size", std::nullopt, 1);
  ConvTranspose2dArgs a;
  a.stride = o.pair("stride", Pair{1, 1}, 1);
  a.padding = o.pair("padding", Pair{0, 0}, 0);
  a.output_padding = o.pair("output_padding", Pair{0, 0}, 0);
  a.dilation = o.pair("dilation", Pair{1, 1}, 1);
  a.groups = o.integer("groups", 1, 1, kMaxChannels);
  CL_CHECK(cin % a.groups == 0 && cout % a.groups == 0,
           o.path() << ".groups: " << a.groups << " must divide in_channels " << cin << " and out_channels " << cout);
  return std::make_shared<ConvTranspose2d>(cin, cout, k, a, o.boolean("bias", true), rng);
}

Tensor ConvTranspose2d::forward(const Tensor& x) {
  return conv_transpose2d(x, param("weight"), bias_ ? param("bias") : Tensor(), a_);
}

Shape ConvTranspose2d::output_shape(const Shape& in) const {
  const Tensor& w = param("weight");  // not named_parameters()[0]: that vector is a temporary
  const ConvDims d = conv_transpose2d_dims(in, w.shape(), nullptr, a_);
  return {d.N, d.C_in, d.H, d.W};
}

// ---- SeparableConv2d ----
ModulePtr SeparableConv2d::from(Options& o, const Shape& in, Rng& rng) {
  auto m = std::make_shared<SeparableConv2d>();
  const int64_t cin = infer_in_channels(o, in), mult = o.integer("multiplier", 1, 1, kMaxChannels);
  Conv2dOptions dw{.in_channels = cin, .out_channels = cin * mult};
  dw.kernel_size = o.pair("kernel_size", std::nullopt, 1);
  dw.stride = o.pair("stride", Pair{1, 1}, 1);
  dw.padding = o.pair("padding", Pair{0, 0}, 0);
  dw.dilation = o.pair("dilation", Pair{1, 1}, 1);
  dw.groups = cin;
  const bool bias = o.boolean("bias", true);
  dw.bias = bias;
  Conv2dOptions pw{.in_channels = cin * mult, .out_channels = o.integer("out_channels", std::nullopt, 1, kMaxChannels),
                   .kernel_size = {1, 1}, .bias = bias};
  m->dw_ = m->register_module("depthwise", std::make_shared<Conv2d>(dw, rng));
  m->pw_ = m->register_module("pointwise", std::make_shared<Conv2d>(pw, rng));
  return m;
}

Tensor SeparableConv2d::forward(const Tensor& x) {
  auto p = [](const std::shared_ptr<Conv2d>& c, const char* n) {
    for (auto& [k, t] : c->named_parameters())
      if (k == n) return t;
    return Tensor();
  };
  // The op takes the depthwise step's geometry with groups = 1 (it always groups by C_in itself); the
  // depthwise Conv2d's own options say groups = C_in, which the op refuses.
  Conv2dArgs a = dw_->options().args();
  a.groups = 1;
  return depthwise_separable_conv2d(x, p(dw_, "weight"), p(dw_, "bias"), p(pw_, "weight"), p(pw_, "bias"), a);
}

Shape SeparableConv2d::output_shape(const Shape& in) const { return pw_->output_shape(dw_->output_shape(in)); }

int64_t SeparableConv2d::dense_equivalent_parameters() const {
  const auto& d = dw_->options();
  const auto& p = pw_->options();
  return p.out_channels * d.in_channels * d.kernel_size[0] * d.kernel_size[1] + (p.bias ? p.out_channels : 0);
}

// ---- DeformConv2d ----
ModulePtr DeformConv2d::from(Options& o, const Shape& in, Rng& rng) {
  auto m = std::make_shared<DeformConv2d>();
  const int64_t cin = infer_in_channels(o, in), cout = o.integer("out_channels", std::nullopt, 1, kMaxChannels);
  const Pair k = o.pair("kernel_size", std::nullopt, 1);
  m->kH_ = k[0], m->kW_ = k[1];
  m->a_.stride = o.pair("stride", Pair{1, 1}, 1);
  m->a_.padding = o.pair("padding", Pair{0, 0}, 0);
  m->a_.dilation = o.pair("dilation", Pair{1, 1}, 1);
  const int64_t groups = o.integer("groups", 1, 1, kMaxChannels);
  m->offset_groups_ = o.integer("offset_groups", 1, 1, kMaxChannels);
  m->modulated_ = o.boolean("modulated", false);
  m->bias_ = o.boolean("bias", true);
  const float lr_mult = float(o.number("offset_lr_mult", 1.0));
  CL_CHECK(lr_mult >= 0, o.path() << ".offset_lr_mult: expected a non-negative number, got " << lr_mult);
  CL_CHECK(cin % groups == 0 && cout % groups == 0,
           o.path() << ".groups: " << groups << " must divide in_channels " << cin << " and out_channels " << cout);
  CL_CHECK(cin % m->offset_groups_ == 0,
           o.path() << ".offset_groups: " << m->offset_groups_ << " must divide in_channels " << cin);
  Tensor w = Tensor::empty({cout, cin / groups, k[0], k[1]});
  Tensor b = m->bias_ ? Tensor::empty({cout}) : Tensor();
  default_init(w, &b, rng);
  m->register_parameter("weight", w);
  if (m->bias_) m->register_parameter("bias", b);
  auto predictor = [&](int64_t channels) {
    Conv2dOptions c{.in_channels = cin, .out_channels = channels, .kernel_size = k, .stride = m->a_.stride,
                    .padding = m->a_.padding, .dilation = m->a_.dilation};
    auto conv = std::make_shared<Conv2d>(c, rng);
    for (auto& [n, t] : conv->named_parameters()) std::fill_n(t.data(), t.numel(), 0.f);
    return conv;
  };
  const int64_t taps = k[0] * k[1] * m->offset_groups_;
  m->offset_ = m->register_module("offset", predictor(2 * taps));
  if (m->modulated_) m->mask_ = m->register_module("mask", predictor(taps));
  m->offset_->scale_lr(lr_mult);
  if (m->mask_) m->mask_->scale_lr(lr_mult);
  return m;
}

Tensor DeformConv2d::forward(const Tensor& x) {
  Tensor off = offset_->forward(x);
  Tensor msk = modulated_ ? sigmoid(mask_->forward(x)) : Tensor();
  last_offset_ = off.detach();
  last_mask_ = msk.defined() ? msk.detach() : Tensor();
  return deform_conv2d(x, off, param("weight"), bias_ ? param("bias") : Tensor(), msk, a_);
}

Shape DeformConv2d::output_shape(const Shape& in) const {
  const Shape off = offset_->output_shape(in);
  const Shape msk = modulated_ ? mask_->output_shape(in) : Shape{};
  const Tensor& w = param("weight");  // not named_parameters()[0]: that vector is a temporary
  const DeformDims d = deform_conv2d_dims(in, w.shape(), &off, modulated_ ? &msk : nullptr, nullptr, a_);
  return {d.c.N, d.c.C_out, d.c.H_out, d.c.W_out};
}

// ---- Upsample / ResizeConv2d ----
UpsampleArgs Upsample::args_from(Options& o) {
  UpsampleArgs a;
  a.mode = upsample_mode(o.string("mode", "nearest", {"nearest", "bilinear"}));
  if (o.has("size")) a.size = o.pair("size", std::nullopt, 1);
  if (o.has("scale_factor")) {
    const double s = o.number("scale_factor", std::nullopt);
    CL_CHECK(s > 0, o.path() << ".scale_factor: expected a positive number, got " << s);
    a.scale = std::array<double, 2>{s, s};
  }
  CL_CHECK(a.size.has_value() != a.scale.has_value(), o.path() << ": give exactly one of size and scale_factor");
  a.align_corners = o.boolean("align_corners", false);
  return a;
}

Shape Upsample::output_shape(const Shape& in) const {
  const UpsampleDims d = upsample_dims(in, a_);
  return {d.N, d.C, d.H_out, d.W_out};
}

ModulePtr ResizeConv2d::from(Options& o, const Shape& in, Rng& rng) {
  auto m = std::make_shared<ResizeConv2d>();
  if (!o.has("scale_factor") && !o.has("size")) {  // default: x2
    m->up_.scale = std::array<double, 2>{2.0, 2.0};
    o.number("scale_factor", 2.0);  // recorded in effective(): leaving it out equals writing "scale_factor": 2
    m->up_.mode = upsample_mode(o.string("mode", "nearest", {"nearest", "bilinear"}));
    m->up_.align_corners = o.boolean("align_corners", false);
  } else {
    m->up_ = Upsample::args_from(o);
  }
  const UpsampleDims ud = upsample_dims(in, m->up_);
  const Shape up = {ud.N, ud.C, ud.H_out, ud.W_out};
  m->conv_ = m->register_module("conv", std::make_shared<Conv2d>(Conv2dOptions::from(o, up), rng));
  return m;
}

Shape ResizeConv2d::output_shape(const Shape& in) const {
  const UpsampleDims d = upsample_dims(in, up_);
  return conv_->output_shape({d.N, d.C, d.H_out, d.W_out});
}

// ---- pooling ----
Shape MaxPool2d::output_shape(const Shape& in) const {
  const PoolDims d = max_pool2d_dims(in, a_);
  return {d.N, d.C, d.H_out, d.W_out};
}

Shape AvgPool2d::output_shape(const Shape& in) const {
  const PoolDims d = avg_pool2d_dims(in, a_);
  return {d.N, d.C, d.H_out, d.W_out};
}

}  // namespace convlab

// layers/conv_layers.cpp: Conv2d and its options.
#include "layers/conv_layers.h"

#include <cmath>

#include "core/error.h"
#include "layers/registry.h"

namespace convlab {

void default_init(Tensor& weight, Tensor* bias, Rng& rng, int64_t fan_in_override) {
  kaiming_uniform(weight, rng, std::sqrt(5.f));
  if (bias && bias->defined()) {
    const int64_t fi = fan_in_override ? fan_in_override : fan_in(weight.shape());
    const float bound = fi > 0 ? 1.f / std::sqrt(static_cast<float>(fi)) : 0.f;
    fill_uniform(*bias, rng, -bound, bound);
  }
}

Conv2dOptions Conv2dOptions::from(Options& o, const Shape& in) {
  Conv2dOptions c;
  c.in_channels = infer_in_channels(o, in);
  c.out_channels = o.integer("out_channels", std::nullopt, 1, kMaxChannels);
  c.kernel_size = o.pair("kernel_size", std::nullopt, 1);
  c.stride = o.pair("stride", Pair{1, 1}, 1);
  c.dilation = o.pair("dilation", Pair{1, 1}, 1);
  c.groups = o.integer("groups", 1, 1, kMaxChannels);
  c.bias = o.boolean("bias", true);
  if (o.has("padding") && o.raw("padding").is_string()) {
    const std::string mode = o.string("padding", std::nullopt, {"same", "valid"});
    if (mode == "valid") {
      c.padding = {0, 0};
    } else {
      CL_CHECK(c.stride == Pair({1, 1}), o.path() << ".padding: 'same' needs stride 1, got stride ["
                                                  << c.stride[0] << "," << c.stride[1] << "]");
      for (int a = 0; a < 2; ++a) {
        const int64_t total = c.dilation[a] * (c.kernel_size[a] - 1);
        CL_CHECK(total % 2 == 0, o.path() << ".padding: 'same' needs an odd dilated kernel, got "
                                          << total + 1 << " (kernel " << c.kernel_size[a] << ", dilation "
                                          << c.dilation[a] << ")");
        c.padding[a] = total / 2;
      }
    }
    o.resolve("padding", c.padding);  // "same" and the number it means build the same layer
  } else {
    c.padding = o.pair("padding", Pair{0, 0}, 0);
  }
  CL_CHECK(c.in_channels % c.groups == 0 && c.out_channels % c.groups == 0,
           o.path() << ".groups: " << c.groups << " must divide in_channels " << c.in_channels
                    << " and out_channels " << c.out_channels);
  return c;
}

Conv2d::Conv2d(const Conv2dOptions& opt, Rng& rng) : opt_(opt) {
  Tensor w = Tensor::empty({opt.out_channels, opt.in_channels / opt.groups, opt.kernel_size[0], opt.kernel_size[1]});
  Tensor b = opt.bias ? Tensor::empty({opt.out_channels}) : Tensor();
  default_init(w, &b, rng);
  register_parameter("weight", w);
  if (opt.bias) register_parameter("bias", b);
}

Tensor Conv2d::forward(const Tensor& x) {
  return conv2d(x, param("weight"), opt_.bias ? param("bias") : Tensor(), opt_.args());
}

Shape Conv2d::output_shape(const Shape& in) const {
  const Shape w = {opt_.out_channels, opt_.in_channels / opt_.groups, opt_.kernel_size[0], opt_.kernel_size[1]};
  const ConvDims d = conv2d_dims(in, w, nullptr, opt_.args());
  return {d.N, d.C_out, d.H_out, d.W_out};
}

}  // namespace convlab

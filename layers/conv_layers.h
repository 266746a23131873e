// layers/conv_layers.h: one Module per conv type, with PyTorch's parameter names, layouts and default
// initialisation (weight kaiming_uniform(a=sqrt(5)), bias U(-1/sqrt(fan_in), 1/sqrt(fan_in))).
#pragma once
#include "core/random.h"
#include "layers/module.h"
#include "layers/options.h"

namespace convlab {

struct Conv2dOptions {
  int64_t in_channels = 0, out_channels = 0;
  Pair kernel_size{3, 3}, stride{1, 1}, padding{0, 0}, dilation{1, 1};
  int64_t groups = 1;
  bool bias = true;
  // Reads out_channels, kernel_size, stride, padding (an int, [h, w] or "same"), dilation, groups, bias.
  static Conv2dOptions from(Options& o, const Shape& in);
  Conv2dArgs args() const { return {stride, padding, dilation, groups}; }
};

class Conv2d : public Module {
 public:
  Conv2d(const Conv2dOptions& opt, Rng& rng);
  std::string type() const override { return "conv2d"; }
  Tensor forward(const Tensor& x) override;
  Shape output_shape(const Shape& in) const override;
  const Conv2dOptions& options() const { return opt_; }

 private:
  Conv2dOptions opt_;
};

// PyTorch's default init of a conv/linear weight and bias.
void default_init(Tensor& weight, Tensor* bias, Rng& rng, int64_t fan_in_override = 0);

}  // namespace convlab

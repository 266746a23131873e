// layers/family_layers.h: layers of the rest of the conv family and of resampling:
// ConvTranspose2d, SeparableConv2d, DeformConv2d (v1 / v2 with its own offset/mask predictor), Upsample,
// ResizeConv2d (upsample then conv2d), MaxPool2d, AvgPool2d. PyTorch / torchvision names and layouts.
#pragma once
#include "core/ops.h"
#include "core/random.h"
#include "layers/conv_layers.h"
#include "layers/module.h"
#include "layers/options.h"

namespace convlab {

// torch.nn.ConvTranspose2d: weight [C_in, C_out/groups, kH, kW], bias [C_out].
class ConvTranspose2d : public Module {
 public:
  ConvTranspose2d(int64_t in_channels, int64_t out_channels, Pair kernel, const ConvTranspose2dArgs& a, bool bias,
                  Rng& rng);
  static ModulePtr from(Options& o, const Shape& in, Rng& rng);
  std::string type() const override { return "conv_transpose2d"; }
  Tensor forward(const Tensor& x) override;
  Shape output_shape(const Shape& in) const override;

 private:
  ConvTranspose2dArgs a_;
  bool bias_;
};

// Depthwise (channel multiplier m) then pointwise 1x1: parameters depthwise.weight [C_in*m, 1, kH, kW],
// depthwise.bias, pointwise.weight [C_out, C_in*m, 1, 1], pointwise.bias (torch: two nn.Conv2d children).
class SeparableConv2d : public Module {
 public:
  static ModulePtr from(Options& o, const Shape& in, Rng& rng);
  std::string type() const override { return "separable_conv2d"; }
  Tensor forward(const Tensor& x) override;
  Shape output_shape(const Shape& in) const override;
  // Parameters of the dense conv2d with the same in/out channels and kernel that this layer replaces.
  int64_t dense_equivalent_parameters() const;

 private:
  std::shared_ptr<Conv2d> dw_, pw_;
};

// Deformable conv (torchvision.ops.DeformConv2d) that predicts its own offsets (and, for v2, mask logits)
// with a conv of the same kernel/stride/padding/dilation: children offset (and mask) with zero-initialised
// weights and biases, so at initialisation offsets are 0 and the mask is sigmoid(0) = 0.5: the layer starts
// as a plain conv (half-scaled for v2). `offset_lr_mult` scales the predictors' learning rate (v1 paper: beta).
class DeformConv2d : public Module {
 public:
  static ModulePtr from(Options& o, const Shape& in, Rng& rng);
  std::string type() const override { return "deform_conv2d"; }
  Tensor forward(const Tensor& x) override;
  Shape output_shape(const Shape& in) const override;
  // The offsets (and mask) of the last forward, for statistics and pictures.
  const Tensor& last_offset() const { return last_offset_; }
  const Tensor& last_mask() const { return last_mask_; }

 private:
  DeformConv2dArgs a_;
  bool bias_ = true, modulated_ = false;
  int64_t offset_groups_ = 1, kH_ = 3, kW_ = 3;
  std::shared_ptr<Conv2d> offset_, mask_;
  Tensor last_offset_, last_mask_;
};

class Upsample : public Module {
 public:
  explicit Upsample(const UpsampleArgs& a) : a_(a) {}
  static UpsampleArgs args_from(Options& o);
  std::string type() const override { return "upsample"; }
  Tensor forward(const Tensor& x) override { return upsample(x, a_); }
  Shape output_shape(const Shape& in) const override;

 private:
  UpsampleArgs a_;
};

// Resize-conv (Odena et al. 2016): upsample (nearest by default) then a conv2d: every output pixel gets the
// same number of kernel taps, so no checkerboard. Children: conv (weight, bias).
class ResizeConv2d : public Module {
 public:
  static ModulePtr from(Options& o, const Shape& in, Rng& rng);
  std::string type() const override { return "resize_conv2d"; }
  Tensor forward(const Tensor& x) override { return conv_->forward(upsample(x, up_)); }
  Shape output_shape(const Shape& in) const override;

 private:
  UpsampleArgs up_;
  std::shared_ptr<Conv2d> conv_;
};

class MaxPool2d : public Module {
 public:
  explicit MaxPool2d(const MaxPool2dArgs& a) : a_(a) {}
  std::string type() const override { return "max_pool2d"; }
  Tensor forward(const Tensor& x) override { return max_pool2d(x, a_); }
  Shape output_shape(const Shape& in) const override;

 private:
  MaxPool2dArgs a_;
};

class AvgPool2d : public Module {
 public:
  explicit AvgPool2d(const AvgPool2dArgs& a) : a_(a) {}
  std::string type() const override { return "avg_pool2d"; }
  Tensor forward(const Tensor& x) override { return avg_pool2d(x, a_); }
  Shape output_shape(const Shape& in) const override;

 private:
  AvgPool2dArgs a_;
};

}  // namespace convlab

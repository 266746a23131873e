// layers/basic_layers.cpp: see basic_layers.h.
#include "layers/basic_layers.h"

#include <cmath>

#include "core/error.h"
#include "layers/conv_layers.h"

namespace convlab {

BatchNorm2d::BatchNorm2d(const BatchNorm2dOptions& opt) : opt_(opt) {
  const int64_t C = opt.num_features;
  if (opt.affine) {
    register_parameter("weight", Tensor::ones({C}));
    register_parameter("bias", Tensor::zeros({C}));
  }
  if (opt.track_running_stats) {
    register_buffer("running_mean", Tensor::zeros({C}));
    register_buffer("running_var", Tensor::ones({C}));
    register_buffer("num_batches_tracked", Tensor::zeros({}));  // PyTorch: int64 [] (written as I64)
  }
}

Tensor BatchNorm2d::forward(const Tensor& x) {
  Tensor w = opt_.affine ? param("weight") : Tensor(), b = opt_.affine ? param("bias") : Tensor();
  Tensor rm = opt_.track_running_stats ? buffer("running_mean") : Tensor();
  Tensor rv = opt_.track_running_stats ? buffer("running_var") : Tensor();
  if (training() && opt_.track_running_stats) buffer("num_batches_tracked").data()[0] += 1.f;
  return batch_norm2d(x, w, b, rm, rv, training() || !opt_.track_running_stats, float(opt_.momentum),
                      float(opt_.eps));
}

Shape BatchNorm2d::output_shape(const Shape& in) const {
  CL_CHECK((in.size() == 4 || in.size() == 2) && in[1] == opt_.num_features,
           "batch_norm2d: num_features " << opt_.num_features << " expects input [N," << opt_.num_features
                                         << ",H,W], got input " << shape_str(in));
  return in;
}

Linear::Linear(int64_t in_features, int64_t out_features, bool bias, Rng& rng)
    : in_(in_features), out_(out_features), bias_(bias) {
  Tensor w = Tensor::empty({out_features, in_features});
  Tensor b = bias ? Tensor::empty({out_features}) : Tensor();
  default_init(w, &b, rng);
  register_parameter("weight", w);
  if (bias) register_parameter("bias", b);
}

Tensor Linear::forward(const Tensor& x) { return linear(x, param("weight"), bias_ ? param("bias") : Tensor()); }

Shape Linear::output_shape(const Shape& in) const {
  CL_CHECK(in.size() == 2 && in[1] == in_, "linear: weight [" << out_ << "," << in_ << "] expects input [N," << in_
                                                              << "], got input " << shape_str(in));
  return {in[0], out_};
}

Shape Flatten::output_shape(const Shape& in) const {
  CL_CHECK(in.size() >= 2, "flatten: expects input [N, ...], got input " << shape_str(in));
  int64_t f = 1;
  for (size_t i = 1; i < in.size(); ++i) f *= in[i];
  return {in[0], f};
}

}  // namespace convlab

// layers/registry.cpp: the table of layer types a config can name. Adding a layer: define its Module and
// options next to each other (layers/*.h), then add one row here.
#include "layers/registry.h"

#include "core/error.h"
#include "layers/basic_layers.h"
#include "layers/conv_layers.h"
#include "layers/family_layers.h"

namespace convlab {

int64_t infer_in_channels(Options& o, const Shape& in) {
  CL_CHECK(in.size() >= 2, o.path() << ": expects an input [N, C, ...], got input " << shape_str(in));
  if (o.has("in_channels")) {
    const int64_t c = o.integer("in_channels", std::nullopt, 1, kMaxChannels);
    CL_CHECK(c == in[1], o.path() << ".in_channels: " << c << " does not match the previous layer's output "
                                  << shape_str(in) << " (" << in[1] << " channels)");
  }
  return in[1];
}

namespace {

ModulePtr activation(const std::string& name, std::function<Tensor(const Tensor&)> f) {
  return std::make_shared<Activation>(name, std::move(f));
}

}  // namespace

const std::vector<LayerType>& layer_types() {
  static const std::vector<LayerType> types = {
      {"conv2d", "torch.nn.Conv2d (dilated, grouped, depthwise via groups)",
       [](Options& o, const Shape& in, Rng& rng) -> ModulePtr {
         return std::make_shared<Conv2d>(Conv2dOptions::from(o, in), rng);
       }},
      {"conv_transpose2d", "torch.nn.ConvTranspose2d (stride, padding, output_padding, dilation, groups)",
       ConvTranspose2d::from},
      {"separable_conv2d", "depthwise (multiplier) + pointwise 1x1 conv",
       SeparableConv2d::from},
      {"deform_conv2d", "torchvision DeformConv2d with its own offset (and v2 mask) predictor",
       DeformConv2d::from},
      {"resize_conv2d", "upsample (nearest x2 by default) then conv2d: no checkerboard",
       ResizeConv2d::from},
      {"upsample", "torch.nn.Upsample (nearest, bilinear; size or scale_factor; align_corners)",
       [](Options& o, const Shape&, Rng&) -> ModulePtr { return std::make_shared<Upsample>(Upsample::args_from(o)); }},
      {"max_pool2d", "torch.nn.MaxPool2d",
       [](Options& o, const Shape&, Rng&) -> ModulePtr {
         MaxPool2dArgs a;
         a.kernel_size = o.pair("kernel_size", std::nullopt, 1);
         a.stride = o.pair("stride", a.kernel_size, 1);  // torch's default; recorded, so leaving it out == writing it
         a.padding = o.pair("padding", Pair{0, 0}, 0);
         a.dilation = o.pair("dilation", Pair{1, 1}, 1);
         a.ceil_mode = o.boolean("ceil_mode", false);
         return std::make_shared<MaxPool2d>(a);
       }},
      {"avg_pool2d", "torch.nn.AvgPool2d",
       [](Options& o, const Shape&, Rng&) -> ModulePtr {
         AvgPool2dArgs a;
         a.kernel_size = o.pair("kernel_size", std::nullopt, 1);
         a.stride = o.pair("stride", a.kernel_size, 1);  // torch's default; recorded, so leaving it out == writing it
         a.padding = o.pair("padding", Pair{0, 0}, 0);
         a.ceil_mode = o.boolean("ceil_mode", false);
         a.count_include_pad = o.boolean("count_include_pad", true);
         return std::make_shared<AvgPool2d>(a);
       }},
      {"batch_norm2d", "torch.nn.BatchNorm2d",
       [](Options& o, const Shape& in, Rng&) -> ModulePtr {
         BatchNorm2dOptions b;
         b.num_features = infer_in_channels(o, in);
         if (o.has("num_features")) b.num_features = o.integer("num_features", std::nullopt, 1, kMaxChannels);
         b.eps = o.number("eps", 1e-5);
         b.momentum = o.number("momentum", 0.1);
         b.affine = o.boolean("affine", true);
         b.track_running_stats = o.boolean("track_running_stats", true);
         return std::make_shared<BatchNorm2d>(b);
       }},
      {"relu", "torch.nn.ReLU", [](Options&, const Shape&, Rng&) { return activation("relu", relu); }},
      {"leaky_relu", "torch.nn.LeakyReLU(negative_slope=0.01)",
       [](Options& o, const Shape&, Rng&) {
         const float s = float(o.number("negative_slope", 0.01));
         return activation("leaky_relu", [s](const Tensor& x) { return leaky_relu(x, s); });
       }},
      {"tanh", "torch.nn.Tanh", [](Options&, const Shape&, Rng&) { return activation("tanh", tanh); }},
      {"sigmoid", "torch.nn.Sigmoid", [](Options&, const Shape&, Rng&) { return activation("sigmoid", sigmoid); }},
      {"identity", "torch.nn.Identity",
       [](Options&, const Shape&, Rng&) { return activation("identity", [](const Tensor& x) { return x; }); }},
      {"flatten", "torch.nn.Flatten (from dim 1)",
       [](Options&, const Shape&, Rng&) -> ModulePtr { return std::make_shared<Flatten>(); }},
      {"linear", "torch.nn.Linear (in_features inferred)",
       [](Options& o, const Shape& in, Rng& rng) -> ModulePtr {
         CL_CHECK(in.size() == 2, o.path() << ": linear expects a flat input [N, features], got input "
                                           << shape_str(in) << " (add a flatten layer before it)");
         if (o.has("in_features")) {
           const int64_t f = o.integer("in_features", std::nullopt, 1, kMaxChannels);
           CL_CHECK(f == in[1], o.path() << ".in_features: " << f << " does not match the input " << shape_str(in));
         }
         return std::make_shared<Linear>(in[1], o.integer("out_features", std::nullopt, 1, kMaxChannels), o.boolean("bias", true),
                                         rng);
       }},
      {"dropout", "torch.nn.Dropout(p=0.5)",
       [](Options& o, const Shape&, Rng& rng) -> ModulePtr {
         const double p = o.number("p", 0.5);
         CL_CHECK(p >= 0 && p < 1, o.path() << ".p: expected a probability in [0, 1), got " << p);
         return std::make_shared<Dropout>(float(p), rng.next_u64());
       }},
  };
  return types;
}

const LayerType* find_layer_type(const std::string& name) {
  for (const LayerType& t : layer_types())
    if (t.name == name) return &t;
  return nullptr;
}

}  // namespace convlab

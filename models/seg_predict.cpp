// models/seg_predict.cpp: see seg_predict.h.
#include "models/seg_predict.h"

#include <cmath>

#include "core/tensor.h"
#include "core/error.h"
#include "data/picture.h"

namespace convlab {

SegPrediction predict_image(Module& model, const RgbImage& rgb, const std::string& source) {
  Tensor x = Tensor::empty({1, 3, rgb.H, rgb.W});
  for (int64_t c = 0; c < 3; ++c)
    for (int64_t y = 0; y < rgb.H; ++y)
      for (int64_t xx = 0; xx < rgb.W; ++xx) x.data()[(c * rgb.H + y) * rgb.W + xx] = rgb.at(y, xx)[c] / 255.f;
  NoGradGuard ng;
  model.eval();
  Tensor logits;
  try {
    logits = model.forward(x);
  } catch (const Error& e) {
    CL_FAIL("predict: the network cannot take " << source << " (" << rgb.W << "x" << rgb.H << "): " << e.what());
  }
  CL_CHECK(logits.dim() == 4 && logits.size(0) == 1 && logits.size(2) == rgb.H && logits.size(3) == rgb.W,
           "predict: the network maps " << source << " (" << rgb.W << "x" << rgb.H << ") to "
                                        << shape_str(logits.shape()) << ", not one logit per class and pixel");
  SegPrediction p;
  p.classes = logits.size(1), p.H = rgb.H, p.W = rgb.W;
  const int64_t HW = p.H * p.W, C = p.classes;
  const float* l = logits.data();
  p.probabilities.resize(static_cast<size_t>(C * HW));
  p.labels.resize(static_cast<size_t>(HW));
  for (int64_t i = 0; i < HW; ++i) {
    int32_t best = 0;
    for (int64_t c = 1; c < C; ++c)
      if (l[c * HW + i] > l[best * HW + i]) best = int32_t(c);
    p.labels[i] = best;
    const float m = l[best * HW + i];
    double sum = 0;
    for (int64_t c = 0; c < C; ++c) sum += std::exp(double(l[c * HW + i]) - m);
    for (int64_t c = 0; c < C; ++c) p.probabilities[c * HW + i] = float(std::exp(double(l[c * HW + i]) - m) / sum);
  }
  return p;
}

RgbImage class_map_picture(const SegPrediction& p, const std::vector<std::string>& class_names, bool legend) {
  CL_CHECK(int64_t(p.labels.size()) == p.H * p.W, "predict: " << p.labels.size() << " labels for a " << p.W << "x" << p.H << " image");
  const RgbImage map = labels_to_rgb(p.labels.data(), p.H, p.W);
  if (!legend) return map;
  CL_CHECK(int64_t(class_names.size()) == p.classes,
           "predict: " << class_names.size() << " class names for a network of " << p.classes << " classes");
  return add_legend(map, class_legend(class_names), text_scale_for(map.W));
}

}  // namespace convlab

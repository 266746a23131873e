// models/seg_predict.h: a trained segmentation network applied to one image: per-class probabilities
// (softmax of the logits) and the class map (argmax), as `convlab predict` writes them.
//
// The image is fed as the datasets feed training ([1, 3, H, W], RGB in [0, 1]) through the network in eval
// mode (BatchNorm uses its running statistics). Any size the network accepts is predicted; the training size
// is not required (predict warns when it differs, see tools/lib/predict.cpp).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "data/png.h"
#include "layers/module.h"

namespace convlab {

struct SegPrediction {
  int64_t classes = 0, H = 0, W = 0;
  std::vector<float> probabilities;  // [classes, H, W], each pixel sums to 1
  std::vector<int32_t> labels;       // [H, W], the most probable class (the lowest id on a tie)
};

// The class map of a prediction in palette colours (labels_to_rgb), with its legend strip below it: each class's
// colour and name (`class_names`, one per class; SegTask::class_names) unless `legend` is false.
RgbImage class_map_picture(const SegPrediction& p, const std::vector<std::string>& class_names, bool legend = true);

// `source` names the image in errors ("predict: the network cannot take photo.png (100x80): ...").
SegPrediction predict_image(Module& model, const RgbImage& image, const std::string& source);

}  // namespace convlab

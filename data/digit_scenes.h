// data/digit_scenes.h: "digit scenes", a segmentation set built from real MNIST digits (data/mnist.h).
//
// Each sample is a textured background (as in the shapes set) with 1-4 digits of one MNIST split, each
// scaled by a log-uniform factor in [0.5, 2] (a 14-56 px box), placed wholly inside the canvas, drawn in
// a random colour with the digit's own grey levels as opacity. Label = digit + 1 on stroke pixels (scaled
// intensity >= 0.5), 0 elsewhere: 11 classes "background", "0" ... "9". A digit whose strokes would cover
// more than `max_overlap` of earlier strokes is re-placed (8 tries) or left out (the first always stays).
// Telling a 6 from a 0 or a 9 takes the whole digit, so large digits need a large receptive field.
//
// Size buckets by scale s (the digit box is 28 s px): small s < 0.8 (box < 22 px), medium s < 1.3
// (box < 36 px), large otherwise; roughly a third of the digits each. No "thin" bucket.
// Bilinear scaling samples the 28x28 digit at ((y + 0.5) / s - 0.5, (x + 0.5) / s - 0.5) (PyTorch's
// align_corners=False convention), zero outside.
#pragma once
#include <memory>

#include "data/dataset.h"
#include "data/mnist.h"

namespace convlab {

struct DigitScenesOptions {
  int64_t image_size = 64;   // H = W; scales are capped so the digit box fits
  uint64_t seed = 0;
  int64_t size = 10000;
  MnistSplit split = MnistSplit::kTrain;  // the digits drawn; use kTest (and another seed) for validation
  int64_t min_digits = 1, max_digits = 4;
  float min_scale = 0.5f, max_scale = 2.f;  // log-uniform
  float max_overlap = 0.1f;  // max share of a digit's stroke pixels already covered by earlier strokes
};

class DigitScenes : public SegDataset {
 public:
  DigitScenes(std::shared_ptr<const Mnist> mnist, DigitScenesOptions opt = {});
  int64_t size() const override { return opt_.size; }
  SegSample get(int64_t i) const override;
  int64_t num_classes() const override { return 11; }
  std::vector<std::string> class_names() const override;
  const DigitScenesOptions& options() const { return opt_; }

 private:
  std::shared_ptr<const Mnist> mnist_;
  DigitScenesOptions opt_;
  std::vector<int64_t> pool_;  // indices of the split's digits
};

}  // namespace convlab

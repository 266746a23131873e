// examples/input_gradient.cpp: a C++ program using the installed convlab package (find_package(convlab)).
// It loads a segmentation config and a checkpoint, runs one image of the embedded shapes set forward with
// autograd, and back-propagates from the logits of the centre pixel to get d out / d input: the idea of the
// effective receptive field (Luo et al. 2016; `convlab erf` is the full tool). The pixels with a non-zero
// gradient lie inside the theoretical receptive field, which the library computes from the config.
//   usage: input_gradient CONFIG CHECKPOINT
#include <algorithm>
#include <cmath>
#include <iostream>

#include "core/error.h"
#include "data/safetensors.h"
#include "data/shapes.h"
#include "models/config.h"
#include "models/receptive_field.h"
#include "models/seg_task.h"

using namespace convlab;

int main(int argc, char** argv) {
  if (argc != 3) {
    std::cerr << "usage: input_gradient CONFIG CHECKPOINT\n";
    return 2;
  }
  try {
    const nlohmann::json config = load_config(argv[1]);
    SegTask task = make_seg_task(config, /*with_data=*/false);  // the network of the config, initialised
    safetensors::copy_into(safetensors::load(argv[2]), task.model->state_dict(), argv[2]);  // then the weights
    task.model->eval();                                                     // batch norm with running statistics

    const SegSample sample = ShapesDataset(ShapesOptions{.image_size = 64, .seed = 1}).get(0);
    Tensor x = reshape(sample.image, {1, 3, sample.H, sample.W}).detach().set_requires_grad();
    const Tensor logits = task.model->forward(x);  // [1, classes, H, W]
    const int64_t C = logits.size(1), H = logits.size(2), W = logits.size(3), cy = H / 2, cx = W / 2;
    Tensor pick = Tensor::zeros(logits.shape());  // d(sum of the centre pixel's logits) / d logits
    for (int64_t c = 0; c < C; ++c) pick.data()[(c * H + cy) * W + cx] = 1.f;
    logits.backward(pick);

    const Tensor g = x.grad();  // [1, 3, H, W]
    int64_t y0 = H, y1 = -1, x0 = W, x1 = -1, nonzero = 0;
    for (int64_t y = 0; y < H; ++y)
      for (int64_t xx = 0; xx < W; ++xx) {
        double s = 0;
        for (int64_t c = 0; c < 3; ++c) s += std::abs(g.data()[(c * H + y) * W + xx]);
        if (s == 0) continue;
        ++nonzero, y0 = std::min(y0, y), y1 = std::max(y1, y), x0 = std::min(x0, xx), x1 = std::max(x1, xx);
      }
    const RfAnalysis rf = analyse_stack(rf_model(config).layers, {.input_size = {H, W}, .pixel = Pair{cy, cx}});
    std::cout << "pixel " << cy << "," << cx << " of a " << H << "x" << W << " image\n"
              << "gradient box " << (y1 - y0 + 1) << "x" << (x1 - x0 + 1) << " at " << y0 << "," << x0 << "\n"
              << "receptive field box " << rf.coverage.H << "x" << rf.coverage.W << " at " << rf.coverage.y0 << ","
              << rf.coverage.x0 << "\n"
              << "pixels with a non-zero gradient " << nonzero << ", reached by the receptive field " << rf.reached
              << "\n";
  } catch (const Error& e) {
    std::cerr << "input_gradient: " << e.what() << "\n";
    return 2;
  }
  return 0;
}

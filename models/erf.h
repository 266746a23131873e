// models/erf.h: the effective receptive field (Luo et al. 2016, "Understanding the Effective Receptive Field
// in Deep Convolutional Neural Networks"), measured by backpropagation (no CLI here; `convlab erf` in
// models/study/study_erf.cpp reports it, `convlab compare` draws one per variant).
//
// What is measured. For each sample image x, the gradient g = d(sum_c out[c, y, x]) / d h, where h is the
// tensor the ERF is measured at (the model input, or the input of model.layers[K]) and (y, x) the output
// pixel: the upstream gradient is a one-hot at (y, x) in EVERY output channel (Luo's choice: "the gradient
// signal is 1 at the centre of the output plane and 0 everywhere else"), so one backward pass per batch
// suffices. map[i, j] = mean over samples and channels of h of |g[., i, j]|, normalised to sum 1.
//  - BatchNorm is measured in eval mode (running statistics: a per-channel affine map) and dropout is off:
//    in train mode BN's backward couples every pixel of the batch through the batch statistics, which
//    would put gradient on pixels that no path reaches. The model's train/eval flag is restored afterwards
//    (as one flag on the whole tree, like Module::train()). A BN layer with track_running_stats=false
//    still normalises with its batch statistics; its ERF covers the whole image, as it does in PyTorch.
//  - Parameters are switched to requires_grad=false while measuring (restored afterwards): no weight
//    gradient is computed or accumulated.
//  - Holes are EXACT zeros. Every backward closure on the path (conv col2im, BN affine, ReLU mask) maps a
//    zero upstream gradient to an exact zero, so a pixel that no path reaches gets 0.0, not a small number.
//    A reachable pixel is exactly 0 only if every path to it is cut by a dead ReLU in every sample.
//  - Radii r50 / r95 are Chebyshev (square) radii around the output pixel's position in the measured
//    tensor: the smallest max(|dy|, |dx|) such that the pixels within it hold >= 50% / 95% of the mass. A
//    square matches the square theoretical RF box, whose radius is (rf - 1) / 2. When the measured tensor
//    and the output have the same size the position is (y, x); otherwise it is scaled, ((y + .5) * Hm /
//    Ho - .5), and radii can be halves.
//  - The theoretical RF box comes from models/receptive_field.h when ErfOptions::config is given: the
//    coverage map of the measured sub-stack at the real sizes (its window is the bounding box of the
//    pixels some path reaches, cut by the image border). Without a config the box is the bounding box of
//    the measured non-zero support (it then cannot miss a hole inside it, but cannot see past dead paths).
#pragma once
#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/ops.h"
#include "data/png.h"
#include "layers/module.h"
#include "models/receptive_field.h"

namespace convlab {

struct ErfOptions {
  int64_t samples = 32;          // input images averaged over (in batches of input_shape[0])
  uint64_t seed = 0;             // of the N(0,1) inputs
  // -1: measure at the model input; K: at the input of model.layers[K] (the first K entries run forward
  // without gradient). K counts config entries when `config` is given (an entry with "repeat": N is one
  // entry, as in `convlab rf --from-layer`), else the model's top-level children (the same without repeat).
  int64_t from_layer = -1;
  std::vector<int64_t> pixel{};  // output pixel (y, x); default the centre (H_out / 2, W_out / 2)
  // Optional real inputs at the model input [M, C, H, W] (e.g. validation images); sample i is image
  // i % M. Undefined: i.i.d. N(0, 1) images (Luo's setting for untrained networks).
  Tensor images{};
  // Optional resolved config whose model.layers built `model`: gives the theoretical RF box and coverage
  // holes (receptive_field.h) and counts from_layer in config entries. Null: box from the measured support.
  nlohmann::json config{};
};

struct ErfResult {
  Tensor map;                  // [Hm, Wm] mean over samples and channels of |d out[pixel] / d h|, sums to 1
  double r50 = 0, r95 = 0;     // Chebyshev radius holding 50% / 95% of the mass (see the header comment)
  int64_t zero_pixels = 0;     // pixels inside the RF box whose gradient is exactly 0 (gridding holes)
  int64_t rf_pixels = 0;       // pixels in that box
  Shape measured_at;           // shape of the tensor the gradient was taken at ([B, C, Hm, Wm] of one batch)
  // Details.
  Shape output_shape;                  // the model's output for one batch
  std::array<int64_t, 2> pixel{0, 0};  // the output pixel used
  std::array<double, 2> centre{0, 0};  // its position in the measured tensor (radii are measured from it)
  std::array<int64_t, 4> box{0, 0, 0, 0};  // RF box in measured coordinates: y0, x0, H, W (inside the image)
  bool box_theoretical = false;        // box from receptive_field.h (config given) or from the support
  std::array<double, 2> rf{0, 0};      // theoretical rf per axis (config given), else the box size
  int64_t support_pixels = 0;          // pixels with non-zero gradient (whole map)
  int64_t coverage_holes = -1;         // holes of the exact coverage map (config given), else -1
  int64_t hole_mismatches = -1;        // box pixels where (gradient == 0) != (no path), config given
  int64_t samples = 0;
  std::string measured_path;           // "model input" or "model.layers[K] input"
  double rf_radius() const { return (std::max(rf[0], rf[1]) - 1) / 2; }
  double hole_share() const { return rf_pixels ? double(zero_pixels) / double(rf_pixels) : 0.0; }
  nlohmann::json to_json() const;  // every field; the map as a list of rows
};

// `model`: as built by build_layers (a Sequential; a non-Sequential is measured whole, from_layer must be
// -1). input_shape: [B, C, H, W] of one batch at the model input. Throws convlab::Error (prefix "erf:") on
// samples < 1, from_layer out of range, a pixel outside the output, a non-4-D output, or images whose
// [C, H, W] differ from input_shape.
ErfResult compute_erf(Module& model, const Shape& input_shape, const ErfOptions& o);

// The central part of the map as text: up to `max_side` pixels per side around the centre (the whole RF
// box when it fits). '.' exact zero inside the RF box (a hole), ' ' exact zero outside it, else a digit
// 9 + floor(2 log10(v / max)), clamped to 0..9: each digit is half a decade below the maximum.
std::string erf_ascii(const ErfResult& r, int64_t max_side = 35);

// Log-scale heatmap, `scale` px per pixel: colour by log10(v / max) over 5 decades (dark blue .. yellow),
// exact zeros inside the RF box red (holes), exact zeros outside it black. margin < 0: the whole map;
// margin >= 0: only the RF box grown by `margin` pixels on each side (cut by the map's border).
RgbImage erf_image(const ErfResult& r, int scale = 4, int64_t margin = -1);
// erf_image under a title line and over its colour bar (data/picture.h): the bar runs over the 5 decades drawn,
// labelled with their values (max * 1e-5 and max), and keys red (exact zero inside the rf box) and black
// (zero outside it). An empty title: "ERF at <measured_path>, log scale".
RgbImage erf_picture(const ErfResult& r, const std::string& title = "", int scale = 4, int64_t margin = -1);
void write_erf_png(const ErfResult& r, const std::string& path, const std::string& title = "", int scale = 4,
                   int64_t margin = -1);

}  // namespace convlab

// models/receptive_field.h: receptive fields, coverage maps and the HDC rule, computed exactly (no CLI here;
// `convlab rf` in models/study/study_rf.cpp reports them).
//
// A network is seen as a list of spatial layers (RfLayer). Every layer is separable per axis: output index o
// of an axis reads a fixed set of input indices of that axis (conv: o*s - p + j*d, j < k; transposed conv:
// every i with i*s - p + j*d = o; nearest / bilinear upsampling: the source pixels with non-zero weight),
// and the 2-D connection pattern is the product of the two axes' patterns.
//  - Theoretical receptive field per layer (rf, jump, start), stride-, dilation- and upsampling-aware:
//      conv / pool:  rf += (d(k-1)) * jump,  start += (d(k-1)/2 - p) * jump,  jump *= s
//      transposed:   rf += (largest index spread an output pixel reads) * jump, start += (p - d(k-1)/2)/s * jump,
//                    jump /= s        (the spread is taken over the s output phases: some read fewer taps)
//      upsample:     jump *= in/out; bilinear reads 2 neighbours (rf += jump), nearest 1.
//    rf: input pixels spanned by one output pixel; jump: input pixels between adjacent outputs; start:
//    centre of output pixel 0's window in input pixel coordinates (pixel centres at 0, 1, ...).
//  - Coverage map of one output pixel: how many distinct paths connect it to each input pixel, i.e. the
//    input gradient of that output when every weight is 1 (all-ones kernels; pools and upsampling count
//    one path per tap with non-zero weight). Computed by pulling a one-hot back through the layers, one axis
//    at a time; a residual block adds its input's map to its body's. Exact while counts stay below 2^53.
//    "Holes" are input pixels inside the bounding box of the reached pixels that no path reaches (gridding).
//  - Bounded analysis: the real feature-map sizes (padding reads zeros, taps outside the image are dropped).
//    Unbounded (input size -1): an infinite lattice, no border at all.
//  - HDC (Wang et al. 2017, "Understanding Convolution for Semantic Segmentation"): for N layers of kernel
//    K and dilations r_1..r_n, M_n = r_n, M_i = max[M_{i+1} - 2 r_i, M_{i+1} - 2 (M_{i+1} - r_i), r_i];
//    the design goal is M_2 <= K, plus "the rates of a group have no common factor > 1". The formula
//    alone misses gridding ([2,2,2] gives M_2 = 2 <= 3 yet reads one pixel in four) and is not necessary
//    either ([1,2,5,1,2,5] as one sequence gives M_2 = 5 with no holes): the coverage map is the ground truth.
#pragma once
#include <array>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/conv.h"

namespace convlab {

enum class RfKind { conv, pool, transposed, nearest, bilinear, residual };

struct RfLayer {
  std::string type{};  // config type name: "conv2d", "max_pool2d", "conv_transpose2d", "upsample", ...
  std::string path{};  // "model.layers[3]" (config) or "layer 2" (schedule)
  int64_t top = -1;  // index in model.layers (or in the schedule): what --from-layer counts
  RfKind kind = RfKind::conv;
  Pair kernel{1, 1}, stride{1, 1}, padding{0, 0}, dilation{1, 1}, output_padding{0, 0};
  bool ceil_mode = false;                            // pools: only changes the output size
  std::optional<std::array<double, 2>> scale{};      // upsample: scale_factor, or
  std::optional<Pair> size{};                        //           an explicit output size
  bool align_corners = false;                        // bilinear
  std::vector<RfLayer> body{};                       // residual: y = x + body(x)
};

// ---- one layer, one axis (ax 0 = height, 1 = width) ----
// Output size for input size `in` (both axes), through the core ops' own shape checks (errors name the path).
Pair rf_output_size(const RfLayer& l, Pair in);
// Appends the input indices read by output index o. Bounded: in/out are the axis sizes and only indices
// in [0, in) are kept; unbounded: in = out = -1.
void rf_sources(const RfLayer& l, int ax, int64_t o, int64_t in, int64_t out, std::vector<int64_t>& src);

// ---- a stack ----
struct RfRow {  // the state after one layer (residual bodies contribute their own rows)
  std::string path, type;
  Pair kernel{1, 1}, stride{1, 1}, padding{0, 0}, dilation{1, 1};
  Pair size_out{-1, -1};  // -1: unbounded analysis
  std::array<double, 2> rf{1, 1}, jump{1, 1}, start{0, 0};
};

struct CoverageMap {  // paths from one output pixel to the input pixels of a window
  int64_t y0 = 0, x0 = 0, H = 0, W = 0;  // window [y0, y0+H) x [x0, x0+W) in input pixel coordinates
  std::vector<double> count;             // [H, W]
  double at(int64_t y, int64_t x) const { return count[static_cast<size_t>(y * W + x)]; }
};

struct RfOptions {
  Pair input_size{-1, -1};    // -1: unbounded lattice
  std::optional<Pair> pixel{};  // output pixel; default: the output's centre (bounded) or (0, 0)
};

struct RfAnalysis {
  std::vector<RfRow> rows;
  Pair input_size{-1, -1}, output_size{-1, -1}, pixel{0, 0};
  CoverageMap coverage;    // cropped to the bounding box of the reached pixels
  int64_t reached = 0;     // input pixels with at least one path
  int64_t holes = 0;       // pixels of the bounding box that no path reaches
  double hole_share = 0;   // holes / (H * W)
  double max_count = 0;
  bool exact = true;       // every count below 2^53
};

RfAnalysis analyse_stack(const std::vector<RfLayer>& layers, const RfOptions& opt = {});
// Input size of every layer and, last, the output size (bounded only).
std::vector<Pair> rf_sizes(const std::vector<RfLayer>& layers, Pair in);

// ---- HDC ----
struct HdcVerdict {
  int64_t kernel = 3;
  std::vector<int64_t> rates;
  std::vector<int64_t> M;          // M_1 .. M_n (M[i-1] is the paper's M_i)
  bool formula_applies = false;    // n >= 2 and one square kernel size
  int64_t M2 = 0;
  bool formula_ok = false;         // M_2 <= K
  int64_t common_factor = 1;       // gcd of the rates
  std::vector<std::string> fails;  // one sentence per failed condition; empty: satisfied
  bool ok() const { return fails.empty(); }
};
// kernel <= 0 means the kernel sizes differ (formula not applicable).
HdcVerdict hdc_check(int64_t kernel, const std::vector<int64_t>& rates);

// ---- schedules and configs ----
// `convlab rf --kernel 3 --dilations 1,2,5 [--strides ...]`: kernels and strides hold one value for every
// layer or one per layer; padding d(k-1)/2 ("same" for odd kernels). Refuses k < 1, d < 1, s < 1.
std::vector<RfLayer> rf_schedule(const std::vector<int64_t>& kernels, const std::vector<int64_t>& dilations,
                                 const std::vector<int64_t>& strides);

struct RfModel {
  std::vector<RfLayer> layers;  // spatial layers in order (sequential blocks inlined, repeats expanded)
  Pair input_size{64, 64};      // data.image_size
  std::string stopped;          // set when a flatten / linear layer ended the spatial part
};
// Walks model.layers of a (resolved) config. Non-spatial layers (batch norm, activations, dropout,
// identity) are skipped; deform_conv2d and separable_conv2d count as their base conv; resize_conv2d as
// its upsample then its conv.
RfModel rf_model(const nlohmann::json& config);

// A maximal run of stride-1 convs with kernel > 1 (1x1 convs and non-spatial layers do not break it)
// that contains a dilated layer. Indices into the flat layer list; end is one past the last conv.
struct DilatedRun {
  size_t begin = 0, first_dilated = 0, end = 0;
  int64_t kernel = 0;  // the square kernel size shared by the run, 0 if they differ
};
std::vector<DilatedRun> dilated_runs(const std::vector<RfLayer>& layers);
// HDC on the dilations of layers [from, end) of a run; when those rates repeat a group of length >= 2
// (1,2,5,1,2,5), `group` holds the verdict on one group, as the paper applies the rule.
struct RunHdc {
  HdcVerdict sequence;
  std::optional<HdcVerdict> group;
};
RunHdc run_hdc(const std::vector<RfLayer>& layers, const DilatedRun& run, size_t from);

// The gridding lint: one warning per dilated run whose layers, from its first dilated layer on, leave holes
// in their own input (and whether those holes reach the image input). Empty for a clean config.
std::vector<std::string> gridding_warnings(const nlohmann::json& config);

}  // namespace convlab

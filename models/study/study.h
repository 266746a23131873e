// models/study/study.h: the study analyses behind the convlab commands (rf, size, matrix, identities, gradcheck,
// erf, checkerboard). Each takes its options struct and returns both a JSON result (`--json`) and the plain-text
// report, printing nothing; PNG files are written when a path is given. The flags and the printing are
// tools/lib/study_cli.cpp.
// Every user error throws convlab::Error with one line naming the option and the value.
#pragma once
#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/ops.h"
#include "data/png.h"
#include "models/receptive_field.h"
#include "models/study_result.h"
#include "models/op_case/op_case.h"

namespace convlab {

// ---- convlab rf (models/study/study_rf.cpp) ----
struct RfCommand {
  std::string config{};               // a config file, or empty with dilations given
  std::vector<std::string> sets{};    // --set overrides of the config
  std::vector<int64_t> kernels{}, dilations{}, strides{};
  int64_t from_layer = -1;            // measure the sub-stack from model.layers[K] (schedule: layer K)
  int64_t size = 0;                   // input size override (schedule: bounded lattice of this size)
  std::vector<int64_t> pixel{};       // output pixel (y, x); default: the centre (bounded) or (0, 0)
  std::string png{};                  // coverage heatmap
};
StudyResult rf_command(const RfCommand& c);

// ---- convlab size (models/study/study_size.cpp) ----
struct SizeCommand {
  std::string op = "conv2d";  // conv2d | conv_transpose2d | max_pool2d | avg_pool2d
  int64_t in = 0;             // input size (one axis)
  int64_t out = -1;           // conv_transpose2d: wanted output size -> list what gives it
  int64_t kernel = 3, stride = 1, padding = 0, dilation = 1, output_padding = 0;
  bool ceil_mode = false;
};
StudyResult size_command(const SizeCommand& c);
struct TransposedSolution {
  int64_t padding, output_padding, dilation;
};
// Every (padding <= kernel*dilation, output_padding, dilation <= max_dilation) with which conv_transpose2d
// maps `in` to `out` (checked through conv_transpose2d_dims).
std::vector<TransposedSolution> transposed_solutions(int64_t in, int64_t out, int64_t kernel, int64_t stride,
                                                     int64_t max_dilation = 4);

// ---- convlab matrix (models/study/study_matrix.cpp) ----
struct MatrixCommand {
  std::string case_path{};     // a conv2d op case
  std::vector<int64_t> pair{}; // (c_out, c_in): one channel pair instead of the full matrix
  int64_t max_entries = 4096;  // refuse larger matrices
  std::string png{};           // heatmap of C
};
StudyResult matrix_command(const MatrixCommand& c);
// The convolution matrix of a conv2d case (image 0): rows (c_out, oh, ow), columns (c_in, ih, iw);
// with pair = {co, ci} only that channel pair: [H_out*W_out, H*W]. Returned as [rows, cols].
Tensor conv_matrix(const OpCall& call, const std::vector<int64_t>& pair = {});

// ---- convlab identities (models/study/study_identities.cpp) ----
struct IdentitiesCommand {
  uint64_t seed = 0;
  int64_t trials = 5;  // random shapes per identity
};
StudyResult identities_command(const IdentitiesCommand& c);

// ---- convlab gradcheck (models/study/study_gradcheck.cpp) ----
struct GradcheckCommand {
  std::string op{};       // one op of op_specs()
  bool all = false;       // every op
  std::string case_path{};  // an op case instead of the default small case
  double eps = 1e-2, tol = 1e-3;
  uint64_t seed = 0;
  // gradcheck CONFIG: every layer of the config's model(s) (GAN: generator and discriminator), one at a time,
  // at its real input from a forward pass, BN in train mode (study_gradcheck.cpp explains the kinks avoided)
  std::string config{};
  std::vector<std::string> sets{};
  int64_t size = 8, batch = 2;   // segmentation input [batch, 3, size, size]; GAN / classifier sizes are fixed
  int64_t max_elements = 256;    // per tensor: a seeded sample of this many elements (0: every element)
};
StudyResult gradcheck_command(const GradcheckCommand& c);
// The small default case of an op (an op-case JSON object), for gradcheck and tests.
nlohmann::json default_case(const std::string& op);

// ---- convlab erf (models/study/study_erf.cpp; computation in models/erf.h) ----
struct ErfCommand {
  std::string config{};             // a segmentation config ("" with a checkpoint: the one stored in it)
  std::vector<std::string> sets{};  // --set overrides
  std::string checkpoint{};         // model.safetensors of a run: adds a "trained" row (inputs: validation images);
                                    // CONFIG must build the network it was trained with (models/seg_task.h)
  int64_t from_layer = -1;          // measure at the input of model.layers[K]; -1: the model input
  int64_t samples = 32;
  uint64_t seed = 0;
  std::vector<int64_t> pixel{};     // output pixel (y, x); default the centre
  std::string png{};                // log-scale heatmap (untrained | trained)
};
StudyResult erf_command(const ErfCommand& c);

// ---- convlab checkerboard (models/study/study_checkerboard.cpp; measures in models/eval/gan_eval.h) ----
struct CheckerboardCommand {
  std::optional<int64_t> kernel{}, stride{}, padding{}, output_padding{}, dilation{};  // one transposed conv
  std::string layers{};                    // a stack: "4:2:1,4:2:1" (K:S:P[:OP[:D]]), "resize[:K[:P]]"
  std::vector<std::string> configs{};      // GAN configs: their generators' overlap and strength at init
  std::vector<std::string> sets{};         // --set overrides of every --config
  std::vector<std::string> checkpoints{};  // generator.safetensors of GAN runs: strength when trained
  int64_t n = 512;                         // samples per generator row
  uint64_t seed = 1;                       // latent seed
  int64_t size = 0;                        // input size of a --kernel / --layers stack (0: 12 / its upsampling factor, >= 3)
  int64_t period = 2;                      // phase period s of the strength measures
  std::string bn = "both";                 // BN at sampling: eval | batch | both | config (gan.sample_bn)
  int64_t init_seeds = 1;                  // > 1: spread of the at-init strength over config seeds
  std::string png{};                       // the overlap maps as heatmaps, side by side
};
// No stack, config or checkpoint given: k3s2 vs k4s2 vs resize-conv, and configs/dcgan_mnist*.json at init.
StudyResult checkerboard_command(const CheckerboardCommand& c);

// Overlap map of a stack of spatial layers fed by an all-ones input: the number of paths (one kernel tap
// per layer) from the input to each output pixel, every weight 1. Separable: the 2-D count is the product
// of the two axes' counts. Exact integers (an overflow throws).
struct OverlapMap {
  Pair input{0, 0}, output{0, 0};
  std::array<std::vector<int64_t>, 2> axis{};  // bounded counts per axis: [H_out], [W_out]
  Pair period{1, 1};           // product of the upsampling factors after the last layer fed by a 1x1 input
  Pair smallest_period{1, 1};  // the smallest period of the interior tile (divides `period`)
  std::array<std::vector<int64_t>, 2> tile{};  // interior: output indices 0..period-1 on an unbounded lattice
  int64_t at(int64_t y, int64_t x) const { return axis[0][size_t(y)] * axis[1][size_t(x)]; }
  int64_t tile_at(int64_t y, int64_t x) const { return tile[0][size_t(y)] * tile[1][size_t(x)]; }
};
OverlapMap overlap_map(const std::vector<RfLayer>& layers, Pair input);
// "--layers" syntax: K:S:P[:OP[:D]] a transposed conv, resize[:K[:P]] nearest x2 then a conv (K 3, P (K-1)/2).
std::vector<RfLayer> parse_overlap_layers(const std::string& spec);

// ---- shared helpers (models/study/study_common.cpp) ----
// Left-aligned text columns, two spaces apart.
std::string format_table(const std::vector<std::vector<std::string>>& rows);
std::string fmt(double v, int digits = 6);  // %.{digits}g
// Heatmap of values [H, W]: 0 -> `zero` colour, (0, max] -> a dark-blue..yellow ramp; cells `cell` px wide.
RgbImage heatmap(const std::vector<double>& v, int64_t H, int64_t W, std::array<uint8_t, 3> zero, int64_t cell);
// Diverging map: negative blue, positive red (scaled by max |v|), exact zero light grey.
RgbImage diverging_heatmap(const std::vector<double>& v, int64_t H, int64_t W, int64_t cell);
// Cell size so the longer side is about 512 px (1..32).
int64_t cell_size(int64_t H, int64_t W);
// heatmap() with `cell_size` cells, under `title` and over its colour bar (data/picture.h): 0 .. the largest
// value, labelled, and the zero colour keyed as `zero_name` (e.g. "no path").
RgbImage titled_heatmap(const std::vector<double>& v, int64_t H, int64_t W, std::array<uint8_t, 3> zero,
                        const std::string& zero_name, const std::string& title);

}  // namespace convlab

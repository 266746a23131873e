// tools/lib/study.h: the study commands of convlab (rf, size, matrix, identities, gradcheck). Each command
// takes its options struct and returns both a JSON result (`--json`) and the plain-text report; PNG files
// are written by the command when a path is given. The CLI glue is tools/lib/study_cli.cpp.
// Every user error throws convlab::Error with one line naming the option and the value.
#pragma once
#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/ops.h"
#include "data/png.h"
#include "tools/lib/op_case.h"

namespace convlab {

struct StudyResult {
  nlohmann::json json;
  std::string text;
  bool ok = true;  // identities / gradcheck: every check passed
};

// ---- convlab rf (tools/lib/study_rf.cpp) ----
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

// ---- convlab size (tools/lib/study_size.cpp) ----
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

// ---- convlab matrix (tools/lib/study_matrix.cpp) ----
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

// ---- convlab identities (tools/lib/study_identities.cpp) ----
struct IdentitiesCommand {
  uint64_t seed = 0;
  int64_t trials = 5;  // random shapes per identity
};
StudyResult identities_command(const IdentitiesCommand& c);

// ---- convlab gradcheck (tools/lib/study_gradcheck.cpp) ----
struct GradcheckCommand {
  std::string op{};       // one op of op_specs()
  bool all = false;       // every op
  std::string case_path{};  // an op case instead of the default small case
  double eps = 1e-2, tol = 1e-3;
  uint64_t seed = 0;
};
StudyResult gradcheck_command(const GradcheckCommand& c);
// The small default case of an op (an op-case JSON object), for gradcheck and tests.
nlohmann::json default_case(const std::string& op);

// ---- shared helpers (tools/lib/study_common.cpp) ----
// Left-aligned text columns, two spaces apart.
std::string format_table(const std::vector<std::vector<std::string>>& rows);
std::string fmt(double v, int digits = 6);  // %.{digits}g
// Heatmap of values [H, W]: 0 -> `zero` colour, (0, max] -> a dark-blue..yellow ramp; cells `cell` px wide.
RgbImage heatmap(const std::vector<double>& v, int64_t H, int64_t W, std::array<uint8_t, 3> zero, int64_t cell);
// Diverging map: negative blue, positive red (scaled by max |v|), exact zero light grey.
RgbImage diverging_heatmap(const std::vector<double>& v, int64_t H, int64_t W, int64_t cell);
// Cell size so the longer side is about 512 px (1..32).
int64_t cell_size(int64_t H, int64_t W);

}  // namespace convlab

// models/study/deform_viz.h: the analysis of `convlab deform-viz`: a trained segmentation checkpoint,
// one PNG image, the sampling points of chosen output pixels of a deformable layer drawn over the upscaled
// image, mapped to image coordinates through the layers before the deformable one (image = start + jump *
// layer-input coordinate, models/receptive_field.h). The sampling points and offset statistics themselves are
// in models/deform_stats.h.
#pragma once
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "models/deform_stats.h"

namespace convlab {

// ---- convlab deform-viz (the flags and printing: tools/lib/deform_viz_cli.cpp) ----
struct DeformVizCommand {
  std::string checkpoint{}, config{}, image{}, png{};
  std::vector<std::string> sets{};
  std::string layer{};                 // state-dict name of the layer ("3": model.layers[3] without repeats;
                                       // "2.body.1" when nested); empty: the first deformable layer
  std::vector<std::string> pixels{};   // "y,x" output pixels of that layer; empty: a 3x3 grid of pixels
  int64_t val_image = -1;              // >= 0: validation image K of the config's dataset instead of a PNG
};
struct DeformVizResult {
  nlohmann::json json;
  std::string text;
};
DeformVizResult deform_viz_command(const DeformVizCommand& c);

}  // namespace convlab

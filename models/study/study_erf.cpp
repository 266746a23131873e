// models/study/study_erf.cpp: `convlab erf`: the effective receptive field of a segmentation config's network
// (untrained, and trained with --checkpoint) next to its theoretical receptive field and exact coverage
// holes (computation: models/erf.h, models/receptive_field.h).
#include <algorithm>
#include <optional>
#include <cstdio>

#include "core/error.h"
#include "data/batch.h"
#include "data/safetensors.h"
#include "data/json.h"
#include "models/config.h"
#include "models/erf.h"
#include "models/seg_task.h"
#include "models/study/study.h"

namespace convlab {

using nlohmann::json;

namespace {

std::string percent(double share) { return fmt(100 * share, 3) + "%"; }
std::string radius(double r) { return fmt(r, 4); }
std::string pair_str(std::array<double, 2> v) { return v[0] == v[1] ? fmt(v[0]) : fmt(v[0]) + "x" + fmt(v[1]); }

// The first `n` validation images (fewer when the set is smaller; compute_erf cycles through them).
Tensor validation_images(const json& config, uint64_t seed, int64_t n) {
  auto ds = make_dataset(config_section(config, "data"), seed, "val");
  std::vector<int64_t> idx;
  for (int64_t i = 0; i < std::min(n, ds->size()); ++i) idx.push_back(i);
  return make_batch(*ds, idx).images;  // [n, 3, S, S]
}

}  // namespace

StudyResult erf_command(const ErfCommand& c) {
  CL_CHECK(!c.config.empty() || !c.checkpoint.empty(),
           "erf: give a CONFIG (e.g. configs/hdc_seg.json) or a --checkpoint (its stored config is used)");
  CL_CHECK(c.samples >= 1, "erf: --samples must be >= 1, got " << c.samples);
  CL_CHECK(c.pixel.empty() || c.pixel.size() == 2, "erf: --pixel takes y,x (" << c.pixel.size() << " values given)");
  CL_CHECK(c.from_layer >= -1, "erf: --from-layer must be >= 0, got " << c.from_layer);
  // With a checkpoint: its own config, or CONFIG when it builds the same network (refused otherwise).
  std::optional<safetensors::File> file;
  json cfg;
  std::string config_source = c.config;
  if (!c.checkpoint.empty()) {
    file = safetensors::load(c.checkpoint);
    SegCheckpointConfig sc = seg_checkpoint_config(*file, c.checkpoint, c.config, c.sets, "erf");
    cfg = std::move(sc.config);
    config_source = sc.source;
  } else {
    cfg = load_config(c.config, c.sets);
  }
  const bool trained = !c.checkpoint.empty();
  SegTask untrained = make_seg_task(cfg, /*with_data=*/false);  // the config freshly initialised with its seed
  const json& layers = untrained.config["model"]["layers"];
  CL_CHECK(c.from_layer < static_cast<int64_t>(layers.size()),
           "erf: --from-layer " << c.from_layer << " is out of range: model.layers has " << layers.size() << " entries (0.."
                                << layers.size() - 1 << ")");

  ErfOptions o{.samples = c.samples, .seed = c.seed, .from_layer = c.from_layer, .pixel = c.pixel, .images = {},
               .config = untrained.config};
  Shape in = untrained.input_shape;
  std::vector<std::pair<std::string, std::shared_ptr<Sequential>>> models = {{"untrained", untrained.model}};
  if (trained) {
    SegTask t = make_seg_task(cfg, false);
    safetensors::copy_into(*file, t.model->state_dict(), c.checkpoint);  // names the tensor and both shapes
    models.emplace_back("trained", t.model);
    o.images = validation_images(untrained.config, untrained.seed, c.samples);
    in[2] = o.images.size(2), in[3] = o.images.size(3);
  }

  std::vector<ErfResult> res;
  for (auto& [name, m] : models) res.push_back(compute_erf(*m, in, o));
  const ErfResult& r0 = res.front();

  StudyResult out;
  const std::string where =
      c.from_layer < 0 ? "the model input"
                       : "the input of model.layers[" + std::to_string(c.from_layer) + "] (" +
                             layers[static_cast<size_t>(c.from_layer)].value("type", std::string("?")) + ")";
  const std::string inputs = trained ? std::to_string(c.samples) + " validation images (data.val, first " +
                                           std::to_string(std::min<int64_t>(c.samples, o.images.size(0))) + ", cycled)"
                                     : std::to_string(c.samples) + " N(0,1) images (seed " + std::to_string(c.seed) + ")";
  json rows = json::array();
  std::vector<std::vector<std::string>> table = {
      {"model", "r50", "r95", "rf", "rf radius", "rf box", "exact zeros in box", "coverage holes"}};
  for (size_t i = 0; i < res.size(); ++i) {
    const ErfResult& r = res[i];
    json j = r.to_json();
    j["model"] = models[i].first;
    rows.push_back(j);
    table.push_back({models[i].first, radius(r.r50), radius(r.r95), pair_str(r.rf), radius(r.rf_radius()),
                     std::to_string(r.box[2]) + "x" + std::to_string(r.box[3]) + " at (" + std::to_string(r.box[0]) + "," +
                         std::to_string(r.box[1]) + ")",
                     std::to_string(r.zero_pixels) + " of " + std::to_string(r.rf_pixels) + " (" + percent(r.hole_share()) + ")",
                     std::to_string(r.coverage_holes)});
  }
  out.json = {{"config", config_source},
              {"from_layer", c.from_layer >= 0 ? json(c.from_layer) : json(nullptr)},
              {"inputs", trained ? "validation" : "normal"},
              {"samples", c.samples},
              {"seed", c.seed},
              {"rows", rows}};

  std::string& t = out.text;
  t = "effective receptive field of " + config_source + " at " + where + "\n";
  t += "  measured tensor " + shape_str(r0.measured_at) + ", output pixel (" + std::to_string(r0.pixel[0]) + "," +
       std::to_string(r0.pixel[1]) + ") of " + shape_str(r0.output_shape) + "\n";
  t += "  inputs: " + inputs + (trained ? " for both models" : "") + "\n";
  t += "  gradient: 1 at the output pixel in every output channel; map = mean |d out / d x| over samples and channels\n";
  t += "  (BN in eval mode: running statistics)\n";
  t += format_table(table);
  t += "  r50 / r95: Chebyshev radius (half the side of the square around the pixel) holding 50% / 95% of the\n"
       "  gradient mass; rf radius = (rf - 1) / 2; rf box: the pixels some path reaches (receptive_field.h), cut by\n"
       "  the image border; exact zeros: box pixels whose gradient is exactly 0 (gridding holes)\n";
  for (size_t i = 0; i < res.size(); ++i) {
    const ErfResult& r = res[i];
    t += "\n" + models[i].first + ": map around the pixel (digit = 9 + floor(2 log10(v / max)): half decades below the max;\n"
         "  '.' exact zero inside the rf box)\n";
    t += erf_ascii(r);
    if (r.hole_mismatches > 0)
      t += "  note: " + std::to_string(r.hole_mismatches) + " box pixels disagree with the coverage map (a reachable pixel"
           " with exactly zero gradient: every path dead in every sample)\n";
  }
  t += "\nverdict: ";
  if (r0.zero_pixels > 0)
    t += std::to_string(r0.zero_pixels) + " pixels (" + percent(r0.hole_share()) +
         ") of the rf box get exactly zero gradient: gridding holes at " + where + "\n";
  else
    t += "no holes at " + where + "; 95% of the gradient lies within radius " + radius(r0.r95) + " of a theoretical " +
         radius(r0.rf_radius()) + "\n";
  if (res.size() == 2)
    t += "  training moved r50 " + radius(res[0].r50) + " -> " + radius(res[1].r50) + ", r95 " + radius(res[0].r95) +
         " -> " + radius(res[1].r95) + "\n";

  if (!c.png.empty()) {
    std::vector<RgbImage> tiles;
    for (size_t i = 0; i < res.size(); ++i) {  // the rf box and 4 pixels around it, about 256 px wide
      const ErfResult& r = res[i];
      const int64_t side = std::max<int64_t>({r.box[2] + 8, r.box[3] + 8, 1});
      tiles.push_back(erf_picture(r, models[i].first + ": ERF at " + where + ", log scale",
                                  static_cast<int>(std::clamp<int64_t>(256 / side, 1, 16)), 4));
    }
    write_png(c.png, tiles.size() == 1 ? tiles[0] : compose_grid({tiles}));
    t += "wrote " + c.png + " (log10 |grad| over 5 decades, dark blue .. yellow, colour bar below with its values; red:\n"
         "  exact zero inside the rf box; black: outside it; the rf box and 4 pixels around it" +
         std::string(trained ? "; left untrained, right trained" : "") + ")\n";
  }
  return out;
}

}  // namespace convlab

// tools/lib/train_seg.h: `convlab train` / `eval` / `predict` for segmentation configs.
//
// A run writes runs/<name>/: config.json (resolved), metrics.jsonl (one JSON object per log and validation),
// summary.json, val_<step>.png grids of image | label | prediction and its checkpoint (models/checkpoint.h:
// checkpoint.json naming checkpoints/step_<N>/): model.safetensors (weights + buffers, PyTorch names; the
// resolved config and step in its metadata) and optimizer.safetensors (optimizer state, step, RNG states),
// also linked at the top level. Resuming (--resume) continues from the checkpoint bit-identically; a folder
// holding a checkpoint is not trained from scratch without `overwrite`.
#pragma once
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace convlab {

struct TrainFlags {
  std::string runs_dir = "runs";
  bool resume = false;
  bool quiet = false;
  bool progress_bar = true;  // only used when stdout is a terminal
  int64_t stop_after = -1;   // > 0: stop after this step as if interrupted (checkpoint written, schedule unchanged)
  bool overwrite = false;    // without resume: start over in a run folder that holds a checkpoint (deleting it)
};

// Returns the summary (also written to summary.json).
nlohmann::json train_segmentation(const nlohmann::json& config, const TrainFlags& flags);
// Evaluates a checkpoint on the config's validation set.
nlohmann::json eval_segmentation(const nlohmann::json& config, const std::string& checkpoint);
// Predicts a class map for one PNG; writes a palette PNG (and returns per-class pixel counts).
nlohmann::json predict_segmentation(const std::string& checkpoint, const std::string& image, const std::string& out);

}  // namespace convlab

// models/seg_task.h: everything a segmentation run is made of, read from a config:
// the datasets (data section), the model (model.layers), the loss, the optimizer and the LR schedule.
// Used by `convlab train`, `eval` and `predict` (models/train/segmentation.cpp) and by the study tools.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/ops.h"
#include "data/batch.h"
#include "data/dataset.h"
#include "data/safetensors.h"
#include "layers/module.h"

namespace convlab {

struct TrainSettings {
  int64_t steps = 600, batch_size = 16, val_every = 200, log_every = 20, checkpoint_every = 200;
  int64_t batch_shards = 0;  // train.batch_shards (core/shards.h); 0: one per process
  int64_t grid_images = 4;  // validation images shown in each picture
};

struct SegTask {
  nlohmann::json config;  // resolved (extends and --set applied)
  std::string name;
  uint64_t seed = 0;
  std::unique_ptr<SegDataset> train_set, val_set;
  Augment augment;
  std::shared_ptr<Sequential> model;
  nlohmann::json layer_record;  // build_layers()'s record of model.layers (for network_difference())
  std::vector<std::string> class_names;  // one per network output class, "background" first (the legends' names)
  Shape input_shape;  // [B, 3, S, S]
  std::vector<float> class_weights;
  int32_t ignore_index = -100;
  TrainSettings train;
  LrSchedule schedule;
  nlohmann::json optimizer_config;
};

// Builds datasets and model and checks the network's shapes (errors carry the JSON path).
// `with_data` false skips the datasets (predict needs only the model).
SegTask make_seg_task(const nlohmann::json& config, bool with_data = true);
std::unique_ptr<Optimizer> make_optimizer(const nlohmann::json& opt_config, const Module& model,
                                          double base_lr_override = -1);
// The class names a config's data section gives, without reading any data: the shapes set's ("background" and
// data.classes, default disc .. line), the digit scenes' ("background", "0" .. "9"), a folder's data.classes.
// When they are not `num_classes` names (or the section is malformed), "class 0" .. (default_class_names).
std::vector<std::string> config_class_names(const nlohmann::json& data, int64_t num_classes);
// The shapes / digits dataset described by a config's data section (split "train" or "val").
std::unique_ptr<SegDataset> make_dataset(const nlohmann::json& data, uint64_t seed, const std::string& split);

// ---- a trained segmentation network from a checkpoint (models/seg_checkpoint.cpp) ----
// Used by `convlab eval`, `predict`, `erf` and `deform-viz` (`cmd` names the command in messages).
// The config: the checkpoint's own (its "config" metadata) with `sets` applied, or, when `config_path` is
// given, that file with `sets` applied. Either must build the same network as the stored config: the first
// difference that changes the network is refused in one line, "eval: model.layers[3].dilation: checkpoint
// has 2, config has 5 (...)". A checkpoint without a stored config (a plain state dict, e.g. written by
// PyTorch: tools/torch_model.py) needs `config_path`.
struct SegCheckpointConfig {
  nlohmann::json config;
  std::string source;  // "configs/x.json" or "the config stored in runs/x/model.safetensors"
};
SegCheckpointConfig seg_checkpoint_config(const safetensors::File& file, const std::string& checkpoint,
                                          const std::string& config_path, const std::vector<std::string>& sets,
                                          const std::string& cmd);
// seg_checkpoint_config(), then make_seg_task() with the checkpoint's weights and buffers loaded.
struct LoadedSegModel {
  SegTask task;
  std::string config_source;
};
LoadedSegModel load_seg_checkpoint(const std::string& checkpoint, const std::string& config_path,
                                   const std::vector<std::string>& sets, const std::string& cmd, bool with_data);

}  // namespace convlab

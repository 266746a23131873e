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
#include "layers/module.h"

namespace convlab {

struct TrainSettings {
  int64_t steps = 600, batch_size = 16, val_every = 200, log_every = 20, checkpoint_every = 200;
  int64_t grid_images = 4;  // validation images shown in each picture
};

struct SegTask {
  nlohmann::json config;  // resolved (extends and --set applied)
  std::string name;
  uint64_t seed = 0;
  std::unique_ptr<SegDataset> train_set, val_set;
  Augment augment;
  std::shared_ptr<Sequential> model;
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
// The shapes / digits dataset described by a config's data section (split "train" or "val").
std::unique_ptr<SegDataset> make_dataset(const nlohmann::json& data, uint64_t seed, const std::string& split);

}  // namespace convlab

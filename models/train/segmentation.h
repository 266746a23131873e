// models/train/segmentation.h: training, evaluating and applying a segmentation config ("task":
// "segmentation", models/seg_task.h) through the training loop of models/train/engine.h.
//
// A run writes runs/<name>/: config.json (resolved), metrics.jsonl (loss, loss_avg, lr, images/s per log
// step; per validation: loss, pixel accuracy, per-class IoU, mIoU, IoU by object size, "split": "val"; the
// deformable layers' offset statistics under "deform"), summary.json, val_<step>.png grids of
// image | label | prediction, and its checkpoint (models/checkpoint.h: checkpoint.json naming
// checkpoints/step_<N>/): model.safetensors (weights + buffers, PyTorch names; the resolved config and step
// in its metadata) and optimizer.safetensors (optimizer state, step, dropout RNG states), also linked at the
// top level. --resume continues from the checkpoint bit-identically; a folder holding a checkpoint is not
// trained from scratch without `overwrite`.
// Determinism: the batch of step s is EpochOrder(seed).batch(s, B); its augmentation draws from
// Rng(sample_seed(seed, s)); dropout RNG states are checkpointed. With the kernels' fixed reduction orders,
// a run is bit-identical on 1 and 2 threads and across --resume.
#pragma once
#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "models/train/engine.h"

namespace convlab {

// The task for run_training (throws convlab::Error naming the config path for a bad config).
std::unique_ptr<TrainingTask> segmentation_training(const nlohmann::json& config);
// run_training(*segmentation_training(config), flags): the summary (also written to summary.json).
nlohmann::json train_segmentation(const nlohmann::json& config, const TrainFlags& flags);
// Evaluates a checkpoint on the config's validation set.
nlohmann::json eval_segmentation(const nlohmann::json& config, const std::string& checkpoint);
// Predicts a class map for one PNG; writes a palette PNG (and returns per-class pixel counts).
nlohmann::json predict_segmentation(const std::string& checkpoint, const std::string& image, const std::string& out);

}  // namespace convlab

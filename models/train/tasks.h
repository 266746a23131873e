// models/train/tasks.h: a config's training task, chosen by its "task" key: "segmentation" (the default,
// models/train/segmentation.h), "gan" (models/train/gan.h) or "classification" (models/train/classifier.h).
// Every task trains through the one loop of models/train/engine.h.
#pragma once
#include <memory>

#include <nlohmann/json.hpp>

#include "models/train/engine.h"

namespace convlab {

// Builds the task's networks, data and optimizers (throws convlab::Error naming the config path).
std::unique_ptr<TrainingTask> make_training_task(const nlohmann::json& config);
// run_training(*make_training_task(config), flags): the summary, with "task" naming the kind of run.
nlohmann::json train_config(const nlohmann::json& config, const TrainFlags& flags);

}  // namespace convlab

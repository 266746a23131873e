// models/train/tasks.cpp: see tasks.h.
#include "models/train/tasks.h"

#include "models/train/classifier.h"
#include "models/train/gan.h"
#include "models/train/segmentation.h"

namespace convlab {

std::unique_ptr<TrainingTask> make_training_task(const nlohmann::json& config) {
  const std::string task =
      config.is_object() && config.contains("task") && config["task"].is_string() ? config["task"].get<std::string>() : "";
  if (task == "gan") return gan_training(config);
  if (task == "classification") return classifier_training(config);
  return segmentation_training(config);  // checks "task" itself: absent, or "segmentation"
}

nlohmann::json train_config(const nlohmann::json& config, const TrainFlags& flags) {
  return run_training(*make_training_task(config), flags);
}

}  // namespace convlab

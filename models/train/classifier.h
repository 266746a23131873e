// models/train/classifier.h: the digit classifier ("task": "classification", configs/mnist_classifier.json) that
// scores GAN samples without any download: `convlab train` trains it on MNIST's train split (data/mnist.h,
// 8,004 digits, images in [-1, 1] like the generator's tanh output, random +-max_shift px shifts) and
// measures its accuracy on the 1,996 digits of the test split it never saw.
//
// It trains through the loop of models/train/engine.h. A run writes runs/<name>/: config.json, metrics.jsonl
// (train loss; held-out loss and accuracy, "split": "test"), summary.json and model.safetensors (weights +
// buffers; the resolved config and step in the metadata), written once, after the last step: a run is short
// and restarts from scratch (--resume and --stop-after are refused).
// Determinism: the batch of step s is EpochOrder(seed).batch(s, B) over the train split, its shifts are drawn
// from Rng(sample_seed(seed ^ kShift, s)); dropout draws from its own seeded RNG.
// The network must end in a linear layer: its input (e.g. fc128 after ReLU) is the feature vector of
// the Frechet distance (`convlab gan-eval`), its output the 10 class logits.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "layers/module.h"
#include "models/train/engine.h"

namespace convlab {

std::unique_ptr<TrainingTask> classifier_training(const nlohmann::json& config);
// run_training(*classifier_training(config), flags).
nlohmann::json train_classifier(const nlohmann::json& config, const TrainFlags& flags);

struct Classifier {
  nlohmann::json config;
  std::shared_ptr<Sequential> model;
  int64_t classes = 0, features = 0;
};

// From a model.safetensors of a classification run (config in its metadata).
Classifier load_classifier(const std::string& checkpoint);

// Images [N, 1, 28, 28] in [-1, 1] -> class probabilities [N, classes] (softmax) and penultimate features
// [N, features], row-major doubles appended to probs / feats. Eval mode, no gradient, batches of 250.
void classify(Classifier& c, const Tensor& images, std::vector<double>& probs, std::vector<double>& feats);

// Held-out accuracy of the class logits' argmax.
double accuracy(const std::vector<double>& probs, const std::vector<int32_t>& labels, int64_t classes);

}  // namespace convlab

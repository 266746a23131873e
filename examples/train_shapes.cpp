// examples/train_shapes.cpp: a C++ program using the installed convlab package (find_package(convlab)).
// It builds a small dilated segmentation network in code (options structs with PyTorch's argument names),
// plugs it into convlab's training loop as its own TrainingTask on the embedded shapes data, trains a few
// steps and leaves a checkpoint in <runs>/example_shapes/ (model.safetensors, loadable by PyTorch).
//   usage: train_shapes RUNS_DIR [STEPS]
#include <cmath>
#include <cstdio>
#include <iostream>
#include <memory>
#include <string>

#include "core/error.h"
#include "core/loss.h"
#include "core/optim.h"
#include "data/batch.h"
#include "data/shapes.h"
#include "layers/basic_layers.h"
#include "layers/conv_layers.h"
#include "models/train/engine.h"

using namespace convlab;

// 3x3 convs with dilations 1, 2, 1 (BN + ReLU after each), then a 1x1 conv to the 6 classes.
std::shared_ptr<Sequential> make_network(Rng& rng) {
  auto net = std::make_shared<Sequential>();
  int64_t in = 3;
  for (int64_t dilation : {1, 2, 1}) {
    net->add(std::make_shared<Conv2d>(Conv2dOptions{.in_channels = in, .out_channels = 16, .kernel_size = {3, 3},
                                                    .padding = {dilation, dilation}, .dilation = {dilation, dilation},
                                                    .bias = false}, rng));
    net->add(std::make_shared<BatchNorm2d>(BatchNorm2dOptions{.num_features = 16}));
    net->add(std::make_shared<Activation>("relu", [](const Tensor& x) { return relu(x); }));
    in = 16;
  }
  net->add(std::make_shared<Conv2d>(Conv2dOptions{.in_channels = 16, .out_channels = 6, .kernel_size = {1, 1}}, rng));
  return net;
}

// What one step does with a batch, what a log line holds and what a checkpoint stores; the loop does the rest.
class ShapesTask : public TrainingTask {
 public:
  explicit ShapesTask(int64_t steps)
      : data_(ShapesOptions{.image_size = 32, .size = 4096}), order_(data_.size(), /*seed=*/0), steps_(steps) {
    Rng rng(0);
    net_ = make_network(rng);
    std::vector<ParamRef> params;
    for (auto& [name, t] : net_->named_parameters()) params.push_back({name, t});
    opt_ = std::make_unique<Adam>(std::move(params), AdamOptions{.lr = 0.01});
  }
  const std::string& name() const override { return name_; }
  std::string kind() const override { return "segmentation"; }
  const nlohmann::json& config() const override { return config_; }
  LoopPlan plan() const override {
    return {.steps = steps_, .batch_size = 8, .log_every = 5, .checkpoint_files = {"model.safetensors"}};
  }
  std::string describe(const std::string& dir) const override {
    return "example: " + std::to_string(net_->num_parameters()) + " parameters, run folder " + dir + "\n";
  }
  void restore(const Checkpoint& c) override {
    safetensors::copy_into(c.file("model.safetensors"), net_->state_dict(), c.path("model.safetensors"));
  }
  void begin() override { net_->train(); }
  void step(int64_t step, StepGuard& guard) override {
    const SegBatch b = make_batch(data_, order_.batch(step, 8));
    opt_->zero_grad();
    Tensor loss = cross_entropy(net_->forward(b.images), b.labels);  // logits [8, 6, 32, 32]
    loss_ = loss.item();
    guard.check_finite("loss", loss_);
    guard.losses_checked();
    loss.backward();
    opt_->step();
  }
  void log(int64_t, nlohmann::json& record, std::vector<std::string>&) override { record["loss"] = loss_; }
  std::string progress() const override { return "loss " + std::to_string(loss_); }
  std::vector<CheckpointFile> checkpoint_files() const override {
    return {{"model.safetensors", net_->state_dict(), {{"format", "example"}}}};
  }
  nlohmann::json summary(const nlohmann::json& last_log, const nlohmann::json&) override {
    return {{"parameters", net_->num_parameters()}, {"last", last_log}};
  }

 private:
  std::string name_ = "example_shapes";
  nlohmann::json config_ = {{"description", "examples/train_shapes.cpp: a network built in code"}};
  ShapesDataset data_;
  EpochOrder order_;
  int64_t steps_;
  std::shared_ptr<Sequential> net_;
  std::unique_ptr<Optimizer> opt_;
  float loss_ = NAN;
};

int main(int argc, char** argv) {
  if (argc < 2) {
    std::cerr << "usage: train_shapes RUNS_DIR [STEPS]\n";
    return 2;
  }
  try {
    ShapesTask task(argc > 2 ? std::stoll(argv[2]) : 30);
    const nlohmann::json summary = run_training(task, {.runs_dir = argv[1], .overwrite = true, .log = &std::cout});
    std::cout << "parameters " << summary["parameters"] << "\nsteps " << summary["completed_steps"]
              << "\nfinal loss " << summary["last"]["loss"] << "\ncheckpoint " << summary["run_dir"].get<std::string>()
              << "/model.safetensors\n";
  } catch (const Error& e) {
    std::cerr << "train_shapes: " << e.what() << "\n";
    return 2;
  }
  return 0;
}

// models/train/classifier.cpp: the classification task of the training loop, loading a trained classifier, and
// its probabilities and features.
#include "models/train/classifier.h"

#include <cmath>
#include <cstdio>
#include <sstream>

#include "core/shards.h"
#include "core/error.h"
#include "data/json.h"
#include "core/loss.h"
#include "data/batch.h"
#include "data/dataset.h"
#include "data/mnist.h"
#include "data/safetensors.h"
#include "layers/options.h"
#include "models/config.h"
#include "models/seg_task.h"  // make_optimizer

namespace convlab {

using nlohmann::json;

namespace {

constexpr uint64_t kShift = 0x5A1F7ull;

struct ClassTask {
  std::string name;
  uint64_t seed = 0;
  int64_t steps = 1500, batch_size = 64, log_every = 50, eval_every = 250, max_shift = 2;
  int64_t batch_shards = 0;  // train.batch_shards (core/shards.h); 0: one per process
  Classifier c;
  std::shared_ptr<const Mnist> mnist;
  std::vector<int64_t> train_idx, test_idx;
};

// Builds the network for [B, 1, 28, 28] and checks it ends in a linear layer giving [B, classes].
Classifier build_classifier(const json& config, int64_t B) {
  Classifier c;
  c.config = config;
  CL_CHECK(config.contains("model") && config["model"].is_object() && config["model"].contains("layers"),
           "model.layers: missing (the classifier network, a list of layers)");
  Options mo(config["model"], "model");
  mo.raw("layers");
  mo.finish({"description"});
  int64_t seed = 0;  // the config may come from a checkpoint's metadata: checked, not converted blindly
  CL_CHECK(!config.contains("seed") || (json_to_int(config["seed"], seed) && seed >= 0),
           "seed: expected a non-negative integer, got " << json_brief(config["seed"]));
  Rng rng(static_cast<uint64_t>(seed));
  const Shape in = {B, 1, Mnist::kSide, Mnist::kSide};
  c.model = build_layers(config["model"]["layers"], in, rng, "model.layers");
  const Shape out = c.model->output_shape(in);
  CL_CHECK(c.model->size() >= 2 && c.model->at(c.model->size() - 1)->type() == "linear" && out.size() == 2,
           "model.layers: a classifier must end in a linear layer giving [" << B << ", classes], got "
                                                                         << shape_str(in) << " -> " << shape_str(out));
  c.classes = out[1];
  Shape f = in;
  for (size_t i = 0; i + 1 < c.model->size(); ++i) f = c.model->at(i)->output_shape(f);
  c.features = numel_of(f) / B;
  return c;
}

ClassTask make_task(const json& config) {
  ClassTask t;
  Options top(config, "config");
  t.name = top.string("name", "classifier");
  check_run_name(t.name);
  t.seed = static_cast<uint64_t>(top.integer("seed", 0, 0));
  top.string("task", "classification", {"classification"});
  for (const char* k : {"data", "model", "optimizer", "train", "description"})
    if (top.has(k)) top.raw(k);
  top.finish();
  Options tr(config_section(config, "train"), "train");
  t.steps = tr.integer("steps", 1500, 1);
  t.batch_size = tr.integer("batch_size", 64, 1);
  t.log_every = tr.integer("log_every", 50, 1);
  t.eval_every = tr.integer("eval_every", 250, 1);
  t.batch_shards = tr.integer("batch_shards", 0, 0, t.batch_size);
  tr.finish();
  Options d(config_section(config, "data"), "data");
  d.string("dataset", "mnist", {"mnist"});
  const std::string dir = d.string("mnist_dir", default_mnist_dir());
  const int64_t train_size = d.integer("train_size", 0, 0), test_size = d.integer("test_size", 0, 0);
  t.max_shift = d.integer("max_shift", 2, 0);
  d.finish();
  t.c = build_classifier(config, t.batch_size);
  t.mnist = std::make_shared<const Mnist>(load_mnist(dir));
  t.train_idx = mnist_indices(*t.mnist, MnistSplit::kTrain);
  t.test_idx = mnist_indices(*t.mnist, MnistSplit::kTest);
  // A truncated split keeps every class: take a stride through the (class-grouped) indices.
  auto cut = [](std::vector<int64_t>& v, int64_t n) {
    if (n <= 0 || n >= int64_t(v.size())) return;
    std::vector<int64_t> out;
    for (int64_t i = 0; i < n; ++i) out.push_back(v[size_t(i * int64_t(v.size()) / n)]);
    v = out;
  };
  cut(t.train_idx, train_size);
  cut(t.test_idx, test_size);
  CL_CHECK(int64_t(t.train_idx.size()) >= t.batch_size,
           "train.batch_size: " << t.batch_size << " is larger than the " << t.train_idx.size() << " training digits");
  return t;
}

json held_out(Classifier& c, const Mnist& m, const std::vector<int64_t>& idx) {
  std::vector<double> probs, feats;
  classify(c, mnist_images(m, idx), probs, feats);
  const auto labels = mnist_labels(m, idx);
  double nll = 0;
  for (size_t i = 0; i < labels.size(); ++i) nll -= std::log(std::max(probs[i * c.classes + labels[i]], 1e-30));
  return {{"accuracy", accuracy(probs, labels, c.classes)}, {"loss", nll / double(labels.size())},
          {"digits", idx.size()}};
}

class ClassifierTraining final : public TrainingTask {
 public:
  explicit ClassifierTraining(const json& config)
      : t_(make_task(config)),
        opt_(make_optimizer(config.contains("optimizer") ? config["optimizer"] : json::object(), *t_.c.model)),
        order_(int64_t(t_.train_idx.size()), t_.seed) {}

  const std::string& name() const override { return t_.name; }
  std::string kind() const override { return "classification"; }
  const json& config() const override { return t_.c.config; }
  LoopPlan plan() const override {
    return {.steps = t_.steps, .batch_size = t_.batch_size, .log_every = t_.log_every,
            .validate_every = t_.eval_every, .checkpoint_every = 0, .checkpoint_files = {"model.safetensors"},
            .resumable = false, .not_resumable = "classification runs are short and restart from scratch",
            .best_metric = "accuracy", .batch_shards = t_.batch_shards};
  }
  std::string describe(const std::string& run_dir) const override {
    std::ostringstream os;
    const int64_t B = t_.batch_size;
    os << "train " << t_.name << " (classification): " << t_.c.model->num_parameters() << " parameters, " << t_.steps
       << " steps of batch " << B << " (" << order_.batches_per_epoch(B) << " per epoch of " << t_.train_idx.size()
       << " digits), held out: " << t_.test_idx.size() << " test-split digits, run folder " << run_dir << "\n"
       << describe_model(*t_.c.model, {B, 1, Mnist::kSide, Mnist::kSide}, t_.c.config["model"]["layers"]);
    return os.str();
  }
  void restore(const Checkpoint&) override { CL_FAIL("--resume: " << plan().not_resumable); }
  void begin() override { t_.c.model->train(); }

  void step(int64_t step, StepGuard& guard) override {
    std::vector<int64_t> idx = order_.batch(step, t_.batch_size);
    for (int64_t& i : idx) i = t_.train_idx[size_t(i)];
    Rng shift(sample_seed(t_.seed ^ kShift, step));
    // The global batch, drawn and shifted the same way on every process; this process trains on its shards.
    const Tensor all = mnist_images(*t_.mnist, idx, t_.max_shift, &shift);
    const SampleRange r = local_samples(int64_t(idx.size()));
    const Tensor x = r.end - r.begin == all.size(0) ? all : slice(all, 0, r.begin, r.end);
    std::vector<int32_t> labels = mnist_labels(*t_.mnist, idx);
    labels = std::vector<int32_t>(labels.begin() + r.begin, labels.begin() + r.end);
    opt_->zero_grad();
    Tensor loss = cross_entropy(t_.c.model->forward(x), labels);
    loss_ = loss.item();
    guard.check_finite("loss", loss_);
    guard.losses_checked();
    loss.backward();
    opt_->step();
    loss_avg_ = std::isnan(loss_avg_) ? loss_ : 0.9 * loss_avg_ + 0.1 * loss_;
  }

  void log(int64_t, json& rec, std::vector<std::string>&) override {
    rec["loss"] = loss_;
    rec["loss_avg"] = loss_avg_;
  }
  std::string progress() const override {
    char buf[48];
    std::snprintf(buf, sizeof buf, "loss %.4f", loss_avg_);
    return buf;
  }

  // The held-out test-split digits.
  Validation validate(int64_t done, const std::string&) override {
    Validation v;
    v.record = held_out(t_.c, *t_.mnist, t_.test_idx);
    v.record["split"] = "test";
    char buf[96];
    std::snprintf(buf, sizeof buf, "held-out step %lld: loss %.4f accuracy %.2f%%", (long long)done,
                  v.record["loss"].get<double>(), 100 * v.record["accuracy"].get<double>());
    v.lines.push_back(buf);
    return v;
  }

  std::vector<CheckpointFile> checkpoint_files() const override {
    return {{"model.safetensors", t_.c.model->state_dict(),
             {{"format", "convlab-classifier"}, {"config", t_.c.config.dump()}}}};
  }

  json summary(const json&, const json& last_validation) override {
    return {{"parameters", t_.c.model->num_parameters()}, {"final", last_validation}};
  }

 private:
  ClassTask t_;
  std::unique_ptr<Optimizer> opt_;
  EpochOrder order_;
  float loss_ = NAN;
  double loss_avg_ = NAN;
};

}  // namespace

void classify(Classifier& c, const Tensor& images, std::vector<double>& probs, std::vector<double>& feats) {
  NoGradGuard ng;
  c.model->eval();
  const int64_t N = images.size(0), chunk = 250, per = numel_of(images.shape()) / N;
  for (int64_t s = 0; s < N; s += chunk) {
    const int64_t b = std::min(chunk, N - s);
    Shape sh = images.shape();
    sh[0] = b;
    Tensor x = Tensor::from(sh, std::vector<float>(images.data() + s * per, images.data() + (s + b) * per));
    for (size_t i = 0; i + 1 < c.model->size(); ++i) x = c.model->at(i)->forward(x);
    x = flatten(x, 1);
    const Tensor logits = c.model->at(c.model->size() - 1)->forward(x);  // [b, classes]
    feats.insert(feats.end(), x.data(), x.data() + b * c.features);
    for (int64_t i = 0; i < b; ++i) {  // softmax in double, max-subtracted
      const float* l = logits.data() + i * c.classes;
      double mx = l[0], z = 0;
      for (int64_t k = 1; k < c.classes; ++k) mx = std::max(mx, double(l[k]));
      for (int64_t k = 0; k < c.classes; ++k) z += std::exp(double(l[k]) - mx);
      for (int64_t k = 0; k < c.classes; ++k) probs.push_back(std::exp(double(l[k]) - mx) / z);
    }
  }
  c.model->train();
}

double accuracy(const std::vector<double>& probs, const std::vector<int32_t>& labels, int64_t classes) {
  int64_t right = 0;
  for (size_t i = 0; i < labels.size(); ++i) {
    const double* p = probs.data() + i * classes;
    right += std::max_element(p, p + classes) - p == labels[i];
  }
  return labels.empty() ? NAN : double(right) / double(labels.size());
}

Classifier load_classifier(const std::string& checkpoint) {
  const auto f = safetensors::load(checkpoint);
  const json config = checkpoint_config(f.metadata, checkpoint, "convlab-classifier",
                                        "classifier checkpoint (model.safetensors of a \"task\": \"classification\" run, "
                                        "e.g. configs/mnist_classifier.json)");
  Classifier c = build_classifier(config, 1);
  safetensors::copy_into(f, c.model->state_dict(), checkpoint);
  return c;
}

std::unique_ptr<TrainingTask> classifier_training(const json& config) {
  return std::make_unique<ClassifierTraining>(config);
}

json train_classifier(const json& config, const TrainFlags& flags) {
  return run_training(*classifier_training(config), flags);
}

}  // namespace convlab

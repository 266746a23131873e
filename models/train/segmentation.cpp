// models/train/segmentation.cpp: the segmentation task of the training loop, evaluation and prediction.
#include "models/train/segmentation.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>
#include <sstream>

#include "core/error.h"
#include "core/shards.h"
#include "data/picture.h"
#include "data/png.h"
#include "data/safetensors.h"
#include "layers/basic_layers.h"
#include "models/config.h"
#include "models/deform_stats.h"
#include "models/metrics.h"
#include "models/receptive_field.h"
#include "models/seg_task.h"

namespace convlab {

using nlohmann::json;

namespace {

// argmax over channels: logits [B, C, H, W] -> [B*H*W]
std::vector<int32_t> argmax_classes(const Tensor& logits) {
  const int64_t B = logits.size(0), C = logits.size(1), HW = logits.size(2) * logits.size(3);
  std::vector<int32_t> out(B * HW);
  const float* p = logits.data();
  for (int64_t b = 0; b < B; ++b)
    for (int64_t i = 0; i < HW; ++i) {
      int32_t best = 0;
      for (int64_t c = 1; c < C; ++c)
        if (p[(b * C + c) * HW + i] > p[(b * C + best) * HW + i]) best = int32_t(c);
      out[b * HW + i] = best;
    }
  return out;
}

// The samples of a batch this process trains on (core/shards.h local_samples): the whole batch in one process.
SegBatch local_part(SegBatch b) {
  const SampleRange r = local_samples(b.B);
  if (r.begin == 0 && r.end == b.B) return b;
  const int64_t n = r.end - r.begin, HW = b.H * b.W, per_image = b.images.numel() / b.B;
  SegBatch out;
  out.B = n, out.H = b.H, out.W = b.W;
  Shape shape = b.images.shape();
  shape[0] = n;
  out.images = Tensor::empty(shape);
  std::copy(b.images.data() + r.begin * per_image, b.images.data() + r.end * per_image, out.images.data());
  out.labels.assign(b.labels.begin() + r.begin * HW, b.labels.begin() + r.end * HW);
  out.buckets.assign(b.buckets.begin() + r.begin * HW, b.buckets.begin() + r.end * HW);
  return out;
}

void collect_dropouts(const Module& m, std::vector<Dropout*>& out) {
  for (const auto& [n, c] : m.children()) {
    if (auto* d = dynamic_cast<Dropout*>(c.get())) out.push_back(d);
    collect_dropouts(*c, out);
  }
}

std::string printf_str(const char* fmt, double a, double b = 0, double c = 0) {
  char buf[160];
  std::snprintf(buf, sizeof buf, fmt, a, b, c);
  return buf;
}

// Validation batches [val_first_batch(r), val_first_batch(r + 1)) of nbatch run on process r of P: rank 0 the
// first ones (the picture's), also when there are fewer batches than processes.
int64_t val_first_batch(int64_t nbatch, int64_t P, int64_t r) { return (nbatch * r + P - 1) / P; }

// Rank `owner`'s `mine` on every process (a collective: every process calls it).
std::string from_rank(ShardComm& comm, int64_t owner, const std::string& mine) {
  const int64_t P = comm.size(), len = int64_t(mine.size());
  std::vector<int64_t> lens(static_cast<size_t>(P));
  comm.all_gather(&len, sizeof(int64_t), lens.data());
  const int64_t width = *std::max_element(lens.begin(), lens.end());
  std::string padded = mine;
  padded.resize(static_cast<size_t>(width));
  std::string all(static_cast<size_t>(P * width), '\0');
  comm.all_gather(padded.data(), width, all.data());
  return all.substr(static_cast<size_t>(owner * width), static_cast<size_t>(lens[size_t(owner)]));
}

// Validation: loss, metrics, and the picture of the first grid_images images (none when png_path is empty).
// With several processes (comm), each takes a contiguous share of the batches; the per-batch losses and the
// metric counts are gathered, so every process returns what one process computes (the losses added in batch
// order, the counts as integers). The picture comes from the first batches, which are rank 0's.
json validate(SegTask& t, const std::string& png_path, ShardComm* comm = nullptr) {
  NoGradGuard ng;
  t.model->eval();
  SegMetrics metrics(t.val_set->num_classes());
  const int64_t n = t.val_set->size(), B = t.train.batch_size, nbatch = (n + B - 1) / B;
  const int64_t P = comm ? comm->size() : 1, rank = comm ? comm->rank() : 0;
  auto bound = [&](int64_t r) { return val_first_batch(nbatch, P, r); };
  const int64_t first = bound(rank), last = bound(rank + 1);
  std::vector<float> batch_loss(static_cast<size_t>(nbatch), 0.f);
  std::vector<std::vector<RgbImage>> rows;
  bool ignored_shown = false;  // a label of the pictured images is ignored (drawn grey): the legend says so
  for (int64_t start = first * B; start < std::min(n, last * B); start += B) {
    std::vector<int64_t> idx;
    for (int64_t i = start; i < std::min(n, start + B); ++i) idx.push_back(i);
    SegBatch b = make_batch(*t.val_set, idx);
    Tensor logits = t.model->forward(b.images);
    batch_loss[size_t(start / B)] = cross_entropy(logits, b.labels, t.class_weights, t.ignore_index).item();
    const auto pred = argmax_classes(logits);
    metrics.add(pred.data(), b.labels.data(), b.buckets.data(), int64_t(pred.size()));
    const int64_t HW = b.H * b.W;
    for (int64_t k = 0; k < b.B && int64_t(rows.size()) < t.train.grid_images; ++k) {
      rows.push_back({tensor_to_rgb(b.images, k, 0.f, 1.f), labels_to_rgb(b.labels.data() + k * HW, b.H, b.W),
                      labels_to_rgb(pred.data() + k * HW, b.H, b.W)});
      ignored_shown = ignored_shown || std::any_of(b.labels.data() + k * HW, b.labels.data() + (k + 1) * HW,
                                                   [](int32_t l) { return l < 0; });
    }
  }
  t.model->train();
  if (P > 1) {  // every batch's loss from the process that ran it; the counts summed over the processes
    std::vector<float> all(static_cast<size_t>(P * nbatch));
    comm->all_gather(batch_loss.data(), int64_t(sizeof(float)) * nbatch, all.data());
    for (int64_t r = 0; r < P; ++r)
      for (int64_t k = bound(r); k < bound(r + 1); ++k) batch_loss[size_t(k)] = all[size_t(r * nbatch + k)];
    const std::vector<int64_t> mine = metrics.counts();
    const long m = long(mine.size());
    std::vector<int64_t> counts(static_cast<size_t>(P * m));
    comm->all_gather(mine.data(), int64_t(sizeof(int64_t)) * m, counts.data());
    metrics = SegMetrics(t.val_set->num_classes());
    for (int64_t r = 0; r < P; ++r)
      metrics.add_counts(std::vector<int64_t>(counts.begin() + r * m, counts.begin() + (r + 1) * m));
  }
  double loss_sum = 0;
  int64_t batches = 0;
  for (float l : batch_loss)
    if (std::isfinite(l)) loss_sum += l, ++batches;
  if (!png_path.empty() && !rows.empty()) {
    const RgbImage grid = compose_grid(rows);
    const RgbImage big = upscale(grid, grid.W < 400 ? 2 : 1);
    std::vector<LegendEntry> legend = class_legend(t.class_names);
    if (ignored_shown) legend.push_back({"ignored", palette_colour(-1)});
    write_png(png_path, add_legend(big, legend, text_scale_for(big.W)));
  }
  json j = metrics.to_json(t.val_set->class_names());
  j["loss"] = batches ? loss_sum / double(batches) : NAN;
  return j;
}

class SegmentationTraining final : public TrainingTask {
 public:
  explicit SegmentationTraining(const json& config)
      : t_(make_seg_task(config)), opt_(make_optimizer(t_.optimizer_config, *t_.model)),
        order_(t_.train_set->size(), t_.seed) {
    t_.schedule.base_lr = opt_->lr();
    collect_dropouts(*t_.model, drops_);
    CL_CHECK(order_.batches_per_epoch(t_.train.batch_size) > 0,
             "train.batch_size: " << t_.train.batch_size << " is larger than data.train_size " << t_.train_set->size());
  }

  const std::string& name() const override { return t_.name; }
  std::string kind() const override { return "segmentation"; }
  const json& config() const override { return t_.config; }
  LoopPlan plan() const override {
    return {.steps = t_.train.steps, .batch_size = t_.train.batch_size, .log_every = t_.train.log_every,
            .validate_every = t_.train.val_every, .checkpoint_every = t_.train.checkpoint_every,
            .checkpoint_files = {"model.safetensors", "optimizer.safetensors"}, .best_metric = "miou",
            .batch_shards = t_.train.batch_shards};
  }
  std::string describe(const std::string& run_dir) const override {
    std::ostringstream os;
    os << "train " << t_.name << ": " << t_.model->num_parameters() << " parameters, " << t_.train.steps
       << " steps of batch " << t_.train.batch_size << ", run folder " << run_dir << "\n"
       << describe_model(*t_.model, t_.input_shape, t_.config["model"]["layers"]);
    for (const std::string& w : gridding_warnings(t_.config)) os << "warning: " << w << "\n";
    return os.str();
  }

  void restore(const Checkpoint& c) override {
    const auto& mf = c.file("model.safetensors");
    const auto& of = c.file("optimizer.safetensors");
    safetensors::copy_into(mf, t_.model->state_dict(), c.path("model.safetensors"));
    NamedTensors ost(of.tensors.begin(), of.tensors.end());
    opt_->load_state(ost);
    for (size_t i = 0; i < drops_.size(); ++i) {
      auto it = of.metadata.find("dropout_rng." + std::to_string(i));
      CL_CHECK(it != of.metadata.end(),
               "--resume: " << c.path("optimizer.safetensors") << " lacks dropout RNG state " << i);
      std::istringstream is(it->second);
      for (uint64_t& s : drops_[i]->rng().state) is >> s;
    }
  }

  void begin() override { t_.model->train(); }

  void step(int64_t step, StepGuard& guard) override {
    Rng aug(sample_seed(t_.seed ^ 0x5EEDull, step));
    // The global batch, drawn and augmented the same way on every process; this process trains on its shards.
    SegBatch b = local_part(make_batch(*t_.train_set, order_.batch(step, t_.train.batch_size), t_.augment, aug));
    batch_shape_ = b.images.shape();
    opt_->set_lr(t_.schedule.lr_at(step));
    opt_->zero_grad();
    Tensor loss = cross_entropy(t_.model->forward(b.images), b.labels, t_.class_weights, t_.ignore_index);
    loss_ = loss.item();
    guard.check_finite("loss", loss_);
    guard.losses_checked();
    loss.backward();
    opt_->step();
    loss_avg_ = std::isnan(loss_avg_) ? loss_ : 0.9 * loss_avg_ + 0.1 * loss_;
  }

  void log(int64_t, json& rec, std::vector<std::string>& extra) override {
    rec["loss"] = loss_;
    rec["loss_avg"] = loss_avg_;
    rec["lr"] = opt_->lr();
    const std::string deform_line = log_deform_stats(*t_.model, batch_shape_, rec);  // offsets of this step
    if (!deform_line.empty()) extra.push_back(deform_line);
  }

  std::string progress() const override { return printf_str("loss %.4f lr %.2e", loss_avg_, opt_->lr()); }

  Validation validate(int64_t done, const std::string& run_dir) override {
    Validation v;
    v.record = convlab::validate(t_, run_dir.empty() ? "" : run_dir + "/val_" + std::to_string(done) + ".png", comm());
    v.record["split"] = "val";
    const SegSample v0 = t_.val_set->get(0);  // offsets of the last validation batch
    json deform;
    std::string deform_val = log_deform_stats(*t_.model, {1, 3, v0.H, v0.W}, deform);
    if (comm() && comm()->size() > 1) {  // the last batch ran on one process: its statistics, on every process
      const int64_t B = t_.train.batch_size, nbatch = (t_.val_set->size() + B - 1) / B, P = comm()->size();
      int64_t owner = P - 1;  // the last process with a batch (rank 0 when there is none)
      while (owner > 0 && val_first_batch(nbatch, P, owner) > nbatch - 1) --owner;
      const json got = json::parse(from_rank(*comm(), owner, json{{"record", deform}, {"line", deform_val}}.dump()));
      deform = got["record"];
      deform_val = got["line"].get<std::string>();
    }
    if (deform.contains("deform")) v.record["deform"] = deform["deform"];
    v.lines.push_back("val step " + std::to_string(done) + ": " +
                      printf_str("loss %.4f mIoU %.2f%% pixel acc %.2f%%", v.record["loss"].get<double>(),
                                 100 * v.record["miou"].get<double>(), 100 * v.record["pixel_accuracy"].get<double>()));
    if (!deform_val.empty()) v.lines.push_back("  " + deform_val);
    return v;
  }

  std::vector<CheckpointFile> checkpoint_files() const override {
    std::map<std::string, std::string> meta = {{"format", "convlab-segmentation"}};
    for (size_t i = 0; i < drops_.size(); ++i) {
      std::ostringstream os;
      for (uint64_t s : drops_[i]->rng().state) os << s << ' ';
      meta["dropout_rng." + std::to_string(i)] = os.str();
    }
    NamedTensors st;
    for (auto& [k, v] : opt_->state()) st.emplace_back(k, v);
    const std::map<std::string, std::string> model_meta = {{"format", "convlab-segmentation"},
                                                           {"config", t_.config.dump()}};
    return {{"model.safetensors", t_.model->state_dict(), model_meta}, {"optimizer.safetensors", st, meta}};
  }

  json summary(const json&, const json& last_validation) override {
    return {{"parameters", t_.model->num_parameters()},
            {"final", last_validation.is_null() ? convlab::validate(t_, "", comm()) : last_validation}};
  }

 private:
  SegTask t_;
  std::unique_ptr<Optimizer> opt_;
  EpochOrder order_;
  std::vector<Dropout*> drops_;
  Shape batch_shape_;
  float loss_ = NAN;
  double loss_avg_ = NAN;
};

}  // namespace

std::unique_ptr<TrainingTask> segmentation_training(const json& config) {
  return std::make_unique<SegmentationTraining>(config);
}

json train_segmentation(const json& config, const TrainFlags& flags) {
  return run_training(*segmentation_training(config), flags);
}

json eval_segmentation(const json& config, const std::string& checkpoint) {
  SegTask t = make_seg_task(config);
  const auto f = safetensors::load(checkpoint);
  safetensors::copy_into(f, t.model->state_dict(), checkpoint);
  json j = validate(t, "");
  j["checkpoint"] = checkpoint;
  return j;
}

json predict_segmentation(const std::string& checkpoint, const std::string& image, const std::string& out) {
  const auto f = safetensors::load(checkpoint);
  const json config = checkpoint_config(f.metadata, checkpoint, "", "segmentation checkpoint (no config in its metadata)");
  SegTask t = make_seg_task(config, /*with_data=*/false);
  safetensors::copy_into(f, t.model->state_dict(), checkpoint);
  const PngImage png = read_png(image);
  const RgbImage rgb = to_rgb(png);
  Tensor x = Tensor::empty({1, 3, rgb.H, rgb.W});
  for (int64_t c = 0; c < 3; ++c)
    for (int64_t y = 0; y < rgb.H; ++y)
      for (int64_t xx = 0; xx < rgb.W; ++xx) x.data()[(c * rgb.H + y) * rgb.W + xx] = rgb.at(y, xx)[c] / 255.f;
  NoGradGuard ng;
  t.model->eval();
  Tensor logits;
  try {
    logits = t.model->forward(x);
  } catch (const Error& e) {
    CL_FAIL("predict: the network cannot take " << image << " (" << rgb.W << "x" << rgb.H << "): " << e.what());
  }
  CL_CHECK(logits.dim() == 4 && logits.size(2) == rgb.H && logits.size(3) == rgb.W,
           "predict: the network maps " << rgb.W << "x" << rgb.H << " to " << shape_str(logits.shape()));
  const auto pred = argmax_classes(logits);
  const RgbImage mask = labels_to_rgb(pred.data(), rgb.H, rgb.W);
  write_png(out, add_legend(mask, class_legend(t.class_names), text_scale_for(mask.W)));
  std::vector<int64_t> counts(logits.size(1), 0);
  for (int32_t p : pred) ++counts[p];
  return {{"output", out}, {"width", rgb.W}, {"height", rgb.H}, {"class_pixels", counts}};
}

}  // namespace convlab

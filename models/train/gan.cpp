// models/train/gan.cpp: the GAN task (alternating D and G steps), its checkpoints and sample grids.
#include "models/train/gan.h"

#include <algorithm>
#include <cmath>
#include <vector>
#include <cstdio>
#include <sstream>

#include "core/shards.h"
#include "core/error.h"
#include "core/loss.h"
#include "data/batch.h"
#include "data/png.h"
#include "data/safetensors.h"
#include "models/checkpoint.h"
#include "models/config.h"
#include "models/gan_task.h"
#include "models/seg_task.h"  // make_optimizer

namespace convlab {

using nlohmann::json;

namespace {

constexpr uint64_t kZ = 0x2A7E47ull, kFixed = 0xF1CEDull;

// mean(sigmoid(logits)) over the global batch: the discriminator's average probability that its input is real
// (per batch shard in order, the shards folded in order: core/shards.h).
double mean_prob(const Tensor& logits) {
  const int64_t n = logits.numel(), shards = local_shards(n, "D(x)"), per = n / shards;
  std::vector<double> part(static_cast<size_t>(shards));
  const float* p = logits.data();
  for (int64_t k = 0; k < shards; ++k)
    for (int64_t i = k * per; i < (k + 1) * per; ++i) part[size_t(k)] += 1.0 / (1.0 + std::exp(-double(p[i])));
  double s = 0;
  fold_shards(part.data(), 1, &s);
  return s / double(per * batch_shards().total);
}

class GanTraining final : public TrainingTask {
 public:
  explicit GanTraining(const json& config)
      : t_(make_gan_task(config)), og_(make_optimizer(t_.optimizer_g, *t_.generator)),
        od_(make_optimizer(t_.optimizer_d, *t_.discriminator)), order_(int64_t(t_.train_indices.size()), t_.seed),
        B_(t_.train.batch_size), ones_(Tensor::ones({B_, 1})), zeros_(Tensor::zeros({B_, 1})),
        real_target_(Tensor::ones({B_, 1})) {
    const int64_t per_epoch = order_.batches_per_epoch(B_);
    sample_every_ = t_.train.sample_every > 0 ? t_.train.sample_every : per_epoch;
    ckpt_every_ = t_.train.checkpoint_every > 0 ? t_.train.checkpoint_every : std::min(sample_every_, kDefaultCheckpointEveryMax);
    Rng fixed_rng(t_.seed ^ kFixed);
    fixed_z_ = sample_latent(t_, t_.train.samples, fixed_rng);
    // gan.real_label: 1, or e.g. 0.9 (one-sided label smoothing)
    std::fill(real_target_.data(), real_target_.data() + B_, t_.real_label);
  }

  const std::string& name() const override { return t_.name; }
  std::string kind() const override { return "gan"; }
  const json& config() const override { return t_.config; }
  LoopPlan plan() const override {
    return {.steps = t_.train.steps, .batch_size = B_, .log_every = t_.train.log_every,
            .validate_every = sample_every_, .checkpoint_every = ckpt_every_,
            .checkpoint_files = {"generator.safetensors", "discriminator.safetensors", "optimizer.safetensors",
                                 "generator_ema.safetensors"}, .batch_shards = t_.train.batch_shards};
  }
  std::string describe(const std::string& run_dir) const override {
    std::ostringstream os;
    os << "train " << t_.name << " (GAN): generator " << t_.generator->num_parameters()
       << " parameters, discriminator " << t_.discriminator->num_parameters() << "; " << t_.train.steps
       << " steps of batch " << B_ << " (" << order_.batches_per_epoch(B_) << " per epoch of "
       << t_.train_indices.size() << " images), run folder " << run_dir << "\ngenerator:\n"
       << describe_model(*t_.generator, t_.z_shape(B_), t_.config["generator"]["layers"]) << "discriminator:\n"
       << describe_model(*t_.discriminator, t_.image_shape(B_), t_.config["discriminator"]["layers"]);
    return os.str();
  }

  void restore(const Checkpoint& c) override {
    safetensors::copy_into(c.file("generator.safetensors"), t_.generator->state_dict(), c.path("generator.safetensors"));
    if (t_.generator_ema) {
      CL_CHECK(c.has("generator_ema.safetensors"), "--resume: gan.ema_decay is set but the checkpoint of step "
                                                       << c.step << " (" << c.source
                                                       << ") has no generator_ema.safetensors to continue from");
      safetensors::copy_into(c.file("generator_ema.safetensors"), t_.generator_ema->state_dict(),
                             c.path("generator_ema.safetensors"));
    }
    safetensors::copy_into(c.file("discriminator.safetensors"), t_.discriminator->state_dict(),
                           c.path("discriminator.safetensors"));
    const std::string& op = c.path("optimizer.safetensors");
    NamedTensors sg, sd;
    for (auto& [k, v] : c.file("optimizer.safetensors").tensors) {
      if (k.rfind("g.", 0) == 0) sg.emplace_back(k.substr(2), v);
      else if (k.rfind("d.", 0) == 0) sd.emplace_back(k.substr(2), v);
      else CL_FAIL("--resume: " << op << " holds an unexpected tensor '" << k << "'");
    }
    og_->load_state(sg);
    od_->load_state(sd);
  }

  void begin() override {
    t_.generator->train();
    t_.discriminator->train();
  }

  void step(int64_t step, StepGuard& guard) override {
    // The global batch's images and noise, drawn the same way on every process; this process takes its shards.
    const SampleRange r = local_samples(B_);
    const int64_t b = r.end - r.begin;
    auto mine = [&](const Tensor& t) { return b == B_ ? t : slice(t, 0, r.begin, r.end); };
    auto logits_of = [&](const Tensor& x) { return reshape(t_.discriminator->forward(x), {b, 1}); };
    const Tensor real = mine(real_images(t_, order_.batch(step, B_)));
    Rng zr(sample_seed(t_.seed ^ kZ, step));
    const Tensor z = mine(sample_latent(t_, B_, zr));
    // D step: maximise log D(x) + log(1 - D(G(z))), i.e. minimise BCE(D(x), 1) + BCE(D(G(z)), 0).
    const Tensor fake = t_.generator->forward(z);  // [B, C, S, S], keeps G's graph for the G step
    od_->zero_grad();
    const Tensor real_logits = logits_of(real);
    Tensor loss_real = bce_with_logits(real_logits, mine(real_target_));
    const Tensor fake_logits = logits_of(fake.detach());
    Tensor loss_fake = bce_with_logits(fake_logits, mine(zeros_));
    ld_ = loss_real.item() + loss_fake.item();
    guard.check_finite("the discriminator loss", ld_);
    loss_real.backward();  // two backward passes, as the real and fake batches have their own BN statistics
    loss_fake.backward();
    od_->step();
    // G step, non-saturating: minimise BCE(D(G(z)), 1) = -log D(G(z)) (the D gradients it leaves are zeroed above).
    og_->zero_grad();
    const Tensor gen_logits = logits_of(fake);
    Tensor loss_g = bce_with_logits(gen_logits, mine(ones_));
    lg_ = loss_g.item();
    guard.check_finite("the generator loss", lg_);
    guard.losses_checked();  // both losses of the weights a deferred checkpoint holds are finite
    loss_g.backward();
    og_->step();
    update_generator_ema(t_, step);
    d_x_ = mean_prob(real_logits), d_g_z1_ = mean_prob(fake_logits), d_g_z2_ = mean_prob(gen_logits);
    ld_avg_ = std::isnan(ld_avg_) ? ld_ : 0.9 * ld_avg_ + 0.1 * ld_;
    lg_avg_ = std::isnan(lg_avg_) ? lg_ : 0.9 * lg_avg_ + 0.1 * lg_;
  }

  void log(int64_t, json& rec, std::vector<std::string>&) override {
    rec["loss_d"] = ld_;
    rec["loss_g"] = lg_;
    rec["d_x"] = d_x_;
    rec["d_g_z1"] = d_g_z1_;
    rec["d_g_z2"] = d_g_z2_;
  }

  std::string progress() const override {
    char buf[160];
    std::snprintf(buf, sizeof buf, "loss D %.4f G %.4f D(x) %.3f D(G(z)) %.3f/%.3f", ld_avg_, lg_avg_, d_x_, d_g_z1_,
                  d_g_z2_);
    return buf;
  }

  // The fixed-noise sample grid (no metrics).
  Validation validate(int64_t done, const std::string& run_dir) override {
    if (!run_dir.empty()) write_sample_grid(run_dir + "/samples_" + std::to_string(done) + ".png", generate(t_, fixed_z_));
    return {};
  }

  std::vector<CheckpointFile> checkpoint_files() const override {
    const std::string cfg = t_.config.dump();
    NamedTensors st;
    for (auto& [k, v] : og_->state()) st.emplace_back("g." + k, v);
    for (auto& [k, v] : od_->state()) st.emplace_back("d." + k, v);
    std::vector<CheckpointFile> files = {
        {"generator.safetensors", t_.generator->state_dict(), {{"format", "convlab-gan-generator"}, {"config", cfg}}},
        {"discriminator.safetensors", t_.discriminator->state_dict(),
         {{"format", "convlab-gan-discriminator"}, {"config", cfg}}},
        {"optimizer.safetensors", st, {{"format", "convlab-gan-optimizer"}}}};
    if (t_.generator_ema)  // the averaged weights: `convlab sample` / `gan-eval` take this file like generator.safetensors
      files.push_back({"generator_ema.safetensors", t_.generator_ema->state_dict(),
                       {{"format", "convlab-gan-generator"}, {"config", cfg}, {"weights", "ema"}}});
    return files;
  }

  json summary(const json& last_log, const json&) override {
    return {{"generator_parameters", t_.generator->num_parameters()},
            {"discriminator_parameters", t_.discriminator->num_parameters()},
            {"last", last_log}};
  }

 private:
  GanTask t_;
  std::unique_ptr<Optimizer> og_, od_;
  EpochOrder order_;
  int64_t B_, sample_every_ = 0, ckpt_every_ = 0;
  Tensor ones_, zeros_, real_target_, fixed_z_;
  float ld_ = NAN, lg_ = NAN;
  double d_x_ = NAN, d_g_z1_ = NAN, d_g_z2_ = NAN, ld_avg_ = NAN, lg_avg_ = NAN;
};

}  // namespace

void write_sample_grid(const std::string& path, const Tensor& images, int64_t cols) {
  std::vector<std::vector<RgbImage>> rows;
  for (int64_t i = 0; i < images.size(0); ++i) {
    if (i % cols == 0) rows.emplace_back();
    rows.back().push_back(tensor_to_rgb(images, i, -1.f, 1.f));
  }
  write_png(path, upscale(compose_grid(rows, 1, 255), 2));
}

std::unique_ptr<TrainingTask> gan_training(const json& config) { return std::make_unique<GanTraining>(config); }

json train_gan(const json& config, const TrainFlags& flags) { return run_training(*gan_training(config), flags); }

}  // namespace convlab

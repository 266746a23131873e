// tools/lib/train_gan.cpp: the GAN training loop (alternating D and G steps), its checkpoints and sample grids.
// Determinism: the real batch of step s is EpochOrder(seed).batch(s, B) over the train split, the latent batch
// is drawn from Rng(sample_seed(seed ^ kZ, s)); nothing else is random, so a run is bit-identical on 1 and 2
// threads and across --resume.
#include "tools/lib/train_gan.h"

#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <iostream>

#include "core/cpu.h"
#include "core/error.h"
#include "core/loss.h"
#include "data/batch.h"
#include "data/dataset.h"
#include "data/png.h"
#include "data/safetensors.h"
#include "models/checkpoint.h"
#include "models/config.h"
#include "models/gan_task.h"
#include "models/seg_task.h"  // make_optimizer
#include "tools/lib/io.h"

namespace convlab {

using nlohmann::json;
namespace fs = std::filesystem;

namespace {

constexpr uint64_t kZ = 0x2A7E47ull, kFixed = 0xF1CEDull;

std::string fmt_time(double s) {
  char buf[32];
  if (s >= 60) std::snprintf(buf, sizeof buf, "%dm%02ds", int(s) / 60, int(s) % 60);
  else std::snprintf(buf, sizeof buf, "%.1fs", s);
  return buf;
}

// mean(sigmoid(logits)): the discriminator's average probability that its input is real.
double mean_prob(const Tensor& logits) {
  double s = 0;
  const float* p = logits.data();
  for (int64_t i = 0; i < logits.numel(); ++i) s += 1.0 / (1.0 + std::exp(-double(p[i])));
  return s / double(logits.numel());
}

std::vector<CheckpointFile> checkpoint_files(const GanTask& t, const Optimizer& og, const Optimizer& od) {
  const std::string cfg = t.config.dump();
  NamedTensors st;
  for (auto& [k, v] : og.state()) st.emplace_back("g." + k, v);
  for (auto& [k, v] : od.state()) st.emplace_back("d." + k, v);
  std::vector<CheckpointFile> files = {
      {"generator.safetensors", t.generator->state_dict(), {{"format", "convlab-gan-generator"}, {"config", cfg}}},
      {"discriminator.safetensors", t.discriminator->state_dict(),
       {{"format", "convlab-gan-discriminator"}, {"config", cfg}}},
      {"optimizer.safetensors", st, {{"format", "convlab-gan-optimizer"}}}};
  if (t.generator_ema)  // the averaged weights: `convlab sample` / `gan-eval` take this file like generator.safetensors
    files.push_back({"generator_ema.safetensors", t.generator_ema->state_dict(),
                     {{"format", "convlab-gan-generator"}, {"config", cfg}, {"weights", "ema"}}});
  return files;
}

int64_t load_checkpoint(GanTask& t, Optimizer& og, Optimizer& od, const Checkpoint& c) {
  safetensors::copy_into(c.file("generator.safetensors"), t.generator->state_dict(), c.path("generator.safetensors"));
  if (t.generator_ema) {
    CL_CHECK(c.has("generator_ema.safetensors"), "--resume: gan.ema_decay is set but the checkpoint of step "
                                                     << c.step << " (" << c.source
                                                     << ") has no generator_ema.safetensors to continue from");
    safetensors::copy_into(c.file("generator_ema.safetensors"), t.generator_ema->state_dict(),
                           c.path("generator_ema.safetensors"));
  }
  safetensors::copy_into(c.file("discriminator.safetensors"), t.discriminator->state_dict(),
                         c.path("discriminator.safetensors"));
  const std::string& op = c.path("optimizer.safetensors");
  NamedTensors sg, sd;
  for (auto& [k, v] : c.file("optimizer.safetensors").tensors) {
    if (k.rfind("g.", 0) == 0) sg.emplace_back(k.substr(2), v);
    else if (k.rfind("d.", 0) == 0) sd.emplace_back(k.substr(2), v);
    else CL_FAIL("--resume: " << op << " holds an unexpected tensor '" << k << "'");
  }
  og.load_state(sg);
  od.load_state(sd);
  return c.step;
}

}  // namespace

void write_sample_grid(const std::string& path, const Tensor& images, int64_t cols) {
  std::vector<std::vector<RgbImage>> rows;
  for (int64_t i = 0; i < images.size(0); ++i) {
    if (i % cols == 0) rows.emplace_back();
    rows.back().push_back(tensor_to_rgb(images, i, -1.f, 1.f));
  }
  write_png(path, upscale(compose_grid(rows, 1, 255), 2));
}

json train_gan(const json& config, const TrainFlags& flags) {
  GanTask t = make_gan_task(config);
  auto og = make_optimizer(t.optimizer_g, *t.generator);
  auto od = make_optimizer(t.optimizer_d, *t.discriminator);
  const fs::path dir = fs::path(flags.runs_dir) / t.name;
  RunCheckpoints ckpts(dir.string(), {"generator.safetensors", "discriminator.safetensors", "optimizer.safetensors",
                                      "generator_ema.safetensors"});
  ckpts.start(flags.resume, flags.overwrite);

  const int64_t B = t.train.batch_size, n = int64_t(t.train_indices.size());
  EpochOrder order(n, t.seed);
  const int64_t per_epoch = order.batches_per_epoch(B);
  const int64_t sample_every = t.train.sample_every > 0 ? t.train.sample_every : per_epoch;
  const int64_t ckpt_every = t.train.checkpoint_every > 0 ? t.train.checkpoint_every : sample_every;
  Rng fixed_rng(t.seed ^ kFixed);
  const Tensor fixed_z = sample_latent(t, t.train.samples, fixed_rng);

  int64_t step = 0;
  if (flags.resume) {
    step = load_checkpoint(t, *og, *od, ckpts.load());
    ckpts.trim_metrics(step);
  }
  write_file_atomic((dir / "config.json").string(), t.config.dump(2) + "\n");
  std::FILE* mlog = std::fopen((dir / "metrics.jsonl").string().c_str(), "a");
  CL_CHECK(mlog, (dir / "metrics.jsonl").string() << ": cannot write");
  auto log_json = [&](const json& j) {
    std::fputs((j.dump() + "\n").c_str(), mlog);
    std::fflush(mlog);
  };
  const bool tty = flags.progress_bar && isatty(fileno(stdout));
  if (!flags.quiet) {
    std::cout << "train " << t.name << " (GAN): generator " << t.generator->num_parameters() << " parameters, discriminator "
              << t.discriminator->num_parameters() << "; " << t.train.steps << " steps of batch " << B << " ("
              << per_epoch << " per epoch of " << n << " images), run folder " << dir.string() << "\ngenerator:\n"
              << describe_model(*t.generator, t.z_shape(B)) << "discriminator:\n"
              << describe_model(*t.discriminator, t.image_shape(B)) << std::flush;
  }
  const Tensor ones = Tensor::ones({B, 1}), zeros = Tensor::zeros({B, 1});
  Tensor real_target = Tensor::ones({B, 1});  // gan.real_label: 1, or e.g. 0.9 (one-sided label smoothing)
  std::fill(real_target.data(), real_target.data() + B, t.real_label);
  auto logits_of = [&](const Tensor& x) { return reshape(t.discriminator->forward(x), {B, 1}); };
  const int64_t first = step;
  const auto t0 = std::chrono::steady_clock::now();
  double ld_avg = NAN, lg_avg = NAN;
  json last;
  t.generator->train();
  t.discriminator->train();
  for (; step < t.train.steps; ++step) {
    const int64_t done = step + 1;
    const Tensor real = real_images(t, order.batch(step, B));
    Rng zr(sample_seed(t.seed ^ kZ, step));
    const Tensor z = sample_latent(t, B, zr);
    auto nan_stop = [&](const char* what, float v) {
      CL_CHECK(std::isfinite(v), "train: " << what << " became " << v << " at step " << done << "; " << ckpts.kept());
    };
    // D step: maximise log D(x) + log(1 - D(G(z))), i.e. minimise BCE(D(x), 1) + BCE(D(G(z)), 0).
    const Tensor fake = t.generator->forward(z);  // [B, C, S, S], keeps G's graph for the G step
    od->zero_grad();
    const Tensor real_logits = logits_of(real);
    Tensor loss_real = bce_with_logits(real_logits, real_target);
    const Tensor fake_logits = logits_of(fake.detach());
    Tensor loss_fake = bce_with_logits(fake_logits, zeros);
    const float ld = loss_real.item() + loss_fake.item();
    nan_stop("the discriminator loss", ld);
    loss_real.backward();  // two backward passes, as the real and fake batches have their own BN statistics
    loss_fake.backward();
    od->step();
    // G step, non-saturating: minimise BCE(D(G(z)), 1) = -log D(G(z)) (the D gradients it leaves are zeroed above).
    og->zero_grad();
    const Tensor gen_logits = logits_of(fake);
    Tensor loss_g = bce_with_logits(gen_logits, ones);
    const float lg = loss_g.item();
    nan_stop("the generator loss", lg);
    ckpts.commit_pending();  // both losses of the weights it holds are finite: now it may become durable
    loss_g.backward();
    og->step();
    update_generator_ema(t, step);

    ld_avg = std::isnan(ld_avg) ? ld : 0.9 * ld_avg + 0.1 * ld;
    lg_avg = std::isnan(lg_avg) ? lg : 0.9 * lg_avg + 0.1 * lg;
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    const double sps = double(done - first) / std::max(secs, 1e-9);
    const double eta = double(t.train.steps - done) / std::max(sps, 1e-9);
    if (done % t.train.log_every == 0 || done == t.train.steps) {
      last = {{"step", done}, {"loss_d", ld}, {"loss_g", lg}, {"d_x", mean_prob(real_logits)},
              {"d_g_z1", mean_prob(fake_logits)}, {"d_g_z2", mean_prob(gen_logits)},
              {"images_per_s", sps * B}, {"seconds", secs}};
      log_json(last);
      if (!flags.quiet && !tty)
        std::printf("step %lld/%lld loss D %.4f G %.4f D(x) %.3f D(G(z)) %.3f/%.3f %.2f it/s ETA %s\n", (long long)done,
                    (long long)t.train.steps, ld_avg, lg_avg, last["d_x"].get<double>(), last["d_g_z1"].get<double>(),
                    last["d_g_z2"].get<double>(), sps, fmt_time(eta).c_str());
    }
    if (!flags.quiet && tty) {
      const int width = 24, filled = int(width * done / t.train.steps);
      std::printf("\r[%s%s] %lld/%lld loss D %.3f G %.3f %.2f it/s ETA %s   ", std::string(filled, '#').c_str(),
                  std::string(width - filled, '.').c_str(), (long long)done, (long long)t.train.steps, ld_avg, lg_avg,
                  sps, fmt_time(eta).c_str());
    }
    std::fflush(stdout);
    if (done % sample_every == 0 || done == t.train.steps)
      write_sample_grid((dir / ("samples_" + std::to_string(done) + ".png")).string(), generate(t, fixed_z));
    const bool stop = done == flags.stop_after;
    // Written once the next step's losses are finite (models/checkpoint.h); the last step has none, so at once.
    if (done == t.train.steps || stop)
      ckpts.save(done, checkpoint_files(t, *og, *od));  // refuses non-finite weights, statistics or state
    else if (done % ckpt_every == 0)
      ckpts.defer(done, checkpoint_files(t, *og, *od));
    if (stop) break;
  }
  std::fclose(mlog);
  if (!flags.quiet && tty) std::printf("\n");
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  json summary = {{"name", t.name},         {"task", "gan"},
                  {"steps", t.train.steps}, {"completed_steps", step == t.train.steps ? step : step + 1},
                  {"batch_size", B},        {"generator_parameters", t.generator->num_parameters()},
                  {"discriminator_parameters", t.discriminator->num_parameters()},
                  {"train_seconds", secs},  {"last", last},
                  {"run_dir", dir.string()},
                  {"simd_target_gemm", isa_name(active_isa())}};
  write_file_atomic((dir / "summary.json").string(), summary.dump(2) + "\n");
  return summary;
}

}  // namespace convlab

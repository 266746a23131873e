// tools/lib/train_seg.cpp: the segmentation training loop, evaluation and prediction.
// Determinism: the batch of step s is EpochOrder(seed).batch(s, B); its augmentation draws from
// Rng(sample_seed(seed, s)); dropout RNG states are checkpointed. With the kernels' fixed reduction orders,
// a run is bit-identical on 1 and 2 threads and across --resume.
#include "tools/lib/train_seg.h"

#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <sstream>

#include "core/cpu.h"
#include "core/error.h"
#include "data/png.h"
#include "data/safetensors.h"
#include "layers/basic_layers.h"
#include "models/checkpoint.h"
#include "models/config.h"
#include "models/metrics.h"
#include "models/receptive_field.h"
#include "models/seg_task.h"
#include "tools/lib/deform_viz.h"  // log_deform_stats
#include "tools/lib/io.h"

namespace convlab {

using nlohmann::json;
namespace fs = std::filesystem;

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

void collect_dropouts(const Module& m, std::vector<Dropout*>& out) {
  for (const auto& [n, c] : m.children()) {
    if (auto* d = dynamic_cast<Dropout*>(c.get())) out.push_back(d);
    collect_dropouts(*c, out);
  }
}

std::string fmt_time(double s) {
  char buf[32];
  if (s >= 60) std::snprintf(buf, sizeof buf, "%dm%02ds", int(s) / 60, int(s) % 60);
  else std::snprintf(buf, sizeof buf, "%.1fs", s);
  return buf;
}

// Validation: loss, metrics, and the picture of the first grid_images images.
json validate(SegTask& t, const std::string& png_path) {
  NoGradGuard ng;
  t.model->eval();
  SegMetrics metrics(t.val_set->num_classes());
  const int64_t n = t.val_set->size(), B = t.train.batch_size;
  double loss_sum = 0;
  int64_t batches = 0;
  std::vector<std::vector<RgbImage>> rows;
  for (int64_t start = 0; start < n; start += B) {
    std::vector<int64_t> idx;
    for (int64_t i = start; i < std::min(n, start + B); ++i) idx.push_back(i);
    SegBatch b = make_batch(*t.val_set, idx);
    Tensor logits = t.model->forward(b.images);
    const float l = cross_entropy(logits, b.labels, t.class_weights, t.ignore_index).item();
    if (std::isfinite(l)) loss_sum += l, ++batches;
    const auto pred = argmax_classes(logits);
    metrics.add(pred.data(), b.labels.data(), b.buckets.data(), int64_t(pred.size()));
    const int64_t HW = b.H * b.W;
    for (int64_t k = 0; k < b.B && int64_t(rows.size()) < t.train.grid_images; ++k)
      rows.push_back({tensor_to_rgb(b.images, k, 0.f, 1.f), labels_to_rgb(b.labels.data() + k * HW, b.H, b.W),
                      labels_to_rgb(pred.data() + k * HW, b.H, b.W)});
  }
  t.model->train();
  if (!png_path.empty() && !rows.empty()) {
    const RgbImage grid = compose_grid(rows);
    write_png(png_path, upscale(grid, grid.W < 400 ? 2 : 1));
  }
  json j = metrics.to_json(t.val_set->class_names());
  j["loss"] = batches ? loss_sum / double(batches) : NAN;
  return j;
}

std::vector<CheckpointFile> checkpoint_files(const SegTask& t, const Optimizer& opt,
                                             const std::vector<Dropout*>& drops) {
  std::map<std::string, std::string> meta = {{"format", "convlab-segmentation"}};
  for (size_t i = 0; i < drops.size(); ++i) {
    std::ostringstream os;
    for (uint64_t s : drops[i]->rng().state) os << s << ' ';
    meta["dropout_rng." + std::to_string(i)] = os.str();
  }
  NamedTensors st;
  for (auto& [k, v] : opt.state()) st.emplace_back(k, v);
  const std::map<std::string, std::string> model_meta = {{"format", "convlab-segmentation"}, {"config", t.config.dump()}};
  return {{"model.safetensors", t.model->state_dict(), model_meta},
          {"optimizer.safetensors", st, meta}};
}

int64_t load_checkpoint(SegTask& t, Optimizer& opt, const std::vector<Dropout*>& drops, const Checkpoint& c) {
  const auto& mf = c.file("model.safetensors");
  const auto& of = c.file("optimizer.safetensors");
  safetensors::copy_into(mf, t.model->state_dict(), c.path("model.safetensors"));
  NamedTensors ost(of.tensors.begin(), of.tensors.end());
  opt.load_state(ost);
  for (size_t i = 0; i < drops.size(); ++i) {
    auto it = of.metadata.find("dropout_rng." + std::to_string(i));
    CL_CHECK(it != of.metadata.end(),
             "--resume: " << c.path("optimizer.safetensors") << " lacks dropout RNG state " << i);
    std::istringstream is(it->second);
    for (uint64_t& s : drops[i]->rng().state) is >> s;
  }
  return c.step;
}

}  // namespace

json train_segmentation(const json& config, const TrainFlags& flags) {
  SegTask t = make_seg_task(config);
  auto opt = make_optimizer(t.optimizer_config, *t.model);
  t.schedule.base_lr = opt->lr();
  std::vector<Dropout*> drops;
  collect_dropouts(*t.model, drops);
  const fs::path dir = fs::path(flags.runs_dir) / t.name;
  RunCheckpoints ckpts(dir.string(), {"model.safetensors", "optimizer.safetensors"});
  ckpts.start(flags.resume, flags.overwrite);
  int64_t step = 0;
  if (flags.resume) {
    step = load_checkpoint(t, *opt, drops, ckpts.load());
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
    std::cout << "train " << t.name << ": " << t.model->num_parameters() << " parameters, " << t.train.steps
              << " steps of batch " << t.train.batch_size << ", run folder " << dir.string() << "\n"
              << describe_model(*t.model, t.input_shape) << std::flush;
    for (const std::string& w : gridding_warnings(t.config)) std::cout << "warning: " << w << "\n";
  }
  EpochOrder order(t.train_set->size(), t.seed);
  const int64_t B = t.train.batch_size;
  CL_CHECK(order.batches_per_epoch(B) > 0, "train.batch_size: " << B << " is larger than data.train_size " << t.train_set->size());
  json last_val;
  const auto t0 = std::chrono::steady_clock::now();
  const int64_t first = step;
  double loss_avg = NAN;
  t.model->train();
  for (; step < t.train.steps; ++step) {
    Rng aug(sample_seed(t.seed ^ 0x5EEDull, step));
    SegBatch b = make_batch(*t.train_set, order.batch(step, B), t.augment, aug);
    opt->set_lr(t.schedule.lr_at(step));
    opt->zero_grad();
    Tensor loss = cross_entropy(t.model->forward(b.images), b.labels, t.class_weights, t.ignore_index);
    const float l = loss.item();
    CL_CHECK(std::isfinite(l), "train: loss became " << l << " at step " << step + 1 << "; " << ckpts.kept());
    ckpts.commit_pending();  // the weights it holds gave a finite loss: now it may become durable
    loss.backward();
    opt->step();
    loss_avg = std::isnan(loss_avg) ? l : 0.9 * loss_avg + 0.1 * l;
    const int64_t done = step + 1;
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    const double ips = double((done - first) * B) / std::max(secs, 1e-9);
    const double eta = double(t.train.steps - done) * B / std::max(ips, 1e-9);
    if (done % t.train.log_every == 0 || done == t.train.steps) {
      json rec = {{"step", done}, {"loss", l}, {"loss_avg", loss_avg}, {"lr", opt->lr()}, {"images_per_s", ips}};
      const std::string deform_line = log_deform_stats(*t.model, b.images.shape(), rec);  // offsets of this step
      log_json(rec);
      if (!flags.quiet && !tty)
        std::printf("step %lld/%lld loss %.4f lr %.2e %.1f img/s ETA %s\n", (long long)done, (long long)t.train.steps,
                    loss_avg, opt->lr(), ips, fmt_time(eta).c_str());
      if (!flags.quiet && !tty && !deform_line.empty()) std::printf("  %s\n", deform_line.c_str());
    }
    if (!flags.quiet && tty) {
      const int width = 24, filled = int(width * done / t.train.steps);
      std::printf("\r[%s%s] %lld/%lld loss %.4f %.1f img/s ETA %s   ", std::string(filled, '#').c_str(),
                  std::string(width - filled, '.').c_str(), (long long)done, (long long)t.train.steps, loss_avg, ips,
                  fmt_time(eta).c_str());
    }
    std::fflush(stdout);
    if (done % t.train.val_every == 0 || done == t.train.steps) {
      last_val = validate(t, (dir / ("val_" + std::to_string(done) + ".png")).string());
      last_val["step"] = done;
      last_val["split"] = "val";
      const SegSample v0 = t.val_set->get(0);  // offsets of the last validation batch
      const std::string deform_val = log_deform_stats(*t.model, {1, 3, v0.H, v0.W}, last_val);
      log_json(last_val);
      if (!flags.quiet)
        std::printf("%sval step %lld: loss %.4f mIoU %.2f%% pixel acc %.2f%%\n", tty ? "\n" : "", (long long)done,
                    last_val["loss"].get<double>(), 100 * last_val["miou"].get<double>(),
                    100 * last_val["pixel_accuracy"].get<double>());
      if (!flags.quiet && !deform_val.empty()) std::printf("  %s\n", deform_val.c_str());
    }
    const bool stop = done == flags.stop_after;
    // Written once the next step's loss is finite (models/checkpoint.h); the last step has none, so at once.
    if (done == t.train.steps || stop)
      ckpts.save(done, checkpoint_files(t, *opt, drops));  // refuses non-finite weights, statistics or state
    else if (done % t.train.checkpoint_every == 0)
      ckpts.defer(done, checkpoint_files(t, *opt, drops));
    if (stop) break;
  }
  std::fclose(mlog);
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (last_val.is_null()) last_val = validate(t, "");
  json summary = {{"name", t.name},
                  {"steps", t.train.steps},
                  {"parameters", t.model->num_parameters()},
                  {"train_seconds", secs},
                  {"final", last_val},
                  {"run_dir", dir.string()},
                  {"simd_target_gemm", isa_name(active_isa())}};
  write_file_atomic((dir / "summary.json").string(), summary.dump(2) + "\n");
  return summary;
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
  auto it = f.metadata.find("config");
  CL_CHECK(it != f.metadata.end(), "checkpoint " << checkpoint << ": no config in its metadata (not a convlab segmentation checkpoint)");
  json config;
  try {
    config = json::parse(it->second);
  } catch (const json::parse_error&) {
    CL_FAIL("checkpoint " << checkpoint << ": its config metadata is not valid JSON");
  }
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
  write_png(out, labels_to_rgb(pred.data(), rgb.H, rgb.W));
  std::vector<int64_t> counts(logits.size(1), 0);
  for (int32_t p : pred) ++counts[p];
  return {{"output", out}, {"width", rgb.W}, {"height", rgb.H}, {"class_pixels", counts}};
}

}  // namespace convlab

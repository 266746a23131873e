// models/gan_task.h: everything a GAN run ("task": "gan") is made of, read from a config: the generator and
// the discriminator (each a layer list in the config language of models/config.h), the latent size, the
// DCGAN initialisation, the two Adam optimizers and the training settings. Used by `convlab train`
// (models/train/gan.cpp), `convlab sample` and `convlab gan-eval` (tools/lib/gan_cli.cpp).
//
// Config (configs/dcgan_mnist.json is the reference):
//   "gan":   {"latent_size": 100, "init": "dcgan" | "default", "image_channels": 1, "image_size": 28,
//             "sample_bn": "eval" | "batch", "ema_decay": 0 (off) or e.g. 0.999,
//             "real_label": 1 (the target of D on real images; 0.9 = one-sided label smoothing)}
//   "generator": {"layers": [...]}      input z [B, latent_size, 1, 1], output [B, C, S, S] (tanh range)
//   "discriminator": {"layers": [...]}  input [B, C, S, S], output one logit per image ([B, 1, 1, 1] or [B, 1])
//   "optimizer": {...} for both nets (make_optimizer), or "optimizer_g" / "optimizer_d" for each
//   "data": {"dataset": "mnist", "mnist_dir": ..., "train_size": N (first N of the train split)}
//           or {"dataset": "shapes", "train_size": N (default 8000)}: the embedded shapes set (data/shapes.h)
//           rendered at gan.image_size, grey (image_channels 1, the RGB mean) or RGB (3), needing no download
//   "train": {"steps", "batch_size", "log_every", "sample_every" (0: once per epoch), "checkpoint_every"
//             (0: as sample_every), "samples" (the fixed-noise grid, 64)}
// Every misfit (missing network, generator output != discriminator input, latent size != the generator's
// first layer's in_channels, discriminator not ending in one logit) is refused before training with one
// line naming both shapes.
#pragma once
#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "core/optim.h"
#include "data/mnist.h"
#include "data/shapes.h"
#include "data/safetensors.h"
#include "layers/module.h"

namespace convlab {

struct GanTrainSettings {
  int64_t steps = 2500, batch_size = 64, log_every = 50, sample_every = 0, checkpoint_every = 0, samples = 64;
  int64_t batch_shards = 0;  // train.batch_shards (core/shards.h); 0: one per process
};

struct GanTask {
  nlohmann::json config;  // resolved (extends and --set applied)
  std::string name;
  uint64_t seed = 0;
  int64_t latent = 100, channels = 1, image_size = 28;
  bool sample_batch_stats = false;  // "sample_bn": "batch" samples with batch statistics (running stats kept)
  double ema_decay = 0;             // "ema_decay" > 0: keep generator_ema, an exponential moving average of G
  float real_label = 1.f;           // D's BCE target on real images (G's target for D(G(z)) stays 1)
  std::shared_ptr<Sequential> generator, discriminator;
  std::shared_ptr<Sequential> generator_ema;  // null unless ema_decay > 0 (and null in a loaded checkpoint)
  std::shared_ptr<const Mnist> mnist;    // "dataset": "mnist" (null without data)
  std::shared_ptr<const ShapesDataset> shapes;  // "dataset": "shapes"
  std::vector<int64_t> train_indices;  // MNIST: its train split (data/mnist.h), possibly truncated; shapes: 0..N-1
  GanTrainSettings train;
  nlohmann::json optimizer_g, optimizer_d;
  Shape z_shape(int64_t B) const { return {B, latent, 1, 1}; }
  Shape image_shape(int64_t B) const { return {B, channels, image_size, image_size}; }
};

// Builds both networks (initialised from the seed) and checks all shapes; `with_data` loads MNIST (a clear
// error naming scripts/get_mnist.sh when it is missing).
GanTask make_gan_task(const nlohmann::json& config, bool with_data = true);

// DCGAN initialisation (Radford et al. 2015, PyTorch's dcgan example): conv / transposed conv / linear weights
// from N(0, 0.02), batch-norm gamma from N(1, 0.02), biases 0. Draws in named_parameters() order.
void dcgan_init(Module& m, Rng& rng);

// After the G update of step `step` (0-based): every state_dict entry of generator_ema (weights and BN running
// statistics) moves to beta * ema + (1 - beta) * live, beta = min(ema_decay, (1 + step) / (10 + step)): the
// warm-up keeps the average from being dominated by the random initialisation early on.
// num_batches_tracked is copied. Elementwise and serial: bit-identical for any thread count.
void update_generator_ema(GanTask& t, int64_t step);

// Training images [B, C, S, S] in [-1, 1] (the generator's tanh range) at positions pos[b] of train_indices.
Tensor real_images(const GanTask& t, const std::vector<int64_t>& pos);

// Latent batch z [B, latent, 1, 1] from N(0, 1), drawn from rng.
Tensor sample_latent(const GanTask& t, int64_t B, Rng& rng);

// A latent walk [steps, latent, 1, 1] (`convlab sample --interpolate A,B`): z = (1 - w) z_a + w z_b with
// w = i / (steps - 1), z_s the first latent vector drawn from Rng(s). steps >= 2.
Tensor interpolate_latents(const GanTask& t, uint64_t seed_a, uint64_t seed_b, int64_t steps);

// G(z) without gradient, from generator_ema when the task has one (else generator), in eval mode (running
// statistics) or, with t.sample_batch_stats, with batch statistics (PyTorch's dcgan example samples in train
// mode); the networks' buffers are left unchanged.
Tensor generate(GanTask& t, const Tensor& z);


// Rebuilds the task from a generator.safetensors checkpoint (its config metadata) and loads the weights.
GanTask load_generator(const std::string& checkpoint);

}  // namespace convlab

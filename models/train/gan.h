// models/train/gan.h: the GAN task ("task": "gan", models/gan_task.h) of the training loop
// (models/train/engine.h).
//
// Each step: one discriminator step on a real batch and a fake batch (G(z) detached), then one generator
// step with the non-saturating loss BCE(D(G(z)), 1), as PyTorch's dcgan example. A run writes runs/<name>/:
// config.json, metrics.jsonl (step, loss_d, loss_g, d_x = mean D(x), d_g_z1 / d_g_z2 = mean D(G(z)) before /
// after the D step, images_per_s, seconds), samples_<step>.png (8 columns, the fixed noise batch),
// summary.json, generator.safetensors / discriminator.safetensors (weights + buffers; the resolved config and
// step in the metadata) and optimizer.safetensors (both optimizers' state, prefixed "g." / "d.", and the step),
// written together as one checkpoint unit by models/checkpoint.h (checkpoints/step_<N>/, checkpoint.json last;
// the top-level files are links to the newest).
// --resume continues bit-identically; a non-finite loss stops the run naming the step, keeping the last good
// checkpoint.
// Determinism: the real batch of step s is EpochOrder(seed).batch(s, B) over the train split, the latent batch
// is drawn from Rng(sample_seed(seed ^ kZ, s)); nothing else is random, so a run is bit-identical on 1 and 2
// threads and across --resume.
#pragma once
#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "core/tensor.h"
#include "models/train/engine.h"

namespace convlab {

std::unique_ptr<TrainingTask> gan_training(const nlohmann::json& config);
// run_training(*gan_training(config), flags).
nlohmann::json train_gan(const nlohmann::json& config, const TrainFlags& flags);

// The grid picture of a batch of images [N, C, H, W] in [-1, 1]: `cols` per row, each tile enlarged x2.
void write_sample_grid(const std::string& path, const Tensor& images, int64_t cols = 8);

}  // namespace convlab

// tools/lib/gan_cli.h: the GAN subcommands of `convlab`:
//   convlab sample --checkpoint runs/dcgan_mnist/generator.safetensors -n 64 -o grid.png [--seed S] [--cols 8]
//   convlab sample --checkpoint G --interpolate SEED_A,SEED_B --steps 10 -o strip.png
//   convlab gan-eval --classifier runs/mnist_classifier/model.safetensors --checkpoint G -n 10000 [--json]
//   convlab gan-eval --classifier C --config configs/dcgan_mnist_k3.json   (the generator at initialisation)
// Errors are thrown as convlab::Error and reach main(), which prints one line and exits 2.
#pragma once
#include <CLI/CLI.hpp>

namespace convlab {

void register_gan_commands(CLI::App& app);

}  // namespace convlab

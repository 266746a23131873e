// tools/lib/gan_cli.cpp: `convlab sample` (grids and latent interpolation strips) and `convlab gan-eval`.
// The options live in shared_ptrs captured by the CLI11 callbacks, which run inside app.parse().
#include "tools/lib/gan_cli.h"

#include <cstdio>
#include <iostream>
#include <memory>

#include "core/error.h"
#include "tools/lib/cli_checks.h"
#include "core/random.h"
#include "core/threads.h"
#include "data/png.h"
#include "models/gan_task.h"
#include "models/eval/gan_eval.h"
#include "models/train/gan.h"

namespace convlab {

namespace {

struct SampleArgs {
  std::string checkpoint, output = "samples.png", interpolate, bn;
  int64_t n = 64, steps = 10, cols = 8;
  uint64_t seed = 0;
  bool json = false;  // print the result as JSON instead of one line
};

void run_sample(const SampleArgs& a) {
  GanTask t = load_generator(a.checkpoint);
  if (!a.bn.empty()) t.sample_batch_stats = a.bn == "batch";
  if (a.interpolate.empty()) {
    CL_CHECK(a.n >= 1, "sample: -n must be at least 1, got " << a.n);
    Rng r(a.seed);
    write_sample_grid(a.output, generate(t, sample_latent(t, a.n, r)), a.cols);
    if (a.json)
      std::cout << nlohmann::json{{"output", a.output}, {"samples", a.n}, {"seed", a.seed}, {"cols", a.cols}}.dump(2) << "\n";
    else std::cout << "wrote " << a.output << " (" << a.n << " samples, seed " << a.seed << ")\n";
    return;
  }
  const size_t comma = a.interpolate.find(',');
  uint64_t sa = 0, sb = 0;
  try {
    CL_CHECK(comma != std::string::npos && a.interpolate.find('-') == std::string::npos, "");  // stoull takes "-1"
    sa = std::stoull(a.interpolate.substr(0, comma));
    sb = std::stoull(a.interpolate.substr(comma + 1));
  } catch (const std::exception&) {
    CL_FAIL("sample: --interpolate expects SEED_A,SEED_B (two non-negative integers), got '" << a.interpolate << "'");
  }
  CL_CHECK(a.steps >= 2, "sample: --steps must be at least 2, got " << a.steps);
  // A strip of `steps` images, one row, from seed A's latent to seed B's.
  write_sample_grid(a.output, generate(t, interpolate_latents(t, sa, sb, a.steps)), a.steps);
  if (a.json)
    std::cout << nlohmann::json{{"output", a.output}, {"steps", a.steps}, {"from_seed", sa}, {"to_seed", sb}}.dump(2) << "\n";
  else std::cout << "wrote " << a.output << " (" << a.steps << " steps from seed " << sa << " to seed " << sb << ")\n";
}

void print_eval(const nlohmann::json& r, bool as_json) {
  if (as_json) {
    std::cout << r.dump(2) << "\n";
    return;
  }
  std::printf("%-48s %7s %9s %9s %12s\n", "source", "n", "IS", "FD", "checkerboard");
  for (const auto& row : r["rows"])
    std::printf("%-48s %7lld %9.3f %9.2f %12.2e\n", row["source"].get<std::string>().c_str(),
                (long long)row["n"].get<int64_t>(), row["inception_score"].get<double>(),
                row["frechet_distance"].get<double>(), row["checkerboard"].get<double>());
  for (const auto& row : r["rows"]) {
    std::printf("%-48s digit shares %%:", row["source"].get<std::string>().substr(0, 48).c_str());
    for (const auto& v : row["class_shares"]) std::printf(" %4.1f", 100.0 * v.get<double>());
    std::printf("  mean confidence %.3f\n", row["mean_confidence"].get<double>());
  }
  std::printf("(IS and FD under %s; FD against %s)\n", r["classifier"].get<std::string>().c_str(),
              r["reference"].get<std::string>().c_str());
}


}  // namespace

void register_gan_commands(CLI::App& app) {
  auto sa = std::make_shared<SampleArgs>();
  CLI::App* sample = app.add_subcommand("sample", "Draw samples (a grid) or a latent interpolation strip from a generator");
  sample->add_option("--checkpoint", sa->checkpoint, "generator.safetensors of a GAN run")->required();
  sample->add_option("-n", sa->n, "number of samples in the grid (default 64)")->check(at_most(4096));
  sample->add_option("-o,--output", sa->output, "output PNG (default samples.png)");
  sample->add_option("--seed", sa->seed, "latent seed (default 0)");
  sample->add_option("--cols", sa->cols, "grid columns (default 8)")->check(CLI::PositiveNumber);
  sample->add_option("--interpolate", sa->interpolate, "SEED_A,SEED_B: a strip from seed A's z to seed B's z");
  sample->add_option("--steps", sa->steps, "images in the interpolation strip (default 10)")->check(at_most(256));
  sample->add_option("--bn", sa->bn, "batch norm at sampling: eval (running stats) or batch (default: the config's)")
      ->check(CLI::IsMember({"eval", "batch"}));
  sample->add_flag("--json", sa->json, "print JSON");
  sample->callback([sa, sample] {
    run_sample(*sa);
  });

  auto ea = std::make_shared<GanEvalOptions>();
  auto as_json = std::make_shared<bool>(false);
  auto no_refs = std::make_shared<bool>(false);
  CLI::App* ev = app.add_subcommand("gan-eval", "Score generator samples: classifier Inception Score, Frechet distance, checkerboard");
  ev->add_option("--classifier", ea->classifier, "model.safetensors of a classification run (configs/mnist_classifier.json)")->required();
  ev->add_option("--checkpoint", ea->checkpoint, "generator.safetensors of a GAN run");
  ev->add_option("--config", ea->config, "a GAN config: score its freshly initialised generator instead");
  ev->add_option("--set", ea->sets, "override a value of --config (repeatable)");
  ev->add_option("-n", ea->n, "samples to draw (default 10000)")->check(at_most(100000));
  ev->add_option("--seed", ea->seed, "latent seed (default 1)");
  ev->add_option("--bn", ea->bn, "batch norm at sampling: eval or batch (default: the config's)")->check(CLI::IsMember({"eval", "batch"}));
  ev->add_flag("--no-references", *no_refs, "skip the held-out real digits and uniform noise rows");
  ev->add_flag("--json", *as_json, "print JSON");
  ev->callback([ea, as_json, no_refs, ev] {
    ea->references = !*no_refs;
    print_eval(gan_eval(*ea), *as_json);
  });
}

}  // namespace convlab

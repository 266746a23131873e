// tools/lib/study_cli.cpp: CLI11 glue of the study subcommands (see study_cli.h and study.h).
// The options live in shared_ptrs captured by the callbacks, which run inside app.parse(); main() turns a
// convlab::Error into one line on stderr and exit code 2.
#include "tools/lib/study_cli.h"

#include <iostream>
#include <memory>

#include "core/error.h"
#include "tools/lib/cli_checks.h"
#include "core/threads.h"
#include "tools/lib/deform_viz_cli.h"
#include "models/study/study.h"

namespace convlab {
namespace {


struct Flags {
  bool json = false;
};

// Prints the result (JSON or text); a failed check becomes an error after the report. The callback owns
// the flags (a shared_ptr), so it never reads through a reference to the registration's locals.
template <class F>
void run(CLI::App* sub, std::shared_ptr<Flags> fl, const char* name, F f) {
  sub->callback([fl, name, f] {
    StudyResult r;
    try {
      r = f();
    } catch (const Error&) {
      throw;
    } catch (const nlohmann::json::exception& e) {
      throw Error(std::string(name) + ": " + e.what());
    }
    std::cout << (fl->json ? r.json.dump(2) + "\n" : r.text) << std::flush;
    CL_CHECK(r.ok, name << ": some checks FAILED (see the report above)");
  });
}

// --json names the picture the text reports as written (the --json rule: paths of written files included).
StudyResult with_output(StudyResult r, const std::string& png) {
  if (!png.empty() && r.text.find("wrote " + png) != std::string::npos) r.json["output"] = png;
  return r;
}

}  // namespace

void register_study_commands(CLI::App& app) {
  register_deform_viz(app);  // deform-viz (tools/lib/deform_viz_cli.h)
  {
    auto c = std::make_shared<RfCommand>();
    auto fl = std::make_shared<Flags>();
    CLI::App* sub = app.add_subcommand("rf", "Receptive field per layer, HDC check and exact coverage map (gridding holes)");
    sub->add_option("config", c->config, "a config file (or use --dilations)");
    sub->add_option("--set", c->sets, "override a config value (repeatable)");
    sub->add_option("--kernel", c->kernels, "kernel size, one or one per layer (default 5)")->delimiter(',')->check(at_most(4096));
    sub->add_option("--dilations", c->dilations, "dilation schedule, e.g. 1,2,5")->delimiter(',')->check(at_most(4096));
    sub->add_option("--strides", c->strides, "strides, one or one per layer (default 1)")->delimiter(',')->check(at_most(4096));
    sub->add_option("--from-layer", c->from_layer, "analyse the sub-stack from model.layers[K] (schedule: layer K)")->check(at_most(100000));
    sub->add_option("--size", c->size, "input size (config: instead of data.image_size->check(at_most(65536)); schedule: a bounded input)");
    sub->add_option("--pixel", c->pixel, "output pixel y,x (default: the centre, or 0,0 unbounded)")->delimiter(',')->check(at_most(1000000));
    sub->add_option("-o,--png", c->png, "write the coverage map as a PNG heatmap with a title and a labelled colour bar (red: no path)");
    sub->add_flag("--json", fl->json, "print JSON");
    run(sub, fl, "rf", [c, fl] { return with_output(rf_command(*c), c->png); });
  }
  {
    auto c = std::make_shared<SizeCommand>();
    auto fl = std::make_shared<Flags>();
    CLI::App* sub = app.add_subcommand("size", "Output size of a conv / transposed conv / pool, or (--out) which "
                                                "transposed-conv settings give a wanted size");
    sub->add_option("--op", c->op, "conv2d (default), conv_transpose2d, max_pool2d, avg_pool2d");
    sub->add_option("--in", c->in, "input size (one axis)")->required()->check(at_most(1048576));
    sub->add_option("--out", c->out, "conv_transpose2d: the wanted output size: list (padding, output_padding, dilation)")->check(at_most(1048576));
    sub->add_option("-k,--kernel", c->kernel, "kernel size (default 5)")->check(at_most(4096));
    sub->add_option("-s,--stride", c->stride, "stride (default 1)")->check(at_most(4096));
    sub->add_option("-p,--padding", c->padding, "padding (default 0)")->check(at_most(4096));
    sub->add_option("-d,--dilation", c->dilation, "dilation (default 1)")->check(at_most(4096));
    sub->add_option("--output-padding", c->output_padding, "conv_transpose2d output_padding (default 0)")->check(at_most(4096));
    sub->add_flag("--ceil-mode", c->ceil_mode, "pools: ceil_mode");
    sub->add_flag("--json", fl->json, "print JSON");
    run(sub, fl, "size", [c, fl] { return size_command(*c); });
  }
  {
    auto c = std::make_shared<MatrixCommand>();
    auto fl = std::make_shared<Flags>();
    CLI::App* sub = app.add_subcommand("matrix", "Convolution matrix C of a small conv2d op case; checks conv_transpose2d = C^T");
    sub->add_option("case", c->case_path, "a conv2d op-case JSON file")->required();
    sub->add_option("--pair", c->pair, "c_out,c_in: the matrix of one channel pair")->delimiter(',')->check(at_most(65536));
    sub->add_option("--max-entries", c->max_entries, "refuse matrices with more entries (default 4096)")->check(at_most(16777216));
    sub->add_option("-o,--png", c->png, "write C as a PNG heatmap");
    sub->add_flag("--json", fl->json, "print JSON");
    run(sub, fl, "matrix", [c, fl] { return with_output(matrix_command(*c), c->png); });
  }
  {
    auto c = std::make_shared<IdentitiesCommand>();
    auto fl = std::make_shared<Flags>();
    CLI::App* sub = app.add_subcommand("identities", "Check conv-family identities (adjoint, dilation, separable, deform) "
                                                      "on random shapes; exit 0 only if all pass");
    sub->add_option("--seed", c->seed, "seed of the random shapes and values (default 0)");
    sub->add_option("--trials", c->trials, "random shapes per identity (default 5)")->check(at_most(1000));
    sub->add_flag("--json", fl->json, "print JSON");
    run(sub, fl, "identities", [c, fl] { return identities_command(*c); });
  }
  {
    auto c = std::make_shared<GradcheckCommand>();
    auto fl = std::make_shared<Flags>();
    CLI::App* sub = app.add_subcommand("gradcheck", "Finite-difference gradient check of an op (default small case, "
                                                     "or --case FILE); exit 0 only if all pass");
    sub->add_option("--op", c->op, "op name (as in `convlab op`)");
    sub->add_flag("--all", c->all, "every op");
    sub->add_option("--case", c->case_path, "an op-case JSON file (keep it small: 2 forwards per input element)");
    sub->add_option("--eps", c->eps, "finite-difference step (default 1e-2->check(CLI::Range(1e-12, 1.0)); the ops are piecewise linear)");
    sub->add_option("--tol", c->tol, "max relative error (default 1e-3)")->check(CLI::Range(0.0, 1e6));
    sub->add_option("--seed", c->seed, "seed of the output projection R when the case has no grad_output");
    sub->add_flag("--json", fl->json, "print JSON");
    sub->add_option("config", c->config, "a config: check every layer of its model(s) instead of an op");
    sub->add_option("--set", c->sets, "override a value of CONFIG (repeatable)");
    sub->add_option("--size", c->size, "CONFIG: segmentation input size (default 8)")->check(at_most(256));
    sub->add_option("--batch", c->batch, "CONFIG: batch size (default 2)")->check(at_most(64));
    sub->add_option("--max-elements", c->max_elements, "CONFIG: elements checked per tensor (default 256, 0: all)")->check(at_most(1048576));
    run(sub, fl, "gradcheck", [c, fl] { return gradcheck_command(*c); });
  }
  {
    auto c = std::make_shared<ErfCommand>();
    auto fl = std::make_shared<Flags>();
    CLI::App* sub = app.add_subcommand("erf", "Effective receptive field (Luo et al. 2016): mean |d out[pixel] / d input| "
                                              "vs the theoretical RF, with exact gridding holes");
    sub->add_option("config", c->config, "a segmentation config (with --checkpoint: default its stored one; must build the same network)");
    sub->add_option("--config", c->config, "the same as CONFIG (needed with a plain PyTorch state dict)");
    sub->add_option("--set", c->sets, "override a config value (repeatable)");
    sub->add_option("--checkpoint", c->checkpoint, "model.safetensors of a run, or a PyTorch state dict: adds a trained row (inputs: validation images)");
    sub->add_option("--from-layer", c->from_layer, "measure at the input of model.layers[K] (default: the model input)")->check(at_most(100000));
    sub->add_option("--samples", c->samples, "input images averaged over (default 32)")->check(at_most(10000));
    sub->add_option("--seed", c->seed, "seed of the N(0,1) inputs (default 0)");
    sub->add_option("--pixel", c->pixel, "output pixel y,x (default: the centre)")->delimiter(',')->check(at_most(65536));
    sub->add_option("-o,--png", c->png, "write the ERF as a log-scale PNG heatmap with a title and a labelled colour bar (red: exact zero inside the RF box)");
    sub->add_flag("--json", fl->json, "print JSON");
    run(sub, fl, "erf", [c, fl] { return erf_command(*c); });
  }
  {
    auto c = std::make_shared<CheckerboardCommand>();
    auto fl = std::make_shared<Flags>();
    auto raw = std::make_shared<std::array<int64_t, 5>>();  // kernel, stride, padding, output_padding, dilation
    CLI::App* sub = app.add_subcommand("checkerboard", "Overlap maps of transposed convs / stacks / generators, and the "
                                                       "checkerboard strength of generator samples (no args: k3s2 vs k4s2 vs resize-conv)");
    sub->add_option("-k,--kernel", (*raw)[0], "one transposed conv: kernel size")->check(at_most(4096));
    sub->add_option("-s,--stride", (*raw)[1], "its stride (default 2)")->check(at_most(4096));
    sub->add_option("-p,--padding", (*raw)[2], "its padding (default 0)")->check(at_most(4096));
    sub->add_option("--output-padding", (*raw)[3], "its output_padding (default 0)")->check(at_most(4096));
    sub->add_option("-d,--dilation", (*raw)[4], "its dilation (default 1)")->check(at_most(4096));
    sub->add_option("--layers", c->layers, "a stack: K:S:P[:OP[:D]] transposed convs and resize[:K[:P]], comma-separated");
    sub->add_option("--config", c->configs, "a GAN config: its generator (overlap, strength at init); repeatable");
    sub->add_option("--set", c->sets, "override a value of every --config (repeatable)");
    sub->add_option("--checkpoint", c->checkpoints, "generator.safetensors of a GAN run (trained strength); repeatable");
    sub->add_option("-n", c->n, "samples per generator row (default 512)")->check(at_most(100000));
    sub->add_option("--seed", c->seed, "latent seed (default 1)");
    sub->add_option("--size", c->size, "input size of a --kernel/--layers stack (default 12 / its upsampling factor, at least 3)")->check(at_most(4096));
    sub->add_option("--period", c->period, "phase period of the strength measures (default 2)")->check(at_most(16));
    sub->add_option("--bn", c->bn, "batch norm at sampling: eval, batch, both (default) or config");
    sub->add_option("--init-seeds", c->init_seeds, "also the spread of the at-init strength over K config seeds")->check(at_most(100));
    sub->add_option("-o,--png", c->png, "write the overlap maps as PNG heatmaps, each with a title and a labelled colour bar (red: no path)");
    sub->add_flag("--json", fl->json, "print JSON");
    run(sub, fl, "checkerboard", [c, fl, raw, sub] {
      std::optional<int64_t>* f[5] = {&c->kernel, &c->stride, &c->padding, &c->output_padding, &c->dilation};
      const char* names[5] = {"--kernel", "--stride", "--padding", "--output-padding", "--dilation"};
      for (int i = 0; i < 5; ++i)
        if (sub->count(names[i]) > 0) *f[i] = (*raw)[size_t(i)];
      return checkerboard_command(*c);
    });
  }
}

}  // namespace convlab

// tools/convlab.cpp: the one convlab executable. Each subcommand parses its options with CLI11 and calls
// into the libraries; user errors (convlab::Error, bad options) print one line on stderr and exit 2.
#include <CLI/CLI.hpp>
#include <unistd.h>

#include <filesystem>
#include <iostream>
#include <string>
#include <vector>

#include "core/cpu.h"
#include "core/error.h"
#include "core/threads.h"
#include "data/files.h"
#include "models/config.h"
#include "data/safetensors.h"
#include "models/op_case/op_case.h"
#include "models/seg_task.h"
#include "models/train/segmentation.h"
#include "models/train/tasks.h"
#include "tools/lib/predict.h"
#include "tools/lib/gan_cli.h"
#include "tools/lib/study_cli.h"
#include "tools/lib/compare_cli.h"
#include "tools/lib/mpi_comm.h"
#include "tools/lib/stop_signal.h"

namespace {

int cmd_op(const std::string& case_path, const std::string& out_path, bool stats, int repeat) {
  using namespace convlab;
  CL_CHECK(repeat >= 0, "op: --repeat must be >= 0, got " << repeat);
  const OpCall call = parse_case(read_text_file(case_path));
  const OpResult r = run_case(call, repeat);
  const std::string text = result_json(call, r, stats).dump() + "\n";
  if (out_path.empty()) std::cout << text << std::flush;
  else write_file_atomic(out_path, text);
  return 0;
}

void print_json_or_summary(const nlohmann::json& j, bool as_json, const std::string& text) {
  if (as_json) std::cout << j.dump(2) << "\n";
  else std::cout << text;
}

std::string pct(const nlohmann::json& v) {
  if (!v.is_number()) return "n/a";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2f%%", 100 * v.get<double>());
  return buf;
}

std::string metrics_text(const nlohmann::json& m) {
  std::string s = "mIoU " + pct(m["miou"]) + ", pixel accuracy " + pct(m["pixel_accuracy"]) + "\n  per class:";
  for (auto& [k, v] : m["class_iou"].items()) s += " " + k + " " + pct(v);
  s += "\n  by object size:";
  for (auto& [k, v] : m["bucket_miou"].items()) s += " " + k + " " + pct(v);
  return s + "\n";
}

// The one place where an exception becomes an exit code: 2 and one line for anything the user's input
// caused (bad flags, configs, files, paths), 1 for a genuine internal fault.
int report_exception(CLI::App& app) {
  const auto say = [](const std::string& what, const std::string& suffix = "") {
    std::string line = what;
    for (char& c : line)
      if (c == '\n' || c == '\r') c = ' ';  // one line, whatever the message holds
    std::cerr << "convlab: " + line + suffix + "\n" << std::flush;  // one write: mpirun forwards it whole
  };
  try {
    throw;
  } catch (const CLI::Success& e) {  // --help, --help-all
    return app.exit(e);
  } catch (const CLI::Error& e) {
    say(e.what(), " (see convlab --help)");
    return 2;
  } catch (const convlab::Error& e) {
    say(e.what());
    return 2;
  } catch (const std::filesystem::filesystem_error& e) {  // a --runs or output folder that cannot be made
    say(e.path1().string() + ": " + e.code().message());
    return 2;
  } catch (const nlohmann::json::exception& e) {  // a JSON file of the user's that has the wrong shape
    say(std::string("unexpected JSON content: ") + e.what());
    return 2;
  } catch (const std::bad_alloc&) {
    say("out of memory");
    return 1;
  } catch (const std::exception& e) {
    say(std::string("internal error: ") + e.what());
    return 1;
  } catch (...) {
    say("internal error: unknown exception");
    return 1;
  }
}

// Every command has its own --json flag; `convlab --json rf ...` (the flag before the subcommand) is taken as
// `convlab rf ... --json`. Only --json moves: the other program options (--threads N, --version) stay put.
std::vector<char*> json_after_subcommand(const CLI::App& app, int argc, char** argv) {
  std::vector<char*> out(argv, argv + argc);
  int sub = -1;
  for (int i = 1; i < argc && sub < 0; ++i)
    for (const CLI::App* s : app.get_subcommands([](const CLI::App*) { return true; }))
      if (s->get_name() == argv[i]) sub = i;
  if (sub < 0) return out;
  std::vector<char*> moved, rest;
  for (int i = 0; i < argc; ++i) (i > 0 && i < sub && std::string(argv[i]) == "--json" ? moved : rest).push_back(argv[i]);
  rest.insert(rest.end(), moved.begin(), moved.end());
  return rest;
}

}  // namespace

int main(int argc, char** argv) {
  convlab::ensure_passive_wait(argc, argv);
  CLI::App app{"convlab: a small deep-learning framework for studying convolution"};
  app.set_version_flag("--version", [] {
    return std::string("convlab ") + CONVLAB_VERSION + "\nSIMD target: " + convlab::isa_name(convlab::active_isa()) +
           " (available on this CPU: " + convlab::available_isa_list() +
           "; CONVLAB_ISA=avx512|avx2|scalar forces one)";
  });
  app.require_subcommand(1);
  // Options of the program (--threads) are accepted after the subcommand too: a subcommand passes what it does
  // not know to the program. Set before any subcommand is added (CLI11 copies the setting at creation).
  app.fallthrough();
  convlab::register_gan_commands(app);  // sample, gan-eval (tools/lib/gan_cli.h)
  convlab::register_study_commands(app);  // rf, size, matrix, identities, gradcheck (tools/lib/study_cli.h)
  convlab::register_compare_command(app);  // compare (tools/lib/compare_cli.h)
  int threads = 0;
  // Applied while parsing (before any subcommand callback runs), so every command sees it.
  // Given before or after the subcommand (fallthrough above); 0 means all cores.
  app.add_option("--threads", threads, "OpenMP threads (default: all cores)")
      ->check(CLI::Range(0, convlab::kMaxThreads))
      ->each([](const std::string& v) {
        const int n = std::stoi(v);  // CLI::Range above has already checked it is a small number
        if (n > 0) convlab::set_num_threads(n);
      });

  std::string case_path, out_path;
  bool stats = false;
  int repeat = 0;
  CLI::App* op = app.add_subcommand("op", "Run one layer call (forward + backward) from an op-case JSON file");
  op->add_option("case", case_path, "op-case JSON file (see docs/op-case.md)")->required();
  op->add_option("-o,--output", out_path, "write the result here instead of stdout");
  op->add_flag("--stats", stats, "print each tensor as {shape, sum, abs_sum, min, max}");
  op->add_option("--repeat", repeat, "time N forward and N backward passes (median ms)")->check(CLI::Range(0, 100000));
  op->add_flag("--json")->description("accepted for uniformity: the result is always JSON");

  std::string config_path, checkpoint, runs_dir = "runs";
  std::vector<std::string> sets;
  bool resume = false, quiet = false, as_json = false;
  CLI::App* train = app.add_subcommand("train", "Train a model from a JSON config (see configs/README.md)");
  train->add_option("config", config_path, "config file")->required();
  train->add_option("--set", sets, "override a config value: --set model.layers[3].dilation=5 (repeatable)");
  train->add_flag("--resume", resume, "continue runs/<name>/ from its last checkpoint");
  train->add_option("--runs", runs_dir, "folder for run folders (default runs)");
  train->add_flag("-q,--quiet", quiet, "no progress output");
  int64_t stop_after = -1;
  train->add_option("--stop-after", stop_after, "stop after this step (checkpoint written), e.g. to resume later");
  bool overwrite = false;
  train->add_flag("--overwrite", overwrite, "start over in a run folder that already holds a checkpoint (deletes it)");
  train->add_flag("--json", as_json, "print the summary as JSON");
  double exchange_timeout = convlab::kDefaultExchangeTimeout;
  convlab::add_exchange_timeout_option(*train, exchange_timeout);
  CLI::App* eval = app.add_subcommand("eval", "Evaluate a checkpoint on the validation set of its config (or a given one)");
  eval->add_option("config", config_path, "config file (default: the one stored in the checkpoint; must build the same network)");
  eval->add_option("--config", config_path, "the same as CONFIG (needed for a plain PyTorch state dict)");
  eval->add_option("--checkpoint", checkpoint, "model.safetensors of a run, or a PyTorch state dict")->required();
  eval->add_option("--set", sets, "override a config value (repeatable)");
  eval->add_flag("--json", as_json, "print JSON");
  convlab::PredictCommand pc;
  CLI::App* predict = app.add_subcommand("predict", "Segment PNG images (files or folders) with a trained checkpoint");
  predict->add_option("--checkpoint", pc.checkpoint, "model.safetensors of a run, or a PyTorch state dict")->required();
  predict->add_option("images", pc.inputs, "PNG images and/or folders of them")->required();
  predict->add_option("-o,--output", pc.output, "one image: the colour mask (default mask.png); several: a folder (default predictions)");
  predict->add_option("--config", pc.config, "config (default: the one stored in the checkpoint; must build the same network)");
  predict->add_option("--set", pc.sets, "override a config value (repeatable)");
  predict->add_flag("--probabilities", pc.probabilities, "also write per-class probabilities (<mask>_probabilities.safetensors)");
  predict->add_flag("--legend,!--no-legend", pc.legend,
                    "the colour mask carries a legend strip (class colours and names) below it (default); "
                    "--no-legend: the bare map, the image's size");
  predict->add_flag("--json", as_json, "print JSON");

  try {
    convlab::check_isa_env();  // an unknown or unsupported CONVLAB_ISA: one line, exit 2
    const std::vector<char*> args = json_after_subcommand(app, argc, argv);
    app.parse(static_cast<int>(args.size()), args.data());
    if (threads > 0) convlab::set_num_threads(threads);
    quiet = quiet || as_json;  // train --json: stdout holds only the JSON result
    if (*op) return cmd_op(case_path, out_path, stats, repeat);
    if (*train) {
      // Under mpirun: data-parallel, every rank runs this; rank 0 alone writes the run folder and prints.
      convlab::MpiSession* mpi = convlab::launched_session();
      const bool root = !mpi || mpi->rank() == 0;
      if (!root) quiet = true;
      if (mpi) mpi->set_exchange_timeout(exchange_timeout);
      const auto cfg = convlab::load_config(config_path, sets);
      // Progress goes to stdout: a \r-updated bar on a terminal, a line per log step otherwise.
      const convlab::TrainFlags f{.runs_dir = runs_dir, .resume = resume, .quiet = quiet,
                                  .progress_bar = isatty(fileno(stdout)) != 0, .stop_after = stop_after,
                                  .overwrite = overwrite, .log = &std::cout,
                                  .stop_requested = [] { return convlab::stop_signal() != 0; }, .comm = mpi};
      convlab::install_stop_handlers();
      const auto s = convlab::train_config(cfg, f);
      if (!root) return 0;
      const std::string stopped = s.value("stopped", "");
      if (!stopped.empty()) {
        // --stop-after exits 0; a signal exits 128 + its number (130 for SIGINT, 143 for SIGTERM), as a shell expects.
        const std::string step = std::to_string(s["completed_steps"].get<int64_t>());
        if (as_json) std::cout << s.dump(2) << "\n";
        else if (s["checkpoint_written"].get<bool>())
          std::cout << "stopped at step " << step << " (checkpoint written; --resume continues)\n";
        else
          std::cout << "stopped at step " << step << " (no checkpoint: this task cannot resume)\n";
        std::cout << std::flush;
        return stopped == "interrupted" ? 128 + convlab::stop_signal() : 0;
      }
      const std::string done = "done in " + std::to_string(int(s["train_seconds"].get<double>())) + " s";
      if (s["task"] == "segmentation")
        print_json_or_summary(s, as_json, done + "; final " + metrics_text(s["final"]) + "run folder: " +
                                              s["run_dir"].get<std::string>() +
                                              " (index.html, curves.svg, metrics.jsonl, summary.json, model.safetensors, best.safetensors, val_*.png)\n");
      else
        print_json_or_summary(s, as_json, done + (s["task"] == "classification" ? "; held-out accuracy " + pct(s["final"]["accuracy"]) : "") +
                                              "; run folder: " + s["run_dir"].get<std::string>() + "\n");
    }
    if (*eval) {
      const auto c = convlab::seg_checkpoint_config(convlab::safetensors::load(checkpoint), checkpoint, config_path, sets, "eval");
      const auto m = convlab::eval_segmentation(c.config, checkpoint);
      print_json_or_summary(m, as_json, metrics_text(m));
    }
    if (*predict) {
      std::vector<std::string> warnings;
      const auto r = convlab::predict_command(pc, warnings);
      for (const std::string& w : warnings) std::cerr << "convlab: warning: " << w << "\n";
      const size_t n = r["images"].size();
      print_json_or_summary(r, as_json, "wrote " + (n == 1 ? r["output"].get<std::string>() + " (and its _classes.png" + (pc.probabilities ? ", _probabilities.safetensors" : "") + ")"
                                                          : std::to_string(n) + " masks to " + r["output"].get<std::string>()) + "\n");
    }
  } catch (...) {
    const int rc = report_exception(app);
    // A failed rank ends at once: MPI_Finalize would wait for ranks that are waiting for it. mpirun sees the
    // exit code and stops the others.
    convlab::exit_if_distributed(rc);
    return rc;
  }
  return 0;
}

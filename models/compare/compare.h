// models/compare/compare.h: the experiment behind `convlab compare EXPERIMENT.json`: trains the variants an experiment file lists on the
// same data, budget, optimizer and schedule over several seeds, checks that their parameter counts match,
// and writes results.json, report.md and a self-contained report.html (table, paired per-seed differences,
// learning curves, coverage and ERF pictures). The experiment format is documented in docs/compare.md.
//
// Files: compare_experiment.cpp (reading and checking the experiment file), compare.cpp (resolving configs,
// the steps of a compare, results.json), compare_runs.cpp (training the runs; under mpirun, dealing them out),
// compare_analysis.cpp (parameters, coverage, ERF, step-time probe, run metrics, summaries, the paired
// statistics), compare_report.cpp (text, markdown, HTML, SVG).
// Every user error throws convlab::Error with one line naming the file and the key; the CLI exits 2. The
// command line (tools/lib/compare_cli.cpp) parses the flags and prints what compare_command returns.
#pragma once
#include <cstdint>
#include <functional>
#include <iosfwd>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/shards.h"
#include "models/study/study.h"  // StudyResult and the tables / heatmaps the reports share

namespace convlab {

struct CompareVariant {
  std::string name;              // also the run folder prefix: <name>_s<seed>
  std::string config;            // path of the config, resolved against the experiment file's folder
  std::vector<std::string> sets; // --set overrides for this variant (after the experiment's common ones)
  int64_t from_layer = -1;       // model.layers index where the studied stack begins; -1: experiment's
};

struct Experiment {
  std::string file, name, description;
  std::vector<CompareVariant> variants;
  std::vector<int64_t> seeds;    // each seeds weights, data and augmentation of its runs (config "seed")
  std::vector<int64_t> budgets;  // ascending step counts; one run per variant and seed, validated at each
  int64_t val_every = 0;         // validation period (learning curves); divides every budget
  double param_tolerance = 0.02; // max (largest - smallest) / smallest parameter count
  std::vector<std::string> sets; // overrides applied to every variant
  std::vector<std::pair<std::string, std::string>> pairs;  // (a, b): report a - b per seed
  std::vector<std::string> same; // config sections that must agree across variants
  int64_t from_layer = -1;       // -1: the second spatial layer (the one after the stem)
  bool quick = false;            // the `quick` section was applied
  std::string preset = "full";   // "full" (the file's top level), "short" or "quick" (that section applied)
  std::string label;             // what the preset's numbers measure ("converged study", "learning-speed study", ...)
  double converged_gain = 0.5;   // a variant counts as converged when its mean mIoU gain over the last fifth is below
  std::vector<int64_t> artefact_rates;  // periods of the gridding-artefact metric; empty: the configs' dilations > 1
};

// Reads and checks an experiment file; `preset` "full" uses its top level, "short" or "quick" apply that
// section on top (seeds, budgets, val_every, set, variants, variant_set, description, label). Throws
// convlab::Error ("compare FILE: experiment.KEY: ...") for malformed JSON, unknown keys (with a
// did-you-mean), missing configs, fewer than one seed, duplicate variant names or seeds, budgets < 1 step,
// unknown pair names, an unknown preset or a preset the file has no section for.
Experiment load_experiment(const std::string& path, const std::string& preset = "full");

struct CompareCommand {
  std::string experiment;  // the experiment file
  bool quick = false;      // apply its `quick` section (tests, smoke runs)
  std::string budget = "full";  // "full" (the converged study) or "short" (its `short` section); not with quick
  std::string out;         // output folder; default runs/compare/<name> (or <name>-quick)
  bool quiet = false;      // no progress lines (the final table is still returned)
  bool fresh = false;      // retrain every run even when a finished one is on disk
  bool estimate_only = false;  // only time a few steps of each variant and return the estimate (trains nothing)
  std::ostream* log = nullptr;  // where progress lines go (the CLI: stdout, or stderr with --json); null: silent
  // Several processes (mpirun): the runs still to train are dealt out in seed-major order, each to the process
  // with the least work so far (compare_runs.h: deal_runs), each trained in one process; when there are fewer of them than processes and their train.batch_shards allow it,
  // groups of processes (a divisor of the shard count) train one run each, data-parallel. A run's shard count
  // is its config's train.batch_shards (unset: 1, as in a serial compare), never the number of processes, so
  // its numbers do not depend on where or on how many processes it ran. Then rank 0 assembles results.json
  // and the reports from the run folders, exactly as a serial compare that finds them finished. The other
  // ranks return an empty result. The output folder must be one the ranks share. Null: one process.
  ShardComm* comm = nullptr;
  // Polled after every training step (TrainFlags::stop_requested): true stops the run there with a checkpoint
  // and the compare with convlab::Error (the same command resumes it). Empty: never asked.
  std::function<bool()> stop_requested{};
};

// Runs (or resumes) the experiment. json = results.json, text = the table and the difference sentences.
StudyResult compare_command(const CompareCommand& c);

// The paired-difference rule, shared by the report and the tests: with n >= 2 seeds the difference exceeds
// the seed-to-seed spread when |mean| > t_{0.975, n-1} * sd / sqrt(n) (the 95% confidence interval of the
// mean paired difference excludes 0). Returns the critical value t_{0.975, dof} (dof >= 1).
double t_critical_975(int64_t dof);

// Report writers (compare_report.cpp) from a results.json object: text table, markdown, HTML.
std::string compare_text(const nlohmann::json& results);
std::string compare_markdown(const nlohmann::json& results);
// Pictures are read from the output folder `dir` and inlined as base64 data: URIs.
std::string compare_html(const nlohmann::json& results, const std::string& dir);
// Learning-curve chart as inline SVG: `metric` "miou" (validation, %) or "loss" (training loss_avg).
std::string compare_svg(const nlohmann::json& results, const std::string& metric);

// ---- building blocks (compare_analysis.cpp; used by compare.cpp and the tests) ----
struct PairedStats {
  int64_t n = 0, a_higher = 0, b_higher = 0;  // seeds with both values; seeds where a > b / b > a
  double mean = 0, sd = 0;       // of the differences a - b (sd: sample standard deviation, n - 1)
  double half_width = 0;         // t_{0.975, n-1} * sd / sqrt(n): the 95% confidence half-width (n >= 2)
  bool exceeds = false;          // |mean| > half_width (n >= 2), see t_critical_975
};
PairedStats paired_stats(const std::vector<double>& diffs);

// Parameters, theoretical RF of the whole net, and the exact coverage of the centre output pixel measured
// at the input of model.layers[from_layer] (-1: the layer after the stem) and at the image input; writes
// the coverage heatmap of the stack to `coverage_png` (red: no path).
// `canvas` > 0 pads the map, centred, to canvas x canvas pixels drawn at a fixed cell size, so the maps of
// all variants share one scale.
nlohmann::json analyse_variant(const nlohmann::json& config, int64_t from_layer, const std::string& coverage_png,
                               int64_t canvas = 0);
// Effective receptive field (models/erf.h) written to `png`: `checkpoint` empty: untrained weights of the
// config's seed, N(0,1) inputs, at the input of model.layers[from_layer]; else the trained weights of that
// checkpoint, validation images, at the model input. Returns ErfResult::to_json() without the map.
nlohmann::json variant_erf(const nlohmann::json& config, int64_t from_layer, const std::string& checkpoint,
                           const std::string& png);
// Seconds per training step of a config on this machine now (median of a few steps after a warm-up).
double probe_step_seconds(const nlohmann::json& config);
// Gridding artefacts of a trained run (models/gridding_artefacts.h) over the validation images of `config`:
// for every period r in `rates`, the mean over images of the grid-energy share of the predicted class
// probabilities (softmax of the logits) and of the last feature maps (the input of the last layer), and the
// image where the probabilities' share at rates[0] is largest. With `png` non-empty, draws that image:
// image | label | prediction | its most affected class's probability map (black 0, white 1) | that map's grid
// component (period rates[0]; blue negative, red positive, scaled to its own largest value).
nlohmann::json run_artefacts(const nlohmann::json& config, const std::string& checkpoint, const std::vector<int64_t>& rates,
                             const std::string& png);
// Convergence of one variant from its runs' curves: the mIoU gain from the last validation at or before 80%
// of the last budget to the last budget, per seed and its mean; converged when the mean gain < `threshold`.
nlohmann::json convergence(const nlohmann::json& runs, int64_t last_budget, double threshold);
// Summaries over a variant's runs (results.json "runs" entries): mean and sample sd over seeds of every metric at
// every budget (null values left out), and of the artefact shares per kind and rate.
nlohmann::json summarise(const nlohmann::json& runs, const std::vector<int64_t>& budgets);
nlohmann::json artefact_summary(const nlohmann::json& runs, const std::vector<int64_t>& rates);
// One paired difference a - b over the seeds both have, with its sentence: `metric` is a key of
// run["at"][budget] (IoUs in %), or "artefact": the class probabilities' grid-energy share at `rate` of the
// final weights, in % (budget = the last one). `variants`: results.json's variants, each with its "runs".
nlohmann::json pair_result(const nlohmann::json& variants, const std::string& a, const std::string& b, int64_t budget,
                           const std::string& metric, int64_t rate = 0);
// Dilation rates > 1 of every layer in a config's model (nested "layers" lists included).
void collect_rates(const nlohmann::json& layers, std::set<int64_t>& out);
// A run folder's metrics.jsonl: {"at": {"<budget>": metrics in %}, "curve": [[step, mIoU %, val loss]],
// "loss": [[step, loss_avg]]}; throws when a budget has no validation line.
nlohmann::json read_run_metrics(const std::string& run_dir, const std::vector<int64_t>& budgets);

}  // namespace convlab

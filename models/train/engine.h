// models/train/engine.h: the one training loop. A task (segmentation, GAN, classifier: models/train/*.h, or
// a program's own TrainingTask) says how one step trains on a batch, what a log line and a validation
// measure, and which files a checkpoint holds; run_training() owns everything around it:
//   - the run folder runs/<name>/: config.json (the resolved config), metrics.jsonl (one JSON object per log
//     step and per validation, each with "step", "split" ("train" on log lines; the task's, e.g. "val", on
//     validations) and "time" (ISO-8601 UTC); log lines also "images_per_s" and "seconds"), summary.json,
//     curves.svg (losses and the plan's best_metric against step, models/train/curves.h) and index.html (the
//     curves, the newest val_<N>.png / samples_<N>.png, summary.json), both refreshed at every validation and
//     at the end;
//   - checkpoints through models/checkpoint.h (one atomic unit; deferred until the next step's losses are
//     finite, written at once after the last step and at --stop-after), --resume, --overwrite;
//   - the NaN stop (StepGuard::check_finite: "train: <what> became nan at step N; <the checkpoint kept>");
//   - timing (images/s, ETA, train_seconds) and the progress output: a line per log step, or one \r-updated
//     bar when the caller says its stream is a terminal. Nothing is printed unless the caller hands a stream
//     (TrainFlags::log): library code computes and returns; the command line prints.
// Determinism is the task's: a task that draws step s's batch and noise from seeds of (seed, s) alone
// trains bit-identically on any thread count and across --stop-after / --resume.
#pragma once
#include <cstdint>
#include <functional>
#include <iosfwd>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/shards.h"
#include "models/checkpoint.h"

namespace convlab {

struct TrainFlags {
  std::string runs_dir = "runs";
  bool resume = false;
  bool quiet = false;          // nothing on `log`, even when one is given
  bool progress_bar = false;   // `log` is a terminal: one \r-updated bar instead of a line per log step
  int64_t stop_after = -1;     // > 0: stop after this step as if interrupted (checkpoint written, schedule unchanged)
  bool overwrite = false;      // without resume: start over in a run folder that holds a checkpoint (deleting it)
  std::ostream* log = nullptr; // where progress and validation lines go (the CLI passes std::cout); null: silent
  // Polled after every step: true stops the run there as --stop-after would (a resumable task's checkpoint is
  // written through RunCheckpoints; summary.json "stopped": "interrupted"). The CLI sets it from its SIGINT /
  // SIGTERM handler; library code installs no signal handler. Empty: never asked.
  std::function<bool()> stop_requested{};
  // Data-parallel training (models/train/mpi_comm.h under mpirun): each process trains on its batch shards and
  // the shard partials are exchanged through `comm` (core/shards.h). Every process runs the same loop; only
  // rank 0 writes the run folder and prints. Null: one process.
  ShardComm* comm = nullptr;
};

// A task's schedule and checkpoint layout.
struct LoopPlan {
  int64_t steps = 1, batch_size = 1, log_every = 1;
  int64_t validate_every = 0;    // > 0: TrainingTask::validate after every such step and after the last
  int64_t checkpoint_every = 0;  // > 0: a (deferred) checkpoint after every such step; always after the last
  std::vector<std::string> checkpoint_files{};  // every file name a checkpoint may hold (RunCheckpoints)
  bool resumable = true;
  std::string not_resumable{};   // !resumable: why --resume / --stop-after are refused (the message)
  // A number of the validation record to maximise ("miou", "accuracy"): whenever a validation beats every earlier
  // one of the run, the checkpoint file `best_file` is written atomically to <run>/best.safetensors (with
  // metadata "step", "best_metric", "best_value") and summary.json "best" names the step and value.
  // Empty: no best.safetensors (the GAN: its sample grids are not scored).
  std::string best_metric{};
  std::string best_file = "model.safetensors";
  // S, the shards each global batch is cut into for its sums (core/shards.h): the same S gives the same bits
  // in one process and spread over any number of processes dividing it. 0: one shard per process.
  int64_t batch_shards = 0;
};

// Handed to TrainingTask::step: the loop's NaN stop and the commit point of a deferred checkpoint.
class StepGuard {
 public:
  StepGuard(RunCheckpoints& checkpoints, int64_t done) : checkpoints_(checkpoints), done_(done) {}
  // Throws convlab::Error "train: WHAT became V at step N; <the last good checkpoint kept, or none>" when v is
  // not finite. Call it for every loss of the step before any weight changes that depend on it.
  void check_finite(const std::string& what, double v) const;
  // Every loss of this step is finite: the checkpoint deferred after the previous step is written now.
  void losses_checked() { checkpoints_.commit_pending(); }

 private:
  RunCheckpoints& checkpoints_;
  int64_t done_;
};

// A validation's metrics.jsonl record (null: nothing logged, e.g. the GAN's sample grid) and its lines.
struct Validation {
  nlohmann::json record;
  std::vector<std::string> lines;
};

class TrainingTask {
 public:
  virtual ~TrainingTask() = default;
  // The processes of a data-parallel run (null: one process), set by run_training before begin(). A task may
  // split its validation over them (segmentation does); the others run it whole on every process.
  void set_comm(ShardComm* comm) { comm_ = comm; }
  ShardComm* comm() const { return comm_; }
  virtual const std::string& name() const = 0;     // the run folder: <runs_dir>/<name>
  virtual std::string kind() const = 0;            // summary.json "task": "segmentation", "gan", ...
  virtual const nlohmann::json& config() const = 0;  // written to config.json
  virtual LoopPlan plan() const = 0;
  // The lines printed before training (sizes, the network, warnings); `run_dir` is where the run goes.
  virtual std::string describe(const std::string& run_dir) const = 0;
  // --resume: load weights and state from the checkpoint of step c.step.
  virtual void restore(const Checkpoint& c) = 0;
  // Called once before the first step (e.g. switch the networks to training mode).
  virtual void begin() {}
  // One optimisation step, `step` 0-based. Every loss goes through guard.check_finite; then
  // guard.losses_checked() before the optimizer steps.
  virtual void step(int64_t step, StepGuard& guard) = 0;
  // After step `done`, on a log step: add this step's metrics to `record` (which holds "step"); `extra` gets
  // further lines printed under the log line.
  virtual void log(int64_t done, nlohmann::json& record, std::vector<std::string>& extra) = 0;
  // The running numbers shown on a log line and the progress bar ("loss 0.1234 lr 1.00e-03").
  virtual std::string progress() const = 0;
  // After step `done` when the plan's validate_every says so; files it writes go into run_dir (empty: write
  // no file, e.g. on the processes other than rank 0 of a data-parallel run).
  virtual Validation validate(int64_t done, const std::string& run_dir) {
    (void)done, (void)run_dir;
    return {};
  }
  // The checkpoint of the current state (names from the plan's checkpoint_files).
  virtual std::vector<CheckpointFile> checkpoint_files() const = 0;
  // The task's fields of summary.json, given the last log record and the last validation record (null when
  // none ran). The loop adds name, task, steps, completed_steps, batch_size, train_seconds, run_dir and
  // simd_target_gemm.
  virtual nlohmann::json summary(const nlohmann::json& last_log, const nlohmann::json& last_validation) = 0;

 private:
  ShardComm* comm_ = nullptr;
};

// Trains `task` in <flags.runs_dir>/<task.name()> and returns the summary (also written to summary.json).
// The summary's "stopped" is "" for a run that ran every step, "stop_after" or "interrupted" (stop_requested)
// otherwise, with "checkpoint_written" saying whether the stop left a checkpoint (false for a task that cannot
// resume); "resumed_from" is the step --resume started at (0 for a fresh run); "best" (when the plan names a
// best_metric and a validation gave it) is {"step", "metric", "value", "file": "best.safetensors"}. On --resume
// the best so far is read back from the validation lines of metrics.jsonl kept up to the checkpoint's step. With a log stream, --resume
// prints "resuming from step K".
// Data parallel: when an exchange gives up on a process (ShardComm::lost(): it died, was killed or hangs), throws
// convlab::Error "stopped at step K: <the comm's message naming the rank>; <the last good checkpoint kept>"
// without writing a checkpoint.
nlohmann::json run_training(TrainingTask& task, const TrainFlags& flags);

// "1m05s" / "4.2s": the ETA and durations of log lines.
std::string format_duration(double seconds);

}  // namespace convlab

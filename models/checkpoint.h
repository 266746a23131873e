// models/checkpoint.h: a training run's checkpoint as one unit, shared by every trainer (segmentation, GAN,
// classifier): model, optimizer and training state become visible together, so a kill -9 at any moment
// leaves the previous checkpoint or the new one, never a mix.
//
// Layout of runs/<name>/ and the order of a write (each step durable before the next: files and folders
// are fsync'd):
//   1. checkpoints/step_<N>.tmp-<pid>/   every file of the checkpoint, written and fsync'd
//   2. checkpoints/step_<N>/             the folder renamed into place
//   3. checkpoint.json                   {"step": N, "folder": "checkpoints/step_<N>", "files": [...],
//                                         "published": false}, written atomically: THE commit point
//   4. <file> at the top level           hard links to the step folder's files (link to a temp name, rename
//                                         over: each swap is atomic; copy when the filesystem cannot link),
//                                         the paths users pass to eval / predict / sample
//   5. checkpoint.json                   rewritten with "published": true
//   6. older step folders removed
// Resume reads checkpoint.json and loads from the step folder it names, checking each file's "step"
// metadata; a kill between 3 and 5 is repaired by linking again. A top-level file that disappears after
// step 5 was removed by hand: resume refuses rather than guess. Runs written before checkpoint.json
// (the files at the top level only) resume when every file carries the same "step" metadata.
//
// When a checkpoint is written: a checkpoint becomes durable only after the weights it holds have produced a
// finite loss. A trainer hands the checkpoint due after step N to defer() (deep copies, so training goes on);
// at step N+1, once that step's loss (every loss: the GAN's D and G) is checked finite, commit_pending() writes
// it with save(). Finite yet exploded weights (say 5e29 after a learning rate of 1e30) pass save()'s check but
// give a non-finite loss at the next step: the pending checkpoint is then dropped (never written), and the stop
// message names the step really on disk. The final step and --stop-after call save() directly (no next step
// exists). Cost: a kill between step N and N+1 loses the pending checkpoint, i.e. at most one checkpoint
// interval more than writing at once. The content is the same as writing at step N, so --resume stays
// bit-identical to an uninterrupted run.
//
// Limits: one writer per run folder (two trainers on the same folder are not detected); the top-level
// files share their inode with the step folder's, so a tool that rewrites one in place (not via rename)
// changes both (convlab itself always writes through a temporary and a rename).
#pragma once
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "data/safetensors.h"

namespace convlab {

// The default checkpoint interval of the shipped tasks: every validation (segmentation) or sample grid (GAN), and
// at most this many steps apart, so a crash (kill -9, power loss) loses at most this many steps. A Ctrl-C loses
// none: `convlab train` then writes a checkpoint of the step it stops at.
inline constexpr int64_t kDefaultCheckpointEveryMax = 200;

struct CheckpointFile {
  std::string name;                             // "model.safetensors": its name in the run folder
  NamedTensors tensors;
  std::map<std::string, std::string> metadata;  // "step" is added by RunCheckpoints::save
};

// A loaded checkpoint: its step and its files by name.
struct Checkpoint {
  int64_t step = 0;
  std::string source;  // "checkpoint.json" or, for the old layout, the file names
  std::map<std::string, safetensors::File> files;
  std::map<std::string, std::string> paths;     // name -> path it was read from (for error messages)
  bool has(const std::string& name) const { return files.count(name) > 0; }
  const safetensors::File& file(const std::string& name) const;  // throws naming the run folder
  const std::string& path(const std::string& name) const;         // where file(name) was read from
};

class RunCheckpoints {
 public:
  // `names`: the files a checkpoint of this task holds (the old layout is recognised by them; the
  // optional ones, e.g. generator_ema.safetensors, may be absent). Plain NAME.safetensors file names: the shipped
  // tasks' and these are the only names a checkpoint.json may list.
  RunCheckpoints(std::string run_dir, std::vector<std::string> names);

  // Call once before training. Creates the folder and removes what a killed writer left (temporaries,
  // step folders checkpoint.json does not name). Without `resume`: refuses a folder that holds a
  // checkpoint unless `overwrite`, then clears every checkpoint file and the previous run's outputs
  // (metrics.jsonl, summary.json, best.safetensors, curves.svg, index.html,
  // val_*.png, samples_*.png), so nothing stale survives.
  void start(bool resume, bool overwrite, bool resumable = true);

  bool exists() const;                 // a checkpoint (either layout) is on disk
  Checkpoint load() const;             // --resume: throws "--resume: ..." naming the folder
  // Writes a checkpoint of `step` (see the header comment). Refuses, before writing anything, tensors
  // that are not finite (weights, BN statistics, optimizer state): "train: <file> <tensor> is not finite
  // after step N; <kept()>".
  void save(int64_t step, const std::vector<CheckpointFile>& files);
  // Holds a deep copy of `files` (tensors cloned: state_dict() and the optimizer state share storage with the
  // live model) as the checkpoint of `step`, to be written by commit_pending() once the next step's loss is
  // finite. Refuses non-finite tensors at once, with save()'s message. Replaces a pending checkpoint not yet
  // committed (it is dropped).
  void defer(int64_t step, std::vector<CheckpointFile> files);
  // Writes the pending checkpoint, if any, with save(), and clears it (also when save() throws).
  void commit_pending();
  bool has_pending() const { return pending_.has_value(); }
  int64_t pending_step() const { return pending_ ? pending_->step : -1; }
  // "the last good checkpoint (step 20) is kept in runs/x (checkpoint.json)", or, when none is on disk,
  // "no last good checkpoint exists in runs/x (none was written)". Read from disk: it never names a step
  // that is not there.
  std::string kept() const;
  // --resume: drops metrics.jsonl lines after `step` (and a line cut by a kill) so the log continues cleanly.
  void trim_metrics(int64_t step) const;

  const std::string& dir() const { return dir_; }

 private:
  struct OnDisk {
    int64_t step = -1;
    std::string source, error;  // error: why the checkpoint on disk cannot be read
  };
  OnDisk on_disk() const;
  void check_finite(int64_t step, const std::vector<CheckpointFile>& files) const;

  struct Pending {
    int64_t step = 0;
    std::vector<CheckpointFile> files;
  };
  std::string dir_;
  std::vector<std::string> names_;
  std::vector<std::string> known_;  // the shipped tasks' file names and names_
  std::optional<Pending> pending_;
};

// Name of the first tensor holding a NaN or an infinity (with `prefix`), or "" when all are finite.
std::string first_nonfinite(const NamedTensors& tensors, const std::string& prefix = "");

}  // namespace convlab

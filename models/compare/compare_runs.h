// models/compare/compare_runs.h (internal to models/compare/): the runs of a compare, one (variant, seed) each:
// their names and configs, whether a folder holds a finished, resumable or no run of a config, training one,
// and the distributed pre-pass that deals the runs still to train out over the processes of an mpirun.
// compare.cpp resolves the configs and assembles the results; compare_runs.cpp trains.
#pragma once
#include <cstdint>
#include <filesystem>
#include <functional>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "models/compare/compare.h"

namespace convlab::compare_detail {

double cpu_seconds();  // CPU time of the whole process (all threads)

std::string run_name(const CompareVariant& v, int64_t seed);  // "<variant>_s<seed>": the run's folder
// The variant's resolved config for one seed (its "seed" and "name").
nlohmann::json with_seed(nlohmann::json cfg, const CompareVariant& v, int64_t seed);

// What to do with a run folder: reuse it (finished with this config), resume it (checkpoint of this
// config, no summary) or train from scratch (absent, another config, or --fresh).
enum class RunState { train, resume, finished };
RunState run_state(const std::filesystem::path& d, const nlohmann::json& cfg, bool fresh);

// Trains (or resumes) one run in runs_dir and writes its compare_timing.json (wall and CPU seconds, whether it
// resumed, "parts": how many invocations trained it, and in a distributed compare the rank that trained it and the
// processes it ran on); returns that timing. A resumed run's seconds are the sum of its parts: an interruption
// through `stop_requested` (Ctrl-C, mpirun's SIGTERM) writes the time so far with "partial": true, and the
// invocation that resumes it adds its own. A part that was never written (a killed process) is lost: then "parts"
// is 0 and the seconds are the last part's only. `comm` (null: this process alone) trains it data-parallel: every process of it calls this, its rank 0
// writes the files, and the CPU seconds are the processes' sum. Not resumed: a checkpoint of another config (or
// --fresh) is deleted, not refused.
nlohmann::json train_run(const nlohmann::json& cfg, const std::filesystem::path& runs_dir, bool resume, int64_t rank,
                         ShardComm* comm = nullptr, const std::function<bool()>& stop_requested = {});

// Which process trains each run when there are at least as many runs as processes: the runs in the order given
// (seed-major, so an interrupted experiment still has whole seeds), each to the process with the least work dealt
// so far (ties: the lowest rank), a run's work being `cost[k]`. With every cost equal this is round-robin; with
// costs that differ (a cheaper variant, a run already half trained) the processes finish close together instead of
// one idling while another trains its last runs. Deterministic: every rank that passes the same costs gets the
// same deal.
std::vector<int64_t> deal_runs(const std::vector<double>& cost, int64_t processes);

// The distributed pre-pass of compare_command (c.comm with more than one process): every rank trains its share of
// the runs not finished yet (see CompareCommand::comm), then all wait for each other. `cfgs`: the variants'
// resolved configs. `step_seconds`: rank 0's probed seconds per training step of each variant, shared with every
// rank (the work a run costs: its steps left times that). Returns the names of the runs trained here and now;
// throws (every rank) when a run failed anywhere. The caller goes on with rank 0 alone.
std::set<std::string> train_distributed(const Experiment& e, const std::vector<nlohmann::json>& cfgs, const CompareCommand& c,
                                        const std::filesystem::path& runs_dir, const std::vector<double>& step_seconds,
                                        const std::function<void(const std::string&)>& say);

}  // namespace convlab::compare_detail

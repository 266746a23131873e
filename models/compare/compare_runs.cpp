// models/compare/compare_runs.cpp: training the runs of a compare (see compare_runs.h): one run in this process
// or data-parallel over a group of processes, and the distributed pre-pass that deals the runs out.

#include "models/compare/compare_runs.h"

#include <time.h>

#include <algorithm>
#include <chrono>
#include <memory>
#include <numeric>
#include <sstream>

#include "core/error.h"
#include "data/files.h"
#include "data/json.h"
#include "models/checkpoint.h"
#include "models/train/segmentation.h"

namespace convlab::compare_detail {

using nlohmann::json;
namespace fs = std::filesystem;

double cpu_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return double(ts.tv_sec) + 1e-9 * double(ts.tv_nsec);
}

std::string run_name(const CompareVariant& v, int64_t seed) { return v.name + "_s" + std::to_string(seed); }

json with_seed(json cfg, const CompareVariant& v, int64_t seed) {
  cfg["seed"] = seed;
  cfg["name"] = run_name(v, seed);
  return cfg;
}

RunState run_state(const fs::path& d, const json& cfg, bool fresh) {
  if (fresh || !fs::exists(d / "config.json")) return RunState::train;
  try {
    if (json::parse(read_text_file((d / "config.json").string())) != cfg) return RunState::train;
  } catch (const std::exception&) {
    return RunState::train;
  }
  if (fs::exists(d / "summary.json")) return RunState::finished;
  const bool ckpt = RunCheckpoints(d.string(), {"model.safetensors", "optimizer.safetensors"}).exists();
  return ckpt ? RunState::resume : RunState::train;
}

json train_run(const json& cfg, const fs::path& runs_dir, bool resume, int64_t rank, ShardComm* comm,
               const std::function<bool()>& stop_requested) {
  const fs::path d = runs_dir / cfg["name"].get<std::string>(), timing_file = d / "compare_timing.json";
  const bool writer = !comm || comm->rank() == 0;
  if (writer && fs::exists(d / "summary.json")) fs::remove(d / "summary.json");
  // The parts trained before an interruption (written when it stopped the run): a resumed run's time is its sum.
  double wall_before = 0, cpu_before = 0;
  int64_t parts = 1;
  if (resume) {
    try {
      const json t = json::parse(read_text_file(timing_file.string()));
      if (t.value("partial", false) && t["wall_s"].is_number() && t["cpu_s"].is_number() && t["parts"].is_number_integer())
        wall_before = t["wall_s"], cpu_before = t["cpu_s"], parts = t["parts"].get<int64_t>() + 1;
      else
        parts = 0;  // earlier parts not timed (killed, or written by an older convlab): this part's time only
    } catch (const std::exception&) {
      parts = 0;
    }
  }
  const auto w0 = std::chrono::steady_clock::now();
  const double u0 = cpu_seconds();
  const json summary = train_segmentation(cfg, {.runs_dir = runs_dir.string(), .resume = resume, .quiet = true,
                                                .overwrite = !resume, .stop_requested = stop_requested, .comm = comm});
  const bool stopped = summary.value("stopped", "") != "";
  double cpu = cpu_seconds() - u0;
  if (comm && comm->size() > 1) {
    std::vector<double> all(size_t(comm->size()));
    comm->all_gather(&cpu, sizeof cpu, all.data());
    cpu = 0;
    for (double v : all) cpu += v;
  }
  // parts: how many invocations trained it, all timed; 0: it was resumed after an untimed part.
  json timing = {{"wall_s", wall_before + std::chrono::duration<double>(std::chrono::steady_clock::now() - w0).count()},
                 {"cpu_s", cpu_before + cpu}, {"resumed", resume}, {"parts", parts}};
  if (rank >= 0) timing["rank"] = rank;
  if (rank >= 0) timing["processes"] = comm ? comm->size() : 1;
  if (stopped) {  // interrupted: not finished, so no summary.json (the next compare resumes it and adds this part)
    if (writer) {
      fs::remove(d / "summary.json");
      if (parts > 0) {
        timing["partial"] = true;
        write_file_atomic(timing_file.string(), timing.dump(2) + "\n");
      } else {
        fs::remove(timing_file);
      }
    }
    CL_FAIL("interrupted at step " << summary["completed_steps"].get<int64_t>()
                                   << " (checkpoint written; the same command resumes the experiment)");
  }
  if (writer) write_file_atomic(timing_file.string(), timing.dump(2) + "\n");
  return timing;
}

std::vector<int64_t> deal_runs(const std::vector<double>& cost, int64_t processes) {
  CL_CHECK(processes >= 1, "compare: deal_runs: processes " << processes << " < 1");
  std::vector<double> load(size_t(processes), 0.0);
  std::vector<int64_t> owner(cost.size());
  for (size_t k = 0; k < cost.size(); ++k) {
    const size_t p = size_t(std::min_element(load.begin(), load.end()) - load.begin());  // first of the least loaded
    owner[k] = int64_t(p);
    load[p] += std::max(cost[k], 0.0);
  }
  return owner;
}

namespace {

// The step a resumable run's last checkpoint holds (0 when unreadable: then it counts as a whole run).
int64_t checkpoint_step(const fs::path& d) {
  try {
    const json j = json::parse(read_text_file((d / "checkpoint.json").string()));
    if (j.is_object() && j.contains("step") && j["step"].is_number_integer()) return std::max<int64_t>(j["step"].get<int64_t>(), 0);
  } catch (const std::exception&) {
  }
  return 0;
}

// The shards a run's batch is cut into (train.batch_shards; unset: 1, in a serial and a distributed compare
// alike, so a run's numbers never depend on how many processes ran the compare).
int64_t run_shards(const json& cfg) {
  int64_t s = 0;
  if (cfg.contains("train") && cfg["train"].is_object() && cfg["train"].contains("batch_shards"))
    json_to_int(cfg["train"]["batch_shards"], s);
  return std::max<int64_t>(s, 1);
}

// How a distributed compare spreads `todo` runs over P processes: `per_run` processes train each run together
// (data-parallel) when there are fewer runs than processes and every run's shard count allows it (the largest
// divisor of them all that fits P / todo); else 1, and the runs are dealt out by deal_runs. `note`: one line for
// the log when processes idle.
struct RunPlan {
  int64_t per_run = 1;
  std::string note;
};
RunPlan plan_runs(const std::vector<json>& todo, int64_t P) {
  RunPlan p;
  const int64_t R = int64_t(todo.size());
  if (R == 0 || R >= P) return p;
  int64_t g = 0;  // the gcd of the runs' shard counts
  for (const json& cfg : todo) g = std::gcd(g, run_shards(cfg));
  for (int64_t d = P / R; d > 1; --d)
    if (g % d == 0) {
      p.per_run = d;
      break;
    }
  const int64_t idle = P - R * p.per_run;
  std::ostringstream s;
  s << "compare: " << R << " run" << (R > 1 ? "s" : "") << " to train on " << P << " processes: ";
  if (p.per_run > 1) s << p.per_run << " processes per run (data-parallel, train.batch_shards " << g << ")";
  else s << "one process per run";
  if (idle > 0 && p.per_run == 1 && P / R > 1)
    s << ", " << idle << " idle (a run is split over processes only when its train.batch_shards is a multiple of "
      << "their number: add e.g. \"train.batch_shards=" << P / R << "\" to the experiment's \"set\")";
  else if (idle > 0)
    s << ", " << idle << " idle";
  p.note = s.str() + "\n";
  return p;
}

}  // namespace

std::set<std::string> train_distributed(const Experiment& e, const std::vector<json>& cfgs, const CompareCommand& c,
                                        const fs::path& runs_dir, const std::vector<double>& step_seconds,
                                        const std::function<void(const std::string&)>& say) {
  const int64_t P = c.comm->size(), rank = c.comm->rank();
  const size_t V = e.variants.size();
  // Rank 0's step times for every rank: the deal must be the same everywhere.
  std::vector<double> mine(V, 0.0), all(V * size_t(P));
  if (rank == 0 && step_seconds.size() == V) mine = step_seconds;
  c.comm->all_gather(mine.data(), int64_t(V * sizeof(double)), all.data());
  // The runs still to train, as rank 0 sees the folders: every rank deals out the same list, and the
  // exchange makes sure no rank starts training before every rank has looked.
  std::vector<json> run_cfgs;
  std::vector<double> run_step_s;
  for (int64_t seed : e.seeds)
    for (size_t i = 0; i < V; ++i) run_cfgs.push_back(with_seed(cfgs[i], e.variants[i], seed)), run_step_s.push_back(all[i]);
  std::vector<int64_t> state(run_cfgs.size() * 2), states(state.size() * size_t(P));  // per run: state, checkpoint step
  for (size_t k = 0; k < run_cfgs.size(); ++k) {
    const fs::path d = runs_dir / run_cfgs[k]["name"].get<std::string>();
    const RunState s = run_state(d, run_cfgs[k], c.fresh);
    state[2 * k] = int64_t(s);
    state[2 * k + 1] = s == RunState::resume ? checkpoint_step(d) : 0;
  }
  c.comm->all_gather(state.data(), int64_t(state.size() * sizeof(int64_t)), states.data());
  const int64_t steps = e.budgets.back();
  std::vector<json> todo;
  std::vector<bool> resume;
  std::vector<double> cost;
  std::set<std::string> trained_now;
  for (size_t k = 0; k < run_cfgs.size(); ++k)
    if (RunState(states[2 * k]) != RunState::finished) {
      todo.push_back(run_cfgs[k]);
      resume.push_back(RunState(states[2 * k]) == RunState::resume);
      cost.push_back(run_step_s[k] * double(std::max<int64_t>(steps - states[2 * k + 1], 1)));
      trained_now.insert(run_cfgs[k]["name"].get<std::string>());
    }
  const RunPlan plan = plan_runs(todo, P);
  say(plan.note);
  const int64_t g = plan.per_run;
  const std::vector<int64_t> owner = g > 1 ? std::vector<int64_t>() : deal_runs(cost, P);
  // Data-parallel: ranks [j*g, (j+1)*g) train run j together; the others idle.
  std::unique_ptr<ShardComm> group;
  if (g > 1) group = c.comm->split(rank < int64_t(todo.size()) * g ? int(rank / g) : -1);
  bool failed = false;
  std::string failure;
  try {
    for (size_t k = 0; k < todo.size(); ++k) {
      if (g > 1 ? !group || int64_t(k) != rank / g : owner[k] != rank) continue;
      try {
        train_run(todo[k], runs_dir, resume[k], g > 1 ? rank - rank % g : rank, group.get(), c.stop_requested);
      } catch (const Error& err) {
        CL_FAIL("compare " << e.file << ": run " << todo[k]["name"].get<std::string>() << ": " << err.what());
      }
    }
  } catch (const Error& err) {
    // A process of this run's group stopped answering: mpirun is ending the job, nobody to agree with.
    if (group && group->lost()) throw;
    failed = true;
    failure = err.what();
  }
  group.reset();
  if (c.comm->any_unbounded(failed)) {  // every rank waits here for the others' runs
    CL_CHECK(!failed, failure);
    CL_FAIL("compare " << e.file << ": stopped: another process failed (its message says why)");
  }
  if (rank == 0)
    say("compare " + e.name + ": " + std::to_string(todo.size()) + (todo.size() == 1 ? " run" : " runs") + " trained over " +
        std::to_string(P) + " processes\n");
  return trained_now;
}

}  // namespace convlab::compare_detail

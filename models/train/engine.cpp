// models/train/engine.cpp: run_training, the loop every task trains through (see engine.h).
#include "models/train/engine.h"

#include <chrono>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>
#include <memory>
#include <ostream>

#include "core/cpu.h"
#include "core/error.h"
#include "data/files.h"
#include "data/safetensors.h"
#include "models/train/curves.h"

namespace convlab {

using nlohmann::json;
namespace fs = std::filesystem;

void StepGuard::check_finite(const std::string& what, double v) const {
  CL_CHECK(std::isfinite(v), "train: " << what << " became " << float(v) << " at step " << done_ << "; "
                                       << checkpoints_.kept());
}

std::string format_duration(double s) {
  char buf[32];
  if (s >= 60) std::snprintf(buf, sizeof buf, "%dm%02ds", int(s) / 60, int(s) % 60);
  else std::snprintf(buf, sizeof buf, "%.1fs", s);
  return buf;
}

namespace {

// "2026-12-06T22:31:05Z": the wall clock of a metrics.jsonl row.
std::string utc_now_iso() {
  const std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

// metrics.jsonl, appended one flushed line at a time (a kill leaves at most one cut line, which --resume drops).
class MetricsLog {
 public:
  explicit MetricsLog(const std::string& path) : path_(path), f_(std::fopen(path.c_str(), "a")) {
    CL_CHECK(f_, path << ": cannot write");
  }
  ~MetricsLog() { std::fclose(f_); }
  MetricsLog(const MetricsLog&) = delete;
  MetricsLog& operator=(const MetricsLog&) = delete;
  void write(json j) {
    j["time"] = utc_now_iso();
    const std::string line = j.dump() + "\n";
    CL_CHECK(std::fputs(line.c_str(), f_) >= 0 && std::fflush(f_) == 0, path_ << ": cannot write");
  }

 private:
  std::string path_;
  std::FILE* f_;
};

std::string rate_and_eta(double images_per_s, double eta) {
  char buf[96];
  std::snprintf(buf, sizeof buf, "%.1f img/s ETA %s", images_per_s, format_duration(eta).c_str());
  return buf;
}

// A validation record (split "val" or "test", not a training log line) holding `key` as a number: its value.
bool validation_value(const json& rec, const std::string& key, double& v) {
  if (key.empty() || !rec.is_object() || !rec.contains("split") || rec["split"] == "train") return false;
  const auto it = rec.find(key);
  if (it == rec.end() || !it->is_number()) return false;
  v = it->get<double>();
  return true;
}

// curves.svg (from metrics.jsonl as it is on disk) and index.html: the curves, the newest val_<N>.png or
// samples_<N>.png, and summary.json when `with_summary` (at the end: before that the folder may hold an old one).
void write_run_pages(const fs::path& dir, const std::string& name, const std::string& metric, bool with_summary) {
  std::vector<json> recs;
  {
    std::ifstream f(dir / "metrics.jsonl");
    for (std::string line; std::getline(f, line);) {
      json j = json::parse(line, nullptr, /*allow_exceptions=*/false);
      if (!j.is_discarded()) recs.push_back(std::move(j));
    }
  }
  write_file_bytes_atomic((dir / "curves.svg").string(), curves_svg(curve_series(recs, metric), name), "");
  std::string picture;
  long long newest = -1;
  for (const auto& e : fs::directory_iterator(dir)) {
    const std::string n = e.path().filename().string();
    for (const std::string prefix : {"val_", "samples_"})
      if (n.rfind(prefix, 0) == 0 && e.path().extension() == ".png") {
        const std::string digits = n.substr(prefix.size(), n.size() - prefix.size() - 4);
        if (digits.empty() || digits.find_first_not_of("0123456789") != std::string::npos || digits.size() > 15) continue;
        if (const long long k = std::stoll(digits); k > newest) newest = k, picture = n;
      }
  }
  std::string summary;
  if (with_summary) {
    std::ifstream f(dir / "summary.json");
    summary.assign(std::istreambuf_iterator<char>(f), {});
  }
  write_file_bytes_atomic((dir / "index.html").string(), run_index_html(name, picture, summary), "");
}

// The best validation so far of a run and its best.safetensors.
struct Best {
  int64_t step = -1;
  double value = -std::numeric_limits<double>::infinity();
};

}  // namespace

json run_training(TrainingTask& task, const TrainFlags& flags) {
  const LoopPlan plan = task.plan();
  if (!plan.resumable) {
    CL_CHECK(!flags.resume, "--resume: " << plan.not_resumable << "; drop --resume");
    CL_CHECK(flags.stop_after <= 0, "--stop-after: " << plan.not_resumable << "; drop --stop-after");
  }
  // Data parallel: P processes, this one rank `rank`; rank 0 alone writes files and prints.
  ShardComm* comm = flags.comm;
  const int64_t P = comm ? comm->size() : 1, rank = comm ? comm->rank() : 0;
  const bool writer = rank == 0;
  const int64_t S = plan.batch_shards > 0 ? plan.batch_shards : P;
  CL_CHECK(plan.batch_size % P == 0, "train.batch_size: a global batch of " << plan.batch_size
                                         << " cannot be split evenly over " << P << " processes");
  CL_CHECK(plan.batch_size % S == 0, "train.batch_shards: a batch of " << plan.batch_size << " cannot be cut into "
                                         << S << " equal shards");
  CL_CHECK(S % P == 0, "train.batch_shards: " << S << " shards cannot be split evenly over " << P << " processes");
  const BatchShards shards{.total = S, .first = rank * (S / P), .local = S / P, .comm = comm};
  std::ostream* out = flags.quiet || !writer ? nullptr : flags.log;
  const bool bar = out != nullptr && flags.progress_bar;
  const fs::path dir = fs::path(flags.runs_dir) / task.name();
  RunCheckpoints ckpts(dir.string(), plan.checkpoint_files);
  int64_t step = 0;
  // Set-up on every process; when one fails, the others stop too (rather than wait in the first step's exchange).
  auto agree = [&](const std::function<void()>& f) {
    if (!comm) return f();
    std::string failure;
    try {
      f();
    } catch (const Error& e) {
      failure = e.what();
    }
    if (comm->any(!failure.empty())) {
      CL_CHECK(failure.empty(), failure);
      CL_FAIL("train: stopped: another process of the run failed (its message says why)");
    }
  };
  agree([&] { if (writer) ckpts.start(flags.resume, flags.overwrite, plan.resumable); });
  if (flags.resume) {
    agree([&] {
      const Checkpoint c = ckpts.load();
      task.restore(c);
      step = c.step;
    });
    if (writer) ckpts.trim_metrics(step);
    if (out) *out << "resuming from step " << step << "\n";
  }
  Best best;
  const fs::path best_path = dir / "best.safetensors";
  if (flags.resume && !plan.best_metric.empty()) {  // (a fresh start: start() removed the old best.safetensors)
    std::ifstream f(dir / "metrics.jsonl");  // trimmed to the checkpoint's step above
    for (std::string line; std::getline(f, line);) {
      const json rec = json::parse(line, nullptr, /*allow_exceptions=*/false);
      double v = 0;
      if (validation_value(rec, plan.best_metric, v) && v > best.value) best = {rec.value("step", int64_t(0)), v};
    }
  }
  std::unique_ptr<MetricsLog> metrics;
  if (writer) {
    write_file_bytes_atomic((dir / "config.json").string(), task.config().dump(2) + "\n", "");
    metrics = std::make_unique<MetricsLog>((dir / "metrics.jsonl").string());
  }
  if (out) {
    *out << task.describe(dir.string());
    if (P > 1) *out << "data parallel: " << P << " processes, batch " << plan.batch_size << " cut into " << S
                    << " shards (" << S / P << " per process)\n";
    *out << std::flush;
  }

  const int64_t B = plan.batch_size, first = step;
  const auto t0 = std::chrono::steady_clock::now();
  auto seconds = [&] { return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(); };
  json last_log, last_val;
  int64_t completed = step;
  std::string stopped;  // "", "stop_after" or "interrupted"
  bool bar_open = false;  // the bar is the last thing on its line
  task.set_comm(comm);
  task.begin();
  try {
    for (; step < plan.steps; ++step) {
      const int64_t done = step + 1;
      StepGuard guard(ckpts, done);
      {
        ShardScope scope(shards);
        task.step(step, guard);
      }
      completed = done;
      const double secs = seconds();
      const double ips = double((done - first) * B) / std::max(secs, 1e-9);
      const double eta = double(plan.steps - done) * B / std::max(ips, 1e-9);
      if (done % plan.log_every == 0 || done == plan.steps) {
        json rec = {{"step", done}, {"split", "train"}};
        std::vector<std::string> extra;
        {
          ShardScope scope(shards);  // the step's shards: statistics of the step's batch fold like its sums
          task.log(done, rec, extra);
        }
        rec["images_per_s"] = ips;
        rec["seconds"] = secs;
        if (comm) {  // data parallel: time inside the exchanges since the run started (waiting included), bytes sent
          rec["exchange_seconds"] = comm->exchange_seconds();
          rec["exchange_bytes"] = comm->exchange_bytes();
        }
        if (metrics) metrics->write(rec);
        last_log = rec;
        if (out && !bar) {
          *out << "step " << done << "/" << plan.steps << " " << task.progress() << " " << rate_and_eta(ips, eta) << "\n";
          for (const std::string& l : extra) *out << "  " << l << "\n";
        }
      }
      if (bar) {
        const int width = 24, filled = int(width * done / plan.steps);
        *out << "\r[" << std::string(filled, '#') << std::string(width - filled, '.') << "] " << done << "/"
             << plan.steps << " " << task.progress() << " " << rate_and_eta(ips, eta) << "   ";
        bar_open = true;
      }
      if (out) out->flush();
      if (plan.validate_every > 0 && (done % plan.validate_every == 0 || done == plan.steps)) {
        Validation v = task.validate(done, writer ? dir.string() : std::string());
        if (!v.record.is_null()) {
          v.record["step"] = done;
          if (metrics) metrics->write(v.record);
          last_val = v.record;
          double value = 0;
          if (validation_value(v.record, plan.best_metric, value) && value > best.value) {
            best = {done, value};
            if (writer) {
              for (CheckpointFile& cf : task.checkpoint_files())
                if (cf.name == plan.best_file) {
                  cf.metadata["step"] = std::to_string(done);
                  cf.metadata["best_metric"] = plan.best_metric;
                  cf.metadata["best_value"] = v.record[plan.best_metric].dump();
                  safetensors::save(best_path.string(), cf.tensors, cf.metadata);  // a temporary renamed over: atomic
                }
            }
          }
        }
        if (writer) write_run_pages(dir, task.name(), plan.best_metric, false);
        if (out) {
          for (const std::string& l : v.lines) {
            *out << (bar_open ? "\n" : "") << l << "\n";
            bar_open = false;
          }
          out->flush();
        }
      }
      if (done < plan.steps) {
        // Under data parallelism every process stops at the same step when any was asked to.
        const bool asked = flags.stop_requested && flags.stop_requested();
        if (done == flags.stop_after) stopped = "stop_after";
        else if (comm ? comm->any(asked) : asked) stopped = "interrupted";
      }
      const bool stop = !stopped.empty();
      // Written once the next step's losses are finite (models/checkpoint.h); the last step has none, so at once.
      // A task that cannot resume keeps no checkpoint of an interrupted run (it restarts from scratch anyway).
      if (!writer) {
      } else if (done == plan.steps || (stop && plan.resumable)) {
        ckpts.save(done, task.checkpoint_files());  // refuses non-finite weights, statistics or state
      } else if (plan.checkpoint_every > 0 && done % plan.checkpoint_every == 0) {
        ckpts.defer(done, task.checkpoint_files());
      }
      if (stop) break;
    }
  } catch (const Error& e) {
    // A process of the run stopped answering (died, was killed, hangs): one line saying where, and what is kept.
    // The checkpoint deferred after the last step is not written: its next step never checked its losses.
    if (!comm || !comm->lost()) throw;
    if (out && bar_open) *out << "\n" << std::flush;
    CL_FAIL("stopped at step " << step + 1 << ": " << e.what() << "; " << ckpts.kept());
  }
  if (out && bar_open) *out << "\n" << std::flush;
  const double secs = seconds();
  json summary = task.summary(last_log, last_val);
  summary["name"] = task.name();
  summary["task"] = task.kind();
  summary["steps"] = plan.steps;
  summary["completed_steps"] = completed;
  summary["resumed_from"] = first;
  summary["stopped"] = stopped;
  summary["checkpoint_written"] = stopped.empty() || plan.resumable;
  summary["batch_size"] = B;
  summary["train_seconds"] = secs;
  summary["run_dir"] = dir.string();
  summary["simd_target"] = isa_name(active_isa());
  summary["processes"] = P;
  summary["batch_shards"] = S;
  if (comm) {
    summary["exchange_seconds"] = comm->exchange_seconds();
    summary["exchange_bytes_per_step"] = completed > first ? comm->exchange_bytes() / (completed - first) : 0;
  }
  if (best.step >= 0)
    summary["best"] = {{"step", best.step}, {"metric", plan.best_metric}, {"value", best.value}, {"file", "best.safetensors"}};
  if (writer) {
    write_file_bytes_atomic((dir / "summary.json").string(), summary.dump(2) + "\n", "");
    write_run_pages(dir, task.name(), plan.best_metric, true);
  }
  return summary;
}

}  // namespace convlab

// tests/test_checkpoint.cpp: the run folder's checkpoint as one unit (models/checkpoint.h), through the
// `convlab train` executable as a user runs it: kill -9 at seeded random moments never leaves a mix of steps or
// an unresumable run (and the finished run is bit-identical to an uninterrupted one); a learning rate that blows
// the weights up stops with exit 2 naming a checkpoint that is on disk, finite, and evaluates to a finite loss; a run folder holding a
// checkpoint is not trained over without --overwrite; a GAN failing at step 1 says no checkpoint exists.
#include <gtest/gtest.h>

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <random>
#include <regex>
#include <thread>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "data/safetensors.h"
#include "models/checkpoint.h"
#include "tests/testing.h"

extern char** environ;

namespace convlab {
namespace {

using nlohmann::json;
namespace fs = std::filesystem;

fs::path test_dir() {
  const fs::path d = fs::temp_directory_path() / ("convlab_ckpt_test_" + std::to_string(::getpid()));
  fs::create_directories(d);
  return d;
}

std::string slurp(const fs::path& p) {
  std::ifstream f(p);
  return std::string(std::istreambuf_iterator<char>(f), {});
}

// `convlab --threads 1 ARGS...` with stdout / stderr in files; returns its pid.
pid_t spawn(const std::vector<std::string>& args) {
  std::vector<std::string> all = {CONVLAB_BINARY, "--threads", "1"};
  all.insert(all.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (std::string& a : all) argv.push_back(a.data());
  argv.push_back(nullptr);
  const std::string out = (test_dir() / "out").string(), err = (test_dir() / "err").string();
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&fa, 1, out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_addopen(&fa, 2, err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  pid_t pid = -1;
  const int rc = posix_spawn(&pid, CONVLAB_BINARY, &fa, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  EXPECT_EQ(rc, 0) << "cannot start " << CONVLAB_BINARY;
  return pid;
}

struct Exit {
  bool killed = false;
  int code = -1;
  std::string err;
};

Exit wait_for(pid_t pid) {
  int status = 0;
  EXPECT_EQ(waitpid(pid, &status, 0), pid);
  return {WIFSIGNALED(status), WIFEXITED(status) ? WEXITSTATUS(status) : -1, slurp(test_dir() / "err")};
}

Exit run(const std::vector<std::string>& args) { return wait_for(spawn(args)); }

// hdc_seg on 24 px images, batch 4, a checkpoint every step: 40 steps take a few seconds.
std::vector<std::string> seg_args(const fs::path& runs, const std::string& name, std::vector<std::string> more = {}) {
  std::vector<std::string> a = {"train", testing::source_path("configs/hdc_seg.json"), "--runs", runs.string(), "-q"};
  for (const std::string& s : {"name=" + name, std::string("train.steps=40"), std::string("train.checkpoint_every=1"),
                              std::string("train.val_every=20"), std::string("train.log_every=5"),
                              std::string("train.grid_images=1"), std::string("train.batch_size=4"),
                              std::string("data.image_size=24"), std::string("data.train_size=64"),
                              std::string("data.val_size=4"), std::string("schedule.warmup_steps=2")})
    a.insert(a.end(), {"--set", s});
  a.insert(a.end(), more.begin(), more.end());
  return a;
}

std::vector<std::string> val_lines(const fs::path& dir) {
  std::ifstream f(dir / "metrics.jsonl");
  std::vector<std::string> out;
  for (std::string line; std::getline(f, line);)
    if (line.find("\"split\":\"val\"") != std::string::npos) {
      json j = json::parse(line);
      j.erase("time");  // the wall clock of the row (ISO-8601 UTC), the one field two equal runs do not share
      out.push_back(j.dump());
    }
  return out;
}

const std::vector<std::string> kSegFiles = {"model.safetensors", "optimizer.safetensors"};

// What a kill may leave: checkpoint.json names a complete step folder whose files (and, once published, the
// top-level files) all carry its step, and RunCheckpoints::load (what --resume does) accepts it.
void expect_consistent(const fs::path& dir, const std::string& when) {
  if (!fs::exists(dir / "checkpoint.json")) return;
  try {
    const json m = json::parse(slurp(dir / "checkpoint.json"));
    const std::string step = std::to_string(m["step"].get<int64_t>());
    for (const std::string& f : kSegFiles) {
      EXPECT_EQ(safetensors::load((dir / m["folder"].get<std::string>() / f).string()).metadata.at("step"), step)
          << when << ": " << f;
      if (m["published"].get<bool>()) {
        EXPECT_EQ(safetensors::load((dir / f).string()).metadata.at("step"), step) << when << ": top-level " << f;
      }
    }
    EXPECT_EQ(RunCheckpoints(dir.string(), kSegFiles).load().step, m["step"].get<int64_t>()) << when;
  } catch (const std::exception& e) {
    ADD_FAILURE() << when << ": the checkpoint is not resumable: " << e.what();
  }
}

TEST(Checkpoint, KillNineInALoopNeverLeavesAnUnresumableRun) {
  const fs::path runs = test_dir() / "kill";
  const auto t0 = std::chrono::steady_clock::now();
  const Exit ref = run(seg_args(runs, "ref"));
  ASSERT_EQ(ref.code, 0) << ref.err;
  const double full_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();

  const fs::path dir = runs / "kl";
  std::mt19937 rng(11);
  // Up to 15% of an uninterrupted run: most starts are killed (during start-up, a step, or, as fsync dominates
  // the time, a checkpoint write); a run that does finish starts over with --overwrite.
  std::uniform_real_distribution<double> frac(0.0, 0.15);
  bool finished = false;
  int kills = 0;
  for (int i = 0; i < 20; ++i) {
    // A finished run starts over (exercising --overwrite under kill too); otherwise resume what is there.
    std::vector<std::string> extra;
    if (finished) extra = {"--overwrite"};
    else if (fs::exists(dir / "checkpoint.json")) extra = {"--resume"};
    const std::string when = "kill " + std::to_string(i) + (extra.empty() ? " (fresh)" : " (" + extra[0] + ")");
    const pid_t pid = spawn(seg_args(runs, "kl", extra));
    std::this_thread::sleep_for(std::chrono::duration<double>(frac(rng) * full_s));
    ::kill(pid, SIGKILL);
    const Exit e = wait_for(pid);
    if (!e.killed) {
      ASSERT_EQ(e.code, 0) << when << ": " << e.err;
    }
    kills += e.killed;
    finished = !e.killed;
    expect_consistent(dir, when);
    if (::testing::Test::HasFailure()) return;
  }
  EXPECT_GT(kills, 0);
  const Exit last = run(seg_args(runs, "kl", {fs::exists(dir / "checkpoint.json") ? "--resume" : "--overwrite"}));
  ASSERT_EQ(last.code, 0) << last.err;
  // Bit-identical to the uninterrupted run, and the log holds each validation once.
  const auto a = safetensors::load((runs / "ref/model.safetensors").string()),
             b = safetensors::load((dir / "model.safetensors").string());
  ASSERT_EQ(a.tensors.size(), b.tensors.size());
  for (size_t i = 0; i < a.tensors.size(); ++i)
    EXPECT_EQ(a.tensors[i].second.to_vector(), b.tensors[i].second.to_vector()) << a.tensors[i].first;
  EXPECT_EQ(val_lines(dir), val_lines(runs / "ref"));
  // Nothing a killed writer left survives the next start.
  for (const auto& p : fs::recursive_directory_iterator(dir))
    EXPECT_EQ(p.path().filename().string().find(".tmp"), std::string::npos) << p.path();
  std::vector<std::string> folders;
  for (const auto& p : fs::directory_iterator(dir / "checkpoints")) folders.push_back(p.path().filename().string());
  EXPECT_EQ(folders, std::vector<std::string>{"step_40"});
}

// Ctrl-C (SIGINT) or SIGTERM during `convlab train`: the step in progress finishes, a checkpoint of it is written
// through RunCheckpoints, the CLI says where it stopped and exits 128 + the signal; --resume continues from there.
TEST(Checkpoint, SignalStopsAfterTheStepWithACheckpointAndResumeContinues) {
  for (const int sig : {SIGINT, SIGTERM}) {
    const std::string name = sig == SIGINT ? "int" : "term", when = "signal " + name;
    const fs::path runs = test_dir() / "signal", dir = runs / name;
    // Far more steps than can run before the signal; no scheduled checkpoint or validation on the way.
    const pid_t pid = spawn(seg_args(runs, name, {"--set", "train.steps=1000000", "--set", "train.checkpoint_every=1000000",
                                                  "--set", "train.val_every=1000000"}));
    // The first log line (step 5) shows the loop is running; a loaded machine may take long to get there.
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(300);
    while (slurp(dir / "metrics.jsonl").find('\n') == std::string::npos && std::chrono::steady_clock::now() < deadline)
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    ASSERT_NE(slurp(dir / "metrics.jsonl").find('\n'), std::string::npos) << when << ": no log line within 300 s";
    ::kill(pid, sig);
    const Exit e = wait_for(pid);
    ASSERT_FALSE(e.killed) << when;
    EXPECT_EQ(e.code, 128 + sig) << when << ": " << e.err;
    ASSERT_TRUE(fs::exists(dir / "checkpoint.json")) << when;
    const int64_t k = json::parse(slurp(dir / "checkpoint.json"))["step"].get<int64_t>();
    EXPECT_GE(k, 5) << when;
    EXPECT_EQ(slurp(test_dir() / "out"), "stopped at step " + std::to_string(k) + " (checkpoint written; --resume continues)\n")
        << when;
    const json stopped = json::parse(slurp(dir / "summary.json"));
    EXPECT_EQ(stopped["stopped"], "interrupted") << when;
    EXPECT_EQ(stopped["completed_steps"], k) << when;
    expect_consistent(dir, when);
    // --resume (with progress output: no -q) runs the remaining 3 steps of a schedule of k + 3.
    std::vector<std::string> args = seg_args(runs, name, {"--set", "train.steps=" + std::to_string(k + 3), "--resume"});
    args.erase(std::find(args.begin(), args.end(), "-q"));
    const Exit r = run(args);
    ASSERT_EQ(r.code, 0) << when << ": " << r.err;
    EXPECT_NE(slurp(test_dir() / "out").find("resuming from step " + std::to_string(k) + "\n"), std::string::npos) << when;
    EXPECT_NE(slurp(test_dir() / "out").find("done in"), std::string::npos) << when;
    const json done = json::parse(slurp(dir / "summary.json"));
    EXPECT_EQ(done["resumed_from"], k) << when;
    EXPECT_EQ(done["completed_steps"], k + 3) << when;
    EXPECT_EQ(done["stopped"], "") << when;
    EXPECT_EQ(json::parse(slurp(dir / "checkpoint.json"))["step"], k + 3) << when;
    // The one validation (the last step) is the best so far: best.safetensors is a model file eval accepts.
    EXPECT_EQ(done["best"]["step"], k + 3) << when;
    EXPECT_EQ(done["best"]["metric"], "miou") << when;
    EXPECT_EQ(run({"eval", "--checkpoint", (dir / "best.safetensors").string()}).code, 0) << when;
  }
}

TEST(Checkpoint, ExplodingLearningRateKeepsOnlyAFiniteCheckpoint) {
  // 1e30: step 1 leaves finite weights (~5e29) whose loss at step 2 is NaN; before checkpoints waited for the
  // next step's loss, that checkpoint was kept and `convlab eval` of it gave NaN. 1e15: step 2 blows up the BN
  // statistics, so a checkpoint (step 1) is kept and the evaluation below is exercised.
  int evaluated = 0;
  for (const std::string lr : {"1e30", "1e15"}) {
    SCOPED_TRACE("optimizer.lr=" + lr);
    const fs::path runs = test_dir() / ("lr" + lr);
    const Exit e = run(seg_args(runs, "boom", {"--set", "optimizer.lr=" + lr, "--set", "schedule.type=constant",
                                               "--set", "train.checkpoint_every=1"}));
    EXPECT_EQ(e.code, 2) << e.err;
    EXPECT_EQ(std::count(e.err.begin(), e.err.end(), '\n'), 1) << e.err;
    if (lr == "1e30") {
      EXPECT_NE(e.err.find("at step"), std::string::npos) << e.err;
    } else {  // a loss that became NaN, or weights / statistics save() refuses
      EXPECT_TRUE(e.err.find("at step") != std::string::npos || e.err.find("after step") != std::string::npos)
          << e.err;
    }
    const fs::path dir = runs / "boom";
    std::smatch m;
    if (std::regex_search(e.err, m, std::regex(R"(the last good checkpoint \(step (\d+)\))"))) {
      ASSERT_TRUE(fs::exists(dir / "checkpoint.json")) << e.err;
      const Checkpoint c = RunCheckpoints(dir.string(), kSegFiles).load();
      EXPECT_EQ(std::to_string(c.step), m[1].str()) << e.err;
      for (const auto& [name, f] : c.files) EXPECT_EQ(first_nonfinite(f.tensors), "") << name;
      EXPECT_EQ(first_nonfinite(safetensors::load((dir / "model.safetensors").string()).tensors), "");
      // Finite is not enough (weights of 5e29 are finite): the kept weights were written only after they gave
      // a finite loss at the next step, so evaluating them gives a finite loss too, not NaN.
      const Exit ev = run({"eval", (dir / "config.json").string(), "--checkpoint",
                           (dir / "model.safetensors").string(), "--json"});
      ASSERT_EQ(ev.code, 0) << ev.err;
      const json r = json::parse(slurp(test_dir() / "out"), nullptr, false);
      ASSERT_TRUE(r.is_object() && r.contains("loss")) << slurp(test_dir() / "out");
      EXPECT_TRUE(r["loss"].is_number() && std::isfinite(r["loss"].get<double>()))
          << "eval of the kept checkpoint (step " << m[1].str() << "): " << r.dump();
      ++evaluated;
    } else {
      EXPECT_NE(e.err.find("no last good checkpoint exists"), std::string::npos) << e.err;
      EXPECT_FALSE(fs::exists(dir / "checkpoint.json"));
    }
  }
  EXPECT_GT(evaluated, 0) << "no learning rate kept a checkpoint: the evaluation of one was not exercised";
}

TEST(Checkpoint, FreshStartOverACheckpointNeedsOverwrite) {
  const fs::path runs = test_dir() / "fresh", dir = runs / "r";
  ASSERT_EQ(run(seg_args(runs, "r", {"--set", "train.steps=3"})).code, 0);
  const std::string config = slurp(dir / "config.json"), metrics = slurp(dir / "metrics.jsonl");
  // Refused with one line naming the folder and both ways out; nothing in the folder changes.
  const Exit refused = run(seg_args(runs, "r", {"--set", "train.steps=4"}));
  EXPECT_EQ(refused.code, 2);
  EXPECT_EQ(std::count(refused.err.begin(), refused.err.end(), '\n'), 1) << refused.err;
  for (const char* s : {"/r already holds a run (checkpoint of step 3, checkpoint.json)", "--resume", "--overwrite"})
    EXPECT_NE(refused.err.find(s), std::string::npos) << s << " in " << refused.err;
  EXPECT_EQ(slurp(dir / "config.json"), config);
  EXPECT_EQ(slurp(dir / "metrics.jsonl"), metrics);
  // Leftovers of a killed writer, and stale outputs: --overwrite leaves none of them.
  fs::create_directories(dir / "checkpoints/step_9.tmp-1");
  fs::create_directories(dir / "checkpoints/step_9");
  std::ofstream(dir / "model.safetensors.tmp-77") << "x";
  std::ofstream(dir / "val_99.png") << "x";
  const Exit over = run(seg_args(runs, "r", {"--set", "train.steps=2", "--overwrite"}));
  ASSERT_EQ(over.code, 0) << over.err;
  EXPECT_NE(slurp(dir / "config.json"), config);
  for (const char* gone : {"checkpoints/step_9.tmp-1", "checkpoints/step_9", "checkpoints/step_3",
                           "model.safetensors.tmp-77", "val_99.png"})
    EXPECT_FALSE(fs::exists(dir / gone)) << gone;
  EXPECT_EQ(json::parse(slurp(dir / "checkpoint.json"))["step"], 2);
  EXPECT_EQ(safetensors::load((dir / "model.safetensors").string()).metadata.at("step"), "2");
  // --resume of a finished run is fine, and a checkpoint file removed by hand is named, not guessed at.
  EXPECT_EQ(run(seg_args(runs, "r", {"--set", "train.steps=2", "--resume"})).code, 0);
  fs::remove(dir / "optimizer.safetensors");
  const Exit gone = run(seg_args(runs, "r", {"--set", "train.steps=2", "--resume"}));
  EXPECT_EQ(gone.code, 2);
  EXPECT_NE(gone.err.find("optimizer.safetensors was removed by hand"), std::string::npos) << gone.err;
}

TEST(Checkpoint, RunsOfTheOldLayoutResume) {
  const fs::path runs = test_dir() / "old", dir = runs / "o";
  ASSERT_EQ(run(seg_args(runs, "o", {"--stop-after", "5"})).code, 0);
  fs::remove(dir / "checkpoint.json");  // what a previous version left: the two files at the top level
  fs::remove_all(dir / "checkpoints");
  const Exit refused = run(seg_args(runs, "o"));
  EXPECT_EQ(refused.code, 2) << "a fresh start over the old layout must be refused too";
  ASSERT_EQ(run(seg_args(runs, "o", {"--stop-after", "7", "--resume"})).code, 0);
  EXPECT_EQ(json::parse(slurp(dir / "checkpoint.json"))["step"], 7);
}

TEST(Checkpoint, SaveRefusesNonFiniteStateAndResumeFinishesAnInterruptedPublish) {
  const fs::path dir = test_dir() / "unit";
  RunCheckpoints rc(dir.string(), kSegFiles);
  rc.start(/*resume=*/false, /*overwrite=*/false);
  EXPECT_EQ(rc.kept(), "no last good checkpoint exists in " + dir.string() + " (none was written)");
  const Tensor w = Tensor::from({2}, {1.f, 2.f}), inf = Tensor::from({2}, {1.f, INFINITY});
  rc.save(1, {{"model.safetensors", {{"w", w}}, {}}, {"optimizer.safetensors", {{"exp_avg.w", w}}, {}}});
  std::string err;
  try {
    rc.save(2, {{"model.safetensors", {{"w", w}}, {}}, {"optimizer.safetensors", {{"exp_avg.w", inf}}, {}}});
  } catch (const Error& e) {
    err = e.what();
  }
  EXPECT_EQ(err, "train: exp_avg.w (optimizer.safetensors) is not finite after step 2, so no checkpoint of it is "
                 "written; the last good checkpoint (step 1) is kept in " + dir.string() + " (checkpoint.json)");
  EXPECT_FALSE(fs::exists(dir / "checkpoints/step_2"));
  // Killed after the commit point, before the top-level links: resume links them.
  json m = json::parse(slurp(dir / "checkpoint.json"));
  m["published"] = false;
  std::ofstream(dir / "checkpoint.json") << m.dump();
  fs::remove(dir / "model.safetensors");
  EXPECT_EQ(rc.load().step, 1);
  EXPECT_EQ(safetensors::load((dir / "model.safetensors").string()).metadata.at("step"), "1");
  EXPECT_TRUE(json::parse(slurp(dir / "checkpoint.json"))["published"].get<bool>());
}

TEST(Checkpoint, DeferredCheckpointIsACopyWrittenOnlyOnCommit) {
  const fs::path dir = test_dir() / "defer";
  RunCheckpoints rc(dir.string(), kSegFiles);
  rc.start(/*resume=*/false, /*overwrite=*/true);
  Tensor w = Tensor::from({2}, {1.f, 2.f});
  rc.defer(1, {{"model.safetensors", {{"w", w}}, {}}, {"optimizer.safetensors", {{"exp_avg.w", w}}, {}}});
  EXPECT_TRUE(rc.has_pending());
  EXPECT_FALSE(rc.exists()) << "a deferred checkpoint is not written before commit_pending()";
  w.data()[0] = 5e29f;  // training goes on in place: the pending copy keeps the values of step 1
  rc.commit_pending();
  EXPECT_FALSE(rc.has_pending());
  ASSERT_EQ(rc.load().step, 1);
  EXPECT_EQ(safetensors::load((dir / "model.safetensors").string()).tensors.at(0).second.to_vector(),
            (std::vector<float>{1.f, 2.f}));
  // A pending checkpoint that is superseded (or never committed, as when the next loss is NaN) is not written.
  rc.defer(2, {{"model.safetensors", {{"w", w}}, {}}, {"optimizer.safetensors", {{"exp_avg.w", w}}, {}}});
  rc.defer(3, {{"model.safetensors", {{"w", w}}, {}}, {"optimizer.safetensors", {{"exp_avg.w", w}}, {}}});
  EXPECT_EQ(rc.pending_step(), 3);
  EXPECT_EQ(rc.kept(), "the last good checkpoint (step 1) is kept in " + dir.string() + " (checkpoint.json)");
  rc.commit_pending();
  EXPECT_EQ(rc.load().step, 3);
  EXPECT_FALSE(fs::exists(dir / "checkpoints/step_2"));
  // Non-finite tensors are refused at once, with save()'s message, and nothing is left pending.
  const Tensor inf = Tensor::from({2}, {1.f, INFINITY});
  EXPECT_THROW(rc.defer(4, {{"model.safetensors", {{"w", inf}}, {}}}), Error);
  EXPECT_FALSE(rc.has_pending());
}

TEST(Checkpoint, GanFailingAtStepOneSaysNoCheckpointExists) {
  const fs::path runs = test_dir() / "gan";
  std::vector<std::string> a = {"train", testing::source_path("configs/dcgan_mnist.json"), "--runs", runs.string(),
                                "-q"};
  for (const char* s : {"name=g", "optimizer.lr=1e36", "generator.layers[0].out_channels=16",
                        "generator.layers[3].out_channels=8", "discriminator.layers[0].out_channels=8",
                        "discriminator.layers[2].out_channels=16", "gan.latent_size=12",
                        "generator.layers[0].in_channels=12",
                        "data.dataset=shapes", "data.train_size=64", "train.steps=6", "train.batch_size=8",
                        "train.sample_every=3", "train.samples=8"})
    a.insert(a.end(), {"--set", s});
  const Exit e = run(a);
  EXPECT_EQ(e.code, 2) << e.err;
  EXPECT_NE(e.err.find("at step 1;"), std::string::npos) << e.err;
  EXPECT_NE(e.err.find("no last good checkpoint exists in " + (runs / "g").string()), std::string::npos) << e.err;
  EXPECT_FALSE(fs::exists(runs / "g/checkpoint.json"));
  EXPECT_FALSE(fs::exists(runs / "g/generator.safetensors"));
}

}  // namespace
}  // namespace convlab

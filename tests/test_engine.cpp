// tests/test_engine.cpp: the training loop of models/train/engine.h used from C++ with a task of its own (no
// config, no command line): what it writes to the stream the caller hands it (and nothing without one), the
// run folder it leaves, the NaN stop through StepGuard, the deferred checkpoint, and the refusal of --resume /
// --stop-after for a task that cannot resume. The three shipped tasks are pinned by test_engine_golden.cpp.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "data/safetensors.h"
#include "models/train/curves.h"
#include "models/train/engine.h"
#include "tests/testing.h"

namespace convlab {
namespace {

using nlohmann::json;
namespace fs = std::filesystem;

// One weight w; step s sets it to s + 1 and "loses" value(s) (NaN at nan_at when >= 0).
class CountingTask : public TrainingTask {
 public:
  CountingTask(int64_t steps, int64_t nan_at, bool resumable) : steps_(steps), nan_at_(nan_at), resumable_(resumable) {}
  const std::string& name() const override { return name_; }
  std::string kind() const override { return "counting"; }
  const json& config() const override { return config_; }
  LoopPlan plan() const override {
    return {.steps = steps_, .batch_size = 2, .log_every = 2, .validate_every = 3, .checkpoint_every = 2,
            .checkpoint_files = {"w.safetensors"}, .resumable = resumable_, .not_resumable = "counting runs restart"};
  }
  std::string describe(const std::string& dir) const override { return "counting into " + dir + "\n"; }
  void restore(const Checkpoint& c) override { w_.data()[0] = c.file("w.safetensors").tensors.at(0).second.item(); }
  void step(int64_t step, StepGuard& guard) override {
    loss_ = step == nan_at_ ? NAN : 1.0 / double(step + 1);
    guard.check_finite("the counting loss", loss_);
    guard.losses_checked();
    w_.data()[0] = float(step + 1);
  }
  void log(int64_t, json& rec, std::vector<std::string>& extra) override {
    rec["loss"] = loss_;
    extra.push_back("w is " + std::to_string(int(w_.item())));
  }
  std::string progress() const override { return "loss " + std::to_string(loss_); }
  Validation validate(int64_t done, const std::string&) override {
    return {{{"w", w_.item()}}, {"checked at " + std::to_string(done)}};
  }
  std::vector<CheckpointFile> checkpoint_files() const override { return {{"w.safetensors", {{"w", w_}}, {}}}; }
  json summary(const json& last_log, const json& last_val) override { return {{"last", last_log}, {"val", last_val}}; }

 protected:
  std::string name_ = "counting";
  json config_ = {{"what", "counting"}};
  int64_t steps_, nan_at_;
  bool resumable_;
  Tensor w_ = Tensor::zeros({1});
  double loss_ = NAN;
};

std::vector<json> metrics(const std::string& dir) {
  std::vector<json> out;
  std::ifstream f(dir + "/metrics.jsonl");
  for (std::string line; std::getline(f, line);) out.push_back(json::parse(line));
  return out;
}

TEST(Engine, RunsATaskOfItsOwnAndWritesOnlyToTheGivenStream) {
  const std::string runs = testing::temp_dir("engine_own");
  CountingTask task(5, -1, true);
  std::ostringstream log;
  const json s = run_training(task, {.runs_dir = runs, .log = &log});
  EXPECT_EQ(s["task"], "counting");
  EXPECT_EQ(s["completed_steps"], 5);
  EXPECT_EQ(s["last"]["step"], 5);
  EXPECT_EQ(s["val"]["step"], 5);  // validations after steps 3 and 5 (the last)
  EXPECT_DOUBLE_EQ(s["val"]["w"].get<double>(), 5.0);
  const std::string text = log.str();
  for (const char* want : {"counting into ", "step 2/5 loss 0.5", "  w is 2", "checked at 3", "step 5/5 ", "checked at 5"})
    EXPECT_NE(text.find(want), std::string::npos) << "missing '" << want << "' in:\n" << text;
  EXPECT_EQ(text.find("step 1/5"), std::string::npos) << "log_every is 2:\n" << text;

  const std::string dir = runs + "/counting";
  const std::vector<json> m = metrics(dir);
  ASSERT_EQ(m.size(), 5u);  // log steps 2, 4, 5; validations 3, 5
  EXPECT_EQ(m[0]["step"], 2);
  EXPECT_TRUE(m[0].contains("images_per_s") && m[0].contains("seconds"));
  EXPECT_EQ(m[1]["step"], 3);
  EXPECT_TRUE(m[1].contains("w"));
  std::ifstream cfg(dir + "/config.json");
  EXPECT_EQ(json::parse(cfg), (json{{"what", "counting"}}));
  EXPECT_TRUE(fs::exists(dir + "/w.safetensors"));
  EXPECT_TRUE(fs::exists(dir + "/summary.json"));

  // The same run without a stream prints nothing anywhere (stdout captured) and gives the same metrics.
  CountingTask quiet(5, -1, true);
  ::testing::internal::CaptureStdout();
  run_training(quiet, {.runs_dir = runs + "/quiet"});
  EXPECT_EQ(::testing::internal::GetCapturedStdout(), "");
  const std::vector<json> mq = metrics(runs + "/quiet/counting");
  ASSERT_EQ(mq.size(), m.size());
  for (size_t i = 0; i < m.size(); ++i) EXPECT_EQ(mq[i].value("loss", -1.0), m[i].value("loss", -1.0)) << i;
}

TEST(Engine, NanStopKeepsTheLastCheckpointWhoseNextStepWasFinite) {
  const std::string runs = testing::temp_dir("engine_nan");
  CountingTask task(10, 4, true);  // steps 0..3 finite, step 4 (the 5th) NaN
  std::string err;
  try {
    run_training(task, {.runs_dir = runs});
  } catch (const Error& e) {
    err = e.what();
  }
  EXPECT_NE(err.find("train: the counting loss became nan at step 5"), std::string::npos) << err;
  // Checkpoints were due after steps 2 and 4; step 4's waited for step 5's loss, which was NaN: step 2's is kept.
  EXPECT_NE(err.find("the last good checkpoint (step 2)"), std::string::npos) << err;
  CountingTask resumed(10, -1, true);
  const json s = run_training(resumed, {.runs_dir = runs, .resume = true});
  EXPECT_EQ(s["completed_steps"], 10);
}

TEST(Engine, ATaskThatCannotResumeRefusesResumeAndStopAfter) {
  const std::string runs = testing::temp_dir("engine_noresume");
  CountingTask a(3, -1, false), b(3, -1, false);
  auto error_of = [&](CountingTask& t, const TrainFlags& f) {
    try {
      run_training(t, f);
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  EXPECT_EQ(error_of(a, {.runs_dir = runs, .resume = true}), "--resume: counting runs restart; drop --resume");
  EXPECT_EQ(error_of(b, {.runs_dir = runs, .stop_after = 2}), "--stop-after: counting runs restart; drop --stop-after");
  EXPECT_FALSE(fs::exists(runs + "/counting/metrics.jsonl"));
}

// A task names its own checkpoint files (w.safetensors above), but only plain NAME.safetensors names: a
// checkpoint.json may never send the loader outside the run folder or onto the run's other files.
TEST(Engine, CheckpointFileNamesArePlainSafetensorsNames) {
  for (const char* bad : {"../w.safetensors", "sub/w.safetensors", "checkpoint.json", "metrics.jsonl", ".safetensors"})
    EXPECT_THROW(RunCheckpoints("runs/x", {bad}), Error) << bad;
  EXPECT_NO_THROW(RunCheckpoints("runs/x", {"w.safetensors", "model.safetensors"}));
}

}  // namespace
}  // namespace convlab

namespace convlab {
namespace {

// CountingTask with a validation score to maximise: 0.5, 0.9, 0.7, 0.8 after steps 3, 6, 9, 12.
class ScoredTask : public CountingTask {
 public:
  ScoredTask() : CountingTask(12, -1, true) {}
  LoopPlan plan() const override {
    LoopPlan p = CountingTask::plan();
    p.best_metric = "score";
    p.best_file = "w.safetensors";
    return p;
  }
  Validation validate(int64_t done, const std::string& run_dir) override {
    std::ofstream(run_dir + "/val_" + std::to_string(done) + ".png") << "picture";  // what a task's validation draws
    const double score[] = {0.5, 0.9, 0.7, 0.8};
    return {{{"split", "val"}, {"score", score[done / 3 - 1]}}, {}};
  }
};

TEST(Engine, BestValidationIsKeptAndAStopRequestStopsWithACheckpointThatResumes) {
  const std::string runs = testing::temp_dir("engine_best"), dir = runs + "/counting";
  ScoredTask a;
  int64_t polls = 0;  // the loop asks after every step; "yes" after the 7th
  std::ostringstream log_a;
  const json sa = run_training(a, {.runs_dir = runs, .log = &log_a, .stop_requested = [&] { return ++polls == 7; }});
  EXPECT_EQ(sa["stopped"], "interrupted");
  EXPECT_EQ(sa["completed_steps"], 7);
  EXPECT_EQ(sa["checkpoint_written"], true);
  EXPECT_EQ(RunCheckpoints(dir, {"w.safetensors"}).load().step, 7);  // between the scheduled ones (6 and 8)
  EXPECT_EQ(sa["best"], (json{{"step", 6}, {"metric", "score"}, {"value", 0.9}, {"file", "best.safetensors"}}));
  const auto best6 = safetensors::load(dir + "/best.safetensors");
  EXPECT_EQ(best6.tensors.at(0).second.item(), 6.f);
  EXPECT_EQ(best6.metadata.at("step"), "6");
  EXPECT_EQ(best6.metadata.at("best_metric"), "score");
  EXPECT_EQ(best6.metadata.at("best_value"), "0.9");

  // --resume: announced, continues at step 8, and knows the best so far from metrics.jsonl (0.8 at 12 is not one).
  ScoredTask b;
  std::ostringstream log_b;
  const json sb = run_training(b, {.runs_dir = runs, .resume = true, .log = &log_b});
  EXPECT_EQ(log_b.str().rfind("resuming from step 7\n", 0), 0u) << log_b.str();
  EXPECT_EQ(sb["stopped"], "");
  EXPECT_EQ(sb["resumed_from"], 7);
  EXPECT_EQ(sb["completed_steps"], 12);
  EXPECT_EQ(sb["best"]["step"], 6);
  EXPECT_EQ(safetensors::load(dir + "/best.safetensors").tensors.at(0).second.item(), 6.f);
  std::ifstream f(dir + "/summary.json");
  EXPECT_EQ(json::parse(f)["best"]["value"], 0.9);

  // --stop-after says "stop_after"; a fresh run (--overwrite) removes the old best.safetensors first.
  ScoredTask c;
  const json sc = run_training(c, {.runs_dir = runs, .stop_after = 2, .overwrite = true});
  EXPECT_EQ(sc["stopped"], "stop_after");
  EXPECT_FALSE(sc.contains("best"));
  EXPECT_FALSE(fs::exists(dir + "/best.safetensors"));
}

std::string read_text(const std::string& path) {
  std::ifstream f(path);
  return std::string(std::istreambuf_iterator<char>(f), {});
}

size_t count_of(const std::string& text, const std::string& what) {
  size_t n = 0;
  for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

TEST(Engine, EveryRunWritesCurvesAnIndexAndTimedSplitRows) {
  const std::string runs = testing::temp_dir("engine_curves"), dir = runs + "/counting";
  ScoredTask task;
  run_training(task, {.runs_dir = runs});
  // metrics.jsonl: every row has a split and an ISO-8601 UTC time.
  const std::regex iso(R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ)");
  size_t train = 0, val = 0;
  for (const json& r : metrics(dir)) {
    ASSERT_TRUE(r.contains("split") && r.contains("time")) << r.dump();
    EXPECT_TRUE(std::regex_match(r["time"].get<std::string>(), iso)) << r.dump();
    (r["split"] == "train" ? train : val) += 1;
  }
  EXPECT_EQ(train, 6u);  // log steps 2, 4, ..., 12
  EXPECT_EQ(val, 4u);    // validations 3, 6, 9, 12
  // curves.svg: one document, a polyline per series ("train loss", "val score"), the legend, ticks.
  const std::string svg = read_text(dir + "/curves.svg");
  EXPECT_EQ(svg.rfind("<?xml", 0), 0u);
  EXPECT_EQ(count_of(svg, "<svg "), 1u);
  EXPECT_NE(svg.find("</svg>"), std::string::npos);
  EXPECT_EQ(count_of(svg, "<polyline class=\"series\""), 2u) << svg;
  EXPECT_NE(svg.find(">train loss</text>"), std::string::npos) << svg;
  EXPECT_NE(svg.find(">val score</text>"), std::string::npos) << svg;
  EXPECT_EQ(count_of(svg, "<"), count_of(svg, ">")) << "unbalanced tags";
  EXPECT_EQ(count_of(svg, "<g"), count_of(svg, "</g>"));
  EXPECT_EQ(count_of(svg, "<text"), count_of(svg, "</text>"));
  // index.html: the curves, the newest validation picture and the summary; every file it names exists.
  const std::string html = read_text(dir + "/index.html");
  EXPECT_NE(html.find("<img src=\"curves.svg\""), std::string::npos) << html;
  EXPECT_NE(html.find("<img src=\"val_12.png\""), std::string::npos) << html;
  EXPECT_NE(html.find("&quot;completed_steps&quot;: 12"), std::string::npos) << html;
  const std::regex ref(R"re((src|href)="([^"]+)")re");
  size_t refs = 0;
  for (auto it = std::sregex_iterator(html.begin(), html.end(), ref); it != std::sregex_iterator(); ++it, ++refs)
    EXPECT_TRUE(fs::exists(dir + "/" + (*it)[2].str())) << (*it)[2].str();
  EXPECT_EQ(refs, 5u);  // curves.svg, val_12.png, summary.json, metrics.jsonl, config.json
}

TEST(Curves, SeriesFromMetricsRowsAndAnEmptyPanel) {
  const std::vector<json> rows = {{{"step", 1}, {"split", "train"}, {"loss", 2.0}},
                                  {{"step", 2}, {"split", "train"}, {"loss", 1.0}},
                                  {{"step", 2}, {"split", "val"}, {"loss", 1.5}, {"miou", 0.25}},
                                  {{"step", 3}, {"split", "train"}, {"loss", NAN}}};
  const std::vector<CurveSeries> s = curve_series(rows, "miou");
  ASSERT_EQ(s.size(), 3u);
  EXPECT_EQ(s[0].name, "train loss");
  EXPECT_EQ(s[0].points, (std::vector<std::pair<double, double>>{{1, 2}, {2, 1}}));  // the NaN is left out
  EXPECT_EQ(s[1].name, "val loss");
  EXPECT_EQ(s[2].name, "val mIoU");
  const std::string svg = curves_svg(s, "a <run>");
  EXPECT_EQ(count_of(svg, "<polyline"), 3u);
  EXPECT_NE(svg.find("a &lt;run&gt;"), std::string::npos);
  const std::string empty = curves_svg({}, "x");
  EXPECT_EQ(count_of(empty, "no data yet"), 2u);
  EXPECT_EQ(count_of(empty, "<polyline"), 0u);
}

}  // namespace
}  // namespace convlab

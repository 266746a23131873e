// tests/test_compare.cpp: `convlab compare`. CompareQuick runs the shipped experiment with --quick (all five
// variants, every seed) into a temp folder and checks the report's structure, not a winner: every run
// trained with finite metrics, results.json keys, the markdown table rows and difference sentences, a
// self-contained report.html, and that a second invocation reuses the finished runs. CompareInput: bad
// experiment files are refused with one line before anything trains. CompareStats: the paired rule.
#include <gtest/gtest.h>

#include <unistd.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "core/error.h"
#include "tests/testing.h"
#include "models/compare/compare.h"
#include "data/files.h"

namespace convlab {
namespace {

using nlohmann::json;
namespace fs = std::filesystem;

fs::path temp_dir(const std::string& tag) {
  const fs::path d = fs::temp_directory_path() / ("convlab_compare_" + tag + "_" + std::to_string(::getpid()));
  fs::remove_all(d);
  fs::create_directories(d);
  return d;
}

std::string slurp(const fs::path& p) { return read_text_file(p.string()); }

size_t count(const std::string& text, const std::string& what) {
  size_t n = 0;
  for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

TEST(CompareQuick, ShippedExperimentTrainsEveryVariantAndWritesReports) {
  const fs::path out = temp_dir("quick");
  const std::string file = testing::source_path("configs/experiments/gridding_vs_hdc.json");
  const StudyResult r = compare_command({.experiment = file, .quick = true, .out = out.string(), .quiet = true});
  const json& res = r.json;
  for (const char* k : {"experiment", "description", "seeds", "budgets", "rule", "pairing", "variants", "pairs", "timing"})
    EXPECT_TRUE(res.contains(k)) << k;
  ASSERT_EQ(res["variants"].size(), 5u);
  const size_t seeds = res["seeds"].size();
  EXPECT_GE(seeds, 2u);
  EXPECT_EQ(res["timing"]["runs_trained"], int64_t(5 * seeds));

  const std::string md = slurp(out / "report.md"), html = slurp(out / "report.html");
  const json on_disk = json::parse(slurp(out / "results.json"));
  EXPECT_EQ(on_disk["variants"].size(), 5u);
  for (const json& v : res["variants"]) {
    const std::string name = v["name"];
    EXPECT_NEAR(v["parameters"].get<double>(), res["variants"][0]["parameters"].get<double>(),
                0.02 * res["variants"][0]["parameters"].get<double>()) << name;
    ASSERT_EQ(v["runs"].size(), seeds) << name;
    for (const json& run : v["runs"]) {
      EXPECT_TRUE(fs::exists(out / run["run_dir"].get<std::string>() / "summary.json")) << name;
      for (const json& b : res["budgets"]) {
        const json& m = run["at"][std::to_string(b.get<int64_t>())]["miou"];
        ASSERT_TRUE(m.is_number()) << name << " at " << b;
        EXPECT_TRUE(std::isfinite(m.get<double>()) && m.get<double>() >= 0 && m.get<double>() <= 100) << name;
      }
      EXPECT_FALSE(run["curve"].empty()) << name;
      EXPECT_FALSE(run["loss"].empty()) << name;
    }
    for (const char* p : {"coverage", "erf_initial", "erf_trained"})
      EXPECT_TRUE(fs::exists(out / v["pictures"][p].get<std::string>())) << name << " " << p;
    EXPECT_NE(md.find("| " + name + " | "), std::string::npos) << name;  // a table row
  }
  // Gridding's dilated stack leaves holes at its input; HDC's does not (exact coverage).
  EXPECT_GT(res["variants"][1]["coverage_stack"]["holes"].get<int64_t>(), 0);
  EXPECT_EQ(res["variants"][2]["coverage_stack"]["holes"].get<int64_t>(), 0);
  // One sentence per pair, budget and metric, each with a verdict.
  const size_t sentences = res["pairs"].size();
  EXPECT_EQ(sentences, 5 * res["budgets"].size() * 4);
  for (const json& p : res["pairs"]) {
    const std::string s = p["sentence"];
    EXPECT_NE(md.find(s), std::string::npos) << s;
    EXPECT_TRUE(s.find("seed-to-seed spread") != std::string::npos || s.find("no difference") != std::string::npos ||
                s.find("no values") != std::string::npos) << s;
  }
  EXPECT_NE(md.find("Rule: "), std::string::npos);
  // Self-contained HTML: inline pictures and curves, nothing fetched.
  EXPECT_EQ(html.find("src=\"http"), std::string::npos);
  EXPECT_EQ(html.find("href=\"http"), std::string::npos);
  EXPECT_GE(count(html, "data:image/png;base64,"), 15u);
  EXPECT_GE(count(html, "<svg"), 2u);
  EXPECT_EQ(count(html, "<table>"), 1 + res["budgets"].size());

  // A second invocation trains nothing and reports the same numbers.
  const StudyResult again = compare_command({.experiment = file, .quick = true, .out = out.string(), .quiet = true});
  EXPECT_EQ(again.json["timing"]["runs_trained"], 0);
  EXPECT_EQ(again.json["variants"][2]["summary"], res["variants"][2]["summary"]);
  fs::remove_all(out);
}

// ---- bad input: each refused with one line naming the problem, before any folder is written ----

struct BadCase {
  const char* what;
  std::string text;     // the experiment file
  const char* message;  // a fragment of the expected error
};

std::string variant(const std::string& name, const std::string& config, const std::string& sets = "") {
  return R"({"name": ")" + name + R"(", "config": ")" + config + R"(")" + (sets.empty() ? "" : R"(, "set": [)" + sets + "]") + "}";
}

std::string experiment(const std::string& variants, const std::string& extra = "") {
  return R"({"name": "bad", "budgets": [10, 20], )" + extra + R"("variants": [)" + variants + "]}";
}

TEST(CompareInput, BadExperimentFilesAreRefusedWithOneLine) {
  const fs::path dir = temp_dir("bad");
  const std::string hdc = testing::source_path("configs/hdc_seg.json"), grid = testing::source_path("configs/gridding_seg.json");
  const std::string two = variant("hdc", hdc) + ", " + variant("gridding", grid);
  const std::vector<BadCase> cases = {
      {"malformed JSON", R"({"name": "bad", "variants": [)", "not valid JSON"},
      {"missing config", experiment(variant("hdc", "no_such_config.json")), "no such file 'no_such_config.json'"},
      {"unknown key", experiment(two, R"("seed": [0, 1], )"), "experiment.seed: unknown key (did you mean 'seeds'?)"},
      {"misspelt variants", R"({"budgets": [10], "varients": []})", "experiment.varients: unknown key (did you mean 'variants'?)"},
      {"unknown variant key", experiment(R"({"name": "hdc", "config": ")" + hdc + R"(", "sets": []})"), "(did you mean 'set'?)"},
      {"no seeds", experiment(two, R"("seeds": [], )"), "experiment.seeds"},
      {"duplicate seed", experiment(two, R"("seeds": [1, 1], )"), "1 is listed twice"},
      {"duplicate variant", experiment(variant("hdc", hdc) + ", " + variant("hdc", grid)), "'hdc' is used by two variants"},
      {"zero budget", R"({"budgets": [0], "variants": [)" + two + "]}", "experiment.budgets[0]: expected a positive integer, got 0"},
      {"val_every", experiment(two, R"("val_every": 3, )"), "does not divide the budget 10"},
      {"unknown pair", experiment(two, R"("pairs": [["hdc", "griding"]], )"), "no variant named 'griding' (did you mean 'gridding'?)"},
      {"controlled key", experiment(variant("hdc", hdc, R"("train.steps=5")")), "train.steps is set by compare itself"},
      {"parameters", experiment(variant("hdc", hdc) + ", " + variant("wide", grid, R"("model.layers[0].out_channels=32")")),
       "parameter counts differ by"},
      {"different data", experiment(variant("hdc", hdc) + ", " + variant("small", grid, R"("data.image_size=32")")),
       "differ in data.image_size (64 vs 32)"},
  };
  for (const BadCase& c : cases) {
    const fs::path file = dir / "exp.json";
    std::ofstream(file) << c.text;
    const fs::path out = dir / "out";
    try {
      compare_command({.experiment = file.string(), .out = out.string(), .quiet = true});
      ADD_FAILURE() << c.what << ": accepted";
    } catch (const Error& e) {
      const std::string m = e.what();
      EXPECT_NE(m.find(c.message), std::string::npos) << c.what << ": " << m;
      EXPECT_EQ(m.find('\n'), std::string::npos) << c.what << ": " << m;
      EXPECT_EQ(m.rfind("compare " + file.string(), 0), 0u) << c.what << ": names the file: " << m;
    }
    EXPECT_FALSE(fs::exists(out)) << c.what << ": wrote " << out;
  }
  // --quick without a quick section.
  std::ofstream(dir / "exp.json") << experiment(two);
  EXPECT_THROW(load_experiment((dir / "exp.json").string(), true), Error);
  fs::remove_all(dir);
}

TEST(CompareInput, CliExitsTwoWithOneLine) {
  const fs::path dir = temp_dir("cli");
  std::ofstream(dir / "exp.json") << R"({"budgets": [0], "variants": []})";
  const std::string cmd = std::string(CONVLAB_BINARY) + " compare " + (dir / "exp.json").string() + " >" +
                          (dir / "out").string() + " 2>" + (dir / "err").string();
  const int status = std::system(cmd.c_str());
  EXPECT_EQ(WEXITSTATUS(status), 2);
  const std::string err = slurp(dir / "err");
  EXPECT_EQ(count(err, "\n"), 1u) << err;
  EXPECT_NE(err.find("experiment.budgets[0]"), std::string::npos) << err;
  EXPECT_TRUE(slurp(dir / "out").empty());
  fs::remove_all(dir);
}

TEST(CompareStats, PairedRuleIsTheNinetyFiveCentConfidenceInterval) {
  EXPECT_DOUBLE_EQ(t_critical_975(2), 4.303);
  EXPECT_NEAR(t_critical_975(1000), 1.962, 1e-3);
  // 1, 2, 3: mean 2, sd 1, half-width 4.303 / sqrt(3) = 2.484 > 2: within the spread although all positive.
  PairedStats s = paired_stats({1, 2, 3});
  EXPECT_DOUBLE_EQ(s.mean, 2);
  EXPECT_DOUBLE_EQ(s.sd, 1);
  EXPECT_NEAR(s.half_width, 2.4843, 1e-4);
  EXPECT_FALSE(s.exceeds);
  EXPECT_EQ(s.a_higher, 3);
  s = paired_stats({3, 4, 5});
  EXPECT_TRUE(s.exceeds);
  s = paired_stats({-4, -4.5, -3.5});
  EXPECT_TRUE(s.exceeds);
  EXPECT_EQ(s.b_higher, 3);
  s = paired_stats({2.0});  // one seed: no spread, never "exceeds"
  EXPECT_FALSE(s.exceeds);
  EXPECT_EQ(s.n, 1);
}

}  // namespace
}  // namespace convlab

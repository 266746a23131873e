// tests/test_compare.cpp: `convlab compare`. CompareQuick runs the shipped experiment with --quick (all five
// variants, every seed) into a temp folder and checks the report's structure, not a winner: every run
// trained with finite metrics, results.json keys, the markdown table rows and difference sentences, a
// self-contained report.html, the gridding-artefact shares and the convergence check, and that a second
// invocation reuses the finished runs. CompareExperiment: the budget presets of the shipped file and the
// last-fifth convergence rule. CompareInput: bad experiment files are refused with one line before anything
// trains. CompareStats: the paired rule.
#include <gtest/gtest.h>

#include <unistd.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <algorithm>
#include <fstream>

#include "core/error.h"
#include "tests/testing.h"
#include "models/compare/compare.h"
#include "models/compare/compare_runs.h"
#include "data/files.h"
#include "data/png.h"

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
  for (const char* k : {"experiment", "description", "seeds", "budgets", "rule", "pairing", "variants", "pairs", "timing",
                        "settings", "artefact_rates", "artefact_metric", "preset", "label"})
    EXPECT_TRUE(res.contains(k)) << k;
  // Both regimes: the shipped networks (3x3 stem) and the _img variants (1x1 stem: the stack starts at the image).
  const std::vector<std::string> names = {"plain",        "gridding", "hdc",          "rfmatched",
                                          "downup",       "gridding_img", "hdc_img", "rfmatched_img"};
  ASSERT_EQ(res["variants"].size(), names.size());
  const size_t seeds = res["seeds"].size();
  EXPECT_GE(seeds, 2u);
  EXPECT_EQ(res["timing"]["runs_trained"], int64_t(names.size() * seeds));
  // The quick report describes the quick settings, not the full study's.
  EXPECT_EQ(res["preset"], "quick");
  EXPECT_EQ(res["settings"]["image_size"], 32);
  EXPECT_EQ(res["settings"]["steps"], res["budgets"].back());
  EXPECT_EQ(res["settings"]["width"], 16);
  EXPECT_NE(res["description"].get<std::string>().find("Quick run"), std::string::npos);
  // Artefact rates: the dilations of the configs (2 from gridding and HDC, 3 from rfmatched, 5 from HDC).
  EXPECT_EQ(res["artefact_rates"], json({2, 3, 5}));

  const std::string md = slurp(out / "report.md"), html = slurp(out / "report.html");
  EXPECT_NE(md.find("Budget preset **quick**, smoke test"), std::string::npos);
  EXPECT_NE(md.find("32x32 images"), std::string::npos);
  EXPECT_EQ(md.find("64x64"), std::string::npos);  // nothing of the full study's settings
  const json on_disk = json::parse(slurp(out / "results.json"));
  EXPECT_EQ(on_disk["variants"].size(), names.size());
  for (size_t vi = 0; vi < names.size(); ++vi) {
    const json& v = res["variants"][vi];
    const std::string name = v["name"];
    EXPECT_EQ(name, names[vi]);
    EXPECT_NEAR(v["parameters"].get<double>(), res["variants"][0]["parameters"].get<double>(),
                0.03 * res["variants"][0]["parameters"].get<double>()) << name;
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
      // The artefact shares of every run: one per rate, in [0, 1], over every validation image.
      EXPECT_EQ(run["artefacts"]["images"], res["settings"]["val_size"]) << name;
      for (const char* kind : {"probs", "features"})
        for (const json& rate : res["artefact_rates"]) {
          const double sh = run["artefacts"][kind][std::to_string(rate.get<int64_t>())];
          EXPECT_TRUE(sh >= 0 && sh <= 1) << name << " " << kind << " r=" << rate << ": " << sh;
        }
    }
    // Every picture the report shows is in pictures/: report.md reads without the run folders.
    for (const char* p : {"coverage", "erf_initial", "erf_trained", "artefact", "predictions"}) {
      EXPECT_EQ(v["pictures"][p].get<std::string>().rfind("pictures/", 0), 0u) << name << " " << p;
      EXPECT_TRUE(fs::exists(out / v["pictures"][p].get<std::string>())) << name << " " << p;
    }
    EXPECT_NE(md.find("| " + name + " | "), std::string::npos) << name;  // a table row
    // The convergence check: per-seed gains over the last fifth and a verdict.
    const json& cv = v["convergence"];
    EXPECT_EQ(cv["gains"].size(), seeds) << name;
    EXPECT_EQ(cv["to_step"], res["budgets"].back());
    EXPECT_EQ(cv["from_step"], 30);  // the last validation at or before 80% of 40 steps (every 10)
    EXPECT_EQ(cv["converged"].get<bool>(), cv["gain_mean"].get<double>() < 0.5) << name;
    EXPECT_TRUE(v["artefacts"]["probs"]["2"]["mean"].is_number()) << name;
  }
  // Coverage maps share one scale: every picture has the same size (the largest window, one cell size).
  const PngImage first = read_png((out / res["variants"][0]["pictures"]["coverage"].get<std::string>()).string());
  for (const json& v : res["variants"]) {
    const PngImage img = read_png((out / v["pictures"]["coverage"].get<std::string>()).string());
    EXPECT_EQ(img.W, first.W) << v["name"];
    EXPECT_EQ(img.H, first.H) << v["name"];
  }
  // Gridding's dilated stack leaves holes at its input; HDC's does not (exact coverage). At the image, the 3x3
  // stem fills gridding's holes; with the 1x1 stem they reach the pixels.
  const auto variant = [&](const std::string& n) -> const json& {
    return res["variants"][size_t(std::find(names.begin(), names.end(), n) - names.begin())];
  };
  EXPECT_GT(variant("gridding")["coverage_stack"]["holes"].get<int64_t>(), 0);
  EXPECT_EQ(variant("gridding")["coverage_input"]["holes"].get<int64_t>(), 0);
  EXPECT_GT(variant("gridding_img")["coverage_input"]["holes"].get<int64_t>(), 0);
  EXPECT_EQ(variant("hdc")["coverage_stack"]["holes"].get<int64_t>(), 0);
  EXPECT_EQ(variant("hdc_img")["coverage_input"]["holes"].get<int64_t>(), 0);
  // One pair result per pair, budget and metric; the report shows them as one table, not as sentences.
  // (mIoU, large, small, thin at every budget; the artefact share at the last)
  EXPECT_EQ(res["pairs"].size(), 9 * (res["budgets"].size() * 4 + 1));
  size_t artefact_pairs = 0;
  for (const json& p : res["pairs"])
    if (p["metric"] == "artefact") {
      ++artefact_pairs;
      EXPECT_EQ(p["budget"], res["budgets"].back());
      EXPECT_EQ(p["rate"], 2);
      ASSERT_EQ(p["diffs"].size(), seeds);
      const auto v = [&](const std::string& n, size_t s) {
        return 100 * variant(n)["runs"][s]["artefacts"]["probs"]["2"].get<double>();
      };
      EXPECT_NEAR(p["diffs"][0].get<double>(), v(p["a"], 0) - v(p["b"], 0), 1e-9);
    }
  EXPECT_EQ(artefact_pairs, 9u);
  EXPECT_NE(md.find("| grid energy r=2 (%) |"), std::string::npos);
  for (const json& p : res["pairs"]) {
    const std::string row = "| " + p["a"].get<std::string>() + " - " + p["b"].get<std::string>() + " | " +
                            std::to_string(p["budget"].get<int64_t>()) + " | ";
    EXPECT_NE(md.find(row), std::string::npos) << row;
    EXPECT_EQ(md.find(p["sentence"].get<std::string>()), std::string::npos);
  }
  EXPECT_NE(md.find("| a - b | budget | metric | mean | 95% CI | a higher on | verdict |"), std::string::npos);
  EXPECT_NE(md.find("Rule: "), std::string::npos);
  EXPECT_NE(md.find("Convergence (mean validation mIoU gain from step 30 to step 40"), std::string::npos);
  EXPECT_NE(md.find("## Gridding artefacts"), std::string::npos);
  EXPECT_EQ(md.find("](runs/"), std::string::npos);
  // The Time section sums what every run cost, whichever invocation trained it.
  double runs_cpu = 0;
  for (const json& v : res["variants"])
    for (const json& run : v["runs"]) runs_cpu += run["timing"]["cpu_s"].get<double>();
  EXPECT_EQ(res["timing"]["runs_timed"], int64_t(names.size() * seeds));
  EXPECT_NEAR(res["timing"]["runs_cpu_s"].get<double>(), runs_cpu, 1e-9 * runs_cpu);
  EXPECT_NE(md.find("All " + std::to_string(names.size() * seeds) + " runs: "), std::string::npos);
  // Self-contained HTML: inline pictures and curves, nothing fetched; each picture kind is one row of variants.
  EXPECT_EQ(html.find("src=\"http"), std::string::npos);
  EXPECT_EQ(html.find("href=\"http"), std::string::npos);
  EXPECT_GE(count(html, "data:image/png;base64,"), 5 * names.size());
  EXPECT_EQ(count(html, "<div class=\"row\">"), 5u);
  EXPECT_GE(count(html, "<svg"), 2u);
  // main, artefacts, one per budget, paired differences
  EXPECT_EQ(count(html, "<table>"), 3 + res["budgets"].size());
  // Rows are coloured only when the difference exceeds the spread.
  size_t exceeding = 0;
  for (const json& p : res["pairs"])  // shown: mIoU at every budget, the object sizes at the last
    if (p["metric"] == "miou" || p["budget"] == res["budgets"].back()) exceeding += p["exceeds"].is_boolean() && p["exceeds"].get<bool>();
  EXPECT_EQ(count(html, "<tr class=\"up\">") + count(html, "<tr class=\"down\">"), exceeding);

  // The artefact shares are bit-reproducible: measured again from the run folder, the same doubles.
  {
    const json& run = variant("gridding_img")["runs"][1];
    const fs::path d = out / run["run_dir"].get<std::string>();
    const json again = run_artefacts(json::parse(slurp(d / "config.json")), (d / "model.safetensors").string(), {2, 3, 5}, "");
    EXPECT_EQ(again["probs"], run["artefacts"]["probs"]);
    EXPECT_EQ(again["features"], run["artefacts"]["features"]);
    EXPECT_EQ(again["worst"]["image"], run["artefacts"]["worst"]["image"]);
  }
  // A second invocation trains nothing and reports the same numbers.
  const StudyResult again = compare_command({.experiment = file, .quick = true, .out = out.string(), .quiet = true});
  EXPECT_EQ(again.json["timing"]["runs_trained"], 0);
  EXPECT_EQ(again.json["timing"]["runs_cpu_s"], res["timing"]["runs_cpu_s"]);  // reused runs keep their cost
  EXPECT_EQ(again.json["variants"][2]["summary"], res["variants"][2]["summary"]);
  EXPECT_EQ(again.json["variants"][6]["artefacts"], res["variants"][6]["artefacts"]);
  fs::remove_all(out);
}

TEST(CompareExperiment, BudgetPresetsSelectTheirSections) {
  const std::string file = testing::source_path("configs/experiments/gridding_vs_hdc.json");
  // full: the converged, powered study at the default run's width.
  const Experiment full = load_experiment(file, "full");
  EXPECT_EQ(full.preset, "full");
  EXPECT_GE(full.seeds.size(), 5u);
  EXPECT_EQ(full.variants.size(), 8u);
  EXPECT_EQ(full.budgets.back() - full.budgets.back() / 5, 2560);
  EXPECT_EQ(2560 % full.val_every, 0);  // a validation falls where the last fifth starts
  for (const CompareVariant& v : full.variants)
    for (const std::string& s : v.sets) EXPECT_EQ(s.find("out_channels"), std::string::npos) << v.name << ": width 24 as shipped";
  // short: the learning-speed study, narrowed, a subset of the variants and only the pairs among them.
  const Experiment shrt = load_experiment(file, "short");
  EXPECT_EQ(shrt.preset, "short");
  EXPECT_NE(shrt.label.find("learning-speed"), std::string::npos);
  EXPECT_EQ(shrt.variants.size(), 6u);
  EXPECT_EQ(shrt.budgets, (std::vector<int64_t>{300, 600}));
  for (const CompareVariant& v : shrt.variants) {
    EXPECT_NE(std::find(v.sets.begin(), v.sets.end(), "model.layers[18].out_channels=16"), v.sets.end()) << v.name;
    for (const auto& [a, b] : shrt.pairs) EXPECT_TRUE(a != "plain" && b != "plain" && a != "downup" && b != "downup");
  }
  EXPECT_EQ(shrt.pairs.size(), 7u);
  // The _img variants keep their own sets before the preset's.
  for (const CompareVariant& v : shrt.variants)
    if (v.name == "gridding_img") {
      EXPECT_EQ(v.sets.front(), "model.layers[0].kernel_size=1");
    }
  // quick: downup gets its own narrowing (its layer indices differ).
  const Experiment quick = load_experiment(file, "quick");
  EXPECT_TRUE(quick.quick);
  for (const CompareVariant& v : quick.variants)
    if (v.name == "downup") {
      EXPECT_NE(std::find(v.sets.begin(), v.sets.end(), "model.layers[20].out_channels=16"), v.sets.end());
    }
  EXPECT_THROW(load_experiment(file, "long"), Error);
}

TEST(CompareExperiment, FullPresetPassesEveryCheckBeforeTraining) {
  // The converged study is never trained in the suite; --estimate resolves all nine configs, checks the matched
  // sections and parameter counts (the 1x1 stem is within param_tolerance) and times a few steps.
  const fs::path out = temp_dir("full_estimate");
  const std::string file = testing::source_path("configs/experiments/gridding_vs_hdc.json");
  const StudyResult r = compare_command({.experiment = file, .out = out.string(), .quiet = true, .estimate_only = true});
  EXPECT_EQ(r.json["preset"], "full");
  EXPECT_EQ(r.json["settings"]["width"], 24);
  EXPECT_EQ(r.json["settings"]["image_size"], 64);
  EXPECT_EQ(r.json["settings"]["seeds"].size(), 5u);
  EXPECT_EQ(r.json["estimate"]["runs_to_train"], 40);
  EXPECT_EQ(r.json["estimate"]["step_seconds"].size(), 8u);
  EXPECT_FALSE(fs::exists(out / "results.json"));
  fs::remove_all(out);
}

TEST(CompareExperiment, ConvergenceIsTheGainOverTheLastFifth) {
  // Two seeds validated every 10 steps to 100: the last fifth starts at step 80.
  json runs = json::array();
  for (const double end : {50.3, 50.5}) {
    json curve = json::array();
    for (int64_t s = 10; s <= 100; s += 10) curve.push_back({s, s < 80 ? 40.0 : s == 80 ? 50.0 : end, 1.0});
    runs.push_back({{"curve", curve}});
  }
  json c = convergence(runs, 100, 0.5);
  EXPECT_EQ(c["from_step"], 80);
  EXPECT_NEAR(c["gain_mean"].get<double>(), 0.4, 1e-9);
  EXPECT_TRUE(c["converged"].get<bool>());
  c = convergence(runs, 100, 0.3);
  EXPECT_FALSE(c["converged"].get<bool>());
  // Validation every 30 steps: the last one at or before step 80 is step 60.
  json sparse = json::array({{{"curve", json::array({json::array({30, 10.0, 1.0}), json::array({60, 20.0, 1.0}),
                                                     json::array({90, 25.0, 1.0}), json::array({100, 26.0, 1.0})})}}});
  c = convergence(sparse, 100, 0.5);
  EXPECT_EQ(c["from_step"], 60);
  EXPECT_NEAR(c["gain_mean"].get<double>(), 6.0, 1e-9);
  EXPECT_FALSE(c["converged"].get<bool>());
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
      {"unknown preset variant", experiment(two, R"("short": {"variants": ["hdc", "gridin"]}, )"), "experiment.short.variants[1]: no variant named 'gridin'"},
      {"unknown variant_set name", experiment(two, R"("quick": {"variant_set": {"hcd": ["seed=1"]}}, )"), "did you mean 'hdc'?"},
      {"preset controlled key", experiment(two, R"("short": {"variant_set": {"*": ["train.steps=5"]}}, )"), "train.steps is set by compare itself"},
      {"unknown preset key", experiment(two, R"("short": {"seed": [1]}, )"), "experiment.short.seed: unknown key"},
      {"bad artefact rate", experiment(two, R"("artefact_rates": [1], )"), "experiment.artefact_rates"},
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
  // --quick or --budget short without its section.
  std::ofstream(dir / "exp.json") << experiment(two);
  EXPECT_THROW(load_experiment((dir / "exp.json").string(), "quick"), Error);
  EXPECT_THROW(load_experiment((dir / "exp.json").string(), "short"), Error);
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

TEST(CompareInput, BudgetFlagsAndEstimate) {
  const fs::path dir = temp_dir("flags");
  const std::string file = testing::source_path("configs/experiments/gridding_vs_hdc.json");
  auto run = [&](const std::string& args) {
    const std::string cmd = std::string(CONVLAB_BINARY) + " compare " + file + " --out " + (dir / "out").string() + " " + args +
                            " >" + (dir / "stdout").string() + " 2>" + (dir / "stderr").string();
    return WEXITSTATUS(std::system(cmd.c_str()));
  };
  EXPECT_EQ(run("--quick --budget short"), 2);
  EXPECT_NE(slurp(dir / "stderr").find("--quick and --budget short exclude each other"), std::string::npos) << slurp(dir / "stderr");
  EXPECT_EQ(count(slurp(dir / "stderr"), "\n"), 1u);
  EXPECT_EQ(run("--budget long"), 2);
  EXPECT_NE(slurp(dir / "stderr").find("--budget"), std::string::npos) << slurp(dir / "stderr");
  // --estimate times a few steps of every variant of the preset and trains nothing.
  EXPECT_EQ(run("--quick --estimate -q"), 0) << slurp(dir / "stderr");
  const std::string out = slurp(dir / "stdout");
  EXPECT_NE(out.find("estimate for gridding_vs_hdc (quick): 16 of 16 runs of 40 steps to train"), std::string::npos) << out;
  for (const char* v : {"plain", "gridding_img", "downup"}) EXPECT_NE(out.find(std::string("  ") + v + ": "), std::string::npos) << v;
  EXPECT_FALSE(fs::exists(dir / "out" / "runs" / "plain_s0" / "summary.json"));
  EXPECT_FALSE(fs::exists(dir / "out" / "results.json"));
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

// A distributed compare deals its runs out so that the processes finish close together: in the given (seed-major)
// order, each run to the process with the least work so far.
TEST(CompareRuns, DealGivesEachRunToTheLeastLoadedProcess) {
  using compare_detail::deal_runs;
  EXPECT_EQ(deal_runs({1, 1, 1, 1, 1}, 2), (std::vector<int64_t>{0, 1, 0, 1, 0}));  // equal costs: round-robin
  EXPECT_EQ(deal_runs({1, 1, 1}, 1), (std::vector<int64_t>{0, 0, 0}));
  // A half-trained run first and a cheap variant (the study's downup) among full ones: round-robin would leave one
  // process 4 units behind the other; the deal keeps them within one run.
  const std::vector<double> cost = {0.5, 1, 1, 0.5, 1, 1, 0.5, 1, 1, 0.5};
  const std::vector<int64_t> owner = deal_runs(cost, 2);
  double load[2] = {0, 0};
  for (size_t k = 0; k < cost.size(); ++k) load[owner[k]] += cost[k];
  EXPECT_LE(std::abs(load[0] - load[1]), 1.0);
  EXPECT_EQ(owner[0], 0);
  EXPECT_EQ(owner[1], 1);
  EXPECT_EQ(owner[2], 0);  // process 0 had 0.5, process 1 had 1
  EXPECT_EQ(deal_runs({}, 3).size(), 0u);
  EXPECT_THROW(deal_runs({1}, 0), Error);
}

// An interrupted run's time is kept (compare_timing.json, "partial") and the invocation that resumes it adds its
// own: the report's time is the run's whole cost, and its parts are counted.
TEST(CompareRuns, ResumedRunTimeIsTheSumOfItsParts) {
  const fs::path dir = temp_dir("parts");
  const std::string hdc = testing::source_path("configs/hdc_seg.json");
  const fs::path file = dir / "exp.json";
  std::ofstream(file) << R"({"name": "parts", "budgets": [20], "val_every": 10, "seeds": [0], "set": ["data.image_size=32",
      "data.val_size=16", "train.batch_size=4", "model.layers[0].out_channels=8", "model.layers[3].out_channels=8",
      "model.layers[6].out_channels=8", "model.layers[9].out_channels=8", "model.layers[12].out_channels=8",
      "model.layers[15].out_channels=8"], "variants": [)" + variant("hdc", hdc) + "]}";
  const fs::path out = dir / "out", timing = out / "runs" / "hdc_s0" / "compare_timing.json";
  int polls = 0;
  try {
    compare_command({.experiment = file.string(), .out = out.string(), .quiet = true, .stop_requested = [&] { return ++polls == 13; }});
    ADD_FAILURE() << "not interrupted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("interrupted at step 13"), std::string::npos) << e.what();
  }
  const json part = json::parse(slurp(timing));
  EXPECT_TRUE(part["partial"].get<bool>());
  EXPECT_EQ(part["parts"], 1);
  const double cpu1 = part["cpu_s"];
  EXPECT_GT(cpu1, 0);
  const StudyResult r = compare_command({.experiment = file.string(), .out = out.string(), .quiet = true});
  const json& t = r.json["variants"][0]["runs"][0]["timing"];
  EXPECT_TRUE(t["resumed"].get<bool>());
  EXPECT_EQ(t["parts"], 2);
  EXPECT_TRUE(t["whole"].get<bool>());
  EXPECT_GT(t["cpu_s"].get<double>(), cpu1);
  EXPECT_FALSE(t.contains("partial"));
  EXPECT_EQ(r.json["timing"]["runs_at_variant_mean"], 0);
  EXPECT_DOUBLE_EQ(r.json["timing"]["runs_cpu_s"].get<double>(), t["cpu_s"].get<double>());
  fs::remove_all(dir);
}

}  // namespace
}  // namespace convlab

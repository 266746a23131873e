// tests/test_cli.cpp: the convlab executable as a user runs it: exit codes, one-line errors on stderr, nothing
// on stdout for refused cases, -o written atomically, --stats and --repeat.
#include <gtest/gtest.h>

#include <unistd.h>

#include <algorithm>
#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "tests/testing.h"

namespace convlab {
namespace {

namespace fs = std::filesystem;

struct CliRun {
  int code;
  std::string out, err;
};

CliRun run(const std::string& args, const std::string& stdin_text = "") {
  const fs::path dir = fs::temp_directory_path() / ("convlab_cli_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  const std::string o = (dir / "out").string(), e = (dir / "err").string(), i = (dir / "in").string();
  std::ofstream(i) << stdin_text;
  const std::string cmd = std::string(CONVLAB_BINARY) + " " + args + " <" + i + " >" + o + " 2>" + e;
  const int status = std::system(cmd.c_str());
  auto slurp = [](const std::string& p) {
    std::ifstream f(p);
    return std::string(std::istreambuf_iterator<char>(f), {});
  };
  return {WEXITSTATUS(status), slurp(o), slurp(e)};
}

std::string write_temp(const std::string& name, const std::string& text) {
  const fs::path p = fs::temp_directory_path() / ("convlab_cli_" + std::to_string(::getpid()) + "_" + name);
  std::ofstream(p) << text;
  return p.string();
}

const char* kCase = R"({"op": "conv2d", "padding": 1, "tensors": {
  "input": {"shape": [1, 2, 3, 3], "random": 1}, "weight": {"shape": [4, 2, 3, 3], "random": 2},
  "bias": {"shape": [4], "data": [0.5, -1, 2, 0]}}})";

TEST(Cli, OpPrintsOneJsonResult) {
  const CliRun r = run("op " + write_temp("ok.json", kCase));
  ASSERT_EQ(r.code, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["op"], "conv2d");
  EXPECT_EQ(j["output"]["shape"], nlohmann::json({1, 4, 3, 3}));
  for (const char* g : {"input", "weight", "bias"}) EXPECT_TRUE(j["grads"].contains(g)) << g;
  EXPECT_EQ(j["grads"]["bias"]["data"], nlohmann::json({9.0, 9.0, 9.0, 9.0}));  // grad_output defaults to ones
  EXPECT_FALSE(j.contains("timing"));
}

// The program's options (--threads) before or after any subcommand, and every command's --json before it too.
TEST(Cli, GlobalFlagsBeforeOrAfterTheSubcommand) {
  const std::string c = write_temp("flags.json", kCase);
  const std::string want = run("op " + c).out;
  ASSERT_FALSE(want.empty());
  for (const std::string& args : std::vector<std::string>{"--threads 1 op " + c, "op " + c + " --threads 1", "op --threads 1 " + c,
                                  "--json op " + c, "op " + c + " --json"}) {
    const CliRun r = run(args);
    EXPECT_EQ(r.code, 0) << args << ": " << r.err;
    EXPECT_EQ(r.out, want) << args;
  }
  const std::string rf = run("rf --kernel 3 --dilations 1,2 --json").out;
  ASSERT_FALSE(rf.empty());
  for (const std::string& args : std::vector<std::string>{"--json rf --kernel 3 --dilations 1,2", "rf --kernel 3 --dilations 1,2 --threads 1 --json",
                                  "--threads 1 --json rf --kernel 3 --dilations 1,2"}) {
    const CliRun r = run(args);
    EXPECT_EQ(r.code, 0) << args << ": " << r.err;
    EXPECT_EQ(r.out, rf) << args;
  }
  EXPECT_EQ(run("rf --kernel 3 --dilations 1,2 --threads 0x").code, 2);
}

TEST(Cli, StatsRepeatAndOutputFile) {
  const std::string out = write_temp("result.json", "");
  const CliRun r = run("op " + write_temp("ok2.json", kCase) + " --stats --repeat 3 -o " + out);
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_TRUE(r.out.empty());
  std::ifstream f(out);
  const auto j = nlohmann::json::parse(f);
  for (const char* k : {"shape", "sum", "abs_sum", "min", "max"}) EXPECT_TRUE(j["output"].contains(k)) << k;
  EXPECT_FALSE(j["output"].contains("data"));
  EXPECT_EQ(j["timing"]["repeat"], 3);
  EXPECT_GT(j["timing"]["forward_ms"].get<double>(), 0.0);
}

TEST(Cli, UserErrorsExitTwoWithOneLine) {
  const std::vector<std::pair<std::string, std::string>> bad = {
      {"{\"op\": \"conv2d\", ", "not valid JSON"},
      {R"({"op": "conv3d", "tensors": {}})", "unknown op 'conv3d'"},
      {R"({"op": "conv2d", "output_padding": 1, "tensors": {}})", "unknown field 'output_padding'"},
      {R"({"op": "conv2d", "tensors": {"input": {"shape": [1,1,3,3], "random": 1}}})", "missing tensor 'weight'"},
      {R"({"op": "conv2d", "tensors": {"input": {"shape": [1,1,2,2], "data": [1,2,3]}, "weight": {"shape": [1,1,1,1], "data": [1]}}})",
       "needs 4 values, got 3"},
      {R"({"op": "conv2d", "tensors": {"input": {"shape": [1,1,1,2], "data": [1,"x"]}, "weight": {"shape": [1,1,1,1], "data": [1]}}})",
       "expected a number"},
      {R"({"op": "conv2d", "stride": 0, "tensors": {"input": {"shape": [1,1,3,3], "random": 1}, "weight": {"shape": [1,1,1,1], "random": 1}}})",
       "stride must be >= 1"},
      {R"({"op": "conv2d", "tensors": {"input": {"shape": [1,1,3,3], "random": 1}, "weight": {"shape": [1,1,1,1], "random": 1},
          "grad_output": {"shape": [1,1,2,2], "random": 1}}})", "grad_output [1,1,2,2] must match the output [1,1,3,3]"},
  };
  for (const auto& [text, fragment] : bad) {
    const CliRun r = run("op " + write_temp("bad.json", text));
    EXPECT_EQ(r.code, 2) << text;
    EXPECT_TRUE(r.out.empty()) << text;
    EXPECT_NE(r.err.find(fragment), std::string::npos) << "stderr: " << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  }
  EXPECT_EQ(run("op /nonexistent/case.json").code, 2);
  EXPECT_EQ(run("frobnicate").code, 2);
  EXPECT_EQ(run("op").code, 2);
}

TEST(Cli, RefusedCaseLeavesNoOutputFile) {
  const std::string out = (fs::temp_directory_path() / "convlab_cli_never_written.json").string();
  fs::remove(out);
  const CliRun r = run("op " + write_temp("bad2.json", R"({"op": "conv2d"})") + " -o " + out);
  EXPECT_EQ(r.code, 2);
  EXPECT_FALSE(fs::exists(out));
}

}  // namespace
}  // namespace convlab

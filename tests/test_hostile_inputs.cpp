// tests/test_hostile_inputs.cpp: inputs written to hurt (sizes that overflow, nesting that recurses, numbers
// out of range, paths that cannot be written), each of which must be refused with exit code 2, one line on
// stderr starting "convlab: " and nothing on stdout; never a crash, a hang or an "internal error".
// The cases are the classes of issue 11 (memory safety); the sanitizer build runs them too.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "tests/testing.h"

namespace convlab {
namespace {

using testing::run_cli;
using testing::source_path;
using testing::temp_dir;
using testing::temp_file;

struct Hostile {
  std::string name, args, expect;  // `expect`: a fragment the one-line message must hold
};

void expect_refused(const Hostile& h) {
  const testing::CliRun r = run_cli(h.args);
  EXPECT_EQ(r.code, 2) << h.name << ": " << h.args << "\nstderr: " << r.err.substr(0, 400);
  EXPECT_TRUE(r.out.empty()) << h.name << ": stdout: " << r.out.substr(0, 200);
  EXPECT_EQ(r.err.rfind("convlab: ", 0), 0u) << h.name << ": " << r.err.substr(0, 200);
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << h.name << ": " << r.err.substr(0, 400);
  EXPECT_EQ(r.err.find("internal error"), std::string::npos) << h.name << ": " << r.err;
  EXPECT_NE(r.err.find(h.expect), std::string::npos) << h.name << ": wanted '" << h.expect << "' in " << r.err;
}

std::string nested(char open, char close, int depth, const std::string& inner = "1") {
  return std::string(depth, open) + inner + std::string(depth, close);
}

std::string seg() { return source_path("configs/hdc_seg.json"); }
std::string train(const std::string& extra) {
  return "train " + seg() + " -q --runs " + temp_dir("hostile_runs") + " " + extra;
}

TEST(HostileInputs, ConfigSizesAreBoundedBeforeAnyAllocation) {
  const std::vector<Hostile> cases = {
      {"out_channels 2^62", train("--set 'model.layers[0].out_channels=4611686018427387904'"),
       "model.layers[0].out_channels"},
      {"out_channels 2^29 (weight over the element limit)", train("--set 'model.layers[0].out_channels=536870912'"),
       "model.layers[0]"},
      {"kernel 2^40", train("--set 'model.layers[0].kernel_size=1099511627776'"), "kernel_size"},
      {"repeat 1e9", train("--set 'model.layers[1].repeat=1000000000'"), "repeat"},
      {"max_objects 2^62", train("--set data.max_objects=4611686018427387904"), "data.max_objects"},
      {"val_size 1e8", train("--set data.val_size=100000000"), "data.val_size"},
      {"image_size 2^40", train("--set data.image_size=1099511627776"), "data.image_size"},
      {"batch 2^40", train("--set train.batch_size=1099511627776"), "train.batch_size"},
      {"seed past int64", train("--set seed=18446744073709551615"), "seed"},
      {"number 1e400", "train " + temp_file("e400.json", R"({"extends": ")" + seg() + R"(", "seed": 1e400})"),
       "not valid JSON"},
  };
  for (const Hostile& h : cases) expect_refused(h);
}

TEST(HostileInputs, DeepNestingIsRefusedNotRecursedInto) {
  const std::string deep = nested('[', ']', 100000);
  const std::vector<Hostile> cases = {
      {"deep config", "train " + temp_file("deep.json", "{\"a\": " + deep + "}"), "nested deeper"},
      {"deep op case", "op " + temp_file("deep.case.json", "{\"op\": \"conv2d\", \"padding\": " + deep + "}"),
       "nested deeper"},
      {"deep --set value (taken as text)", train("--set 'seed=" + nested('[', ']', 20000) + "'"), "config.seed"},
      {"deep experiment", "compare " + temp_file("deep.exp.json", nested('{', '}', 1, "\"a\": " + deep)),
       "nested deeper"},
  };
  for (const Hostile& h : cases) expect_refused(h);
  // A safetensors header nested 10^5 deep, as `eval` reads it.
  std::string header = "{\"a\": " + deep + "}";
  header.append((8 - header.size() % 8) % 8, ' ');
  std::string file(8, '\0');
  const uint64_t n = header.size();
  std::memcpy(file.data(), &n, 8);
  file += header;
  expect_refused({"deep safetensors header", "eval " + seg() + " --checkpoint " + temp_file("deep.safetensors", file),
                  "nested deeper"});
}

TEST(HostileInputs, OpCaseSizesAreCheckedOnShapesFirst) {
  const std::string big = R"({"op": "conv2d", "tensors": {"input": {"shape": [65536, 65536, 2], "random": 1},
    "weight": {"shape": [1, 1, 1, 1], "random": 2}}})";
  const std::string wrap = R"({"op": "conv2d", "tensors": {"input": {"shape": [2147483648, 2147483648, 2, 2],
    "random": 1}, "weight": {"shape": [1, 1, 1, 1], "random": 2}}})";
  const std::string stride = R"({"op": "conv_transpose2d", "stride": 4611686018427387904, "tensors": {
    "input": {"shape": [1, 1, 2, 2], "random": 1}, "weight": {"shape": [1, 1, 3, 3], "random": 2}}})";
  const std::string pool = R"({"op": "avg_pool2d", "kernel_size": 4611686018427387904, "tensors": {
    "input": {"shape": [1, 1, 4, 4], "random": 1}}})";
  const std::string up = R"({"op": "upsample", "size": [1073741824, 1073741824], "tensors": {
    "input": {"shape": [1, 1, 2, 2], "random": 1}}})";
  const std::string padding = R"({"op": "conv2d", "padding": 4611686018427387904, "tensors": {
    "input": {"shape": [1, 1, 2, 2], "random": 1}, "weight": {"shape": [1, 1, 3, 3], "random": 2}}})";
  const std::vector<Hostile> cases = {
      {"2^32 elements", "op " + temp_file("big.case.json", big), "elements"},
      {"numel that wraps", "op " + temp_file("wrap.case.json", wrap), "elements"},
      {"transposed stride 2^62", "op " + temp_file("stride.case.json", stride), "stride"},
      {"avg_pool kernel 2^62", "op " + temp_file("pool.case.json", pool), "kernel_size"},
      {"upsample to 2^60 pixels", "op " + temp_file("up.case.json", up), "elements"},
      {"padding 2^62", "op " + temp_file("padding.case.json", padding), "padding"},
  };
  for (const Hostile& h : cases) expect_refused(h);
}

TEST(HostileInputs, FlagsAndPathsAreUserErrors) {
  const std::string file = temp_file("plain_file", "x");
  const std::vector<Hostile> cases = {
      {"--threads 2^40", "--threads 1099511627776 rf --dilations 1,2,5", "--threads"},
      {"rf dilation 2^62", "rf --dilations 1,4611686018427387904", "dilation"},
      {"rf kernel 2^40", "rf --kernel 1099511627776 --dilations 1", "kernel"},
      {"--set index past size_t", train("--set 'model.layers[99999999999999999999999].dilation=2'"),
       "is not a list index"},
      {"--set invalid UTF-8", train("--set \"$(printf 'name=\\377\\376')\""), "UTF-8"},
      {"--runs under a file", "train " + seg() + " -q --runs " + file + "/sub", file},
      {"config is a folder", "train " + temp_dir("a_folder"), "not a regular file"},
      {"gradcheck --batch 2^40", "gradcheck " + seg() + " --batch 1099511627776", "batch"},
      {"extends cycle", "train " + temp_file("cycle.json", R"({"extends": "cycle.json"})"), "cycle"},
  };
  for (const Hostile& h : cases) expect_refused(h);
}

TEST(HostileInputs, UnknownSimdTargetIsRefused) {
  for (const char* value : {"bogus", "sse2", ""}) {
    const testing::CliRun r = run_cli("--version", "", std::string("CONVLAB_ISA=") + value);
    EXPECT_EQ(r.code, 2) << value << ": " << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
    EXPECT_NE(r.err.find(std::string("CONVLAB_ISA=") + value + ":"), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("avx2"), std::string::npos) << "names the targets available: " << r.err;
  }
  for (const char* isa : {"avx2", "scalar"}) {
    const testing::CliRun ok = run_cli("--version", "", std::string("CONVLAB_ISA=") + isa);
    EXPECT_EQ(ok.code, 0) << ok.err;
    EXPECT_NE(ok.out.find(std::string("SIMD target: ") + isa + " "), std::string::npos) << ok.out;
    EXPECT_NE(ok.out.find("scalar"), std::string::npos) << "lists the scalar target: " << ok.out;
  }
}

TEST(HostileInputs, LongExtendsChainIsRefused) {
  const std::string dir = temp_dir("extends_chain");
  for (int i = 0; i < 40; ++i) {
    std::ofstream f(dir + "/c" + std::to_string(i) + ".json");
    if (i == 39) f << "{\"extends\": \"" << seg() << "\"}";
    else f << "{\"extends\": \"c" << i + 1 << ".json\"}";
  }
  expect_refused({"extends chain of 40", "train " + dir + "/c0.json", "extends"});
}

// Every transposed-conv network reads its weight in output_shape(): this once read through a dangling
// reference (a use-after-free that ASan reports; a Release build worked by luck). One step must train.
TEST(HostileInputs, TransposedConvConfigTrainsOneStep) {
  const testing::CliRun r =
      run_cli("train " + source_path("configs/downup_seg.json") + " -q --runs " + temp_dir("downup") +
              " --set train.steps=1 --set data.val_size=2 --set train.batch_size=2");
  EXPECT_EQ(r.code, 0) << r.err;
}

}  // namespace
}  // namespace convlab

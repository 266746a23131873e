// tests/test_golden.cpp: every case under tests/golden/ (written by tools/gen_golden.py from PyTorch 1.13 /
// torchvision 0.14) run in-process through the same code as `convlab op`. Valid cases must match within
// 1e-4 * (1 + max|ref|) per tensor (the oracle's tolerance); malformed ones must throw convlab::Error.
#include <gtest/gtest.h>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "tests/testing.h"
#include "data/files.h"
#include "models/op_case/op_case.h"

namespace convlab {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

std::vector<std::string> golden_cases() {
  std::vector<std::string> stems;
  const fs::path dir = testing::source_path("tests/golden");
  if (!fs::exists(dir)) return stems;
  for (const auto& e : fs::directory_iterator(dir)) {
    const std::string name = e.path().filename().string();
    const std::string suffix = ".case.json";
    if (name.size() > suffix.size() && name.ends_with(suffix))
      stems.push_back(name.substr(0, name.size() - suffix.size()));
  }
  std::sort(stems.begin(), stems.end());
  return stems;
}

class Golden : public ::testing::TestWithParam<std::string> {};

void check_tensor(const json& got, const json& ref, const std::string& label) {
  ASSERT_EQ(got["shape"], ref["shape"]) << label << ": shape";
  if (!ref.contains("data")) return;
  const auto& g = got["data"];
  const auto& r = ref["data"];
  ASSERT_EQ(g.size(), r.size()) << label;
  double scale = 0, err = 0;
  size_t at = 0;
  for (size_t i = 0; i < r.size(); ++i) scale = std::max(scale, std::fabs(r[i].get<double>()));
  for (size_t i = 0; i < r.size(); ++i) {
    const double e = std::fabs(g[i].get<double>() - r[i].get<double>());
    if (e > err) err = e, at = i;
  }
  EXPECT_LE(err, 1e-4 * (1 + scale)) << label << ": max error " << err << " at [" << at << "] got "
                                     << g[at] << " want " << r[at];
}

TEST_P(Golden, MatchesPyTorch) {
  const std::string stem = testing::source_path("tests/golden/" + GetParam());
  const std::string text = read_text_file(stem + ".case.json");
  const json exp = json::parse(read_text_file(stem + ".expected.json"));
  if (exp.value("error", false)) {
    EXPECT_THROW(
        {
          const OpCall call = parse_case(text);
          run_case(call);
        },
        Error)
        << GetParam() << " should be refused: " << exp.value("why", "");
    return;
  }
  const OpCall call = parse_case(text);
  const json res = result_json(call, run_case(call), false);
  check_tensor(res["output"], exp["output"], GetParam() + " output");
  for (const auto& [name, ref] : exp["grads"].items()) {
    ASSERT_TRUE(res["grads"].contains(name)) << GetParam() << ": grads." << name << " missing";
    check_tensor(res["grads"][name], ref, GetParam() + " grads." + name);
  }
}

INSTANTIATE_TEST_SUITE_P(Cases, Golden, ::testing::ValuesIn(golden_cases()),
                         [](const ::testing::TestParamInfo<std::string>& i) {
                           std::string s = i.param;
                           for (char& c : s)
                             if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
                           return s;
                         });
GTEST_ALLOW_UNINSTANTIATED_PARAMETERIZED_TEST(Golden);

TEST(Golden, FilesArePresent) { EXPECT_GE(golden_cases().size(), 40u) << "tests/golden/ is missing cases"; }

}  // namespace
}  // namespace convlab

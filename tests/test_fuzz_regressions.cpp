// tests/test_fuzz_regressions.cpp: every input the fuzzers ever found (tests/fuzz/regressions/<target>/<file>)
// replayed through the same body as its libFuzzer harness (tests/fuzz/fuzz_targets.h). Each must either be
// accepted or rejected with convlab::Error; a crash, another exception or (in the build-asan suite of
// scripts/sanitize.sh) a sanitizer report fails it. One test per file, named <target>/<file>.
#include <gtest/gtest.h>

#include <algorithm>
#include <exception>
#include <filesystem>
#include <string>
#include <vector>

#include "core/error.h"
#include "data/files.h"
#include "tests/fuzz/fuzz_targets.h"

namespace convlab {
namespace {

namespace fs = std::filesystem;

struct Regression {
  std::string target, file;  // file: path relative to tests/fuzz/regressions/
};

std::vector<Regression> regressions() {
  std::vector<Regression> out;
  const fs::path root = fuzz::source_path("tests/fuzz/regressions");
  for (const auto& t : fuzz::targets()) {
    const fs::path dir = root / t.name;
    if (!fs::is_directory(dir)) continue;
    for (const auto& e : fs::directory_iterator(dir))
      if (e.is_regular_file() && e.path().filename().string()[0] != '.')
        out.push_back({t.name, std::string(t.name) + "/" + e.path().filename().string()});
  }
  std::sort(out.begin(), out.end(), [](const Regression& a, const Regression& b) { return a.file < b.file; });
  return out;
}

class FuzzRegression : public ::testing::TestWithParam<Regression> {};

TEST_P(FuzzRegression, AcceptedOrConvlabError) {
  const Regression& r = GetParam();
  const std::string bytes = read_file_bytes(fuzz::source_path("tests/fuzz/regressions/" + r.file), "regression");
  const auto& all = fuzz::targets();
  const auto it = std::find_if(all.begin(), all.end(), [&](const fuzz::Target& t) { return r.target == t.name; });
  ASSERT_NE(it, all.end());
  // The target limits threads and tensor sizes for the process; other tests in this process keep theirs.
  struct Restore {
    int threads = num_threads();
    int64_t limit = max_tensor_elements();
    ~Restore() {
      set_num_threads(threads);
      set_max_tensor_elements(limit);
    }
  } restore;
  try {
    it->run(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
  } catch (const Error&) {
    // expected rejection
  } catch (const std::exception& e) {
    FAIL() << r.file << ": not a convlab::Error: " << e.what();
  }
}

// Test names may hold only letters, digits and '_'.
std::string test_name(const ::testing::TestParamInfo<Regression>& info) {
  std::string s = info.param.file;
  for (char& c : s)
    if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
  return s;
}

INSTANTIATE_TEST_SUITE_P(Files, FuzzRegression, ::testing::ValuesIn(regressions()), test_name);
GTEST_ALLOW_UNINSTANTIATED_PARAMETERIZED_TEST(FuzzRegression);

}  // namespace
}  // namespace convlab

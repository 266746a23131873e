// tests/main.cpp: GoogleTest entry point with convlab's threading policy and a private temporary folder.
//
// Every test process works in a fresh folder of its own (TMPDIR points there, so temp_directory_path() and
// the convlab processes the tests start use it): ctest runs each test in its own process, and folders named
// by process id alone could meet a leftover of an earlier run whose process had the same id (a run folder
// holding a checkpoint is then, rightly, not trained over). The folder is removed when the tests end.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <string>
#include <system_error>

#include "core/threads.h"

int main(int argc, char** argv) {
  convlab::ensure_passive_wait(argc, argv);
  const char* base = std::getenv("TMPDIR");
  std::string tmpl = std::string(base && *base ? base : "/tmp") + "/convlab_tests.XXXXXX";
  const char* dir = ::mkdtemp(tmpl.data());
  if (dir) ::setenv("TMPDIR", dir, 1);
  ::testing::InitGoogleTest(&argc, argv);
  const int rc = RUN_ALL_TESTS();
  if (dir) {
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
  }
  return rc;
}

// tests/main.cpp: GoogleTest entry point with convlab's threading policy.
#include <gtest/gtest.h>

#include "core/threads.h"

int main(int argc, char** argv) {
  convlab::ensure_passive_wait(argc, argv);
  ::testing::InitGoogleTest(&argc, argv);
  return RUN_ALL_TESTS();
}

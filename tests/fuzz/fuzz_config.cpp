// tests/fuzz/fuzz_config.cpp: libFuzzer entry point of the "config" target (body in fuzz_targets.h).
// convlab::Error is an expected rejection; anything else (another exception, a crash, a sanitizer report) is a
// finding. Run through scripts/fuzz.sh; seeds in tests/fuzz/corpus/config/.
#include "tests/fuzz/fuzz_targets.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    convlab::fuzz::config_input(data, size);
  } catch (const convlab::Error&) {
  }
  return 0;
}

// tests/fuzz/fuzz_jpeg.cpp: libFuzzer entry point of the "jpeg" target (body in fuzz_targets.h): JPEG decoding
// through libjpeg-turbo, where every libjpeg error must come back as convlab::Error (never exit(), abort or
// a sanitizer report). Run through scripts/fuzz.sh; seeds in tests/fuzz/corpus/jpeg/.
#include "tests/fuzz/fuzz_targets.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    convlab::fuzz::jpeg_input(data, size);
  } catch (const convlab::Error&) {
  }
  return 0;
}

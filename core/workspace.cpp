// core/workspace.cpp: growing, 64-byte aligned scratch buffers.
#include "core/workspace.h"

#include <array>
#include <memory>

#include "core/error.h"
#include "core/tensor.h"

namespace convlab {
namespace {
constexpr int kSlots = 8;
using Slots = std::array<std::unique_ptr<Storage>, kSlots>;

float* grow(Slots& slots, int slot, int64_t n) {
  CL_CHECK(slot >= 0 && slot < kSlots, "workspace: slot " << slot << " out of range");
  auto& s = slots[slot];
  if (!s || s->size() < n) s = std::make_unique<Storage>(n);
  return s->data();
}
}  // namespace

float* workspace(int slot, int64_t n) {
  thread_local Slots slots;
  return grow(slots, slot, n);
}

float* shared_workspace(int slot, int64_t n) {
  // One set per calling thread (the thread that opens the parallel region): two threads training two models,
  // or two ranks in one process (tests/test_shards.cpp), never share partial sums.
  thread_local Slots slots;
  return grow(slots, slot, n);
}

}  // namespace convlab

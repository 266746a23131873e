// core/workspace.h: reusable scratch buffers for the conv kernels (im2col columns, partial gradients).
// Each OpenMP thread owns its buffers (thread_local; OpenMP keeps its pool threads alive), which grow to
// the largest request and are never freed, so steady-state training allocates no large scratch memory.
// `slot` separates buffers a kernel needs at the same time (e.g. columns and their gradient).
#pragma once
#include <cstdint>

namespace convlab {

float* workspace(int slot, int64_t n_floats);

// Scratch shared by the threads of one parallel loop, such as the per-chunk partial weight gradients: requested
// outside parallel regions, by the thread that opens the region (each calling thread has its own).
float* shared_workspace(int slot, int64_t n_floats);

}  // namespace convlab

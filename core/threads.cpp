// core/threads.cpp: see threads.h.
#include "core/threads.h"

#include <omp.h>
#include <unistd.h>

#include <cstdlib>

#include "core/error.h"

namespace convlab {

void ensure_passive_wait(int /*argc*/, char** argv) {
  if (std::getenv("OMP_WAIT_POLICY") != nullptr) return;
  setenv("OMP_WAIT_POLICY", "PASSIVE", 1);
  execv("/proc/self/exe", argv);  // only returns on failure: then run on with libgomp's default
}

int num_threads() { return omp_get_max_threads(); }

void set_num_threads(int n) {
  CL_CHECK(n >= 1 && n <= kMaxThreads, "threads: expected 1 to " << kMaxThreads << " threads, got " << n);
  omp_set_num_threads(n);
}

}  // namespace convlab

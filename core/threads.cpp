// core/threads.cpp: see threads.h.
#include "core/threads.h"

#include <omp.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <numeric>

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

void run_dealt(const std::vector<int64_t>& cost, const std::function<void(int64_t)>& job) {
  const int64_t n = static_cast<int64_t>(cost.size());
  if (n <= 1 || omp_get_max_threads() == 1) {  // one thread: the jobs in their order (as a plain loop would)
    for (int64_t j = 0; j < n; ++j) job(j);
    return;
  }
#pragma omp parallel
  {
    const int T = omp_get_num_threads(), me = omp_get_thread_num();
    std::vector<int64_t> order(static_cast<size_t>(n)), load(static_cast<size_t>(T), 0);
    std::iota(order.begin(), order.end(), int64_t(0));
    std::stable_sort(order.begin(), order.end(),
                     [&](int64_t a, int64_t b) { return cost[size_t(a)] > cost[size_t(b)]; });
    for (int64_t j : order) {
      const auto least = std::min_element(load.begin(), load.end()) - load.begin();
      load[size_t(least)] += cost[size_t(j)];
      if (least == me) job(j);
    }
  }
}

}  // namespace convlab

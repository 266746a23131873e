// core/threads.h: process-wide threading policy.
// The 2 cores convlab runs on are shared with other work. OpenMP threads that spin while waiting at a
// barrier collapse then (seen here: layers 8-400x slower under load), so convlab's executables run with
// OMP_WAIT_POLICY=PASSIVE (sleep, do not spin). libgomp reads the variable once, before main(), so
// ensure_passive_wait() re-executes the program with it set when the user has not chosen a policy.
#pragma once
#include <cstdint>
#include <functional>
#include <vector>

namespace convlab {

// Call first thing in main(). Returns normally when the policy is already set (or re-exec failed).
void ensure_passive_wait(int argc, char** argv);

constexpr int kMaxThreads = 1024;
int num_threads();             // the OpenMP thread count used by parallel loops
void set_num_threads(int n);   // 1 <= n <= kMaxThreads

// Runs job(0) .. job(n - 1), n = cost.size(), each on one thread of one parallel region: the jobs are dealt the
// costliest first (ties: the lower index) to the thread with the least cost so far (ties: the lower thread), so
// jobs of unequal cost (a conv's blocks of 11 and 9 images, its input- and weight-gradient jobs) even out where a
// static schedule would leave one thread idle. The deal depends on the costs and the thread count only; a job
// must not depend on which thread runs it (results stay bit-identical).
void run_dealt(const std::vector<int64_t>& cost, const std::function<void(int64_t)>& job);

}  // namespace convlab

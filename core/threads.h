// core/threads.h: process-wide threading policy.
// The 2 cores convlab runs on are shared with other work. OpenMP threads that spin while waiting at a
// barrier collapse then (seen here: layers 8-400x slower under load), so convlab's executables run with
// OMP_WAIT_POLICY=PASSIVE (sleep, do not spin). libgomp reads the variable once, before main(), so
// ensure_passive_wait() re-executes the program with it set when the user has not chosen a policy.
#pragma once

namespace convlab {

// Call first thing in main(). Returns normally when the policy is already set (or re-exec failed).
void ensure_passive_wait(int argc, char** argv);

constexpr int kMaxThreads = 1024;
int num_threads();             // the OpenMP thread count used by parallel loops
void set_num_threads(int n);   // 1 <= n <= kMaxThreads

}  // namespace convlab

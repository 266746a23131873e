// core/shards.cpp: the batch-shard scope and the fold of shard partials (see shards.h).
#include "core/shards.h"

#include <vector>

#include "core/error.h"

namespace convlab {
namespace {

// Per thread: the ops read it on the thread that calls them (outside their parallel regions), and two
// threads can train as two ranks in one process (the in-process ShardComm of tests/test_shards.cpp).
BatchShards& current() {
  thread_local BatchShards s;
  return s;
}

template <typename T>
void fold(const T* partials, int64_t n, T* out) {
  const BatchShards& s = current();
  const T* all = partials;
  std::vector<T> gathered;
  if (s.distributed()) {
    gathered.resize(size_t(s.total * n));
    s.comm->all_gather(partials, int64_t(sizeof(T)) * s.local * n, gathered.data());
    all = gathered.data();
  }
  for (int64_t i = 0; i < n; ++i) {
    T acc = all[i];
    for (int64_t k = 1; k < s.total; ++k) acc += all[k * n + i];
    out[i] = acc;
  }
}

}  // namespace

std::unique_ptr<ShardComm> ShardComm::split(int) {
  CL_FAIL("shards: this process group cannot be split into smaller groups");
}

const BatchShards& batch_shards() { return current(); }

ShardScope::ShardScope(const BatchShards& s) : saved_(current()) {
  CL_CHECK(s.total >= 1 && s.local >= 1 && s.first >= 0 && s.first + s.local <= s.total,
           "batch shards: shards [" << s.first << ", " << s.first + s.local << ") of " << s.total << " are not a range");
  CL_CHECK(s.comm != nullptr || (s.first == 0 && s.local == s.total),
           "batch shards: one process holds every shard, not [" << s.first << ", " << s.first + s.local << ") of " << s.total);
  CL_CHECK(s.comm == nullptr || s.local * s.comm->size() == s.total,
           "batch shards: " << s.total << " shards over " << s.comm->size() << " processes holding " << s.local << " each");
  current() = s;
}

ShardScope::~ShardScope() { current() = saved_; }

SampleRange local_samples(int64_t B) {
  const BatchShards& s = current();
  CL_CHECK(B % s.total == 0, "batch shards: a batch of " << B << " samples cannot be cut into " << s.total << " equal shards");
  return {B / s.total * s.first, B / s.total * (s.first + s.local)};
}

int64_t local_shards(int64_t n, const char* op) {
  const int64_t k = current().local;
  CL_CHECK(n % k == 0, op << ": a batch of " << n << " samples cannot be cut into " << k << " equal shards");
  return k;
}

void fold_shards(const float* partials, int64_t n, float* out) { fold(partials, n, out); }
void fold_shards(const double* partials, int64_t n, double* out) { fold(partials, n, out); }

void require_single_process(const char* op) {
  CL_CHECK(!current().distributed(),
           op << ": its gradient sums over the batch are not split into shards yet, so it cannot train spread over "
              << current().comm->size() << " processes; run it in one process");
}

}  // namespace convlab

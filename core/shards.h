// core/shards.h: batch shards, the canonical cut of a training batch that makes data-parallel training give
// the same bits as one process.
//
// A global batch of B samples is cut into S contiguous shards of B/S samples (train.batch_shards). Every sum
// over the batch that training computes (weight and bias gradients of conv2d, depthwise, transposed and
// deformable convs and linear layers, batch-norm statistics and their backward sums, the loss) is defined as:
// one partial per shard, each summed from zero by the op's own fixed order over the shard's samples, then the
// S partials added in shard order (fold_shards). A process that
// holds shards [first, first + local) computes their partials, the others arrive through a ShardComm
// (all-gather in rank order: MPI_Allreduce promises no order, so it is not used), and every process folds
// the same S numbers in the same order. One process with S shards and N processes with S/N each therefore
// compute the same bits; the cut never depends on threads or ranks.
//
// Outside a ShardScope (inference, the op tool, tests of single ops) there is one shard and fold_shards is
// the identity: the ops compute exactly what they always did.
#pragma once
#include <cstdint>
#include <memory>

namespace convlab {

// How processes exchange shard partials (an MPI communicator in the CLI, tools/lib/mpi_comm.h).
class ShardComm {
 public:
  virtual ~ShardComm() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;
  // Every process passes `bytes` bytes; `all` receives size() * bytes, rank 0's block first.
  virtual void all_gather(const void* mine, int64_t bytes, void* all) = 0;
  // True on every process when `mine` is true on any (agreeing on a stop, a failure).
  virtual bool any(bool mine) = 0;
  // any() for a wait that includes the other processes' long work (a distributed compare waiting for the runs
  // of the others): an implementation that gives up on a process after a time limit does not apply it here.
  virtual bool any_unbounded(bool mine) { return any(mine); }
  // The processes that pass the same color >= 0 form a new ShardComm, ranked as here; color < 0: this process
  // joins none (null). Call on every process (a collective). Throws convlab::Error when this comm cannot split.
  virtual std::unique_ptr<ShardComm> split(int color);
  // True once an exchange was given up because a process stopped answering (its convlab::Error said which);
  // no further exchange may be started.
  virtual bool lost() const { return false; }
  // Totals since the start, for the training log: wall seconds spent inside exchanges (including waiting for
  // the slowest process) and bytes this process contributed.
  virtual double exchange_seconds() const { return 0; }
  virtual int64_t exchange_bytes() const { return 0; }
};

struct BatchShards {
  int64_t total = 1;           // S: shards of the global batch
  int64_t first = 0;           // this process's first shard
  int64_t local = 1;           // shards this process holds (total / processes)
  ShardComm* comm = nullptr;   // null: one process holds every shard
  bool distributed() const { return comm != nullptr && comm->size() > 1; }
};

// The shards in force (one shard, no comm, outside a ShardScope).
const BatchShards& batch_shards();

// Sets the batch shards of the calling thread for its lifetime (the training loop, around each step): set it
// on the thread that runs the ops, outside parallel regions.
class ShardScope {
 public:
  explicit ShardScope(const BatchShards& s);
  ~ShardScope();
  ShardScope(const ShardScope&) = delete;
  ShardScope& operator=(const ShardScope&) = delete;

 private:
  BatchShards saved_;
};

// This process's samples [begin, end) of a global batch of B samples (all of them outside a ShardScope).
struct SampleRange {
  int64_t begin = 0, end = 0;
};
SampleRange local_samples(int64_t B);

// The local shards an op of `op` cuts its batch of n samples into: batch_shards().local, checked to divide n
// (convlab::Error naming the op and both numbers otherwise).
int64_t local_shards(int64_t n, const char* op);

// partials [local, n] (this process's shards in order) -> out [n]: out[i] = p_0[i] + p_1[i] + ... + p_{S-1}[i]
// added left to right from p_0, over all S shards (gathered from the other processes when distributed).
// Call on every process in the same sequence (it is a collective when distributed).
void fold_shards(const float* partials, int64_t n, float* out);
void fold_shards(const double* partials, int64_t n, double* out);

// Ops whose batch sums are not cut into shards yet call this before reducing over the batch: it throws
// convlab::Error naming the op when the batch is spread over processes (their result would differ).
void require_single_process(const char* op);

}  // namespace convlab

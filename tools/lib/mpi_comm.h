// tools/lib/mpi_comm.h: the MPI side of data-parallel training (core/shards.h ShardComm over MPI_COMM_WORLD).
// The command line starts it when mpirun (or another MPI launcher) started the process; the libraries never
// call MPI themselves, so a program using them can bring its own ShardComm.
#pragma once
#include <memory>

#include "core/shards.h"

namespace convlab {

// True when an MPI launcher started this process (Open MPI's OMPI_COMM_WORLD_SIZE, PMIx or PMI variables).
bool launched_by_mpi();

class MpiSession;
// The process's MPI session when an MPI launcher started it (started on the first call, finalized at exit);
// null in a process started without one. `train` and `compare` call it.
MpiSession* launched_session();
// After an error: ends the process at once when an MPI session is running (see MpiSession::exit_now).
void exit_if_distributed(int code);

// MPI for the life of the object: MPI_Init_thread (funneled: only the main thread calls MPI, outside OpenMP
// regions) on start(), MPI_Finalize when destroyed. Throws convlab::Error when this convlab was built without
// MPI (scripts/setup.sh installs Open MPI; CMake finds it).
class MpiSession : public ShardComm {
 public:
  static std::unique_ptr<MpiSession> start();
  ~MpiSession() override;
  int rank() const override { return rank_; }
  int size() const override { return size_; }
  void all_gather(const void* mine, int64_t bytes, void* all) override;  // MPI_Allgather: rank order
  bool any(bool mine) override;                                           // MPI_Allreduce with MPI_LOR
  double exchange_seconds() const override { return seconds_; }
  int64_t exchange_bytes() const override { return bytes_; }
  // Ends the process at once without MPI_Finalize (which waits for every rank): after an error, the launcher
  // sees the exit code and stops the other ranks.
  [[noreturn]] static void exit_now(int code);

 private:
  MpiSession() = default;
  int rank_ = 0, size_ = 1;
  double seconds_ = 0;
  int64_t bytes_ = 0;
};

}  // namespace convlab

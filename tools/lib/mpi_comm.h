// tools/lib/mpi_comm.h: the MPI side of data-parallel training (core/shards.h ShardComm over MPI). The command
// line starts it when mpirun (or another MPI launcher) started the process; the libraries never call MPI
// themselves, so a program using them can bring its own ShardComm.
//
// Every exchange is nonblocking (MPI_Isend / MPI_Irecv to every other process, then MPI_Testall polled), so a
// wait can end: when a process stops answering, the waiting ones throw convlab::Error naming it (lost() is then
// true) instead of hanging. A wait ends that way
//   - when mpirun ends the job (a process died or was killed: mpirun sends the others SIGTERM, then SIGKILL one
//     second later), 0.3 s after that SIGTERM arrived (tools/lib/stop_signal.h), and
//   - after the exchange timeout (--exchange-timeout, default kDefaultExchangeTimeout seconds) with no answer
//     (a process that hangs, a machine that froze). Waits that include other processes' long work (a
//     distributed compare waiting for the others' runs: any_unbounded) have no timeout.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "core/shards.h"

namespace CLI {
class App;
}

namespace convlab {

// True when an MPI launcher started this process (Open MPI's OMPI_COMM_WORLD_SIZE, PMIx or PMI variables).
bool launched_by_mpi();

class MpiSession;
// The process's MPI session when an MPI launcher started it (started on the first call, finalized at exit);
// null in a process started without one. `train` and `compare` call it.
MpiSession* launched_session();
// After an error: ends the process at once when an MPI session is running (see MpiSession::exit_now).
void exit_if_distributed(int code);

// Seconds an exchange waits for a process that does not answer before giving up.
constexpr double kDefaultExchangeTimeout = 300;
// --exchange-timeout SECONDS (train, compare), into `seconds`.
void add_exchange_timeout_option(CLI::App& app, double& seconds);

// A ShardComm over an MPI communicator (the world's duplicate in MpiSession; a part of it after split()).
class MpiComm : public ShardComm {
 public:
  ~MpiComm() override;
  MpiComm(const MpiComm&) = delete;
  MpiComm& operator=(const MpiComm&) = delete;
  int rank() const override { return rank_; }
  int size() const override { return size_; }
  void all_gather(const void* mine, int64_t bytes, void* all) override;  // rank order
  bool any(bool mine) override;
  bool any_unbounded(bool mine) override;
  std::unique_ptr<ShardComm> split(int color) override;
  bool lost() const override { return lost_; }
  double exchange_seconds() const override { return seconds_; }
  int64_t exchange_bytes() const override { return bytes_; }
  // 0: no limit. Processes split from this one inherit it.
  void set_exchange_timeout(double seconds) { timeout_ = seconds; }

 protected:
  struct Handle;  // the MPI_Comm (mpi.h stays in mpi_comm.cpp)
  MpiComm();
  void attach(std::unique_ptr<Handle> h);
  std::unique_ptr<Handle> h_;

 private:
  void exchange(const void* mine, int64_t bytes, void* all, const char* during, bool bounded);
  bool gather_any(bool mine, const char* during, bool bounded);
  int rank_ = 0, size_ = 1;
  std::vector<int> world_;  // the MPI_COMM_WORLD rank of each rank here (for messages)
  double seconds_ = 0, timeout_ = kDefaultExchangeTimeout;
  int64_t bytes_ = 0;
  bool lost_ = false;
};

// MPI for the life of the object: MPI_Init_thread (funneled: only the main thread calls MPI, outside OpenMP
// regions) on start(), MPI_Finalize when destroyed. Throws convlab::Error when this convlab was built without
// MPI (scripts/setup.sh installs Open MPI; CMake finds it).
class MpiSession : public MpiComm {
 public:
  static std::unique_ptr<MpiSession> start();
  ~MpiSession() override;
  // Ends the process at once without MPI_Finalize (which waits for every rank): after an error, the launcher
  // sees the exit code and stops the other ranks.
  [[noreturn]] static void exit_now(int code);

 private:
  MpiSession() = default;
};

}  // namespace convlab

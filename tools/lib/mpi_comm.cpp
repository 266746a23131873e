// tools/lib/mpi_comm.cpp: MpiComm and MpiSession (see mpi_comm.h). Built with MPI when CMake finds it
// (CONVLAB_HAVE_MPI); without it, start() refuses with one line.
#include "tools/lib/mpi_comm.h"

#include <CLI/CLI.hpp>
#include <sched.h>

#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <sstream>

#include "core/error.h"
#include "tools/lib/stop_signal.h"

#ifdef CONVLAB_HAVE_MPI
#include <mpi.h>
#endif

namespace convlab {

bool launched_by_mpi() {
  for (const char* v : {"OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_RANK", "PMI_SIZE"})
    if (std::getenv(v)) return true;
  return false;
}

void add_exchange_timeout_option(CLI::App& app, double& seconds) {
  app.add_option("--exchange-timeout", seconds,
                 "under mpirun: seconds an exchange waits for a process that does not answer before the run stops "
                 "with a line naming it (default 300; 0: no limit)")
      ->check(CLI::Range(0.0, 1e9));
}

#ifdef CONVLAB_HAVE_MPI

// Seconds a wait goes on after the launcher's SIGTERM (mpirun ending the job): its SIGKILL follows one second
// after the SIGTERM (odls_base_sigkill_timeout), and a process that is still alive answers within this.
constexpr double kGraceAfterLauncherStop = 0.3;

struct MpiComm::Handle {
  MPI_Comm comm = MPI_COMM_NULL;
};

MpiComm::MpiComm() = default;

MpiComm::~MpiComm() {
  // A lost comm has requests that never complete; the process is about to end anyway.
  if (h_ && h_->comm != MPI_COMM_NULL && !lost_) MPI_Comm_free(&h_->comm);
}

void MpiComm::attach(std::unique_ptr<Handle> h) {
  h_ = std::move(h);
  MPI_Comm_set_errhandler(h_->comm, MPI_ERRORS_RETURN);  // a failed exchange is reported here, not aborted in MPI
  MPI_Comm_rank(h_->comm, &rank_);
  MPI_Comm_size(h_->comm, &size_);
  MPI_Group mine, world;
  MPI_Comm_group(h_->comm, &mine);
  MPI_Comm_group(MPI_COMM_WORLD, &world);
  std::vector<int> here(size_t(size_), 0);
  for (int r = 0; r < size_; ++r) here[size_t(r)] = r;
  world_.assign(size_t(size_), 0);
  MPI_Group_translate_ranks(mine, size_, here.data(), world, world_.data());
  MPI_Group_free(&mine);
  MPI_Group_free(&world);
}

std::unique_ptr<MpiSession> MpiSession::start() {
  int provided = 0;
  CL_CHECK(MPI_Init_thread(nullptr, nullptr, MPI_THREAD_FUNNELED, &provided) == MPI_SUCCESS, "mpi: MPI_Init failed");
  std::unique_ptr<MpiSession> s(new MpiSession());
  auto h = std::make_unique<Handle>();
  // A duplicate of the world: the exchanges' messages match nothing else.
  CL_CHECK(MPI_Comm_dup(MPI_COMM_WORLD, &h->comm) == MPI_SUCCESS, "mpi: MPI_Comm_dup failed");
  s->attach(std::move(h));
  return s;
}

MpiSession::~MpiSession() {
  if (h_ && h_->comm != MPI_COMM_NULL && !lost()) MPI_Comm_free(&h_->comm);
  h_.reset();
  MPI_Finalize();
}

std::unique_ptr<ShardComm> MpiComm::split(int color) {
  CL_CHECK(!lost_, "mpi: a lost process group cannot be split");
  MPI_Comm part = MPI_COMM_NULL;
  CL_CHECK(MPI_Comm_split(h_->comm, color >= 0 ? color : MPI_UNDEFINED, rank_, &part) == MPI_SUCCESS,
           "mpi: MPI_Comm_split failed");
  if (part == MPI_COMM_NULL) return nullptr;
  std::unique_ptr<MpiComm> c(new MpiComm());
  auto h = std::make_unique<Handle>();
  h->comm = part;
  c->attach(std::move(h));
  c->timeout_ = timeout_;
  return c;
}

// All-gather as one message to and from every other process, posted at once and polled, so the wait can end
// (see mpi_comm.h) and name the processes whose message never came.
void MpiComm::exchange(const void* mine, int64_t bytes, void* all, const char* during, bool bounded) {
  CL_CHECK(!lost_, "mpi: an exchange was started after a process stopped answering");
  CL_CHECK(bytes >= 0 && bytes <= INT_MAX, "mpi: " << bytes << " bytes per process in one exchange are too many");
  char* out = static_cast<char*>(all);
  if (out + int64_t(rank_) * bytes != mine) std::memmove(out + int64_t(rank_) * bytes, mine, size_t(bytes));
  const double t0 = MPI_Wtime();
  constexpr int kTag = 14;
  std::vector<MPI_Request> reqs;  // receives first, in rank order (skipping this one), then the sends
  std::vector<int> peer;          // the other process of each request
  reqs.reserve(2 * size_t(size_));
  int rc = MPI_SUCCESS;
  for (int r = 0; r < size_ && rc == MPI_SUCCESS; ++r)
    if (r != rank_) {
      reqs.emplace_back();
      peer.push_back(r);
      rc = MPI_Irecv(out + int64_t(r) * bytes, int(bytes), MPI_BYTE, r, kTag, h_->comm, &reqs.back());
    }
  for (int r = 0; r < size_ && rc == MPI_SUCCESS; ++r)
    if (r != rank_) {
      reqs.emplace_back();
      peer.push_back(r);
      rc = MPI_Isend(mine, int(bytes), MPI_BYTE, r, kTag, h_->comm, &reqs.back());
    }
  double stop_seen = -1;  // when the launcher's SIGTERM was first seen here
  std::string why;
  for (long spin = 0; rc == MPI_SUCCESS; ++spin) {
    int done = 0;
    rc = MPI_Testall(int(reqs.size()), reqs.data(), &done, MPI_STATUSES_IGNORE);
    if (rc != MPI_SUCCESS || done) break;
    if (spin % 64 == 0) {
      const double now = MPI_Wtime();
      if (stop_seen < 0 && stop_signal_from_parent()) stop_seen = now;
      if (stop_seen >= 0 && now - stop_seen > kGraceAfterLauncherStop) {
        why = "stopped answering";
        break;
      }
      if (bounded && timeout_ > 0 && now - t0 > timeout_) {
        std::ostringstream s;
        s << "did not answer for " << timeout_ << " s";
        why = s.str();
        break;
      }
    }
    if (spin > 1000) sched_yield();  // a long wait (the others compute, validate, write): leave them the core
  }
  if (rc == MPI_SUCCESS && why.empty()) {
    seconds_ += MPI_Wtime() - t0;
    bytes_ += bytes;
    return;
  }
  lost_ = true;
  // Who: the processes whose message has not arrived; when every message arrived, those that have not taken
  // this one's (a large message waits for its receiver, which may have stopped right after sending).
  std::vector<bool> pending(reqs.size(), false);
  for (size_t i = 0; i < reqs.size(); ++i) {
    int got = 0;
    pending[i] = !(MPI_Test(&reqs[i], &got, MPI_STATUS_IGNORE) == MPI_SUCCESS && got);
  }
  const size_t receives = size_t(size_ - 1);
  bool any_receive = false;
  for (size_t i = 0; i < receives && i < reqs.size(); ++i) any_receive = any_receive || pending[i];
  std::ostringstream who;
  int missing = 0;
  for (size_t i = any_receive ? 0 : receives; i < (any_receive ? receives : reqs.size()) && i < reqs.size(); ++i)
    if (pending[i]) who << (missing++ ? ", " : "") << world_[size_t(peer[i])];
  if (rc != MPI_SUCCESS) {
    char text[MPI_MAX_ERROR_STRING] = {};
    int len = 0;
    MPI_Error_string(rc, text, &len);
    CL_FAIL("the exchange with " << (missing ? (missing > 1 ? "ranks " : "rank ") + who.str() : std::string("another rank"))
                                 << " failed " << during << " (" << text << ": a process died or its machine is unreachable)");
  }
  if (missing == 0) who << "another rank";
  const std::string timeout_hint = why.rfind("did not", 0) == 0 ? "; --exchange-timeout sets the limit" : "";
  CL_FAIL((missing > 1 ? "ranks " : missing == 1 ? "rank " : "") << who.str() << " " << why << " " << during
          << (timeout_hint.empty() ? " (a process died or was killed)" : " (a process hangs or its machine froze" + timeout_hint + ")"));
}

void MpiComm::all_gather(const void* mine, int64_t bytes, void* all) {
  exchange(mine, bytes, all, "during the gradient exchange", true);
}

// Whether any process passed true: one int per process gathered, bounded by --exchange-timeout or not.
bool MpiComm::gather_any(bool mine, const char* during, bool bounded) {
  const int in = mine ? 1 : 0;
  std::vector<int> all(size_t(size_), 0);
  exchange(&in, sizeof in, all.data(), during, bounded);
  for (int v : all)
    if (v) return true;
  return false;
}

bool MpiComm::any(bool mine) { return gather_any(mine, "while the processes agreed on a stop", true); }

bool MpiComm::any_unbounded(bool mine) { return gather_any(mine, "while waiting for the other processes", false); }

#else

struct MpiComm::Handle {};
MpiComm::MpiComm() = default;
MpiComm::~MpiComm() = default;
void MpiComm::attach(std::unique_ptr<Handle> h) { h_ = std::move(h); }
std::unique_ptr<MpiSession> MpiSession::start() {
  CL_FAIL("mpi: this convlab was built without MPI; install Open MPI (scripts/setup.sh does) and rebuild");
}
MpiSession::~MpiSession() = default;
void MpiComm::exchange(const void*, int64_t, void*, const char*, bool) {}
void MpiComm::all_gather(const void*, int64_t, void*) {}
bool MpiComm::any(bool mine) { return mine; }
bool MpiComm::any_unbounded(bool mine) { return mine; }
std::unique_ptr<ShardComm> MpiComm::split(int) { return nullptr; }

#endif

namespace {
std::unique_ptr<MpiSession>& session() {
  static std::unique_ptr<MpiSession> s;
  return s;
}
}  // namespace

MpiSession* launched_session() {
  if (!session() && launched_by_mpi()) session() = MpiSession::start();
  return session().get();
}

void exit_if_distributed(int code) {
  if (session()) MpiSession::exit_now(code);
}

void MpiSession::exit_now(int code) {
  std::cout.flush();
  std::cerr.flush();
  std::fflush(nullptr);
  std::_Exit(code);
}

}  // namespace convlab

// tools/lib/mpi_comm.cpp: MpiSession (see mpi_comm.h). Built with MPI when CMake finds it (CONVLAB_HAVE_MPI);
// without it, start() refuses with one line.
#include "tools/lib/mpi_comm.h"

#include <climits>
#include <cstdio>
#include <cstdlib>
#include <iostream>

#include "core/error.h"

#ifdef CONVLAB_HAVE_MPI
#include <mpi.h>
#endif

namespace convlab {

bool launched_by_mpi() {
  for (const char* v : {"OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_RANK", "PMI_SIZE"})
    if (std::getenv(v)) return true;
  return false;
}

#ifdef CONVLAB_HAVE_MPI

std::unique_ptr<MpiSession> MpiSession::start() {
  int provided = 0;
  CL_CHECK(MPI_Init_thread(nullptr, nullptr, MPI_THREAD_FUNNELED, &provided) == MPI_SUCCESS, "mpi: MPI_Init failed");
  std::unique_ptr<MpiSession> s(new MpiSession());
  MPI_Comm_rank(MPI_COMM_WORLD, &s->rank_);
  MPI_Comm_size(MPI_COMM_WORLD, &s->size_);
  return s;
}

MpiSession::~MpiSession() { MPI_Finalize(); }

void MpiSession::all_gather(const void* mine, int64_t bytes, void* all) {
  CL_CHECK(bytes >= 0 && bytes <= INT_MAX, "mpi: " << bytes << " bytes per process in one exchange are too many");
  const double t0 = MPI_Wtime();
  CL_CHECK(MPI_Allgather(mine, int(bytes), MPI_BYTE, all, int(bytes), MPI_BYTE, MPI_COMM_WORLD) == MPI_SUCCESS,
           "mpi: MPI_Allgather of " << bytes << " bytes failed");
  seconds_ += MPI_Wtime() - t0;
  bytes_ += bytes;
}

bool MpiSession::any(bool mine) {
  int in = mine ? 1 : 0, out = 0;
  const double t0 = MPI_Wtime();
  CL_CHECK(MPI_Allreduce(&in, &out, 1, MPI_INT, MPI_LOR, MPI_COMM_WORLD) == MPI_SUCCESS, "mpi: MPI_Allreduce failed");
  seconds_ += MPI_Wtime() - t0;
  bytes_ += int64_t(sizeof in);
  return out != 0;
}

#else

std::unique_ptr<MpiSession> MpiSession::start() {
  CL_FAIL("mpi: this convlab was built without MPI; install Open MPI (scripts/setup.sh does) and rebuild");
}
MpiSession::~MpiSession() = default;
void MpiSession::all_gather(const void*, int64_t, void*) {}
bool MpiSession::any(bool mine) { return mine; }

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

// tools/lib/stop_signal.h: the command line's SIGINT / SIGTERM handling. The first signal only records its number
// and who sent it; `train` polls it after every step and stops there, writing a checkpoint, and the MPI exchanges
// (tools/lib/mpi_comm.h) watch it while they wait. The handler then restores the default action, so a second
// signal ends the process at once.
#pragma once

namespace convlab {

void install_stop_handlers();
// The number of the first SIGINT / SIGTERM received (0: none).
int stop_signal();
// True when that signal came from this process's parent: under mpirun, the launcher ending the job (it sends
// SIGTERM, then SIGKILL one second later: Open MPI's odls_base_sigkill_timeout).
bool stop_signal_from_parent();

}  // namespace convlab

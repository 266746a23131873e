// tools/lib/stop_signal.cpp: see stop_signal.h.
#include "tools/lib/stop_signal.h"

#include <signal.h>
#include <unistd.h>

#include <csignal>

namespace convlab {

namespace {

volatile std::sig_atomic_t g_signal = 0;
volatile std::sig_atomic_t g_sender = 0;  // the sender's pid (si_pid; 0 when the kernel or a terminal sent it)
volatile std::sig_atomic_t g_parent = 0;  // getppid() when the handlers were installed

extern "C" void on_stop_signal(int sig, siginfo_t* info, void*) {
  if (g_signal == 0) {
    g_sender = info ? info->si_pid : 0;
    g_signal = sig;
  }
  std::signal(sig, SIG_DFL);
}

}  // namespace

void install_stop_handlers() {
  g_parent = getppid();
  struct sigaction sa {};
  sa.sa_sigaction = on_stop_signal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_SIGINFO;  // no SA_RESTART needed: the loop does no blocking reads
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
}

int stop_signal() { return g_signal; }

bool stop_signal_from_parent() { return g_signal != 0 && g_sender != 0 && g_sender == g_parent; }

}  // namespace convlab

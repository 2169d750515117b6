#pragma once
// SIGTERM and SIGINT, blocked in the calling thread so that every thread
// started after it inherits the mask: the signals then wait to be taken with
// sigwait / sigtimedwait instead of killing the process in the middle of a write.

#include <signal.h>

namespace weir::cli {

inline sigset_t block_stop_signals() {
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  return stop_signals;
}

}  // namespace weir::cli

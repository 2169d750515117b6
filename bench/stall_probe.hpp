#pragma once
// A thread that notes when it ran late: each wake-up (or, spinning, each clock
// read) more than 2 ms after it was due counts as a stall. Spinning shows the
// stalls of the machine itself (a VM whose host takes its vCPU away); sleeping
// 1 ms at a time shows what a nearly idle thread saw beside a benchmark.

#include <algorithm>
#include <atomic>
#include <chrono>
#include <thread>

namespace weir::bench {

class stall_probe {
 public:
  /// Starts the thread; `nap` zero spins, otherwise it sleeps that long per step.
  explicit stall_probe(std::chrono::microseconds nap) : nap_(nap), thread_([this] { run(); }) {}
  ~stall_probe() { stop(); }
  stall_probe(const stall_probe&) = delete;
  stall_probe& operator=(const stall_probe&) = delete;

  /// Ends the thread; the figures below are final after it.
  void stop() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
  }
  int stalls() const { return stalls_; }
  double stalled_ms() const { return stalled_ms_; }
  double longest_ms() const { return longest_ms_; }

 private:
  void run() {
    using clock_type = std::chrono::steady_clock;
    auto before = clock_type::now();
    while (!stop_.load(std::memory_order_relaxed)) {
      if (nap_.count() > 0) std::this_thread::sleep_for(nap_);
      const auto now = clock_type::now();
      const double late_ms =
          std::chrono::duration<double, std::milli>(now - before - nap_).count();
      if (late_ms > 2) {
        ++stalls_;
        stalled_ms_ += late_ms;
      }
      longest_ms_ = std::max(longest_ms_, late_ms);
      before = now;
    }
  }

  std::chrono::microseconds nap_;
  std::atomic<bool> stop_{false};
  int stalls_ = 0;
  double stalled_ms_ = 0;
  double longest_ms_ = 0;
  std::thread thread_;  // last: it starts once the fields above are set
};

}  // namespace weir::bench

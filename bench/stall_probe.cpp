// How often this machine stops running a thread that wants to run: one probe
// per core spins for S seconds and counts the gaps over 2 ms between its clock
// reads. On an idle machine every gap is the host's (or the kernel's), not the
// program's: the floor under any latency figure measured here.
//
//   stall_probe [--seconds S] [--threads N] [--sleep-us U]
//   (defaults: 20 s, one thread per core, spinning; --sleep-us sleeps instead)

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "stall_probe.hpp"

int main(int argc, char** argv) {
  double seconds = 20;
  unsigned threads = std::max(1u, std::thread::hardware_concurrency());
  long sleep_us = 0;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--seconds" && i + 1 < argc) {
      seconds = std::stod(argv[++i]);
    } else if (arg == "--threads" && i + 1 < argc) {
      threads = static_cast<unsigned>(std::stoul(argv[++i]));
    } else if (arg == "--sleep-us" && i + 1 < argc) {
      sleep_us = std::stol(argv[++i]);
    } else {
      std::cerr << "usage: stall_probe [--seconds S] [--threads N] [--sleep-us U]\n";
      return arg == "--help" ? 0 : 2;
    }
  }
  std::vector<std::unique_ptr<weir::bench::stall_probe>> probes;
  for (unsigned i = 0; i < threads; ++i) {
    probes.push_back(
        std::make_unique<weir::bench::stall_probe>(std::chrono::microseconds(sleep_us)));
  }
  std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
  std::printf("| probe | stalls over 2 ms | stalled ms | longest ms |\n| --- | --- | --- | --- |\n");
  for (unsigned i = 0; i < threads; ++i) {
    probes[i]->stop();
    std::printf("| %u (%s) | %d | %.1f | %.2f |\n", i, sleep_us > 0 ? "sleeping" : "spinning",
                probes[i]->stalls(), probes[i]->stalled_ms(), probes[i]->longest_ms());
  }
  std::printf("\n%.0f s, %u threads\n", seconds, threads);
  return 0;
}

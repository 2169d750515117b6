// The checkpoint-log demo: a child process publishes and acks with group commit
// and is killed with SIGKILL mid-stream; a torn write is added to the log's
// tail, as a power loss could leave it; then the log is recovered and checked:
// every publish the child saw confirmed must still be there (ready or acked).
//
//   checkpoint_demo DATA_DIR
//
// The log lives in DATA_DIR/orders (recreated on every run).

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "weir/runtime/checkpoint_log.hpp"

namespace {

constexpr std::uint64_t batch_size = 32;
constexpr std::uint64_t confirmed_before_kill = 20'000;

// Child: publish batches forever; ack every other batch once it is durable.
// Each confirmed batch's first id is written to `pipe_fd` (8 bytes).
[[noreturn]] void run_writer(const std::string& dir, int pipe_fd) {
  weir::posix_file_system fs;
  weir::log_options options;
  options.segment_bytes_max = 256 << 10;  // small, so the demo rolls segments
  options.snapshot_every_bytes = 1 << 20;
  auto opened = weir::checkpoint_log::open(fs, dir, options);
  if (!opened) {
    std::cerr << "writer: " << opened.error().to_string() << "\n";
    _exit(2);
  }
  auto& log = **opened;
  std::vector<std::string> payloads(batch_size);
  std::vector<weir::outgoing_message> batch(batch_size);
  for (std::uint64_t round = 0;; ++round) {
    for (std::uint64_t i = 0; i < batch_size; ++i) {
      payloads[i] = "order-" + std::to_string(round * batch_size + i + 1);
      batch[i].producer_id = 7;
      batch[i].producer_seq = round * batch_size + i + 1;
      batch[i].payload = payloads[i];
    }
    // The callback can run on the log's writer thread before publish() returns
    // the ids, so it waits for them through shared state.
    auto first_id = std::make_shared<std::atomic<std::uint64_t>>(0);
    auto published = log.publish(batch, [first_id, pipe_fd](const weir::status& outcome) {
      if (!outcome) return;
      while (first_id->load() == 0) std::this_thread::yield();
      const std::uint64_t id = first_id->load();
      if (::write(pipe_fd, &id, sizeof id) != sizeof id) _exit(3);
    });
    if (!published) _exit(4);
    first_id->store(*published);
    if (round == 100) {
      // One explicit snapshot early on, so recovery always shows snapshot + tail.
      if (!log.snapshot()) _exit(5);
    }
    if (round % 2 == 1) {
      weir::id_range range{*published, *published + batch_size};
      if (!log.ack({&range, 1}, {})) _exit(6);
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::cerr << "usage: checkpoint_demo DATA_DIR\n";
    return 2;
  }
  const std::string dir = std::string(argv[1]) + "/orders";
  std::error_code ignored;
  std::filesystem::remove_all(dir, ignored);
  std::filesystem::create_directories(dir, ignored);

  int fds[2];
  if (::pipe(fds) != 0) {
    std::perror("pipe");
    return 2;
  }
  std::cout << "1. a writer process publishes orders with sync=always (group commit)\n";
  const pid_t child = ::fork();
  if (child == 0) {
    ::close(fds[0]);
    run_writer(dir, fds[1]);
  }
  ::close(fds[1]);

  std::vector<std::uint64_t> confirmed_batches;
  std::uint64_t id = 0;
  while (confirmed_batches.size() * batch_size < confirmed_before_kill &&
         ::read(fds[0], &id, sizeof id) == sizeof id) {
    confirmed_batches.push_back(id);
  }
  ::kill(child, SIGKILL);
  int wait_status = 0;
  ::waitpid(child, &wait_status, 0);
  // Confirmations already in the pipe were also promised to the writer.
  while (::read(fds[0], &id, sizeof id) == sizeof id) confirmed_batches.push_back(id);
  ::close(fds[0]);
  std::cout << "2. killed it with SIGKILL after " << confirmed_batches.size() * batch_size
            << " confirmed messages\n";

  // A torn write: half a record header and garbage, as a power loss mid-append leaves.
  weir::posix_file_system fs;
  auto names = fs.list_dir(dir);
  std::string last_segment;
  for (const auto& name : *names) {
    if (name.starts_with("segment-") && dir + "/" + name > last_segment)
      last_segment = dir + "/" + name;
  }
  {
    auto file = fs.open_for_append(last_segment);
    const char garbage[] = "\x40\x00\x00\x00torn-write";
    if (!file || !(*file)->append(std::as_bytes(std::span{garbage, sizeof garbage - 1}))) {
      std::cerr << "could not append the torn record to " << last_segment << "\n";
      return 1;
    }
  }
  std::cout << "3. appended a torn record to " << last_segment << "\n";

  std::cout << "4. recovering\n";
  auto opened = weir::checkpoint_log::open(fs, dir, {});
  if (!opened) {
    std::cerr << "recovery failed: " << opened.error().to_string() << "\n";
    return 1;
  }
  auto& log = **opened;
  const auto& report = log.recovery();
  const auto stats = log.stats();
  std::cout << "   snapshot: "
            << (report.snapshot_sequence ? "sequence " + std::to_string(*report.snapshot_sequence)
                                         : std::string("none"))
            << ", segments: " << report.segments.size()
            << ", records replayed after it: " << report.records_replayed << " in "
            << report.seconds * 1000 << " ms\n";
  for (const auto& cut : report.truncations) {
    std::cout << "   cut " << cut.bytes << " bytes at " << cut.file << " offset " << cut.offset
              << " (" << cut.reason << ")\n";
  }
  for (const auto& damage : report.corruptions) {
    std::cout << "   skipped " << damage.bytes << " corrupt bytes at " << damage.file << " offset "
              << damage.offset << " (" << damage.reason << ")\n";
  }
  std::cout << "   published=" << stats.published << " acked=" << stats.acked
            << " ready=" << stats.ready << " dead_lettered=" << stats.dead_lettered << "\n";

  // Every confirmed message is either acked or readable with its payload.
  std::uint64_t missing = 0;
  std::uint64_t readable = 0;
  for (auto first : confirmed_batches) {
    for (std::uint64_t i = first; i < first + batch_size; ++i) {
      auto message = log.read(i);
      if (message) {
        ++readable;
      } else if (message.error().code() != weir::errc::not_found || i >= stats.next_id) {
        ++missing;
      }
    }
  }
  std::cout << "5. every confirmed message survived: " << (missing == 0 ? "yes" : "NO") << " ("
            << confirmed_batches.size() * batch_size << " confirmed, " << readable
            << " still ready to deliver, the rest acked; " << missing << " missing)\n";
  log.for_each_ready(1, 3, [&](std::uint64_t ready_id, std::uint32_t) {
    auto message = log.read(ready_id);
    std::cout << "   ready: id " << ready_id << " payload " << (message ? message->payload : "?")
              << "\n";
  });
  std::cout << "data: " << dir << " (inspect it with: weir inspect " << dir << ")\n";
  return missing == 0 ? 0 : 1;
}

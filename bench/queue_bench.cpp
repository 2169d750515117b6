// One process: producer actor -> durable queue actor -> consumer actor, 100 B
// and 1 KiB payloads, sync `always` and `none`, printed beside the ceiling
// measured in the same run: CAF's raw local send rate between two actors with
// one ack per 100 messages and a bounded window (what any actor pipeline pays).
//
//   queue_bench [--quick] [--dir DIR] [--messages N]

#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include <caf/all.hpp>

#include "weir/queue/consumer.hpp"
#include "weir/queue/producer.hpp"
#include "weir/queue/protocol.hpp"
#include "weir/queue/queue.hpp"
#include "weir/queue/system_config.hpp"

namespace {

using clock_type = std::chrono::steady_clock;
using ping_atom = caf::atom_constant<caf::atom("bping")>;
using pong_atom = caf::atom_constant<caf::atom("bpong")>;

using config = weir::system_config;

constexpr std::uint64_t ack_every = 100;
constexpr std::uint64_t raw_window = 10'000;

/// CAF ceiling: a sender pushes `count` payloads, the receiver acks every 100.
double caf_rate(caf::actor_system& system, std::uint64_t count, std::size_t size) {
  auto done = std::make_shared<std::atomic<bool>>(false);
  auto receiver = system.spawn(
      [](caf::event_based_actor* self, std::shared_ptr<std::uint64_t> seen) -> caf::behavior {
        return {[self, seen](ping_atom, const std::string&) {
          if (++*seen % ack_every == 0) {
            self->send(caf::actor_cast<caf::actor>(self->current_sender()), pong_atom::value);
          }
        }};
      },
      std::make_shared<std::uint64_t>(0));
  const auto started = clock_type::now();
  system.spawn(
      [](caf::event_based_actor* self, caf::actor to, std::uint64_t total, std::size_t bytes,
         std::shared_ptr<std::atomic<bool>> finished) -> caf::behavior {
        auto sent = std::make_shared<std::uint64_t>(0);
        auto acked = std::make_shared<std::uint64_t>(0);
        auto payload = std::make_shared<std::string>(bytes, 'x');
        auto pump = [=] {
          while (*sent < total && *sent - *acked < raw_window) {
            self->send(to, ping_atom::value, *payload);
            ++*sent;
          }
        };
        pump();
        return {[=](pong_atom) {
          *acked += ack_every;
          if (*acked >= total) {
            finished->store(true);
            self->quit();
            return;
          }
          pump();
        }};
      },
      receiver, count, size, done);
  while (!done->load()) std::this_thread::sleep_for(std::chrono::microseconds(200));
  const double seconds = std::chrono::duration<double>(clock_type::now() - started).count();
  caf::anon_send_exit(receiver, caf::exit_reason::user_shutdown);
  return double(count) / seconds;
}

/// weir: producer -> durable queue -> consumer; messages/s from first send to last handled.
double weir_rate(caf::actor_system& system, const std::string& dir, std::uint64_t count,
                 std::size_t size, const char* sync) {
  std::filesystem::remove_all(dir);
  weir::posix_file_system fs;
  weir::queue_options options;
  options.name = "bench";
  options.data_dir = dir;
  options.log.sync = *weir::sync_policy::parse(sync);
  options.delivery_batch_max = 512;
  auto queue = weir::spawn_queue(system, fs, options);
  if (!queue) {
    std::fprintf(stderr, "queue_bench: %s\n", queue.error().to_string().c_str());
    std::exit(1);
  }
  auto handled = std::make_shared<std::atomic<std::uint64_t>>(0);
  weir::consumer_options consumer_settings;
  consumer_settings.credit = 2048;
  auto consumer = weir::spawn_consumer(system, *queue, consumer_settings,
                                       [handled](const weir::delivery&) { ++*handled; });
  weir::producer_options producer_options;
  producer_options.producer_id = 1;
  producer_options.batch_max = 512;
  producer_options.window = 16384;
  producer_options.resend_timeout = std::chrono::seconds(30);
  auto producer = weir::spawn_producer(system, *queue, producer_options);
  caf::scoped_actor self{system};
  const std::string payload(size, 'x');
  const auto started = clock_type::now();
  for (std::uint64_t sent = 0; sent < count;) {
    std::vector<weir::message_data> chunk;
    for (std::uint64_t i = 0; i < 1024 && sent < count; ++i, ++sent) {
      chunk.push_back({"", payload, {}, 0});
    }
    self->request(producer, std::chrono::seconds(60), weir::send_atom::value, std::move(chunk))
        .receive([] {}, [](caf::error&) {});
  }
  while (handled->load() < count) std::this_thread::sleep_for(std::chrono::microseconds(200));
  const double seconds = std::chrono::duration<double>(clock_type::now() - started).count();
  for (auto& actor : {producer, consumer, *queue}) {
    self->send_exit(actor, caf::exit_reason::user_shutdown);
  }
  self->wait_for(*queue);
  std::filesystem::remove_all(dir);
  return double(count) / seconds;
}

}  // namespace

int main(int argc, char** argv) {
  bool quick = false;
  std::string base = std::filesystem::exists(".") ? "." : "/tmp";
  std::uint64_t messages = 400'000;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--quick") == 0) {
      quick = true;
    } else if (std::strcmp(argv[i], "--dir") == 0 && i + 1 < argc) {
      base = argv[++i];
    } else if (std::strcmp(argv[i], "--messages") == 0 && i + 1 < argc) {
      messages = std::stoull(argv[++i]);
    } else {
      std::fprintf(stderr, "usage: queue_bench [--quick] [--dir DIR] [--messages N]\n");
      return 2;
    }
  }
  if (quick) messages = 5'000;
  const std::string dir = base + "/queue_bench." + std::to_string(::getpid());
  config cfg;
  caf::actor_system system{cfg};

  std::printf("weir queue_bench: producer -> durable queue -> consumer, one process, %s\n",
              quick ? "quick run (figures not meaningful)" : "full run");
  std::printf("ceiling: CAF local send between two actors, ack every %llu, window %llu\n\n",
              static_cast<unsigned long long>(ack_every),
              static_cast<unsigned long long>(raw_window));
  std::printf("%-8s %-7s %10s %14s %16s %8s\n", "payload", "sync", "messages", "weir msg/s",
              "CAF raw msg/s", "ratio");
  std::printf("-------------------------------------------------------------------\n");
  double weir_100b_always = 0;
  for (std::size_t size : {std::size_t{100}, std::size_t{1024}}) {
    const std::uint64_t count = size == 100 ? messages : messages / 2;
    const double ceiling = caf_rate(system, count, size);
    for (const char* sync : {"always", "none"}) {
      const double rate = weir_rate(system, dir, count, size, sync);
      if (size == 100 && std::strcmp(sync, "always") == 0) weir_100b_always = rate;
      std::printf("%-8s %-7s %10llu %14.0f %16.0f %7.0f%%\n", size == 100 ? "100 B" : "1 KiB", sync,
                  static_cast<unsigned long long>(count), rate, ceiling, 100.0 * rate / ceiling);
    }
  }
  std::printf("\ntarget: >= 1.5 M msg/s at 100 B with sync always: %s (%.2f M msg/s)\n",
              quick ? "not judged on a quick run" : (weir_100b_always >= 1.5e6 ? "met" : "MISSED"),
              weir_100b_always / 1e6);
  return 0;
}

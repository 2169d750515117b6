// A poison message: one order that the handler can never process. It is
// delivered max_deliveries times, then moved to the dead-letter queue with the
// reason and the handler's last error; every other order flows past it.
//
//   poison DATA_DIR        (the queues' logs live in DATA_DIR/orders{,.dlq}, recreated)

#include <atomic>
#include <filesystem>
#include <iostream>
#include <map>
#include <mutex>
#include <thread>

#include <caf/all.hpp>

#include "weir/runtime/logging.hpp"

#include "weir/queue/consumer.hpp"
#include "weir/queue/producer.hpp"
#include "weir/queue/protocol.hpp"
#include "weir/queue/queue.hpp"
#include "weir/queue/system_config.hpp"

namespace {

constexpr int orders = 100;
constexpr std::uint32_t max_deliveries = 5;
const std::string poison_order = "order-42";

using config = weir::system_config;

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::cerr << "usage: poison DATA_DIR\n";
    return 2;
  }
  const std::string data = argv[1];
  std::error_code ignored;
  std::filesystem::remove_all(data + "/orders", ignored);
  std::filesystem::remove_all(data + "/orders.dlq", ignored);

  weir::log_to_stderr();
  config cfg;
  // Declared first: the queues' logs use it until the actor system is gone.
  weir::posix_file_system fs;
  caf::actor_system system{cfg};
  caf::scoped_actor self{system};

  weir::queue_options dlq_options;
  dlq_options.name = "orders.dlq";
  dlq_options.data_dir = data + "/orders.dlq";
  auto dlq = weir::spawn_queue(system, fs, dlq_options);
  if (!dlq) {
    std::cerr << "poison: " << dlq.error().to_string() << "\n";
    return 1;
  }
  weir::queue_options options;
  options.name = "orders";
  options.data_dir = data + "/orders";
  options.max_deliveries = max_deliveries;
  options.dead_letter_queue = *dlq;
  options.retry_backoff = weir::backoff_policy::exponential(std::chrono::milliseconds(5),
                                                            std::chrono::milliseconds(50));
  auto queue = weir::spawn_queue(system, fs, options);
  if (!queue) {
    std::cerr << "poison: " << queue.error().to_string() << "\n";
    return 1;
  }

  std::mutex mutex;
  std::map<std::string, int> attempts;
  std::atomic<int> processed{0};
  weir::consumer_options consumer_settings;
  consumer_settings.credit = 16;
  auto consumer =
      weir::spawn_consumer(system, *queue, consumer_settings, [&](const weir::delivery& d) {
        {
          std::lock_guard lock(mutex);
          ++attempts[d.data.payload.str()];
        }
        if (d.data.payload == poison_order) {
          throw std::runtime_error("price field is not a number: \"12,50 EUR\"");
        }
        ++processed;
      });

  weir::producer_options producer_options;
  producer_options.producer_id = 1;
  auto producer = weir::spawn_producer(system, *queue, producer_options);
  std::vector<weir::message_data> batch;
  for (int i = 1; i <= orders; ++i) batch.push_back({"", "order-" + std::to_string(i), {}, 0});
  self->request(producer, std::chrono::seconds(10), weir::send_atom::value, std::move(batch))
      .receive([] {}, [](caf::error&) {});
  self->request(producer, std::chrono::seconds(10), weir::flush_atom::value)
      .receive([] {}, [](caf::error&) {});

  // Wait until every good order is processed and the poison one has left the queue.
  weir::queue_stats stats;
  for (int round = 0; round < 500; ++round) {
    self->request(*queue, std::chrono::seconds(5), weir::stats_atom::value)
        .receive([&](weir::queue_stats& s) { stats = s; }, [](caf::error&) {});
    if (processed.load() == orders - 1 && stats.dead_lettered == 1) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  std::cout << "processed " << processed.load() << " of " << orders << " orders"
            << " (acked " << stats.acked << ", redelivered " << stats.redelivered << ")\n";

  // Read the dead letter back from the dead-letter queue.
  self->send(*dlq, weir::subscribe_atom::value, std::int64_t{1});
  bool found = false;
  self->receive(
      [&](weir::deliver_atom, weir::delivery_batch& dead) {
        for (const auto& d : dead.deliveries) {
          std::cout << "dead letter: " << d.data.payload;
          for (const auto& h : d.data.headers) std::cout << "\n  " << h.name << ": " << h.value;
          std::cout << "\n";
          found = d.data.payload == poison_order;
        }
      },
      caf::after(std::chrono::seconds(5)) >> [] {});
  std::cout << poison_order << " was delivered " << attempts[poison_order] << " times\n";

  for (auto& actor : {producer, consumer, *queue, *dlq}) {
    self->send_exit(actor, caf::exit_reason::user_shutdown);
  }
  const bool ok = found && processed.load() == orders - 1 && stats.dead_lettered == 1 &&
                  attempts[poison_order] == static_cast<int>(max_deliveries);
  std::cout << (ok ? "ok" : "FAILED") << "\n";
  return ok ? 0 : 1;
}

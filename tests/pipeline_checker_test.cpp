// Checker: N messages through producer -> durable queue (supervised) -> consumer,
// with random handler failures, one poison message and the queue killed
// mid-run. Every message must end processed at the sink (exactly once after
// de-duplicating by producer sequence, which is what an idempotent sink does)
// or in the dead-letter queue with its reason; nothing is lost.

#include <boost/test/unit_test.hpp>

#include <atomic>
#include <map>
#include <mutex>
#include <random>
#include <thread>

#include <caf/all.hpp>

#include "actor_test_config.hpp"
#include "temp_dir.hpp"
#include "test_helpers.hpp"
#include "weir/queue/consumer.hpp"
#include "weir/queue/producer.hpp"
#include "weir/queue/queue.hpp"
#include "weir/runtime/supervisor.hpp"

using namespace weir;
using namespace std::chrono_literals;

namespace {

using test_config = weir::testing::actor_test_config;
using weir::testing::eventually;

/// What the sink saw: successful handler runs per producer sequence number.
struct sink {
  std::mutex mutex;
  std::map<std::uint64_t, int> processed;
  std::atomic<std::uint64_t> failures{0};
};

}  // namespace

BOOST_AUTO_TEST_CASE(every_message_is_processed_or_dead_lettered_through_failures_and_a_crash) {
  testing::temp_dir dir;
  posix_file_system fs;
  test_config config;
  caf::actor_system system{config};
  caf::scoped_actor self{system};

  constexpr std::uint64_t total = 2000;
  constexpr std::uint64_t poison_seq = 777;

  queue_options dlq_options;
  dlq_options.name = "work.dlq";
  dlq_options.data_dir = dir.file("work.dlq");
  auto dlq = spawn_queue(system, fs, dlq_options);
  BOOST_REQUIRE(dlq);

  // The work queue runs under a supervisor; `current` tracks its latest incarnation.
  auto current = std::make_shared<std::atomic<caf::actor*>>(nullptr);
  auto incarnations = std::make_shared<std::vector<std::unique_ptr<caf::actor>>>();
  std::mutex incarnation_mutex;
  child_spec work;
  work.name = "work";
  work.start = [&](caf::actor_system& sys) -> caf::actor {
    queue_options opts;
    opts.name = "work";
    opts.data_dir = dir.file("work");
    opts.max_deliveries = 8;
    opts.dead_letter_queue = *dlq;
    opts.retry_backoff = backoff_policy::fixed(1ms);
    opts.ack_timeout = 5s;
    auto spawned = spawn_queue(sys, fs, opts);
    if (!spawned) return {};
    std::lock_guard lock(incarnation_mutex);
    incarnations->push_back(std::make_unique<caf::actor>(*spawned));
    current->store(incarnations->back().get());
    return *spawned;
  };
  supervisor_options sup_options;
  sup_options.restart_backoff = backoff_policy::fixed(5ms);
  auto supervisor = spawn_supervisor(system, sup_options, {work});
  BOOST_REQUIRE(eventually([&] { return current->load() != nullptr; }, 5s));
  auto first_queue = *current->load();

  auto results = std::make_shared<sink>();
  consumer_options consumer_settings;
  consumer_settings.credit = 64;
  auto consumer =
      spawn_consumer(system, first_queue, consumer_settings,
                     [results, rng = std::make_shared<std::mt19937_64>(99)](const delivery& d) {
                       const auto seq = std::stoull(d.data.payload.str());
                       if (seq == poison_seq)
                         throw std::runtime_error("cannot parse order " + d.data.payload.str());
                       if ((*rng)() % 10 == 0) {
                         ++results->failures;
                         throw std::runtime_error("flaky downstream");
                       }
                       std::lock_guard lock(results->mutex);
                       ++results->processed[seq];
                     });
  producer_options prod_options;
  prod_options.producer_id = 42;
  prod_options.batch_max = 50;
  prod_options.window = 400;
  prod_options.resend_timeout = 300ms;
  auto producer = spawn_producer(system, first_queue, prod_options);

  for (std::uint64_t seq = 1; seq <= total; seq += 100) {
    std::vector<message_data> chunk;
    for (auto s = seq; s < seq + 100; ++s) chunk.push_back({"", std::to_string(s), {}, 0});
    self->request(producer, 10s, send_atom::value, std::move(chunk))
        .receive([] {}, [](caf::error& e) { BOOST_FAIL("send: " << caf::to_string(e)); });
    if (seq == 901) {
      // Kill the queue mid-run, as a crash; its supervisor restarts it and it
      // recovers from its log. Producer and consumer are pointed at the new one.
      self->send_exit(first_queue, caf::exit_reason::kill);
      BOOST_REQUIRE(eventually([&] { return *current->load() != first_queue; }, 5s));
      auto second_queue = *current->load();
      self->send(producer, rebind_atom::value, second_queue);
      self->send(consumer, rebind_atom::value, second_queue);
    }
  }
  self->request(producer, 30s, flush_atom::value)
      .receive([] {}, [](caf::error& e) { BOOST_FAIL("flush: " << caf::to_string(e)); });

  auto all_processed = [&] {
    std::lock_guard lock(results->mutex);
    return results->processed.size() == total - 1;
  };
  BOOST_REQUIRE_MESSAGE(eventually(all_processed, 30s), "not every message was processed");

  auto queue_now = *current->load();
  queue_stats work_stats;
  BOOST_REQUIRE(eventually(
      [&] {
        self->request(queue_now, 5s, stats_atom::value)
            .receive([&](queue_stats& s) { work_stats = s; }, [](caf::error&) {});
        return work_stats.dead_lettered == 1 && work_stats.unacked == 0 && work_stats.ready == 0;
      },
      10s));

  {
    std::lock_guard lock(results->mutex);
    std::uint64_t duplicates = 0;
    for (std::uint64_t seq = 1; seq <= total; ++seq) {
      if (seq == poison_seq) {
        BOOST_TEST(results->processed.count(seq) == 0u);
        continue;
      }
      BOOST_REQUIRE_MESSAGE(results->processed.count(seq) == 1, "message " << seq << " lost");
      duplicates += results->processed[seq] - 1;
    }
    // Only deliveries unacked when the queue died may run twice: at most its credit.
    BOOST_TEST(duplicates <= 64u);
    BOOST_TEST_MESSAGE("flaky failures " << results->failures.load()
                                         << ", duplicates after the crash " << duplicates);
  }
  BOOST_TEST(results->failures.load() > 0u);

  // The poison message sits in the dead-letter queue with its reason.
  self->send(*dlq, subscribe_atom::value, std::int64_t{1});
  bool found = false;
  self->receive(
      [&](deliver_atom, delivery_batch& batch) {
        BOOST_REQUIRE_EQUAL(batch.deliveries.size(), 1u);
        const auto& d = batch.deliveries[0];
        BOOST_TEST(d.data.payload == std::to_string(poison_seq));
        std::map<std::string, std::string> headers;
        for (const auto& h : d.data.headers) headers[h.name] = h.value;
        BOOST_TEST(headers["x-last-error"] == "cannot parse order 777");
        BOOST_TEST(headers["x-attempts"] == "8");
        found = true;
      },
      caf::after(5s) >> [] {});
  BOOST_TEST(found);

  for (auto& actor : {producer, consumer}) self->send_exit(actor, caf::exit_reason::user_shutdown);
  self->send_exit(supervisor, caf::exit_reason::user_shutdown);
  self->send_exit(*dlq, caf::exit_reason::user_shutdown);
  self->wait_for(supervisor);
  self->wait_for(*dlq);
}

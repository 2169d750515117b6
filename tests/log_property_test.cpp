// Property: over random sequences of publish / ack / dead-letter / attempts /
// snapshot / reopen / crash, a log recovered from snapshot + tail holds exactly
// what a log recovered by full replay holds, and both equal the reference model.
// A crash with appends in flight recovers a prefix of them that includes every
// confirmed one.
//
// Trials and steps are bounded so the suite stays fast; WEIR_PROPERTY_TRIALS
// raises the number of trials for a soak run.

#include <boost/test/unit_test.hpp>

#include <atomic>
#include <cstdlib>
#include <optional>
#include <random>
#include <thread>

#include "fault_injection_fs.hpp"
#include "log_model.hpp"
#include "temp_dir.hpp"
#include "weir/runtime/checkpoint_log.hpp"

using namespace weir;
using namespace weir::testing;

namespace {

int trial_count() {
  if (const char* env = std::getenv("WEIR_PROPERTY_TRIALS")) return std::max(1, std::atoi(env));
  return 12;
}

/// One operation, as data, so the same sequence can be applied to two logs and the model.
struct operation {
  enum kind_type { publish, ack, dead_letter, attempts } kind;
  std::vector<std::string> payloads;
  std::uint64_t a = 0;
  std::uint64_t b = 0;
  std::uint64_t run = 1;  // attempts: ids a .. a + run - 1
};

operation random_operation(std::mt19937_64& random, const log_model& model, int step) {
  operation op;
  const auto roll = model.next_id == 1 ? 0 : random() % 10;
  if (roll < 4) {
    op.kind = operation::publish;
    op.payloads.resize(1 + random() % 4);
    for (auto& p : op.payloads) p = "m" + std::to_string(step) + std::string(random() % 120, 'x');
  } else if (roll < 7) {
    op.kind = operation::ack;
    op.a = 1 + random() % (model.next_id - 1);
    op.b = std::min(model.next_id, op.a + 1 + random() % 6);
  } else if (roll < 8) {
    op.kind = operation::dead_letter;
    op.a = 1 + random() % (model.next_id - 1);
  } else {
    // A run of ids, as a delivery batch records them; first deliveries (1) are
    // kept as ranges, others per id, so both kinds and their mixes matter.
    op.kind = operation::attempts;
    op.a = 1 + random() % (model.next_id - 1);
    op.b = random() % 2 == 0 ? 1 : 1 + random() % 9;
    op.run = 1 + random() % std::min<std::uint64_t>(6, model.next_id - op.a);
  }
  return op;
}

/// Starts the operation on the log; `done` fires when durable.
status start(checkpoint_log& log, const operation& op, durable_callback done) {
  switch (op.kind) {
    case operation::publish: {
      std::vector<outgoing_message> batch(op.payloads.size());
      for (std::size_t i = 0; i < batch.size(); ++i) batch[i].payload = op.payloads[i];
      auto first = log.publish(batch, std::move(done));
      return first ? status{} : first.error();
    }
    case operation::ack: {
      id_range range{op.a, op.b};
      return log.ack({&range, 1}, std::move(done));
    }
    case operation::dead_letter: {
      dead_letter_entry entry{op.a, 2, "poison", "", "dlq"};
      return log.dead_letter({&entry, 1}, std::move(done));
    }
    case operation::attempts: {
      std::vector<delivery_attempt> run;
      for (auto id = op.a; id < op.a + op.run; ++id) run.push_back({id, std::uint32_t(op.b)});
      return log.record_attempts(run, std::move(done));
    }
  }
  return {};
}

void apply(log_model& model, const operation& op) {
  switch (op.kind) {
    case operation::publish:
      model.publish(op.payloads);
      break;
    case operation::ack:
      model.ack(op.a, op.b);
      break;
    case operation::dead_letter:
      model.dead_letter(op.a);
      break;
    case operation::attempts:
      for (auto id = op.a; id < op.a + op.run; ++id) model.record_attempt(id, std::uint32_t(op.b));
      break;
  }
}

status run(checkpoint_log& log, const operation& op) {
  return wait_durable([&](durable_callback done) { return start(log, op, std::move(done)); });
}

}  // namespace

BOOST_AUTO_TEST_CASE(snapshot_plus_tail_equals_full_replay_equals_the_model) {
  const int trials = trial_count();
  std::uint64_t segments_reused = 0;  // over all trials: crashes must meet reused files too
  for (int trial = 0; trial < trials; ++trial) {
    std::mt19937_64 random(1000 + trial);
    temp_dir snapshot_dir;  // takes snapshots and compacts
    temp_dir replay_dir;    // never snapshots: recovery replays everything
    posix_file_system base;
    fault_injection_fs fs(base);
    log_options with_snapshots;
    with_snapshots.segment_bytes_max = 4096;
    with_snapshots.snapshot_every_bytes = 0;
    log_options full_replay = with_snapshots;

    log_model model;
    auto a = checkpoint_log::open(fs, snapshot_dir.path(), with_snapshots);
    auto b = checkpoint_log::open(fs, replay_dir.path(), full_replay);
    BOOST_REQUIRE(a && b);
    std::unique_ptr<checkpoint_log> log_a = std::move(*a);
    std::unique_ptr<checkpoint_log> log_b = std::move(*b);
    int snapshots = 0;
    int crashes = 0;

    for (int step = 0; step < 250; ++step) {
      const auto roll = random() % 100;
      if (roll < 6) {
        BOOST_REQUIRE(log_a->snapshot());
        ++snapshots;
      } else if (roll < 9) {
        // Clean restart of both.
        segments_reused += log_a->stats().segments_reused;
        log_a.reset();
        log_b.reset();
        log_a = *checkpoint_log::open(fs, snapshot_dir.path(), with_snapshots);
        log_b = *checkpoint_log::open(fs, replay_dir.path(), full_replay);
        BOOST_TEST(compare_with_model(*log_a, model) == "", "trial " << trial << " step " << step);
        BOOST_TEST(compare_with_model(*log_b, model) == "", "trial " << trial << " step " << step);
      } else if (roll < 12) {
        // Crash of the snapshotting log with a burst of appends in flight.
        std::vector<operation> burst;
        log_model scratch = model;
        for (int i = 0; i < 1 + int(random() % 8); ++i) {
          burst.push_back(random_operation(random, scratch, step));
          apply(scratch, burst.back());
        }
        auto confirmed = std::make_shared<std::atomic<std::size_t>>(0);
        for (std::size_t i = 0; i < burst.size(); ++i) {
          // Confirmations come in order; count the longest confirmed prefix.
          BOOST_REQUIRE(start(*log_a, burst[i], [confirmed, i](const status& s) {
            if (s && confirmed->load() == i) confirmed->store(i + 1);
          }));
        }
        if (random() % 2 == 0)
          std::this_thread::sleep_for(std::chrono::microseconds(random() % 500));
        // A clean cut at the synced size, a torn write, or a random half of the
        // unsynced pages kept.
        const auto cut = random() % 3;
        BOOST_REQUIRE(cut == 0   ? fs.crash()
                      : cut == 1 ? fs.crash(random() % 64)
                                 : fs.crash_keeping_random_pages(random()));
        segments_reused += log_a->stats().segments_reused;
        log_a.reset();
        const auto confirmed_before_crash = confirmed->load();
        fs.restart();
        log_b.reset();
        log_a = *checkpoint_log::open(fs, snapshot_dir.path(), with_snapshots);
        log_b = *checkpoint_log::open(fs, replay_dir.path(), full_replay);
        // Find the prefix of the burst that survived. Operations that change
        // nothing (acking an acked id) make several prefixes look alike: take
        // the longest that matches.
        log_model candidate = model;
        std::optional<std::size_t> survived;
        std::optional<log_model> survived_model;
        for (std::size_t k = 0;; ++k) {
          if (compare_with_model(*log_a, candidate).empty()) {
            survived = k;
            survived_model = candidate;
          }
          if (k == burst.size()) break;
          apply(candidate, burst[k]);
        }
        BOOST_REQUIRE_MESSAGE(survived, "trial " << trial << " step " << step
                                                 << ": recovered state is no prefix of the burst");
        BOOST_TEST(*survived >= confirmed_before_crash, "a confirmed append was lost");
        // The full-replay log gets the same surviving prefix.
        for (std::size_t i = 0; i < *survived; ++i) BOOST_REQUIRE(run(*log_b, burst[i]));
        model = *survived_model;
        ++crashes;
        BOOST_TEST(compare_with_model(*log_b, model) == "");
      } else {
        const auto op = random_operation(random, model, step);
        BOOST_REQUIRE(run(*log_a, op));
        BOOST_REQUIRE(run(*log_b, op));
        apply(model, op);
      }
    }
    // Final word: both recover to the same state as the model.
    segments_reused += log_a->stats().segments_reused;
    log_a.reset();
    log_b.reset();
    auto final_a = checkpoint_log::open(fs, snapshot_dir.path(), with_snapshots);
    auto final_b = checkpoint_log::open(fs, replay_dir.path(), full_replay);
    BOOST_REQUIRE(final_a && final_b);
    BOOST_TEST(compare_with_model(**final_a, model) == "", "trial " << trial);
    BOOST_TEST(compare_with_model(**final_b, model) == "", "trial " << trial);
    BOOST_TEST(!(*final_b)->recovery().snapshot_sequence.has_value());
    BOOST_TEST_MESSAGE("trial " << trial << ": " << snapshots << " snapshots, " << crashes
                                << " crashes, " << model.next_id - 1 << " messages");
  }
  BOOST_TEST_MESSAGE(segments_reused << " segments written over a spare file");
  BOOST_TEST(segments_reused > 0u);
}

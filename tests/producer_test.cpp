// The producer actor's side of the publish protocol, with the queue played by
// scoped actors: what it publishes, in which batches, what it sends again
// after a gap report or a rebind, and how its window holds the application back.

#include <boost/test/unit_test.hpp>

#include <atomic>
#include <chrono>
#include <optional>
#include <thread>

#include <caf/all.hpp>

#include "actor_test_config.hpp"
#include "weir/queue/producer.hpp"

using namespace weir;
using namespace std::chrono_literals;

namespace {

struct fixture {
  weir::testing::actor_test_config config;
  caf::actor_system system{config};
  caf::scoped_actor queue{system};  // the producer's queue: what it publishes arrives here
  caf::scoped_actor app{system};
  std::chrono::milliseconds resend_timeout = 60s;  // resends come from what the queue says

  static std::vector<message_data> messages(int from, int to) {
    std::vector<message_data> out;
    for (int i = from; i <= to; ++i) out.push_back({"", "m" + std::to_string(i), {}, 0});
    return out;
  }

  caf::actor producer(std::uint32_t batch_max, std::uint32_t window) {
    return producer(batch_max, window, queue);
  }

  caf::actor producer(std::uint32_t batch_max, std::uint32_t window, caf::scoped_actor& to) {
    producer_options options;
    options.producer_id = 7;
    options.batch_max = batch_max;
    options.window = window;
    options.resend_timeout = resend_timeout;
    return spawn_producer(system, caf::actor{to.ptr()}, options);
  }

  void send(const caf::actor& producer, int from, int to) {
    bool accepted = false;
    app->request(producer, 5s, send_atom::value, messages(from, to))
        .receive([&] { accepted = true; },
                 [&](const caf::error& e) { BOOST_FAIL(system.render(e)); });
    BOOST_REQUIRE(accepted);
  }

  /// The next publish that reaches `at`: its first sequence number and payloads.
  static std::pair<std::uint64_t, std::vector<std::string>> next_publish(caf::scoped_actor& at) {
    std::pair<std::uint64_t, std::vector<std::string>> out;
    at->receive(
        [&](publish_atom, const publish_batch& batch) {
          BOOST_CHECK_EQUAL(batch.producer_id, 7u);
          out.first = batch.first_seq;
          for (const auto& m : batch.messages) out.second.push_back(m.payload.str());
        },
        caf::after(5s) >> [] { BOOST_FAIL("no publish within 5 s"); });
    return out;
  }

  static void expect_no_publish(caf::scoped_actor& at) {
    at->receive([&](publish_atom, const publish_batch& batch) {
      BOOST_FAIL("unexpected publish from " << batch.first_seq);
    }, caf::after(100ms) >> [] {});
  }

  void confirm(const caf::actor& producer, std::uint64_t up_to) {
    queue->send(producer, confirm_atom::value, confirmation{"q", 7, 1, up_to});
  }

  producer_stats stats(const caf::actor& producer) {
    producer_stats out;
    app->request(producer, 5s, stats_atom::value)
        .receive([&](const producer_stats& s) { out = s; },
                 [&](const caf::error& e) { BOOST_FAIL(system.render(e)); });
    return out;
  }
};

using payloads = std::vector<std::string>;

}  // namespace

BOOST_FIXTURE_TEST_CASE(publishes_in_batches_and_resends_from_the_first_unconfirmed, fixture) {
  auto p = producer(3, 100);
  send(p, 1, 7);
  BOOST_CHECK((next_publish(queue) == std::pair{std::uint64_t{1}, payloads{"m1", "m2", "m3"}}));
  BOOST_CHECK((next_publish(queue) == std::pair{std::uint64_t{4}, payloads{"m4", "m5", "m6"}}));
  BOOST_CHECK((next_publish(queue) == std::pair{std::uint64_t{7}, payloads{"m7"}}));

  // Confirmed up to the middle of the second batch; then the queue reports a
  // gap: everything from the first unconfirmed goes again, in order, with the
  // same sequence numbers (the queue drops the confirmed m4 as a duplicate).
  confirm(p, 4);
  queue->send(p, protocol_error_atom::value, protocol_error{"q", "gap before 5"});
  BOOST_CHECK((next_publish(queue) == std::pair{std::uint64_t{4}, payloads{"m4", "m5", "m6"}}));
  BOOST_CHECK((next_publish(queue) == std::pair{std::uint64_t{7}, payloads{"m7"}}));
  expect_no_publish(queue);
  auto s = stats(p);
  BOOST_CHECK_EQUAL(s.accepted, 7u);
  BOOST_CHECK_EQUAL(s.confirmed, 4u);
  BOOST_CHECK_EQUAL(s.unconfirmed, 3u);
  BOOST_CHECK_EQUAL(s.resent, 3u);

  confirm(p, 7);
  bool flushed = false;
  app->request(p, 5s, flush_atom::value).receive([&] { flushed = true; }, [](caf::error&) {});
  BOOST_CHECK(flushed);
  BOOST_CHECK_EQUAL(stats(p).unconfirmed, 0u);
  app->send_exit(p, caf::exit_reason::user_shutdown);
}

BOOST_FIXTURE_TEST_CASE(a_fenced_epoch_stops_the_producer, fixture) {
  auto p = producer(3, 100);
  send(p, 1, 2);
  next_publish(queue);
  app->monitor(p);
  // The error's kind decides, not its wording.
  queue->send(p, protocol_error_atom::value,
              protocol_error{"q", "epoch 1 is older than 2", protocol_error_kind::fenced});
  bool stopped = false;
  app->receive([&](const caf::down_msg& down) { stopped = down.source == p; },
               caf::after(5s) >> [] {});
  BOOST_CHECK(stopped);
  if (!stopped) app->send_exit(p, caf::exit_reason::kill);  // so that the system can end
}

BOOST_FIXTURE_TEST_CASE(a_failed_store_is_resent_after_the_resend_timeout_not_at_once, fixture) {
  resend_timeout = 400ms;
  auto p = producer(3, 100);
  send(p, 1, 3);
  next_publish(queue);
  // A full disk, then the gap it leaves: resending at once would only hit the
  // same disk again, for every error.
  queue->send(p, protocol_error_atom::value,
              protocol_error{"q", "disk full", protocol_error_kind::store_failed});
  queue->send(p, protocol_error_atom::value,
              protocol_error{"q", "gap before 4", protocol_error_kind::refused});
  expect_no_publish(queue);
  BOOST_CHECK((next_publish(queue) == std::pair{std::uint64_t{1}, payloads{"m1", "m2", "m3"}}));
  BOOST_CHECK_EQUAL(stats(p).resent, 3u);
  app->send_exit(p, caf::exit_reason::user_shutdown);
}

BOOST_FIXTURE_TEST_CASE(a_full_window_holds_the_send_until_confirms_make_room, fixture) {
  auto p = producer(10, 4);
  send(p, 1, 4);
  BOOST_CHECK((next_publish(queue) ==
               std::pair{std::uint64_t{1}, payloads{"m1", "m2", "m3", "m4"}}));
  std::atomic<bool> answered{false};
  std::thread blocked([&] {
    caf::scoped_actor other{system};
    other->request(p, 10s, send_atom::value, messages(5, 6))
        .receive([&] { answered = true; }, [](caf::error&) {});
  });
  expect_no_publish(queue);
  BOOST_CHECK(!answered.load());
  confirm(p, 2);  // room for two
  BOOST_CHECK((next_publish(queue) == std::pair{std::uint64_t{5}, payloads{"m5", "m6"}}));
  blocked.join();
  BOOST_CHECK(answered.load());
  BOOST_CHECK_EQUAL(stats(p).unconfirmed, 4u);
  app->send_exit(p, caf::exit_reason::user_shutdown);
}

BOOST_FIXTURE_TEST_CASE(what_was_accepted_while_the_queue_was_down_goes_to_the_new_one, fixture) {
  std::optional<caf::scoped_actor> first{system};
  auto p = producer(2, 4096, *first);
  send(p, 1, 3);
  BOOST_CHECK((next_publish(*first) == std::pair{std::uint64_t{1}, payloads{"m1", "m2"}}));
  BOOST_CHECK((next_publish(*first) == std::pair{std::uint64_t{3}, payloads{"m3"}}));
  (*first)->send(p, confirm_atom::value, confirmation{"q", 7, 1, 1});
  first.reset();  // the queue is gone: the producer holds what it has
  // Whether the producer sees the queue down before m4 or after (and sends m4
  // into the void), the rebind sends everything unconfirmed.
  send(p, 4, 4);
  app->send(p, rebind_atom::value, caf::actor{queue.ptr()});
  BOOST_CHECK((next_publish(queue) == std::pair{std::uint64_t{1}, payloads{"m1", "m2"}}));
  BOOST_CHECK((next_publish(queue) == std::pair{std::uint64_t{3}, payloads{"m3"}}));
  BOOST_CHECK((next_publish(queue) == std::pair{std::uint64_t{4}, payloads{"m4"}}));
  expect_no_publish(queue);
  auto s = stats(p);
  BOOST_CHECK_EQUAL(s.confirmed, 1u);
  BOOST_CHECK_EQUAL(s.unconfirmed, 3u);
  app->send_exit(p, caf::exit_reason::user_shutdown);
}

// The blocking client facade against a node in this process, over real
// ZeroMQ sockets on loopback: publish with confirms (blocking and async),
// consume with explicit acks under a credit, nack to requeue or dead-letter,
// and the errors for an unknown queue and an unreachable node.

#include <boost/test/unit_test.hpp>

#include <atomic>
#include <chrono>
#include <future>
#include <thread>

#include <caf/all.hpp>

#include "actor_test_config.hpp"
#include "temp_dir.hpp"
#include "test_helpers.hpp"
#include "weir/node/node.hpp"
#include "weir/client/client.hpp"

using namespace weir;
using namespace weir::testing;
using namespace std::chrono_literals;

namespace {

struct fixture {
  temp_dir dir;
  posix_file_system fs;
  actor_test_config config;
  caf::actor_system system{config};
  std::unique_ptr<node> served;

  fixture() {
    node_options options;
    options.listen = "tcp://127.0.0.1:0";
    options.data_dir = dir.file("node");
    options.link.node_id = "test-node";
    node_queue_options q;
    q.queue.name = "jobs";
    q.queue.ack_timeout = 10s;
    q.queue.retry_backoff = backoff_policy::fixed(0ms);
    q.queue.max_deliveries = 5;
    q.dead_letter_queue = "jobs.dlq";
    options.queues.push_back(q);
    auto started = node::start(system, fs, options);
    BOOST_REQUIRE_MESSAGE(started, started.error().to_string());
    served = std::move(*started);
  }

  ~fixture() { (void)served->stop(); }

  client connect() {
    client_options options;
    options.connect_timeout = 5s;
    options.publish_timeout = 10s;
    auto connected = client::connect(served->address(), options);
    BOOST_REQUIRE_MESSAGE(connected, connected.error().to_string());
    return std::move(*connected);
  }

  queue_stats stats(const std::string& name = "jobs") {
    auto queue = served->queue(name);
    BOOST_REQUIRE(queue);
    caf::scoped_actor self{system};
    queue_stats out;
    self->request(*queue, 5s, stats_atom::value)
        .receive([&](const queue_stats& s) { out = s; },
                 [&](const caf::error& e) { BOOST_FAIL(system.render(e)); });
    return out;
  }
};

received_message take(subscription& s) {
  auto got = s.next(5s);
  BOOST_REQUIRE_MESSAGE(got, got.error().to_string());
  return std::move(*got);
}

}  // namespace

BOOST_FIXTURE_TEST_SUITE(client_suite, fixture)

BOOST_AUTO_TEST_CASE(publish_returns_once_the_node_stored_the_message) {
  auto c = connect();
  auto published = c.publish("jobs", client_message{"one", "k", {}});
  BOOST_REQUIRE_MESSAGE(published, published.to_string());
  std::vector<client_message> batch{{"two", "", {}}, {"three", "", {}}};
  published = c.publish("jobs", std::move(batch));
  BOOST_REQUIRE_MESSAGE(published, published.to_string());
  // Confirmed means stored: the queue counts all three before anyone consumes.
  const auto s = stats();
  BOOST_TEST(s.published == 3u);
  BOOST_TEST(s.ready == 3u);
}

BOOST_AUTO_TEST_CASE(consumed_messages_carry_body_key_headers_and_attempt) {
  auto c = connect();
  const std::string body("bin\0ary\xff", 8);
  auto published = c.publish("jobs", client_message{body, "key-1", {{"a", "1"}, {"b", "2"}}});
  BOOST_REQUIRE_MESSAGE(published, published.to_string());
  auto s = c.subscribe("jobs", 4);
  BOOST_REQUIRE_MESSAGE(s, s.error().to_string());
  auto m = take(*s);
  BOOST_TEST(m.body == body);
  BOOST_TEST(m.key == "key-1");
  BOOST_REQUIRE_EQUAL(m.headers.size(), 2u);
  BOOST_TEST(m.headers[1].first == "b");
  BOOST_TEST(m.headers[1].second == "2");
  BOOST_TEST(m.attempt == 1u);
  BOOST_TEST(m.publish_time_ns > 0);
  BOOST_REQUIRE(s->ack(m.id));
  BOOST_TEST(s->ack(m.id).code() == errc::invalid_argument);  // twice is a caller's mistake
  s->close();
  BOOST_TEST(eventually([&] { return stats().acked == 1u; }));
}

BOOST_AUTO_TEST_CASE(no_more_than_the_credit_is_held_unsettled) {
  auto c = connect();
  std::vector<client_message> batch;
  for (int i = 0; i < 5; ++i) batch.push_back({std::to_string(i), "", {}});
  BOOST_REQUIRE(c.publish("jobs", std::move(batch)));
  auto s = c.subscribe("jobs", 2);
  BOOST_REQUIRE(s);
  auto first = take(*s);
  auto second = take(*s);
  BOOST_TEST(s->next(300ms).error().code() == errc::timed_out);
  BOOST_REQUIRE(s->ack(first.id));
  auto third = take(*s);
  BOOST_TEST(third.body == "2");
  BOOST_REQUIRE(s->ack(second.id));
  BOOST_REQUIRE(s->ack(third.id));
}

BOOST_AUTO_TEST_CASE(a_requeued_message_comes_back_with_attempt_two) {
  auto c = connect();
  BOOST_REQUIRE(c.publish("jobs", client_message{"retry me", "", {}}));
  auto s = c.subscribe("jobs", 1);
  BOOST_REQUIRE(s);
  auto m = take(*s);
  BOOST_REQUIRE(s->nack(m.id, nack_action::requeue, "not yet"));
  auto again = take(*s);
  BOOST_TEST(again.id == m.id);
  BOOST_TEST(again.attempt == 2u);
  BOOST_REQUIRE(s->ack(again.id));
}

BOOST_AUTO_TEST_CASE(a_dead_lettered_message_lands_in_the_dead_letter_queue_with_its_reason) {
  auto c = connect();
  BOOST_REQUIRE(c.publish("jobs", client_message{"poison", "", {}}));
  auto s = c.subscribe("jobs", 1);
  BOOST_REQUIRE(s);
  auto m = take(*s);
  BOOST_REQUIRE(s->nack(m.id, nack_action::dead_letter, "price is not a number"));
  auto dead = c.subscribe("jobs.dlq", 1);
  BOOST_REQUIRE_MESSAGE(dead, dead.error().to_string());
  auto d = take(*dead);
  BOOST_TEST(d.body == "poison");
  // The queue says why it moved the message; the nack's reason is the last error.
  bool reason_found = false;
  for (const auto& [name, value] : d.headers) {
    if (name == "x-last-error" && value == "price is not a number") reason_found = true;
  }
  BOOST_TEST(reason_found);
  BOOST_REQUIRE(dead->ack(d.id));
}

BOOST_AUTO_TEST_CASE(async_publish_calls_back_once_confirmed) {
  auto c = connect();
  std::promise<status> outcome;
  c.publish_async("jobs", {{"later", "", {}}},
                  [&outcome](const status& result) { outcome.set_value(result); });
  auto future = outcome.get_future();
  BOOST_REQUIRE(future.wait_for(10s) == std::future_status::ready);
  auto result = future.get();
  BOOST_REQUIRE_MESSAGE(result, result.to_string());
  BOOST_TEST(stats().published == 1u);
}

BOOST_AUTO_TEST_CASE(async_publishes_keep_their_order_and_threads_may_share_a_client) {
  auto c = connect();
  std::atomic<int> confirmed{0};
  std::atomic<int> failed{0};
  auto count = [&](const status& result) { ++(result ? confirmed : failed); };
  for (int i = 0; i < 50; ++i) c.publish_async("jobs", {{std::to_string(i), "", {}}}, count);
  // Blocking publishes from other threads meanwhile: each is confirmed on its own.
  std::vector<std::thread> threads;
  for (int t = 0; t < 3; ++t) {
    threads.emplace_back([&c, t] {
      for (int i = 0; i < 10; ++i) {
        BOOST_CHECK(c.publish("jobs", client_message{"t" + std::to_string(t), "", {}}));
      }
    });
  }
  for (auto& t : threads) t.join();
  BOOST_REQUIRE(eventually([&] { return confirmed.load() == 50; }));
  BOOST_TEST(failed.load() == 0);
  auto s = c.subscribe("jobs", 100);
  BOOST_REQUIRE(s);
  int next_async = 0;
  int from_threads = 0;
  for (int i = 0; i < 80; ++i) {
    auto m = take(*s);
    if (m.body[0] == 't') {
      ++from_threads;
    } else {
      BOOST_TEST(m.body == std::to_string(next_async));
      ++next_async;
    }
    BOOST_REQUIRE(s->ack(m.id));
  }
  BOOST_TEST(next_async == 50);
  BOOST_TEST(from_threads == 30);
}

BOOST_AUTO_TEST_CASE(an_unknown_queue_is_an_error_naming_it_and_the_node) {
  auto c = connect();
  auto published = c.publish("no-such-queue", client_message{"x", "", {}});
  BOOST_TEST(published.code() == errc::not_found);
  BOOST_TEST(published.message().find("no-such-queue") != std::string::npos);
  BOOST_TEST(published.message().find(served->address()) != std::string::npos);
  auto s = c.subscribe("no-such-queue", 1);
  BOOST_REQUIRE(!s);
  BOOST_TEST(s.error().code() == errc::not_found);
  // The client stays usable for the queues that exist.
  BOOST_REQUIRE(c.publish("jobs", client_message{"fine", "", {}}));
}

BOOST_AUTO_TEST_CASE(an_unreachable_node_is_a_timeout_naming_its_address) {
  client_options options;
  options.connect_timeout = 300ms;
  const std::string nowhere = "tcp://127.0.0.1:9";  // discard: nothing listens there
  auto connected = client::connect(nowhere, options);
  BOOST_REQUIRE(!connected);
  BOOST_TEST(connected.error().code() == errc::timed_out);
  BOOST_TEST(connected.error().message().find(nowhere) != std::string::npos);
}

BOOST_AUTO_TEST_CASE(a_publish_the_node_never_confirms_times_out) {
  client_options options;
  options.connect_timeout = 5s;
  options.publish_timeout = 500ms;
  auto c = client::connect(served->address(), options);
  BOOST_REQUIRE(c);
  BOOST_REQUIRE(c->publish("jobs", client_message{"stored", "", {}}));
  BOOST_REQUIRE(served->stop());
  const auto start = std::chrono::steady_clock::now();
  auto late = c->publish("jobs", client_message{"unconfirmed", "", {}});
  BOOST_TEST(late.code() == errc::timed_out);
  BOOST_TEST(late.message().find("may still store it") != std::string::npos);
  BOOST_TEST((std::chrono::steady_clock::now() - start < 5s));
}

BOOST_AUTO_TEST_CASE(a_closed_client_refuses_further_calls) {
  auto c = connect();
  c.close();
  BOOST_TEST(c.publish("jobs", client_message{"x", "", {}}).code() == errc::closed);
  BOOST_TEST(c.subscribe("jobs", 1).error().code() == errc::closed);
}

BOOST_AUTO_TEST_SUITE_END()

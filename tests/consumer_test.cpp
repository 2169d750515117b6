// The consumer actor's side of the delivery protocol, with the queue played by
// a scoped actor: the order of its hooks and handlers, and what it acks and nacks.

#include <boost/test/unit_test.hpp>

#include <chrono>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include <caf/all.hpp>

#include "actor_test_config.hpp"
#include "weir/queue/consumer.hpp"

using namespace weir;
using namespace std::chrono_literals;

namespace {

delivery_batch batch_of(std::uint64_t first, std::uint64_t last) {
  delivery_batch batch;
  batch.queue = "q";
  for (auto id = first; id <= last; ++id) {
    delivery d;
    d.id = id;
    d.attempt = 1;
    d.data.payload = "m" + std::to_string(id);
    batch.deliveries.push_back(std::move(d));
  }
  return batch;
}

}  // namespace

BOOST_AUTO_TEST_CASE(each_batch_runs_its_hook_then_its_handlers_then_acks_what_succeeded) {
  weir::testing::actor_test_config config;
  caf::actor_system system{config};
  caf::scoped_actor queue{system};
  // Written on the consumer's thread, read here only after its ack arrived.
  auto events = std::make_shared<std::vector<std::string>>();
  consumer_options options;
  options.credit = 16;
  options.before_batch = [events] { events->push_back("batch"); };
  options.before_ack = [events] { events->push_back("ack"); };
  auto consumer =
      spawn_consumer(system, caf::actor{queue.ptr()}, options, [events](const delivery& d) {
        events->push_back(d.data.payload.str());
        if (d.id == 5) throw std::runtime_error("five fails");
      });
  queue->receive([](subscribe_atom, std::int64_t credit) { BOOST_TEST(credit == 16); },
                 caf::after(5s) >> [] { BOOST_FAIL("no subscribe"); });

  auto expect_ack = [&](std::uint64_t begin, std::uint64_t end) {
    queue->receive(
        [&](ack_atom, const std::vector<id_range>& ranges) {
          BOOST_REQUIRE_EQUAL(ranges.size(), 1u);
          BOOST_TEST(ranges[0].begin == begin);
          BOOST_TEST(ranges[0].end == end);
        },
        caf::after(5s) >> [] { BOOST_FAIL("no ack"); });
  };
  queue->send(consumer, deliver_atom::value, batch_of(1, 3));
  expect_ack(1, 4);
  BOOST_TEST(*events == (std::vector<std::string>{"batch", "m1", "m2", "m3", "ack"}));

  events->clear();
  queue->send(consumer, deliver_atom::value, batch_of(4, 5));
  queue->receive(
      [&](nack_atom, const nack_request& nack) {
        BOOST_TEST(nack.ids == std::vector<std::uint64_t>{5});
        BOOST_TEST(nack.reason == "five fails");
      },
      caf::after(5s) >> [] { BOOST_FAIL("no nack"); });
  expect_ack(4, 5);
  BOOST_TEST(*events == (std::vector<std::string>{"batch", "m4", "m5", "ack"}));
  queue->send_exit(consumer, caf::exit_reason::user_shutdown);
}

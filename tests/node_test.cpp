// A node and remote queues in one process, over real ZeroMQ sockets on
// loopback: the queue protocol end to end, unknown queues, a lost peer's
// deliveries going to another consumer, dead letters listed and replayed, a
// node restarted under its producers and consumers, a full disk, and queues
// crashing inside a node (restarted once; a restart storm ends the serving),
// and a frame that carries several publishes.

#include <boost/test/unit_test.hpp>

#include <atomic>
#include <chrono>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <thread>

#include <caf/all.hpp>

#include "actor_test_config.hpp"
#include "fault_injection_fs.hpp"
#include "temp_dir.hpp"
#include "test_helpers.hpp"
#include "weir/queue/consumer.hpp"
#include "weir/node/node.hpp"
#include "weir/queue/producer.hpp"
#include "weir/node/remote_queue.hpp"
#include "weir/schema/wire.capnp.h"
#include "weir/transport/frame.hpp"
#include "weir/transport/link.hpp"

using namespace weir;
using namespace weir::testing;
using namespace std::chrono_literals;

namespace {

/// Counts what a consumer handled, by payload.
struct tally {
  std::mutex mutex;
  std::map<std::string, int> seen;
  std::size_t unique() {
    std::lock_guard lock(mutex);
    return seen.size();
  }
  void add(const std::string& payload) {
    std::lock_guard lock(mutex);
    ++seen[payload];
  }
};

struct fixture {
  temp_dir dir;
  posix_file_system fs;
  actor_test_config config;
  caf::actor_system system{config};
  caf::scoped_actor self{system};
  std::vector<caf::actor> actors;  // stopped at the end, before the node
  std::deque<tally> tallies;       // outlive the consumers that count into them
  std::uint32_t restarts_max = 5;  // the node's restart intensity, per 10 s

  ~fixture() {
    for (auto& a : actors) self->send_exit(a, caf::exit_reason::user_shutdown);
    for (auto& a : actors) self->wait_for(a);
  }

  transport::link_options fast_link(const std::string& id) {
    transport::link_options link;
    link.node_id = id;
    link.heartbeat_interval = 50ms;
    link.heartbeat_timeout = 500ms;
    return link;
  }

  std::unique_ptr<node> start_node(std::uint32_t max_deliveries = 0,
                                   const std::string& listen = "tcp://127.0.0.1:0",
                                   file_system* on = nullptr) {
    node_options options;
    options.listen = listen;
    options.data_dir = dir.file("node");
    options.link = fast_link("test-node");
    options.restarts_max = restarts_max;
    node_queue_options q;
    q.queue.name = "jobs";
    q.queue.ack_timeout = 10s;
    q.queue.retry_backoff = backoff_policy::fixed(0ms);
    q.queue.max_deliveries = max_deliveries;
    if (max_deliveries > 0) q.dead_letter_queue = "jobs.dlq";
    options.queues.push_back(q);
    auto started = node::start(system, on != nullptr ? *on : fs, options);
    BOOST_REQUIRE_MESSAGE(started, started.error().to_string());
    return std::move(*started);
  }

  caf::actor remote(const std::string& address, const std::string& queue = "jobs") {
    remote_queue_options options;
    options.address = address;
    options.queue = queue;
    options.link = fast_link("client");
    options.request_timeout = 3s;
    auto proxy = spawn_remote_queue(system, options);
    BOOST_REQUIRE_MESSAGE(proxy, proxy.error().to_string());
    actors.push_back(*proxy);
    return *proxy;
  }

  caf::actor producer(const caf::actor& queue, std::uint64_t id) {
    producer_options options;
    options.producer_id = id;
    options.batch_max = 64;
    options.window = 512;
    options.resend_timeout = 500ms;
    auto p = spawn_producer(system, queue, options);
    actors.push_back(p);
    return p;
  }

  /// A consumer of `address`'s jobs queue; what it handles is counted in the tally returned.
  tally& consume(const std::string& address) {
    auto& got = tallies.emplace_back();
    actors.push_back(spawn_consumer(system, remote(address), consumer_options{},
                                    [&got](const delivery& d) { got.add(d.data.payload.str()); }));
    return got;
  }

  void send_all(const caf::actor& producer, std::uint64_t first, std::uint64_t last) {
    std::vector<message_data> batch;
    for (auto k = first; k <= last; ++k) batch.push_back({"", std::to_string(k), {}, 0});
    self->request(producer, 10s, send_atom::value, std::move(batch))
        .receive([] {}, [](const caf::error& e) { BOOST_FAIL("send: " << to_string(e)); });
  }

  void flush(const caf::actor& producer) {
    self->request(producer, 20s, flush_atom::value)
        .receive([] {}, [](const caf::error& e) { BOOST_FAIL("flush: " << to_string(e)); });
  }

  queue_stats stats(node& n, const std::string& name = "jobs") {
    auto queue = n.queue(name);
    BOOST_REQUIRE(queue);
    queue_stats out;
    self->request(*queue, 5s, stats_atom::value)
        .receive([&](const queue_stats& s) { out = s; },
                 [](const caf::error& e) { BOOST_FAIL("stats: " << to_string(e)); });
    return out;
  }
};


}  // namespace

BOOST_FIXTURE_TEST_SUITE(node_tests, fixture)

BOOST_AUTO_TEST_CASE(messages_flow_from_a_remote_producer_to_a_remote_consumer) {
  auto n = start_node();
  auto p = producer(remote(n->address()), 7);
  send_all(p, 1, 2000);
  flush(p);
  BOOST_CHECK_EQUAL(stats(*n).confirmed, 2000u);

  auto& got = consume(n->address());
  BOOST_REQUIRE(eventually([&] { return got.unique() == 2000; }));
  BOOST_REQUIRE(eventually([&] { return stats(*n).acked == 2000; }));
  BOOST_CHECK_EQUAL(got.seen.count("1"), 1u);
  BOOST_CHECK_EQUAL(got.seen.count("2000"), 1u);
  BOOST_CHECK_EQUAL(stats(*n).ready, 0u);
}

BOOST_AUTO_TEST_CASE(an_unknown_queue_is_a_clear_error_and_a_counter) {
  auto n = start_node();
  auto proxy = remote(n->address(), "no-such-queue");
  std::string error;
  bool unknown = false;
  self->request(proxy, 5s, list_atom::value, std::uint64_t{0}, std::uint32_t{10})
      .receive([](const std::vector<delivery>&) { BOOST_FAIL("listed an unknown queue"); },
               [&](const caf::error& e) {
                 error = system.render(e);
                 unknown = is_unknown_queue(e);
               });
  BOOST_TEST_MESSAGE("error: " << error);
  BOOST_CHECK(error.find("no queue named 'no-such-queue'") != std::string::npos);
  BOOST_CHECK(unknown);  // by its code, not its text
  BOOST_CHECK_GE(n->stats().unknown_queue, 1u);
  // The node keeps serving its real queue.
  auto p = producer(remote(n->address()), 8);
  send_all(p, 1, 10);
  flush(p);
  BOOST_CHECK_EQUAL(stats(*n).confirmed, 10u);
}

BOOST_AUTO_TEST_CASE(a_lost_consumer_s_deliveries_go_to_another_at_once) {
  auto n = start_node();
  auto p = producer(remote(n->address()), 9);
  send_all(p, 1, 100);
  flush(p);

  // The first consumer takes deliveries and never acks them.
  auto first_remote = remote(n->address());
  std::atomic<int> held{0};
  auto hoarder = system.spawn(
      [&](caf::event_based_actor* me, caf::actor queue) -> caf::behavior {
        me->send(queue, subscribe_atom::value, std::int64_t{40});
        return {[&](deliver_atom, const delivery_batch& b) { held += b.deliveries.size(); }};
      },
      first_remote);
  BOOST_REQUIRE(eventually([&] { return held.load() == 40; }));
  BOOST_REQUIRE(eventually([&] { return stats(*n).unacked == 40; }));
  // Credit bounds a remote consumer too: 60 more are ready, none arrives.
  std::this_thread::sleep_for(200ms);
  BOOST_CHECK_EQUAL(held.load(), 40);
  BOOST_CHECK_EQUAL(stats(*n).ready, 60u);

  auto& got = consume(n->address());
  BOOST_REQUIRE(eventually([&] { return got.unique() == 60; }));

  // The first consumer's process goes away: its connection closes.
  const auto lost_at = std::chrono::steady_clock::now();
  self->send_exit(hoarder, caf::exit_reason::kill);
  self->send_exit(first_remote, caf::exit_reason::kill);
  BOOST_REQUIRE(eventually([&] { return got.unique() == 100; }));
  const auto took = std::chrono::steady_clock::now() - lost_at;
  BOOST_TEST_MESSAGE("redelivered to the second consumer after "
                     << std::chrono::duration_cast<std::chrono::milliseconds>(took).count()
                     << " ms");
  BOOST_CHECK(took < 2s);  // heartbeat timeout is 500 ms here
  BOOST_REQUIRE(eventually([&] { return stats(*n).acked == 100; }));
}

BOOST_AUTO_TEST_CASE(dead_letters_are_listed_and_replayed_over_the_wire) {
  auto n = start_node(2);
  auto p = producer(remote(n->address()), 10);
  send_all(p, 1, 20);
  flush(p);
  auto failing = std::make_shared<std::atomic<bool>>(true);  // the consumer may outlive the case
  auto& got = tallies.emplace_back();
  auto handle = [failing, &got](const delivery& d) {
    if (*failing && d.data.payload == "13") throw std::runtime_error("bad 13");
    got.add(d.data.payload.str());
  };
  auto c = spawn_consumer(system, remote(n->address()), consumer_options{}, handle);
  actors.push_back(c);
  BOOST_REQUIRE(eventually([&] { return got.unique() == 19; }));
  BOOST_REQUIRE(eventually([&] { return stats(*n, "jobs.dlq").ready == 1; }));

  auto proxy = remote(n->address());
  std::vector<delivery> dead;
  self->request(proxy, 5s, list_atom::value, dead_letters_atom::value, std::uint64_t{0},
                std::uint32_t{10})
      .receive([&](const std::vector<delivery>& d) { dead = d; },
               [&](const caf::error& e) { BOOST_FAIL("list: " << system.render(e)); });
  BOOST_REQUIRE_EQUAL(dead.size(), 1u);
  BOOST_CHECK_EQUAL(dead[0].data.payload, "13");
  bool has_reason = false;
  for (const auto& h : dead[0].data.headers)
    has_reason |= h.name == "x-last-error" && h.value == "bad 13";
  BOOST_CHECK(has_reason);

  *failing = false;
  std::uint64_t moved = 0;
  self->request(proxy, 5s, replay_atom::value, std::uint32_t{10})
      .receive([&](std::uint64_t m) { moved = m; },
               [&](const caf::error& e) { BOOST_FAIL("replay: " << system.render(e)); });
  BOOST_CHECK_EQUAL(moved, 1u);
  BOOST_REQUIRE(eventually([&] { return got.unique() == 20; }));
}

BOOST_AUTO_TEST_CASE(a_restarted_node_gets_resends_and_keeps_every_confirmed_message) {
  auto n = start_node();
  const auto address = n->address();
  auto queue = remote(address);
  auto confirmed = std::make_shared<std::atomic<std::uint64_t>>(0);  // the producer outlives it
  producer_options options;
  options.producer_id = 11;
  options.batch_max = 50;
  options.window = 200;
  options.resend_timeout = 300ms;
  options.on_confirmed = [confirmed](std::uint64_t up_to) { *confirmed = up_to; };
  auto p = spawn_producer(system, queue, options);
  actors.push_back(p);
  send_all(p, 1, 500);
  BOOST_REQUIRE(eventually([&] { return confirmed->load() > 0; }));
  BOOST_CHECK(n->stop());
  n.reset();
  n = start_node(0, address);  // same data, same port
  send_all(p, 501, 1000);
  flush(p);
  BOOST_CHECK_EQUAL(confirmed->load(), 1000u);
  auto s = stats(*n);
  BOOST_CHECK_EQUAL(s.ready, 1000u);  // every message exactly once (de-duplicated resends)
}

BOOST_AUTO_TEST_CASE(a_full_disk_under_a_node_loses_nothing_and_publishing_resumes) {
  fault_injection_fs disk(fs);  // declared before the node, so it outlives it
  auto n = start_node(0, "tcp://127.0.0.1:0", &disk);
  auto p = producer(remote(n->address()), 11);
  send_all(p, 1, 100);
  flush(p);

  // The disk fills: publishes fail, are counted, and nothing is confirmed.
  disk.fail_writes_after(0, errc::no_space);
  send_all(p, 101, 300);
  BOOST_REQUIRE(eventually([&] { return stats(*n).storage_errors >= 1; }));
  std::this_thread::sleep_for(300ms);
  BOOST_CHECK_EQUAL(stats(*n).confirmed, 100u);

  // Space is back: the producer's resends are stored, once each.
  disk.clear_faults();
  flush(p);
  BOOST_CHECK_EQUAL(stats(*n).published, 300u);
  // It waited for its resend timeout between tries: resending on every error
  // into the full disk had it send the 200 messages hundreds of times.
  producer_stats sent;
  self->request(p, 5s, stats_atom::value)
      .receive([&](const producer_stats& s) { sent = s; },
               [](const caf::error& e) { BOOST_FAIL("producer stats: " << to_string(e)); });
  BOOST_TEST_MESSAGE("resent " << sent.resent);
  BOOST_CHECK_LE(sent.resent, 5 * 200u);
  auto& got = consume(n->address());
  BOOST_REQUIRE(eventually([&] { return got.unique() == 300; }));
  BOOST_REQUIRE(eventually([&] { return stats(*n).acked == 300; }));
  std::lock_guard lock(got.mutex);
  for (std::uint64_t k = 1; k <= 300; ++k) BOOST_CHECK_EQUAL(got.seen[std::to_string(k)], 1);
}

BOOST_AUTO_TEST_CASE(a_failed_fdatasync_restarts_the_queue_and_loses_nothing) {
  // A failed fdatasync closes the log until it is reopened. The queue stops and
  // its supervisor starts it again on a fresh open: the node serves on, by
  // itself, instead of refusing every publish until someone restarts it.
  fault_injection_fs disk(fs);  // declared before the node, so it outlives it
  auto n = start_node(0, "tcp://127.0.0.1:0", &disk);
  auto p = producer(remote(n->address()), 14);
  // Acks the failed log refused come back as redeliveries of the same id
  // (at least once); a message stored twice would come with a second id.
  struct ids_by_payload {
    std::mutex mutex;
    std::map<std::string, std::set<std::uint64_t>> ids;
  };
  auto got = std::make_shared<ids_by_payload>();
  actors.push_back(spawn_consumer(system, remote(n->address()), consumer_options{},
                                  [got](const delivery& d) {
                                    std::lock_guard lock(got->mutex);
                                    got->ids[d.data.payload.str()].insert(d.id);
                                  }));
  auto received = [got] {
    std::lock_guard lock(got->mutex);
    return got->ids.size();
  };
  send_all(p, 1, 100);
  flush(p);
  auto before = n->queue("jobs");
  BOOST_REQUIRE(before);

  disk.fail_syncs(1, errc::io_error);
  send_all(p, 101, 300);
  BOOST_REQUIRE(eventually([&] {
    auto now = n->queue("jobs");
    return now && *now != *before;
  }));
  flush(p);  // what was not confirmed is resent to the restarted queue
  BOOST_REQUIRE(eventually([&] { return received() == 300; }));
  BOOST_REQUIRE(eventually([&] {
    auto s = stats(*n);
    return s.ready == 0 && s.unacked == 0;
  }));
  BOOST_CHECK_GE(stats(*n).storage_errors, 1u);
  std::lock_guard lock(got->mutex);
  for (std::uint64_t k = 1; k <= 300; ++k) {
    BOOST_CHECK_MESSAGE(got->ids[std::to_string(k)].size() == 1,
                        "message " << k << " stored under " << got->ids[std::to_string(k)].size()
                                   << " ids");
  }
}

BOOST_AUTO_TEST_CASE(a_queue_killed_inside_a_node_is_restarted_and_remote_clients_carry_on) {
  auto n = start_node();
  auto p = producer(remote(n->address()), 12);
  auto& got = consume(n->address());
  send_all(p, 1, 300);
  flush(p);
  BOOST_REQUIRE(eventually([&] { return got.unique() == 300; }));
  BOOST_REQUIRE(eventually([&] { return stats(*n).acked == 300; }));

  auto before = n->queue("jobs");
  BOOST_REQUIRE(before);
  self->send_exit(*before, caf::exit_reason::kill);
  BOOST_REQUIRE(eventually([&] {
    auto now = n->queue("jobs");
    return now && *now != *before;
  }));

  // The same producer and consumer, through the same connections, carry on.
  send_all(p, 301, 600);
  flush(p);
  BOOST_REQUIRE(eventually([&] { return got.unique() == 600; }));
  BOOST_REQUIRE(eventually([&] {
    auto s = stats(*n);
    return s.ready == 0 && s.unacked == 0;
  }));
  // The counters go on across the restart instead of starting again at 0. (An
  // ack counted but not yet written at the kill is counted again: at least 600.)
  BOOST_REQUIRE(eventually([&] { return stats(*n).acked >= 600; }));
  BOOST_CHECK_EQUAL(stats(*n).published, 600u);
  BOOST_CHECK_EQUAL(stats(*n).consumers, 1u);
}

BOOST_AUTO_TEST_CASE(a_node_whose_queues_keep_failing_stops_serving_with_a_clear_error) {
  restarts_max = 2;  // configured below the default of 5: three crashes are too many
  auto n = start_node();
  auto p = producer(remote(n->address()), 13);
  send_all(p, 1, 10);
  flush(p);
  auto supervisor = n->supervisor();
  BOOST_REQUIRE(supervisor);
  self->monitor(supervisor);
  for (int crash = 1; crash <= 3; ++crash) {
    auto queue = n->queue("jobs");
    BOOST_REQUIRE(queue);
    self->send_exit(*queue, caf::exit_reason::kill);
    if (crash == 3) break;
    BOOST_REQUIRE(eventually([&] {  // restarted: the next crash is a crash of the new one
      auto now = n->queue("jobs");
      return now && *now != *queue;
    }));
  }
  bool gave_up = false;
  self->receive([&](const caf::down_msg& down) { gave_up = down.source == supervisor; },
                caf::after(5s) >> [] {});
  BOOST_REQUIRE(gave_up);

  // A client asking now gets an error, not silence.
  std::string error;
  self->request(remote(n->address()), 5s, list_atom::value, std::uint64_t{0}, std::uint32_t{10})
      .receive([](const std::vector<delivery>&) { BOOST_FAIL("listed a queue that gave up"); },
               [&](const caf::error& e) { error = system.render(e); });
  BOOST_TEST_MESSAGE("error: " << error);
  BOOST_CHECK(error.find("list of jobs failed") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(a_remote_producer_of_an_older_epoch_is_fenced_and_stops) {
  auto n = start_node();
  producer_options newer;
  newer.producer_id = 30;
  newer.epoch = 2;
  auto current = spawn_producer(system, remote(n->address()), newer);
  actors.push_back(current);
  send_all(current, 1, 10);
  flush(current);

  producer_options older = newer;
  older.epoch = 1;  // an incarnation the queue has seen replaced
  auto stale = spawn_producer(system, remote(n->address()), older);
  self->monitor(stale);
  self->request(stale, 10s, send_atom::value, std::vector<message_data>{{"", "late", {}, 0}})
      .receive([] {}, [](const caf::error&) {});
  bool stopped = false;
  self->receive([&](const caf::down_msg& down) { stopped = down.source == stale; },
                caf::after(10s) >> [] {});
  BOOST_CHECK(stopped);  // told over the wire by its code, fencedEpoch
  if (!stopped) self->send_exit(stale, caf::exit_reason::kill);
  BOOST_CHECK_EQUAL(stats(*n).published, 10u);
}

BOOST_AUTO_TEST_CASE(a_frame_carrying_several_publishes_stores_and_confirms_each) {
  // Our clients send one publish per frame; the protocol allows many, and then
  // the node copies the bodies out instead of sharing the frame.
  auto n = start_node();
  auto up = std::make_shared<std::atomic<bool>>(false);
  auto confirmed = std::make_shared<std::atomic<std::uint64_t>>(0);  // confirms for producer 21
  auto client = transport::connection::connect(
      n->address(), fast_link("raw-client"), [up, confirmed](transport::link_event event) {
        if (event.type == transport::link_event::kind::peer_up) *up = true;
        if (event.type != transport::link_event::kind::frame) return;
        for (auto message : event.frame->root().getMessages()) {
          if (message.isConfirm() && message.getConfirm().getProducerId() == 21) {
            *confirmed = message.getConfirm().getUpToSeq();
          }
        }
      });
  BOOST_REQUIRE(client);
  BOOST_REQUIRE(eventually([&] { return up->load(); }));

  transport::frame_builder builder(4096);
  auto frame = builder.initRoot<schema::Frame>();
  frame.setProtocolVersion(schema::WIRE_PROTOCOL_VERSION);
  auto messages = frame.initMessages(2);
  for (unsigned m = 0; m < 2; ++m) {
    auto publish = messages[m].initPublish();
    publish.setQueue("jobs");
    publish.setProducerId(20 + m);
    publish.setProducerEpoch(1);
    publish.setFirstSeq(1);
    auto envelopes = publish.initEnvelopes(3);
    for (unsigned i = 0; i < 3; ++i) {
      const auto body = "p" + std::to_string(20 + m) + "-" + std::to_string(i);
      envelopes[i].setPayload(
          kj::arrayPtr(reinterpret_cast<const kj::byte*>(body.data()), body.size()));
    }
  }
  (*client)->send(builder.finish());
  BOOST_REQUIRE(eventually([&] { return confirmed->load() == 3; }));
  BOOST_CHECK_EQUAL(stats(*n).published, 6u);

  auto& got = consume(n->address());
  BOOST_REQUIRE(eventually([&] { return got.unique() == 6; }));
  std::lock_guard lock(got.mutex);
  for (const auto* body : {"p20-0", "p20-1", "p20-2", "p21-0", "p21-1", "p21-2"}) {
    BOOST_CHECK_EQUAL(got.seen[body], 1);
  }
}

BOOST_AUTO_TEST_SUITE_END()

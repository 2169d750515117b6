// Links over real sockets on 127.0.0.1: handshake, frames both ways, heartbeat
// loss, a node restarting under a connection, and peers that send garbage
// (through ZeroMQ and through a plain TCP socket) next to a well-behaved one.

#include <boost/test/unit_test.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include <capnp/message.h>

#include "test_helpers.hpp"
#include "weir/transport/link.hpp"

namespace weir::transport {
namespace {

using namespace std::chrono_literals;
using kind = link_event::kind;
using schema::ErrorCode;
using weir::testing::eventually;

constexpr auto event_wait = 3s;

/// Collects a link's events; waits are bounded and never sleep blindly.
class recorder {
 public:
  link_handler handler() {
    return [this](link_event event) {
      std::lock_guard lock(mutex_);
      events_.push_back(std::move(event));
      changed_.notify_all();
    };
  }

  /// The first event matching `match`, waiting up to `timeout` for it.
  std::optional<link_event> wait_for(const std::function<bool(const link_event&)>& match,
                                     std::chrono::milliseconds timeout = event_wait) {
    std::unique_lock lock(mutex_);
    std::optional<link_event> found;
    changed_.wait_for(lock, timeout, [&] {
      for (const auto& event : events_) {
        if (match(event)) {
          found = event;
          return true;
        }
      }
      return false;
    });
    return found;
  }

  link_event require(const std::function<bool(const link_event&)>& match, const char* what) {
    auto event = wait_for(match);
    BOOST_REQUIRE_MESSAGE(event, "no " << what << " within " << event_wait.count() << " s");
    return *event;
  }

  std::vector<link_event> events() {
    std::lock_guard lock(mutex_);
    return events_;
  }

 private:
  std::mutex mutex_;
  std::condition_variable changed_;
  std::vector<link_event> events_;
};

std::function<bool(const link_event&)> is(kind type) {
  return [type](const link_event& e) { return e.type == type; };
}

std::function<bool(const link_event&)> is(kind type, peer_id peer) {
  return [type, peer](const link_event& e) { return e.type == type && e.peer == peer; };
}

link_options fast_options(std::string node_id) {
  link_options options;
  options.node_id = std::move(node_id);
  options.heartbeat_interval = 20ms;
  // Long enough that a loaded machine (sanitizers, parallel tests) does not
  // starve a link thread past it, short enough to keep the suite quick.
  options.heartbeat_timeout = 250ms;
  return options;
}

std::unique_ptr<endpoint> listen(link_options options, recorder& events,
                                 const std::string& address = "tcp://127.0.0.1:0") {
  auto listening = endpoint::listen(address, std::move(options), events.handler());
  BOOST_REQUIRE_MESSAGE(listening, listening.error().to_string());
  return std::move(*listening);
}

std::unique_ptr<connection> connect(const std::string& address, link_options options,
                                    recorder& events) {
  auto connecting = connection::connect(address, std::move(options), events.handler());
  BOOST_REQUIRE_MESSAGE(connecting, connecting.error().to_string());
  return std::move(*connecting);
}

zmq::message_t confirm_frame(const std::string& queue, std::uint64_t up_to_seq,
                             std::uint16_t version = schema::WIRE_PROTOCOL_VERSION) {
  capnp::MallocMessageBuilder builder;
  auto frame = builder.initRoot<schema::Frame>();
  frame.setProtocolVersion(version);
  auto confirm = frame.initMessages(1)[0].initConfirm();
  confirm.setQueue(queue.c_str());
  confirm.setUpToSeq(up_to_seq);
  return encode_frame(builder);
}

zmq::message_t hello_frame(const std::string& node_id,
                           std::uint32_t heartbeat_interval_ms = 20) {
  capnp::MallocMessageBuilder builder;
  auto frame = builder.initRoot<schema::Frame>();
  frame.setProtocolVersion(schema::WIRE_PROTOCOL_VERSION);
  auto hello = frame.initMessages(1)[0].initHello();
  hello.setNodeId(node_id.c_str());
  hello.setProtocolVersion(schema::WIRE_PROTOCOL_VERSION);
  hello.setHeartbeatIntervalMs(heartbeat_interval_ms);
  return encode_frame(builder);
}

std::uint64_t confirmed_up_to(const link_event& event) {
  BOOST_REQUIRE(event.frame);
  auto messages = event.frame->root().getMessages();
  BOOST_REQUIRE_EQUAL(messages.size(), 1u);
  BOOST_REQUIRE(messages[0].which() == schema::ProtocolMessage::CONFIRM);
  return messages[0].getConfirm().getUpToSeq();
}

bool is_confirm(const link_event& event, std::uint64_t up_to_seq) {
  if (event.type != kind::frame || !event.frame) return false;
  auto messages = event.frame->root().getMessages();
  return messages.size() == 1 && messages[0].which() == schema::ProtocolMessage::CONFIRM &&
         messages[0].getConfirm().getUpToSeq() == up_to_seq;
}

/// A session from both sides: the endpoint's peer id and the connection's.
struct handshake {
  peer_id at_endpoint;
  peer_id at_connection;
};

handshake wait_for_handshake(recorder& endpoint_events, recorder& connection_events,
                             const std::string& client_node) {
  auto up_at_endpoint = endpoint_events.require(
      [&](const link_event& e) { return e.type == kind::peer_up && e.detail == client_node; },
      "peer_up at the endpoint");
  auto up_at_connection = connection_events.require(is(kind::peer_up), "peer_up at the connection");
  return {up_at_endpoint.peer, up_at_connection.peer};
}

/// A ZeroMQ DEALER driven by hand, to send what a weir connection never would.
class raw_dealer {
 public:
  explicit raw_dealer(const std::string& address) : socket_(context_, zmq::socket_type::dealer) {
    socket_.set(zmq::sockopt::linger, 0);
    socket_.set(zmq::sockopt::rcvtimeo, 3000);
    socket_.connect(address);
  }

  void send(zmq::message_t frame) { socket_.send(frame, zmq::send_flags::none); }
  void send_bytes(const std::string& bytes) {
    socket_.send(zmq::buffer(bytes), zmq::send_flags::none);
  }
  void send_two_parts(zmq::message_t first, zmq::message_t second) {
    socket_.send(first, zmq::send_flags::sndmore);
    socket_.send(second, zmq::send_flags::none);
  }

  /// The next frame from the node that is not just a heartbeat.
  inbound_frame_ptr next_reply() {
    for (;;) {
      zmq::message_t reply;
      BOOST_REQUIRE_MESSAGE(socket_.recv(reply), "no reply from the endpoint within 3 s");
      auto decoded = decode_frame(std::move(reply), {});
      BOOST_REQUIRE_MESSAGE(std::holds_alternative<inbound_frame_ptr>(decoded),
                            "the endpoint sent a frame that does not decode");
      auto frame = std::get<inbound_frame_ptr>(std::move(decoded));
      for (auto message : frame->root().getMessages()) {
        if (message.which() != schema::ProtocolMessage::HEARTBEAT) return frame;
      }
    }
  }

  ErrorCode next_error_code() {
    auto frame = next_reply();
    auto messages = frame->root().getMessages();
    BOOST_REQUIRE_EQUAL(messages.size(), 1u);
    BOOST_REQUIRE(messages[0].which() == schema::ProtocolMessage::ERROR);
    BOOST_TEST_MESSAGE("error reply: " << messages[0].getError().getMessage().cStr());
    return messages[0].getError().getCode();
  }

 private:
  zmq::context_t context_{1};
  zmq::socket_t socket_;
};

int port_of(const std::string& address) {
  return std::stoi(address.substr(address.rfind(':') + 1));
}

/// Writes `bytes` to `port` over a plain TCP socket (no ZMTP) and closes it.
void write_raw_tcp(int port, const std::string& bytes) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  BOOST_REQUIRE(fd >= 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<std::uint16_t>(port));
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  BOOST_REQUIRE_EQUAL(::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address), 0);
  // The endpoint may hang up on the first bad byte; later writes then fail,
  // which is what should happen.
  ::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL);
  ::close(fd);
}

std::string random_bytes(std::mt19937_64& random, std::size_t size) {
  std::string out(size, '\0');
  for (auto& c : out) c = static_cast<char>(random());
  return out;
}

}  // namespace

BOOST_AUTO_TEST_CASE(handshake_reports_peer_up_on_both_sides_with_node_ids) {
  recorder endpoint_events, connection_events;
  auto node = listen(fast_options("node-a"), endpoint_events);
  BOOST_CHECK_NE(port_of(node->address()), 0);
  auto client = connect(node->address(), fast_options("client-b"), connection_events);

  auto up = wait_for_handshake(endpoint_events, connection_events, "client-b");
  BOOST_CHECK_EQUAL(connection_events.events().front().detail, "node-a");
  BOOST_CHECK_NE(up.at_endpoint, up.at_connection);
  BOOST_CHECK_EQUAL(node->stats().peers_up, 1u);
  BOOST_CHECK_EQUAL(client->stats().peers_up, 1u);
  BOOST_CHECK_EQUAL(node->stats().handshake_violations, 0u);
}

BOOST_AUTO_TEST_CASE(frames_flow_both_ways_and_link_messages_stay_inside_the_link) {
  recorder endpoint_events, connection_events;
  auto node = listen(fast_options("node-a"), endpoint_events);
  auto client = connect(node->address(), fast_options("client-b"), connection_events);
  auto up = wait_for_handshake(endpoint_events, connection_events, "client-b");

  client->send(confirm_frame("orders", 41));
  auto at_node = endpoint_events.require(is(kind::frame), "frame at the endpoint");
  BOOST_CHECK_EQUAL(at_node.peer, up.at_endpoint);
  BOOST_CHECK_EQUAL(confirmed_up_to(at_node), 41u);

  node->send(up.at_endpoint, confirm_frame("orders", 42));
  auto at_client = connection_events.require(is(kind::frame), "frame at the connection");
  BOOST_CHECK_EQUAL(at_client.peer, up.at_connection);
  BOOST_CHECK_EQUAL(confirmed_up_to(at_client), 42u);

  // Heartbeats have been flowing at 20 ms all along (and more pass while the
  // counters are polled); none of them reached an owner as a frame.
  BOOST_REQUIRE(eventually(
      [&] { return node->stats().frames_in >= 5 && client->stats().frames_in >= 5; }, 3s));
  for (auto* events : {&endpoint_events, &connection_events}) {
    std::size_t frames = 0;
    for (const auto& event : events->events()) frames += event.type == kind::frame;
    BOOST_CHECK_EQUAL(frames, 1u);
  }
  const auto stats = client->stats();
  BOOST_CHECK_GT(stats.frames_out, 2u);
  BOOST_CHECK_GT(stats.bytes_out, stats.frames_out * 8);
  BOOST_CHECK_EQUAL(stats.malformed_frames, 0u);
}

BOOST_AUTO_TEST_CASE(frames_for_a_peer_that_is_not_up_are_dropped_and_counted) {
  recorder endpoint_events, connection_events;
  auto node = listen(fast_options("node-a"), endpoint_events);
  node->send(123456789, confirm_frame("orders", 1));
  BOOST_CHECK(eventually([&] { return node->stats().frames_dropped == 1; }, 3s));
  BOOST_CHECK_EQUAL(node->stats().frames_out, 0u);

  // Nothing listens on the port the node leaves behind.
  const auto address = node->address();
  node.reset();
  auto client = connect(address, fast_options("client-b"), connection_events);
  client->send(confirm_frame("orders", 1));
  BOOST_CHECK_EQUAL(client->stats().frames_dropped, 1u);
}

BOOST_AUTO_TEST_CASE(heartbeats_keep_an_idle_session_up_and_silence_ends_it) {
  recorder endpoint_events, connection_events;
  auto node = listen(fast_options("node-a"), endpoint_events);
  auto client = connect(node->address(), fast_options("client-b"), connection_events);
  auto up = wait_for_handshake(endpoint_events, connection_events, "client-b");

  // Idle for several timeouts: heartbeats alone keep both sides up.
  BOOST_CHECK(!endpoint_events.wait_for(is(kind::peer_down), 600ms));
  BOOST_CHECK(!connection_events.wait_for(is(kind::peer_down), 0ms));

  // A peer that says hello and then stays silent on an open connection ends
  // by the heartbeat timeout.
  raw_dealer raw(node->address());
  raw.send(hello_frame("silent"));
  auto silent_up = endpoint_events.require(
      [](const link_event& e) { return e.type == kind::peer_up && e.detail == "silent"; },
      "silent peer_up");
  auto silent_down =
      endpoint_events.require(is(kind::peer_down, silent_up.peer), "silent peer_down");
  BOOST_TEST_MESSAGE("endpoint: " << silent_down.detail);
  BOOST_REQUIRE_EQUAL(silent_down.detail.rfind("no heartbeat for ", 0), 0u);
  const auto silent_ms = std::stol(silent_down.detail.substr(17));
  BOOST_CHECK_GE(silent_ms, 250);

  // A peer whose connection closes ends at once, not at its heartbeat timeout.
  const auto closed_at = std::chrono::steady_clock::now();
  client.reset();
  auto down =
      endpoint_events.require(is(kind::peer_down, up.at_endpoint), "peer_down at the endpoint");
  const auto took = std::chrono::steady_clock::now() - closed_at;
  BOOST_TEST_MESSAGE("endpoint: " << down.detail);
  BOOST_CHECK_EQUAL(down.detail, "its connection closed");
  BOOST_CHECK(took < 200ms);
  BOOST_CHECK_EQUAL(node->stats().peers_lost, 2u);
}

BOOST_AUTO_TEST_CASE(a_peer_that_beats_slower_than_the_timeout_keeps_its_session) {
  // The node times out after 250 ms, the client beats every 400 ms: the node
  // allows three of the client's intervals, the client its own 3 s.
  recorder endpoint_events, connection_events;
  auto node = listen(fast_options("node-a"), endpoint_events);
  auto slow = fast_options("client-slow");
  slow.heartbeat_interval = 400ms;
  slow.heartbeat_timeout = 3000ms;
  auto client = connect(node->address(), slow, connection_events);
  wait_for_handshake(endpoint_events, connection_events, "client-slow");
  BOOST_CHECK(!endpoint_events.wait_for(is(kind::peer_down), 2000ms));
  BOOST_CHECK(!connection_events.wait_for(is(kind::peer_down), 0ms));

  // A silent peer that announced 400 ms is dropped after 1.2 s, not 250 ms.
  raw_dealer raw(node->address());
  raw.send(hello_frame("silent", 400));
  auto silent_up = endpoint_events.require(
      [](const link_event& e) { return e.type == kind::peer_up && e.detail == "silent"; },
      "silent peer_up");
  auto silent_down =
      endpoint_events.require(is(kind::peer_down, silent_up.peer), "silent peer_down");
  BOOST_REQUIRE_EQUAL(silent_down.detail.rfind("no heartbeat for ", 0), 0u);
  BOOST_CHECK_GE(std::stol(silent_down.detail.substr(17)), 1200);
}

BOOST_AUTO_TEST_CASE(a_node_restarted_on_the_same_port_gets_a_new_session) {
  recorder first_events, second_events, connection_events;
  auto first = listen(fast_options("node-a"), first_events);
  const auto address = first->address();
  auto client = connect(address, fast_options("client-b"), connection_events);
  auto up = wait_for_handshake(first_events, connection_events, "client-b");

  first.reset();
  auto second = listen(fast_options("node-a2"), second_events, address);
  auto again = second_events.require(is(kind::peer_up), "peer_up at the restarted node");
  BOOST_CHECK_EQUAL(again.detail, "client-b");

  auto new_up = connection_events.require(
      [&](const link_event& e) { return e.type == kind::peer_up && e.peer != up.at_connection; },
      "a second peer_up at the connection");
  BOOST_CHECK_EQUAL(new_up.detail, "node-a2");
  BOOST_CHECK_GT(new_up.peer, up.at_connection);

  const auto events = connection_events.events();
  BOOST_REQUIRE_EQUAL(events.size(), 3u);
  BOOST_CHECK(events[0].type == kind::peer_up);
  BOOST_CHECK(events[1].type == kind::peer_down);
  BOOST_CHECK_EQUAL(events[1].peer, up.at_connection);
  BOOST_TEST_MESSAGE("connection: " << events[1].detail);
  BOOST_CHECK(events[2].type == kind::peer_up);

  // The new session carries frames.
  client->send(confirm_frame("orders", 7));
  auto frame = second_events.require(is(kind::frame), "frame at the restarted node");
  BOOST_CHECK_EQUAL(frame.peer, again.peer);
  BOOST_CHECK_EQUAL(client->stats().peers_lost, 1u);
}

BOOST_AUTO_TEST_CASE(bad_frames_get_error_replies_and_counters_while_good_peers_keep_working) {
  recorder endpoint_events, connection_events;
  auto options = fast_options("node-a");
  options.limits.max_frame_bytes = 4096;
  auto node = listen(options, endpoint_events);
  auto client = connect(node->address(), fast_options("client-b"), connection_events);
  auto up = wait_for_handshake(endpoint_events, connection_events, "client-b");

  raw_dealer raw(node->address());
  raw.send_bytes("thirteen byte");
  BOOST_CHECK(raw.next_error_code() == ErrorCode::MALFORMED_FRAME);
  raw.send_bytes(
      std::string("\x05\x00\x00\x00\xff\xff\xff\x7f\x01\x02\x03\x04\x05\x06\x07\x08", 16));
  BOOST_CHECK(raw.next_error_code() == ErrorCode::MALFORMED_FRAME);
  raw.send(confirm_frame("orders", 1));
  BOOST_CHECK(raw.next_error_code() == ErrorCode::HANDSHAKE_REQUIRED);
  raw.send_two_parts(confirm_frame("orders", 1), confirm_frame("orders", 2));
  BOOST_CHECK(raw.next_error_code() == ErrorCode::MALFORMED_FRAME);
  raw.send(confirm_frame("orders", 1, 7));
  BOOST_CHECK(raw.next_error_code() == ErrorCode::UNSUPPORTED_VERSION);
  raw.send_bytes(std::string(5000, '\0'));
  BOOST_CHECK(raw.next_error_code() == ErrorCode::FRAME_TOO_LARGE);

  auto stats = node->stats();
  BOOST_CHECK_EQUAL(stats.malformed_frames, 3u);
  BOOST_CHECK_EQUAL(stats.handshake_violations, 1u);
  BOOST_CHECK_EQUAL(stats.version_mismatches, 1u);
  BOOST_CHECK_EQUAL(stats.oversized_frames, 1u);

  // Once it says hello it has a session; garbage afterwards ends that session.
  raw.send(hello_frame("raw"));
  auto reply = raw.next_reply();
  BOOST_REQUIRE(reply->root().getMessages()[0].which() == schema::ProtocolMessage::HELLO);
  BOOST_CHECK_EQUAL(reply->root().getMessages()[0].getHello().getNodeId().cStr(),
                    std::string("node-a"));
  auto raw_up = endpoint_events.require(
      [](const link_event& e) { return e.type == kind::peer_up && e.detail == "raw"; },
      "raw peer_up");
  raw.send_bytes("garbage!");
  BOOST_CHECK(raw.next_error_code() == ErrorCode::MALFORMED_FRAME);
  auto raw_down = endpoint_events.require(is(kind::peer_down, raw_up.peer), "raw peer_down");
  BOOST_CHECK_MESSAGE(raw_down.detail.find("sent a bad frame (malformedFrame") == 0,
                      raw_down.detail);
  BOOST_CHECK_EQUAL(node->stats().malformed_frames, 4u);

  // The well-behaved connection noticed nothing.
  client->send(confirm_frame("orders", 99));
  auto frame = endpoint_events.require([](const link_event& e) { return is_confirm(e, 99); },
                                       "the good peer's frame");
  BOOST_CHECK_EQUAL(frame.peer, up.at_endpoint);
  BOOST_CHECK(!endpoint_events.wait_for(is(kind::peer_down, up.at_endpoint), 0ms));
  BOOST_CHECK(!connection_events.wait_for(is(kind::peer_down), 0ms));
}

BOOST_AUTO_TEST_CASE(a_connection_drops_a_session_on_a_bad_node_frame_and_says_hello_again) {
  // A node driven by hand: a ROUTER that answers hello and then misbehaves.
  zmq::context_t context(1);
  zmq::socket_t node(context, zmq::socket_type::router);
  node.set(zmq::sockopt::linger, 0);
  node.set(zmq::sockopt::rcvtimeo, 3000);
  node.bind("tcp://127.0.0.1:0");
  // The hand-driven node sends no heartbeats; a long timeout keeps them out of the picture.
  auto options = fast_options("client-b");
  options.heartbeat_interval = 200ms;
  options.heartbeat_timeout = 3000ms;
  recorder events;
  auto client = connect(node.get(zmq::sockopt::last_endpoint), options, events);

  // The next frame from the connection that is not a heartbeat, with its routing id.
  auto next_from_client = [&](zmq::message_t& routing_id) {
    for (;;) {
      zmq::message_t body;
      BOOST_REQUIRE(node.recv(routing_id));
      BOOST_REQUIRE(node.recv(body));
      auto decoded = decode_frame(std::move(body), {});
      BOOST_REQUIRE(std::holds_alternative<inbound_frame_ptr>(decoded));
      auto frame = std::get<inbound_frame_ptr>(std::move(decoded));
      if (frame->root().getMessages()[0].which() != schema::ProtocolMessage::HEARTBEAT)
        return frame;
    }
  };
  auto send_to_client = [&](const zmq::message_t& routing_id, zmq::message_t frame) {
    node.send(zmq::buffer(routing_id.data(), routing_id.size()), zmq::send_flags::sndmore);
    node.send(frame, zmq::send_flags::none);
  };

  zmq::message_t routing_id;
  BOOST_REQUIRE(next_from_client(routing_id)->root().getMessages()[0].which() ==
                schema::ProtocolMessage::HELLO);
  send_to_client(routing_id, hello_frame("raw-node"));
  auto up = events.require(is(kind::peer_up), "peer_up");
  BOOST_CHECK_EQUAL(up.detail, "raw-node");

  send_to_client(routing_id, zmq::message_t(std::string("garbage!")));
  auto down = events.require(is(kind::peer_down, up.peer), "peer_down after a bad frame");
  BOOST_CHECK_MESSAGE(down.detail.find("node sent a bad frame (malformedFrame") == 0, down.detail);
  BOOST_CHECK_EQUAL(client->stats().malformed_frames, 1u);
  // No error reply goes back (two nodes of different versions would trade
  // them for ever): the next thing the node hears is a fresh hello.
  BOOST_CHECK(next_from_client(routing_id)->root().getMessages()[0].which() ==
              schema::ProtocolMessage::HELLO);

  // Another protocol version is counted as such and starts nothing.
  send_to_client(routing_id, confirm_frame("orders", 1, 7));
  BOOST_CHECK(eventually([&] { return client->stats().version_mismatches == 1; }, 3s));
  BOOST_CHECK_EQUAL(events.events().size(), 2u);
}

BOOST_AUTO_TEST_CASE(a_hello_beyond_sessions_max_waits_until_a_session_ends) {
  recorder endpoint_events, first_events, second_events;
  auto options = fast_options("node-a");
  options.sessions_max = 1;
  auto node = listen(options, endpoint_events);
  auto first = connect(node->address(), fast_options("client-1"), first_events);
  first_events.require(is(kind::peer_up), "the first session");

  // The second connection is refused, told why, and keeps asking.
  auto second = connect(node->address(), fast_options("client-2"), second_events);
  BOOST_REQUIRE(eventually([&] { return node->stats().sessions_refused >= 2; }, 3s));
  BOOST_CHECK(!second_events.wait_for(is(kind::peer_up), 100ms));
  BOOST_CHECK_EQUAL(node->stats().peers_up, 1u);

  // Once the first session ends, the second one's next hello gets in.
  first.reset();
  second_events.require(is(kind::peer_up), "the second session after the first ended");
  BOOST_CHECK_EQUAL(node->stats().peers_up, 2u);
}

BOOST_AUTO_TEST_CASE(raw_tcp_garbage_does_not_disturb_the_endpoint) {
  recorder endpoint_events, connection_events;
  auto node = listen(fast_options("node-a"), endpoint_events);
  auto client = connect(node->address(), fast_options("client-b"), connection_events);
  auto up = wait_for_handshake(endpoint_events, connection_events, "client-b");

  std::mt19937_64 random(7);
  const int port = port_of(node->address());
  for (int i = 0; i < 8; ++i) write_raw_tcp(port, random_bytes(random, 64 * 1024));
  // A valid ZMTP 3 signature first, so the garbage reaches the greeting parser.
  const std::string signature("\xff\0\0\0\0\0\0\0\x01\x7f", 10);
  for (int i = 0; i < 8; ++i) write_raw_tcp(port, signature + random_bytes(random, 4096));

  client->send(confirm_frame("orders", 5));
  auto frame = endpoint_events.require([](const link_event& e) { return is_confirm(e, 5); },
                                       "the good peer's frame");
  BOOST_CHECK_EQUAL(frame.peer, up.at_endpoint);

  recorder late_events;
  auto late = connect(node->address(), fast_options("client-c"), late_events);
  endpoint_events.require(
      [](const link_event& e) { return e.type == kind::peer_up && e.detail == "client-c"; },
      "a new peer after the garbage");
  BOOST_CHECK(!endpoint_events.wait_for(is(kind::peer_down), 0ms));
}

BOOST_AUTO_TEST_CASE(bad_addresses_and_options_are_errors_not_exceptions) {
  recorder events;
  auto node = listen(fast_options("node-a"), events);

  auto taken = endpoint::listen(node->address(), fast_options("node-b"), events.handler());
  BOOST_REQUIRE(!taken);
  BOOST_CHECK_EQUAL(taken.error().code(), errc::in_use);
  BOOST_TEST_MESSAGE(taken.error().to_string());

  auto nonsense =
      endpoint::listen("carrier-pigeon://roof", fast_options("node-b"), events.handler());
  BOOST_REQUIRE(!nonsense);
  BOOST_CHECK_EQUAL(nonsense.error().code(), errc::invalid_argument);

  auto bad_connect = connection::connect("tcp://", fast_options("client"), events.handler());
  BOOST_REQUIRE(!bad_connect);
  BOOST_CHECK_EQUAL(bad_connect.error().code(), errc::invalid_argument);

  auto options = fast_options("client");
  options.heartbeat_timeout = options.heartbeat_interval;
  auto bad_options = connection::connect(node->address(), options, events.handler());
  BOOST_REQUIRE(!bad_options);
  BOOST_CHECK_EQUAL(bad_options.error().code(), errc::invalid_argument);
}

BOOST_AUTO_TEST_CASE(destroying_links_right_after_creation_is_quick) {
  recorder events;
  const auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < 10; ++i) {
    auto node = listen(fast_options("node-a"), events);
    auto client = connect(node->address(), fast_options("client-b"), events);
    client->send(confirm_frame("orders", 1));
  }
  const auto elapsed = std::chrono::steady_clock::now() - start;
  BOOST_TEST_MESSAGE("10 endpoint and connection pairs in "
                     << std::chrono::duration_cast<std::chrono::milliseconds>(elapsed).count()
                     << " ms");
  BOOST_CHECK_LT(elapsed, 2s);
}

}  // namespace weir::transport

// Multi-process tests on loopback: `weir node`, `weir produce` and `weir consume`
// as separate processes. The node is SIGKILLed mid-run and restarted; a consumer
// is SIGKILLed while another runs; garbage is thrown at the node's port. A
// checker compares what the producer saw confirmed with what consumers received.
//
// Paths of the programs come from the environment (set by ctest):
// WEIR_BIN (the weir command) and HOLD_BIN (tests/programs/hold_deliveries).

#include <boost/test/unit_test.hpp>

#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <sstream>
#include <thread>

#include <caf/all.hpp>
#include <zmq.hpp>

#include "actor_test_config.hpp"
#include "child_process.hpp"
#include "temp_dir.hpp"
#include "test_helpers.hpp"
#include "weir/queue/consumer.hpp"
#include "weir/node/remote_queue.hpp"

using namespace weir;
using namespace weir::testing;
using namespace std::chrono_literals;

namespace {

std::string program(const char* variable) {
  const char* path = std::getenv(variable);
  BOOST_REQUIRE_MESSAGE(path != nullptr, variable << " is not set (run the test through ctest)");
  return path;
}

std::vector<std::uint64_t> read_ids(const std::string& path) {
  std::vector<std::uint64_t> ids;
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty()) ids.push_back(std::stoull(line));
  }
  return ids;
}

std::string read_text(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

struct fixture {
  temp_dir dir;
  std::string weir = program("WEIR_BIN");
  int port = free_port();
  std::string address = "tcp://127.0.0.1:" + std::to_string(port);

  std::vector<std::string> queue_args{"--queue", "q"};  // or a --config declaring q

  std::unique_ptr<process> start_node() {
    std::vector<std::string> args{weir, "node", "--listen", address, "--data", dir.file("data")};
    args.insert(args.end(), queue_args.begin(), queue_args.end());
    auto node = std::make_unique<process>(args, dir.file("node"));
    BOOST_REQUIRE_MESSAGE(eventually([&] { return port_open(port); }, 20s),
                          "the node did not listen: " << read_text(dir.file("node.err")));
    return node;
  }
};

}  // namespace

BOOST_FIXTURE_TEST_SUITE(process_tests, fixture)

/// Produces and consumes 20,000 messages while the node is SIGKILLed and restarted
/// once; every confirmed sequence number must be received.
void check_a_node_kill(fixture& f) {
  auto& dir = f.dir;
  const auto& weir = f.weir;
  const auto& address = f.address;
  constexpr std::uint64_t count = 20000;
  auto node = f.start_node();
  process producer({weir, "produce", "--connect", address, "--queue", "q", "--count",
                    std::to_string(count), "--window", "2000", "--batch", "200", "--ids-out",
                    dir.file("produced.ids"), "--timeout", "90"},
                   dir.file("produce"));
  process consumer(
      {weir, "consume", "--connect", address, "--queue", "q", "--count", std::to_string(count),
       "--idle-exit", "30", "--ids-out", dir.file("consumed.ids")},
      dir.file("consume"));
  BOOST_REQUIRE(
      eventually([&] { return read_ids(dir.file("produced.ids")).size() > count / 4; }, 60s));
  node->kill(SIGKILL);
  node->wait(5s);
  node = f.start_node();
  const int produced = producer.wait(120s);
  const int consumed = consumer.wait(120s);
  BOOST_TEST_MESSAGE("produce: " << read_text(dir.file("produce.out")));
  BOOST_TEST_MESSAGE("consume: " << read_text(dir.file("consume.out")));
  BOOST_CHECK_EQUAL(produced, 0);
  BOOST_CHECK_EQUAL(consumed, 0);

  const auto confirmed_list = read_ids(dir.file("produced.ids"));
  const std::set<std::uint64_t> confirmed(confirmed_list.begin(), confirmed_list.end());
  const auto received_list = read_ids(dir.file("consumed.ids"));
  std::map<std::uint64_t, int> received;
  for (auto k : received_list) ++received[k];
  std::uint64_t lost = 0, duplicated = 0, unexpected = 0;
  for (auto k : confirmed) lost += received.count(k) == 0;
  for (auto [k, times] : received) {
    duplicated += static_cast<std::uint64_t>(times - 1);
    unexpected += (k == 0 || k > count);
  }
  BOOST_TEST_MESSAGE("checker: confirmed "
                     << confirmed.size() << ", received " << received_list.size() << ", lost "
                     << lost << ", duplicated " << duplicated << ", unexpected " << unexpected);
  BOOST_CHECK_EQUAL(confirmed.size(), count);
  BOOST_CHECK_EQUAL(lost, 0u);
  BOOST_CHECK_EQUAL(unexpected, 0u);
  BOOST_CHECK(read_text(dir.file("produce.out")).find("confirmed=20000 ") != std::string::npos);
  node->kill(SIGTERM);
  BOOST_CHECK_EQUAL(node->wait(20s), 0);
}

BOOST_AUTO_TEST_CASE(every_confirmed_message_is_received_when_the_node_is_killed_mid_run) {
  check_a_node_kill(*this);
}

// A process crash loses nothing the OS was given, and confirms come after the
// write: a SIGKILL (not a power cut) loses nothing confirmed under any policy.
BOOST_AUTO_TEST_CASE(with_sync_none_or_interval_a_node_kill_loses_nothing_confirmed) {
  for (const char* sync : {"none", "interval:50"}) {
    BOOST_TEST_CONTEXT("sync " << sync) {
      const auto config = dir.file(std::string("sync-") + (sync[0] == 'n' ? "none" : "interval"));
      std::ofstream(config + ".toml") << "[queue.q]\nsync = \"" << sync << "\"\n";
      queue_args = {"--config", config + ".toml"};
      std::filesystem::remove_all(dir.file("data"));
      for (const char* file : {"produced.ids", "consumed.ids"}) {
        std::filesystem::remove(dir.file(file));
      }
      check_a_node_kill(*this);
    }
  }
}

BOOST_AUTO_TEST_CASE(a_killed_consumer_s_deliveries_reach_the_other_consumer_at_once) {
  auto node = start_node();
  process producer({weir, "produce", "--connect", address, "--queue", "q", "--count", "200"},
                   dir.file("produce"));
  BOOST_REQUIRE_EQUAL(producer.wait(30s), 0);
  process hoarder({program("HOLD_BIN"), address, "q", "100"}, dir.file("hoarder"));
  BOOST_REQUIRE_MESSAGE(
      eventually(
          [&] { return read_text(dir.file("hoarder.out")).find("held 100") != std::string::npos; },
          20s),
      "the first consumer never held 100: " << read_text(dir.file("hoarder.err")));

  actor_test_config config;
  caf::actor_system system{config};
  remote_queue_options options;
  options.address = address;
  options.queue = "q";
  auto queue = spawn_remote_queue(system, options);
  BOOST_REQUIRE(queue);
  std::mutex mutex;
  std::set<std::string> seen;
  std::atomic<std::size_t> unique{0};
  auto consumer = spawn_consumer(system, *queue, consumer_options{}, [&](const delivery& d) {
    std::lock_guard lock(mutex);
    if (seen.insert(d.data.payload.str()).second) ++unique;
  });
  BOOST_REQUIRE(eventually([&] { return unique.load() == 100; }, 20s));

  const auto killed_at = std::chrono::steady_clock::now();
  hoarder.kill(SIGKILL);
  BOOST_REQUIRE(eventually([&] { return unique.load() == 200; }, 10s));
  const auto took = std::chrono::duration_cast<std::chrono::milliseconds>(
      std::chrono::steady_clock::now() - killed_at);
  BOOST_TEST_MESSAGE("the second consumer had the first one's 100 deliveries after " << took.count()
                                                                                     << " ms");
  BOOST_CHECK_LE(took.count(), 50);
  caf::anon_send_exit(consumer, caf::exit_reason::user_shutdown);
  caf::anon_send_exit(*queue, caf::exit_reason::user_shutdown);
}

BOOST_AUTO_TEST_CASE(garbage_on_the_node_s_port_leaves_it_serving) {
  auto node = start_node();
  std::mt19937_64 random(42);
  // Raw TCP: not even ZeroMQ's greeting.
  for (int round = 0; round < 20; ++round) {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in target{};
    target.sin_family = AF_INET;
    target.sin_port = htons(static_cast<std::uint16_t>(port));
    target.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    BOOST_REQUIRE(::connect(fd, reinterpret_cast<sockaddr*>(&target), sizeof target) == 0);
    std::string junk(1 + random() % 4096, '\0');
    for (auto& c : junk) c = static_cast<char>(random());
    (void)::send(fd, junk.data(), junk.size(), MSG_NOSIGNAL);
    ::close(fd);
  }
  // ZeroMQ frames that are not weir frames, before and instead of a handshake.
  zmq::context_t context;
  zmq::socket_t dealer(context, zmq::socket_type::dealer);
  dealer.set(zmq::sockopt::linger, 0);
  dealer.connect(address);
  for (int round = 0; round < 200; ++round) {
    std::string junk(random() % 512, '\0');
    for (auto& c : junk) c = static_cast<char>(random());
    dealer.send(zmq::buffer(junk), zmq::send_flags::dontwait);
  }
  std::size_t replies = 0;
  zmq::message_t reply;
  dealer.set(zmq::sockopt::rcvtimeo, 2000);
  while (replies < 200 && dealer.recv(reply, zmq::recv_flags::none)) ++replies;
  BOOST_TEST_MESSAGE("error frames sent back: " << replies);
  BOOST_CHECK_GT(replies, 0u);

  process producer({weir, "produce", "--connect", address, "--queue", "q", "--count", "500"},
                   dir.file("produce"));
  BOOST_CHECK_EQUAL(producer.wait(30s), 0);
  process consumer({weir, "consume", "--connect", address, "--queue", "q", "--count", "500",
                    "--idle-exit", "10"},
                   dir.file("consume"));
  BOOST_CHECK_EQUAL(consumer.wait(30s), 0);
  BOOST_CHECK(read_text(dir.file("consume.out")).find("unique=500 ") != std::string::npos);
  const auto log = read_text(dir.file("node.err"));
  BOOST_CHECK(log.find("malformed") != std::string::npos ||
              log.find("handshake") != std::string::npos);
  node->kill(SIGTERM);
  BOOST_CHECK_EQUAL(node->wait(20s), 0);
}

BOOST_AUTO_TEST_SUITE_END()

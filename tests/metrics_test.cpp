// Metrics of a node as a scraper sees them: a node and its queue driven through
// the real protocol over ZeroMQ, GET /metrics over a real TCP socket, the text
// parsed line by line (format 0.0.4) and its numbers checked against what the
// test did. Also the HTTP server's refusals, a restart counted in the tree, and
// the infoRequest a node answers on its own port (`weir stats`, `weir tree`).

#include <boost/test/unit_test.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <condition_variable>
#include <map>
#include <mutex>
#include <optional>
#include <regex>
#include <set>
#include <sstream>

#include <capnp/message.h>
#include <caf/all.hpp>

#include "actor_test_config.hpp"
#include "temp_dir.hpp"
#include "test_helpers.hpp"
#include "weir/node/metrics.hpp"
#include "weir/node/node.hpp"
#include "weir/queue/producer.hpp"
#include "weir/node/remote_queue.hpp"
#include "weir/runtime/http_server.hpp"
#include "weir/transport/frame.hpp"
#include "weir/transport/link.hpp"

using namespace weir;
using namespace weir::testing;
using namespace std::chrono_literals;

namespace {

struct http_answer {
  int code = 0;
  std::string headers;
  std::string body;
};

/// Sends `request` as is to HOST:PORT and reads until the server closes.
http_answer http_exchange(const std::string& address, const std::string& request) {
  const auto colon = address.rfind(':');
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_port = htons(static_cast<std::uint16_t>(std::stoi(address.substr(colon + 1))));
  BOOST_REQUIRE(::inet_pton(AF_INET, address.substr(0, colon).c_str(), &to.sin_addr) == 1);
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  BOOST_REQUIRE(fd >= 0);
  timeval patience{10, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &patience, sizeof patience);
  BOOST_REQUIRE_MESSAGE(::connect(fd, reinterpret_cast<sockaddr*>(&to), sizeof to) == 0,
                        "connect to " << address);
  for (std::size_t sent = 0; sent < request.size();) {
    auto n = ::send(fd, request.data() + sent, request.size() - sent, MSG_NOSIGNAL);
    if (n <= 0) break;  // the server may answer (400) and stop reading early
    sent += static_cast<std::size_t>(n);
  }
  std::string raw;
  char chunk[4096];
  for (;;) {
    auto n = ::recv(fd, chunk, sizeof chunk, 0);
    if (n <= 0) break;
    raw.append(chunk, static_cast<std::size_t>(n));
  }
  ::close(fd);
  http_answer answer;
  const auto head_end = raw.find("\r\n\r\n");
  BOOST_REQUIRE_MESSAGE(head_end != std::string::npos, "no HTTP answer: '" << raw << "'");
  BOOST_REQUIRE(raw.rfind("HTTP/1.1 ", 0) == 0);
  answer.code = std::stoi(raw.substr(9, 3));
  answer.headers = raw.substr(0, head_end);
  answer.body = raw.substr(head_end + 4);
  return answer;
}

http_answer http_get(const std::string& address, const std::string& path) {
  return http_exchange(address, "GET " + path + " HTTP/1.1\r\nHost: test\r\nAccept: */*\r\n\r\n");
}

/// One parsed sample line.
struct sample {
  std::string name;
  std::map<std::string, std::string> labels;
  std::string value;
};

/// Parses exposition text strictly: every line a comment (# HELP / # TYPE) or
/// `name{label="v",...} value`, every sample's family announced with HELP and
/// TYPE before its first sample, each family's samples contiguous.
std::vector<sample> parse_exposition(const std::string& text) {
  static const std::regex sample_line(
      R"(^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? ([-+0-9.eE]+|\+Inf|-Inf|NaN)$)");
  static const std::regex label(R"(([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)\"(,|$))");
  static const std::regex help_line(R"(^# HELP ([a-zA-Z_:][a-zA-Z0-9_:]*) \S.*$)");
  static const std::regex type_line(
      R"(^# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (counter|gauge|histogram|summary|untyped)$)");
  std::map<std::string, std::string> types;
  std::set<std::string> helped;
  std::set<std::string> finished;  // families whose samples ended
  std::string current;
  std::vector<sample> out;
  std::istringstream lines(text);
  std::string line;
  BOOST_REQUIRE(!text.empty() && text.back() == '\n');
  while (std::getline(lines, line)) {
    std::smatch m;
    if (std::regex_match(line, m, help_line)) {
      BOOST_CHECK_MESSAGE(helped.insert(m[1]).second, "second HELP for " << m[1]);
      continue;
    }
    if (std::regex_match(line, m, type_line)) {
      BOOST_CHECK_MESSAGE(types.emplace(m[1], m[2]).second, "second TYPE for " << m[1]);
      continue;
    }
    BOOST_REQUIRE_MESSAGE(std::regex_match(line, m, sample_line), "not a sample line: " << line);
    sample s;
    s.name = m[1];
    s.value = m[4];
    const std::string labels = m[3];
    std::size_t consumed = 0;
    for (std::sregex_iterator it(labels.begin(), labels.end(), label), end; it != end; ++it) {
      BOOST_REQUIRE_MESSAGE(static_cast<std::size_t>(it->position()) == consumed,
                            "bad labels: " << line);
      s.labels[(*it)[1]] = (*it)[2];
      consumed += static_cast<std::size_t>(it->length());
    }
    BOOST_REQUIRE_MESSAGE(consumed == labels.size(), "bad labels: " << line);
    std::string family = s.name;
    for (const char* suffix : {"_bucket", "_sum", "_count"}) {
      const std::string tail(suffix);
      if (family.size() > tail.size() &&
          family.compare(family.size() - tail.size(), tail.size(), tail) == 0 &&
          types.count(family.substr(0, family.size() - tail.size())) != 0 &&
          types[family.substr(0, family.size() - tail.size())] == "histogram") {
        family.resize(family.size() - tail.size());
      }
    }
    BOOST_REQUIRE_MESSAGE(types.count(family) != 0, "no TYPE before " << line);
    BOOST_REQUIRE_MESSAGE(helped.count(family) != 0, "no HELP before " << line);
    if (types[family] == "counter") {
      BOOST_CHECK_MESSAGE(family.size() > 6 && family.compare(family.size() - 6, 6, "_total") == 0,
                          "counter " << family << " does not end in _total");
    }
    if (family != current) {
      BOOST_CHECK_MESSAGE(finished.insert(family).second, "samples of " << family << " split");
      current = family;
    }
    out.push_back(std::move(s));
  }
  return out;
}

/// The value of the one sample with this name and these labels (a subset of its labels).
std::optional<double> value_of(const std::vector<sample>& samples, const std::string& name,
                               const std::map<std::string, std::string>& labels = {}) {
  std::optional<double> found;
  for (const auto& s : samples) {
    if (s.name != name) continue;
    bool match = true;
    for (const auto& [key, value] : labels) {
      auto it = s.labels.find(key);
      match = match && it != s.labels.end() && it->second == value;
    }
    if (!match) continue;
    BOOST_REQUIRE_MESSAGE(!found, "two samples match " << name);
    found = s.value == "+Inf" ? HUGE_VAL : std::stod(s.value);
  }
  return found;
}

/// value_of for a sample that must be there.
double must(const std::vector<sample>& samples, const std::string& name,
            const std::map<std::string, std::string>& labels = {}) {
  auto found = value_of(samples, name, labels);
  BOOST_REQUIRE_MESSAGE(found, "no sample " << name);
  return *found;
}

struct fixture {
  temp_dir dir;
  posix_file_system fs;
  actor_test_config config;
  caf::actor_system system{config};
  caf::scoped_actor self{system};
  std::vector<caf::actor> actors;  // stopped at the end, before the node
  std::unique_ptr<node> served;
  std::unique_ptr<http_server> http;

  explicit fixture(const log_options& log = {}) {
    node_options options;
    options.listen = "tcp://127.0.0.1:0";
    options.data_dir = dir.file("node");
    options.link = fast_link("metrics-node");
    node_queue_options q;
    q.queue.name = "jobs";
    q.queue.ack_timeout = 30s;
    q.queue.max_deliveries = 5;
    q.dead_letter_queue = "jobs.dlq";
    q.queue.log.segment_bytes_max = log.segment_bytes_max;
    q.queue.log.snapshot_every_bytes = log.snapshot_every_bytes;
    q.queue.log.spare_segments_max = log.spare_segments_max;
    options.queues.push_back(q);
    auto started = node::start(system, fs, options);
    BOOST_REQUIRE_MESSAGE(started, started.error().to_string());
    served = std::move(*started);
    auto server = http_server::start("127.0.0.1:0", [this](const std::string& path) {
      return path == "/metrics"
                 ? std::optional<std::string>(render_prometheus(system, served->metrics(), 2s))
                 : std::nullopt;
    });
    BOOST_REQUIRE_MESSAGE(server, server.error().to_string());
    http = std::move(*server);
  }

  ~fixture() {
    http->stop();
    for (auto& a : actors) self->send_exit(a, caf::exit_reason::user_shutdown);
    for (auto& a : actors) self->wait_for(a);
  }

  static transport::link_options fast_link(const std::string& id) {
    transport::link_options link;
    link.node_id = id;
    link.heartbeat_interval = 50ms;
    link.heartbeat_timeout = 500ms;
    return link;
  }

  caf::actor remote() {
    remote_queue_options options;
    options.address = served->address();
    options.queue = "jobs";
    options.link = fast_link("client");
    options.request_timeout = 3s;
    auto proxy = spawn_remote_queue(system, options);
    BOOST_REQUIRE_MESSAGE(proxy, proxy.error().to_string());
    actors.push_back(*proxy);
    return *proxy;
  }

  void publish(const caf::actor& queue, std::uint64_t count, std::uint64_t producer_id = 42) {
    producer_options options;
    options.producer_id = producer_id;
    options.batch_max = 16;
    auto producer = spawn_producer(system, queue, options);
    actors.push_back(producer);
    std::vector<message_data> batch;
    for (std::uint64_t k = 1; k <= count; ++k) batch.push_back({"", std::to_string(k), {}, 0});
    self->request(producer, 10s, send_atom::value, std::move(batch))
        .receive([] {}, [](const caf::error& e) { BOOST_FAIL("send: " << to_string(e)); });
    self->request(producer, 20s, flush_atom::value)
        .receive([] {}, [](const caf::error& e) { BOOST_FAIL("flush: " << to_string(e)); });
  }

  std::vector<sample> scrape() {
    auto answer = http_get(http->address(), "/metrics");
    BOOST_REQUIRE_EQUAL(answer.code, 200);
    BOOST_CHECK_MESSAGE(
        answer.headers.find("Content-Type: text/plain; version=0.0.4") != std::string::npos,
        answer.headers);
    return parse_exposition(answer.body);
  }
};

}  // namespace

BOOST_FIXTURE_TEST_CASE(scraped_counters_agree_with_what_was_published_and_acked, fixture) {
  constexpr std::uint64_t published = 50;
  constexpr std::int64_t acked = 20;
  auto queue = remote();
  publish(queue, published);

  // A consumer speaking the protocol by hand: credit for `acked` deliveries, all acked.
  caf::scoped_actor consumer{system};
  consumer->send(queue, subscribe_atom::value, acked);
  std::vector<id_range> ranges;
  while (static_cast<std::int64_t>(ranges.size()) < acked) {
    consumer->receive(
        [&](deliver_atom, const delivery_batch& batch) {
          for (const auto& d : batch.deliveries) ranges.push_back({d.id, d.id + 1});
        },
        caf::after(10s) >> [] { BOOST_FAIL("no delivery within 10 s"); });
  }
  BOOST_REQUIRE_EQUAL(ranges.size(), static_cast<std::size_t>(acked));
  // Credit is a window: acks make room for more deliveries, so the consumer
  // leaves, and whatever reached it meanwhile is ready again.
  consumer->send(queue, ack_atom::value, ranges);
  consumer->send(queue, unsubscribe_atom::value);

  const std::map<std::string, std::string> jobs{{"queue", "jobs"}};
  std::vector<sample> samples;
  BOOST_REQUIRE_MESSAGE(eventually([&] {
                          samples = scrape();
                          return value_of(samples, "weir_queue_acked_total", jobs) == acked &&
                                 value_of(samples, "weir_queue_consumers", jobs) == 0;
                        }),
                        "acks did not show in the metrics");
  BOOST_CHECK_EQUAL(must(samples, "weir_queue_up", jobs), 1);
  BOOST_CHECK_EQUAL(must(samples, "weir_queue_published_total", jobs), published);
  BOOST_CHECK_EQUAL(must(samples, "weir_queue_confirmed_total", jobs), published);
  BOOST_CHECK_GE(must(samples, "weir_queue_delivered_total", jobs), acked);
  BOOST_CHECK_EQUAL(must(samples, "weir_queue_ready_messages", jobs), published - acked);
  BOOST_CHECK_EQUAL(must(samples, "weir_queue_unacked_messages", jobs), 0);
  BOOST_CHECK_EQUAL(must(samples, "weir_queue_duplicates_total", jobs), 0);
  BOOST_CHECK_GT(must(samples, "weir_queue_log_bytes", jobs), 0);
  BOOST_CHECK_GE(must(samples, "weir_queue_log_segments", jobs), 1);
  BOOST_CHECK_GE(must(samples, "weir_actor_mailbox_messages", {{"actor", "jobs"}}), 0);
  // The dead-letter queue is served too, and nothing reached it.
  BOOST_CHECK_EQUAL(must(samples, "weir_queue_published_total", {{"queue", "jobs.dlq"}}), 0);

  // fsync latencies: observed, buckets cumulative, +Inf equal to the count.
  const auto count = value_of(samples, "weir_fsync_seconds_count", jobs);
  BOOST_REQUIRE(count);
  BOOST_CHECK_GT(*count, 0);
  BOOST_CHECK_GT(must(samples, "weir_fsync_seconds_sum", jobs), 0);
  double previous = 0;
  double previous_le = 0;
  std::size_t buckets = 0;
  for (const auto& s : samples) {
    if (s.name != "weir_fsync_seconds_bucket" || s.labels.at("queue") != "jobs") continue;
    ++buckets;
    const double le = s.labels.at("le") == "+Inf" ? HUGE_VAL : std::stod(s.labels.at("le"));
    BOOST_CHECK_GT(le, previous_le);
    BOOST_CHECK_GE(std::stod(s.value), previous);
    previous = std::stod(s.value);
    previous_le = le;
  }
  BOOST_CHECK_GT(buckets, 2u);
  BOOST_CHECK_EQUAL(previous_le, HUGE_VAL);
  BOOST_CHECK_EQUAL(previous, *count);

  // The tree: the node's supervisor and its queues, none restarted.
  BOOST_CHECK_EQUAL(must(samples, "weir_actor_restarts_total", {{"actor", "jobs"}}), 0);
  BOOST_CHECK_EQUAL(must(samples, "weir_actor_up", {{"actor", "jobs.dlq"}}), 1);
  // The node: one peer (the remote queue) and its frames.
  BOOST_CHECK_EQUAL(must(samples, "weir_node_peers"), 1);
  BOOST_CHECK_GT(must(samples, "weir_link_frames_in_total"), 0);
  BOOST_CHECK_GT(must(samples, "weir_link_bytes_out_total"), 0);
  BOOST_CHECK_EQUAL(must(samples, "weir_link_malformed_frames_total"), 0);
  BOOST_CHECK_EQUAL(must(samples, "weir_node_unknown_queue_total"), 0);
}

/// The node's queue with 4 KiB segments and a snapshot every 4 KiB of records:
/// acked segments are freed within seconds and their files kept as spares.
struct small_segments : fixture {
  static log_options small() {
    log_options log;
    log.segment_bytes_max = 4096;
    log.snapshot_every_bytes = 4096;
    return log;
  }
  small_segments() : fixture(small()) {}
};

BOOST_FIXTURE_TEST_CASE(segments_written_over_spare_files_are_counted, small_segments) {
  const std::map<std::string, std::string> jobs{{"queue", "jobs"}};
  BOOST_CHECK_EQUAL(must(scrape(), "weir_queue_log_segments_reused_total", jobs), 0);
  auto queue = remote();
  caf::scoped_actor consumer{system};
  consumer->send(queue, subscribe_atom::value, std::int64_t{100});
  // Rounds of publish, consume and ack: the delivery and ack records go on
  // filling segments while snapshots free the acked ones. A spare exists only
  // once the snapshot thread has compacted, which may come after a round's
  // last segment was begun, so later rounds give the next segments their turn.
  constexpr std::int64_t per_round = 300;
  constexpr std::uint64_t rounds_max = 20;
  std::optional<double> reused;
  for (std::uint64_t round = 1; round <= rounds_max && reused.value_or(0) == 0; ++round) {
    publish(queue, per_round, 41 + round);
    std::int64_t acked = 0;
    while (acked < per_round) {
      consumer->receive(
          [&](deliver_atom, const delivery_batch& batch) {
            std::vector<id_range> ranges;
            for (const auto& d : batch.deliveries) ranges.push_back({d.id, d.id + 1});
            acked += static_cast<std::int64_t>(ranges.size());
            consumer->send(queue, ack_atom::value, ranges);
          },
          caf::after(10s) >> [] { BOOST_FAIL("no delivery within 10 s"); });
    }
    reused = value_of(scrape(), "weir_queue_log_segments_reused_total", jobs);
  }
  consumer->send(queue, unsubscribe_atom::value);
  BOOST_CHECK_MESSAGE(reused.value_or(0) > 0,
                      "no segment was written over a spare in " << rounds_max << " rounds");
}

BOOST_FIXTURE_TEST_CASE(answers_404_elsewhere_and_400_to_bad_requests_and_keeps_serving, fixture) {
  auto other = http_get(http->address(), "/other");
  BOOST_CHECK_EQUAL(other.code, 404);
  BOOST_CHECK_EQUAL(http_get(http->address(), "/metrics?x=1").code, 200);

  BOOST_CHECK_EQUAL(http_exchange(http->address(), "GARBAGE\r\n\r\n").code, 400);
  BOOST_CHECK_EQUAL(http_exchange(http->address(), "GET metrics HTTP/1.1\r\n\r\n").code, 400);
  BOOST_CHECK_EQUAL(
      http_exchange(http->address(), "GET /metrics HTTP/1.1\r\nno colon here\r\n\r\n").code, 400);
  // Past the request size limit without an end of headers.
  const auto oversized =
      http_exchange(http->address(),
                    "GET /metrics HTTP/1.1\r\nX-Filler: " + std::string(20000, 'x') + "\r\n\r\n");
  BOOST_CHECK_EQUAL(oversized.code, 400);
  BOOST_CHECK_MESSAGE(oversized.body.find("larger than") != std::string::npos, oversized.body);
  BOOST_CHECK_EQUAL(http_exchange(http->address(), "POST /metrics HTTP/1.1\r\n\r\n").code, 405);

  // Still serving, and every refusal counted.
  auto samples = scrape();
  BOOST_CHECK(value_of(samples, "weir_queue_up", {{"queue", "jobs"}}) == 1);
  const auto stats = http->stats();
  BOOST_CHECK_EQUAL(stats.bad_requests, 5u);
  BOOST_CHECK_EQUAL(stats.not_found, 1u);
  BOOST_CHECK_EQUAL(stats.ok, 2u);
  BOOST_CHECK_EQUAL(stats.requests, 8u);
}

BOOST_FIXTURE_TEST_CASE(a_port_in_use_is_an_error_naming_the_address, fixture) {
  auto second = http_server::start(
      http->address(), [](const std::string&) { return std::optional<std::string>("x"); });
  BOOST_REQUIRE(!second);
  BOOST_CHECK(second.error().code() == errc::in_use);
  BOOST_CHECK_MESSAGE(second.error().message().find(http->address()) != std::string::npos,
                      second.error().message());
  BOOST_CHECK(!http_server::start(
      "no-port", [](const std::string&) { return std::optional<std::string>("x"); }));
}

BOOST_FIXTURE_TEST_CASE(a_restarted_queue_is_counted_in_the_tree, fixture) {
  auto before = served->queue("jobs");
  BOOST_REQUIRE(before);
  self->send_exit(*before, caf::exit_reason::kill);
  BOOST_REQUIRE_MESSAGE(eventually([&] {
                          auto now = served->queue("jobs");
                          return now && *now != *before;
                        }),
                        "the queue was not restarted");
  std::vector<sample> samples;
  BOOST_REQUIRE(eventually([&] {
    samples = scrape();
    return value_of(samples, "weir_actor_restarts_total", {{"actor", "jobs"}}) == 1 &&
           value_of(samples, "weir_queue_up", {{"queue", "jobs"}}) == 1;
  }));
  BOOST_CHECK_EQUAL(must(samples, "weir_actor_restarts_total", {{"actor", "jobs.dlq"}}), 0);

  caf::scoped_actor asker{system};
  std::string tree;
  asker->request(served->supervisor(), 5s, tree_atom::value)
      .receive([&](const supervision_node& node) { tree = render_tree(node); },
               [](const caf::error& e) { BOOST_FAIL("tree: " << to_string(e)); });
  BOOST_CHECK_MESSAGE(tree.find("\n  jobs state=running restarts=1\n") != std::string::npos, tree);
  BOOST_CHECK_MESSAGE(tree.rfind("node metrics-node state=running restarts=0\n", 0) == 0, tree);
}

BOOST_FIXTURE_TEST_CASE(a_node_answers_info_requests_on_its_own_port, fixture) {
  std::mutex mutex;
  std::condition_variable changed;
  bool up = false;
  std::map<std::uint64_t, std::string> replies;  // request id -> text, or "error: ..."
  auto connection = transport::connection::connect(
      served->address(), fast_link("info-client"), [&](transport::link_event event) {
        std::lock_guard lock(mutex);
        if (event.type == transport::link_event::kind::peer_up) up = true;
        changed.notify_all();
        if (event.type != transport::link_event::kind::frame) return;
        for (auto m : event.frame->root().getMessages()) {
          if (m.isInfoReply())
            replies[m.getInfoReply().getRequestId()] = m.getInfoReply().getText();
          if (m.isError()) {
            replies[m.getError().getRequestId()] =
                std::string("error: ") + m.getError().getMessage().cStr();
          }
        }
        changed.notify_all();
      });
  BOOST_REQUIRE(connection);
  auto ask = [&](std::uint64_t id, std::uint16_t topic) {
    capnp::MallocMessageBuilder builder;
    auto frame = builder.initRoot<schema::Frame>();
    frame.setProtocolVersion(schema::WIRE_PROTOCOL_VERSION);
    auto request = frame.initMessages(1)[0].initInfoRequest();
    request.setRequestId(id);
    request.setTopic(static_cast<schema::InfoTopic>(topic));
    (*connection)->send(transport::encode_frame(builder));
  };
  std::unique_lock lock(mutex);
  BOOST_REQUIRE(changed.wait_for(lock, 10s, [&] { return up; }));
  lock.unlock();
  ask(1, static_cast<std::uint16_t>(schema::InfoTopic::METRICS));
  ask(2, static_cast<std::uint16_t>(schema::InfoTopic::TREE));
  ask(3, 9);
  lock.lock();
  BOOST_REQUIRE(changed.wait_for(lock, 10s, [&] { return replies.size() == 3; }));
  lock.unlock();
  auto samples = parse_exposition(replies[1]);
  BOOST_CHECK(value_of(samples, "weir_queue_published_total", {{"queue", "jobs"}}) == 0);
  BOOST_CHECK(value_of(samples, "weir_node_peers") == 1);
  BOOST_CHECK_EQUAL(replies[2],
                    "node metrics-node state=running restarts=0\n"
                    "  jobs.dlq state=running restarts=0\n"
                    "  jobs state=running restarts=0\n");
  BOOST_CHECK_MESSAGE(replies[3].find("error: unknown info topic 9") == 0, replies[3]);
  connection->reset();
}

BOOST_AUTO_TEST_CASE(renders_escaped_labels_and_a_snapshot_without_answers) {
  metrics_snapshot snapshot;
  queue_stats stats;
  stats.published = 3;
  snapshot.queues.emplace_back("odd \"name\"\\\n", stats);
  snapshot.queues.emplace_back("silent", std::nullopt);
  const auto text = render_prometheus(snapshot);
  const auto samples = parse_exposition(text);
  BOOST_CHECK(
      value_of(samples, "weir_queue_published_total", {{"queue", "odd \\\"name\\\"\\\\\\n"}}) == 3);
  BOOST_CHECK(value_of(samples, "weir_queue_up", {{"queue", "silent"}}) == 0);
  BOOST_CHECK(!value_of(samples, "weir_queue_published_total", {{"queue", "silent"}}));
  // An empty histogram still has its +Inf bucket.
  BOOST_CHECK(value_of(samples, "weir_fsync_seconds_bucket",
                       {{"queue", "odd \\\"name\\\"\\\\\\n"}, {"le", "+Inf"}}) == 0);
}

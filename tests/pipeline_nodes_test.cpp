// A pipeline spread over two nodes: the home node reads the source and splits
// lines into words, node b hosts the "words" queue and counts. Both parts run
// here in one process but talk over ZeroMQ on loopback, as two processes would.
// Counts are exact, also when node b's part is stopped mid-run and started again.

#include <boost/test/unit_test.hpp>

#include <chrono>
#include <fstream>
#include <map>
#include <sstream>
#include <thread>

#include <caf/all.hpp>

#include "actor_test_config.hpp"
#include "child_process.hpp"
#include "temp_dir.hpp"
#include "weir/pipeline/pipeline.hpp"

using namespace weir;
using namespace weir::testing;
using namespace std::chrono_literals;

namespace {

std::vector<element> split(const element& line) {
  std::vector<element> words;
  std::istringstream in(line.value);
  std::string word;
  while (in >> word) words.push_back({word, word});
  return words;
}

pipeline word_count(const std::string& input, edge_options words) {
  pipeline p("wc");
  p.source_lines("lines", input)
      .flat_map("split", split)
      .queue("words", words)
      .count_by_key("count");
  return p;
}

struct fixture {
  temp_dir dir;
  posix_file_system fs;
  actor_test_config config;
  caf::actor_system system{config};
  std::string input = dir.file("input.txt");
  std::map<std::string, std::string> expected;

  fixture() {
    std::ofstream out(input);
    std::map<std::string, int> counts;
    for (int line = 0; line < 4000; ++line) {
      for (int w = 0; w < 5; ++w) {
        const auto word = "w" + std::to_string((line * 7 + w * 13) % 97);
        out << word << ' ';
        ++counts[word];
      }
      out << '\n';
    }
    for (const auto& [word, count] : counts) expected[word] = std::to_string(count);
  }

  deployment on(const std::string& node, const std::map<std::string, std::string>& addresses) {
    deployment where;
    where.this_node = node;
    where.home = "a";
    where.addresses = addresses;
    where.link.heartbeat_interval = 50ms;
    where.link.heartbeat_timeout = 1000ms;
    return where;
  }

  std::map<std::string, std::string> addresses() {
    return {{"a", "tcp://127.0.0.1:" + std::to_string(free_port())},
            {"b", "tcp://127.0.0.1:" + std::to_string(free_port())}};
  }

  std::unique_ptr<pipeline_run> start(const pipeline& p, const std::string& node,
                                      const std::map<std::string, std::string>& where) {
    auto run = p.start(system, fs, dir.file("data-" + node), on(node, where));
    BOOST_REQUIRE_MESSAGE(run, run.error().to_string());
    return std::move(*run);
  }
};

}  // namespace

BOOST_FIXTURE_TEST_SUITE(pipeline_nodes, fixture)

BOOST_AUTO_TEST_CASE(a_stage_on_another_node_counts_exactly) {
  const auto p = word_count(input, edge_options{.durable = true, .node = "b"});
  const auto where = addresses();
  auto b = start(p, "b", where);
  auto a = start(p, "a", where);
  BOOST_REQUIRE_MESSAGE(a->wait(60s), "home node did not finish");
  BOOST_REQUIRE_MESSAGE(b->wait(60s), "node b did not finish");
  auto counts = b->state();
  BOOST_REQUIRE(counts);
  BOOST_CHECK(*counts == expected);
  // The home node keeps no counts: its stage only splits.
  auto home = a->state();
  BOOST_REQUIRE(home);
  BOOST_CHECK(home->empty());
}

BOOST_AUTO_TEST_CASE(the_remote_part_stopped_mid_run_and_started_again_still_counts_exactly) {
  const auto p = word_count(input, edge_options{.durable = true, .node = "b"});
  const auto where = addresses();
  auto b = start(p, "b", where);
  auto a = start(p, "a", where);
  // Let some words through, then stop node b's part while the home node goes on.
  for (int i = 0; i < 2000; ++i) {
    auto counts = b->state();
    if (counts && !counts->empty()) break;
    std::this_thread::sleep_for(1ms);
  }
  std::size_t counted_before_stop = 0;
  if (auto partial = b->state()) {
    for (const auto& [word, count] : *partial) counted_before_stop += std::stoull(count);
  }
  BOOST_TEST_MESSAGE("node b had counted " << counted_before_stop
                                           << " of 20000 words when stopped");
  b.reset();
  std::this_thread::sleep_for(300ms);
  b = start(p, "b", where);
  BOOST_REQUIRE_MESSAGE(a->wait(60s), "home node did not finish");
  BOOST_REQUIRE_MESSAGE(b->wait(60s), "node b did not finish");
  auto counts = b->state();
  BOOST_REQUIRE(counts);
  BOOST_CHECK(*counts == expected);
}

BOOST_AUTO_TEST_CASE(placements_that_cannot_work_are_refused) {
  const auto where = addresses();
  auto in_memory = word_count(input, edge_options{.durable = false, .node = "b"});
  auto refused = in_memory.start(system, fs, dir.file("x"), on("a", where));
  BOOST_REQUIRE(!refused);
  BOOST_TEST_MESSAGE(refused.error().to_string());
  BOOST_CHECK(refused.error().message().find("must be durable") != std::string::npos);

  auto unknown = word_count(input, edge_options{.durable = true, .node = "c"});
  refused = unknown.start(system, fs, dir.file("y"), on("a", where));
  BOOST_REQUIRE(!refused);
  BOOST_CHECK(refused.error().message().find("'c', which has no address") != std::string::npos);

  refused = unknown.start(system, fs, dir.file("z"));
  BOOST_REQUIRE(!refused);
  BOOST_CHECK(refused.error().message().find("without a deployment") != std::string::npos);
}

BOOST_AUTO_TEST_SUITE_END()

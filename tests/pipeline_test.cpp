// The pipeline graph API: validation, DOT export, a run whose reduce state is
// checked, a restart that must not apply anything twice, and a damaged
// checkpoint that must stop the stage rather than start it from nothing.

#include <boost/test/unit_test.hpp>

#include <fstream>
#include <sstream>
#include <thread>

#include <caf/all.hpp>

#include "actor_test_config.hpp"
#include "fault_injection_fs.hpp"
#include "temp_dir.hpp"
#include "weir/pipeline/pipeline.hpp"

using namespace weir;
using namespace std::chrono_literals;

namespace {

std::vector<element> words(const element& line) {
  std::vector<element> out;
  std::istringstream in(line.value);
  for (std::string w; in >> w;) out.push_back({w, w});
  return out;
}

pipeline word_lengths(const std::string& input) {
  pipeline p("lengths");
  p.source_lines("lines", input)
      .flat_map("split", words)
      .filter("long", [](const element& e) { return e.value.size() > 2; })
      .map("length",
           [](const element& e) {
             return element{e.key, std::to_string(e.value.size())};
           })
      .key_by_reduce(
          "total", [](const element& e) { return e.key; },
          [](const std::string& sum, const element& e) {
            return std::to_string((sum.empty() ? 0 : std::stoull(sum)) + std::stoull(e.value));
          });
  return p;
}

}  // namespace

BOOST_AUTO_TEST_CASE(malformed_graphs_are_refused_with_a_reason) {
  pipeline no_source("p");
  no_source.count_by_key("count");
  BOOST_TEST(no_source.validate().message().find("no source") != std::string::npos);
  pipeline no_ops("p");
  no_ops.source_lines("in", "/dev/null");
  BOOST_TEST(no_ops.validate().message().find("no operator") != std::string::npos);
  pipeline twice("p");
  twice.source_lines("in", "/dev/null").count_by_key("a").count_by_key("b");
  BOOST_TEST(twice.validate().message().find("more than one key_by_reduce") != std::string::npos);
  pipeline dup("p");
  dup.source_lines("in", "/dev/null").count_by_key("in");
  BOOST_TEST(dup.validate().message().find("two steps are named in") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(the_graph_exports_as_dot) {
  auto dot = word_lengths("/data/in.txt").to_dot();
  BOOST_TEST(dot.starts_with("digraph \"lengths\" {"));
  BOOST_TEST(dot.find("\"lines\" -> \"lines.queue\";") != std::string::npos);
  BOOST_TEST(dot.find("\"lines.queue\" -> \"split\";") != std::string::npos);
  BOOST_TEST(dot.find("\"length\" -> \"total\";") != std::string::npos);
  BOOST_TEST(dot.find("label=\"total\\n(key_by_reduce)\"") != std::string::npos);
  BOOST_TEST(dot.ends_with("}\n"));
}

BOOST_AUTO_TEST_CASE(operators_apply_in_order_and_a_rerun_applies_nothing_twice) {
  testing::temp_dir dir;
  {
    std::ofstream in(dir.file("in.txt"));
    in << "a bb ccc dddd\nccc ccc\n\ndddd\n";
  }
  testing::actor_test_config config;
  caf::actor_system system{config};
  posix_file_system fs;
  std::map<std::string, std::string> expected{{"ccc", "9"}, {"dddd", "8"}};
  for (int run = 0; run < 2; ++run) {
    auto started = word_lengths(dir.file("in.txt")).start(system, fs, dir.file("data"));
    BOOST_REQUIRE_MESSAGE(started, started.error().to_string());
    BOOST_REQUIRE_MESSAGE((*started)->wait(20s), "run " << run);
    auto state = (*started)->state();
    BOOST_REQUIRE(state);
    BOOST_TEST((*state == expected), "run " << run);
  }
}

BOOST_AUTO_TEST_CASE(a_failed_fdatasync_mid_run_restarts_what_failed_and_applies_all_once) {
  // One sync fails while the run is under way: whichever queue or stage
  // checkpoint it hit stops, its supervisor restarts it, and the totals come
  // out as in a run without the fault.
  testing::temp_dir dir;
  {
    std::ofstream in(dir.file("in.txt"));
    for (int i = 0; i < 200000; ++i) in << "a bb ccc dddd\n";
  }
  testing::actor_test_config config;
  caf::actor_system system{config};
  posix_file_system posix;
  testing::fault_injection_fs fs(posix);  // outlives the run
  const std::map<std::string, std::string> expected{{"ccc", "600000"}, {"dddd", "800000"}};
  auto started = word_lengths(dir.file("in.txt")).start(system, fs, dir.file("data"));
  BOOST_REQUIRE_MESSAGE(started, started.error().to_string());
  const auto syncs_before = fs.sync_count();
  // Early, while the source is still publishing into the first queue.
  for (int i = 0; i < 5000 && fs.sync_count() < syncs_before + 5; ++i) {
    std::this_thread::sleep_for(1ms);
  }
  BOOST_REQUIRE_MESSAGE(fs.sync_count() >= syncs_before + 5, "the run synced too little");
  fs.fail_syncs(1, errc::io_error);
  const auto armed_at = fs.sync_count();
  BOOST_REQUIRE_MESSAGE((*started)->wait(30s), "the run did not finish");
  BOOST_REQUIRE_MESSAGE(fs.sync_count() > armed_at, "the fault was never met");
  auto state = (*started)->state();
  BOOST_REQUIRE(state);
  BOOST_TEST((*state == expected));
}

BOOST_AUTO_TEST_CASE(a_missing_source_file_is_an_error_at_start) {
  testing::temp_dir dir;
  testing::actor_test_config config;
  caf::actor_system system{config};
  posix_file_system fs;
  auto started = word_lengths(dir.file("nope.txt")).start(system, fs, dir.file("data"));
  BOOST_REQUIRE(!started);
  BOOST_TEST(started.error().code() == errc::not_found);
  BOOST_TEST(started.error().message().find("nope.txt") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(a_damaged_checkpoint_stops_the_stage_instead_of_resetting_it) {
  testing::temp_dir dir;
  {
    std::ofstream in(dir.file("in.txt"));
    in << "ccc ccc\n";
  }
  testing::actor_test_config config;
  caf::actor_system system{config};
  posix_file_system fs;
  {
    auto started = word_lengths(dir.file("in.txt")).start(system, fs, dir.file("data"));
    BOOST_REQUIRE(started);
    BOOST_REQUIRE((*started)->wait(20s));
  }
  testing::flip_bit(dir.file("data/total.checkpoint"), 40, 2);
  auto started = word_lengths(dir.file("in.txt")).start(system, fs, dir.file("data"));
  BOOST_REQUIRE(started);
  BOOST_TEST(!(*started)->wait(2s), "a stage ran over a corrupt checkpoint");
  auto state = (*started)->state();
  BOOST_REQUIRE(!state);
  BOOST_TEST(state.error().code() == errc::corruption);
  BOOST_TEST(state.error().message().find("total.checkpoint") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(tumbling_windows_by_count_survive_in_the_checkpoint) {
  testing::temp_dir dir;
  testing::actor_test_config config;
  caf::actor_system system{config};
  posix_file_system fs;
  auto sums = [&](const std::string& input) {
    pipeline p("windows");
    p.source_lines("numbers", input)
        .tumbling_window_count("by3", 3,
                               [](const std::vector<element>& window) {
                                 std::uint64_t sum = 0;
                                 for (const auto& e : window) sum += std::stoull(e.value);
                                 return element{"sums", std::to_string(sum)};
                               })
        .key_by_reduce(
            "collect", [](const element& e) { return e.key; },
            [](const std::string& list, const element& e) {
              return list.empty() ? e.value : list + "," + e.value;
            });
    return p;
  };
  {
    std::ofstream in(dir.file("first.txt"));
    for (int i = 1; i <= 7; ++i) in << i << "\n";  // 7 is left in an open window
  }
  {
    auto started = sums(dir.file("first.txt")).start(system, fs, dir.file("data"));
    BOOST_REQUIRE(started);
    BOOST_REQUIRE((*started)->wait(20s));
    auto state = (*started)->state();
    BOOST_REQUIRE(state);
    BOOST_TEST(state->at("sums") == "6,15");
  }
  {
    // The same input plus two more lines: the open window (7) was checkpointed,
    // so 7 + 8 + 9 closes it, and nothing before it is applied twice.
    std::ofstream in(dir.file("first.txt"), std::ios::app);
    in << "8\n9\n";
  }
  auto started = sums(dir.file("first.txt")).start(system, fs, dir.file("data"));
  BOOST_REQUIRE(started);
  BOOST_REQUIRE((*started)->wait(20s));
  auto state = (*started)->state();
  BOOST_REQUIRE(state);
  BOOST_TEST(state->at("sums") == "6,15,24");
  pipeline zero("z");
  zero.source_lines("in", "/dev/null").tumbling_window_count("w", 0, [](const auto& w) {
    return w.front();
  });
  BOOST_TEST(zero.validate().message().find("of 0 elements") != std::string::npos);
}

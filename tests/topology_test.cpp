// Topology files loaded through the library, as an embedding program does:
// operators registered by name run in the pipeline, a poison line ends in the
// dead-letter queue named in the file while the rest flows, a registered
// operator's bad setting is reported at its line, and nodes become a deployment.

#include <boost/test/unit_test.hpp>

#include <filesystem>
#include <fstream>

#include <caf/all.hpp>

#include "actor_test_config.hpp"
#include "temp_dir.hpp"
#include "weir/queue/protocol.hpp"
#include "weir/config/topology.hpp"

using namespace weir;
using namespace std::chrono_literals;

namespace {

void write_file(const std::string& path, const std::string& text) {
  std::ofstream out(path);
  out << text;
}

/// "reverse": reverses each value; refuses any setting but `suffix`, which it appends.
operator_registry with_reverse() {
  operator_registry operators;
  operators.add("reverse", [](pipeline& to, const operator_context& context) -> status {
    std::string suffix;
    for (const auto& [key, value] : context.settings) {
      if (key != "suffix") return {errc::invalid_argument, key + ": reverse takes only suffix"};
      if (value.empty()) return {errc::invalid_argument, "suffix: must not be empty"};
      suffix = value;
    }
    to.map(context.name, [suffix](const element& e) {
      return element{e.key, std::string(e.value.rbegin(), e.value.rend()) + suffix};
    });
    return {};
  });
  // Throws on the line "poison", as a handler with a bug would.
  operators.add("fragile", [](pipeline& to, const operator_context& context) -> status {
    to.map(context.name, [](const element& e) {
      if (e.value == "poison") throw std::runtime_error("cannot parse 'poison'");
      return e;
    });
    return {};
  });
  return operators;
}

std::map<std::string, std::string> run_to_end(const topology& t, const std::string& data_dir,
                                              caf::actor_system& system, file_system& fs,
                                              queue_stats* dead_letters = nullptr,
                                              const std::string& dead_letter_queue = "") {
  auto run = t.graph.start(system, fs, data_dir);
  BOOST_REQUIRE_MESSAGE(run, run.error().to_string());
  auto done = (*run)->wait(60s);
  BOOST_REQUIRE_MESSAGE(done, done.to_string());
  if (dead_letters != nullptr) {
    caf::scoped_actor self{system};
    self->request((*run)->actor_of(dead_letter_queue), 5s, stats_atom::value)
        .receive(
            [&](const queue_stats& s) { *dead_letters = s; },
            [](caf::error& e) { BOOST_FAIL("dead-letter queue stats: " << caf::to_string(e)); });
  }
  auto state = (*run)->state();
  BOOST_REQUIRE_MESSAGE(state, state.error().to_string());
  return *state;
}

}  // namespace

BOOST_AUTO_TEST_CASE(registered_operator_runs_in_the_pipeline) {
  testing::temp_dir dir;
  write_file(dir.file("in.txt"), "abc\nxyz\nabc\n");
  write_file(dir.file("t.toml"), R"([source]
path = "in.txt"
output = "lines"
[queue.lines]
[[stage]]
name = "flip"
input = "lines"
operators = [{ type = "reverse", suffix = "!" }, { type = "count_by_key", by = "value" }]
)");
  auto loaded = load_topology(dir.file("t.toml"), with_reverse());
  BOOST_REQUIRE_MESSAGE(loaded, loaded.error().to_string());
  BOOST_TEST(loaded->counting_stage == "flip");
  testing::actor_test_config cfg;
  caf::actor_system system{cfg};
  posix_file_system fs;
  auto counts = run_to_end(*loaded, dir.file("data"), system, fs);
  const std::map<std::string, std::string> expected{{"cba!", "2"}, {"zyx!", "1"}};
  BOOST_TEST(counts == expected);
}

BOOST_AUTO_TEST_CASE(poison_line_goes_to_the_dead_letter_queue_and_the_rest_flows) {
  testing::temp_dir dir;
  std::string lines;
  for (int i = 0; i < 500; ++i)
    lines += (i == 123 ? std::string("poison") : "w" + std::to_string(i % 7)) + "\n";
  write_file(dir.file("in.txt"), lines);
  write_file(dir.file("t.toml"), R"([source]
path = "in.txt"
output = "lines"
[queue.lines]
max_deliveries = 3
dead_letter_queue = "lines.dlq"
retry_backoff_initial_ms = 10
retry_backoff_max_ms = 20
[queue.checked]
durable = true
[[stage]]
name = "check"
input = "lines"
output = "checked"
operators = [{ type = "fragile" }]
[[stage]]
name = "count"
input = "checked"
operators = [{ type = "count_by_key", by = "value" }]
)");
  auto loaded = load_topology(dir.file("t.toml"), with_reverse());
  BOOST_REQUIRE_MESSAGE(loaded, loaded.error().to_string());
  testing::actor_test_config cfg;
  caf::actor_system system{cfg};
  posix_file_system fs;
  queue_stats dead_letters;
  auto counts = run_to_end(*loaded, dir.file("data"), system, fs, &dead_letters, "lines.dlq");
  std::map<std::string, std::string> expected;
  for (int i = 0; i < 500; ++i) {
    if (i == 123) continue;
    auto& n = expected["w" + std::to_string(i % 7)];
    n = std::to_string((n.empty() ? 0 : std::stoi(n)) + 1);
  }
  BOOST_TEST(counts == expected);  // every other line counted exactly once
  BOOST_TEST(dead_letters.ready == 1u);
  BOOST_TEST(dead_letters.published == 1u);
}

BOOST_AUTO_TEST_CASE(registered_operator_setting_error_names_its_line) {
  testing::temp_dir dir;
  write_file(dir.file("in.txt"), "x\n");
  write_file(dir.file("t.toml"), R"([source]
path = "in.txt"
output = "lines"
[queue.lines]
[[stage]]
name = "flip"
input = "lines"
operators = [
  { type = "reverse", suffix = "" },
]
)");
  auto loaded = load_topology(dir.file("t.toml"), with_reverse());
  BOOST_REQUIRE(!loaded);
  BOOST_TEST(loaded.error().message() ==
             dir.file("t.toml") +
                 ":9: key 'stage 'flip' operator 'flip'.suffix': must not be empty");
  // Without the registration the type is unknown, with the close built-in suggested.
  auto unregistered = load_topology(dir.file("t.toml"));
  BOOST_REQUIRE(!unregistered);
  BOOST_TEST(unregistered.error().message().find("unknown key") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(nodes_become_a_deployment) {
  testing::temp_dir dir;
  write_file(dir.file("in.txt"), "x\n");
  write_file(dir.file("t.toml"), R"([pipeline]
home = "a"
[node.a]
address = "tcp://127.0.0.1:7001"
[node.b]
address = "tcp://127.0.0.1:7002"
[source]
path = "in.txt"
output = "lines"
[queue.lines]
[queue.words]
node = "b"
[[stage]]
name = "split"
input = "lines"
output = "words"
operators = [{ type = "split_words" }]
[[stage]]
name = "count"
input = "words"
operators = [{ type = "count_by_key" }]
)");
  auto loaded = load_topology(dir.file("t.toml"));
  BOOST_REQUIRE_MESSAGE(loaded, loaded.error().to_string());
  auto b = deployment_of(*loaded, "b");
  BOOST_REQUIRE_MESSAGE(b, b.error().to_string());
  BOOST_TEST(b->home == "a");
  BOOST_TEST(b->addresses.at("b") == "tcp://127.0.0.1:7002");
  BOOST_TEST(!deployment_of(*loaded, "c"));
  BOOST_TEST(loaded->effective_config.find("node = \"b\"") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(a_queue_s_log_sizes_come_from_its_table) {
  testing::temp_dir dir;
  {
    std::ofstream in(dir.file("in.txt"));
    for (int i = 0; i < 2000; ++i) in << "line " << i << "\n";
  }
  // Line 5 on is the queue's table.
  const auto with_queue_table = [](const std::string& table) {
    return "[source]\npath = \"in.txt\"\noutput = \"lines\"\n[queue.lines]\n" + table +
           "[[stage]]\nname = \"count\"\ninput = \"lines\"\n"
           "operators = [{ type = \"count_by_key\", by = \"value\" }]\n";
  };
  write_file(dir.file("t.toml"), with_queue_table("segment_bytes_max = 8192\n"
                                                  "snapshot_every_bytes = 0\n"
                                                  "spare_segments_max = 0\n"));
  auto loaded = load_topology(dir.file("t.toml"));
  BOOST_REQUIRE_MESSAGE(loaded, loaded.error().to_string());
  BOOST_TEST(loaded->effective_config.find("segment_bytes_max = 8192\nsnapshot_every_bytes = 0\n"
                                           "spare_segments_max = 0") != std::string::npos);
  testing::actor_test_config cfg;
  caf::actor_system system{cfg};
  posix_file_system fs;
  auto counts = run_to_end(*loaded, dir.file("data"), system, fs);
  BOOST_TEST(counts.size() == 2000u);
  // 2000 lines of about 60 log bytes each, no snapshot: many 8 KiB segments.
  std::size_t segments = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir.file("data/lines.queue"))) {
    segments += entry.path().filename().string().starts_with("segment-");
  }
  BOOST_TEST(segments > 5u);

  write_file(dir.file("bad.toml"), with_queue_table("segment_bytes_max = 100\n"));
  auto bad = load_topology(dir.file("bad.toml"));
  BOOST_REQUIRE(!bad);
  BOOST_TEST(bad.error().message().find(
                 "bad.toml:5: key 'queue.lines.segment_bytes_max': expected at least 4096") !=
             std::string::npos,
             bad.error().message());
}

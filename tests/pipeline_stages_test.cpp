// Pipelines of several stages joined by queues: results equal a direct
// computation, queues and stages killed at random apply nothing twice and lose
// nothing, sinks see every element at least once, time windows emit one
// aggregate per window (also across a restart), and malformed graphs are refused.

#include <boost/test/unit_test.hpp>

#include <atomic>
#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <random>
#include <sstream>
#include <thread>

#include <caf/all.hpp>

#include "actor_test_config.hpp"
#include "temp_dir.hpp"
#include "test_helpers.hpp"
#include "weir/pipeline/pipeline.hpp"
#include "weir/queue/protocol.hpp"

using namespace weir;
using namespace std::chrono_literals;

namespace {

using counts = std::map<std::string, std::string>;

const std::vector<std::string> vocabulary = {
    "ant",  "bee",  "cat",  "dog",  "eel", "fox",  "gnu",   "hen", "ibis", "jay",
    "kiwi", "lynx", "mole", "newt", "owl", "puma", "quail", "rat", "seal", "toad",
    "ox",   "yak",  "emu",  "koi",  "asp", "bat",  "cod",   "doe", "elk",  "fly"};

/// `lines` lines of 1 to 6 words from the vocabulary, the same for the same seed.
std::vector<std::string> make_lines(std::size_t lines, unsigned seed) {
  std::mt19937 random(seed);
  std::vector<std::string> out;
  for (std::size_t i = 0; i < lines; ++i) {
    std::string line;
    for (auto n = 1 + random() % 6; n > 0; --n) {
      line += vocabulary[random() % vocabulary.size()];
      line += ' ';
    }
    out.push_back(std::move(line));
  }
  return out;
}

void write_lines(const std::string& path, const std::vector<std::string>& lines) {
  std::ofstream out(path);
  for (const auto& line : lines) out << line << '\n';
}

std::vector<element> split_words(const element& line) {
  std::vector<element> out;
  std::istringstream in(line.value);
  for (std::string w; in >> w;) out.push_back({w, w});
  return out;
}

element upper_case(const element& e) {
  auto upper = e.key;
  for (auto& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return {upper, upper};
}

bool longer_than_two(const element& e) {
  return e.key.size() > 2;
}

/// What split -> keep words longer than two -> upper case -> count gives, computed directly.
counts expected_long_word_counts(const std::vector<std::string>& lines) {
  std::map<std::string, std::uint64_t> n;
  for (const auto& line : lines) {
    for (const auto& word : split_words({"", line})) {
      if (longer_than_two(word)) ++n[upper_case(word).key];
    }
  }
  counts out;
  for (const auto& [word, count] : n) out[word] = std::to_string(count);
  return out;
}

/// lines -> [split] -> words -> [keep, upper] -> kept -> [count]
pipeline three_stages(const std::string& input, edge_options edges) {
  pipeline p("three");
  p.source_lines("lines", input)
      .flat_map("split", split_words)
      .queue("words", edges)
      .filter("keep", longer_than_two)
      .map("upper", upper_case)
      .queue("kept", edges)
      .count_by_key("count");
  return p;
}

/// Kills a random queue or stage of `run` every 10 to `pause_max_ms` ms, at most
/// `kills_max` times, until the run is done. Returns how many actors it killed.
int kill_at_random(pipeline_run& run, const std::vector<std::string>& targets, int kills_max,
                   unsigned seed, unsigned pause_max_ms = 150) {
  std::mt19937 random(seed);
  int kills = 0;
  while (kills < kills_max && !run.wait(0ms)) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10 + random() % (pause_max_ms - 10)));
    auto victim = run.actor_of(targets[random() % targets.size()]);
    if (!victim) continue;  // restarting
    caf::anon_send_exit(victim, caf::exit_reason::kill);
    ++kills;
  }
  return kills;
}

/// Sleeps until `margin` after the next multiple of `width` on the wall clock,
/// so that what follows lands at the start of a fresh window.
void sleep_into_next_window(std::chrono::milliseconds width, std::chrono::milliseconds margin) {
  const auto now = std::chrono::system_clock::now().time_since_epoch();
  const auto into = std::chrono::duration_cast<std::chrono::milliseconds>(now) % width;
  std::this_thread::sleep_for(width - into + margin);
}

element join_values(const std::vector<element>& window) {
  std::string joined;
  for (const auto& e : window) joined += (joined.empty() ? "" : "+") + e.value;
  return {"windows", joined};
}

std::string append(const std::string& list, const element& e) {
  return list.empty() ? e.value : list + "," + e.value;
}

struct fixture {
  testing::temp_dir dir;
  testing::actor_test_config config;
  caf::actor_system system{config};
  posix_file_system fs;
};

}  // namespace

BOOST_FIXTURE_TEST_CASE(two_stages_count_what_a_direct_computation_counts, fixture) {
  const auto lines = make_lines(2000, 1);
  write_lines(dir.file("in.txt"), lines);
  std::map<std::string, std::uint64_t> direct;
  for (const auto& line : lines) {
    for (const auto& word : split_words({"", line})) ++direct[word.key];
  }
  counts expected;
  for (const auto& [word, n] : direct) expected[word] = std::to_string(n);
  pipeline p("two");
  p.source_lines("lines", dir.file("in.txt"))
      .flat_map("split", split_words)
      .queue("words")  // in memory
      .count_by_key("count");
  // The second run starts over a new in-memory queue: the count stage must not
  // skip its messages as "applied" ids of the old one, and the split stage must
  // not republish what it had handed over.
  for (int run = 0; run < 2; ++run) {
    auto started = p.start(system, fs, dir.file("data"));
    BOOST_REQUIRE_MESSAGE(started, started.error().to_string());
    auto done = (*started)->wait(20s);
    BOOST_REQUIRE_MESSAGE(done, done.to_string());
    auto state = (*started)->state();
    BOOST_REQUIRE_MESSAGE(state, state.error().to_string());
    BOOST_TEST((*state == expected), "run " << run);
  }
  BOOST_TEST(testing::file_size_of(dir.file("data/split.checkpoint")) > 0);
  BOOST_TEST(testing::file_size_of(dir.file("data/count.checkpoint")) > 0);
}

BOOST_FIXTURE_TEST_CASE(three_stages_over_durable_queues_and_a_rerun_applies_nothing_twice,
                        fixture) {
  const auto lines = make_lines(3000, 2);
  write_lines(dir.file("in.txt"), lines);
  const auto expected = expected_long_word_counts(lines);
  for (int run = 0; run < 2; ++run) {
    auto started =
        three_stages(dir.file("in.txt"), {.durable = true}).start(system, fs, dir.file("data"));
    BOOST_REQUIRE_MESSAGE(started, started.error().to_string());
    auto done = (*started)->wait(20s);
    BOOST_REQUIRE_MESSAGE(done, done.to_string());
    auto state = (*started)->state();
    BOOST_REQUIRE_MESSAGE(state, state.error().to_string());
    BOOST_TEST((*state == expected), "run " << run);
  }
  // Each queue's log is where the docs say it is.
  BOOST_TEST(std::filesystem::is_directory(dir.file("data/words.queue")));
  BOOST_TEST(std::filesystem::is_directory(dir.file("data/kept.queue")));
}

BOOST_FIXTURE_TEST_CASE(a_fan_out_past_the_outbox_limit_parks_input_and_loses_nothing, fixture) {
  // 400 lines x 100 outputs: far more than the outbox holds, so the first stage
  // must park deliveries until the queue confirms.
  std::vector<std::string> lines;
  for (int i = 0; i < 400; ++i) lines.push_back(vocabulary[i % vocabulary.size()]);
  write_lines(dir.file("in.txt"), lines);
  pipeline p("fan");
  p.source_lines("lines", dir.file("in.txt"))
      .flat_map("hundredfold",
                [](const element& e) {
                  return std::vector<element>(100, {e.value, e.value});
                })
      .queue("copies")
      .count_by_key("count");
  auto started = p.start(system, fs, dir.file("data"));
  BOOST_REQUIRE(started);
  auto done = (*started)->wait(20s);
  BOOST_REQUIRE_MESSAGE(done, done.to_string());
  auto state = (*started)->state();
  BOOST_REQUIRE(state);
  std::map<std::string, std::uint64_t> direct;
  for (const auto& line : lines) direct[line] += 100;
  counts expected;
  for (const auto& [word, n] : direct) expected[word] = std::to_string(n);
  BOOST_TEST((*state == expected));
}

BOOST_FIXTURE_TEST_CASE(queues_and_stages_killed_at_random_leave_the_counts_exact, fixture) {
  const auto lines = make_lines(20'000, 3);
  write_lines(dir.file("in.txt"), lines);
  const auto expected = expected_long_word_counts(lines);
  auto p = three_stages(dir.file("in.txt"), {.durable = true});
  p.restart_intensity(1000, 500ms);
  auto started = p.start(system, fs, dir.file("data"));
  BOOST_REQUIRE(started);
  const auto kills = kill_at_random(
      **started, {"lines.queue", "words", "kept", "split", "upper", "count"}, 25, 42);
  auto done = (*started)->wait(60s);
  BOOST_REQUIRE_MESSAGE(done, done.to_string());
  BOOST_TEST_MESSAGE(kills << " actors killed during the run");
  BOOST_TEST(kills >= 5, "the run ended before it was disturbed: " << kills << " kills");
  auto state = (*started)->state();
  BOOST_REQUIRE(state);
  BOOST_TEST((*state == expected));
}

BOOST_FIXTURE_TEST_CASE(the_source_queue_killed_while_lines_are_read_stores_each_line_once,
                        fixture) {
  // The source's producer window fills while its queue is down: the source must
  // wait for it rather than hand the producer the same lines a second time.
  std::vector<std::string> lines;
  std::map<std::string, std::uint64_t> direct;
  for (int i = 0; i < 40'000; ++i) {
    lines.push_back(vocabulary[(i * 13) % vocabulary.size()]);
    ++direct[lines.back()];
  }
  write_lines(dir.file("in.txt"), lines);
  counts expected;
  for (const auto& [word, n] : direct) expected[word] = std::to_string(n);
  pipeline p("source_kills");
  p.source_lines("lines", dir.file("in.txt"))
      .map("as_key",
           [](const element& e) {
             return element{e.value, e.value};
           })
      .queue("keyed")
      .count_by_key("count")
      .restart_intensity(1000, 500ms);
  auto started = p.start(system, fs, dir.file("data"));
  BOOST_REQUIRE(started);
  // Early and often: while the source is still reading.
  const auto kills = kill_at_random(**started, {"lines.queue"}, 6, 11, 40);
  auto done = (*started)->wait(60s);
  BOOST_REQUIRE_MESSAGE(done, done.to_string());
  BOOST_TEST(kills >= 2, "the run ended before it was disturbed: " << kills << " kills");
  auto state = (*started)->state();
  BOOST_REQUIRE(state);
  BOOST_TEST((*state == expected));
  // The source queue's counters went on across its restarts: every line once.
  caf::scoped_actor self{system};
  queue_stats source;
  self->request((*started)->actor_of("lines.queue"), 5s, stats_atom::value)
      .receive([&](const queue_stats& s) { source = s; },
               [](const caf::error& e) { BOOST_FAIL("stats: " << to_string(e)); });
  BOOST_TEST(source.published == lines.size());
}

BOOST_FIXTURE_TEST_CASE(in_memory_edges_keep_exactly_once_across_actor_restarts, fixture) {
  // An in-memory queue lives in the run's memory file system: a killed queue
  // actor recovers it, so killing actors (not the process) loses nothing.
  const auto lines = make_lines(5'000, 4);
  write_lines(dir.file("in.txt"), lines);
  const auto expected = expected_long_word_counts(lines);
  auto p = three_stages(dir.file("in.txt"), {.durable = false});
  p.restart_intensity(1000, 500ms);
  auto started = p.start(system, fs, dir.file("data"));
  BOOST_REQUIRE(started);
  const auto kills = kill_at_random(**started, {"words", "kept", "split", "upper", "count"}, 15, 7);
  auto done = (*started)->wait(60s);
  BOOST_REQUIRE_MESSAGE(done, done.to_string());
  BOOST_TEST(kills >= 3, "the run ended before it was disturbed: " << kills << " kills");
  auto state = (*started)->state();
  BOOST_REQUIRE(state);
  BOOST_TEST((*state == expected));
}

BOOST_FIXTURE_TEST_CASE(a_stage_holds_no_more_deliveries_than_its_queue_s_credit, fixture) {
  // Guarantee 4 for stages: a stage that does not keep up holds `credit`
  // deliveries; the rest of its input stays ready in the queue, not in memory.
  write_lines(dir.file("in.txt"), make_lines(100, 11));
  std::mutex mutex;
  std::condition_variable released_cv;
  bool released = false;
  std::atomic<int> seen{0};
  pipeline p("credit");
  p.source_lines("in", dir.file("in.txt"), {.durable = true, .credit = 7})
      .sink("hold", [&](const element&) {
        std::unique_lock lock(mutex);
        released_cv.wait(lock, [&] { return released; });
        ++seen;
      });
  auto run = p.start(system, fs, dir.file("data"));
  BOOST_REQUIRE_MESSAGE(run, run.error().to_string());
  caf::scoped_actor self{system};
  queue_stats held;
  const bool settled = testing::eventually([&] {
    self->request((*run)->actor_of("in"), 1s, stats_atom::value)
        .receive([&](const queue_stats& s) { held = s; }, [](caf::error&) {});
    return held.unacked + held.ready == 100 && held.unacked >= 7;
  });
  BOOST_TEST(settled);
  BOOST_TEST(held.unacked == 7u);  // exactly the credit, never more
  BOOST_TEST(held.ready == 93u);
  {
    std::lock_guard lock(mutex);
    released = true;
  }
  released_cv.notify_all();
  auto done = (*run)->wait(60s);
  BOOST_REQUIRE_MESSAGE(done, done.to_string());
  BOOST_TEST(seen.load() == 100);
}

BOOST_FIXTURE_TEST_CASE(a_sink_sees_every_element_at_least_once_and_counts_stay_exact, fixture) {
  constexpr int line_count = 10'000;
  std::vector<std::string> lines;
  std::map<std::string, std::uint64_t> direct;
  for (int i = 0; i < line_count; ++i) {
    const auto& word = vocabulary[(i * 7) % vocabulary.size()];
    lines.push_back(std::to_string(i) + " " + word);
    ++direct[word];
  }
  write_lines(dir.file("in.txt"), lines);
  counts expected;
  for (const auto& [word, n] : direct) expected[word] = std::to_string(n);
  auto seen = std::make_shared<std::vector<int>>(line_count, 0);
  auto seen_mutex = std::make_shared<std::mutex>();
  pipeline p("sinks");
  p.source_lines("lines", dir.file("in.txt"))
      .map("tag",
           [](const element& line) {
             const auto space = line.value.find(' ');
             return element{line.value.substr(space + 1), line.value.substr(0, space)};
           })
      .queue("tagged", {.durable = true})
      .sink("record",
            [seen, seen_mutex](const element& e) {
              std::lock_guard lock(*seen_mutex);
              ++(*seen)[std::stoi(e.value)];
            })
      .count_by_key("count")
      .restart_intensity(1000, 500ms);
  auto started = p.start(system, fs, dir.file("data"));
  BOOST_REQUIRE(started);
  const auto kills = kill_at_random(**started, {"lines.queue", "tagged", "tag", "count"}, 15, 9);
  auto done = (*started)->wait(60s);
  BOOST_REQUIRE_MESSAGE(done, done.to_string());
  BOOST_TEST(kills >= 3, "the run ended before it was disturbed: " << kills << " kills");
  std::lock_guard lock(*seen_mutex);
  int missing = 0;
  int repeated = 0;
  for (int n : *seen) {
    if (n == 0) ++missing;
    if (n > 1) ++repeated;
  }
  BOOST_TEST(missing == 0);
  BOOST_TEST_MESSAGE(repeated << " elements reached the sink more than once (at least once)");
  auto state = (*started)->state();
  BOOST_REQUIRE(state);
  BOOST_TEST((*state == expected));
}

BOOST_FIXTURE_TEST_CASE(time_windows_emit_one_aggregate_per_window, fixture) {
  // "pause" makes the first stage sleep into a fresh window, so each group of
  // letters lands in a window of its own; the last one is closed by the timer.
  constexpr auto width = 300ms;
  {
    std::ofstream in(dir.file("in.txt"));
    in << "pause\na\nb\nc\npause\nd\ne\npause\nf\ng\nh\n";
  }
  pipeline p("timed");
  p.source_lines("letters", dir.file("in.txt"))
      .map("align",
           [width](const element& e) {
             if (e.value == "pause") sleep_into_next_window(width, 30ms);
             return e;
           })
      .filter("letters_only", [](const element& e) { return e.value != "pause"; })
      .tumbling_window_time("per_window", width, join_values)
      .queue("windows")
      .key_by_reduce(
          "collect", [](const element& e) { return e.key; }, append);
  auto started = p.start(system, fs, dir.file("data"));
  BOOST_REQUIRE(started);
  auto done = (*started)->wait(20s);
  BOOST_REQUIRE_MESSAGE(done, done.to_string());
  auto state = (*started)->state();
  BOOST_REQUIRE(state);
  BOOST_TEST((*state == counts{{"windows", "a+b+c,d+e,f+g+h"}}));
}

BOOST_FIXTURE_TEST_CASE(an_open_time_window_survives_a_restart_and_is_emitted_once, fixture) {
  constexpr auto width = 1500ms;
  {
    std::ofstream in(dir.file("in.txt"));
    in << "pause\nx\ny\n";
  }
  struct signal {
    std::mutex mutex;
    std::condition_variable changed;
    bool seen_y = false;
  };
  auto seen = std::make_shared<signal>();
  auto build = [&] {
    pipeline p("reopened");
    p.source_lines("letters", dir.file("in.txt"))
        .map("align",
             [width](const element& e) {
               if (e.value == "pause") sleep_into_next_window(width, 30ms);
               return e;
             })
        .filter("letters_only", [](const element& e) { return e.value != "pause"; })
        .sink("notice",
              [seen](const element& e) {
                std::lock_guard lock(seen->mutex);
                if (e.value == "y") seen->seen_y = true;
                seen->changed.notify_all();
              })
        .tumbling_window_time("per_window", width, join_values)
        .queue("windows", {.durable = true})
        .key_by_reduce(
            "collect", [](const element& e) { return e.key; }, append);
    return p;
  };
  {
    auto started = build().start(system, fs, dir.file("data"));
    BOOST_REQUIRE(started);
    {
      std::unique_lock lock(seen->mutex);
      BOOST_REQUIRE(seen->changed.wait_for(lock, 10s, [&] { return seen->seen_y; }));
    }
    // x and y are in the open window and in its checkpoint; the window ends
    // about 1.4 s from now. Stop the run before it does.
    std::this_thread::sleep_for(100ms);
    auto state = (*started)->state();
    BOOST_REQUIRE(state);
    BOOST_TEST(state->empty(), "the window closed before the restart");
  }
  for (int run = 0; run < 2; ++run) {
    auto started = build().start(system, fs, dir.file("data"));
    BOOST_REQUIRE(started);
    auto done = (*started)->wait(20s);
    BOOST_REQUIRE_MESSAGE(done, done.to_string());
    auto state = (*started)->state();
    BOOST_REQUIRE(state);
    BOOST_TEST((*state == counts{{"windows", "x+y"}}), "run " << run);
  }
}

BOOST_FIXTURE_TEST_CASE(a_checkpoint_of_another_graph_stops_the_stage_instead_of_misleading_it,
                        fixture) {
  write_lines(dir.file("in.txt"), make_lines(100, 5));
  counts before;
  {
    // One stage: "count" applies ids of the source's queue.
    pipeline one("p");
    one.source_lines("lines", dir.file("in.txt"))
        .flat_map("split", split_words)
        .count_by_key("count");
    auto started = one.start(system, fs, dir.file("data"));
    BOOST_REQUIRE(started);
    BOOST_REQUIRE((*started)->wait(20s));
    auto state = (*started)->state();
    BOOST_REQUIRE(state);
    before = *state;
  }
  // Now "count" reads queue "words", whose ids name other messages: skipping
  // those ids would silently lose words. The stage must refuse to start (the
  // log says why; the supervisor gives up), and its checkpoint stays as it was.
  pipeline two("p");
  two.source_lines("lines", dir.file("in.txt"))
      .flat_map("split", split_words)
      .queue("words")
      .count_by_key("count");
  auto started = two.start(system, fs, dir.file("data"));
  BOOST_REQUIRE(started);
  auto done = (*started)->wait(1s);
  BOOST_REQUIRE(!done);
  BOOST_TEST_MESSAGE(done.message());
  auto after = (*started)->state();
  BOOST_REQUIRE(after);
  BOOST_TEST((*after == before));
}

BOOST_AUTO_TEST_CASE(malformed_stage_graphs_are_refused_with_a_reason) {
  auto refusal = [](const pipeline& p) { return p.validate().message(); };
  auto has = [](const std::string& text, const std::string& part) {
    return text.find(part) != std::string::npos;
  };
  pipeline trailing("p");
  trailing.source_lines("in", "/dev/null").count_by_key("count").queue("out");
  BOOST_TEST(has(refusal(trailing), "queue out has no operator after it"));
  pipeline twice("p");
  twice.source_lines("in", "/dev/null")
      .map("m", upper_case)
      .queue("a")
      .queue("b")
      .count_by_key("c");
  BOOST_TEST(has(refusal(twice), "queue b follows queue a with no operator between them"));
  pipeline leading("p");
  leading.source_lines("in", "/dev/null").queue("first").count_by_key("c");
  BOOST_TEST(has(refusal(leading), "queue first has no operator before it"));
  pipeline same_stage("p");
  same_stage.source_lines("in", "/dev/null")
      .count_by_key("a")
      .map("m", upper_case)
      .count_by_key("b");
  BOOST_TEST(has(refusal(same_stage), "more than one key_by_reduce in one stage"));
  BOOST_TEST(has(refusal(same_stage), "(a and b)"));
  pipeline two_stages("p");
  two_stages.source_lines("in", "/dev/null").count_by_key("a").queue("q").count_by_key("b");
  BOOST_TEST(two_stages.validate().is_ok());
  pipeline queue_named_like_operator("p");
  queue_named_like_operator.source_lines("in", "/dev/null")
      .map("m", upper_case)
      .queue("m")
      .count_by_key("c");
  BOOST_TEST(has(refusal(queue_named_like_operator), "two steps are named m"));
  pipeline queue_named_like_source_queue("p");
  queue_named_like_source_queue.source_lines("in", "/dev/null")
      .map("m", upper_case)
      .queue("in.queue")
      .count_by_key("c");
  BOOST_TEST(has(refusal(queue_named_like_source_queue), "two steps are named in.queue"));
  pipeline slash("p");
  slash.source_lines("in", "/dev/null").map("m", upper_case).queue("a/b").count_by_key("c");
  BOOST_TEST(has(refusal(slash), "queue name 'a/b' is empty or has a '/'"));
  pipeline zero_width("p");
  zero_width.source_lines("in", "/dev/null").tumbling_window_time("w", 0ms, join_values);
  BOOST_TEST(has(refusal(zero_width), "window w of 0 ms"));
  pipeline only_queues("p");
  only_queues.source_lines("in", "/dev/null").queue("q");
  BOOST_TEST(has(refusal(only_queues), "no operator"));
}

BOOST_AUTO_TEST_CASE(the_dot_export_shows_every_queue_and_stage) {
  auto p = three_stages("/data/in.txt", {.durable = true});
  p.queue("tail").sink("print", [](const element&) {});
  auto dot = p.to_dot();
  BOOST_TEST_MESSAGE(dot);
  auto has = [&dot](const std::string& part) { return dot.find(part) != std::string::npos; };
  BOOST_TEST(has("\"lines.queue\" [shape=cylinder, label=\"lines.queue\\n(durable)\"];"));
  BOOST_TEST(has("\"words\" [shape=cylinder, label=\"words\\n(durable)\"];"));
  BOOST_TEST(has("\"kept\" [shape=cylinder, label=\"kept\\n(durable)\"];"));
  BOOST_TEST(has("\"tail\" [shape=cylinder, label=\"tail\\n(in-memory)\"];"));
  for (const auto* stage : {"split", "upper", "count", "print"}) {
    BOOST_TEST(has(std::string("subgraph \"cluster_") + stage + "\""), stage);
  }
  // Edges in order, through every queue.
  for (const auto* edge :
       {"\"lines\" -> \"lines.queue\";", "\"lines.queue\" -> \"split\";", "\"split\" -> \"words\";",
        "\"words\" -> \"keep\";", "\"keep\" -> \"upper\";", "\"upper\" -> \"kept\";",
        "\"kept\" -> \"count\";", "\"count\" -> \"tail\";", "\"tail\" -> \"print\";"}) {
    BOOST_TEST(has(edge), edge);
  }
  BOOST_TEST(has("label=\"upper\\n(map)\""));
}

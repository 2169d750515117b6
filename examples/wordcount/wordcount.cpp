// Word count as an embedded pipeline of two stages: lines of INPUT -> durable
// queue -> [split into words] -> durable queue "words" -> [count by word]. The
// split stage checkpoints the words it has not yet handed over (its outbox) with
// the lines they came from; the count stage checkpoints the counts with the words
// they cover. Prints "word<TAB>count" sorted by word. Killed at any moment
// (SIGKILL included) and started again with the same arguments, it prints
// exactly the counts of an uninterrupted run.
//
//   wordcount INPUT DATA_DIR [--dot]

#include <cstring>
#include <iostream>

#include <caf/all.hpp>

#include "weir/runtime/logging.hpp"

#include "weir/pipeline/pipeline.hpp"
#include "weir/node/actor_types.hpp"
#include "weir/queue/protocol.hpp"
#include "weir/queue/system_config.hpp"
#include "weir/config/topology.hpp"

namespace {

struct config : weir::system_config {
  config() { weir::add_actor_types(*this); }
};

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3 || argc > 4 || (argc == 4 && std::strcmp(argv[3], "--dot") != 0)) {
    std::cerr << "usage: wordcount INPUT DATA_DIR [--dot]\n";
    return 2;
  }
  weir::pipeline wordcount("wordcount");
  wordcount.source_lines("lines", argv[1])
      .flat_map("split", weir::split_words)
      .queue("words", {.durable = true})  // exactly once across SIGKILL needs a durable edge
      .count_by_key("count");
  if (argc == 4) {
    std::cout << wordcount.to_dot();
    return 0;
  }
  weir::log_to_stderr();
  config cfg;
  weir::posix_file_system fs;  // first: the queues' logs use it until the actor system is gone
  caf::actor_system system{cfg};
  auto run = wordcount.start(system, fs, argv[2]);
  if (!run) {
    std::cerr << "wordcount: " << run.error().to_string() << "\n";
    return 1;
  }
  if (auto done = (*run)->wait(std::chrono::minutes(10)); !done) {
    std::cerr << "wordcount: " << done.to_string() << "\n";
    return 1;
  }
  auto counts = (*run)->state();
  if (!counts) {
    std::cerr << "wordcount: " << counts.error().to_string() << "\n";
    return 1;
  }
  for (const auto& [word, count] : *counts) std::cout << word << '\t' << count << '\n';
  return 0;
}

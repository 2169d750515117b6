#include "node_command.hpp"

#include <atomic>
#include <csignal>
#include <iostream>

#include <spdlog/spdlog.h>
#include <caf/all.hpp>

#include "stop_signals.hpp"
#include "system_config.hpp"

#include "weir/node/metrics.hpp"
#include "weir/node/node.hpp"
#include "weir/config/node_config.hpp"
#include "weir/queue/protocol.hpp"
#include "weir/runtime/file_system.hpp"
#include "weir/runtime/http_server.hpp"
#include "weir/runtime/progress.hpp"

namespace weir::cli {

int run_node(const node_command_options& command) {
  const sigset_t stop_signals = block_stop_signals();

  node_options options;
  options.listen = command.listen;
  options.data_dir = command.data_dir;
  if (!command.config_file.empty()) {
    if (auto read = read_node_config(command.config_file, options); !read) {
      std::cerr << "weir node: " << read.message() << "\n";
      return 2;
    }
  }
  for (const auto& name : command.queues) {
    if (name.empty() || name.find('/') != std::string::npos) {
      std::cerr << "weir node: --queue '" << name << "': a queue name is non-empty without '/'\n";
      return 2;
    }
  }
  add_named_queues(command.queues, options);
  if (options.queues.empty()) {
    std::cerr << "weir node: no queue to serve: name one with --queue NAME or in --config\n";
    return 2;
  }
  if (options.link.node_id.empty()) options.link.node_id = command.listen;
  for (auto& q : options.queues) {
    q.queue.log.recovery_progress = progress_bar::callback("recovering " + q.queue.name);
  }

  system_config config;
  posix_file_system fs;  // first: the queues' logs use it until the actor system is gone
  caf::actor_system system{config};
  auto started = node::start(system, fs, options);
  if (!started) {
    std::cerr << "weir node: " << started.error().to_string() << "\n";
    return 2;
  }
  spdlog::info("node {} listening on {}, data in {}", options.link.node_id, (*started)->address(),
               options.data_dir);
  for (const auto& line : describe_queues(options)) spdlog::info("{}", line);

  std::unique_ptr<http_server> metrics;
  if (!command.metrics.empty()) {
    node* served = started->get();
    auto serving = http_server::start(
        command.metrics, [&system, served](const std::string& path) -> std::optional<std::string> {
          if (path != "/metrics") return std::nullopt;
          return render_prometheus(system, served->metrics(), std::chrono::seconds(2));
        });
    if (!serving) {
      std::cerr << "weir node: --metrics " << command.metrics << ": " << serving.error().to_string()
                << "\n";
      (void)(*started)->stop();
      return 2;
    }
    metrics = std::move(*serving);
    spdlog::info("node {}: metrics on http://{}/metrics", options.link.node_id, metrics->address());
  }

  // A supervisor that gave up (a queue kept failing) leaves nothing to serve:
  // the node then exits 1 rather than run on without its queues.
  auto supervisor_ended = std::make_shared<std::atomic<bool>>(false);
  (*started)->supervisor()->attach_functor(
      [supervisor_ended](const caf::error&) { *supervisor_ended = true; });
  int signal_number = 0;
  const timespec poll_every{0, 200'000'000};
  while ((signal_number = sigtimedwait(&stop_signals, nullptr, &poll_every)) <= 0) {
    if (*supervisor_ended) {
      spdlog::error(
          "node {}: its supervisor gave up (restart intensity exceeded; the log above "
          "says which queue kept failing); stopping",
          options.link.node_id);
      if (metrics) metrics->stop();
      (void)(*started)->stop();
      return 1;
    }
  }
  spdlog::info("node {}: {} received: closing connections, syncing queues", options.link.node_id,
               signal_number == SIGTERM ? "SIGTERM" : "SIGINT");
  if (metrics) metrics->stop();  // no scrape reaches a stopping node
  if (auto stopped = (*started)->stop(); !stopped) {
    std::cerr << "weir node: " << stopped.to_string() << "\n";
    return 1;
  }
  started->reset();
  spdlog::info("node {}: stopped cleanly", options.link.node_id);
  return 0;
}

}  // namespace weir::cli

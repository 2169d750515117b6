#include "run_command.hpp"

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <mutex>
#include <thread>

#include <spdlog/spdlog.h>
#include <caf/all.hpp>

#include "stop_signals.hpp"
#include "system_config.hpp"
#include "weir/node/metrics.hpp"
#include "weir/config/topology.hpp"
#include "weir/runtime/file_system.hpp"
#include "weir/runtime/http_server.hpp"
#include "weir/runtime/progress.hpp"

namespace weir::cli {

namespace {

/// A data directory that exists and takes a file, before anything starts in it.
status check_data_dir(const std::string& dir) {
  std::error_code error;
  std::filesystem::create_directories(dir, error);
  if (error) {
    return {errc::io_error, "data directory " + dir + " cannot be created: " + error.message() +
                                " (hint: choose another with --data DIR)"};
  }
  const auto probe = dir + "/.weir-write-probe";
  {
    std::ofstream out(probe);
    if (!(out << "probe") || !out.flush()) {
      return {errc::io_error, "data directory " + dir +
                                  " is not writable (hint: fix its permissions or choose another "
                                  "with --data DIR)"};
    }
  }
  std::filesystem::remove(probe, error);
  return {};
}

std::uint64_t count_lines(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::uint64_t lines = 0;
  std::string line;
  while (std::getline(in, line)) ++lines;
  return lines;
}

/// The counting stage's largest counts first (then by key), `top` of them.
void print_top(const std::map<std::string, std::string>& counts, std::uint32_t top,
               const std::string& stage) {
  std::vector<std::pair<std::uint64_t, std::string>> rows;
  for (const auto& [key, value] : counts) {
    std::uint64_t n = 0;
    try {
      n = std::stoull(value);
    } catch (const std::exception&) {
      continue;  // not a count
    }
    rows.emplace_back(n, key);
  }
  std::sort(rows.begin(), rows.end(), [](const auto& a, const auto& b) {
    return a.first != b.first ? a.first > b.first : a.second < b.second;
  });
  if (rows.size() > top) rows.resize(top);
  std::cout << "top " << rows.size() << " of " << counts.size() << " keys counted by stage "
            << stage << ":\n";
  for (const auto& [n, key] : rows) std::cout << n << '\t' << key << '\n';
}

/// The dead letters left, then the counting stage's largest counts if it runs
/// in this process; false when the counts cannot be read.
bool print_results(pipeline_run& run, const topology& topology, const run_options& options,
                   const std::string& data_dir, caf::scoped_actor& self) {
  // Done includes messages that failed max_deliveries times: say where they are.
  for (const auto& name : topology.dead_letter_queues) {
    auto queue = run.actor_of(name);
    if (!queue) continue;
    self->request(queue, std::chrono::seconds(2), stats_atom::value)
        .receive(
            [&](const queue_stats& stats) {
              if (stats.ready == 0) return;
              std::cout << "dead letters: " << stats.ready << " in " << name << " (weir inspect "
                        << data_dir << "/" << name << ".queue)\n";
            },
            [](caf::error&) {});
  }
  if (topology.counting_stage.empty() || options.top == 0 ||
      !run.actor_of(topology.counting_stage)) {
    return true;
  }
  auto counts = run.state();
  if (!counts) {
    std::cerr << "weir run: " << counts.error().message() << "\n";
    return false;
  }
  print_top(*counts, options.top, topology.counting_stage);
  return true;
}

/// Pending SIGINT or SIGTERM (both are blocked in every thread), without waiting.
int pending_stop_signal(const sigset_t& signals) {
  timespec no_wait{0, 0};
  const int received = sigtimedwait(&signals, nullptr, &no_wait);
  return received > 0 ? received : 0;
}

}  // namespace

int print_graph(const std::string& file) {
  auto loaded = load_topology(file);
  if (!loaded) {
    std::cerr << "weir graph: " << loaded.error().message() << "\n";
    return 2;
  }
  std::cout << loaded->graph.to_dot();
  return 0;
}

int run_topology(const run_options& options) {
  const sigset_t stop_signals = block_stop_signals();

  auto loaded = load_topology(options.file, operator_registry{}, options.data_dir);
  if (!loaded) {
    std::cerr << "weir run: " << loaded.error().message() << "\n";
    return 2;
  }
  auto& topology = *loaded;
  const auto& data_dir = topology.data_dir;
  const auto& config_text = topology.effective_config;
  if (options.print_config) {
    std::cout << config_text;
    return 0;
  }
  std::optional<deployment> where;
  if (!topology.nodes.empty()) {
    if (options.node.empty()) {
      std::cerr << "weir run: " << options.file
                << " places queues on nodes: say which one this process is with --node NAME\n";
      return 2;
    }
    auto placed = deployment_of(topology, options.node);
    if (!placed) {
      std::cerr << "weir run: " << placed.error().message() << "\n";
      return 2;
    }
    where = *placed;
  } else if (!options.node.empty()) {
    std::cerr << "weir run: --node " << options.node << ": " << options.file
              << " has no [node.NAME] tables; everything runs in this process\n";
    return 2;
  }
  if (auto writable = check_data_dir(data_dir); !writable) {
    std::cerr << "weir run: " << writable.message() << "\n";
    return 2;
  }
  std::cerr << config_text << std::flush;

  topology.graph.recovery_progress(
      [](const std::string& queue) { return progress_bar::callback("recovering " + queue); });
  system_config config;
  posix_file_system fs;  // first: the queues' logs use it until the actor system is gone
  caf::actor_system system{config};
  // Bound before the run starts, so that a port in use starts nothing; it
  // answers once the run is there.
  std::mutex live_mutex;
  pipeline_run* live = nullptr;
  std::unique_ptr<http_server> metrics;
  if (!options.metrics.empty()) {
    auto serving = http_server::start(
        options.metrics, [&](const std::string& path) -> std::optional<std::string> {
          if (path != "/metrics") return std::nullopt;
          std::lock_guard lock(live_mutex);
          if (live == nullptr) return std::string("# the run is starting\n");
          metrics_source source;
          for (const auto& name : live->queue_names()) {
            source.queues.emplace_back(name, live->actor_of(name));
          }
          source.supervisor = live->supervisor();
          return render_prometheus(system, source, std::chrono::seconds(2));
        });
    if (!serving) {
      std::cerr << "weir run: --metrics " << options.metrics << ": " << serving.error().message()
                << "\n";
      return 2;
    }
    metrics = std::move(*serving);
  }
  const auto started_at = std::chrono::steady_clock::now();
  auto started = where ? topology.graph.start(system, fs, data_dir, *where)
                       : topology.graph.start(system, fs, data_dir);
  if (!started) {
    std::cerr << "weir run: " << started.error().message() << "\n";
    return 2;
  }
  auto& run = *started;
  spdlog::info("run {}: data in {}", topology.name, data_dir);
  if (metrics) {
    std::lock_guard lock(live_mutex);
    live = run.get();
    spdlog::info("run {}: metrics on http://{}/metrics", topology.name, metrics->address());
  }
  // The server stops before the run goes away, whichever way this returns.
  auto stop_metrics = [&] {
    if (!metrics) return;
    metrics->stop();
    std::lock_guard lock(live_mutex);
    live = nullptr;
  };

  const bool reads_source = !where || where->this_node == where->home;
  std::optional<progress_bar> progress;
  if (reads_source && progress_bar::enabled()) {
    progress.emplace("reading " + std::filesystem::path(topology.source_path).filename().string(),
                     count_lines(topology.source_path));
  }
  caf::scoped_actor self{system};
  const auto deadline = options.timeout_s > 0
                            ? started_at + std::chrono::milliseconds(
                                               static_cast<std::int64_t>(options.timeout_s * 1000))
                            : std::chrono::steady_clock::time_point::max();
  // Lines stored in the source's queue; a rerun stores nothing new, and the
  // lines it already held count as duplicates.
  auto update_progress = [&] {
    auto queue = progress ? run->actor_of(topology.source_queue) : caf::actor{};
    if (!queue) return;
    self->request(queue, std::chrono::milliseconds(100), stats_atom::value)
        .receive(
            [&](const queue_stats& stats) { progress->update(stats.published + stats.duplicates); },
            [](caf::error&) {});
  };
  int interrupted = 0;
  status finished{errc::timed_out, "not finished"};
  for (;;) {
    if ((interrupted = pending_stop_signal(stop_signals)) != 0) break;
    if (reads_source) {
      finished = run->wait(std::chrono::milliseconds(200));
      if (finished || finished.code() != errc::timed_out) break;
    } else {
      // Another node reads the source: this one serves until it is stopped.
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
    if (std::chrono::steady_clock::now() >= deadline) break;
    update_progress();
  }
  if (progress) {
    update_progress();
    progress->finish();
  }
  stop_metrics();
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started_at).count();
  if (interrupted != 0) {
    std::cerr << "weir run: " << (interrupted == SIGTERM ? "SIGTERM" : "SIGINT")
              << ": stopping; run again to resume (data in " << data_dir << ")\n";
    if (reads_source) return 130;
    // Serving the part of another node's run: its stop is the normal end.
    std::cout << "run " << topology.name << " stopped on node " << options.node << "; data in "
              << data_dir << "\n";
    return print_results(*run, topology, options, data_dir, self) ? 0 : 1;
  }
  if (!finished) {
    std::cerr << "weir run: " << finished.message() << "\n";
    return 1;
  }
  std::cout << "run " << topology.name << " done in " << std::fixed << std::setprecision(2)
            << seconds << " s; data in " << data_dir << "\n";
  return print_results(*run, topology, options, data_dir, self) ? 0 : 1;
}

}  // namespace weir::cli

#pragma once
// `weir run FILE.toml`: runs a topology until its source is read and every
// stage has handled everything, then prints what the counting stage counted.
// `weir graph FILE.toml`: the topology as Graphviz DOT.

#include <cstdint>
#include <string>

namespace weir::cli {

struct run_options {
  std::string file;
  std::string data_dir;  ///< overrides [pipeline] data_dir
  std::string node;      ///< this process's node in a multi-node topology
  std::string metrics;   ///< HOST:PORT to serve Prometheus metrics on; "" none
  bool print_config = false;
  std::uint32_t top = 10;
  double timeout_s = 0;  ///< 0: no limit
};

/// 0 done, 1 failed or timed out, 2 bad configuration or cannot start, 130 interrupted.
int run_topology(const run_options& options);

/// 0 printed, 2 bad configuration.
int print_graph(const std::string& file);

}  // namespace weir::cli

#pragma once
// `weir node`: serves durable queues to other processes until SIGTERM or SIGINT,
// then drains, syncs every log and exits 0.

#include <string>
#include <vector>

namespace weir::cli {

struct node_command_options {
  std::string listen;
  std::string data_dir;
  std::string config_file;
  std::vector<std::string> queues;
  std::string metrics;  ///< HOST:PORT to serve GET /metrics on; empty: none
};

/// Returns the exit status: 0 after a clean stop, 2 when the node could not start.
int run_node(const node_command_options& options);

}  // namespace weir::cli

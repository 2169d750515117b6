#pragma once
// `weir stats` and `weir tree`: ask a running node, over its own ZeroMQ port, for
// its metrics (Prometheus text, as GET /metrics would answer) or its supervision
// tree, and print the answer to stdout unchanged.

#include <string>

namespace weir::cli {

struct info_options {
  std::string connect;   ///< tcp://HOST:PORT of the node
  double timeout_s = 5;  ///< give up when the node has not answered by then
};

/// Exit 0 with the metrics printed, 1 when the node did not answer in time or
/// refused, 2 on bad arguments.
int run_stats(const info_options& options);

/// Exit 0 with the tree printed, 1 when the node did not answer in time or
/// refused, 2 on bad arguments.
int run_tree(const info_options& options);

}  // namespace weir::cli

#pragma once
// The node configuration file (`weir node --config FILE`, TOML) and the
// defaults of queues named with `--queue`. Errors name the file, line and key.

#include <string>
#include <vector>

#include "weir/node/node.hpp"
#include "weir/runtime/status.hpp"

namespace weir {

/// A queue named only by `--queue NAME`: durable, sync always, five deliveries,
/// then its dead-letter queue NAME.dlq.
node_queue_options default_queue(const std::string& name);

/// Reads FILE into `options` (node settings and queues); unknown keys and wrong
/// types are errors "FILE:LINE: key: what was expected".
status read_node_config(const std::string& path, node_options& options);

/// Adds default_queue(name) for every name not already configured.
void add_named_queues(const std::vector<std::string>& names, node_options& options);

/// One line per queue with its effective settings, for the start-up log.
std::vector<std::string> describe_queues(const node_options& options);

}  // namespace weir

#pragma once
// The actor system every `weir` command runs: weir's shared configuration with
// the types of nodes and remote queues added, since every command talks to one.

#include "weir/node/actor_types.hpp"
#include "weir/queue/system_config.hpp"

namespace weir::cli {

struct system_config : weir::system_config {
  /// Two scheduler threads for a node or a pipeline, where queues work in parallel.
  explicit system_config(int scheduler_threads = 2) : weir::system_config(scheduler_threads) {
    add_actor_types(*this);
  }
};

}  // namespace weir::cli

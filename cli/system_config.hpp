#pragma once
// The actor system every `weir` command runs: few scheduler threads (weir's
// own threads do the I/O), CAF's log file off, weir's message types registered.

#include <caf/actor_system_config.hpp>
#include <caf/atom.hpp>

#include "weir/node/actor_types.hpp"
#include "weir/queue/protocol.hpp"

namespace weir::cli {

struct system_config : caf::actor_system_config {
  /// Two scheduler threads for a node or a pipeline, where queues work in parallel.
  explicit system_config(int scheduler_threads = 2) {
    set("scheduler.max-threads", scheduler_threads);
    set("scheduler.policy", caf::atom("sharing"));
    set("logger.file-verbosity", caf::atom("quiet"));
    add_actor_types(*this);
  }
};

}  // namespace weir::cli

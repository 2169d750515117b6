#pragma once
// The actor system configuration every weir program starts from (the command
// line, the examples, the benchmarks and the tests), so that all run weir alike.

#include <caf/actor_system_config.hpp>

namespace weir {

/// `scheduler_threads` workers on CAF's sharing scheduler, CAF's log file off, and
/// the queue protocol's types registered. Programs that use nodes or remote
/// queues also call add_actor_types (<weir/node/actor_types.hpp>).
class system_config : public caf::actor_system_config {
 public:
  explicit system_config(int scheduler_threads = 2);
};

}  // namespace weir

#pragma once
// The actor system configuration of the actor tests: two scheduler threads
// (the machine has two cores), CAF's own log file off, weir's types registered.

#include <caf/actor_system_config.hpp>
#include <caf/atom.hpp>

#include "weir/node/actor_types.hpp"
#include "weir/queue/protocol.hpp"

namespace weir::testing {

struct actor_test_config : caf::actor_system_config {
  actor_test_config() {
    set("scheduler.max-threads", 2);
    set("logger.file-verbosity", caf::atom("quiet"));
    add_actor_types(*this);
  }
};

}  // namespace weir::testing

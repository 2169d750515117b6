#pragma once
// The actor system configuration of the actor tests: weir's shared one (two
// scheduler threads, CAF's own log file off) with every weir type registered.

#include "weir/node/actor_types.hpp"
#include "weir/queue/system_config.hpp"

namespace weir::testing {

struct actor_test_config : system_config {
  actor_test_config() { add_actor_types(*this); }
};

}  // namespace weir::testing

#pragma once
// Registering weir's actor message types on a CAF config, before the actor
// system is made from it.

#include <caf/fwd.hpp>

namespace weir {

/// Registers every message type of weir's actors: the queue protocol's
/// (add_queue_types) and those of nodes and remote queues (frame handles and
/// the category of a node's error replies).
void add_actor_types(caf::actor_system_config& config);

}  // namespace weir

#include "weir/actors/actor_types.hpp"

#include "weir/queue/protocol.hpp"
#include "wire_codec.hpp"

namespace weir {

void add_actor_types(caf::actor_system_config& config) {
  add_queue_types(config);
  wire::add_wire_types(config);
}

}  // namespace weir

#include "weir/node/actor_types.hpp"

#include "weir/node/wire_codec.hpp"
#include "weir/queue/protocol.hpp"

namespace weir {

void add_actor_types(caf::actor_system_config& config) {
  add_queue_types(config);
  wire::add_wire_types(config);
}

}  // namespace weir

#pragma once
// Private to weir_node: a remote consumer's stand-in. The queue sees it as the
// consumer (it subscribes, holds credit, acks); it sends the deliveries to the
// peer's session, and follows the queue through restarts.

#include <cstdint>
#include <string>

#include <caf/stateful_actor.hpp>

#include "node_shared.hpp"

namespace weir::detail {

struct consumer_stand_in_state {
  static inline const char* name = "weir.remote_consumer";
  node_shared_ptr shared;
  transport::peer_id peer = 0;
  std::string queue_name;
  caf::actor queue;
  std::uint64_t consumer_id = 0;
  std::int64_t credit = 0;
};

using consumer_stand_in = caf::stateful_actor<consumer_stand_in_state>;

/// Subscribes to `queue` with `credit` for consumer `consumer_id` of `peer`.
caf::behavior consumer_stand_in_behavior(consumer_stand_in* self, node_shared_ptr shared,
                                         transport::peer_id peer, std::string queue_name,
                                         caf::actor queue, std::uint64_t consumer_id,
                                         std::int64_t credit);

}  // namespace weir::detail

#pragma once
// Private to weir_node: the actor that serves one handshaked peer of a node.
// It ends with the peer's link session, and its consumer stand-ins (linked to
// it) end with it, so their queues redeliver what they held at once.

#include <cstdint>
#include <string>
#include <unordered_map>

#include <caf/stateful_actor.hpp>

#include "node_shared.hpp"

namespace weir::detail {

struct session_state {
  static inline const char* name = "weir.session";
  node_shared_ptr shared;
  transport::peer_id peer = 0;
  std::string peer_node;
  std::unordered_map<std::uint64_t, caf::actor> consumers;  // consumer id -> its stand-in
};

using session_actor = caf::stateful_actor<session_state>;

/// Takes (wire::frame_atom, wire::frame_handle) from the node's link thread, and
/// the queues' confirmations and protocol errors for the peer's producers.
caf::behavior session_behavior(session_actor* self, node_shared_ptr shared, transport::peer_id peer,
                               std::string peer_node);

}  // namespace weir::detail

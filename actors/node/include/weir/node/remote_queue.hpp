#pragma once
// A queue on another node, as a local actor that speaks the queue protocol
// (protocol.hpp): producer and consumer actors use it as they would a local
// queue. Through a reconnect it subscribes its consumers again and has its
// producers resend what is unconfirmed; the node's de-duplication keeps the queue exact.
//
// Besides the queue protocol it answers:
//   (list_atom, uint64_t from_id, uint32_t limit) -> std::vector<delivery>    ready messages
//   (list_atom, dead_letters_atom, uint64_t from_id, uint32_t limit) -> ...  its dead letters
//   (replay_atom, uint32_t limit) -> uint64_t   dead letters moved back into the queue
// Each fails with a caf::error naming the problem (unknown queue, node unreachable).

#include <chrono>
#include <string>

#include <caf/actor.hpp>
#include <caf/fwd.hpp>

#include "weir/queue/protocol.hpp"
#include "weir/runtime/status.hpp"
#include "weir/transport/link_options.hpp"

namespace weir {

using dead_letters_atom = caf::atom_constant<caf::atom("wdeadl")>;

struct remote_queue_options {
  std::string address;  ///< tcp://HOST:PORT of the node
  std::string queue;    ///< the queue's name on that node
  transport::link_options link;
  std::chrono::milliseconds request_timeout{5000};  ///< list and replay
};

/// Connects (in the background) and spawns the proxy; it stops with its last user.
result<caf::actor> spawn_remote_queue(caf::actor_system& system, remote_queue_options options);

/// True when a list or replay request failed because the node has no such queue.
bool is_unknown_queue(const caf::error& error);

/// The text a node or proxy put in an error, without CAF's decoration.
std::string error_text(caf::actor_system& system, const caf::error& error);

/// Asks the node behind `proxy` for its queue until it answers or `deadline`
/// passes (the node may be starting), so that an unknown queue or a wrong
/// address is an error at once, not a silent wait. None, or the last failure.
caf::error probe_queue(caf::scoped_actor& self, const caf::actor& proxy,
                       std::chrono::steady_clock::time_point deadline);

}  // namespace weir

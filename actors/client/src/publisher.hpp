#pragma once
// The client's publishing bridge for one queue. Client threads leave publishes
// in its inbox and poke it; it checks once that the queue exists (a producer
// would resend into an unknown queue forever), hands them to a producer actor
// one at a time, so that sequence numbers follow the order they came in, and
// calls each one back once the producer's confirmations cover its last message.

#include <chrono>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <caf/actor.hpp>
#include <caf/atom.hpp>
#include <caf/fwd.hpp>

#include "weir/queue/protocol.hpp"
#include "weir/client/client.hpp"

namespace weir::client_detail {

/// Tells a publisher that its inbox has new requests.
using take_atom = caf::atom_constant<caf::atom("wctake")>;

struct publish_request {
  std::vector<message_data> messages;
  publish_callback done;  ///< called exactly once, also when the publisher stops first
  std::chrono::steady_clock::time_point deadline;
};

/// Where client threads leave publishes for the publisher.
struct publish_inbox {
  std::mutex mutex;
  std::deque<publish_request> requests;
};

struct publisher_options {
  std::string queue;
  std::string address;  ///< of the node, for error messages
  std::chrono::milliseconds connect_timeout{10'000};
  std::uint32_t window = 4096;
};

/// Spawns the publisher of `proxy`'s queue; it stops its producer when it stops.
caf::actor spawn_publisher(caf::actor_system& system, caf::actor proxy,
                           std::shared_ptr<publish_inbox> inbox, publisher_options options);

/// The status for a failed probe of `queue` (a list request): not_found for an
/// unknown queue, else timed_out; both name the queue and the node.
status probe_failure(caf::actor_system& system, const caf::error& error, const std::string& queue,
                     const std::string& address);

}  // namespace weir::client_detail

#pragma once
// The client's consuming bridge: an actor that subscribes to a queue proxy and
// leaves each delivery in an inbox that a client thread takes from, and that
// forwards the thread's acks, nacks and extensions to the proxy as its own (the
// proxy knows consumers by sender). Unlike the consumer actor it never acks by
// itself: a message is settled when the application says so.
//
//   client -> subscriber   (ack_atom, std::vector<id_range>) / (nack_atom, nack_request)
//                          (extend_atom, std::vector<uint64_t>, uint32_t ms)
//                          (unsubscribe_atom): unsubscribes after all of those, then stops

#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>

#include <caf/actor.hpp>
#include <caf/fwd.hpp>

#include "weir/client/client.hpp"

namespace weir::client_detail {

/// Deliveries waiting for a client thread, or why none will come.
struct subscriber_inbox {
  std::mutex mutex;
  std::condition_variable changed;
  std::deque<received_message> messages;
  status failure;       ///< the queue refused the subscription
  bool closed = false;  ///< the subscriber stopped
};

/// Spawns a subscriber of `proxy` with `credit` deliveries unsettled at most.
caf::actor spawn_subscriber(caf::actor_system& system, caf::actor proxy, std::int64_t credit,
                            std::shared_ptr<subscriber_inbox> inbox);

}  // namespace weir::client_detail

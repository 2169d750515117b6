#pragma once
// The consumer actor: subscribes to a queue with a credit window, runs the
// application's handler on each delivery, acks what succeeded and nacks what
// threw (with the exception's text as the reason). Acks free credit, so the
// queue keeps it supplied without more than `credit` messages in hand.

#include <cstdint>
#include <functional>

#include <caf/actor.hpp>
#include <caf/fwd.hpp>

#include "weir/queue/protocol.hpp"

namespace weir {

/// Processes one delivery; throwing means it failed and should be retried.
using delivery_handler = std::function<void(const delivery&)>;

struct consumer_options {
  std::int64_t credit = 256;          ///< deliveries held at most
  bool dead_letter_on_error = false;  ///< nack failures to the dead-letter queue instead of requeue
  /// Called when a batch arrives, before its first handler (to read a clock once a batch).
  std::function<void()> before_batch = {};
  /// Called after a batch's handlers ran and before its acks are sent (to flush output).
  std::function<void()> before_ack = {};
  /// Asked before each delivery; once true the consumer handles nothing more
  /// and unsubscribes: what it holds unhandled is ready again at once for others.
  std::function<bool()> done = {};
};

/// Spawns a consumer of `queue`. Send it (stats_atom) for (handled, failed) counts.
caf::actor spawn_consumer(caf::actor_system& system, caf::actor queue, consumer_options options,
                          delivery_handler handler);

}  // namespace weir

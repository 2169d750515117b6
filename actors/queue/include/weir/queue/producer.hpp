#pragma once
// The producer actor: takes messages from the application, publishes them to a
// queue in batches with sequence numbers, keeps every unconfirmed one (up to a
// window) and resends them after a timeout, a gap report or a queue change, so
// that with de-duplication each message is stored exactly once.
//
//   app -> producer   (send_atom, std::vector<message_data>) -> (ok) once accepted
//                     into the window (the answer waits while the window is full)
//   app -> producer   (flush_atom) -> (ok) once everything accepted is confirmed
//   app -> producer   (rebind_atom, caf::actor queue) after the queue was restarted
//   app -> producer   (stats_atom) -> producer_stats

#include <chrono>
#include <cstdint>
#include <functional>

#include <caf/actor.hpp>
#include <caf/fwd.hpp>

#include "weir/queue/protocol.hpp"

namespace weir {

using send_atom = caf::atom_constant<caf::atom("wsend")>;
using flush_atom = caf::atom_constant<caf::atom("wflush")>;
using rebind_atom = caf::atom_constant<caf::atom("wrebind")>;

struct producer_options {
  std::uint64_t producer_id = 0;  ///< non-zero: the queue de-duplicates resends
  std::uint64_t epoch = 1;        ///< a restarted producer must use a larger epoch
  std::uint32_t batch_max = 256;  ///< messages per publish
  std::uint32_t window = 4096;    ///< unconfirmed messages at most
  std::chrono::milliseconds resend_timeout{2000};
  /// Called in the producer whenever confirmations advance, with the highest
  /// confirmed sequence number, before any later confirmation is handled.
  std::function<void(std::uint64_t up_to_seq)> on_confirmed = {};
};

struct producer_stats {
  std::uint64_t accepted = 0;
  std::uint64_t confirmed = 0;
  std::uint64_t unconfirmed = 0;
  std::uint64_t resent = 0;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, producer_stats& x) {
  return f(caf::meta::type_name("weir::producer_stats"), x.accepted, x.confirmed, x.unconfirmed,
           x.resent);
}

/// Spawns a producer publishing to `queue`.
caf::actor spawn_producer(caf::actor_system& system, caf::actor queue, producer_options options);

}  // namespace weir

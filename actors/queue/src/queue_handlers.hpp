#pragma once
// Private to weir_queue: one named function per message the queue actor handles
// (the protocol is in weir/queue/protocol.hpp). queue_behavior only routes to
// them; each takes the message as CAF hands it over, so that no handler copies
// what it did not copy before.

#include <cstdint>
#include <string>
#include <vector>

#include "queue_state.hpp"

namespace weir::detail {

// --- producers and the queue's own publishes (publishing.cpp) ---------------------

/// Stores a batch (dropping resends by producer sequence); confirmed on_durable.
void on_publish(queue_actor* self, publish_batch& batch);

/// The log's verdict on a publish, reported from its writer thread.
void on_durable(queue_actor* self, std::uint64_t producer_id, std::uint64_t epoch,
                std::uint64_t up_to_seq, std::uint64_t count, bool ok, const std::string& error,
                const caf::strong_actor_ptr& producer);

/// The dead-letter queue or a replay target confirmed what this queue sent it.
void on_confirm(queue_actor* self, const confirmation& c);

/// The acks of a finished replay are durable: its requests are answered.
void on_replayed(queue_actor* self, std::uint64_t ticket);

/// Ready messages not out with a consumer, for inspection.
std::vector<delivery> on_list(queue_actor* self, std::uint64_t from_id, std::uint32_t limit);

/// Moves up to `limit` ready messages into `target`; answers once it confirmed them.
caf::result<std::uint64_t> on_replay(queue_actor* self, caf::actor target, std::uint32_t limit);

// --- consumers (consuming.cpp) ------------------------------------------------------

void on_subscribe(queue_actor* self, std::int64_t credit);
void on_credit(queue_actor* self, std::int64_t more);
void on_unsubscribe(queue_actor* self);
void on_ack(queue_actor* self, const std::vector<id_range>& ranges);
void on_nack(queue_actor* self, const nack_request& request);
void on_extend(queue_actor* self, const std::vector<std::uint64_t>& ids,
               std::uint32_t extension_ms);

/// Expires ack deadlines and readies delayed messages whose backoff is over.
void on_tick(queue_actor* self, std::uint64_t generation);

// --- anyone (queue_actor.cpp) -------------------------------------------------------

queue_stats on_stats(queue_actor* self);

}  // namespace weir::detail

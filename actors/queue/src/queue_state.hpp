#pragma once
// Private to weir_queue: the queue actor's state and the functions its handlers
// share. The handlers are in queue_handlers.hpp; dispatch.cpp hands ready
// messages to consumers, redelivery.cpp takes back what they did not ack.

#include <chrono>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include <caf/actor_clock.hpp>
#include <caf/stateful_actor.hpp>
#include <caf/typed_response_promise.hpp>

#include "body_cache.hpp"
#include "weir/queue/queue.hpp"
#include "weir/runtime/id_map.hpp"

namespace weir::detail {

using time_point = caf::actor_clock::time_point;
using durable_atom = caf::atom_constant<caf::atom("wdurable")>;
using tick_atom = caf::atom_constant<caf::atom("wtick")>;
using replayed_atom = caf::atom_constant<caf::atom("wreplayed")>;

struct consumer_entry {
  caf::actor handle;
  std::uint32_t serial = 0;       // names it in in_flight; never 0
  std::uint32_t window = 0;       // credit: most deliveries it may hold unacked
  std::uint32_t outstanding = 0;  // deliveries it holds unacked
};

struct in_flight_entry {
  // The holder's consumer_entry::serial: a number, not an actor_addr, whose
  // copy and release would be two atomic operations per delivery.
  std::uint32_t consumer = 0;
  std::uint32_t attempt = 0;
  time_point deadline;  // of its ack; found by a scan at each tick, see expire_deliveries
};

struct producer_entry {
  std::uint64_t epoch = 0;
  std::uint64_t accepted = 0;  // highest sequence handed to the log
  std::uint64_t durable = 0;   // highest sequence confirmed
};

struct ready_entry {
  std::uint64_t id;
  std::uint32_t attempts;  // deliveries so far
};

struct dead_letter_pending {
  std::uint64_t id;
  std::uint32_t attempts;
  std::string reason;
  std::string last_error;
};

struct queue_state {
  static inline const char* name = "weir.queue";
  queue_options options;
  std::shared_ptr<file_system> owned_fs;  // an in-memory queue's; outlives `log`
  std::shared_ptr<checkpoint_log> log;
  std::map<caf::actor_addr, consumer_entry> consumers;
  caf::actor_addr last_served;  // round robin between consumers
  std::uint32_t consumer_serial_last = 0;
  id_map<in_flight_entry> in_flight;
  std::deque<ready_entry> ready;
  std::multimap<time_point, ready_entry> delayed;
  std::unordered_map<std::uint64_t, std::string> last_errors;  // of messages not yet acked
  std::uint64_t log_cursor = 1;           // ids below have been taken into `ready` (or are done)
  std::uint64_t first_delivered_max = 0;  // first deliveries go in id order
  std::unordered_map<std::uint64_t, producer_entry> producers;
  // The queue publishes to its dead-letter queue as a producer of its own.
  std::uint64_t dlq_producer_id = 0;
  std::uint64_t dlq_epoch = 0;
  std::uint64_t dlq_next_seq = 1;
  std::map<std::uint64_t, dead_letter_pending> dlq_pending;  // by dlq sequence
  std::unordered_set<std::uint64_t> dead_lettering;          // ids in dlq_pending
  body_cache recent_bodies;  // bounded by options.body_cache_bytes_max
  // Replays into another queue, as a producer of our own: pending by sequence.
  std::uint64_t replay_producer_id = 0;
  std::uint64_t replay_epoch = 0;
  std::uint64_t replay_next_seq = 1;
  struct replay_request {
    std::uint64_t left;   // not yet confirmed by the target
    std::uint64_t total;  // the answer
    caf::typed_response_promise<std::uint64_t> promise;
  };
  struct replay_pending {
    std::uint64_t id;
    std::shared_ptr<replay_request> request;
  };
  std::map<std::uint64_t, replay_pending> replaying;
  // Replay requests whose acks are being written, by ticket: answered once durable.
  std::multimap<std::uint64_t, std::shared_ptr<replay_request>> replay_answers;
  std::uint64_t next_replay_ticket = 1;
  std::optional<time_point> tick_at;
  std::uint64_t tick_generation = 0;
  std::mt19937_64 random{std::random_device{}()};
  std::shared_ptr<queue_stats> counters;  // options.counters, or the queue's own
  // One past the last id of each publish the log has not yet reported on, oldest
  // first (the log reports in append order).
  std::deque<std::uint64_t> publish_end_ids;
  // The first id the next publish must get. After a failed append the log gives
  // its ids to later appends; until the queue has heard of the failure, a publish
  // that would take them is refused, so that no producer's later messages are
  // stored (and confirmed, which covers all before them) without its earlier ones.
  std::uint64_t next_publish_id = 1;
  // Publishes the log will still report as failed: those behind the first failure
  // of a write, all appended before the queue heard of it.
  std::size_t failed_publishes_to_come = 0;
};

using queue_actor = caf::stateful_actor<queue_state>;

// --- shared by the handlers (queue_actor.cpp) ------------------------------------

/// Counts the ids below `end_id` not counted yet as published: stored by the log.
void count_published_below(queue_stats& counters, std::uint64_t end_id);

void report_protocol_error(queue_actor* self, const caf::strong_actor_ptr& to, std::string what,
                           protocol_error_kind kind = protocol_error_kind::refused);

/// After a failed fdatasync the log refuses every append until it is reopened,
/// and what it holds is only known by reading it back: the queue stops, so that
/// its supervisor restarts it on a fresh open of the log (recovery reads what
/// the disk holds, producers resend what was not confirmed). True when it stops.
bool stop_if_log_failed(queue_actor* self);

/// For an append the log refused at once (its callback will not come): counts
/// it, logs it as `what`, and stops the queue if the log has failed, so that a
/// restart rebuilds the state from the disk. True when the queue stopped.
bool stop_if_refused(queue_actor* self, const status& stored, const char* what);

// --- handing out (dispatch.cpp) --------------------------------------------------

/// Tops up `ready` from the log's ready ids, up to the ready window.
void refill(queue_actor* self);

/// Delivers ready messages to consumers with credit, round robin, in batches.
void dispatch(queue_actor* self);

/// Ack deadlines have no index (keeping one cost two tree updates per delivery):
/// a tick scans the in-flight deliveries. Ticks come at the earliest deadline,
/// but no closer together than this, so expiry is at most this late.
caf::actor_clock::duration_type deadline_scan_interval(const queue_options& options);

/// A tick at `at`, unless one is due sooner.
void schedule_tick_at(queue_actor* self, time_point at);

/// A tick for the first delayed message to become ready.
void schedule_tick(queue_actor* self);

// --- taking back (redelivery.cpp) ------------------------------------------------

void dead_letter(queue_actor* self, std::uint64_t id, std::uint32_t attempts, std::string reason);

/// A delivery came back unprocessed: ready again (after `delay`), or a dead letter.
void requeue(queue_actor* self, std::uint64_t id, std::uint32_t attempts,
             std::optional<std::chrono::milliseconds> delay, const std::string& why);

void drop_consumer(queue_actor* self, const caf::actor_addr& consumer, const char* why);

/// Requeues in-flight deliveries past their ack deadline, in id order, and
/// schedules the tick for the earliest deadline left.
void expire_deliveries(queue_actor* self, time_point now);

// --- per acked id: inline, as they were when all of this was one file ------------

/// The serial of `consumer`, or 0 (which holds nothing) when it is not subscribed.
inline std::uint32_t serial_of(const queue_state& state, const caf::actor_addr& consumer) {
  auto it = state.consumers.find(consumer);
  return it == state.consumers.end() ? 0 : it->second.serial;
}

/// Takes a delivery held by consumer `serial` out of flight; nothing when it holds
/// no such id (the caller reports it). The consumer's outstanding count is the caller's.
inline std::optional<in_flight_entry> take_in_flight(queue_state& state, std::uint32_t consumer,
                                                     std::uint64_t id) {
  auto* entry = state.in_flight.find(id);
  if (!entry || entry->consumer != consumer) return std::nullopt;
  std::optional<in_flight_entry> taken = std::move(*entry);
  state.in_flight.erase(id);
  return taken;
}

inline void note_returned(queue_state& state, std::uint32_t consumer, std::uint32_t count) {
  // A scan: there are few consumers, and this runs once per ack message.
  for (auto& [address, c] : state.consumers) {
    if (c.serial == consumer) {
      c.outstanding -= std::min(c.outstanding, count);
      return;
    }
  }
}

/// Releases a delivery held by `consumer`; nothing when it holds no such id (the
/// caller reports it).
inline std::optional<in_flight_entry> release(queue_actor* self, std::uint32_t consumer,
                                              std::uint64_t id) {
  auto entry = take_in_flight(self->state, consumer, id);
  if (entry) note_returned(self->state, consumer, 1);
  return entry;
}

}  // namespace weir::detail

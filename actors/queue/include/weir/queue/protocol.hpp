#pragma once
// The queue protocol as CAF messages (DESIGN.md, "The queue protocol"). Every
// verb carries a batch or a range; the same fields travel in wire frames later.
//
//   producer -> queue   (publish_atom, publish_batch)
//   queue -> producer   (confirm_atom, confirmation)   once durable
//   consumer -> queue   (subscribe_atom, credit) / (credit_atom, n) / (unsubscribe_atom)
//   queue -> consumer   (deliver_atom, delivery_batch)
//   consumer -> queue   (ack_atom, std::vector<id_range>) / (nack_atom, nack_request)
//                       (extend_atom, std::vector<uint64_t> ids, uint32_t extension_ms)
//   anyone -> queue     (stats_atom) -> queue_stats   counters, log size, fsync latencies,
//                       and the queue actor's own mailbox size
//   anyone -> queue     (list_atom, uint64_t from_id, uint32_t limit) -> std::vector<delivery>
//                       ready messages, not delivered (how a dead-letter queue is inspected)
//   anyone -> queue     (replay_atom, caf::actor target, uint32_t limit) -> uint64_t
//                       moves up to `limit` ready messages into `target` (dead letters back
//                       into their queue); answers how many once the target confirmed them

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include <caf/atom.hpp>
#include <caf/fwd.hpp>
#include <caf/error.hpp>
#include <caf/meta/load_callback.hpp>
#include <caf/meta/type_name.hpp>

#include "weir/runtime/checkpoint_log.hpp"

namespace weir {

using publish_atom = caf::atom_constant<caf::atom("wpublish")>;
using confirm_atom = caf::atom_constant<caf::atom("wconfirm")>;
using subscribe_atom = caf::atom_constant<caf::atom("wsub")>;
using unsubscribe_atom = caf::atom_constant<caf::atom("wunsub")>;
using credit_atom = caf::atom_constant<caf::atom("wcredit")>;
using deliver_atom = caf::atom_constant<caf::atom("wdeliver")>;
using ack_atom = caf::atom_constant<caf::atom("wack")>;
using nack_atom = caf::atom_constant<caf::atom("wnack")>;
using extend_atom = caf::atom_constant<caf::atom("wextend")>;
using stats_atom = caf::atom_constant<caf::atom("wstats")>;
using protocol_error_atom = caf::atom_constant<caf::atom("wperror")>;
using list_atom = caf::atom_constant<caf::atom("wlist")>;
using replay_atom = caf::atom_constant<caf::atom("wreplay")>;

/// The application's part of a message.
struct message_data {
  std::string key;
  shared_bytes payload;  ///< received ones share their frame's buffer (shared_bytes.hpp)
  std::vector<message_header> headers;
  std::int64_t publish_time_ns = 0;
};

/// Messages first_seq, first_seq + 1, ... of one producer incarnation.
struct publish_batch {
  std::uint64_t producer_id = 0;  ///< 0: anonymous, never de-duplicated
  std::uint64_t epoch = 0;        ///< a restarted producer uses a larger epoch
  std::uint64_t first_seq = 1;
  std::vector<message_data> messages;
};

/// Every sequence number <= up_to_seq of (producer_id, epoch) is durable.
struct confirmation {
  std::string queue;
  std::uint64_t producer_id = 0;
  std::uint64_t epoch = 0;
  std::uint64_t up_to_seq = 0;
};

struct delivery {
  std::uint64_t id = 0;
  std::uint32_t attempt = 0;  ///< 1 on the first delivery
  std::uint64_t producer_id = 0;
  std::uint64_t producer_seq = 0;
  message_data data;
};

struct delivery_batch {
  std::string queue;
  std::vector<delivery> deliveries;
};

struct nack_request {
  std::vector<std::uint64_t> ids;
  bool dead_letter = false;    ///< else requeue
  std::uint32_t delay_ms = 0;  ///< requeue: ready again after this long (0: the retry backoff)
  std::string reason;          ///< the handler's error text
};

/// What a producer does about a protocol_error.
enum class protocol_error_kind : std::uint8_t {
  refused,       ///< a gap, bad credit, an ack of nothing: a producer resends what is unconfirmed
  fenced,        ///< a newer epoch of this producer exists: it stops
  store_failed,  ///< the log could not store a publish (a full disk): resend after a while
};

/// A protocol violation reported back to its sender; the queue keeps serving.
struct protocol_error {
  std::string queue;
  std::string message;
  protocol_error_kind kind = protocol_error_kind::refused;
};

struct queue_stats {
  std::string name;
  std::uint64_t ready = 0;    ///< waiting for delivery (depth)
  std::uint64_t unacked = 0;  ///< delivered, not yet acked
  std::uint64_t delayed = 0;  ///< waiting out a retry backoff
  std::uint64_t dead_lettering = 0;  ///< sent to the dead-letter queue, not yet confirmed there
  std::uint64_t published = 0;  ///< messages stored since the queue started (ids the log gave)
  /// One past the newest id counted in `published`: across restarts the count
  /// follows the log's ids, so it never goes down and never counts one twice.
  std::uint64_t published_end_id = 0;
  std::uint64_t confirmed = 0;
  std::uint64_t duplicates = 0;  ///< resent publishes dropped by de-duplication
  std::uint64_t delivered = 0;
  std::uint64_t redelivered = 0;
  std::uint64_t acked = 0;
  std::uint64_t dead_lettered = 0;
  std::uint64_t consumers = 0;
  std::uint64_t protocol_errors = 0;  ///< bad acks, bad credit, fenced epochs, gaps
  std::uint64_t storage_errors = 0;   ///< appends the log refused or failed
  std::uint64_t mailbox = 0;          ///< messages waiting in the queue actor's mailbox
  std::uint64_t log_bytes = 0;        ///< size of the log's segment files
  std::uint64_t log_segments = 0;
  std::uint64_t log_segments_reused = 0;  ///< new segments written over a spare file
  histogram_snapshot fsync_seconds = {};  ///< the log's fdatasync latencies
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, shared_bytes& x) {
  // As a string: saving copies it out, loading builds an owned buffer.
  std::string text = x.str();
  return f(caf::meta::type_name("weir::shared_bytes"), text,
           caf::meta::load_callback([&]() -> caf::error {
             x = shared_bytes(std::move(text));
             return caf::none;
           }));
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, message_header& x) {
  return f(caf::meta::type_name("weir::message_header"), x.name, x.value);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, id_range& x) {
  return f(caf::meta::type_name("weir::id_range"), x.begin, x.end);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, message_data& x) {
  return f(caf::meta::type_name("weir::message_data"), x.key, x.payload, x.headers,
           x.publish_time_ns);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, publish_batch& x) {
  return f(caf::meta::type_name("weir::publish_batch"), x.producer_id, x.epoch, x.first_seq,
           x.messages);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, confirmation& x) {
  return f(caf::meta::type_name("weir::confirmation"), x.queue, x.producer_id, x.epoch,
           x.up_to_seq);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, delivery& x) {
  return f(caf::meta::type_name("weir::delivery"), x.id, x.attempt, x.producer_id, x.producer_seq,
           x.data);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, delivery_batch& x) {
  return f(caf::meta::type_name("weir::delivery_batch"), x.queue, x.deliveries);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, nack_request& x) {
  return f(caf::meta::type_name("weir::nack_request"), x.ids, x.dead_letter, x.delay_ms, x.reason);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, protocol_error& x) {
  auto kind = static_cast<std::uint8_t>(x.kind);
  return f(caf::meta::type_name("weir::protocol_error"), x.queue, x.message, kind,
           caf::meta::load_callback([&]() -> caf::error {
             x.kind = static_cast<protocol_error_kind>(kind);
             return caf::none;
           }));
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, histogram_snapshot& x) {
  return f(caf::meta::type_name("weir::histogram_snapshot"), x.bounds, x.counts, x.count, x.sum);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, queue_stats& x) {
  return f(caf::meta::type_name("weir::queue_stats"), x.name, x.ready, x.unacked, x.delayed,
           x.dead_lettering,
           x.published, x.confirmed, x.duplicates, x.delivered, x.redelivered, x.acked,
           x.dead_lettered, x.consumers, x.protocol_errors, x.storage_errors, x.mailbox,
           x.log_bytes, x.log_segments, x.log_segments_reused, x.fsync_seconds);
}

/// Registers the protocol's message types (and the supervisor's and the
/// producer's) on a config: enough for a program whose queues are all in
/// process. One that also talks to nodes calls add_actor_types instead.
void add_queue_types(caf::actor_system_config& config);

}  // namespace weir

#pragma once
// The queue actor: stores published messages in its checkpoint log, confirms
// them once durable, delivers them to subscribed consumers within their credit,
// and redelivers what is not acked (deadline, nack, consumer death) until it is
// acked or moved to the dead-letter queue. A restarted queue recovers its log
// and delivers again everything that was not acked.

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include <caf/actor.hpp>
#include <caf/fwd.hpp>

#include "weir/queue/protocol.hpp"
#include "weir/runtime/backoff.hpp"
#include "weir/runtime/checkpoint_log.hpp"
#include "weir/runtime/file_system.hpp"
#include "weir/runtime/status.hpp"

namespace weir {

struct queue_options {
  std::string name;
  std::string data_dir;  ///< the queue's log directory (durable queues)
  /// false: an in-memory queue for cheap edges: the same protocol and semantics,
  /// its log kept in memory (lost when the process ends) instead of on disk.
  bool durable = true;
  log_options log;                                ///< sync policy, segment size, ...
  std::chrono::milliseconds ack_timeout{30'000};  ///< unacked this long -> redelivered
  backoff_policy retry_backoff = backoff_policy::exponential(std::chrono::milliseconds(100),
                                                             std::chrono::milliseconds(30'000));
  /// Deliveries after which a message that fails again goes to the dead-letter
  /// queue; 0 = no limit. A limit needs a dead_letter_queue.
  std::uint32_t max_deliveries = 0;
  caf::actor dead_letter_queue;
  /// Messages per deliver message; never more than a quarter of the consumer's
  /// credit, so that the acks of one batch overlap the next.
  std::uint32_t delivery_batch_max = 1024;
  std::uint32_t ready_window = 4096;       ///< ready ids held in memory; the rest stay on disk
  /// Bodies of recently published messages kept for their first delivery (each
  /// counts its key, payload and about 130 bytes of bookkeeping); past this,
  /// messages are read back from the log. A batch that fits whole is kept as
  /// it came (sharing its frame); of one that does not, the part that fits is copied.
  std::uint64_t body_cache_bytes_max = 16ull << 20;
  /// Where the queue counts (published, acked, ...). A supervisor's start
  /// function passes the same one to every incarnation, so that the counts go
  /// on across restarts; null: each incarnation counts from zero.
  std::shared_ptr<queue_stats> counters;
};

/// The one rule on a delivery limit, however a queue's policy is given (queue
/// options, a pipeline edge, a config file): past `max_deliveries` a message
/// needs a dead-letter queue to go to. Ok, or why not.
[[nodiscard]] status check_delivery_limit(std::uint32_t max_deliveries,
                                          bool has_dead_letter_queue);

/// Checks the options, opens (recovering) the log and spawns the queue.
/// `fs` must outlive the queue.
result<caf::actor> spawn_queue(caf::actor_system& system, file_system& fs, queue_options options);

}  // namespace weir

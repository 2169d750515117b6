#pragma once
// Where a message waits between publish and delivery: timestamped marks at each
// hand-over, for bench/latency_trace.sh. Compiled in only with the CMake option
// WEIR_LATENCY_TRACE; otherwise every mark is an empty inline function.

#include <cstdint>

namespace weir::latency_trace {

/// The hand-overs marked, in the order a message passes them.
enum class stage : std::uint8_t {
  producer_sent,      ///< the producer's link actor encodes a publish
  node_received,      ///< the node's link thread checks the publish frame
  queue_received,     ///< the queue actor takes the publish
  log_synced,         ///< the log's writer has synced it
  queue_dispatched,   ///< the queue actor sends a delivery batch
  consumer_received,  ///< the consumer's link thread checks the delivery frame
  consumer_handled,   ///< the consumer actor starts on the batch
};

/// One mark as written to the trace file (native byte order), and read back by
/// bench/latency_trace_report.
struct record {
  std::int64_t wall_us;  ///< system clock, microseconds since the epoch
  std::int64_t stage;    ///< a `stage`
  std::int64_t key;      ///< the publish time of the batch's first message, ns
};

#ifdef WEIR_LATENCY_TRACE
/// Records (now, stage, key) when WEIR_LATENCY_TRACE_FILE names a file; the
/// key is the publish time of the batch's first message. Written at exit.
void mark(stage at, std::int64_t publish_time_ns) noexcept;
#else
inline void mark(stage, std::int64_t) noexcept {}
#endif

}  // namespace weir::latency_trace

#pragma once
// The state a checkpoint log rebuilds from its records, and the one function
// that applies a record to it: recovery and the live writer share it, so what
// is replayed after a crash is exactly what was applied before it.

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "weir/runtime/file_system.hpp"
#include "weir/runtime/id_map.hpp"
#include "weir/runtime/id_set.hpp"
#include "weir/schema/log.capnp.h"

namespace weir::detail {

/// Where the publishes of one segment are, for reading messages back by id.
struct segment_entry {
  std::uint64_t number = 0;
  std::string path;
  std::uint64_t size = 0;      ///< bytes known to hold valid records (header included)
  std::uint64_t first_id = 0;  ///< publishes have ids in [first_id, end_id)
  std::uint64_t end_id = 0;
  std::uint64_t records = 0;
  bool scanned = false;
  /// Sparse index: (first id of a publish record, its offset), ascending.
  std::vector<std::pair<std::uint64_t, std::uint64_t>> index;
  std::shared_ptr<readable_file> reader;  ///< opened on first read
  /// Set after recovery skipped a damaged region: the next publish gets an index
  /// entry, so reads of later ids start past the damage instead of walking into it.
  bool index_next_publish = false;
};

struct producer_position {
  std::uint64_t epoch = 0;
  std::uint64_t last_seq = 0;
  friend bool operator==(const producer_position&, const producer_position&) = default;
};

struct log_state {
  std::uint64_t next_id = 1;
  id_set done;  ///< acked, dead-lettered, lost or compacted away
  // Deliveries so far, written through set_attempts, read through attempts_of:
  // first deliveries come in id order, so ids delivered once are kept as ranges
  // (`delivered_once`, done ids included: readers skip those), and only the
  // others get an entry in `attempts` (ids not done only).
  id_map<std::uint32_t> attempts;
  std::uint64_t attempts_id_max = 0;  ///< no id above it is in `attempts`
  id_set delivered_once;
  std::uint64_t published = 0;
  std::uint64_t acked = 0;
  std::uint64_t dead_lettered = 0;
  std::uint64_t lost = 0;
  std::map<std::uint64_t, producer_position> producers;  ///< by producer id; 0 is anonymous
};

/// Records the ids of a publish of `count` messages starting at `first` written at
/// `offset`; false when `first` is below next_id (a stale record). Ids skipped
/// between next_id and `first` are marked lost (their record was unreadable).
bool apply_publish(log_state& state, segment_entry& segment, std::uint64_t offset,
                   std::uint64_t first, std::uint64_t count, std::uint64_t index_interval_bytes);

/// Notes that producer `producer` (non-zero) published (epoch, seq).
void note_producer(log_state& state, std::uint64_t producer, std::uint64_t epoch,
                   std::uint64_t seq);

/// Records that `id` (not done) was delivered `count` times.
void set_attempts(log_state& state, std::uint64_t id, std::uint32_t count);

/// Deliveries recorded for `id` (not done). An id above every one in the map
/// skips it: the writer thread writes the map, so a lookup misses the cache.
inline std::uint32_t attempts_of(const log_state& state, std::uint64_t id) {
  if (id <= state.attempts_id_max) {
    if (const auto* found = state.attempts.find(id)) return *found;
  }
  return state.delivered_once.contains(id) ? 1 : 0;
}

/// Calls fn(id, attempts) for every id not done that was delivered at least once.
template <class Fn>
void for_each_attempts(const log_state& state, Fn&& fn) {
  state.attempts.for_each(fn);
  for (const auto& [begin, end] : state.delivered_once.ranges()) {
    for (auto id = state.done.first_missing_from(begin); id < end;
         id = state.done.first_missing_from(id + 1)) {
      if (!state.attempts.contains(id)) fn(id, std::uint32_t{1});
    }
  }
}

/// Ids not done that were delivered at least once.
std::uint64_t delivered_count(const log_state& state);

/// Why apply_record did not apply a record.
enum class apply_outcome { applied, stale_publish };

/// Applies one decoded record at `offset` of `segment`. A publish whose first id is
/// beyond next_id marks the ids in between lost (their record was unreadable).
apply_outcome apply_record(schema::LogRecord::Reader record, log_state& state,
                           segment_entry& segment, std::uint64_t offset,
                           std::uint64_t index_interval_bytes);

}  // namespace weir::detail

#pragma once
// The checkpoint log of one durable queue: a directory of segment files holding
// publish, ack, dead-letter and delivery-attempt records, plus ack-state
// snapshots. It survives process crashes and power loss (per sync policy),
// reports corruption precisely, and never delivers a record that fails its CRC.

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "weir/runtime/file_system.hpp"
#include "weir/runtime/histogram.hpp"
#include "weir/runtime/shared_bytes.hpp"
#include "weir/runtime/status.hpp"
#include "weir/runtime/sync_policy.hpp"

namespace weir {

struct log_options {
  sync_policy sync;
  std::uint64_t segment_bytes_max = 64ull << 20;  ///< roll to a new segment past this
  std::uint32_t record_size_bytes_max = 16u << 20;     ///< larger appends are refused
  std::uint64_t pending_bytes_max = 8ull << 20;       ///< appends wait while this much is unwritten
  std::uint64_t index_interval_bytes = 64u << 10;     ///< one read index entry per this many bytes
  std::uint64_t snapshot_every_bytes = 256ull << 20;  ///< automatic snapshot; 0 = only on request
  /// Compacted segment files kept to be written over by later segments, which
  /// syncs faster than growing new files; 0 deletes them.
  std::uint32_t spare_segments_max = 4;
  /// With sync `always`, appends made without a callback (nobody waits for them) are
  /// written at once but synced with the next append that has one, or after this long.
  std::chrono::milliseconds unwaited_sync_delay_max{100};
  bool read_only = false;            ///< inspect only: nothing is truncated, created or written
  bool verify_all_segments = false;  ///< also CRC-check segments a snapshot covers
  /// Called from open() while recovery reads segments: after each segment, at most
  /// every 4 MiB within one, and finally with bytes_done == bytes_total. The total is
  /// the size of the segments recovery reads (those a snapshot covers count only
  /// with verify_all_segments); it is 0, with one call, when there is nothing to read.
  std::function<void(std::uint64_t bytes_done, std::uint64_t bytes_total)> recovery_progress = {};
};

struct id_range {
  std::uint64_t begin = 0;  ///< first id
  std::uint64_t end = 0;    ///< one past the last id
};

struct message_header {
  std::string name;
  std::string value;
};

/// A message to publish; the views must stay valid during the publish() call only.
struct outgoing_message {
  std::uint64_t producer_id = 0;
  std::uint64_t producer_epoch = 0;
  std::uint64_t producer_seq = 0;
  std::string_view key;
  std::string_view payload;
  std::span<const message_header> headers;
  std::int64_t publish_time_ns = 0;
};

/// A message read back from the log.
struct stored_message {
  std::uint64_t id = 0;
  std::uint64_t producer_id = 0;
  std::uint64_t producer_epoch = 0;
  std::uint64_t producer_seq = 0;
  std::string key;
  shared_bytes payload;  ///< a slice of the record read, shared by the messages read with it
  std::vector<message_header> headers;
  std::int64_t publish_time_ns = 0;
  std::uint32_t attempts = 0;  ///< deliveries recorded so far
};

struct dead_letter_entry {
  std::uint64_t id = 0;
  std::uint32_t attempts = 0;
  std::string reason;
  std::string last_error;
  std::string dead_letter_queue;
};

struct delivery_attempt {
  std::uint64_t id = 0;
  std::uint32_t attempts = 0;  ///< absolute count, not an increment
};

/// Bytes recovery cut from the end of a segment (a torn write or garbage tail).
struct truncation {
  std::string file;
  std::uint64_t offset = 0;  ///< the file now ends here
  std::uint64_t bytes = 0;   ///< how many bytes were cut
  std::string reason;
};

/// A damaged region that recovery skipped because good records follow it.
struct corruption {
  std::string file;
  std::uint64_t offset = 0;
  std::uint64_t bytes = 0;
  std::string reason;
};

/// One segment as recovery saw it.
struct segment_summary {
  std::string file;
  std::uint64_t number = 0;
  std::uint64_t size_bytes = 0;
  std::uint64_t records = 0;   ///< records read (0 when covered by a snapshot and not verified)
  bool scanned = false;        ///< read during this recovery
  std::uint64_t first_id = 0;  ///< publishes have ids in [first_id, end_id)
  std::uint64_t end_id = 0;
};

/// What open() found and did.
struct recovery_report {
  std::vector<segment_summary> segments;
  std::optional<std::uint64_t> snapshot_sequence;  ///< the snapshot recovery started from
  std::string snapshot_file;
  std::uint64_t records_replayed = 0;  ///< records applied after the snapshot
  std::uint64_t bytes_replayed = 0;
  std::vector<truncation> truncations;  ///< in read-only mode: what would be cut
  std::vector<corruption> corruptions;
  std::vector<std::string> warnings;  ///< e.g. a corrupt snapshot that was passed over
  double seconds = 0;

  bool found_damage() const { return !truncations.empty() || !corruptions.empty(); }
};

/// Counters and sizes; cheap to take.
struct log_stats {
  std::uint64_t next_id = 1;
  std::uint64_t published = 0;
  std::uint64_t acked = 0;
  std::uint64_t dead_lettered = 0;
  std::uint64_t lost = 0;     ///< ids whose publish record was unreadable
  std::uint64_t ready = 0;    ///< not acked, dead-lettered or lost
  std::uint64_t unacked = 0;  ///< of the ready ones, those delivered at least once
  std::uint64_t segments = 0;
  std::uint64_t log_bytes = 0;
  std::uint64_t snapshots = 0;  ///< snapshots written by this instance
  std::uint64_t syncs = 0;
  std::uint64_t append_errors = 0;
  std::uint64_t sync_errors = 0;
  std::uint64_t corrupt_reads = 0;  ///< read() calls that met a bad record
  std::uint64_t segments_reused = 0;  ///< segments written over a compacted segment's file
  /// Seconds each fdatasync of the writer took (group commits and segment seals),
  /// failed ones included; `fsync_seconds.count` equals `syncs`.
  histogram_snapshot fsync_seconds = {};
};

/// The newest message of one producer that the log holds.
struct producer_sequence {
  std::uint64_t epoch = 0;
  std::uint64_t last_seq = 0;
};

/// Called once per append, from the log's writer thread, when it is durable
/// under the sync policy (ok) or has failed (not durable: resend it). It
/// must be quick and must not wait on the log (sync(), snapshot()): the writer waits for it.
using durable_callback = std::function<void(const status&)>;

class checkpoint_log {
 public:
  /// Opens (creating if missing, unless read-only) and recovers the log in `dir`.
  static result<std::unique_ptr<checkpoint_log>> open(file_system& fs, std::string dir,
                                                      log_options options = {});

  /// Waits for every accepted append to be written and synced, then closes.
  ~checkpoint_log();

  checkpoint_log(const checkpoint_log&) = delete;
  checkpoint_log& operator=(const checkpoint_log&) = delete;

  /// Appends messages with dense ids in order; returns the first id. `done` fires once durable.
  /// With `expected_first_id`, refused unless the first id would be that one: a failed
  /// append gives its ids to later appends, and a caller that has not yet heard of the
  /// failure must not store a producer's later messages without its earlier ones.
  result<std::uint64_t> publish(std::span<const outgoing_message> messages, durable_callback done,
                                std::optional<std::uint64_t> expected_first_id = std::nullopt);

  /// Marks ids acknowledged; ids not yet published are refused.
  status ack(std::span<const id_range> ranges, durable_callback done);

  /// Removes messages from the ready set as dead letters, with their reasons.
  status dead_letter(std::span<const dead_letter_entry> entries, durable_callback done);

  /// Records delivery counts so that they survive a restart.
  status record_attempts(std::span<const delivery_attempt> attempts, durable_callback done);

  /// Blocks until every append accepted so far is synced, whatever the policy.
  status sync();

  /// A hint that messages below `id` were delivered and will rarely be read again:
  /// once synced, the page cache may let their bytes go (see docs/checkpoint-log.md).
  void release_cached_below(std::uint64_t id) noexcept;

  /// Writes an ack-state snapshot covering everything accepted so far, then deletes
  /// segments whose messages are all acked or dead-lettered. Blocks until the
  /// snapshot is durable; appends keep flowing meanwhile (it is written off the
  /// writer thread).
  status snapshot();

  /// Reads a message back by id; not_found for ids never published or already done.
  result<stored_message> read(std::uint64_t id) const;

  /// read() for each id, in order: one lookup pass and one decoded record serve a batch.
  std::vector<result<stored_message>> read_many(std::span<const std::uint64_t> ids) const;

  /// Calls fn(id, attempts) for up to `limit` ready ids >= `from`, in ascending order.
  /// Ready means durable under the sync policy too: a crash cannot take it back.
  void for_each_ready(std::uint64_t from, std::size_t limit,
                      const std::function<void(std::uint64_t, std::uint32_t)>& fn) const;

  /// The newest (epoch, sequence) written for a producer (id != 0), for de-duplication.
  std::optional<producer_sequence> producer(std::uint64_t producer_id) const;

  /// Number of ready ids >= `from` (not acked, dead-lettered or lost).
  std::uint64_t count_ready_from(std::uint64_t from) const;

  const recovery_report& recovery() const noexcept;
  log_stats stats() const;

  /// Ok while appends are accepted; after a failed fdatasync, why every append is
  /// refused until the log is reopened (recovery then reads back what the disk holds).
  status failure() const;
  const std::string& dir() const noexcept;

  class impl;

 private:
  explicit checkpoint_log(std::unique_ptr<impl> self);
  std::unique_ptr<impl> impl_;
};

}  // namespace weir

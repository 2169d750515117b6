#pragma once
// Snapshots and compaction: the writer thread captures the ack state at a
// synced record boundary, and the snapshot thread writes it, fsyncs it, and
// then deletes (or keeps as spares) the segments and snapshot files it made
// unneeded (docs/checkpoint-log.md, "Snapshots and compaction"). The reasoning
// that every crash point recovers is written out in log_snapshots.cpp.

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <capnp/message.h>

#include "log_context.hpp"
#include "spare_segments.hpp"
#include "weir/runtime/file_system.hpp"
#include "weir/runtime/status.hpp"

namespace weir::detail {

// A snapshot captured by the writer thread and written by the snapshot thread.
struct snapshot_job {
  std::uint64_t sequence = 0;
  std::uint64_t covers_segment = 0;  // everything before (segment, offset) was synced
  std::uint64_t covers_offset = 0;
  std::vector<std::uint64_t> deletable;        // segments to delete once it is durable
  std::vector<std::uint64_t> stale_snapshots;  // snapshot files to delete then
  std::unique_ptr<capnp::MallocMessageBuilder> message;
  status outcome;  // set by the snapshot thread
};

class log_snapshots {
 public:
  log_snapshots(log_context& context, spare_segments& spares)
      : context_(context), spares_(spares) {}

  /// Waits for the snapshot thread, which must be idle by then.
  ~log_snapshots();

  log_snapshots(const log_snapshots&) = delete;
  log_snapshots& operator=(const log_snapshots&) = delete;

  /// Where recovery left off: the snapshot files kept (oldest first) and the
  /// segment of the newest one's position (0: none).
  void resume(std::vector<std::uint64_t> kept_sequences, std::uint64_t last_covers_segment);

  /// Starts the snapshot thread; `written` gets each job back from it, its outcome set.
  void start(std::function<void(std::unique_ptr<snapshot_job>)> written);

  /// Ends the snapshot thread once it is idle.
  void stop();

  // On the writer thread, one job at a time:

  /// A snapshot of the state now, covering the log up to (segment, offset),
  /// which the caller has synced.
  std::unique_ptr<snapshot_job> capture(std::uint64_t covers_segment, std::uint64_t covers_offset);

  /// Hands a captured job to the snapshot thread.
  void submit(std::unique_ptr<snapshot_job> job);

  /// Takes note of a job the snapshot thread wrote (outcome ok): the snapshot
  /// files kept now, for the next capture.
  void written(const snapshot_job& job);

 private:
  // Snapshot thread.
  void snapshot_loop();
  void write_snapshot(snapshot_job& job);
  /// Keeps a compacted segment's file as a spare, or removes it, freeing its
  /// space a slice at a time first.
  void release_segment(std::uint64_t number, const std::string& path,
                       std::weak_ptr<readable_file> reader);

  /// With the state lock held.
  std::unique_ptr<capnp::MallocMessageBuilder> build_snapshot(
      std::uint64_t sequence, std::uint64_t covers_segment, std::uint64_t covers_offset,
      const std::vector<std::uint64_t>& deleted) const;

  log_context& context_;
  spare_segments& spares_;

  // Snapshot files kept (oldest first) and the segment of the newest one's
  // position (0: none). Recovery sets them; then only the writer thread, between
  // snapshots.
  std::vector<std::uint64_t> sequences_;
  std::uint64_t last_covers_segment_ = 0;

  // At most one job at a time, handed to the snapshot thread under mutex_.
  std::mutex mutex_;
  std::condition_variable ready_;
  std::unique_ptr<snapshot_job> todo_;
  bool stopping_ = false;
  std::function<void(std::unique_ptr<snapshot_job>)> written_;
  std::thread thread_;
};

}  // namespace weir::detail

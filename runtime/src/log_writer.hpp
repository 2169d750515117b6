#pragma once
// The writer: appends are encoded on their callers' threads and queued here;
// one writer thread takes everything queued, writes it to the active segment
// with one write() per segment, syncs it as the sync policy says (group
// commit), rolls to a new segment (written over a spare file when there is
// one), and fires each append's callback once it is durable
// (docs/checkpoint-log.md, "Appends and sync policies"). It also captures and
// finishes snapshots, being the only thread that appends.
//
// The append lock guards the queue and whether the log still takes appends;
// the active segment and the sync bookkeeping belong to the writer thread
// alone; what an append does to the state is applied under the state lock.

#include <array>
#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include <capnp/message.h>

#include "log_context.hpp"
#include "log_snapshots.hpp"
#include "record_format.hpp"
#include "spare_segments.hpp"
#include "weir/runtime/checkpoint_log.hpp"
#include "weir/runtime/file_system.hpp"
#include "weir/runtime/status.hpp"

namespace weir::detail {

// What a publish record does to the state, so the writer applies it without
// decoding the record again (count 0: not a publish; the writer decodes it).
struct publish_summary {
  std::uint64_t first_id = 0;
  std::uint64_t count = 0;
  std::vector<std::array<std::uint64_t, 3>> producers;  // (id, epoch, last seq), id != 0
};

/// Checks a record against the ids it refers to, or fills in the ids it takes,
/// with the append lock held: `next_id` is the first id a publish would take
/// now, `last_failure` why ids were last handed out again (ok: never).
using append_check = std::function<status(std::uint64_t next_id, const status& last_failure)>;

class log_writer {
 public:
  log_writer(log_context& context, spare_segments& spares, log_snapshots& snapshots)
      : context_(context), spares_(spares), snapshots_(snapshots) {}

  /// Stops the writer thread, which first writes and syncs everything accepted.
  ~log_writer();

  log_writer(const log_writer&) = delete;
  log_writer& operator=(const log_writer&) = delete;

  /// After recovery: opens segment `active_segment` for appends (a new one when
  /// `create`), and ids go on from the recovered state's next id.
  status open(std::uint64_t active_segment, bool create);

  /// Starts the writer thread.
  void start();

  /// Refuses further appends and waits for the writer thread to write, sync and
  /// close what was accepted, and for a snapshot in flight.
  void stop();

  /// Queues a record; `done` fires once it is durable. `summary` is a publish's:
  /// the record takes summary->count ids from the next one.
  status append(capnp::MessageBuilder& message, durable_callback done,
                const append_check& validate = {}, publish_summary* summary = nullptr);

  /// Blocks until everything accepted so far is synced.
  status sync() { return request(false); }

  /// Blocks until a snapshot captured after everything accepted so far is durable.
  status snapshot() { return request(true); }

  status failure() const {
    std::lock_guard lock(append_mutex_);
    return failure_;
  }

  void release_cached_below(std::uint64_t id) noexcept {
    auto seen = release_cached_below_.load(std::memory_order_relaxed);
    while (id > seen &&
           !release_cached_below_.compare_exchange_weak(seen, id, std::memory_order_relaxed)) {
    }
  }

  /// From the snapshot thread: a job it has written (or failed to).
  void snapshot_written(std::unique_ptr<snapshot_job> job);

 private:
  struct pending_record {
    std::size_t end_word;  // end of the framed record in pending_words_
    durable_callback done;
    publish_summary publish;
  };
  struct control_request {
    bool snapshot;  // else: sync
    std::promise<status> result;
  };

  status request(bool snapshot);
  status open_active_segment(std::uint64_t number, bool create);

  // Writer thread.
  void writer_loop();
  void write_batch(record_format::word_buffer& words, std::vector<pending_record>& records);
  void fail_from(std::vector<pending_record>& records, std::size_t first, const status& error);
  status roll_segment();
  /// Writes the clean-close marker (after the last sync); failing only leaves it out.
  void mark_closed_cleanly();
  status sync_active();
  // When what is written but unsynced must be synced (sync always or interval).
  log_clock::time_point sync_due() const;
  /// Hands the page cache back the synced bytes of messages below release_cached_below_.
  void drop_delivered_pages();
  void fire_awaiting(const status& outcome);
  void start_snapshot(std::vector<control_request*> waiters);
  void finish_snapshot(snapshot_job& job);
  void enter_failed(const status& error);
  /// Cuts what follows the last record in a file being written over.
  status cut_older_bytes();

  log_context& context_;
  spare_segments& spares_;
  log_snapshots& snapshots_;

  // Appends waiting for the writer, guarded by append_mutex_.
  mutable std::mutex append_mutex_;
  std::condition_variable work_ready_;
  std::condition_variable space_ready_;
  record_format::word_buffer pending_words_;
  std::vector<pending_record> pending_records_;
  std::deque<control_request*> pending_requests_;
  std::uint64_t next_assigned_id_ = 1;  // ids handed out; >= context_.state.next_id
  status last_append_failure_;          // why ids were last handed out again (fail_from)
  bool stopping_ = false;
  status failure_;  // set once a sync failed: the log refuses all further appends
  // The snapshot thread hands a finished job back here.
  std::unique_ptr<snapshot_job> snapshot_done_;

  std::atomic<std::uint64_t> release_cached_below_{0};  // set by readers of the log
  // Where drop_delivered_pages got to: writer thread only.
  std::uint64_t pages_dropped_below_id_ = 0;
  std::uint64_t pages_dropped_segment_ = 0;
  std::uint64_t pages_dropped_end_ = 0;

  // Owned by the writer thread after recovery.
  std::unique_ptr<writable_file> active_;
  std::uint64_t active_number_ = 0;
  bool active_reused_ = false;  // older bytes may follow the records: cut when sealed
  std::vector<durable_callback> awaiting_sync_;
  log_clock::time_point last_sync_ = log_clock::now();
  // Under sync always: when the oldest written append that nobody waits for was
  // written, while no sync has covered it yet (else nullopt).
  std::optional<log_clock::time_point> unwaited_since_;
  std::uint64_t bytes_since_snapshot_ = 0;
  bool snapshot_in_flight_ = false;
  std::vector<control_request*> snapshot_waiters_;  // snapshot() calls the job in flight answers
  std::vector<control_request*> snapshot_queued_;  // came while one was in flight: need a newer one
  std::thread thread_;
};

}  // namespace weir::detail

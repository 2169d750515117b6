#include "log_writer.hpp"

#include <algorithm>
#include <iterator>
#include <utility>

#include <capnp/serialize.h>

#include "decoded_record.hpp"
#include "log_files.hpp"
#include "weir/schema/log.capnp.h"

namespace weir::detail {

log_writer::~log_writer() {
  stop();
}

status log_writer::open(std::uint64_t active_segment, bool create) {
  next_assigned_id_ = context_.state.next_id;
  return open_active_segment(active_segment, create);
}

void log_writer::start() {
  thread_ = std::thread([this] { writer_loop(); });
}

void log_writer::stop() {
  {
    std::lock_guard lock(append_mutex_);
    if (stopping_) return;
    stopping_ = true;
  }
  work_ready_.notify_all();
  space_ready_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void log_writer::snapshot_written(std::unique_ptr<snapshot_job> job) {
  {
    std::lock_guard lock(append_mutex_);
    snapshot_done_ = std::move(job);
  }
  work_ready_.notify_all();
}

status log_writer::open_active_segment(std::uint64_t number, bool create) {
  const auto path = log_files::join(context_.dir, log_files::segment_name(number));
  auto file = context_.fs.open_for_append(path);
  if (!file) return file.error();
  if ((*file)->size() < record_format::header_size) {
    // New, or a header cut away by recovery: write a fresh header.
    if ((*file)->size() != 0) {
      if (auto cut = (*file)->truncate(0); !cut) return cut;
    }
    std::byte header[record_format::header_size];
    record_format::write_file_header(header, record_format::segment_magic, log_format_version);
    if (auto written = (*file)->append(header); !written) return written;
    if (auto synced = (*file)->sync(); !synced) return synced;
    if (auto synced = context_.fs.sync_dir(context_.dir); !synced) return synced;
  }
  std::lock_guard lock(context_.state_mutex);
  auto& entry = context_.segments[number];
  entry.number = number;
  entry.path = path;
  entry.size = (*file)->size();
  if (create) {
    entry.first_id = entry.end_id = context_.state.next_id;
  }
  active_ = std::move(*file);
  active_number_ = number;
  return {};
}

status log_writer::append(capnp::MessageBuilder& message, durable_callback done,
                          const append_check& validate, publish_summary* summary) {
  if (context_.options.read_only) {
    return {errc::closed, "log " + context_.dir + " is open read-only"};
  }
  // The size does not depend on the ids validate() fills in (fixed-width fields).
  const auto record_bytes = capnp::computeSerializedSizeInWords(message) * word_size;
  if (record_bytes > context_.options.record_size_bytes_max) {
    return {errc::invalid_argument, "record of " + std::to_string(record_bytes) +
                                        " bytes exceeds record_size_bytes_max " +
                                        std::to_string(context_.options.record_size_bytes_max)};
  }
  std::unique_lock lock(append_mutex_);
  space_ready_.wait(lock, [&] {
    return stopping_ || !failure_.is_ok() ||
           pending_words_.size() * word_size < context_.options.pending_bytes_max;
  });
  if (stopping_) return {errc::closed, "log " + context_.dir + " is closing"};
  if (!failure_.is_ok()) return {errc::closed, failure_.to_string()};
  if (validate) {
    if (auto valid = validate(next_assigned_id_, last_append_failure_); !valid) return valid;
  }
  if (summary) next_assigned_id_ += summary->count;
  record_format::append_record(pending_words_, message);
  pending_records_.push_back(
      {pending_words_.size(), std::move(done), summary ? std::move(*summary) : publish_summary{}});
  lock.unlock();
  work_ready_.notify_one();
  return {};
}

status log_writer::request(bool snapshot) {
  if (context_.options.read_only) {
    return {errc::closed, "log " + context_.dir + " is open read-only"};
  }
  control_request req{snapshot, {}};
  auto outcome = req.result.get_future();
  {
    std::lock_guard lock(append_mutex_);
    if (stopping_) return {errc::closed, "log " + context_.dir + " is closing"};
    if (!failure_.is_ok()) return {errc::closed, failure_.to_string()};
    pending_requests_.push_back(&req);
  }
  work_ready_.notify_one();
  return outcome.get();
}

void log_writer::writer_loop() {
  record_format::word_buffer words;
  std::vector<pending_record> records;
  std::deque<control_request*> requests;
  for (;;) {
    bool stop = false;
    std::unique_ptr<snapshot_job> finished;
    {
      std::unique_lock lock(append_mutex_);
      auto has_work = [&] {
        return (stopping_ && !snapshot_in_flight_) || !pending_records_.empty() ||
               !pending_requests_.empty() || snapshot_done_ != nullptr;
      };
      if (!awaiting_sync_.empty() && context_.options.sync.kind != sync_policy::mode::none) {
        work_ready_.wait_until(lock, sync_due(), has_work);
      } else {
        work_ready_.wait(lock, has_work);
      }
      words.swap(pending_words_);
      records.swap(pending_records_);
      requests.swap(pending_requests_);
      finished = std::move(snapshot_done_);
      stop = stopping_;
    }
    space_ready_.notify_all();

    if (!records.empty()) write_batch(words, records);
    words.clear();
    records.clear();

    // A failed sync is handled inside: the log enters its failed state and every
    // waiting append hears the error.
    if (!awaiting_sync_.empty() && (stop || log_clock::now() >= sync_due())) {
      static_cast<void>(sync_active());
    }

    if (finished) finish_snapshot(*finished);

    for (auto* req : requests) {
      status outcome;
      {
        std::lock_guard lock(append_mutex_);
        outcome = failure_.is_ok() ? status{} : status{errc::closed, failure_.to_string()};
      }
      if (outcome && req->snapshot) {
        // Answered once a snapshot captured after this point is durable.
        snapshot_queued_.push_back(req);
        continue;
      }
      if (outcome) outcome = sync_active();
      req->result.set_value(outcome);
    }
    requests.clear();

    if (!snapshot_in_flight_) {
      if (!snapshot_queued_.empty()) {
        start_snapshot(std::exchange(snapshot_queued_, {}));
      } else if (!stop && context_.options.snapshot_every_bytes != 0 &&
                 bytes_since_snapshot_ >= context_.options.snapshot_every_bytes) {
        start_snapshot({});
      }
    }
    // A trigger while a snapshot is in flight is not queued: the bytes keep
    // counting and the next snapshot starts once this one is finished.

    if (stop) {
      // Appends still queued when stop was requested have been written above,
      // and a snapshot in flight has been waited for.
      std::unique_lock lock(append_mutex_);
      if (pending_records_.empty() && pending_requests_.empty() && !snapshot_in_flight_) break;
    }
  }
  if (active_) {
    bool healthy;
    {
      std::lock_guard lock(append_mutex_);
      healthy = failure_.is_ok();
    }
    // A clean close leaves no older bytes after the last record, as if never
    // reused, and says that nothing written is unsynced. Should the marker not
    // be written, the next open takes this for a crash, which is only stricter.
    if (healthy && cut_older_bytes() && sync_active()) mark_closed_cleanly();
  }
  fire_awaiting({errc::closed, "log " + context_.dir + " closed before the append was synced"});
}

void log_writer::write_batch(record_format::word_buffer& words,
                             std::vector<pending_record>& records) {
  {
    std::lock_guard lock(append_mutex_);
    if (!failure_.is_ok()) {
      fail_from(records, 0, {errc::closed, failure_.to_string()});
      return;
    }
  }
  std::size_t first = 0;
  std::size_t first_word = 0;
  while (first < records.size()) {
    auto record_bytes = [&](std::size_t i) {
      const auto begin = i == 0 ? 0 : records[i - 1].end_word;
      return (records[i].end_word - begin) * word_size;
    };
    if (active_->size() > record_format::header_size &&
        active_->size() + record_bytes(first) > context_.options.segment_bytes_max) {
      if (auto rolled = roll_segment(); !rolled) {
        fail_from(records, first, rolled);
        return;
      }
    }
    // The largest run of records that fits the segment (at least one).
    std::size_t end = first;
    std::uint64_t chunk_bytes = 0;
    while (end < records.size() &&
           (end == first || active_->size() + chunk_bytes + record_bytes(end) <=
                                context_.options.segment_bytes_max)) {
      chunk_bytes += record_bytes(end);
      ++end;
    }
    const std::uint64_t chunk_offset = active_->size();
    for (auto i = first, word = first_word; i < end; word = records[i++].end_word) {
      record_format::salt_record(reinterpret_cast<std::byte*>(words.data() + word), active_number_);
    }
    auto chunk = std::as_bytes(std::span{words}).subspan(first_word * word_size, chunk_bytes);
    auto written = active_->append(chunk);
    std::size_t kept_end = end;
    if (!written) {
      {
        std::lock_guard lock(context_.state_mutex);
        ++context_.counters.append_errors;
      }
      // Keep the records that reached the file whole (a full disk fails part-way
      // through a batch); cut the partial one so the segment ends on a boundary.
      const std::uint64_t landed = active_->size() - chunk_offset;
      std::uint64_t kept_bytes = 0;
      kept_end = first;
      while (kept_end < end && kept_bytes + record_bytes(kept_end) <= landed) {
        kept_bytes += record_bytes(kept_end);
        ++kept_end;
      }
      if (auto cut = active_->truncate(chunk_offset + kept_bytes); !cut) {
        enter_failed({cut.code(), "cannot undo a failed append (" + written.to_string() +
                                      "): " + cut.to_string()});
        fail_from(records, first, written);
        return;
      }
    }

    {
      std::lock_guard lock(context_.state_mutex);
      auto& segment = context_.segments[active_number_];
      std::uint64_t offset = chunk_offset;
      std::size_t word = first_word;
      for (auto i = first; i < kept_end; ++i) {
        auto payload =
            std::span<const capnp::word>(words).subspan(word + 1, records[i].end_word - word - 1);
        if (const auto& p = records[i].publish; p.count != 0) {
          apply_publish(context_.state, segment, offset, p.first_id, p.count,
                        context_.options.index_interval_bytes);
          for (const auto& [producer, epoch, seq] : p.producers) {
            note_producer(context_.state, producer, epoch, seq);
          }
          ++segment.records;
        } else {
          with_log_record(payload, [&](schema::LogRecord::Reader record) {
            apply_record(record, context_.state, segment, offset,
                         context_.options.index_interval_bytes);
          });
        }
        offset += (records[i].end_word - word) * word_size;
        word = records[i].end_word;
      }
      segment.size = active_->size();
    }
    bool awaited = false;  // has a callback: someone waits for the sync
    for (auto i = first; i < kept_end; ++i) {
      awaited = awaited || bool(records[i].done);
      awaiting_sync_.push_back(std::move(records[i].done));
    }
    bytes_since_snapshot_ += active_->size() - chunk_offset;

    status synced;
    switch (context_.options.sync.kind) {
      case sync_policy::mode::always: {
        // Acks, attempt counts and dead letters are appended without a callback:
        // a sync of their own would double the syncs at a steady rate, and losing
        // the last of them to a power cut only means redelivery.
        if (awaited || !written) {
          synced = sync_active();
        } else if (!unwaited_since_) {
          unwaited_since_ = log_clock::now();
        }
        break;
      }
      case sync_policy::mode::none: {
        {
          std::lock_guard lock(context_.state_mutex);
          context_.durable_next_id = context_.state.next_id;  // written is as durable as it gets
        }
        fire_awaiting({});
        break;
      }
      case sync_policy::mode::interval:
        if (!written || log_clock::now() >= last_sync_ + context_.options.sync.interval) {
          synced = sync_active();
        }
        break;
    }
    if (!synced) {
      fail_from(records, kept_end, synced);
      return;
    }
    if (!written) {
      fail_from(records, kept_end, written);
      return;
    }
    first_word = records[end - 1].end_word;
    first = end;
  }
}

void log_writer::fail_from(std::vector<pending_record>& records, std::size_t first,
                           const status& error) {
  // Later records (and appends queued meanwhile) hold ids beyond the failed ones,
  // so they fail too, and id assignment resumes where the log really ends.
  std::vector<durable_callback> failed;
  for (auto i = first; i < records.size(); ++i) failed.push_back(std::move(records[i].done));
  {
    std::lock_guard lock(append_mutex_);
    for (auto& record : pending_records_) failed.push_back(std::move(record.done));
    pending_records_.clear();
    pending_words_.clear();
    std::lock_guard state_lock(context_.state_mutex);
    next_assigned_id_ = context_.state.next_id;
    last_append_failure_ = error;
  }
  space_ready_.notify_all();
  for (auto& done : failed) {
    if (done) done(error);
  }
}

log_clock::time_point log_writer::sync_due() const {
  if (context_.options.sync.kind == sync_policy::mode::interval) {
    return last_sync_ + context_.options.sync.interval;
  }
  return unwaited_since_.value_or(log_clock::now()) + context_.options.unwaited_sync_delay_max;
}

status log_writer::sync_active() {
  std::uint64_t written_next_id;  // only this thread applies appends to context_.state
  {
    std::lock_guard lock(context_.state_mutex);
    written_next_id = context_.state.next_id;
  }
  const auto sync_started = log_clock::now();
  auto synced = active_->sync();
  context_.fsync_seconds.observe(
      std::chrono::duration<double>(log_clock::now() - sync_started).count());
  {
    std::lock_guard lock(context_.state_mutex);
    ++context_.counters.syncs;
    if (!synced) ++context_.counters.sync_errors;
    if (synced) context_.durable_next_id = std::max(context_.durable_next_id, written_next_id);
  }
  last_sync_ = log_clock::now();
  unwaited_since_.reset();
  if (!synced) {
    // After a failed fdatasync the kernel may have dropped the dirty pages; what
    // is on disk is unknown until recovery reads it back (PostgreSQL's lesson).
    enter_failed(
        {synced.code(), "fdatasync failed; reopen the log to recover: " + synced.to_string()});
    fire_awaiting(synced);
    return synced;
  }
  fire_awaiting({});
  drop_delivered_pages();
  return {};
}

// Delivered messages are rarely read again, and a page cache that grows over all
// free memory makes every new write take a page not used for long. On a VM that
// reports free memory to its host (virtio-balloon free page reporting), such a
// page costs a host fault on first touch: buffered writes cost 2.5 s of CPU per
// GB on the benchmark machine against 0.5 s into pages freed moments before.
// Only synced bytes are dropped, so the hint never starts a writeback.
void log_writer::drop_delivered_pages() {
  const auto below = release_cached_below_.load(std::memory_order_relaxed);
  if (below <= pages_dropped_below_id_) return;
  pages_dropped_below_id_ = below;
  constexpr std::uint64_t step_bytes = 1u << 20;             // fewer, larger hints
  std::vector<std::pair<std::string, std::uint64_t>> drops;  // path, end
  {
    std::lock_guard lock(context_.state_mutex);
    for (auto it = context_.segments.lower_bound(pages_dropped_segment_);
         it != context_.segments.end(); ++it) {
      const auto& [number, entry] = *it;
      if (entry.first_id >= below) break;
      const bool whole = entry.end_id <= below;
      // A sealed segment takes no more appends: its last page can go too.
      std::uint64_t end = whole && number != active_number_ ? file_system::whole_file : entry.size;
      if (!whole) {
        // Up to the indexed record that holds `below`: the index is sparse.
        auto next = std::upper_bound(
            entry.index.begin(), entry.index.end(), below,
            [](std::uint64_t id, const std::pair<std::uint64_t, std::uint64_t>& e) {
              return id < e.first;
            });
        end = next == entry.index.begin() ? 0 : std::prev(next)->second;
      }
      // Partly delivered: wait for a step's worth; wholly delivered: drop the rest.
      const bool dropped_already =
          number == pages_dropped_segment_ &&
          (whole ? end <= pages_dropped_end_ : end < pages_dropped_end_ + step_bytes);
      if (!dropped_already) {
        drops.emplace_back(entry.path, end);
        pages_dropped_segment_ = number;
        pages_dropped_end_ = end;
      }
      if (!whole) break;
    }
  }
  for (const auto& [path, end] : drops) context_.fs.drop_cached(path, end);
}

void log_writer::fire_awaiting(const status& outcome) {
  auto callbacks = std::move(awaiting_sync_);
  awaiting_sync_.clear();
  for (auto& done : callbacks) {
    if (done) done(outcome);
  }
}

void log_writer::enter_failed(const status& error) {
  std::vector<durable_callback> failed;
  {
    std::lock_guard lock(append_mutex_);
    if (failure_.is_ok()) failure_ = error;
    for (auto& record : pending_records_) failed.push_back(std::move(record.done));
    pending_records_.clear();
    pending_words_.clear();
  }
  space_ready_.notify_all();
  for (auto& done : failed) {
    if (done) done(error);
  }
}

status log_writer::roll_segment() {
  // The sealed segment is synced before the next one starts, so that only the
  // last segment can ever have a torn tail.
  if (auto cut = cut_older_bytes(); !cut) return cut;
  if (auto synced = sync_active(); !synced) return synced;
  const auto number = active_number_ + 1;
  const auto path = log_files::join(context_.dir, log_files::segment_name(number));
  // A spare's old records cannot pass for the new segment's: their crcs are
  // salted with their own segment's number.
  bool reused = false;
  if (auto spare = spares_.take()) {
    reused = bool(context_.fs.rename_file(*spare, path));
    // A spare that cannot be renamed is not used; if it cannot be removed either,
    // the next recovery counts it among the spares or removes it.
    if (!reused) static_cast<void>(context_.fs.remove_file(*spare));
  }
  auto file = reused ? context_.fs.open_for_overwrite(path) : context_.fs.open_for_append(path);
  if (!file) return file.error();
  std::byte header[record_format::header_size];
  record_format::write_file_header(header, record_format::segment_magic, log_format_version);
  status ready = (*file)->append(header);
  if (ready) ready = (*file)->sync();
  if (ready) ready = context_.fs.sync_dir(context_.dir);
  if (!ready) {
    // The caller hears `ready`; a new segment left with a partial header is the
    // last segment, whose bad tail recovery cuts.
    static_cast<void>(context_.fs.remove_file(path));
    return ready;
  }
  std::lock_guard lock(context_.state_mutex);
  auto& entry = context_.segments[number];
  entry.number = number;
  entry.path = path;
  entry.size = (*file)->size();
  entry.first_id = entry.end_id = context_.state.next_id;
  if (reused) ++context_.counters.segments_reused;
  active_ = std::move(*file);
  active_number_ = number;
  active_reused_ = reused;
  return {};
}

void log_writer::mark_closed_cleanly() {
  if (auto marker = context_.fs.open_for_append(
          log_files::join(context_.dir, log_files::closed_cleanly_name));
      marker) {
    // Without the directory sync the marker may not survive a crash; recovery
    // then treats the close as a crash, which is slower, never wrong.
    if ((*marker)->sync()) static_cast<void>(context_.fs.sync_dir(context_.dir));
  }
}

status log_writer::cut_older_bytes() {
  if (!active_reused_) return {};
  if (auto cut = active_->truncate(active_->size()); !cut) return cut;
  active_reused_ = false;
  return {};
}

void log_writer::start_snapshot(std::vector<control_request*> waiters) {
  auto refuse = [&](const status& error) {
    for (auto* req : waiters) req->result.set_value(error);
  };
  {
    std::lock_guard lock(append_mutex_);
    if (!failure_.is_ok()) return refuse({errc::closed, failure_.to_string()});
  }
  if (auto synced = sync_active(); !synced) return refuse(synced);

  auto job = snapshots_.capture(active_number_, active_->size());
  bytes_since_snapshot_ = 0;
  snapshot_in_flight_ = true;
  snapshot_waiters_ = std::move(waiters);
  snapshots_.submit(std::move(job));
}

void log_writer::finish_snapshot(snapshot_job& job) {
  snapshot_in_flight_ = false;
  if (job.outcome) {
    snapshots_.written(job);

    bool healthy;
    {
      std::lock_guard lock(append_mutex_);
      healthy = failure_.is_ok();
    }
    if (healthy) {
      // A marker in the log tells readers where snapshots were taken.
      capnp::MallocMessageBuilder marker;
      auto m = marker.initRoot<schema::LogRecord>().initSnapshotMarker();
      m.setSequence(job.sequence);
      m.getCovers().setSegment(job.covers_segment);
      m.getCovers().setOffset(job.covers_offset);
      record_format::word_buffer framed;
      record_format::append_record(framed, marker);
      record_format::salt_record(reinterpret_cast<std::byte*>(framed.data()), active_number_);
      const std::uint64_t before = active_->size();
      if (auto written = active_->append(std::as_bytes(std::span{framed})); written) {
        std::lock_guard lock(context_.state_mutex);
        auto& segment = context_.segments[active_number_];
        ++segment.records;
        segment.size = active_->size();
      } else if (auto cut = active_->truncate(before); !cut) {
        enter_failed(cut);
      }
    }
    std::lock_guard lock(context_.state_mutex);
    ++context_.counters.snapshots;
  }
  for (auto* req : std::exchange(snapshot_waiters_, {})) req->result.set_value(job.outcome);
}

}  // namespace weir::detail

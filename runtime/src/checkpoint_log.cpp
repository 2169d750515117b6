#include "weir/runtime/checkpoint_log.hpp"

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <deque>
#include <future>
#include <map>
#include <mutex>
#include <thread>

#include <capnp/message.h>
#include <capnp/serialize.h>
#include <kj/exception.h>

#include "decoded_record.hpp"
#include "log_context.hpp"
#include "log_files.hpp"
#include "log_reader.hpp"
#include "log_recovery.hpp"
#include "log_snapshots.hpp"
#include "log_state.hpp"
#include "record_format.hpp"
#include "weir/runtime/checkpoint_file.hpp"
#include "weir/schema/log.capnp.h"

namespace weir {

using detail::decoded_record;
using detail::log_clock;
using detail::log_context;
using detail::word_size;
using detail::log_state;
using detail::with_log_record;
using detail::segment_entry;
using detail::snapshot_job;

namespace {



// The builder's first segment is sized from the input: its default (1024 words)
// is allocated zeroed on every append, which cost more than the encoding itself
// for small messages. An underestimate only adds a second segment.
constexpr unsigned small_record_words = 8;

std::size_t text_words(std::string_view text) {
  return (text.size() + 1 + 7) / 8;
}

unsigned publish_words(std::span<const outgoing_message> messages) {
  std::size_t words = small_record_words;
  for (const auto& m : messages) {
    words += 10 + (m.key.size() + 7) / 8 + (m.payload.size() + 7) / 8;
    for (const auto& h : m.headers) words += 3 + text_words(h.name) + (h.value.size() + 7) / 8;
  }
  return static_cast<unsigned>(std::min<std::size_t>(words, 1u << 24));
}

}  // namespace

class checkpoint_log::impl {
 public:
  // What a publish record does to the state, so the writer applies it without
  // decoding the record again (count 0: not a publish; the writer decodes it).
  struct publish_summary {
    std::uint64_t first_id = 0;
    std::uint64_t count = 0;
    std::vector<std::array<std::uint64_t, 3>> producers;  // (id, epoch, last seq), id != 0
  };
  impl(file_system& fs, std::string dir, log_options options)
      : context_(fs, std::move(dir), std::move(options)) {}

  ~impl() { stop(); }

  status recover();
  void start_writer() {
    writer_ = std::thread([this] { writer_loop(); });
    snapshots_.start([this](std::unique_ptr<snapshot_job> job) {
      {
        std::lock_guard lock(append_mutex_);
        snapshot_done_ = std::move(job);
      }
      work_ready_.notify_all();
    });
  }
  void stop();

  status append(capnp::MessageBuilder& message, durable_callback done,
                const std::function<status(std::uint64_t next_id)>& validate = {},
                publish_summary* summary = nullptr);
  result<std::uint64_t> publish(std::span<const outgoing_message> messages, durable_callback done,
                                std::optional<std::uint64_t> expected_first_id);
  status ack(std::span<const id_range> ranges, durable_callback done);
  status dead_letter(std::span<const dead_letter_entry> entries, durable_callback done);
  status record_attempts(std::span<const delivery_attempt> attempts, durable_callback done);
  status request(bool snapshot);

  result<stored_message> read(std::uint64_t id) const;
  std::vector<result<stored_message>> read_many(std::span<const std::uint64_t> ids) const {
    return reader_.read_many(ids);
  }
  void for_each_ready(std::uint64_t from, std::size_t limit,
                      const std::function<void(std::uint64_t, std::uint32_t)>& fn) const;
  log_stats stats() const;
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
  std::optional<producer_sequence> producer(std::uint64_t producer_id) const;
  std::uint64_t count_ready_from(std::uint64_t from) const;

  const recovery_report& report() const { return report_; }
  const std::string& dir() const { return context_.dir; }

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

  log_context context_;
  detail::log_reader reader_{context_};
  std::shared_ptr<void> lock_;  // held while open for writing
  recovery_report report_;
  detail::spare_segments spares_{context_};
  detail::log_snapshots snapshots_{context_, spares_};

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

  std::atomic<std::uint64_t> release_cached_below_{0};  // set by readers of the log
  // Where drop_delivered_pages got to: writer thread only.
  std::uint64_t pages_dropped_below_id_ = 0;
  std::uint64_t pages_dropped_segment_ = 0;
  std::uint64_t pages_dropped_end_ = 0;

  // The snapshot thread hands a finished job back here.
  std::unique_ptr<snapshot_job> snapshot_done_;  // guarded by append_mutex_

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
  std::thread writer_;

};

status checkpoint_log::impl::open_active_segment(std::uint64_t number, bool create) {
  const auto path = log_files::join(context_.dir, log_files::segment_name(number));
  auto file = context_.fs.open_for_append(path);
  if (!file) return file.error();
  if ((*file)->size() < record_format::header_size) {
    // New, or a header cut away by recovery: write a fresh header.
    if ((*file)->size() != 0) {
      if (auto cut = (*file)->truncate(0); !cut) return cut;
    }
    std::byte header[record_format::header_size];
    record_format::write_file_header(header, record_format::segment_magic,
                                     detail::log_format_version);
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

status checkpoint_log::impl::recover() {
  detail::recovered_log found;
  if (auto recovered = detail::log_recovery(context_, report_).recover(found); !recovered) {
    return recovered;
  }
  lock_ = std::move(found.lock);
  spares_.adopt(std::move(found.spare_files));
  snapshots_.resume(std::move(found.snapshot_sequences), found.last_snapshot_covers);
  if (context_.options.read_only) return {};
  next_assigned_id_ = context_.state.next_id;
  return open_active_segment(found.active_segment, found.create_active_segment);
}

void checkpoint_log::impl::stop() {
  {
    std::lock_guard lock(append_mutex_);
    if (stopping_) return;
    stopping_ = true;
  }
  work_ready_.notify_all();
  space_ready_.notify_all();
  // The writer waits for a snapshot in flight before it ends, so the snapshot
  // thread is idle when it is told to stop.
  if (writer_.joinable()) writer_.join();
  snapshots_.stop();
}

// --- appends ------------------------------------------------------------------

status checkpoint_log::impl::append(capnp::MessageBuilder& message, durable_callback done,
                                    const std::function<status(std::uint64_t)>& validate,
                                    publish_summary* summary) {
  if (context_.options.read_only)
    return {errc::closed, "log " + context_.dir + " is open read-only"};
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
    if (auto valid = validate(next_assigned_id_); !valid) return valid;
  }
  record_format::append_record(pending_words_, message);
  pending_records_.push_back(
      {pending_words_.size(), std::move(done), summary ? std::move(*summary) : publish_summary{}});
  lock.unlock();
  work_ready_.notify_one();
  return {};
}

result<std::uint64_t> checkpoint_log::impl::publish(
    std::span<const outgoing_message> messages, durable_callback done,
    std::optional<std::uint64_t> expected_first_id) {
  if (messages.empty()) return status{errc::invalid_argument, "publish of an empty batch"};
  capnp::MallocMessageBuilder builder(publish_words(messages));
  auto batch = builder.initRoot<schema::LogRecord>().initPublish();
  auto envelopes = batch.initEnvelopes(static_cast<unsigned>(messages.size()));
  for (std::size_t i = 0; i < messages.size(); ++i) {
    const auto& m = messages[i];
    auto envelope = envelopes[static_cast<unsigned>(i)];
    envelope.setProducerId(m.producer_id);
    envelope.setProducerEpoch(m.producer_epoch);
    envelope.setProducerSeq(m.producer_seq);
    envelope.setKey(kj::arrayPtr(reinterpret_cast<const kj::byte*>(m.key.data()), m.key.size()));
    envelope.setPayload(
        kj::arrayPtr(reinterpret_cast<const kj::byte*>(m.payload.data()), m.payload.size()));
    if (!m.headers.empty()) {
      auto headers = envelope.initHeaders(static_cast<unsigned>(m.headers.size()));
      for (std::size_t h = 0; h < m.headers.size(); ++h) {
        headers[static_cast<unsigned>(h)].setName(m.headers[h].name);
        headers[static_cast<unsigned>(h)].setValue(
            kj::arrayPtr(reinterpret_cast<const kj::byte*>(m.headers[h].value.data()),
                         m.headers[h].value.size()));
      }
    }
    envelope.setPublishTimeNs(m.publish_time_ns);
  }
  // Ids are assigned under the append lock so that record order is id order.
  std::uint64_t first_id = 0;
  publish_summary summary;
  summary.count = messages.size();
  for (const auto& m : messages) {
    if (m.producer_id == 0) continue;
    auto known = std::find_if(summary.producers.begin(), summary.producers.end(),
                              [&](const auto& p) { return p[0] == m.producer_id; });
    if (known == summary.producers.end()) {
      summary.producers.push_back({m.producer_id, m.producer_epoch, m.producer_seq});
    } else if (m.producer_epoch > (*known)[1] ||
               (m.producer_epoch == (*known)[1] && m.producer_seq > (*known)[2])) {
      *known = {m.producer_id, m.producer_epoch, m.producer_seq};
    }
  }
  auto appended = append(
      builder, std::move(done),
      [&](std::uint64_t next_id) -> status {
        if (expected_first_id && *expected_first_id != next_id) {
          const auto code =
              last_append_failure_.is_ok() ? errc::invalid_argument : last_append_failure_.code();
          return {code, "publish expected to start at id " + std::to_string(*expected_first_id) +
                            ", but ids resume at " + std::to_string(next_id) +
                            " after an earlier append failed (" +
                            last_append_failure_.to_string() + ")"};
        }
        first_id = next_id;
        summary.first_id = next_id;
        batch.setFirstId(next_id);
        for (std::size_t i = 0; i < messages.size(); ++i) {
          envelopes[static_cast<unsigned>(i)].setId(next_id + i);
        }
        next_assigned_id_ = next_id + messages.size();
        return status{};
      },
      &summary);
  if (!appended) return appended;
  return first_id;
}

status checkpoint_log::impl::ack(std::span<const id_range> ranges, durable_callback done) {
  capnp::MallocMessageBuilder builder(small_record_words + 3 * ranges.size());
  auto list = builder.initRoot<schema::LogRecord>().initAck().initRanges(
      static_cast<unsigned>(ranges.size()));
  for (std::size_t i = 0; i < ranges.size(); ++i) {
    list[static_cast<unsigned>(i)].setBegin(ranges[i].begin);
    list[static_cast<unsigned>(i)].setEnd(ranges[i].end);
  }
  return append(builder, std::move(done), [&](std::uint64_t next_id) -> status {
    for (const auto& range : ranges) {
      if (range.begin == 0 || range.begin >= range.end || range.end > next_id) {
        return {errc::invalid_argument, "ack range [" + std::to_string(range.begin) + ", " +
                                            std::to_string(range.end) +
                                            ") is empty or holds ids never published (next id " +
                                            std::to_string(next_id) + ")"};
      }
    }
    return {};
  });
}

status checkpoint_log::impl::dead_letter(std::span<const dead_letter_entry> entries,
                                         durable_callback done) {
  std::size_t words = small_record_words;
  for (const auto& e : entries) {
    words += 8 + text_words(e.reason) + text_words(e.last_error) + text_words(e.dead_letter_queue);
  }
  capnp::MallocMessageBuilder builder(static_cast<unsigned>(words));
  auto list = builder.initRoot<schema::LogRecord>().initDeadLetter().initEntries(
      static_cast<unsigned>(entries.size()));
  for (std::size_t i = 0; i < entries.size(); ++i) {
    auto out = list[static_cast<unsigned>(i)];
    out.setId(entries[i].id);
    out.setAttempts(entries[i].attempts);
    out.setReason(entries[i].reason);
    out.setLastError(entries[i].last_error);
    out.setDeadLetterQueue(entries[i].dead_letter_queue);
  }
  return append(builder, std::move(done), [&](std::uint64_t next_id) -> status {
    for (const auto& entry : entries) {
      if (entry.id == 0 || entry.id >= next_id) {
        return {errc::invalid_argument,
                "dead letter for id " + std::to_string(entry.id) + " that was never published"};
      }
    }
    return {};
  });
}

status checkpoint_log::impl::record_attempts(std::span<const delivery_attempt> attempts,
                                             durable_callback done) {
  capnp::MallocMessageBuilder builder(small_record_words + 3 * attempts.size());
  auto list = builder.initRoot<schema::LogRecord>().initDeliveries().initEntries(
      static_cast<unsigned>(attempts.size()));
  for (std::size_t i = 0; i < attempts.size(); ++i) {
    list[static_cast<unsigned>(i)].setId(attempts[i].id);
    list[static_cast<unsigned>(i)].setAttempts(attempts[i].attempts);
  }
  return append(builder, std::move(done), [&](std::uint64_t next_id) -> status {
    for (const auto& attempt : attempts) {
      if (attempt.id == 0 || attempt.id >= next_id) {
        return {errc::invalid_argument,
                "delivery attempt for id " + std::to_string(attempt.id) + " never published"};
      }
    }
    return {};
  });
}

status checkpoint_log::impl::request(bool snapshot) {
  if (context_.options.read_only)
    return {errc::closed, "log " + context_.dir + " is open read-only"};
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

// --- writer thread ------------------------------------------------------------

void checkpoint_log::impl::writer_loop() {
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

    if (!awaiting_sync_.empty() && (stop || log_clock::now() >= sync_due())) sync_active();

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

void checkpoint_log::impl::write_batch(record_format::word_buffer& words,
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
        active_->size() + record_bytes(first) > context_.options.segment_size_bytes_max) {
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
                                context_.options.segment_size_bytes_max)) {
      chunk_bytes += record_bytes(end);
      ++end;
    }
    const std::uint64_t chunk_offset = active_->size();
    for (auto i = first, word = first_word; i < end; word = records[i++].end_word) {
      record_format::salt_record(reinterpret_cast<std::byte*>(words.data() + word),
                                 active_number_);
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
          detail::apply_publish(context_.state, segment, offset, p.first_id, p.count,
                                context_.options.index_interval_bytes);
          for (const auto& [producer, epoch, seq] : p.producers) {
            detail::note_producer(context_.state, producer, epoch, seq);
          }
          ++segment.records;
        } else {
          with_log_record(payload, [&](schema::LogRecord::Reader record) {
            detail::apply_record(record, context_.state, segment, offset,
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

void checkpoint_log::impl::fail_from(std::vector<pending_record>& records, std::size_t first,
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

log_clock::time_point checkpoint_log::impl::sync_due() const {
  if (context_.options.sync.kind == sync_policy::mode::interval)
    return last_sync_ + context_.options.sync.interval;
  return unwaited_since_.value_or(log_clock::now()) + context_.options.unwaited_sync_delay_max;
}

status checkpoint_log::impl::sync_active() {
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
void checkpoint_log::impl::drop_delivered_pages() {
  const auto below = release_cached_below_.load(std::memory_order_relaxed);
  if (below <= pages_dropped_below_id_) return;
  pages_dropped_below_id_ = below;
  constexpr std::uint64_t step_bytes = 1u << 20;  // fewer, larger hints
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

void checkpoint_log::impl::fire_awaiting(const status& outcome) {
  auto callbacks = std::move(awaiting_sync_);
  awaiting_sync_.clear();
  for (auto& done : callbacks) {
    if (done) done(outcome);
  }
}

void checkpoint_log::impl::enter_failed(const status& error) {
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

status checkpoint_log::impl::roll_segment() {
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
    if (!reused) context_.fs.remove_file(*spare);
  }
  auto file = reused ? context_.fs.open_for_overwrite(path) : context_.fs.open_for_append(path);
  if (!file) return file.error();
  std::byte header[record_format::header_size];
  record_format::write_file_header(header, record_format::segment_magic,
                                   detail::log_format_version);
  status ready = (*file)->append(header);
  if (ready) ready = (*file)->sync();
  if (ready) ready = context_.fs.sync_dir(context_.dir);
  if (!ready) {
    context_.fs.remove_file(path);
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

void checkpoint_log::impl::mark_closed_cleanly() {
  if (auto marker = context_.fs.open_for_append(
          log_files::join(context_.dir, log_files::closed_cleanly_name));
      marker) {
    if ((*marker)->sync()) context_.fs.sync_dir(context_.dir);
  }
}

status checkpoint_log::impl::cut_older_bytes() {
  if (!active_reused_) return {};
  if (auto cut = active_->truncate(active_->size()); !cut) return cut;
  active_reused_ = false;
  return {};
}

void checkpoint_log::impl::start_snapshot(std::vector<control_request*> waiters) {
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

void checkpoint_log::impl::finish_snapshot(snapshot_job& job) {
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

// --- reads ------------------------------------------------------------------------

result<stored_message> checkpoint_log::impl::read(std::uint64_t id) const {
  return std::move(reader_.read_many({&id, 1}).front());
}

void checkpoint_log::impl::for_each_ready(
    std::uint64_t from, std::size_t limit,
    const std::function<void(std::uint64_t, std::uint32_t)>& fn) const {
  std::vector<std::pair<std::uint64_t, std::uint32_t>> ready;
  {
    std::lock_guard lock(context_.state_mutex);
    auto id = std::max<std::uint64_t>(from, 1);
    while (ready.size() < limit) {
      id = context_.state.done.first_missing_from(id);
      if (id >= context_.durable_next_id) break;
      ready.emplace_back(id, detail::attempts_of(context_.state, id));
      ++id;
    }
  }
  for (const auto& [id, attempts] : ready) fn(id, attempts);
}

std::optional<producer_sequence> checkpoint_log::impl::producer(std::uint64_t producer_id) const {
  std::lock_guard lock(context_.state_mutex);
  auto it = context_.state.producers.find(producer_id);
  if (it == context_.state.producers.end()) return std::nullopt;
  return producer_sequence{it->second.epoch, it->second.last_seq};
}

std::uint64_t checkpoint_log::impl::count_ready_from(std::uint64_t from) const {
  std::lock_guard lock(context_.state_mutex);
  from = std::max<std::uint64_t>(from, 1);
  if (from >= context_.state.next_id) return 0;
  return (context_.state.next_id - from) -
         context_.state.done.count_in(from, context_.state.next_id);
}

log_stats checkpoint_log::impl::stats() const {
  std::lock_guard lock(context_.state_mutex);
  log_stats out = context_.counters;
  out.next_id = context_.state.next_id;
  out.published = context_.state.published;
  out.acked = context_.state.acked;
  out.dead_lettered = context_.state.dead_lettered;
  out.lost = context_.state.lost;
  out.ready =
      (context_.state.next_id - 1) - context_.state.done.count_in(1, context_.state.next_id);
  out.unacked = detail::delivered_count(context_.state);
  out.fsync_seconds = context_.fsync_seconds.snapshot();
  out.segments = context_.segments.size();
  out.log_bytes = 0;
  for (const auto& [number, entry] : context_.segments) out.log_bytes += entry.size;
  return out;
}

// --- public face -------------------------------------------------------------------

result<std::unique_ptr<checkpoint_log>> checkpoint_log::open(file_system& fs, std::string dir,
                                                             log_options options) {
  auto self = std::make_unique<impl>(fs, std::move(dir), options);
  if (auto recovered = self->recover(); !recovered) return recovered;
  if (!options.read_only) self->start_writer();
  return std::unique_ptr<checkpoint_log>(new checkpoint_log(std::move(self)));
}

checkpoint_log::checkpoint_log(std::unique_ptr<impl> self) : impl_(std::move(self)) {}
checkpoint_log::~checkpoint_log() = default;

result<std::uint64_t> checkpoint_log::publish(std::span<const outgoing_message> messages,
                                              durable_callback done,
                                              std::optional<std::uint64_t> expected_first_id) {
  return impl_->publish(messages, std::move(done), expected_first_id);
}
status checkpoint_log::ack(std::span<const id_range> ranges, durable_callback done) {
  return impl_->ack(ranges, std::move(done));
}
status checkpoint_log::dead_letter(std::span<const dead_letter_entry> entries,
                                   durable_callback done) {
  return impl_->dead_letter(entries, std::move(done));
}
status checkpoint_log::record_attempts(std::span<const delivery_attempt> attempts,
                                       durable_callback done) {
  return impl_->record_attempts(attempts, std::move(done));
}
status checkpoint_log::sync() {
  return impl_->request(false);
}
void checkpoint_log::release_cached_below(std::uint64_t id) noexcept {
  impl_->release_cached_below(id);
}
status checkpoint_log::snapshot() {
  return impl_->request(true);
}
result<stored_message> checkpoint_log::read(std::uint64_t id) const {
  return impl_->read(id);
}
std::vector<result<stored_message>> checkpoint_log::read_many(
    std::span<const std::uint64_t> ids) const {
  return impl_->read_many(ids);
}
void checkpoint_log::for_each_ready(
    std::uint64_t from, std::size_t limit,
    const std::function<void(std::uint64_t, std::uint32_t)>& fn) const {
  impl_->for_each_ready(from, limit, fn);
}
const recovery_report& checkpoint_log::recovery() const noexcept {
  return impl_->report();
}
std::optional<producer_sequence> checkpoint_log::producer(std::uint64_t producer_id) const {
  return impl_->producer(producer_id);
}
std::uint64_t checkpoint_log::count_ready_from(std::uint64_t from) const {
  return impl_->count_ready_from(from);
}
log_stats checkpoint_log::stats() const {
  return impl_->stats();
}
status checkpoint_log::failure() const {
  return impl_->failure();
}
const std::string& checkpoint_log::dir() const noexcept {
  return impl_->dir();
}

}  // namespace weir

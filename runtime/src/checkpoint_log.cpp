#include "weir/runtime/checkpoint_log.hpp"

#include <algorithm>
#include <memory>
#include <utility>

#include <capnp/message.h>

#include "log_context.hpp"
#include "log_reader.hpp"
#include "log_recovery.hpp"
#include "log_snapshots.hpp"
#include "log_writer.hpp"
#include "spare_segments.hpp"
#include "weir/schema/log.capnp.h"

// The facade: the public API of the log. Appends are encoded here, on the
// caller's thread, and handed to the writer; the parts live in their own files
// (log_recovery, log_writer, log_snapshots, spare_segments, log_reader) and
// share log_context. docs/checkpoint-log.md describes the whole.

namespace weir {

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
  impl(file_system& fs, std::string dir, log_options options)
      : context_(fs, std::move(dir), std::move(options)) {}

  ~impl() { stop(); }

  status recover();
  void start() {
    writer_.start();
    snapshots_.start([this](std::unique_ptr<detail::snapshot_job> job) {
      writer_.snapshot_written(std::move(job));
    });
  }
  void stop() {
    // The writer waits for a snapshot in flight before it ends, so the snapshot
    // thread is idle when it is told to stop.
    writer_.stop();
    snapshots_.stop();
  }

  result<std::uint64_t> publish(std::span<const outgoing_message> messages, durable_callback done,
                                std::optional<std::uint64_t> expected_first_id);
  status ack(std::span<const id_range> ranges, durable_callback done);
  status dead_letter(std::span<const dead_letter_entry> entries, durable_callback done);
  status record_attempts(std::span<const delivery_attempt> attempts, durable_callback done);
  status sync() { return writer_.sync(); }
  status snapshot() { return writer_.snapshot(); }
  void release_cached_below(std::uint64_t id) noexcept { writer_.release_cached_below(id); }
  status failure() const { return writer_.failure(); }

  result<stored_message> read(std::uint64_t id) const {
    return std::move(reader_.read_many({&id, 1}).front());
  }
  std::vector<result<stored_message>> read_many(std::span<const std::uint64_t> ids) const {
    return reader_.read_many(ids);
  }
  void for_each_ready(std::uint64_t from, std::size_t limit,
                      const std::function<void(std::uint64_t, std::uint32_t)>& fn) const;
  std::optional<producer_sequence> producer(std::uint64_t producer_id) const;
  std::uint64_t count_ready_from(std::uint64_t from) const;
  log_stats stats() const;

  const recovery_report& report() const { return report_; }
  const std::string& dir() const { return context_.dir; }

 private:
  // Declared in the order they depend on each other: each part holds references
  // to those above it, and is destroyed before them.
  detail::log_context context_;
  recovery_report report_;
  std::shared_ptr<void> lock_;  // held while open for writing
  detail::spare_segments spares_{context_};
  detail::log_snapshots snapshots_{context_, spares_};
  detail::log_writer writer_{context_, spares_, snapshots_};
  detail::log_reader reader_{context_};
};

status checkpoint_log::impl::recover() {
  detail::recovered_log found;
  if (auto recovered = detail::log_recovery(context_, report_).recover(found); !recovered) {
    return recovered;
  }
  lock_ = std::move(found.lock);
  spares_.adopt(std::move(found.spare_files));
  snapshots_.resume(std::move(found.snapshot_sequences), found.last_snapshot_covers);
  if (context_.options.read_only) return {};
  return writer_.open(found.active_segment, found.create_active_segment);
}

// --- appends ------------------------------------------------------------------

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
  detail::publish_summary summary;
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
  auto appended = writer_.append(
      builder, std::move(done),
      [&](std::uint64_t next_id, const status& last_failure) -> status {
        if (expected_first_id && *expected_first_id != next_id) {
          const auto code = last_failure.is_ok() ? errc::invalid_argument : last_failure.code();
          return {code, "publish expected to start at id " + std::to_string(*expected_first_id) +
                            ", but ids resume at " + std::to_string(next_id) +
                            " after an earlier append failed (" + last_failure.to_string() + ")"};
        }
        first_id = next_id;
        summary.first_id = next_id;
        batch.setFirstId(next_id);
        for (std::size_t i = 0; i < messages.size(); ++i) {
          envelopes[static_cast<unsigned>(i)].setId(next_id + i);
        }
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
  return writer_.append(
      builder, std::move(done), [&](std::uint64_t next_id, const status&) -> status {
        for (const auto& range : ranges) {
          if (range.begin == 0 || range.begin >= range.end || range.end > next_id) {
            return {errc::invalid_argument,
                    "ack range [" + std::to_string(range.begin) + ", " + std::to_string(range.end) +
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
  return writer_.append(
      builder, std::move(done), [&](std::uint64_t next_id, const status&) -> status {
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
  return writer_.append(
      builder, std::move(done), [&](std::uint64_t next_id, const status&) -> status {
        for (const auto& attempt : attempts) {
          if (attempt.id == 0 || attempt.id >= next_id) {
            return {errc::invalid_argument,
                    "delivery attempt for id " + std::to_string(attempt.id) + " never published"};
          }
        }
        return {};
      });
}

// --- queries on the shared state ----------------------------------------------------

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
  if (!options.read_only) self->start();
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
  return impl_->sync();
}
void checkpoint_log::release_cached_below(std::uint64_t id) noexcept {
  impl_->release_cached_below(id);
}
status checkpoint_log::snapshot() {
  return impl_->snapshot();
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

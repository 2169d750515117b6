#include "log_reader.hpp"

#include <algorithm>
#include <atomic>
#include <iterator>
#include <utility>

#include <kj/exception.h>

#include "weir/runtime/shared_bytes.hpp"
#include "weir/schema/log.capnp.h"

namespace weir::detail {

namespace {

// `record` holds the bytes `envelope` points into: the payload is a slice of it.
void fill_stored_message(schema::Envelope::Reader envelope, std::uint64_t id,
                         const std::shared_ptr<record_format::word_buffer>& record,
                         stored_message& out) {
  out.id = id;
  out.producer_id = envelope.getProducerId();
  out.producer_epoch = envelope.getProducerEpoch();
  out.producer_seq = envelope.getProducerSeq();
  auto key = envelope.getKey();
  out.key.assign(reinterpret_cast<const char*>(key.begin()), key.size());
  auto payload = envelope.getPayload();
  out.payload =
      shared_bytes(record, {reinterpret_cast<const char*>(payload.begin()), payload.size()});
  out.headers.clear();
  for (auto header : envelope.getHeaders()) {
    auto value = header.getValue();
    out.headers.push_back(
        {header.getName(),
         std::string(reinterpret_cast<const char*>(value.begin()), value.size())});
  }
  out.publish_time_ns = envelope.getPublishTimeNs();
}

}  // namespace

std::vector<result<stored_message>> log_reader::read_many(
    std::span<const std::uint64_t> ids) const {
  // Where each id is, found under one state lock; a batch of deliveries usually
  // needs one segment, whose reader and path are taken once.
  struct segment_to_read {
    std::uint64_t number = 0;
    std::shared_ptr<readable_file> file;
    std::string path;
    std::uint64_t limit = 0;
  };
  struct location {
    status missing;  // not ok: the answer for this id
    std::uint32_t attempts = 0;
    std::size_t segment = 0;  // index into `segments`
    std::uint64_t offset = 0;
  };
  std::vector<segment_to_read> segments;
  std::vector<location> where(ids.size());
  {
    std::lock_guard lock(context_.state_mutex);
    auto holder = context_.segments.end();
    for (std::size_t i = 0; i < ids.size(); ++i) {
      const auto id = ids[i];
      auto& at = where[i];
      if (id == 0 || id >= context_.state.next_id) {
        at.missing = {errc::not_found, "message " + std::to_string(id) +
                                           " was never published (or is not written yet)"};
        continue;
      }
      if (context_.state.done.contains(id)) {
        at.missing = {errc::not_found,
                      "message " + std::to_string(id) + " is acked, dead-lettered or lost"};
        continue;
      }
      at.attempts = attempts_of(context_.state, id);
      if (holder == context_.segments.end() || id < holder->second.first_id ||
          id >= holder->second.end_id) {
        holder = std::find_if(context_.segments.begin(), context_.segments.end(),
                              [&](const auto& entry) {
                                return id >= entry.second.first_id && id < entry.second.end_id;
                              });
      }
      if (holder == context_.segments.end() || holder->second.index.empty()) {
        at.missing = {errc::not_found, "no segment holds message " + std::to_string(id)};
        continue;
      }
      auto& segment = holder->second;
      auto it =
          std::upper_bound(segment.index.begin(), segment.index.end(), id,
                           [](std::uint64_t value, const auto& e) { return value < e.first; });
      at.offset = std::prev(it)->second;
      if (segments.empty() || segments.back().number != segment.number) {
        if (!segment.reader) {
          auto opened = context_.fs.open_for_read(segment.path);
          if (!opened) {
            at.missing = opened.error();
            continue;
          }
          segment.reader = std::move(*opened);
        }
        segments.push_back({segment.number, segment.reader, segment.path, segment.size});
      }
      at.segment = segments.size() - 1;
    }
  }

  std::vector<result<stored_message>> out;
  out.reserve(ids.size());
  std::lock_guard cursor_lock(cursor_mutex_);
  for (std::size_t i = 0; i < ids.size(); ++i) {
    if (!where[i].missing) {
      out.emplace_back(where[i].missing);
      continue;
    }
    const auto& segment = segments[where[i].segment];
    auto message = read_at(ids[i], segment.number, *segment.file, segment.path, segment.limit,
                           where[i].offset);
    if (message) message->attempts = where[i].attempts;
    out.push_back(std::move(message));
  }
  return out;
}

result<stored_message> log_reader::read_at(std::uint64_t id, std::uint64_t segment_number,
                                           readable_file& file, const std::string& path,
                                           std::uint64_t limit, std::uint64_t offset) const {
  // Delivery reads ids in ascending order: serve them from the last record read,
  // or walk on from it instead of from the index entry.
  stored_message message;
  auto take_from_cache = [&]() -> bool {
    if (cursor_.segment != segment_number || id < cursor_.first_id ||
        id >= cursor_.first_id + cursor_.count) {
      return false;
    }
    try {
      if (!cursor_.decoded) {
        auto payload = std::span<const capnp::word>(*cursor_.record).subspan(1);
        cursor_.decoded = std::make_unique<decoded_record>(payload);
        cursor_.envelopes =
            cursor_.decoded->reader.getRoot<schema::LogRecord>().getPublish().getEnvelopes();
      }
      fill_stored_message(cursor_.envelopes[static_cast<unsigned>(id - cursor_.first_id)], id,
                          cursor_.record, message);
      return true;
    } catch (const kj::Exception&) {
      cursor_.decoded.reset();
      return false;
    }
  };
  if (take_from_cache()) return message;
  if (cursor_.segment == segment_number && cursor_.first_id + cursor_.count <= id &&
      cursor_.next_offset > offset) {
    offset = cursor_.next_offset;
  }

  auto corrupt = [&](const std::string& why) -> status {
    std::lock_guard lock(context_.state_mutex);
    ++context_.counters.corrupt_reads;
    return {errc::corruption, path + " offset " + std::to_string(offset) + ": " + why +
                                  " while reading message " + std::to_string(id)};
  };
  auto& buffer = cursor_.scratch;
  while (offset + record_format::frame_header_size <= limit) {
    std::byte header[record_format::frame_header_size];
    auto got = file.read_at(offset, header);
    if (!got) return got.error();
    const auto length = record_format::load_u32(header);
    if (*got < sizeof header || length % word_size != 0 || length == 0 ||
        offset + sizeof header + length > limit) {
      return corrupt("bad record header");
    }
    buffer.resize(1 + length / word_size);
    auto bytes = std::as_writable_bytes(std::span{buffer});
    got = file.read_at(offset, bytes);
    if (!got) return got.error();
    auto frame =
        record_format::decode_frame(bytes.first(*got), std::uint32_t(length), segment_number);
    if (frame.status != record_format::frame_status::ok) return corrupt(frame.reason);
    std::uint64_t first = 0;
    std::uint64_t count = 0;
    if (!with_log_record(frame.payload, [&](schema::LogRecord::Reader record) {
          if (!record.isPublish()) return;
          first = record.getPublish().getFirstId();
          count = record.getPublish().getEnvelopes().size();
        })) {
      return corrupt("record passes its checksum but does not decode");
    }
    offset += frame.size;
    if (count != 0 && id >= first && id < first + count) {
      cursor_.segment = segment_number;
      cursor_.first_id = first;
      cursor_.count = count;
      cursor_.next_offset = offset;
      cursor_.decoded.reset();
      if (cursor_.record.use_count() == 1) {
        // The last slice may have been let go on another thread: see its reads
        // of the buffer before writing into it again.
        std::atomic_thread_fence(std::memory_order_acquire);
        std::swap(*cursor_.record, cursor_.scratch);
      } else {  // payloads read from it are still in use: they keep it
        cursor_.record = std::make_shared<record_format::word_buffer>(std::move(cursor_.scratch));
        cursor_.scratch = record_format::word_buffer();
      }
      if (take_from_cache()) return message;
      return corrupt("publish record does not decode");
    }
  }
  return status{errc::not_found, "message " + std::to_string(id) + " not found in " + path};
}

}  // namespace weir::detail

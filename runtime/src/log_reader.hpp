#pragma once
// Reads messages back by id. Each id's segment and index entry are found under
// the state lock; the records are then read from disk under the reader's own
// lock, which guards the read cursor: the last publish record read, kept so
// that a batch read in id order costs one disk read per record.

#include <cstdint>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <vector>

#include "decoded_record.hpp"
#include "log_context.hpp"
#include "record_format.hpp"
#include "weir/runtime/checkpoint_log.hpp"
#include "weir/runtime/file_system.hpp"
#include "weir/runtime/status.hpp"

namespace weir::detail {

class log_reader {
 public:
  explicit log_reader(log_context& context) : context_(context) {}

  log_reader(const log_reader&) = delete;
  log_reader& operator=(const log_reader&) = delete;

  /// The messages `ids`, in order; concurrent calls share the cursor and
  /// serialise on it.
  std::vector<result<stored_message>> read_many(std::span<const std::uint64_t> ids) const;

 private:
  // The last publish record read, and where the record after it starts.
  struct read_cursor {
    std::uint64_t segment = 0;
    std::uint64_t first_id = 0;
    std::uint64_t count = 0;
    std::uint64_t next_offset = 0;
    // Framed, as read from disk; the payloads read from it share it.
    std::shared_ptr<record_format::word_buffer> record =
        std::make_shared<record_format::word_buffer>();
    record_format::word_buffer scratch;  // the next record is read here, then swapped in,
                                         // so that reads reuse memory instead of mapping more
    // Decoded once for all the reads it serves; points into `record`.
    std::unique_ptr<decoded_record> decoded;
    capnp::List<schema::Envelope>::Reader envelopes;
  };

  // With cursor_mutex_ held: the message `id`, whose publish record is at or after
  // `offset` in segment `segment_number`.
  result<stored_message> read_at(std::uint64_t id, std::uint64_t segment_number,
                                 readable_file& file, const std::string& path, std::uint64_t limit,
                                 std::uint64_t offset) const;

  log_context& context_;
  mutable std::mutex cursor_mutex_;
  mutable read_cursor cursor_;
};

}  // namespace weir::detail

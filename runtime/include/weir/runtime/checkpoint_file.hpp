#pragma once
// One Cap'n Proto message kept as a whole file and replaced atomically: the
// log's ack-state snapshots and stateful stages' checkpoints. On disk: a
// 16-byte header (magic, format version, CRC) and one CRC-framed record.

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <capnp/message.h>

#include "weir/runtime/file_system.hpp"
#include "weir/runtime/status.hpp"

namespace weir {

/// Which kind of file: each has its own magic number, so one is never read as another.
enum class checkpoint_kind { log_snapshot, stage_state };

/// Writes `message` to `path` via path.tmp, fsync, rename and a directory fsync,
/// so that the file is always either the old one or the new one, whole.
status write_checkpoint_file(file_system& fs, const std::string& path,
                             capnp::MessageBuilder& message, checkpoint_kind kind,
                             std::uint32_t version);

/// A checkpoint file read back and verified; keeps its bytes alive for the reader.
class checkpoint_file {
 public:
  /// not_found, version_mismatch (naming both versions), or corruption with the reason.
  static result<std::unique_ptr<checkpoint_file>> read(file_system& fs, const std::string& path,
                                                       checkpoint_kind kind, std::uint32_t version,
                                                       std::uint32_t record_size_max = 1u << 30);

  /// The message; its getRoot<T>() may throw kj::Exception if the schema does not match.
  capnp::MessageReader& message() { return *reader_; }
  std::uint64_t size_bytes() const { return size_bytes_; }

 private:
  std::vector<capnp::word> words_;
  std::unique_ptr<capnp::MessageReader> reader_;
  std::uint64_t size_bytes_ = 0;
};

}  // namespace weir

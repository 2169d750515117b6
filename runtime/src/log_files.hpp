#pragma once
// The names of the files in a checkpoint log's directory, written down once
// (docs/checkpoint-log.md, "On disk").

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace weir::log_files {

std::string segment_name(std::uint64_t number);

// A compacted segment's file kept to be written over: named by its old number,
// which only keeps names unique.
std::string spare_name(std::uint64_t number);

std::string snapshot_name(std::uint64_t sequence);

/// Parses "<prefix><digits><suffix>" into the number, or nothing.
std::optional<std::uint64_t> parse_number_name(std::string_view name, std::string_view prefix,
                                               std::string_view suffix);

inline std::optional<std::uint64_t> parse_segment_name(std::string_view name) {
  return parse_number_name(name, "segment-", ".wlog");
}
inline std::optional<std::uint64_t> parse_snapshot_name(std::string_view name) {
  return parse_number_name(name, "snapshot-", ".wsnap");
}
inline std::optional<std::uint64_t> parse_spare_name(std::string_view name) {
  return parse_number_name(name, "spare-", ".wlog");
}

inline const std::string lock_name = "LOCK";

// Written when the log closes cleanly, removed (durably) when it opens for
// writing: while it exists, no write since the last sync can be missing.
inline const std::string closed_cleanly_name = "CLOSED";

inline std::string join(const std::string& dir, const std::string& name) {
  return dir + "/" + name;
}

}  // namespace weir::log_files

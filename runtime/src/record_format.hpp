#pragma once
// The on-disk format of the checkpoint log, written down once.
//
// Segment file "segment-<20-digit number>.wlog":
//   header  [magic "WEIRLOG\0" 8][format version u32 LE][crc32c of the 12 bytes before u32 LE]
//   records back to back, each [length u32 LE][crc u32 LE][payload: `length` bytes];
//   after the last record, in a segment file that was reused, older bytes may follow
// Snapshot file "snapshot-<20-digit sequence>.wsnap":
//   header  [magic "WEIRSNP\0" 8][format version u32 LE][crc32c u32 LE], then one record.
//
// The crc covers the length bytes and the payload, so a flipped length is caught
// too, and in segment files then the segment's number (u64 LE, the "salt"): a
// compacted segment's file is reused for a later segment, and the records of its
// earlier life must not pass for records of the new one. Snapshot and stage
// files are not salted (no_salt). The payload is a flat Cap'n Proto message (segment table + segments), so
// its length is a multiple of 8 and every record starts 8-byte aligned; recovery
// relies on that to look for the next good record after a corrupt one.

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <span>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include <capnp/message.h>

#include "weir/runtime/file_system.hpp"
#include "weir/runtime/status.hpp"

namespace weir::record_format {

inline constexpr std::size_t header_size = 16;
inline constexpr std::size_t frame_header_size = 8;
inline constexpr char segment_magic[8] = {'W', 'E', 'I', 'R', 'L', 'O', 'G', '\0'};
inline constexpr char snapshot_magic[8] = {'W', 'E', 'I', 'R', 'S', 'N', 'P', '\0'};
inline constexpr char stage_magic[8] = {'W', 'E', 'I', 'R', 'S', 'T', 'G', '\0'};

/// An allocator whose resize() leaves new elements uninitialised: buffers of
/// records are written in full before they are read, and zero-filling them
/// first cost a pass over every byte appended or read back.
template <class T>
struct uninitialized_allocator : std::allocator<T> {
  template <class U>
  struct rebind {
    using other = uninitialized_allocator<U>;
  };
  uninitialized_allocator() = default;
  template <class U>
  uninitialized_allocator(const uninitialized_allocator<U>&) noexcept {}
  template <class U>
  void construct(U* p) noexcept {
    ::new (static_cast<void*>(p)) U;
  }
  template <class U, class... Args>
  void construct(U* p, Args&&... args) {
    if constexpr (sizeof...(Args) == 1 && (std::is_same_v<std::remove_cvref_t<Args>, U> && ...)) {
      // Copies and moves of words (a vector growing or copied). capnp::word
      // deletes them so that message memory is not copied by accident, but it
      // is 8 plain bytes; clang's library takes this path where GCC's copies
      // bitwise on its own.
      std::memcpy(static_cast<void*>(p), static_cast<const void*>(&args)..., sizeof(U));
    } else {
      ::new (static_cast<void*>(p)) U(std::forward<Args>(args)...);
    }
  }
};

/// Record bytes in 8-byte words, as Cap'n Proto reads them.
using word_buffer = std::vector<capnp::word, uninitialized_allocator<capnp::word>>;

/// Builds the 16-byte file header for `magic` and `version`.
void write_file_header(std::byte* out, const char* magic, std::uint32_t version);

enum class header_check { ok, too_short, bad_magic, bad_crc, other_version };

/// Checks a file header; `version` receives the version found when the magic matched.
header_check check_file_header(std::span<const std::byte> bytes, const char* magic,
                               std::uint32_t expected_version, std::uint32_t& version);

/// "bad magic number (not a weir file)", "written by format version 9; this build reads 1".
std::string describe_header_problem(header_check check, std::uint32_t found_version,
                                    std::uint32_t expected_version);

/// Reads a whole file (at most 1 GiB) into word-aligned memory, as Cap'n Proto
/// readers need it; `size_bytes` receives its length.
result<std::vector<capnp::word>> read_file_aligned(file_system& fs, const std::string& path,
                                                   std::uint64_t& size_bytes);

/// Appends one framed record holding `message` to `out` (which stays 8-byte aligned),
/// its crc not yet salted.
void append_record(word_buffer& out, capnp::MessageBuilder& message);

inline constexpr std::uint64_t no_salt = 0;

/// Mixes `salt` into the crc of the framed record starting at `frame`. Done once, by
/// the writer, when it knows which segment the record goes to.
void salt_record(std::byte* frame, std::uint64_t salt);

/// Outcome of looking at the bytes at one offset.
enum class frame_status {
  ok,          ///< a complete record whose crc and Cap'n Proto framing check out
  incomplete,  ///< the bytes end before the record does (a torn tail, or a bad length)
  corrupt,     ///< a length that cannot be, a crc mismatch, or bad message framing
};

struct frame {
  frame_status status = frame_status::corrupt;
  std::size_t size = 0;                  ///< bytes of the whole frame when ok
  std::span<const capnp::word> payload;  ///< the Cap'n Proto message when ok
  const char* reason = "";               ///< why it is not ok
};

/// Decodes the frame at the start of `bytes` (which must be 8-byte aligned) whose crc
/// was salted with `salt`.
frame decode_frame(std::span<const std::byte> bytes, std::uint32_t record_size_max,
                   std::uint64_t salt);

/// Offset (relative to `bytes`, a multiple of 8, > 0) of the next position at which a
/// valid frame salted with `salt` starts, or bytes.size() when there is none.
std::size_t find_next_frame(std::span<const std::byte> bytes, std::uint32_t record_size_max,
                            std::uint64_t salt);

inline std::uint32_t load_u32(const std::byte* p) {
  return std::uint32_t(p[0]) | std::uint32_t(p[1]) << 8 | std::uint32_t(p[2]) << 16 |
         std::uint32_t(p[3]) << 24;
}
inline void store_u32(std::byte* p, std::uint32_t v) {
  p[0] = std::byte(v);
  p[1] = std::byte(v >> 8);
  p[2] = std::byte(v >> 16);
  p[3] = std::byte(v >> 24);
}

}  // namespace weir::record_format

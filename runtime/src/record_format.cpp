#include "record_format.hpp"

#include <cstring>

#include <capnp/serialize.h>

#include "weir/runtime/crc32c.hpp"

namespace weir::record_format {

namespace {

constexpr std::size_t word_size = sizeof(capnp::word);

// The crc of a frame covers its 4 length bytes and then its payload.
std::uint32_t frame_crc(const std::byte* length_bytes, const std::byte* payload,
                        std::size_t payload_size) {
  auto crc = crc32c::value(length_bytes, 4);
  return crc32c::extend(crc, payload, payload_size);
}

// The salt goes last, so the writer can add it to a crc computed before it knew it.
std::uint32_t salted(std::uint32_t crc, std::uint64_t salt) {
  if (salt == no_salt) return crc;
  std::byte bytes[8];
  store_u32(bytes, std::uint32_t(salt));
  store_u32(bytes + 4, std::uint32_t(salt >> 32));
  return crc32c::extend(crc, bytes, sizeof bytes);
}

// A flat Cap'n Proto message starts with its segment table: (count - 1), then
// each segment's size in words, padded to a word. Checking that the table adds
// up to the frame's length rejects nearly every false start cheaply.
bool framing_matches(const std::byte* payload, std::size_t payload_size) {
  if (payload_size < word_size) return false;
  const std::uint64_t segment_count = std::uint64_t(load_u32(payload)) + 1;
  if (segment_count > 512) return false;
  const std::uint64_t table_words = (segment_count + 2) / 2;  // (1 + count) u32s, rounded up
  if (table_words * word_size > payload_size) return false;
  std::uint64_t total_words = table_words;
  for (std::uint64_t i = 0; i < segment_count; ++i) {
    total_words += load_u32(payload + 4 + 4 * i);
  }
  if (segment_count % 2 == 0 && load_u32(payload + 4 + 4 * segment_count) != 0) return false;
  return total_words * word_size == payload_size;
}

}  // namespace

std::string describe_header_problem(header_check check, std::uint32_t found_version,
                                    std::uint32_t expected_version) {
  switch (check) {
    case header_check::too_short:
      return "file shorter than its 16-byte header";
    case header_check::bad_magic:
      return "bad magic number (not a weir file of this kind)";
    case header_check::bad_crc:
      return "header checksum mismatch";
    case header_check::other_version:
      return "written by format version " + std::to_string(found_version) + "; this build reads " +
             std::to_string(expected_version);
    case header_check::ok:
      break;
  }
  return "ok";
}

result<std::vector<capnp::word>> read_file_aligned(file_system& fs, const std::string& path,
                                                   std::uint64_t& size_bytes) {
  constexpr std::uint64_t size_limit = 1ull << 30;
  auto file = fs.open_for_read(path);
  if (!file) return file.error();
  auto size = (*file)->size();
  if (!size) return size.error();
  if (*size > size_limit) {
    return status{errc::invalid_argument,
                  path + ": " + std::to_string(*size) + " bytes is larger than 1 GiB"};
  }
  std::vector<capnp::word> words((*size + word_size - 1) / word_size);
  auto bytes = std::as_writable_bytes(std::span{words}).first(*size);
  auto got = (*file)->read_at(0, bytes);
  if (!got) return got.error();
  size_bytes = *got;
  return words;
}

void write_file_header(std::byte* out, const char* magic, std::uint32_t version) {
  std::memcpy(out, magic, 8);
  store_u32(out + 8, version);
  store_u32(out + 12, crc32c::value(out, 12));
}

header_check check_file_header(std::span<const std::byte> bytes, const char* magic,
                               std::uint32_t expected_version, std::uint32_t& version) {
  if (bytes.size() < header_size) return header_check::too_short;
  if (std::memcmp(bytes.data(), magic, 8) != 0) return header_check::bad_magic;
  version = load_u32(bytes.data() + 8);
  if (load_u32(bytes.data() + 12) != crc32c::value(bytes.data(), 12)) return header_check::bad_crc;
  return version == expected_version ? header_check::ok : header_check::other_version;
}

void append_record(word_buffer& out, capnp::MessageBuilder& message) {
  auto segments = message.getSegmentsForOutput();
  const std::size_t table_words = (segments.size() + 2) / 2;
  std::size_t payload_words = table_words;
  for (auto segment : segments) payload_words += segment.size();

  const std::size_t start = out.size();
  out.resize(start + 1 + payload_words);
  auto* frame_bytes = reinterpret_cast<std::byte*>(out.data() + start);
  auto* payload = frame_bytes + frame_header_size;

  // Segment table, then segments: the standard flat layout of capnp::writeMessage.
  std::memset(payload, 0, table_words * word_size);
  store_u32(payload, std::uint32_t(segments.size() - 1));
  for (std::size_t i = 0; i < segments.size(); ++i) {
    store_u32(payload + 4 + 4 * i, std::uint32_t(segments[i].size()));
  }
  auto* cursor = payload + table_words * word_size;
  for (auto segment : segments) {
    std::memcpy(cursor, segment.begin(), segment.size() * word_size);
    cursor += segment.size() * word_size;
  }

  const std::size_t payload_size = payload_words * word_size;
  store_u32(frame_bytes, std::uint32_t(payload_size));
  store_u32(frame_bytes + 4, frame_crc(frame_bytes, payload, payload_size));
}

void salt_record(std::byte* frame, std::uint64_t salt) {
  store_u32(frame + 4, salted(load_u32(frame + 4), salt));
}

frame decode_frame(std::span<const std::byte> bytes, std::uint32_t record_size_max,
                   std::uint64_t salt) {
  frame result;
  if (bytes.size() < frame_header_size) {
    result.status = frame_status::incomplete;
    result.reason = "incomplete record header";
    return result;
  }
  const std::uint32_t length = load_u32(bytes.data());
  if (length == 0 || length % word_size != 0 || length > record_size_max) {
    result.reason = "impossible record length";
    return result;
  }
  if (bytes.size() - frame_header_size < length) {
    result.status = frame_status::incomplete;
    result.reason = "record extends past the end of the file";
    return result;
  }
  const std::byte* payload = bytes.data() + frame_header_size;
  // The segment-table check first: it is cheap, and find_next_frame calls this
  // at every aligned offset of a damaged region.
  if (!framing_matches(payload, length)) {
    result.reason = "bad Cap'n Proto segment table";
    return result;
  }
  if (load_u32(bytes.data() + 4) != salted(frame_crc(bytes.data(), payload, length), salt)) {
    result.reason = "checksum mismatch";
    return result;
  }
  result.status = frame_status::ok;
  result.size = frame_header_size + length;
  result.payload = {reinterpret_cast<const capnp::word*>(payload), length / word_size};
  return result;
}

std::size_t find_next_frame(std::span<const std::byte> bytes, std::uint32_t record_size_max,
                            std::uint64_t salt) {
  for (std::size_t offset = word_size; offset + frame_header_size <= bytes.size();
       offset += word_size) {
    if (decode_frame(bytes.subspan(offset), record_size_max, salt).status == frame_status::ok) {
      return offset;
    }
  }
  return bytes.size();
}

}  // namespace weir::record_format

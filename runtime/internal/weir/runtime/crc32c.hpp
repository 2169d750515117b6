#pragma once
// CRC-32C (Castagnoli), the checksum of every log record and snapshot. Uses the
// SSE4.2 instruction when the CPU has it, a table otherwise; both agree.

#include <cstddef>
#include <cstdint>

namespace weir::crc32c {

/// Extends `crc` (the value of a previous call, or 0 to start) over `size` bytes.
std::uint32_t extend(std::uint32_t crc, const void* data, std::size_t size) noexcept;

/// CRC-32C of `size` bytes.
inline std::uint32_t value(const void* data, std::size_t size) noexcept {
  return extend(0, data, size);
}

/// The portable table implementation, exposed so tests can check it against the fast one.
std::uint32_t extend_portable(std::uint32_t crc, const void* data, std::size_t size) noexcept;

}  // namespace weir::crc32c

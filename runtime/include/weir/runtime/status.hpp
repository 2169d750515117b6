#pragma once
// Errors as values at weir's API edges: a status (ok or a kind plus a message
// naming the file, offset or limit involved) and result<T> (a value or a status).

#include <cassert>
#include <cstdint>
#include <iosfwd>
#include <optional>
#include <string>
#include <utility>

namespace weir {

/// What kind of failure, because that decides retry, reconnect or give up.
/// Values are stable: they appear in logs and in `weir inspect --json`.
enum class errc : std::uint8_t {
  ok = 0,
  io_error = 1,          ///< the OS reported EIO or similar; the data is in doubt
  no_space = 2,          ///< ENOSPC / EDQUOT: retry once space is freed
  corruption = 3,        ///< bytes on disk or wire failed their checks
  not_found = 4,         ///< file, directory or message id does not exist
  version_mismatch = 5,  ///< written by another format version
  invalid_argument = 6,  ///< the caller asked for something malformed
  closed = 7,            ///< the object was closed or failed earlier
  in_use = 8,            ///< held by another process or instance (a locked directory)
  timed_out = 9,         ///< not done within the time given; it may still finish
};

/// Stable lower-case name of an error kind ("no_space").
const char* to_string(errc code) noexcept;

/// Prints the stable name, so errors read well in logs and test failures.
std::ostream& operator<<(std::ostream& out, errc code);

/// Maps an errno value to the closest errc (ENOSPC -> no_space, ENOENT -> not_found).
errc errc_from_errno(int error_number) noexcept;

/// Ok, or an error kind with a message that explains it.
class [[nodiscard]] status {
 public:
  status() = default;
  status(errc code, std::string message) : code_(code), message_(std::move(message)) {}

  static status ok() { return {}; }

  bool is_ok() const noexcept { return code_ == errc::ok; }
  explicit operator bool() const noexcept { return is_ok(); }
  errc code() const noexcept { return code_; }
  const std::string& message() const noexcept { return message_; }

  /// "no_space: append to /data/q/seg-00000001.wlog: No space left on device"
  std::string to_string() const;

 private:
  errc code_ = errc::ok;
  std::string message_;
};

/// A value or the status that explains why there is none.
template <class T>
class [[nodiscard]] result {
 public:
  result(T value) : value_(std::move(value)) {}  // NOLINT: implicit by design
  result(status error) : error_(std::move(error)) { assert(!error_.is_ok()); }  // NOLINT

  bool has_value() const noexcept { return value_.has_value(); }
  explicit operator bool() const noexcept { return has_value(); }

  T& value() & { return *value_; }
  const T& value() const& { return *value_; }
  T&& value() && { return std::move(*value_); }
  T& operator*() & { return *value_; }
  const T& operator*() const& { return *value_; }
  T&& operator*() && { return std::move(*value_); }
  T* operator->() { return &*value_; }
  const T* operator->() const { return &*value_; }

  /// The error; only meaningful when !has_value().
  const status& error() const noexcept { return error_; }

 private:
  std::optional<T> value_;
  status error_;
};

}  // namespace weir

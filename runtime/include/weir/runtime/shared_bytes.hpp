#pragma once
// Immutable bytes that copies share. A message body received in a frame or read
// from the log is a slice of that buffer, kept alive by it, so a body is not
// copied or allocated once per message on its way from socket to log to delivery.

#include <compare>
#include <cstddef>
#include <iosfwd>
#include <memory>
#include <string>
#include <string_view>

namespace weir {

class shared_bytes {
 public:
  shared_bytes() = default;
  /// Takes the text over (one allocation, as a std::string's copy would be).
  shared_bytes(std::string text);  // NOLINT: implicit, bodies are written as strings
  shared_bytes(const char* text) : shared_bytes(std::string(text)) {}  // NOLINT
  /// A slice of a buffer that `owner` keeps alive; nothing is copied.
  shared_bytes(std::shared_ptr<const void> owner, std::string_view bytes) noexcept
      : owner_(std::move(owner)), view_(bytes) {}

  std::string_view view() const noexcept { return view_; }
  operator std::string_view() const noexcept { return view_; }  // NOLINT
  const char* data() const noexcept { return view_.data(); }
  std::size_t size() const noexcept { return view_.size(); }
  bool empty() const noexcept { return view_.empty(); }
  /// A std::string copy.
  std::string str() const { return std::string(view_); }
  /// The same bytes in a buffer of their own: for a body kept long after its
  /// frame's other messages are gone (a slice keeps the whole frame alive).
  shared_bytes owned() const { return shared_bytes(str()); }

  friend bool operator==(const shared_bytes& a, const shared_bytes& b) noexcept {
    return a.view_ == b.view_;
  }
  friend bool operator==(const shared_bytes& a, std::string_view b) noexcept {
    return a.view_ == b;
  }
  friend bool operator==(const shared_bytes& a, const char* b) noexcept { return a.view_ == b; }
  friend bool operator==(const shared_bytes& a, const std::string& b) noexcept {
    return a.view_ == b;
  }
  friend auto operator<=>(const shared_bytes& a, const shared_bytes& b) noexcept {
    return a.view_ <=> b.view_;
  }

 private:
  std::shared_ptr<const void> owner_;
  std::string_view view_;
};

std::ostream& operator<<(std::ostream& out, const shared_bytes& bytes);

}  // namespace weir

#pragma once
// When an append to the checkpoint log counts as durable.

#include <chrono>
#include <string>
#include <string_view>

#include "weir/runtime/status.hpp"

namespace weir {

struct sync_policy {
  enum class mode { always, interval, none };

  /// always: durable after the fdatasync that covers it (group commit);
  /// interval: fdatasync every `interval`, durable after the next one;
  /// none: durable once written to the OS, lost on power loss.
  mode kind = mode::always;
  std::chrono::milliseconds interval{0};

  /// Parses "always", "none" or "interval:<ms>" (ms > 0).
  static result<sync_policy> parse(std::string_view text);

  /// The text form that parse() accepts.
  std::string to_string() const;

  friend bool operator==(const sync_policy&, const sync_policy&) = default;
};

}  // namespace weir

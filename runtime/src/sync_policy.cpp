#include "weir/runtime/sync_policy.hpp"

#include <charconv>
#include <cstdint>

namespace weir {

result<sync_policy> sync_policy::parse(std::string_view text) {
  if (text == "always") return sync_policy{mode::always, {}};
  if (text == "none") return sync_policy{mode::none, {}};
  constexpr std::string_view prefix = "interval:";
  if (text.starts_with(prefix)) {
    auto digits = text.substr(prefix.size());
    std::uint64_t ms = 0;
    auto [end, error] = std::from_chars(digits.data(), digits.data() + digits.size(), ms);
    if (error == std::errc{} && end == digits.data() + digits.size() && ms > 0 && ms <= 3'600'000) {
      return sync_policy{mode::interval, std::chrono::milliseconds(ms)};
    }
  }
  return status{errc::invalid_argument,
                "sync policy '" + std::string(text) +
                    "' is not one of always, none, interval:<ms> (1..3600000)"};
}

std::string sync_policy::to_string() const {
  switch (kind) {
    case mode::always:
      return "always";
    case mode::none:
      return "none";
    case mode::interval:
      return "interval:" + std::to_string(interval.count());
  }
  return "?";
}

}  // namespace weir

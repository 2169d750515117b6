#pragma once
// How long to wait before a retry: redelivery of a message after a failed or
// expired delivery, and a supervisor's restart of a failed child.

#include <chrono>
#include <cstdint>
#include <random>
#include <vector>

#include "weir/runtime/status.hpp"

namespace weir {

struct backoff_policy {
  enum class mode { fixed, exponential, explicit_list };

  mode kind = mode::exponential;
  std::chrono::milliseconds initial{100};  ///< fixed delay, or the first exponential one
  std::chrono::milliseconds cap{30'000};   ///< exponential delays never exceed this
  double multiplier = 2.0;                 ///< exponential growth per retry
  double jitter = 0.2;  ///< each delay is scaled by a random factor in [1 - jitter, 1 + jitter]
  std::vector<std::chrono::milliseconds>
      delays;  ///< explicit_list: retry n waits delays[n-1]; the last repeats

  static backoff_policy fixed(std::chrono::milliseconds delay, double jitter = 0);
  static backoff_policy exponential(std::chrono::milliseconds initial,
                                    std::chrono::milliseconds cap, double multiplier = 2.0,
                                    double jitter = 0.2);
  static backoff_policy from_list(std::vector<std::chrono::milliseconds> delays);

  /// invalid_argument naming the field when the policy cannot work (negative, empty list...).
  status validate() const;

  /// The delay before retry number `retry` (1 for the first retry), jitter drawn from `random`.
  std::chrono::milliseconds delay(std::uint32_t retry, std::mt19937_64& random) const;

  /// The smallest and largest delay() can return for `retry`.
  std::pair<std::chrono::milliseconds, std::chrono::milliseconds> bounds(std::uint32_t retry) const;
};

}  // namespace weir

#include "weir/runtime/backoff.hpp"

#include <algorithm>
#include <cmath>

namespace weir {

namespace {

using std::chrono::milliseconds;

// The delay before jitter is applied.
double base_ms(const backoff_policy& policy, std::uint32_t retry) {
  retry = std::max<std::uint32_t>(retry, 1);
  switch (policy.kind) {
    case backoff_policy::mode::fixed:
      return double(policy.initial.count());
    case backoff_policy::mode::exponential: {
      // pow() of a large exponent overflows to inf, which min() then caps.
      const double grown =
          double(policy.initial.count()) * std::pow(policy.multiplier, double(retry - 1));
      return std::min(grown, double(policy.cap.count()));
    }
    case backoff_policy::mode::explicit_list:
      if (policy.delays.empty()) return 0;
      return double(policy.delays[std::min<std::size_t>(retry, policy.delays.size()) - 1].count());
  }
  return 0;
}

}  // namespace

backoff_policy backoff_policy::fixed(milliseconds delay, double jitter) {
  backoff_policy policy;
  policy.kind = mode::fixed;
  policy.initial = delay;
  policy.cap = delay;
  policy.jitter = jitter;
  return policy;
}

backoff_policy backoff_policy::exponential(milliseconds initial, milliseconds cap,
                                           double multiplier, double jitter) {
  backoff_policy policy;
  policy.kind = mode::exponential;
  policy.initial = initial;
  policy.cap = cap;
  policy.multiplier = multiplier;
  policy.jitter = jitter;
  return policy;
}

backoff_policy backoff_policy::from_list(std::vector<milliseconds> delays) {
  backoff_policy policy;
  policy.kind = mode::explicit_list;
  policy.jitter = 0;
  policy.delays = std::move(delays);
  return policy;
}

status backoff_policy::validate() const {
  if (initial.count() < 0) return {errc::invalid_argument, "backoff initial delay is negative"};
  if (cap < initial) return {errc::invalid_argument, "backoff cap is below the initial delay"};
  if (!(multiplier >= 1.0)) return {errc::invalid_argument, "backoff multiplier must be >= 1"};
  if (!(jitter >= 0.0 && jitter <= 1.0)) {
    return {errc::invalid_argument, "backoff jitter must be within 0..1"};
  }
  if (kind == mode::explicit_list) {
    if (delays.empty()) return {errc::invalid_argument, "backoff list of delays is empty"};
    for (auto d : delays) {
      if (d.count() < 0) return {errc::invalid_argument, "backoff list holds a negative delay"};
    }
  }
  return {};
}

milliseconds backoff_policy::delay(std::uint32_t retry, std::mt19937_64& random) const {
  const double base = base_ms(*this, retry);
  if (jitter <= 0) return milliseconds(static_cast<std::int64_t>(base));
  std::uniform_real_distribution<double> factor(1.0 - jitter, 1.0 + jitter);
  return milliseconds(static_cast<std::int64_t>(std::llround(base * factor(random))));
}

std::pair<milliseconds, milliseconds> backoff_policy::bounds(std::uint32_t retry) const {
  const double base = base_ms(*this, retry);
  const double spread = std::max(jitter, 0.0);
  return {milliseconds(static_cast<std::int64_t>(std::floor(base * (1.0 - spread)))),
          milliseconds(static_cast<std::int64_t>(std::ceil(base * (1.0 + spread))))};
}

}  // namespace weir

#include "config_reading.hpp"

#include <algorithm>

#include "weir/queue/queue.hpp"

namespace weir::config {

namespace {

std::size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<std::size_t> row(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    std::size_t diagonal = row[0];
    row[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      const auto above = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diagonal = above;
    }
  }
  return row[b.size()];
}

}  // namespace

std::string where(const std::string& path, const toml::node& node) {
  return path + ":" + std::to_string(node.source().begin.line);
}

status wrong(const std::string& path, const toml::node& node, const std::string& key,
             const std::string& expected) {
  return {errc::invalid_argument, where(path, node) + ": key '" + key + "': " + expected};
}

status unknown_key(const std::string& path, const toml::node& node, const std::string& full_key,
                   const std::string& key, const std::vector<std::string>& known) {
  std::string list;
  const std::string* closest = nullptr;
  std::size_t closest_distance = 3;  // farther than two edits is no longer a typo
  for (const auto& k : known) {
    list += (list.empty() ? "" : ", ") + k;
    if (auto d = edit_distance(key, k); d < closest_distance) {
      closest_distance = d;
      closest = &k;
    }
  }
  std::string hint = closest != nullptr ? "did you mean '" + *closest + "'? " : "";
  return wrong(path, node, full_key, "unknown key (" + hint + "known: " + list + ")");
}

result<toml::table> parse_file(const std::string& path) {
  try {
    return toml::parse_file(path);
  } catch (const toml::parse_error& e) {
    return status{errc::invalid_argument, path + ":" + std::to_string(e.source().begin.line) +
                                              ": " + std::string(e.description())};
  }
}

status read_count(const std::string& path, const toml::node& node, const std::string& key,
                  std::uint64_t max, std::uint64_t& out) {
  auto value = node.value<std::int64_t>();
  if (!node.is_integer() || !value || *value < 0 || static_cast<std::uint64_t>(*value) > max) {
    return wrong(path, node, key, "expected an integer from 0 to " + std::to_string(max));
  }
  out = static_cast<std::uint64_t>(*value);
  return {};
}

status read_millis(const std::string& path, const toml::node& node, const std::string& key,
                   std::chrono::milliseconds& out) {
  std::uint64_t ms = 0;
  if (auto ok = read_count(path, node, key, 86'400'000, ms); !ok) return ok;
  if (ms == 0) return wrong(path, node, key, "expected a positive number of milliseconds");
  out = std::chrono::milliseconds(ms);
  return {};
}

status read_text(const std::string& path, const toml::node& node, const std::string& key,
                 std::string& out) {
  if (!node.is_string()) return wrong(path, node, key, "expected a string");
  out = *node.value<std::string>();
  return {};
}

status read_bool(const std::string& path, const toml::node& node, const std::string& key,
                 bool& out) {
  if (!node.is_boolean()) return wrong(path, node, key, "expected true or false");
  out = *node.value<bool>();
  return {};
}

const std::vector<std::string>& queue_policy_keys() {
  static const std::vector<std::string> keys{"durable",
                                             "sync",
                                             "ack_timeout_ms",
                                             "max_deliveries",
                                             "dead_letter_queue",
                                             "retry_backoff_initial_ms",
                                             "retry_backoff_max_ms",
                                             "segment_bytes_max",
                                             "snapshot_every_bytes",
                                             "spare_segments_max"};
  return keys;
}

bool read_queue_key(const std::string& path, const std::string& full_key, const std::string& key,
                    const toml::node& node, queue_policy& policy, status& out) {
  std::uint64_t count = 0;
  if (key == "durable") {
    out = read_bool(path, node, full_key, policy.durable);
  } else if (key == "sync") {
    std::string text;
    out = read_text(path, node, full_key, text);
    if (out) {
      auto parsed = sync_policy::parse(text);
      if (parsed) {
        policy.sync = *parsed;
      } else {
        out = wrong(path, node, full_key, "expected \"always\", \"none\" or \"interval:<ms>\"");
      }
    }
  } else if (key == "ack_timeout_ms") {
    out = read_millis(path, node, full_key, policy.ack_timeout);
  } else if (key == "max_deliveries") {
    out = read_count(path, node, full_key, 1'000'000, count);
    policy.max_deliveries = static_cast<std::uint32_t>(count);
  } else if (key == "dead_letter_queue") {
    out = read_text(path, node, full_key, policy.dead_letter_queue);
    if (out && policy.dead_letter_queue.find('/') != std::string::npos) {
      out = wrong(path, node, full_key, "a queue name has no '/' (\"\" for none)");
    }
  } else if (key == "retry_backoff_initial_ms") {
    out = read_millis(path, node, full_key, policy.retry_backoff_initial);
  } else if (key == "retry_backoff_max_ms") {
    out = read_millis(path, node, full_key, policy.retry_backoff_max);
  } else if (key == "segment_bytes_max") {
    // The log's own bounds, checked here to name the file and line.
    out = read_count(path, node, full_key, std::uint64_t{1} << 30, policy.segment_bytes_max);
    if (out && policy.segment_bytes_max < 4096) {
      out = wrong(path, node, full_key, "expected at least 4096");
    }
  } else if (key == "snapshot_every_bytes") {
    out = read_count(path, node, full_key, std::uint64_t{1} << 40, policy.snapshot_every_bytes);
  } else if (key == "spare_segments_max") {
    out = read_count(path, node, full_key, 64, count);
    policy.spare_segments_max = static_cast<std::uint32_t>(count);
  } else {
    return false;
  }
  return true;
}

status check_queue_policy(const std::string& path, const toml::node& table,
                          const std::string& queue_name, const queue_policy& policy) {
  if (policy.retry_backoff_max < policy.retry_backoff_initial) {
    return {errc::invalid_argument, where(path, table) + ": queue." + queue_name +
                                        ": retry_backoff_max_ms is below retry_backoff_initial_ms"};
  }
  if (auto rule = check_delivery_limit(policy.max_deliveries, !policy.dead_letter_queue.empty());
      !rule) {
    return {rule.code(), where(path, table) + ": queue." + queue_name + ": " + rule.message()};
  }
  return {};
}

}  // namespace weir::config

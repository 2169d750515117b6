#include "node_config.hpp"

#include <set>

#include <toml++/toml.h>

namespace weir::cli {

namespace {

std::string where(const std::string& path, const toml::node& node) {
  return path + ":" + std::to_string(node.source().begin.line);
}

status wrong(const std::string& path, const toml::node& node, const std::string& key,
             const std::string& expected) {
  return {errc::invalid_argument, where(path, node) + ": key '" + key + "': " + expected};
}

/// A non-negative integer no larger than `max`.
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

status read_node_table(const std::string& path, const toml::table& table, node_options& options) {
  for (const auto& [key_view, node] : table) {
    const std::string key{key_view.str()};
    status ok;
    std::uint64_t count = 0;
    if (key == "id") {
      ok = read_text(path, node, "node." + key, options.link.node_id);
    } else if (key == "heartbeat_interval_ms") {
      ok = read_millis(path, node, "node." + key, options.link.heartbeat_interval);
    } else if (key == "heartbeat_timeout_ms") {
      ok = read_millis(path, node, "node." + key, options.link.heartbeat_timeout);
    } else if (key == "max_frame_bytes") {
      ok = read_count(path, node, "node." + key, std::uint64_t{1} << 31, count);
      if (ok && count < 1024) ok = wrong(path, node, "node." + key, "expected at least 1024");
      options.link.limits.max_frame_bytes = count;
    } else {
      return wrong(path, node, "node." + key,
                   "unknown key (known: id, heartbeat_interval_ms, heartbeat_timeout_ms, "
                   "max_frame_bytes)");
    }
    if (!ok) return ok;
  }
  if (options.link.heartbeat_timeout <= options.link.heartbeat_interval) {
    return {errc::invalid_argument,
            path + ": node.heartbeat_timeout_ms must be larger than node.heartbeat_interval_ms"};
  }
  return {};
}

status read_queue_table(const std::string& path, const std::string& name, const toml::table& table,
                        node_queue_options& q) {
  auto initial = std::chrono::milliseconds(100);
  auto cap = std::chrono::milliseconds(30'000);
  for (const auto& [key_view, node] : table) {
    const std::string key{key_view.str()};
    const std::string full = "queue." + name + "." + key;
    status ok;
    std::uint64_t count = 0;
    if (key == "durable") {
      if (!node.is_boolean()) return wrong(path, node, full, "expected true or false");
      q.queue.durable = *node.value<bool>();
    } else if (key == "sync") {
      std::string text;
      ok = read_text(path, node, full, text);
      if (ok) {
        auto parsed = sync_policy::parse(text);
        if (!parsed) {
          return wrong(path, node, full, "expected \"always\", \"none\" or \"interval:<ms>\"");
        }
        q.queue.log.sync = *parsed;
      }
    } else if (key == "ack_timeout_ms") {
      ok = read_millis(path, node, full, q.queue.ack_timeout);
    } else if (key == "max_deliveries") {
      ok = read_count(path, node, full, 1'000'000, count);
      q.queue.max_deliveries = static_cast<std::uint32_t>(count);
    } else if (key == "dead_letter_queue") {
      ok = read_text(path, node, full, q.dead_letter_queue);
    } else if (key == "retry_backoff_initial_ms") {
      ok = read_millis(path, node, full, initial);
    } else if (key == "retry_backoff_max_ms") {
      ok = read_millis(path, node, full, cap);
    } else if (key == "delivery_batch_max") {
      ok = read_count(path, node, full, 65'536, count);
      q.queue.delivery_batch_max = static_cast<std::uint32_t>(count);
    } else {
      return wrong(path, node, full,
                   "unknown key (known: durable, sync, ack_timeout_ms, max_deliveries, "
                   "dead_letter_queue, retry_backoff_initial_ms, retry_backoff_max_ms, "
                   "delivery_batch_max)");
    }
    if (!ok) return ok;
  }
  if (cap < initial) {
    return {errc::invalid_argument, where(path, table) + ": queue." + name +
                                        ": retry_backoff_max_ms is below retry_backoff_initial_ms"};
  }
  q.queue.retry_backoff = backoff_policy::exponential(initial, cap);
  if (q.queue.max_deliveries > 0 && q.dead_letter_queue.empty()) {
    return {errc::invalid_argument,
            where(path, table) + ": queue." + name + ": max_deliveries is " +
                std::to_string(q.queue.max_deliveries) +
                " but dead_letter_queue is empty; set max_deliveries = 0 or name a queue"};
  }
  return {};
}

}  // namespace

node_queue_options default_queue(const std::string& name) {
  node_queue_options q;
  q.queue.name = name;
  q.queue.durable = true;
  q.queue.log.sync = sync_policy{};  // always
  q.queue.max_deliveries = 5;
  q.dead_letter_queue = name + ".dlq";
  return q;
}

status read_node_config(const std::string& path, node_options& options) {
  toml::table root;
  try {
    root = toml::parse_file(path);
  } catch (const toml::parse_error& e) {
    return {errc::invalid_argument, path + ":" + std::to_string(e.source().begin.line) + ": " +
                                        std::string(e.description())};
  }
  for (const auto& [key_view, node] : root) {
    const std::string key{key_view.str()};
    if (key == "node") {
      if (!node.is_table()) return wrong(path, node, key, "expected a table [node]");
      if (auto ok = read_node_table(path, *node.as_table(), options); !ok) return ok;
    } else if (key == "queue") {
      if (!node.is_table()) return wrong(path, node, key, "expected tables [queue.NAME]");
      for (const auto& [name_view, queue_node] : *node.as_table()) {
        const std::string name{name_view.str()};
        if (!queue_node.is_table()) {
          return wrong(path, queue_node, "queue." + name, "expected a table [queue." + name + "]");
        }
        if (name.empty() || name.find('/') != std::string::npos) {
          return wrong(path, queue_node, "queue." + name, "a queue name is non-empty without '/'");
        }
        auto q = default_queue(name);
        if (auto ok = read_queue_table(path, name, *queue_node.as_table(), q); !ok) return ok;
        options.queues.push_back(std::move(q));
      }
    } else {
      return wrong(path, node, key, "unknown table (known: [node], [queue.NAME])");
    }
  }
  return {};
}

void add_named_queues(const std::vector<std::string>& names, node_options& options) {
  std::set<std::string> known;
  for (const auto& q : options.queues) known.insert(q.queue.name);
  for (const auto& name : names) {
    if (known.insert(name).second) options.queues.push_back(default_queue(name));
  }
}

std::vector<std::string> describe_queues(const node_options& options) {
  std::vector<std::string> lines;
  for (const auto& q : options.queues) {
    lines.push_back("queue " + q.queue.name + ": " +
                    (q.queue.durable ? "durable, sync " + q.queue.log.sync.to_string()
                                     : std::string("in memory")) +
                    ", ack timeout " + std::to_string(q.queue.ack_timeout.count()) +
                    " ms, max deliveries " + std::to_string(q.queue.max_deliveries) +
                    ", dead letters " +
                    (q.dead_letter_queue.empty() ? std::string("none") : q.dead_letter_queue));
  }
  return lines;
}

}  // namespace weir::cli

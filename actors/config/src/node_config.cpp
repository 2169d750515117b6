#include "weir/config/node_config.hpp"

#include <set>

#include "config_reading.hpp"

namespace weir {

namespace {

using config::read_count;
using config::read_millis;
using config::read_text;
using config::where;
using config::wrong;

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
    } else if (key == "sessions_max") {
      ok = read_count(path, node, "node." + key, std::uint64_t{1} << 20, count);
      if (ok && count == 0) ok = wrong(path, node, "node." + key, "expected at least 1");
      options.link.sessions_max = count;
    } else if (key == "restarts_max") {
      ok = read_count(path, node, "node." + key, 1'000'000, count);
      options.restarts_max = static_cast<std::uint32_t>(count);
    } else if (key == "restart_period_ms") {
      ok = read_millis(path, node, "node." + key, options.restart_period);
    } else {
      return config::unknown_key(
          path, node, "node." + key, key,
          {"id", "heartbeat_interval_ms", "heartbeat_timeout_ms", "max_frame_bytes",
           "sessions_max", "restarts_max", "restart_period_ms"});
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
  config::queue_policy policy;
  policy.durable = q.queue.durable;
  policy.sync = q.queue.log.sync;
  policy.ack_timeout = q.queue.ack_timeout;
  policy.max_deliveries = q.queue.max_deliveries;
  policy.dead_letter_queue = q.dead_letter_queue;
  for (const auto& [key_view, node] : table) {
    const std::string key{key_view.str()};
    const std::string full = "queue." + name + "." + key;
    status ok;
    if (config::read_queue_key(path, full, key, node, policy, ok)) {
      if (!ok) return ok;
    } else if (key == "delivery_batch_max") {
      std::uint64_t count = 0;
      if (ok = read_count(path, node, full, 65'536, count); !ok) return ok;
      q.queue.delivery_batch_max = static_cast<std::uint32_t>(count);
    } else {
      auto known = config::queue_policy_keys();
      known.push_back("delivery_batch_max");
      return config::unknown_key(path, node, full, key, known);
    }
  }
  if (auto ok = config::check_queue_policy(path, table, name, policy); !ok) return ok;
  q.queue.durable = policy.durable;
  q.queue.log.sync = policy.sync;
  q.queue.ack_timeout = policy.ack_timeout;
  q.queue.retry_backoff = policy.retry_backoff();
  q.queue.max_deliveries = policy.max_deliveries;
  q.dead_letter_queue = policy.dead_letter_queue;
  policy.apply_log_sizes(q.queue.log);
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
  auto parsed = config::parse_file(path);
  if (!parsed) return parsed.error();
  const auto& root = *parsed;
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
                    (q.dead_letter_queue.empty() ? std::string("none") : q.dead_letter_queue) +
                    (q.queue.durable
                         ? ", segments of " + std::to_string(q.queue.log.segment_bytes_max) +
                               " B, snapshot every " +
                               std::to_string(q.queue.log.snapshot_every_bytes) + " B"
                         : std::string()));
  }
  return lines;
}

}  // namespace weir

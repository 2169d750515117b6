#pragma once
// Private to weir_actors: reading TOML settings (node_config.cpp, topology.cpp)
// with errors that name the file, line and key, and a hint where one helps.

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include <toml++/toml.h>

#include "weir/runtime/backoff.hpp"
#include "weir/runtime/checkpoint_log.hpp"
#include "weir/runtime/status.hpp"
#include "weir/runtime/sync_policy.hpp"

namespace weir::config {

/// "FILE:LINE" of a TOML node.
std::string where(const std::string& path, const toml::node& node);

/// "FILE:LINE: key 'KEY': EXPECTED".
status wrong(const std::string& path, const toml::node& node, const std::string& key,
             const std::string& expected);

/// "unknown key" with the known ones, and "did you mean" when one is close.
status unknown_key(const std::string& path, const toml::node& node, const std::string& full_key,
                   const std::string& key, const std::vector<std::string>& known);

/// Parses a file; a syntax error is "FILE:LINE: what toml++ says".
result<toml::table> parse_file(const std::string& path);

/// A non-negative integer no larger than `max`.
status read_count(const std::string& path, const toml::node& node, const std::string& key,
                  std::uint64_t max, std::uint64_t& out);
status read_millis(const std::string& path, const toml::node& node, const std::string& key,
                   std::chrono::milliseconds& out);
status read_text(const std::string& path, const toml::node& node, const std::string& key,
                 std::string& out);
status read_bool(const std::string& path, const toml::node& node, const std::string& key,
                 bool& out);

/// The settings a `[queue.NAME]` table shares between a node's config and a topology.
struct queue_policy {
  bool durable = true;
  sync_policy sync = {};
  std::chrono::milliseconds ack_timeout{30'000};
  std::chrono::milliseconds retry_backoff_initial{100};
  std::chrono::milliseconds retry_backoff_max{30'000};
  std::uint32_t max_deliveries = 0;
  std::string dead_letter_queue = {};
  // The queue's checkpoint log (a durable queue's), defaults the log's own.
  std::uint64_t segment_bytes_max = log_options{}.segment_bytes_max;
  std::uint64_t snapshot_every_bytes = log_options{}.snapshot_every_bytes;
  std::uint32_t spare_segments_max = log_options{}.spare_segments_max;

  /// Sets the log sizes above in `log`.
  void apply_log_sizes(log_options& log) const {
    log.segment_bytes_max = segment_bytes_max;
    log.snapshot_every_bytes = snapshot_every_bytes;
    log.spare_segments_max = spare_segments_max;
  }

  backoff_policy retry_backoff() const {
    return backoff_policy::exponential(retry_backoff_initial, retry_backoff_max);
  }
};

/// The keys read_queue_key understands.
const std::vector<std::string>& queue_policy_keys();

/// Reads `key` of a queue table into `policy`; false (and `out` untouched) when the
/// key is not a policy key, so the caller can handle its own ones.
bool read_queue_key(const std::string& path, const std::string& full_key, const std::string& key,
                    const toml::node& node, queue_policy& policy, status& out);

/// The checks across keys, once a queue table is read.
status check_queue_policy(const std::string& path, const toml::node& table,
                          const std::string& queue_name, const queue_policy& policy);

}  // namespace weir::config

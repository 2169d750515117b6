#pragma once
// What every part of one checkpoint log shares: where it lives, its options, and
// the state, segments and counters under the one lock every part takes to see
// them. Recovery fills it; then the writer thread applies appends to it, the
// snapshot thread compacts its segments, and readers look up ids in it.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <utility>

#include <capnp/common.h>

#include "log_state.hpp"
#include "weir/runtime/checkpoint_log.hpp"
#include "weir/runtime/file_system.hpp"
#include "weir/runtime/histogram.hpp"
#include "weir/schema/log.capnp.h"

namespace weir::detail {

using log_clock = std::chrono::steady_clock;
inline constexpr std::uint32_t log_format_version = schema::LOG_FORMAT_VERSION;
inline constexpr std::size_t word_size = sizeof(capnp::word);

struct log_context {
  log_context(file_system& fs, std::string dir, log_options options)
      : fs(fs), dir(std::move(dir)), options(std::move(options)) {}

  log_context(const log_context&) = delete;
  log_context& operator=(const log_context&) = delete;

  file_system& fs;
  const std::string dir;
  const log_options options;

  // Guards state, durable_next_id, segments and counters.
  mutable std::mutex state_mutex;
  log_state state;
  // Ids below it are durable under the sync policy and may be delivered; those
  // from it to state.next_id are written but a crash could still take them back.
  std::uint64_t durable_next_id = 1;
  mutable std::map<std::uint64_t, segment_entry> segments;  // mutable: readers open files lazily
  mutable log_stats counters;
  histogram fsync_seconds;  // atomics: observed by the writer without state_mutex
};

}  // namespace weir::detail

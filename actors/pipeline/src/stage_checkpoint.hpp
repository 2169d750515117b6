#pragma once
// Private to weir_pipeline: what a stage checkpoints, as one unit, and the file
// it goes to. State, applied inputs and unconfirmed outputs are written
// together, so that after a restart they agree.

#include <cstdint>
#include <deque>
#include <map>
#include <string>
#include <vector>

#include "weir/pipeline/pipeline.hpp"
#include "weir/runtime/file_system.hpp"
#include "weir/runtime/id_set.hpp"
#include "weir/runtime/status.hpp"

namespace weir {

/// A time window that is open: elements arrived, not yet aggregated.
struct open_window {
  std::int64_t start_ms = 0;  ///< time windows only
  std::vector<element> elements;
};

/// Everything a stage checkpoints, as one unit (schema/weir/schema/stage.capnp).
struct stage_snapshot {
  id_set applied;
  std::map<std::string, std::string> reduce_state;
  std::map<std::string, open_window> windows;  ///< by operator name
  /// outbox[i] has sequence number outbox_first_seq + i; the next output gets
  /// outbox_first_seq + outbox.size(). Confirms remove a prefix, so it stays dense.
  std::uint64_t outbox_first_seq = 1;
  std::deque<element> outbox;
  std::uint64_t input_incarnation = 0;
  std::uint64_t output_incarnation = 0;
  std::string input_queue;  ///< "" in checkpoints older than multi-stage pipelines
};

/// Writes the checkpoint of `stage` to `path` (write_checkpoint_file: fsync, atomic rename).
status write_stage_checkpoint(file_system& fs, const std::string& path, const std::string& stage,
                              const stage_snapshot& snapshot);

/// Loads a stage checkpoint into `snapshot`; a missing file leaves it empty (a
/// fresh stage), anything unreadable or belonging to another stage is an error.
status load_stage_checkpoint(file_system& fs, const std::string& path, const std::string& stage,
                             stage_snapshot& snapshot);

/// FNV-1a of `text`, never 0: stable across runs and builds (std::hash is not),
/// which de-duplication of a producer's resends across restarts depends on.
std::uint64_t stable_id(const std::string& text);

}  // namespace weir

#pragma once
// Recovery: reads a log's directory back into the shared state after a clean
// close or a crash, checking every record, and cuts or skips what is damaged
// (docs/checkpoint-log.md, "Recovery"). It runs once, in open(), before the
// writer and snapshot threads start, so it takes no lock but the directory's.

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "log_context.hpp"
#include "log_state.hpp"
#include "weir/runtime/checkpoint_log.hpp"
#include "weir/runtime/status.hpp"

namespace weir::detail {

/// What recovery hands on besides the shared state and the report.
struct recovered_log {
  std::shared_ptr<void> lock;                     ///< held while open for writing
  std::vector<std::string> spare_files;           ///< to be written over by later segments
  std::vector<std::uint64_t> snapshot_sequences;  ///< snapshot files kept, oldest first
  std::uint64_t last_snapshot_covers = 0;  ///< the newest snapshot's position's segment; 0: none
  std::uint64_t active_segment = 0;        ///< where appends go on
  bool create_active_segment = false;      ///< the log holds no segment: start a new one
};

class log_recovery {
 public:
  log_recovery(log_context& context, recovery_report& report)
      : context_(context), report_(report) {}

  /// Fills the context's state and segments from the directory (creating it unless
  /// read-only) and `report` with what was found and done.
  status recover(recovered_log& found);

 private:
  status load_snapshot(const std::map<std::uint64_t, std::string>& snapshots, recovered_log& found,
                       bool& fell_back);
  status scan_segment(segment_entry& segment, std::uint64_t start_offset, std::uint64_t stop_at,
                      bool is_last, bool apply);
  void report_progress(std::uint64_t segment_bytes_done, bool force);
  /// Removes a file recovery no longer needs; a failure is a warning in the
  /// report (the file stays, and the next recovery tries again), not an error.
  void remove_or_warn(const std::string& path);

  log_context& context_;
  recovery_report& report_;
  bool closed_cleanly_ = false;  // found the clean-close marker

  // Progress: bytes of the segments read before the current one, and the total.
  std::uint64_t progress_base_ = 0;
  std::uint64_t progress_segment_bytes_ = 0;
  std::uint64_t progress_total_ = 0;
  std::uint64_t progress_reported_ = 0;
};

}  // namespace weir::detail

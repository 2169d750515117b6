#pragma once
// A one-line progress bar for long work (replay, publishing, benchmarks). It
// draws on stderr only when stdout is a terminal, so scripts and logs that
// capture stdout see nothing of it.

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

namespace weir {

class progress_bar {
 public:
  /// `total` 0: no known end, the bar shows a count and a rate only.
  progress_bar(std::string label, std::uint64_t total);
  ~progress_bar();  ///< finish()

  /// Sets the amount done; redraws at most every 100 ms.
  void update(std::uint64_t done);

  /// Draws the last state and ends the line (once).
  void finish();

  /// Whether bars draw in this process (stdout is a terminal, WEIR_NO_PROGRESS unset).
  static bool enabled();

  /// A (done, total) callback that draws a bar from its first call and ends the
  /// line when done reaches total: for log_options::recovery_progress.
  static std::function<void(std::uint64_t done, std::uint64_t total)> callback(std::string label);

 private:
  void draw();

  std::string label_;
  std::uint64_t total_ = 0;
  std::uint64_t done_ = 0;
  bool enabled_ = false;
  bool finished_ = false;
  std::chrono::steady_clock::time_point started_;
  std::chrono::steady_clock::time_point drawn_;
};

}  // namespace weir

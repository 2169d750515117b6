#pragma once
// Compacted segment files kept to be written over by later segments, which
// syncs faster than growing new files (docs/checkpoint-log.md, "Spare segment
// files"). Recovery adopts the spares it finds, the snapshot thread keeps the
// files of compacted segments, and the writer thread takes one at each roll;
// the list has its own lock, as the three never need it together with another.

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "log_context.hpp"
#include "weir/runtime/file_system.hpp"

namespace weir::detail {

class spare_segments {
 public:
  explicit spare_segments(log_context& context) : context_(context) {}

  spare_segments(const spare_segments&) = delete;
  spare_segments& operator=(const spare_segments&) = delete;

  /// Spare files recovery found; no read holds them open.
  void adopt(std::vector<std::string> paths);

  /// Renames the file of compacted segment `number` into a spare if there is
  /// room for one more; false when it was not kept. `reader` is its segment's
  /// reader, which a read may still hold: until it lets go, the spare is not
  /// written over.
  bool keep(std::uint64_t number, const std::string& path, std::weak_ptr<readable_file> reader);

  /// A spare file no read still holds open (its old bytes must stay readable
  /// until then), removed from the spares; nothing when there is none.
  std::optional<std::string> take();

 private:
  struct spare_file {
    std::string path;
    std::weak_ptr<readable_file> reader;  // a read of its old segment may still hold it
  };

  log_context& context_;
  std::mutex mutex_;
  std::vector<spare_file> spares_;
};

}  // namespace weir::detail

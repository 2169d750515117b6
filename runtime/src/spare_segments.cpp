#include "spare_segments.hpp"

#include <utility>

#include "log_files.hpp"

namespace weir::detail {

void spare_segments::adopt(std::vector<std::string> paths) {
  std::lock_guard lock(mutex_);
  for (auto& path : paths) spares_.push_back({std::move(path), {}});
}

bool spare_segments::keep(std::uint64_t number, const std::string& path,
                          std::weak_ptr<readable_file> reader) {
  bool room;
  {
    std::lock_guard lock(mutex_);
    room = spares_.size() < context_.options.spare_segments_max;  // only one thread keeps spares
  }
  const auto spare = log_files::join(context_.dir, log_files::spare_name(number));
  if (!room || !context_.fs.rename_file(path, spare)) return false;
  std::lock_guard lock(mutex_);
  spares_.push_back({spare, std::move(reader)});
  return true;
}

std::optional<std::string> spare_segments::take() {
  std::lock_guard lock(mutex_);
  for (auto it = spares_.begin(); it != spares_.end(); ++it) {
    if (!it->reader.expired()) continue;
    auto path = std::move(it->path);
    spares_.erase(it);
    return path;
  }
  return std::nullopt;
}

}  // namespace weir::detail

#pragma once
// A file_system held in memory: what a non-durable queue's log is written to,
// so in-memory queues share every line of the durable queue's logic. Contents
// vanish with the object. Thread-safe.

#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>

#include "weir/runtime/file_system.hpp"

namespace weir {

class memory_file_system final : public file_system {
 public:
  result<std::unique_ptr<writable_file>> open_for_append(const std::string& path) override;
  result<std::unique_ptr<writable_file>> open_for_overwrite(const std::string& path) override;
  result<std::unique_ptr<readable_file>> open_for_read(const std::string& path) override;
  result<std::vector<std::string>> list_dir(const std::string& dir) override;
  status create_dirs(const std::string& dir) override;
  result<bool> exists(const std::string& path) override;
  result<std::uint64_t> file_size(const std::string& path) override;
  status remove_file(const std::string& path) override;
  status rename_file(const std::string& from, const std::string& to) override;
  status truncate_file(const std::string& path, std::uint64_t size) override;
  status sync_dir(const std::string& dir) override;
  result<std::shared_ptr<void>> lock_file(const std::string& path) override;

  /// Bytes held in all files.
  std::uint64_t size_bytes() const;

  struct file_data;

 private:
  mutable std::mutex mutex_;
  std::map<std::string, std::shared_ptr<file_data>> files_;
  std::set<std::string> dirs_;
  std::shared_ptr<std::set<std::string>> locked_ = std::make_shared<std::set<std::string>>();
};

}  // namespace weir

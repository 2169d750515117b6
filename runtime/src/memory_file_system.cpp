#include "weir/runtime/memory_file_system.hpp"

#include <algorithm>
#include <cstring>

namespace weir {

struct memory_file_system::file_data {
  std::mutex mutex;
  std::vector<std::byte> bytes;
};

namespace {

std::string parent_of(const std::string& path) {
  const auto slash = path.find_last_of('/');
  return slash == std::string::npos ? std::string() : path.substr(0, slash);
}

std::string trimmed(std::string path) {
  while (path.size() > 1 && path.back() == '/') path.pop_back();
  return path;
}

class memory_writable final : public writable_file {
 public:
  memory_writable(std::shared_ptr<memory_file_system::file_data> data, std::string path,
                  std::uint64_t position)
      : data_(std::move(data)), path_(std::move(path)), position_(position) {}

  status append(std::span<const std::byte> bytes) override {
    std::lock_guard lock(data_->mutex);
    auto& file = data_->bytes;
    if (file.size() < position_) file.resize(position_);  // cut by another handle: as POSIX, a hole
    const auto over = std::min<std::uint64_t>(bytes.size(), file.size() - position_);
    std::copy_n(bytes.begin(), over, file.begin() + static_cast<std::ptrdiff_t>(position_));
    file.insert(file.end(), bytes.begin() + static_cast<std::ptrdiff_t>(over), bytes.end());
    position_ += bytes.size();
    return {};
  }
  status sync() override { return {}; }
  status truncate(std::uint64_t size) override {
    std::lock_guard lock(data_->mutex);
    data_->bytes.resize(std::min<std::uint64_t>(size, data_->bytes.size()));
    position_ = data_->bytes.size();
    return {};
  }
  std::uint64_t size() const noexcept override { return position_; }
  const std::string& path() const noexcept override { return path_; }

 private:
  std::shared_ptr<memory_file_system::file_data> data_;
  std::string path_;
  std::uint64_t position_;
};

class memory_readable final : public readable_file {
 public:
  memory_readable(std::shared_ptr<memory_file_system::file_data> data, std::string path)
      : data_(std::move(data)), path_(std::move(path)) {}

  result<std::size_t> read_at(std::uint64_t offset, std::span<std::byte> out) const override {
    std::lock_guard lock(data_->mutex);
    if (offset >= data_->bytes.size()) return std::size_t{0};
    const auto n = std::min<std::size_t>(out.size(), data_->bytes.size() - offset);
    std::memcpy(out.data(), data_->bytes.data() + offset, n);
    return n;
  }
  result<std::uint64_t> size() const override {
    std::lock_guard lock(data_->mutex);
    return std::uint64_t{data_->bytes.size()};
  }
  const std::string& path() const noexcept override { return path_; }

 private:
  std::shared_ptr<memory_file_system::file_data> data_;
  std::string path_;
};

status missing(const std::string& what, const std::string& path) {
  return {errc::not_found, what + " " + path + ": No such file or directory"};
}

}  // namespace

result<std::unique_ptr<writable_file>> memory_file_system::open_for_append(
    const std::string& path) {
  std::lock_guard lock(mutex_);
  if (dirs_.count(parent_of(path)) == 0) return missing("open for append", path);
  auto& data = files_[path];
  if (!data) data = std::make_shared<file_data>();
  std::lock_guard file_lock(data->mutex);
  return std::unique_ptr<writable_file>(new memory_writable(data, path, data->bytes.size()));
}

result<std::unique_ptr<writable_file>> memory_file_system::open_for_overwrite(
    const std::string& path) {
  std::lock_guard lock(mutex_);
  auto it = files_.find(path);
  if (it == files_.end()) return missing("open for overwrite", path);
  return std::unique_ptr<writable_file>(new memory_writable(it->second, path, 0));
}

result<std::unique_ptr<readable_file>> memory_file_system::open_for_read(const std::string& path) {
  std::lock_guard lock(mutex_);
  auto it = files_.find(path);
  if (it == files_.end()) return missing("open for read", path);
  return std::unique_ptr<readable_file>(new memory_readable(it->second, path));
}

result<std::vector<std::string>> memory_file_system::list_dir(const std::string& dir) {
  std::lock_guard lock(mutex_);
  const auto base = trimmed(dir);
  if (dirs_.count(base) == 0) return missing("list directory", dir);
  std::vector<std::string> names;
  for (const auto& [path, data] : files_) {
    if (parent_of(path) == base) names.push_back(path.substr(base.size() + 1));
  }
  return names;
}

status memory_file_system::create_dirs(const std::string& dir) {
  std::lock_guard lock(mutex_);
  for (auto path = trimmed(dir); !path.empty(); path = parent_of(path)) dirs_.insert(path);
  return {};
}

result<bool> memory_file_system::exists(const std::string& path) {
  std::lock_guard lock(mutex_);
  return files_.count(path) != 0 || dirs_.count(trimmed(path)) != 0;
}

result<std::uint64_t> memory_file_system::file_size(const std::string& path) {
  std::lock_guard lock(mutex_);
  auto it = files_.find(path);
  if (it == files_.end()) return missing("size of", path);
  std::lock_guard data_lock(it->second->mutex);
  return std::uint64_t{it->second->bytes.size()};
}

status memory_file_system::remove_file(const std::string& path) {
  std::lock_guard lock(mutex_);
  if (files_.erase(path) == 0) return missing("remove", path);
  return {};
}

status memory_file_system::rename_file(const std::string& from, const std::string& to) {
  std::lock_guard lock(mutex_);
  auto it = files_.find(from);
  if (it == files_.end()) return missing("rename", from);
  auto data = it->second;
  files_.erase(it);
  files_[to] = std::move(data);
  return {};
}

status memory_file_system::truncate_file(const std::string& path, std::uint64_t size) {
  std::lock_guard lock(mutex_);
  auto it = files_.find(path);
  if (it == files_.end()) return missing("truncate", path);
  std::lock_guard data_lock(it->second->mutex);
  it->second->bytes.resize(std::min<std::uint64_t>(size, it->second->bytes.size()));
  return {};
}

status memory_file_system::sync_dir(const std::string&) {
  return {};
}

result<std::shared_ptr<void>> memory_file_system::lock_file(const std::string& path) {
  std::lock_guard lock(mutex_);
  if (!locked_->insert(path).second) {
    return status{errc::in_use, path + " is locked: another log instance uses it"};
  }
  std::weak_ptr<std::set<std::string>> locked = locked_;
  auto* guard = &mutex_;
  return std::shared_ptr<void>(nullptr, [locked, guard, path](void*) {
    if (auto set = locked.lock()) {
      std::lock_guard unlock(*guard);
      set->erase(path);
    }
  });
}

std::uint64_t memory_file_system::size_bytes() const {
  std::lock_guard lock(mutex_);
  std::uint64_t total = 0;
  for (const auto& [path, data] : files_) {
    std::lock_guard data_lock(data->mutex);
    total += data->bytes.size();
  }
  return total;
}

}  // namespace weir

#include "fault_injection_fs.hpp"

#include <thread>

#include <algorithm>
#include <cerrno>
#include <filesystem>
#include <system_error>
#include <utility>

namespace weir::testing {

using weir::errc;
using weir::readable_file;
using weir::result;
using weir::status;
using weir::writable_file;

namespace {

// Injected errors read like real ones so tests can match on the OS wording.
status injected(errc code, const std::string& what) {
  if (code == errc::ok) code = errc::io_error;  // an injected fault must fail
  std::string text;
  switch (code) {
    case errc::no_space:
      text = std::generic_category().message(ENOSPC);
      break;
    case errc::io_error:
      text = std::generic_category().message(EIO);
      break;
    case errc::not_found:
      text = std::generic_category().message(ENOENT);
      break;
    case errc::invalid_argument:
      text = std::generic_category().message(EINVAL);
      break;
    default:
      text = weir::to_string(code);
      break;
  }
  return {code, what + ": " + text + " (injected fault)"};
}

}  // namespace

// Every operation takes the file system's mutex, so a crash() on another thread
// sees each append either wholly before it or not at all.
class fault_injection_fs::tracked_writable final : public writable_file {
 public:
  tracked_writable(fault_injection_fs& fs, std::unique_ptr<writable_file> base,
                   std::shared_ptr<file_state> state, std::uint64_t generation)
      : fs_(fs), base_(std::move(base)), state_(std::move(state)), generation_(generation) {}

  status append(std::span<const std::byte> bytes) override {
    const std::string what = "append to " + path();
    std::lock_guard lock(fs_.mutex_);
    if (auto s = fs_.check_alive(generation_, what); !s) return s;
    if (fs_.writes_failing_) return injected(fs_.write_fault_code_, what);
    auto to_write = bytes;
    bool trips = false;
    if (fs_.write_limit_set_ && bytes.size() > fs_.write_budget_) {
      to_write = bytes.first(static_cast<std::size_t>(fs_.write_budget_));
      trips = true;
    }
    if (!to_write.empty()) {
      const std::uint64_t before = base_->size();
      auto s = base_->append(to_write);
      const std::uint64_t written = base_->size() - before;
      fs_.appended_bytes_ += written;
      if (fs_.write_limit_set_) fs_.write_budget_ -= std::min(written, fs_.write_budget_);
      if (!s) return s;
    }
    if (trips) {
      if (fs_.write_fault_once_) {
        fs_.write_limit_set_ = false;
        fs_.write_fault_once_ = false;
      } else {
        fs_.writes_failing_ = true;
      }
      return injected(fs_.write_fault_code_, what);
    }
    return {};
  }

  status sync() override {
    const std::string what = "sync " + path();
    fs_.wait_sync_delay();
    fs_.wait_if_held(path());
    std::lock_guard lock(fs_.mutex_);
    if (auto s = fs_.check_alive(generation_, what); !s) return s;
    ++fs_.sync_count_;
    if (auto s = fs_.take_sync_fault(what); !s) return s;
    auto s = base_->sync();
    if (s) state_->synced_size = base_->size();
    return s;
  }

  status truncate(std::uint64_t size) override {
    std::lock_guard lock(fs_.mutex_);
    if (auto s = fs_.check_alive(generation_, "truncate " + path()); !s) return s;
    auto s = base_->truncate(size);
    if (s) state_->synced_size = std::min(state_->synced_size, size);
    return s;
  }

  // Only the owning writer changes the size, so no lock is needed.
  std::uint64_t size() const noexcept override { return base_->size(); }
  const std::string& path() const noexcept override { return base_->path(); }

 private:
  fault_injection_fs& fs_;
  std::unique_ptr<writable_file> base_;
  std::shared_ptr<file_state> state_;
  std::uint64_t generation_;
};

class fault_injection_fs::tracked_readable final : public readable_file {
 public:
  tracked_readable(fault_injection_fs& fs, std::unique_ptr<readable_file> base,
                   std::uint64_t generation)
      : fs_(fs), base_(std::move(base)), generation_(generation) {}

  result<std::size_t> read_at(std::uint64_t offset, std::span<std::byte> out) const override {
    std::lock_guard lock(fs_.mutex_);
    if (auto s = fs_.check_alive(generation_, "read " + path()); !s) return s;
    return base_->read_at(offset, out);
  }

  result<std::uint64_t> size() const override {
    std::lock_guard lock(fs_.mutex_);
    if (auto s = fs_.check_alive(generation_, "stat " + path()); !s) return s;
    return base_->size();
  }

  const std::string& path() const noexcept override { return base_->path(); }

 private:
  fault_injection_fs& fs_;
  std::unique_ptr<readable_file> base_;
  std::uint64_t generation_;
};

fault_injection_fs::fault_injection_fs(weir::file_system& base) : base_(base) {}

fault_injection_fs::~fault_injection_fs() = default;

std::string fault_injection_fs::normalize(const std::string& path) {
  std::string out = std::filesystem::path(path).lexically_normal().string();
  while (out.size() > 1 && out.back() == '/') out.pop_back();
  return out.empty() ? "." : out;
}

std::string fault_injection_fs::parent_of(const std::string& normalized_path) {
  std::string out = std::filesystem::path(normalized_path).parent_path().string();
  return out.empty() ? "." : out;
}

status fault_injection_fs::check_alive(std::uint64_t generation, const std::string& what) const {
  if (dead_ || generation != generation_) return {errc::io_error, "simulated crash: " + what};
  return {};
}

status fault_injection_fs::take_sync_fault(const std::string& what) {
  if (sync_faults_left_ <= 0) return {};
  --sync_faults_left_;
  return injected(sync_fault_code_, what);
}

result<std::unique_ptr<writable_file>> fault_injection_fs::open_for_append(
    const std::string& path) {
  return open_tracked(path, false);
}

result<std::unique_ptr<writable_file>> fault_injection_fs::open_for_overwrite(
    const std::string& path) {
  return open_tracked(path, true);
}

result<std::unique_ptr<writable_file>> fault_injection_fs::open_tracked(const std::string& path,
                                                                        bool overwrite) {
  std::lock_guard lock(mutex_);
  if (auto s = check_alive(generation_,
                           "open " + path + (overwrite ? " for overwrite" : " for append"));
      !s) {
    return s;
  }
  const std::string key = normalize(path);
  auto it = files_.find(key);
  std::shared_ptr<file_state> state;
  if (it != files_.end()) {
    state = it->second;
  } else {
    // A file that predates us is taken as fully durable, name and bytes.
    auto existed = base_.exists(path);
    if (!existed) return existed.error();
    state = std::make_shared<file_state>();
    if (*existed) {
      auto size = base_.file_size(path);
      if (!size) return size.error();
      state->synced_size = *size;
      state->entry_durable = true;
    }
  }
  auto file = overwrite ? base_.open_for_overwrite(path) : base_.open_for_append(path);
  if (!file) return file.error();
  files_.emplace(key, state);  // no-op when already tracked
  return std::unique_ptr<writable_file>(
      new tracked_writable(*this, std::move(*file), std::move(state), generation_));
}

result<std::unique_ptr<readable_file>> fault_injection_fs::open_for_read(const std::string& path) {
  std::lock_guard lock(mutex_);
  if (auto s = check_alive(generation_, "open " + path + " for read"); !s) return s;
  auto file = base_.open_for_read(path);
  if (!file) return file.error();
  return std::unique_ptr<readable_file>(new tracked_readable(*this, std::move(*file), generation_));
}

result<std::vector<std::string>> fault_injection_fs::list_dir(const std::string& dir) {
  std::lock_guard lock(mutex_);
  if (auto s = check_alive(generation_, "list directory " + dir); !s) return s;
  return base_.list_dir(dir);
}

status fault_injection_fs::create_dirs(const std::string& dir) {
  std::lock_guard lock(mutex_);
  if (auto s = check_alive(generation_, "create directory " + dir); !s) return s;
  return base_.create_dirs(dir);
}

result<bool> fault_injection_fs::exists(const std::string& path) {
  std::lock_guard lock(mutex_);
  if (auto s = check_alive(generation_, "stat " + path); !s) return s;
  return base_.exists(path);
}

result<std::uint64_t> fault_injection_fs::file_size(const std::string& path) {
  std::lock_guard lock(mutex_);
  if (auto s = check_alive(generation_, "stat " + path); !s) return s;
  return base_.file_size(path);
}

status fault_injection_fs::remove_file(const std::string& path) {
  std::lock_guard lock(mutex_);
  if (auto s = check_alive(generation_, "remove " + path); !s) return s;
  auto s = base_.remove_file(path);
  // Removals are not modelled: a crash never brings the file back.
  if (s) files_.erase(normalize(path));
  return s;
}

status fault_injection_fs::rename_file(const std::string& from, const std::string& to) {
  std::lock_guard lock(mutex_);
  if (auto s = check_alive(generation_, "rename " + from + " to " + to); !s) return s;
  if (auto s = base_.rename_file(from, to); !s) return s;
  const std::string from_key = normalize(from);
  const std::string to_key = normalize(to);
  if (from_key == to_key) return {};
  std::shared_ptr<file_state> state;
  if (auto it = files_.find(from_key); it != files_.end()) {
    state = it->second;
    files_.erase(it);
  } else {
    auto size = base_.file_size(to);
    if (!size) return size.error();
    state = std::make_shared<file_state>();
    state->synced_size = *size;
  }
  // The new name is lost on a crash until its directory is synced.
  state->entry_durable = false;
  files_[to_key] = std::move(state);
  return {};
}

status fault_injection_fs::truncate_file(const std::string& path, std::uint64_t size) {
  std::lock_guard lock(mutex_);
  if (auto s = check_alive(generation_, "truncate " + path); !s) return s;
  auto s = base_.truncate_file(path, size);
  if (s) {
    if (auto it = files_.find(normalize(path)); it != files_.end())
      it->second->synced_size = size;  // truncate_file syncs
  }
  return s;
}

status fault_injection_fs::sync_dir(const std::string& dir) {
  const std::string what = "sync directory " + dir;
  std::lock_guard lock(mutex_);
  if (auto s = check_alive(generation_, what); !s) return s;
  ++sync_count_;
  if (auto s = take_sync_fault(what); !s) return s;
  auto s = base_.sync_dir(dir);
  if (s) {
    const std::string key = normalize(dir);
    for (auto& [path, state] : files_)
      if (parent_of(path) == key) state->entry_durable = true;
  }
  return s;
}

template <class Lose>
status fault_injection_fs::crash_each_file(Lose&& lose) {
  std::lock_guard lock(mutex_);
  status first_error;
  auto note = [&first_error](status s) {
    if (!s && s.code() != errc::not_found && first_error.is_ok()) first_error = std::move(s);
  };
  for (const auto& [path, state] : files_) {
    if (!state->entry_durable) {
      note(base_.remove_file(path));
      continue;
    }
    auto size = base_.file_size(path);
    if (!size) {
      note(size.error());
      continue;
    }
    if (*size <= state->synced_size) continue;
    note(lose(path, state->synced_size, *size));
  }
  // What survived is durable now; files are re-tracked when reopened.
  files_.clear();
  dead_ = true;
  ++generation_;
  return first_error;
}

status fault_injection_fs::crash(std::uint64_t keep_unsynced_bytes) {
  return crash_each_file([&](const std::string& path, std::uint64_t synced, std::uint64_t size) {
    const std::uint64_t keep = synced + std::min(keep_unsynced_bytes, size - synced);
    return keep < size ? base_.truncate_file(path, keep) : status{};
  });
}

status fault_injection_fs::crash_keeping_random_pages(std::uint64_t seed) {
  return crash_each_file([&](const std::string& path, std::uint64_t synced, std::uint64_t size) {
    return zero_random_pages(path, synced, size, seed);
  });
}

// Rewrites [from, size) of `path` with the pages a coin throw loses zeroed.
status fault_injection_fs::zero_random_pages(const std::string& path, std::uint64_t from,
                                             std::uint64_t size, std::uint64_t& random_state) {
  constexpr std::uint64_t page = 4096;
  auto reader = base_.open_for_read(path);
  if (!reader) return reader.error();
  std::vector<std::byte> tail(size - from);
  for (std::size_t done = 0; done < tail.size();) {
    auto got = (*reader)->read_at(from + done, std::span{tail}.subspan(done));
    if (!got) return got.error();
    if (*got == 0) return {errc::io_error, "short read of " + path};
    done += *got;
  }
  reader->reset();
  for (std::uint64_t begin = from; begin < size;) {
    const std::uint64_t end = std::min(size, (begin / page + 1) * page);
    random_state = random_state * 6364136223846793005ull + 1442695040888963407ull;
    if (random_state >> 63) {
      std::fill(tail.begin() + static_cast<std::ptrdiff_t>(begin - from),
                tail.begin() + static_cast<std::ptrdiff_t>(end - from), std::byte{0});
    }
    begin = end;
  }
  if (auto cut = base_.truncate_file(path, from); !cut) return cut;
  auto writer = base_.open_for_append(path);
  if (!writer) return writer.error();
  return (*writer)->append(tail);
}

void fault_injection_fs::restart() {
  clear_faults();
  std::lock_guard lock(mutex_);
  dead_ = false;
}

void fault_injection_fs::fail_writes_after(std::uint64_t bytes, errc code) {
  std::lock_guard lock(mutex_);
  write_limit_set_ = true;
  writes_failing_ = false;
  write_fault_once_ = false;
  write_budget_ = bytes;
  write_fault_code_ = code;
}

void fault_injection_fs::fail_one_write_after(std::uint64_t bytes, errc code) {
  fail_writes_after(bytes, code);
  std::lock_guard lock(mutex_);
  write_fault_once_ = true;
}

void fault_injection_fs::fail_syncs(int count, errc code) {
  std::lock_guard lock(mutex_);
  sync_faults_left_ = count;
  sync_fault_code_ = code;
}

void fault_injection_fs::clear_faults() {
  std::lock_guard lock(mutex_);
  write_limit_set_ = false;
  writes_failing_ = false;
  write_fault_once_ = false;
  write_budget_ = 0;
  sync_faults_left_ = 0;
}

std::uint64_t fault_injection_fs::sync_count() const {
  std::lock_guard lock(mutex_);
  return sync_count_;
}

std::uint64_t fault_injection_fs::appended_bytes() const {
  std::lock_guard lock(mutex_);
  return appended_bytes_;
}

void fault_injection_fs::set_sync_delay(std::chrono::microseconds delay) {
  sync_delay_us_.store(delay.count());
}

void fault_injection_fs::wait_sync_delay() const {
  // Outside the mutex: a slow disk must not stall appends to other files.
  if (const auto us = sync_delay_us_.load(); us > 0) {
    std::this_thread::sleep_for(std::chrono::microseconds(us));
  }
}

void fault_injection_fs::hold_syncs_of(std::string path_suffix) {
  std::lock_guard lock(hold_mutex_);
  hold_suffix_ = std::move(path_suffix);
}

void fault_injection_fs::release_held_syncs() {
  {
    std::lock_guard lock(hold_mutex_);
    hold_suffix_.clear();
  }
  hold_released_.notify_all();
}

std::uint64_t fault_injection_fs::held_syncs() const {
  std::lock_guard lock(hold_mutex_);
  return held_syncs_;
}

void fault_injection_fs::wait_if_held(const std::string& path) {
  std::unique_lock lock(hold_mutex_);
  if (hold_suffix_.empty() || !path.ends_with(hold_suffix_)) return;
  ++held_syncs_;
  // Bounded, so that a test that forgets to release fails instead of hanging.
  hold_released_.wait_for(lock, std::chrono::seconds(30), [&] { return hold_suffix_.empty(); });
}

result<std::shared_ptr<void>> fault_injection_fs::lock_file(const std::string& path) {
  // Locks are process state, not disk state: a crash does not model them.
  return base_.lock_file(path);
}

}  // namespace weir::testing

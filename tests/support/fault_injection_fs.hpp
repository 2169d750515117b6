#pragma once
// A file_system wrapper that simulates power loss and injects ENOSPC/EIO, after
// LevelDB's fault-injection Env. It remembers, per file written through it, how
// much was synced and whether its directory entry was synced; crash() then
// throws away everything a real power cut could lose.
//
// Simplifications, deliberate: a crash removes a not-yet-durable rename target
// rather than restoring what the name held before; removals are not undone
// (a removed file is forgotten, never resurrected); a file opened for
// overwrite is cut at its synced size plus the torn part, where a real disk
// would keep its older bytes after that (crash_keeping_random_pages zeroes the
// pages it loses, where such a file would show its older bytes); directories
// made with create_dirs are treated as durable.

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "weir/runtime/file_system.hpp"

namespace weir::testing {

/// Thread-safe: one mutex guards all state, so a writer thread may append while
/// the test thread calls crash(). Must outlive every file opened through it.
class fault_injection_fs final : public weir::file_system {
 public:
  explicit fault_injection_fs(weir::file_system& base);
  ~fault_injection_fs() override;

  fault_injection_fs(const fault_injection_fs&) = delete;
  fault_injection_fs& operator=(const fault_injection_fs&) = delete;

  weir::result<std::unique_ptr<weir::writable_file>> open_for_append(
      const std::string& path) override;
  weir::result<std::unique_ptr<weir::writable_file>> open_for_overwrite(
      const std::string& path) override;
  weir::result<std::unique_ptr<weir::readable_file>> open_for_read(
      const std::string& path) override;
  weir::result<std::vector<std::string>> list_dir(const std::string& dir) override;
  weir::status create_dirs(const std::string& dir) override;
  weir::result<bool> exists(const std::string& path) override;
  weir::result<std::uint64_t> file_size(const std::string& path) override;
  weir::status remove_file(const std::string& path) override;
  weir::status rename_file(const std::string& from, const std::string& to) override;
  weir::status truncate_file(const std::string& path, std::uint64_t size) override;
  weir::status sync_dir(const std::string& dir) override;
  weir::result<std::shared_ptr<void>> lock_file(const std::string& path) override;

  /// Simulates power loss: cuts each tracked file to its synced size plus up to
  /// `keep_unsynced_bytes` more (a torn write), removes files whose directory
  /// entry is not durable, then fails every operation until restart().
  weir::status crash(std::uint64_t keep_unsynced_bytes = 0);

  /// Simulates a power cut that kept a random half of each file's pages (4 KiB at
  /// file offsets) written since its last sync; the others read as zeros and the
  /// file keeps its length, as when the new size reached the disk before the data.
  /// Otherwise as crash(). The same `seed` loses the same pages.
  weir::status crash_keeping_random_pages(std::uint64_t seed);

  /// Leaves the crashed state and clears faults; files opened before must be reopened.
  void restart();

  /// Once `bytes` more bytes were appended (over all files), the append that would
  /// exceed that writes what fits and fails with `code`, as do all later appends.
  void fail_writes_after(std::uint64_t bytes, weir::errc code);

  /// As fail_writes_after, but only the append that exceeds `bytes` fails (after
  /// writing what fits); later appends succeed, as when space is freed at once.
  void fail_one_write_after(std::uint64_t bytes, weir::errc code);

  /// The next `count` sync() / sync_dir() calls fail with `code` and sync nothing.
  void fail_syncs(int count, weir::errc code);

  void clear_faults();

  /// Makes every file sync() take at least `delay`, like a slow disk, so that
  /// appends pile up behind it and group commit is observable deterministically.
  void set_sync_delay(std::chrono::microseconds delay);

  /// Makes sync() of files whose path ends with `path_suffix` wait until
  /// release_held_syncs() (or 30 s at most), like a disk stalled on that one file,
  /// while every other operation goes on. Used to hold a snapshot's fsync.
  void hold_syncs_of(std::string path_suffix);
  void release_held_syncs();
  /// sync() calls that were held (started waiting) so far.
  std::uint64_t held_syncs() const;

  /// sync() and sync_dir() calls made while alive, including injected failures.
  std::uint64_t sync_count() const;

  /// Bytes appended through this file system (including prefixes of failed appends).
  std::uint64_t appended_bytes() const;

 private:
  class tracked_writable;
  class tracked_readable;

  weir::result<std::unique_ptr<weir::writable_file>> open_tracked(const std::string& path,
                                                                  bool overwrite);

  // Shared with open writable files so that a file renamed while open keeps
  // its own record; a removed file's record is simply dropped from files_.
  struct file_state {
    std::uint64_t synced_size = 0;
    bool entry_durable = false;
  };

  // crash() and its variants: `lose(path, synced size, size)` takes from each
  // file with unsynced bytes what the power cut loses.
  template <class Lose>
  weir::status crash_each_file(Lose&& lose);
  weir::status zero_random_pages(const std::string& path, std::uint64_t from, std::uint64_t size,
                                 std::uint64_t& random_state);

  static std::string normalize(const std::string& path);
  static std::string parent_of(const std::string& normalized_path);

  // Both require mutex_ held.
  weir::status check_alive(std::uint64_t generation, const std::string& what) const;
  weir::status take_sync_fault(const std::string& what);

  weir::file_system& base_;
  mutable std::mutex mutex_;
  std::map<std::string, std::shared_ptr<file_state>> files_;  // by normalized path
  bool dead_ = false;
  // Bumped by crash(): files opened before a crash stay dead after restart().
  std::uint64_t generation_ = 0;

  bool write_limit_set_ = false;
  bool writes_failing_ = false;
  bool write_fault_once_ = false;  // the write limit trips once, then is lifted
  std::uint64_t write_budget_ = 0;
  weir::errc write_fault_code_ = weir::errc::ok;
  int sync_faults_left_ = 0;
  weir::errc sync_fault_code_ = weir::errc::ok;

  void wait_sync_delay() const;
  std::atomic<std::int64_t> sync_delay_us_{0};

  // Held syncs have their own mutex, so that waiting blocks nothing else.
  void wait_if_held(const std::string& path);
  mutable std::mutex hold_mutex_;
  std::condition_variable hold_released_;
  std::string hold_suffix_;  // empty: nothing is held
  std::uint64_t held_syncs_ = 0;

  std::uint64_t sync_count_ = 0;
  std::uint64_t appended_bytes_ = 0;
};

}  // namespace weir::testing

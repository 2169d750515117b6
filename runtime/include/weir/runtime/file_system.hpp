#pragma once
// The file layer under the checkpoint log. Everything the log does to disk goes
// through these interfaces, so tests can wrap them to inject power loss, torn
// writes, ENOSPC and EIO (LevelDB's fault-injection Env is the model).

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "weir/runtime/status.hpp"

namespace weir {

/// A file opened for appending, or for writing over an old file from its start.
/// Not thread-safe: one writer owns it.
class writable_file {
 public:
  virtual ~writable_file() = default;

  /// Appends all of `bytes`, or returns an error; after an error, size() counts
  /// the prefix that was written (the log keeps the whole records in it).
  virtual status append(std::span<const std::byte> bytes) = 0;

  /// fdatasync: once ok, everything appended so far survives a power loss.
  virtual status sync() = 0;

  /// Cuts the file to `size` bytes (used to undo a failed append); appends continue there.
  virtual status truncate(std::uint64_t size) = 0;

  /// Bytes written, including unsynced ones: where the next append goes. In a file
  /// opened for overwrite, older bytes past it are not counted (truncate cuts them).
  virtual std::uint64_t size() const noexcept = 0;

  /// The path it was opened with, for error messages.
  virtual const std::string& path() const noexcept = 0;
};

/// A file opened for positional reads. Safe to use from several threads at once.
class readable_file {
 public:
  virtual ~readable_file() = default;

  /// Reads up to out.size() bytes at `offset`; returns how many were read (short only at end of
  /// file).
  virtual result<std::size_t> read_at(std::uint64_t offset, std::span<std::byte> out) const = 0;

  /// Current size of the file.
  virtual result<std::uint64_t> size() const = 0;

  virtual const std::string& path() const noexcept = 0;
};

/// Directory and file operations. Paths are plain strings; errors name the path.
class file_system {
 public:
  virtual ~file_system() = default;

  /// Opens `path` for appending at its end, creating it if missing.
  virtual result<std::unique_ptr<writable_file>> open_for_append(const std::string& path) = 0;

  /// Opens an existing file to write over it from its start, keeping its blocks:
  /// overwriting allocated blocks costs the disk less than growing a file. Past
  /// the written part the file keeps its length; its bytes there are older ones
  /// or, up to the end of a written page, zeros.
  virtual result<std::unique_ptr<writable_file>> open_for_overwrite(const std::string& path) = 0;

  /// Opens an existing file for reading.
  virtual result<std::unique_ptr<readable_file>> open_for_read(const std::string& path) = 0;

  /// Names (not paths) of the entries in `dir`, unsorted, without "." and "..".
  virtual result<std::vector<std::string>> list_dir(const std::string& dir) = 0;

  /// Creates `dir` and missing parents; ok if it already exists as a directory.
  virtual status create_dirs(const std::string& dir) = 0;

  /// True when `path` exists (file or directory).
  virtual result<bool> exists(const std::string& path) = 0;

  virtual result<std::uint64_t> file_size(const std::string& path) = 0;
  virtual status remove_file(const std::string& path) = 0;

  /// Atomically replaces `to` with `from` (rename(2)); durable after sync_dir.
  virtual status rename_file(const std::string& from, const std::string& to) = 0;

  /// Cuts an existing file to `size` bytes and syncs it.
  virtual status truncate_file(const std::string& path, std::uint64_t size) = 0;

  /// fsync of a directory: makes file creations, renames and removals in it durable.
  virtual status sync_dir(const std::string& dir) = 0;

  /// Takes an exclusive lock on `path` (created if missing) until the returned
  /// handle is destroyed; in_use when another holder has it, even in another process.
  virtual result<std::shared_ptr<void>> lock_file(const std::string& path) = 0;

  /// A hint that the synced bytes of `path` below `end` will rarely be read again:
  /// the memory caching them may be freed, whole pages only (appends may go on in
  /// the page holding `end`); `end` = whole_file: all of it. Nothing by default.
  static constexpr std::uint64_t whole_file = UINT64_MAX;
  virtual void drop_cached(const std::string& path, std::uint64_t end) {
    (void)path;
    (void)end;
  }
};

/// The real POSIX file system.
class posix_file_system final : public file_system {
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
  void drop_cached(const std::string& path, std::uint64_t end) override;
};

}  // namespace weir

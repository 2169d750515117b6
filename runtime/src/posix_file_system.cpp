#include "weir/runtime/file_system.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <vector>

#include <cerrno>
#include <system_error>

namespace weir {

namespace {

/// The kernel's page, the unit of its cache.
std::uint64_t page_bytes() {
  static const auto page = static_cast<std::uint64_t>(::sysconf(_SC_PAGESIZE));
  return page;
}

// std::generic_category().message() is thread-safe, unlike strerror.
status os_error(int error_number, const std::string& what) {
  return {errc_from_errno(error_number),
          what + ": " + std::generic_category().message(error_number)};
}

std::string at_offset(const std::string& path, std::uint64_t offset) {
  return path + " at offset " + std::to_string(offset);
}

class posix_writable_file final : public writable_file {
 public:
  /// `size`: where appends start; `stored`: the bytes the file already holds.
  posix_writable_file(int fd, std::string path, std::uint64_t size, std::uint64_t stored)
      : fd_(fd), path_(std::move(path)), size_(size), stored_(stored) {}

  posix_writable_file(const posix_writable_file&) = delete;
  posix_writable_file& operator=(const posix_writable_file&) = delete;

  // A close error cannot be reported from here; anything that mattered was
  // already surfaced by sync().
  ~posix_writable_file() override { ::close(fd_); }

  status append(std::span<const std::byte> bytes) override {
    // Written over older bytes, a write that ends inside a page the cache does
    // not hold makes the kernel read that page from disk first, synchronously
    // (about one read per group commit of the log into a reused segment). The
    // same write runs on to the page's end with zeros instead: bytes past our
    // size are free to overwrite, and a whole page needs no read.
    const std::uint64_t end = size_ + bytes.size();
    std::size_t padding = 0;
    const auto page = page_bytes();
    if (end < stored_ && end % page != 0) {
      padding = static_cast<std::size_t>(std::min(page - end % page, stored_ - end));
    }
    static const std::vector<std::byte> zeros(page);
    std::array<iovec, 2> parts{iovec{const_cast<std::byte*>(bytes.data()), bytes.size()},
                               iovec{const_cast<std::byte*>(zeros.data()), padding}};
    std::uint64_t written = 0;  // of bytes and padding together
    const std::uint64_t total = bytes.size() + padding;
    while (written < total) {
      // pwrite at our own size rather than O_APPEND: after truncate() the next
      // write must land at the cut, and we are the only writer.
      std::array<iovec, 2> rest = parts;
      std::size_t skip = written;
      int first = 0;
      while (skip >= rest[first].iov_len && first < 1) skip -= rest[first++].iov_len;
      rest[first].iov_base = static_cast<std::byte*>(rest[first].iov_base) + skip;
      rest[first].iov_len -= skip;
      const ssize_t n = ::pwritev(fd_, rest.data() + first, 2 - first,
                                  static_cast<off_t>(size_ + written));
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        if (written >= bytes.size()) break;  // the bytes are written; the zeros were a nicety
        const int error = n < 0 ? errno : 0;
        size_ += written;
        if (error == 0) return {errc::io_error, "append to " + path_ + ": write made no progress"};
        return os_error(error, "append to " + path_);
      }
      written += static_cast<std::uint64_t>(n);
    }
    size_ = end;
    stored_ = std::max(stored_, size_ + std::min<std::uint64_t>(written - bytes.size(), padding));
    return {};
  }

  status sync() override {
    if (::fdatasync(fd_) != 0) return os_error(errno, "sync " + path_);
    return {};
  }

  status truncate(std::uint64_t size) override {
    if (::ftruncate(fd_, static_cast<off_t>(size)) != 0)
      return os_error(errno, "truncate " + path_ + " to " + std::to_string(size) + " bytes");
    size_ = size;
    stored_ = size;
    return {};
  }

  std::uint64_t size() const noexcept override { return size_; }
  const std::string& path() const noexcept override { return path_; }

 private:
  int fd_;
  std::string path_;
  std::uint64_t size_;
  std::uint64_t stored_;  // the file's length: older bytes may lie between size_ and it
};

class posix_readable_file final : public readable_file {
 public:
  posix_readable_file(int fd, std::string path) : fd_(fd), path_(std::move(path)) {}

  posix_readable_file(const posix_readable_file&) = delete;
  posix_readable_file& operator=(const posix_readable_file&) = delete;

  ~posix_readable_file() override { ::close(fd_); }

  result<std::size_t> read_at(std::uint64_t offset, std::span<std::byte> out) const override {
    std::size_t done = 0;
    while (done < out.size()) {
      const ssize_t n =
          ::pread(fd_, out.data() + done, out.size() - done, static_cast<off_t>(offset + done));
      if (n < 0) {
        if (errno == EINTR) continue;
        return os_error(errno, "read " + at_offset(path_, offset + done));
      }
      if (n == 0) break;  // end of file
      done += static_cast<std::size_t>(n);
    }
    return done;
  }

  result<std::uint64_t> size() const override {
    struct stat st {};
    if (::fstat(fd_, &st) != 0) return os_error(errno, "stat " + path_);
    return static_cast<std::uint64_t>(st.st_size);
  }

  const std::string& path() const noexcept override { return path_; }

 private:
  int fd_;
  std::string path_;
};

// open(2) retried on EINTR, which it can return on some file systems (NFS, FUSE).
int open_retrying(const std::string& path, int flags, mode_t mode = 0) {
  int fd;
  do {
    fd = ::open(path.c_str(), flags, mode);
  } while (fd < 0 && errno == EINTR);
  return fd;
}

// Closes an fd whose close result matters (it can report deferred write errors).
status close_checked(int fd, const std::string& what) {
  if (::close(fd) != 0 && errno != EINTR) return os_error(errno, what);
  return {};
}

}  // namespace

result<std::unique_ptr<writable_file>> posix_file_system::open_for_append(const std::string& path) {
  const int fd = open_retrying(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) return os_error(errno, "open " + path + " for append");
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    const int err = errno;
    ::close(fd);
    return os_error(err, "stat " + path);
  }
  const auto size = static_cast<std::uint64_t>(st.st_size);
  return std::unique_ptr<writable_file>(new posix_writable_file(fd, path, size, size));
}

result<std::unique_ptr<writable_file>> posix_file_system::open_for_overwrite(
    const std::string& path) {
  const int fd = open_retrying(path, O_WRONLY | O_CLOEXEC);
  if (fd < 0) return os_error(errno, "open " + path + " for overwrite");
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    const int err = errno;
    ::close(fd);
    return os_error(err, "stat " + path);
  }
  return std::unique_ptr<writable_file>(
      new posix_writable_file(fd, path, 0, static_cast<std::uint64_t>(st.st_size)));
}

result<std::unique_ptr<readable_file>> posix_file_system::open_for_read(const std::string& path) {
  const int fd = open_retrying(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return os_error(errno, "open " + path + " for read");
  return std::unique_ptr<readable_file>(new posix_readable_file(fd, path));
}

result<std::vector<std::string>> posix_file_system::list_dir(const std::string& dir) {
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) return os_error(errno, "list directory " + dir);
  std::vector<std::string> names;
  for (;;) {
    errno = 0;  // readdir signals errors only through errno
    const dirent* entry = ::readdir(d);
    if (entry == nullptr) {
      const int err = errno;
      ::closedir(d);
      if (err != 0) return os_error(err, "list directory " + dir);
      return names;
    }
    const std::string_view name = entry->d_name;
    if (name != "." && name != "..") names.emplace_back(name);
  }
}

status posix_file_system::create_dirs(const std::string& dir) {
  if (dir.empty()) return {errc::invalid_argument, "create directory: empty path"};
  // mkdir each prefix in turn; EEXIST is fine only if it is a directory.
  std::size_t pos = 0;
  while (pos != std::string::npos) {
    pos = dir.find('/', pos + 1);
    const std::string prefix = dir.substr(0, pos);
    if (prefix.empty() || prefix.back() == '/') continue;  // leading or doubled slash
    if (::mkdir(prefix.c_str(), 0755) == 0) continue;
    const int err = errno;
    if (err != EEXIST) return os_error(err, "create directory " + prefix);
    struct stat st {};
    if (::stat(prefix.c_str(), &st) != 0) return os_error(errno, "create directory " + prefix);
    if (!S_ISDIR(st.st_mode)) return os_error(ENOTDIR, "create directory " + prefix);
  }
  return {};
}

result<bool> posix_file_system::exists(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) == 0) return true;
  if (errno == ENOENT || errno == ENOTDIR) return false;
  return os_error(errno, "stat " + path);
}

result<std::uint64_t> posix_file_system::file_size(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return os_error(errno, "stat " + path);
  return static_cast<std::uint64_t>(st.st_size);
}

status posix_file_system::remove_file(const std::string& path) {
  if (::unlink(path.c_str()) != 0) return os_error(errno, "remove " + path);
  return {};
}

status posix_file_system::rename_file(const std::string& from, const std::string& to) {
  if (::rename(from.c_str(), to.c_str()) != 0)
    return os_error(errno, "rename " + from + " to " + to);
  return {};
}

status posix_file_system::truncate_file(const std::string& path, std::uint64_t size) {
  const int fd = open_retrying(path, O_WRONLY | O_CLOEXEC);
  if (fd < 0) return os_error(errno, "open " + path + " for truncate");
  const std::string what = "truncate " + path + " to " + std::to_string(size) + " bytes";
  if (::ftruncate(fd, static_cast<off_t>(size)) != 0 || ::fdatasync(fd) != 0) {
    const int err = errno;
    ::close(fd);
    return os_error(err, what);
  }
  return close_checked(fd, what);
}

result<std::shared_ptr<void>> posix_file_system::lock_file(const std::string& path) {
  const int fd = open_retrying(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) return os_error(errno, "open lock file " + path);
  // flock locks belong to the open file description: a second open of the
  // same path in this process conflicts too, which is what we want.
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    const int err = errno;
    ::close(fd);
    if (err == EWOULDBLOCK) {
      return status{errc::in_use, path + " is locked: another process or log instance uses it"};
    }
    return os_error(err, "lock " + path);
  }
  return std::shared_ptr<void>(nullptr, [fd](void*) { ::close(fd); });
}

void posix_file_system::drop_cached(const std::string& path, std::uint64_t end) {
  // Whole pages only: Linux drops the page holding `end` too when `end` is the
  // file's end, and the next append into that page would read it back first.
  if (end != whole_file) end -= end % page_bytes();
  if (end == 0) return;
  const int fd = open_retrying(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return;  // a hint: a file compacted meanwhile has nothing to drop
  // A length of 0 is "to the end of the file".
  ::posix_fadvise(fd, 0, end == whole_file ? 0 : static_cast<off_t>(end), POSIX_FADV_DONTNEED);
  ::close(fd);
}

status posix_file_system::sync_dir(const std::string& dir) {
  const int fd = open_retrying(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return os_error(errno, "open directory " + dir + " for sync");
  if (::fsync(fd) != 0) {
    const int err = errno;
    ::close(fd);
    return os_error(err, "sync directory " + dir);
  }
  return close_checked(fd, "sync directory " + dir);
}

}  // namespace weir

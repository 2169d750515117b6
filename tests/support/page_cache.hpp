#pragma once
// What the kernel's page cache holds of a file, for tests of the log's cache hints.

#include <fcntl.h>
#include <linux/magic.h>
#include <sys/mman.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <boost/test/unit_test.hpp>

#include <cstddef>
#include <string>
#include <utility>
#include <vector>

namespace weir::testing {

/// Pages of `path` in the page cache and all its pages (mincore over a mapping);
/// {0, 0} when it cannot be read.
inline std::pair<std::size_t, std::size_t> resident_pages(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return {0, 0};
  const auto size = static_cast<std::size_t>(::lseek(fd, 0, SEEK_END));
  const auto page = static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
  std::vector<unsigned char> in_core((size + page - 1) / page);
  void* map = size == 0 ? MAP_FAILED : ::mmap(nullptr, size, PROT_READ, MAP_SHARED, fd, 0);
  ::close(fd);
  if (map == MAP_FAILED) return {0, 0};
  const bool known = ::mincore(map, size, in_core.data()) == 0;
  ::munmap(map, size);
  if (!known) return {0, 0};
  std::size_t resident = 0;
  for (auto c : in_core) resident += c & 1u;
  return {resident, in_core.size()};
}

/// True when `dir` is on tmpfs, whose pages are its storage and never leave memory.
inline bool on_tmpfs(const std::string& dir) {
  struct statfs where {};
  return ::statfs(dir.c_str(), &where) == 0 && where.f_type == TMPFS_MAGIC;
}

/// For tests of the page cache, which have nothing to measure on tmpfs: true
/// (and a test message saying so) when `dir` is there and the test should end.
inline bool skipped_on_tmpfs(const std::string& dir) {
  if (!on_tmpfs(dir)) return false;
  BOOST_TEST_MESSAGE("skipped: " << dir << " is on tmpfs, whose pages are its storage");
  return true;
}

}  // namespace weir::testing

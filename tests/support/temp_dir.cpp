#include "temp_dir.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <filesystem>
#include <stdexcept>
#include <system_error>
#include <vector>

namespace weir::testing {

namespace {

[[noreturn]] void throw_errno(int error_number, const std::string& what) {
  throw std::runtime_error(what + ": " + std::generic_category().message(error_number));
}

// Closes the fd on every path out of flip_bit, including throws.
class fd_guard {
 public:
  explicit fd_guard(int fd) : fd_(fd) {}
  ~fd_guard() { ::close(fd_); }
  fd_guard(const fd_guard&) = delete;
  fd_guard& operator=(const fd_guard&) = delete;
  int get() const { return fd_; }

 private:
  int fd_;
};

}  // namespace

temp_dir::temp_dir() {
  const char* base = std::getenv("TMPDIR");
  std::string tmpl = (base != nullptr && *base != '\0') ? base : "/tmp";
  tmpl += "/weir-test-XXXXXX";
  std::vector<char> buf(tmpl.begin(), tmpl.end());
  buf.push_back('\0');
  if (::mkdtemp(buf.data()) == nullptr) throw_errno(errno, "mkdtemp " + tmpl);
  path_ = buf.data();
}

temp_dir::~temp_dir() {
  // Best effort: a leftover scratch directory must not fail the test run.
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

void flip_bit(const std::string& path, std::uint64_t offset, int bit) {
  if (bit < 0 || bit > 7)
    throw std::runtime_error("flip_bit " + path + ": bit " + std::to_string(bit) +
                             " is not in 0..7");
  fd_guard fd(::open(path.c_str(), O_RDWR | O_CLOEXEC));
  if (fd.get() < 0) throw_errno(errno, "flip_bit: open " + path);
  unsigned char byte = 0;
  const auto off = static_cast<off_t>(offset);
  const ssize_t got = ::pread(fd.get(), &byte, 1, off);
  if (got < 0) throw_errno(errno, "flip_bit: read " + path);
  if (got == 0)
    throw std::runtime_error("flip_bit " + path + ": offset " + std::to_string(offset) +
                             " is past the end of the file");
  byte ^= static_cast<unsigned char>(1u << bit);
  if (::pwrite(fd.get(), &byte, 1, off) != 1) throw_errno(errno, "flip_bit: write " + path);
}

std::uint64_t file_size_of(const std::string& path) {
  return std::filesystem::file_size(path);
}

void copy_dir(const std::string& from, const std::string& to) {
  std::filesystem::create_directories(to);
  std::filesystem::copy(
      from, to,
      std::filesystem::copy_options::recursive | std::filesystem::copy_options::overwrite_existing);
}

}  // namespace weir::testing

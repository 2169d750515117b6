#pragma once
// Test helpers for files on the real disk: a self-removing scratch directory
// and small byte-level tools for corrupting and inspecting what a test wrote.

#include <cstdint>
#include <string>

namespace weir::testing {

/// A fresh directory "weir-test-XXXXXX" under $TMPDIR (or /tmp), removed with
/// everything in it on destruction. Throws std::runtime_error if it cannot be made.
class temp_dir {
 public:
  temp_dir();
  ~temp_dir();

  temp_dir(const temp_dir&) = delete;
  temp_dir& operator=(const temp_dir&) = delete;

  const std::string& path() const { return path_; }

  /// path() + "/" + name.
  std::string file(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

/// Flips bit `bit` (0..7) of the byte at `offset` in place; throws std::runtime_error on failure.
void flip_bit(const std::string& path, std::uint64_t offset, int bit);

/// Size of a file in bytes; throws on failure.
std::uint64_t file_size_of(const std::string& path);

/// Copies directory `from` recursively to `to` (created if missing); throws on failure.
void copy_dir(const std::string& from, const std::string& to);

}  // namespace weir::testing

#pragma once
// Small helpers shared by test files: reading a file whole, and polling for a
// condition with a deadline.

#include <boost/test/unit_test.hpp>

#include <chrono>
#include <span>
#include <string>
#include <thread>

#include "weir/runtime/file_system.hpp"

namespace weir::testing {

/// Polls `done` every 2 ms until it holds (true) or `timeout` passes (false).
template <class Predicate>
bool eventually(Predicate done, std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!done()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  return true;
}

/// Whole contents of `path` read through `fs`; fails the test if it cannot.
inline std::string read_all(file_system& fs, const std::string& path) {
  auto file = fs.open_for_read(path);
  BOOST_REQUIRE_MESSAGE(file, file.error().to_string());
  auto size = (*file)->size();
  BOOST_REQUIRE(size);
  std::string out(*size, '\0');
  auto got = (*file)->read_at(0, std::as_writable_bytes(std::span<char>(out.data(), out.size())));
  BOOST_REQUIRE(got);
  BOOST_REQUIRE_EQUAL(*got, out.size());
  return out;
}

}  // namespace weir::testing

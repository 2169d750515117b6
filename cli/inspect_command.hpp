#pragma once
// `weir inspect DIR`: what a checkpoint log holds and any damage, without changing it.

#include <ostream>
#include <string>

namespace weir::cli {

struct inspect_options {
  std::string dir;
  bool json = false;
};

/// Prints the report to `out` (errors to `err`); returns the exit status:
/// 0 clean, 1 corruption found, 2 the log could not be opened.
int run_inspect(const inspect_options& options, std::ostream& out, std::ostream& err);

}  // namespace weir::cli

#include "weir/runtime/status.hpp"

#include <cerrno>
#include <ostream>

namespace weir {

const char* to_string(errc code) noexcept {
  switch (code) {
    case errc::ok:
      return "ok";
    case errc::io_error:
      return "io_error";
    case errc::no_space:
      return "no_space";
    case errc::corruption:
      return "corruption";
    case errc::not_found:
      return "not_found";
    case errc::version_mismatch:
      return "version_mismatch";
    case errc::invalid_argument:
      return "invalid_argument";
    case errc::closed:
      return "closed";
    case errc::in_use:
      return "in_use";
    case errc::timed_out:
      return "timed_out";
  }
  // Only reachable through a cast from a value written by a newer version.
  return "unknown";
}

errc errc_from_errno(int error_number) noexcept {
  switch (error_number) {
    case ENOSPC:
    case EDQUOT:
      return errc::no_space;
    case ENOENT:
      return errc::not_found;
    case EINVAL:
      return errc::invalid_argument;
    default:
      // Includes 0: a caller that lost errno still gets a failing status.
      return errc::io_error;
  }
}

std::string status::to_string() const {
  if (is_ok()) return "ok";
  std::string out = weir::to_string(code_);
  out += ": ";
  out += message_;
  return out;
}

std::ostream& operator<<(std::ostream& out, errc code) {
  return out << to_string(code);
}

}  // namespace weir

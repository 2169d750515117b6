#include "weir/runtime/logging.hpp"

#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

namespace weir {

void log_to_stderr() {
  if (auto existing = spdlog::get("weir")) {
    spdlog::set_default_logger(existing);
    return;
  }
  spdlog::set_default_logger(spdlog::stderr_logger_mt("weir"));
}

}  // namespace weir

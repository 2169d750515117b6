#pragma once
// weir logs through spdlog's default logger. Programs call this once at start
// so that log lines go to stderr and stdout carries only their output.

namespace weir {

/// Replaces spdlog's default logger with one that writes to stderr.
void log_to_stderr();

}  // namespace weir

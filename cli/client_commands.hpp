#pragma once
// `weir produce`, `weir consume` and `weir dlq`: clients of a node's queue.
// Without --body or --lines they send numbered filler: a message's payload
// starts with its sequence number k as 8 bytes, unsigned, little-endian; the
// rest of the payload (up to --size) is filler. With them, they carry real
// bodies, keys and headers, and `weir consume --print` writes them out.

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace weir::cli {

struct produce_options {
  std::string connect;
  std::string queue;
  std::uint64_t count = 0;
  std::uint32_t size = 100;
  std::uint32_t window = 4096;
  std::uint32_t batch = 256;
  std::string ids_out;
  double timeout_s = 60;
  double rate = 0;  ///< messages per second at most; 0: as fast as confirms allow
  bool progress = false;  ///< a progress bar of confirms on stderr when stdout is a terminal
  bool count_given = false;         ///< --count was on the command line: numbered filler
  std::optional<std::string> body;  ///< --body: one message with this body
  bool lines = false;               ///< --lines: one message per line of stdin or --file
  std::string file;                 ///< --file: read the lines from here, not stdin
  std::string key;                  ///< --key: every message's key
  std::vector<std::string> headers; ///< --header NAME=VALUE, on every message
};

struct consume_options {
  std::string connect;
  std::string queue;
  std::uint64_t count = 0;  ///< 0: no limit
  double idle_exit_s = 0;   ///< 0: never
  std::string ids_out;
  std::uint32_t credit = 1024;
  std::uint64_t fail_every = 0;  ///< 0: never fail
  std::uint32_t delay_ms = 0;    ///< a pause per delivery before its batch is acked
  double warm_up_s = 0;  ///< deliveries this long after the first are left out of latency_ms
  bool print = false;         ///< --print: write each message's body on its own line
  std::string format = "text";  ///< --format: "text" (the body) or "json" (one object a line)
};

struct dlq_options {
  std::string action;  ///< "list" or "replay"
  std::string connect;
  std::string queue;
  std::uint32_t limit = 1000;
};

/// Exit 0 when all were confirmed, 1 at the timeout, 2 on bad arguments or an unknown queue.
int run_produce(const produce_options& options);

/// Exit 0 after --count unique messages (or idle without --count), 1 when idle before
/// --count, 2 on bad arguments or an unknown queue.
int run_consume(const consume_options& options);

/// Exit 0 on success, 2 when the node refused or did not answer.
int run_dlq(const dlq_options& options);

}  // namespace weir::cli

#pragma once
// A tiny HTTP/1.1 server for metrics scrapes (GET /metrics): one thread, poll(),
// a bounded number of connections, a bounded request size, one request per
// connection (the response says Connection: close). It knows nothing of what
// it serves: a handler maps a path to a body. No CAF here, so that anything can
// embed it.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "weir/runtime/status.hpp"

namespace weir {

struct http_server_options {
  std::size_t request_bytes_max = 8192;             ///< request line and headers; larger: 400
  std::size_t connections_max = 64;                 ///< more at once are closed at accept
  std::chrono::milliseconds request_timeout{5000};  ///< to receive a request and send its answer
  std::string content_type = "text/plain; version=0.0.4; charset=utf-8";
};

/// Counters since start; cheap to take from any thread.
struct http_server_stats {
  std::uint64_t connections = 0;   ///< accepted
  std::uint64_t requests = 0;      ///< complete requests read (any answer)
  std::uint64_t ok = 0;            ///< answered 200
  std::uint64_t not_found = 0;     ///< answered 404: the handler knew no such path
  std::uint64_t bad_requests = 0;  ///< answered 400 (malformed or oversized) or 405 (not GET/HEAD)
  std::uint64_t timeouts = 0;      ///< closed before a whole request arrived in time
  std::uint64_t refused = 0;       ///< closed at accept: connections_max were open
};

class http_server {
 public:
  /// Answers a GET of `path` (the query string removed) with a body, or nullopt for 404.
  /// Runs on the server's thread, one request at a time; it may block for a while.
  using handler = std::function<std::optional<std::string>(const std::string& path)>;

  /// Binds HOST:PORT ("127.0.0.1:9464"; port 0 picks a free one; an empty host
  /// or "0.0.0.0" is every interface) and starts serving. A port in use is an
  /// error (errc::in_use) naming the address.
  static result<std::unique_ptr<http_server>> start(std::string host_port, handler handle,
                                                    http_server_options options = {});

  virtual ~http_server() = default;  ///< stop()s

  /// The bound address with its actual port, HOST:PORT.
  virtual std::string address() const = 0;

  virtual http_server_stats stats() const = 0;

  /// Closes the listening socket and every connection, and joins the thread. Idempotent.
  virtual void stop() = 0;
};

}  // namespace weir

#pragma once
// Internal to transport: what an endpoint and a connection share. One thread
// owns the ZeroMQ socket (sockets are not thread-safe); other threads hand it
// frames through a bounded queue and wake it through an eventfd that it polls
// beside the socket. The thread survives anything a peer sends: every hook runs
// inside a catch-all, and bad input becomes an error reply, a counter and a
// rate-limited warning.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>

#include <zmq.hpp>

#include "weir/runtime/status.hpp"
#include "weir/transport/frame.hpp"
#include "weir/transport/link.hpp"

namespace weir::transport::detail {

using clock = std::chrono::steady_clock;

/// Messages read from the socket per wakeup, so that timers and the send queue
/// get their turn under a flood.
constexpr int receive_burst_max = 256;

/// A frame waiting for the socket thread, and the session it was meant for.
struct outbound_frame {
  peer_id peer = 0;
  zmq::message_t bytes;
};

/// Link counters: written by the socket thread (and send() for drops), read anywhere.
struct link_counters {
  std::atomic<std::uint64_t> frames_in{0};
  std::atomic<std::uint64_t> frames_out{0};
  std::atomic<std::uint64_t> bytes_in{0};
  std::atomic<std::uint64_t> bytes_out{0};
  std::atomic<std::uint64_t> malformed_frames{0};
  std::atomic<std::uint64_t> version_mismatches{0};
  std::atomic<std::uint64_t> oversized_frames{0};
  std::atomic<std::uint64_t> handshake_violations{0};
  std::atomic<std::uint64_t> sessions_refused{0};
  std::atomic<std::uint64_t> peers_up{0};
  std::atomic<std::uint64_t> peers_lost{0};
  std::atomic<std::uint64_t> frames_dropped{0};

  link_stats snapshot() const;
  /// Counts a refused frame under the counter its error code belongs to.
  void count_refused(schema::ErrorCode code);
};

/// A fresh session id; process-wide and never reused.
peer_id allocate_peer_id();

/// Printable form of a ZeroMQ routing id (binary) for log lines.
std::string describe_routing_id(std::string_view routing_id);

zmq::message_t encode_hello(const link_options& options);
zmq::message_t encode_heartbeat();

/// How long a peer may stay silent: our heartbeat timeout, or three of the
/// intervals the peer announced in its hello when that is longer (a peer set to
/// beat slower than we time out is not dropped between its heartbeats), but
/// never more than a minute on a peer's word.
clock::duration silence_allowed(const link_options& options, std::uint32_t announced_interval_ms);

/// What a checked frame means to the link layer.
struct frame_contents {
  std::optional<schema::Hello::Reader> hello;  ///< the first hello, if any
  bool handshake_required = false;             ///< an Error handshakeRequired
  bool has_owner_messages = false;             ///< anything else: the owner's business
  std::optional<std::string> sessions_full;    ///< an Error tooManySessions: its text
};
frame_contents classify(schema::Frame::Reader frame);

/// Socket options both link kinds use: no linger, high-water marks, receive size cap.
void set_common_options(zmq::socket_t& socket, const link_options& options);

/// Rejects intervals a link cannot work with (zero, or a timeout within one interval).
status check_options(const link_options& options);

/// An eventfd that other threads signal to wake the socket thread.
class wakeup_fd {
 public:
  static result<wakeup_fd> create();
  wakeup_fd(wakeup_fd&& other) noexcept;
  wakeup_fd& operator=(wakeup_fd&&) = delete;
  ~wakeup_fd();

  int fd() const { return fd_; }
  void notify();
  void drain();

 private:
  explicit wakeup_fd(int fd) : fd_(fd) {}
  int fd_ = -1;
};

/// The socket thread and everything around it; endpoint and connection fill in
/// the hooks. The most-derived destructor must call stop() before its members go.
class link_loop {
 public:
  link_loop(const link_loop&) = delete;
  link_loop& operator=(const link_loop&) = delete;

 protected:
  link_loop(std::string log_name, zmq::context_t context, zmq::socket_t socket, wakeup_fd wakeup,
            link_options options, link_handler handler);
  virtual ~link_loop();

  void start();
  /// Idempotent; after it returns no hook runs and the socket is closed.
  void stop();

  /// Any thread. False (and counted as dropped) when the send queue is full.
  bool enqueue(outbound_frame frame);

  // Socket-thread hooks.
  virtual void on_start(clock::time_point now) = 0;
  virtual void on_readable(clock::time_point now) = 0;  ///< receive up to receive_burst_max
  virtual void on_outbound(outbound_frame& frame, clock::time_point now) = 0;
  virtual void on_tick(clock::time_point now) = 0;
  virtual bool wants_writable() const { return false; }
  virtual void on_writable(clock::time_point) {}
  /// A TCP connection of the socket closed (ZeroMQ's monitor said so): a peer
  /// process that died is noticed now rather than at its heartbeat timeout.
  virtual void on_disconnected(clock::time_point) {}
  /// Called on every pass of the loop; wake_at() asks for a pass by then.
  virtual void on_poll(clock::time_point) {}
  virtual std::optional<clock::time_point> wake_at() const { return std::nullopt; }

  /// Calls the owner's handler; an exception from it is logged, not propagated.
  void emit(link_event event);
  /// A warning about bad input, at most a few lines per second per link.
  void warn(const std::string& what, clock::time_point now);
  /// Reads the remaining parts of a multipart message; returns their bytes.
  std::size_t drain_parts(zmq::message_t& last);

  zmq::context_t context_;
  zmq::socket_t socket_;
  const link_options options_;
  link_counters counters_;
  const std::string log_name_;

 private:
  void run();
  template <class F>
  void guarded(const char* what, F&& hook);

  wakeup_fd wakeup_;
  zmq::socket_t monitor_;  // PAIR end of the socket's event monitor; socket thread only
  link_handler handler_;
  std::mutex queue_mutex_;
  std::deque<outbound_frame> queue_;  // guarded by queue_mutex_
  std::atomic<bool> stopping_{false};
  std::thread thread_;

  // Warning rate limit, socket thread only.
  clock::time_point warning_window_start_{};
  int warnings_in_window_ = 0;
  std::uint64_t warnings_suppressed_ = 0;
};

}  // namespace weir::transport::detail

#include "link_loop.hpp"

#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cassert>
#include <cerrno>
#include <cstring>
#include <exception>

#include <capnp/message.h>
#include <spdlog/spdlog.h>

namespace weir::transport::detail {

namespace {

constexpr int warnings_per_second_max = 20;
constexpr int high_water_mark_frames = 100000;

std::atomic<peer_id> next_peer_id{1};

}  // namespace

link_stats link_counters::snapshot() const {
  link_stats out;
  out.frames_in = frames_in.load(std::memory_order_relaxed);
  out.frames_out = frames_out.load(std::memory_order_relaxed);
  out.bytes_in = bytes_in.load(std::memory_order_relaxed);
  out.bytes_out = bytes_out.load(std::memory_order_relaxed);
  out.malformed_frames = malformed_frames.load(std::memory_order_relaxed);
  out.version_mismatches = version_mismatches.load(std::memory_order_relaxed);
  out.oversized_frames = oversized_frames.load(std::memory_order_relaxed);
  out.handshake_violations = handshake_violations.load(std::memory_order_relaxed);
  out.sessions_refused = sessions_refused.load(std::memory_order_relaxed);
  out.peers_up = peers_up.load(std::memory_order_relaxed);
  out.peers_lost = peers_lost.load(std::memory_order_relaxed);
  out.frames_dropped = frames_dropped.load(std::memory_order_relaxed);
  return out;
}

void link_counters::count_refused(schema::ErrorCode code) {
  switch (code) {
    case schema::ErrorCode::UNSUPPORTED_VERSION:
      ++version_mismatches;
      return;
    case schema::ErrorCode::FRAME_TOO_LARGE:
      ++oversized_frames;
      return;
    case schema::ErrorCode::HANDSHAKE_REQUIRED:
      ++handshake_violations;
      return;
    default:
      ++malformed_frames;
      return;
  }
}

peer_id allocate_peer_id() {
  return next_peer_id.fetch_add(1, std::memory_order_relaxed);
}

std::string describe_routing_id(std::string_view routing_id) {
  // ZeroMQ assigns 5-byte ids, but an old-protocol (ZMTP 2) peer chooses its
  // own, up to 255 bytes: enough of it to tell peers apart.
  constexpr std::size_t shown_bytes_max = 8;
  static constexpr char digits[] = "0123456789abcdef";
  std::string out;
  for (unsigned char byte : routing_id.substr(0, shown_bytes_max)) {
    out += digits[byte >> 4];
    out += digits[byte & 0xf];
  }
  if (routing_id.size() > shown_bytes_max) {
    out += "... (" + std::to_string(routing_id.size()) + " bytes)";
  }
  return out;
}

zmq::message_t encode_hello(const link_options& options) {
  capnp::MallocMessageBuilder builder(64);
  auto frame = builder.initRoot<schema::Frame>();
  frame.setProtocolVersion(schema::WIRE_PROTOCOL_VERSION);
  auto hello = frame.initMessages(1)[0].initHello();
  hello.setNodeId(capnp::Text::Reader(options.node_id.c_str(), options.node_id.size()));
  hello.setProtocolVersion(schema::WIRE_PROTOCOL_VERSION);
  hello.setHeartbeatIntervalMs(static_cast<std::uint32_t>(options.heartbeat_interval.count()));
  return encode_frame(builder);
}

clock::duration silence_allowed(const link_options& options, std::uint32_t announced_interval_ms) {
  const auto announced = std::min<clock::duration>(
      3 * std::chrono::milliseconds(announced_interval_ms), std::chrono::minutes(1));
  return std::max<clock::duration>(options.heartbeat_timeout, announced);
}

zmq::message_t encode_heartbeat() {
  capnp::MallocMessageBuilder builder(16);
  auto frame = builder.initRoot<schema::Frame>();
  frame.setProtocolVersion(schema::WIRE_PROTOCOL_VERSION);
  auto heartbeat = frame.initMessages(1)[0].initHeartbeat();
  heartbeat.setSentAtNs(
      std::chrono::duration_cast<std::chrono::nanoseconds>(clock::now().time_since_epoch())
          .count());
  return encode_frame(builder);
}

frame_contents classify(schema::Frame::Reader frame) {
  using W = schema::ProtocolMessage::Which;
  frame_contents out;
  for (auto message : frame.getMessages()) {
    switch (message.which()) {
      case W::HELLO:
        if (!out.hello) out.hello = message.getHello();
        break;
      case W::HEARTBEAT:
        break;
      case W::ERROR:
        if (message.getError().getCode() == schema::ErrorCode::HANDSHAKE_REQUIRED) {
          out.handshake_required = true;
        } else if (message.getError().getCode() == schema::ErrorCode::TOO_MANY_SESSIONS) {
          out.sessions_full = message.getError().getMessage().cStr();
        } else {
          out.has_owner_messages = true;
        }
        break;
      default:
        out.has_owner_messages = true;
        break;
    }
  }
  return out;
}

status check_options(const link_options& options) {
  if (options.heartbeat_interval.count() <= 0) {
    return {errc::invalid_argument, "heartbeat_interval must be positive"};
  }
  if (options.heartbeat_timeout <= options.heartbeat_interval) {
    return {errc::invalid_argument,
            "heartbeat_timeout (" + std::to_string(options.heartbeat_timeout.count()) +
                " ms) must be longer than heartbeat_interval (" +
                std::to_string(options.heartbeat_interval.count()) + " ms)"};
  }
  if (options.send_queue_frames_max == 0) {
    return {errc::invalid_argument, "send_queue_frames_max must be at least 1"};
  }
  if (options.sessions_max == 0) {
    return {errc::invalid_argument, "sessions_max must be at least 1"};
  }
  return status::ok();
}

void set_common_options(zmq::socket_t& socket, const link_options& options) {
  // Destruction must be quick, and nothing in flight is worth waiting for: the
  // queue protocol resends end to end.
  socket.set(zmq::sockopt::linger, 0);
  socket.set(zmq::sockopt::sndhwm, high_water_mark_frames);
  socket.set(zmq::sockopt::rcvhwm, high_water_mark_frames);
  // A frame up to twice the limit still reaches decode_frame and gets a clear
  // frameTooLarge reply; beyond that ZeroMQ disconnects the peer before
  // buffering a message of whatever size it claims.
  const auto limit = std::min<std::size_t>(options.limits.max_frame_bytes, std::size_t(1) << 61);
  socket.set(zmq::sockopt::maxmsgsize, static_cast<std::int64_t>(limit * 2));
  // ZMTP-level pings make ZeroMQ itself close a TCP connection whose far end
  // vanished without a FIN; otherwise a DEALER would keep writing hellos into
  // it instead of reconnecting, and a ROUTER would hold it open.
  socket.set(zmq::sockopt::heartbeat_ivl, static_cast<int>(options.heartbeat_interval.count()));
  socket.set(zmq::sockopt::heartbeat_timeout, static_cast<int>(options.heartbeat_timeout.count()));
}

result<wakeup_fd> wakeup_fd::create() {
  const int fd = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (fd < 0) {
    return status{errc_from_errno(errno), std::string("eventfd: ") + std::strerror(errno)};
  }
  return wakeup_fd(fd);
}

wakeup_fd::wakeup_fd(wakeup_fd&& other) noexcept : fd_(other.fd_) {
  other.fd_ = -1;
}

wakeup_fd::~wakeup_fd() {
  if (fd_ >= 0) ::close(fd_);
}

void wakeup_fd::notify() {
  const std::uint64_t one = 1;
  // EAGAIN means the counter is saturated: the thread is woken regardless.
  [[maybe_unused]] auto written = ::write(fd_, &one, sizeof one);
}

void wakeup_fd::drain() {
  std::uint64_t count = 0;
  [[maybe_unused]] auto got = ::read(fd_, &count, sizeof count);
}

link_loop::link_loop(std::string log_name, zmq::context_t context, zmq::socket_t socket,
                     wakeup_fd wakeup, link_options options, link_handler handler)
    : context_(std::move(context)),
      socket_(std::move(socket)),
      options_(std::move(options)),
      log_name_(std::move(log_name)),
      wakeup_(std::move(wakeup)),
      handler_(std::move(handler)) {
  // Still on the creating thread, before the socket thread exists.
  static std::atomic<std::uint64_t> monitors{0};
  const auto monitor_address = "inproc://weir-link-monitor-" + std::to_string(++monitors);
  if (zmq_socket_monitor(socket_.handle(), monitor_address.c_str(), ZMQ_EVENT_DISCONNECTED) != 0) {
    throw zmq::error_t();
  }
  monitor_ = zmq::socket_t(context_, zmq::socket_type::pair);
  monitor_.set(zmq::sockopt::linger, 0);
  monitor_.connect(monitor_address);
}

link_loop::~link_loop() {
  // The derived destructor stops the thread while its hooks still exist.
  assert(!thread_.joinable());
}

void link_loop::start() {
  // Handing the socket to another thread is allowed with a full memory
  // barrier, which starting the thread provides.
  thread_ = std::thread([this] { run(); });
}

void link_loop::stop() {
  if (!thread_.joinable()) return;
  stopping_.store(true, std::memory_order_release);
  wakeup_.notify();
  thread_.join();
}

bool link_loop::enqueue(outbound_frame frame) {
  bool was_empty = false;
  {
    std::lock_guard lock(queue_mutex_);
    if (queue_.size() >= options_.send_queue_frames_max) {
      counters_.frames_dropped.fetch_add(1, std::memory_order_relaxed);
      return false;
    }
    was_empty = queue_.empty();
    queue_.push_back(std::move(frame));
  }
  // The thread takes the whole queue at once, so only the frame that makes it
  // non-empty needs to wake it.
  if (was_empty) wakeup_.notify();
  return true;
}

void link_loop::emit(link_event event) {
  try {
    handler_(std::move(event));
  } catch (const std::exception& e) {
    spdlog::error("{}: link handler threw: {}", log_name_, e.what());
  } catch (...) {
    spdlog::error("{}: link handler threw a non-standard exception", log_name_);
  }
}

void link_loop::warn(const std::string& what, clock::time_point now) {
  if (now - warning_window_start_ >= std::chrono::seconds(1)) {
    if (warnings_suppressed_ > 0) {
      spdlog::warn("{}: {} more warnings about bad input were not logged", log_name_,
                   warnings_suppressed_);
    }
    warning_window_start_ = now;
    warnings_in_window_ = 0;
    warnings_suppressed_ = 0;
  }
  if (warnings_in_window_ >= warnings_per_second_max) {
    ++warnings_suppressed_;
    return;
  }
  ++warnings_in_window_;
  spdlog::warn("{}: {}", log_name_, what);
}

std::size_t link_loop::drain_parts(zmq::message_t& last) {
  std::size_t bytes = 0;
  // The parts of a multipart message arrive together, so these do not wait.
  while (last.more()) {
    if (!socket_.recv(last, zmq::recv_flags::dontwait)) break;
    bytes += last.size();
  }
  return bytes;
}

template <class F>
void link_loop::guarded(const char* what, F&& hook) {
  try {
    hook();
  } catch (const std::exception& e) {
    spdlog::error("{}: {} failed: {}", log_name_, what, e.what());
  } catch (...) {
    spdlog::error("{}: {} failed with a non-standard exception", log_name_, what);
  }
}

void link_loop::run() {
  // Half the interval, so a heartbeat is at most 1.5 intervals late and a
  // silent peer is noticed at most half an interval after its timeout.
  const auto tick =
      std::max<clock::duration>(std::chrono::milliseconds(1), options_.heartbeat_interval / 2);
  auto now = clock::now();
  guarded("start", [&] { on_start(now); });
  auto next_tick = now + tick;
  std::deque<outbound_frame> batch;

  while (!stopping_.load(std::memory_order_acquire)) {
    std::array<zmq_pollitem_t, 3> items{};
    items[0].socket = socket_.handle();
    items[0].events = static_cast<short>(ZMQ_POLLIN | (wants_writable() ? ZMQ_POLLOUT : 0));
    items[1].fd = wakeup_.fd();
    items[1].events = ZMQ_POLLIN;
    items[2].socket = monitor_.handle();
    items[2].events = ZMQ_POLLIN;
    auto wake = next_tick;
    if (auto asked = wake_at()) wake = std::min(wake, *asked);
    const auto wait = std::chrono::ceil<std::chrono::milliseconds>(
        std::max<clock::duration>(clock::duration::zero(), wake - now));
    try {
      zmq::poll(items, wait);
    } catch (const zmq::error_t& e) {
      if (e.num() == ETERM) break;
      if (e.num() != EINTR) spdlog::error("{}: poll failed: {}", log_name_, e.what());
    }
    if (stopping_.load(std::memory_order_acquire)) break;
    now = clock::now();

    if (items[1].revents & ZMQ_POLLIN) wakeup_.drain();
    if (items[0].revents & ZMQ_POLLIN) guarded("receive", [&] { on_readable(now); });
    if (items[0].revents & ZMQ_POLLOUT) guarded("send", [&] { on_writable(now); });
    if (items[2].revents & ZMQ_POLLIN) {
      // Each event is two parts (event id and value, then the endpoint).
      zmq::message_t part;
      while (monitor_.recv(part, zmq::recv_flags::dontwait)) {
        while (part.more() && monitor_.recv(part, zmq::recv_flags::dontwait)) {
        }
      }
      guarded("disconnect", [&] { on_disconnected(now); });
    }
    guarded("poll", [&] { on_poll(now); });

    {
      std::lock_guard lock(queue_mutex_);
      batch.swap(queue_);
    }
    for (auto& frame : batch) guarded("send", [&] { on_outbound(frame, now); });
    batch.clear();

    now = clock::now();
    if (now >= next_tick) {
      guarded("heartbeat", [&] { on_tick(now); });
      next_tick = now + tick;
    }
  }
  monitor_.close();
  socket_.close();
}

}  // namespace weir::transport::detail

// The connection: a DEALER socket to one node. ZeroMQ reconnects the TCP
// connection by itself; sessions are the connection's own: hello as soon as the
// socket is connected (and again if unanswered for a heartbeat timeout),
// heartbeats while up, and back to hello when the node goes silent or says it
// has forgotten us.

#include "link_loop.hpp"

namespace weir::transport {

namespace {

using detail::clock;

class dealer_connection final : public connection, private detail::link_loop {
 public:
  dealer_connection(const std::string& address, zmq::context_t context, zmq::socket_t socket,
                    detail::wakeup_fd wakeup, link_options options, link_handler handler)
      : link_loop("weir connection to " + address, std::move(context), std::move(socket),
                  std::move(wakeup), std::move(options), std::move(handler)) {
    start();
  }

  ~dealer_connection() override { stop(); }

  void send(zmq::message_t frame) override {
    // Stamped with the session it was sent in, so that a frame meant for one
    // session is never delivered in the next one.
    const peer_id session = session_.load(std::memory_order_acquire);
    if (session == 0) {
      counters_.frames_dropped.fetch_add(1, std::memory_order_relaxed);
      return;
    }
    enqueue({session, std::move(frame)});
  }

  link_stats stats() const override { return counters_.snapshot(); }

 private:
  bool up() const { return session_.load(std::memory_order_relaxed) != 0; }

  void on_start(clock::time_point now) override { say_hello(now); }

  void on_readable(clock::time_point now) override {
    for (int i = 0; i < detail::receive_burst_max; ++i) {
      zmq::message_t body;
      if (!socket_.recv(body, zmq::recv_flags::dontwait)) return;
      counters_.frames_in.fetch_add(1, std::memory_order_relaxed);
      counters_.bytes_in.fetch_add(body.size(), std::memory_order_relaxed);
      if (body.more()) {
        counters_.bytes_in.fetch_add(drain_parts(body), std::memory_order_relaxed);
        refuse({schema::ErrorCode::MALFORMED_FRAME,
                "multipart message; a frame is a single ZeroMQ message part"},
               now);
        continue;
      }
      receive_frame(std::move(body), now);
    }
  }

  void receive_frame(zmq::message_t body, clock::time_point now) {
    auto decoded = decode_frame(std::move(body), options_.limits);
    if (auto* error = std::get_if<frame_error>(&decoded)) {
      refuse(*error, now);
      return;
    }
    auto frame = std::get<inbound_frame_ptr>(std::move(decoded));
    const auto contents = detail::classify(frame->root());
    if (up()) last_heard_ = now;

    if (contents.sessions_full && !up()) {
      // Our hello goes out again after heartbeat_timeout (see on_tick).
      warn("node refused the session: " + *contents.sessions_full, now);
      return;
    }
    if (contents.handshake_required) {
      // While down this is the answer to a heartbeat sent before we noticed;
      // the hello we send anyway is the cure.
      if (up()) {
        end_session("node forgot the session");
        say_hello(now);
      }
      return;
    }
    if (contents.hello && !up()) {
      const auto version = contents.hello->getProtocolVersion();
      if (version != schema::WIRE_PROTOCOL_VERSION) {
        counters_.version_mismatches.fetch_add(1, std::memory_order_relaxed);
        warn("node answered hello for protocol version " + std::to_string(version) +
                 ", this node speaks " + std::to_string(schema::WIRE_PROTOCOL_VERSION),
             now);
        return;
      }
      const peer_id id = detail::allocate_peer_id();
      last_heard_ = now;
      silence_allowed_ =
          detail::silence_allowed(options_, contents.hello->getHeartbeatIntervalMs());
      session_.store(id, std::memory_order_release);
      counters_.peers_up.fetch_add(1, std::memory_order_relaxed);
      emit({link_event::kind::peer_up, id, contents.hello->getNodeId().cStr(), nullptr});
    }
    // A hello while up answers an extra hello sent while the first was in
    // flight: the node has already started the session it belongs to.
    if (!contents.has_owner_messages) return;
    if (!up()) {
      // Belongs to a session that ended here; the queue protocol resends.
      counters_.frames_dropped.fetch_add(1, std::memory_order_relaxed);
      return;
    }
    emit({link_event::kind::frame, session_.load(std::memory_order_relaxed), {}, std::move(frame)});
  }

  // Unlike the endpoint, no error reply: a node of another protocol version
  // would refuse the reply with one of its own, and the two would trade error
  // frames for ever.
  void refuse(const frame_error& error, clock::time_point now) {
    counters_.count_refused(error.code);
    warn("refused a frame from the node: " + error_code_name(error.code) + ": " +
             error.message,
         now);
    if (up()) {
      end_session("node sent a bad frame (" + error_code_name(error.code) + ": " +
                  error.message + ")");
      say_hello(now);
    }
  }

  void end_session(std::string reason) {
    const peer_id id = session_.exchange(0, std::memory_order_acq_rel);
    counters_.peers_lost.fetch_add(1, std::memory_order_relaxed);
    emit({link_event::kind::peer_down, id, std::move(reason), nullptr});
  }

  void say_hello(clock::time_point now) {
    last_hello_ = now;
    // With ZMQ_IMMEDIATE a DEALER refuses to queue until it is connected; the
    // hello then waits for the socket to become writable instead of a timer.
    hello_waiting_ = !try_send(detail::encode_hello(options_), now);
  }

  bool wants_writable() const override { return hello_waiting_ && !up(); }

  // The node's process died or closed the connection: the session is over now,
  // not at the heartbeat timeout; hello goes out once ZeroMQ has reconnected.
  void on_disconnected(clock::time_point now) override {
    if (!up()) return;
    end_session("the connection to the node closed");
    say_hello(now);
  }

  void on_writable(clock::time_point now) override {
    if (hello_waiting_ && !up()) say_hello(now);
  }

  void on_outbound(detail::outbound_frame& frame, clock::time_point now) override {
    if (frame.peer != session_.load(std::memory_order_relaxed)) {
      counters_.frames_dropped.fetch_add(1, std::memory_order_relaxed);
      return;
    }
    send_now(std::move(frame.bytes), now);
  }

  void on_tick(clock::time_point now) override {
    if (up()) {
      const auto silence = now - last_heard_;
      if (silence > silence_allowed_) {
        const auto silence_ms =
            std::chrono::duration_cast<std::chrono::milliseconds>(silence).count();
        end_session("no heartbeat for " + std::to_string(silence_ms) + " ms");
        say_hello(now);
      } else if (now - last_sent_ >= options_.heartbeat_interval) {
        send_now(detail::encode_heartbeat(), now);
      }
    } else if (!hello_waiting_ && now - last_hello_ >= options_.heartbeat_timeout) {
      // Sooner would start a second session at the node whenever a reply takes
      // longer than the wait; a reconnect sends a fresh hello through
      // on_writable, so only a hello lost in a dying connection waits this long.
      say_hello(now);
    }
  }

  // False on EAGAIN: not connected (ZMQ_IMMEDIATE) or at the high-water mark.
  bool try_send(zmq::message_t frame, clock::time_point now) {
    const auto size = frame.size();
    if (!socket_.send(frame, zmq::send_flags::dontwait)) return false;
    last_sent_ = now;
    counters_.frames_out.fetch_add(1, std::memory_order_relaxed);
    counters_.bytes_out.fetch_add(size, std::memory_order_relaxed);
    return true;
  }

  // Dropping is safe because the queue protocol resends whatever is unconfirmed.
  void send_now(zmq::message_t frame, clock::time_point now) {
    if (!try_send(std::move(frame), now)) {
      counters_.frames_dropped.fetch_add(1, std::memory_order_relaxed);
    }
  }

  // The current session's id, 0 while down. Written on the socket thread, read
  // by send() on any thread.
  std::atomic<peer_id> session_{0};
  // Socket thread only.
  clock::time_point last_heard_{};
  clock::duration silence_allowed_{};  // set by the node's hello
  clock::time_point last_sent_{};
  clock::time_point last_hello_{};
  bool hello_waiting_ = false;
};

}  // namespace

result<std::unique_ptr<connection>> connection::connect(const std::string& address,
                                                        link_options options,
                                                        link_handler handler) {
  if (auto checked = detail::check_options(options); !checked) return checked;
  if (!handler) return status{errc::invalid_argument, "a link needs a handler for its events"};
  auto wakeup = detail::wakeup_fd::create();
  if (!wakeup) return wakeup.error();
  try {
    zmq::context_t context(1);
    zmq::socket_t socket(context, zmq::socket_type::dealer);
    detail::set_common_options(socket, options);
    // Frames sent while disconnected are dropped at once rather than queued
    // for a connection that may never come back.
    socket.set(zmq::sockopt::immediate, true);
    socket.set(zmq::sockopt::reconnect_ivl, 100);
    socket.set(zmq::sockopt::reconnect_ivl_max, 2000);
    try {
      socket.connect(address);
    } catch (const zmq::error_t& e) {
      return status{errc::invalid_argument, "connect to " + address + ": " + e.what()};
    }
    return std::unique_ptr<connection>(
        new dealer_connection(address, std::move(context), std::move(socket), std::move(*wakeup),
                              std::move(options), std::move(handler)));
  } catch (const std::exception& e) {
    // zmq::error_t from socket set-up, std::system_error from starting the thread.
    return status{errc::io_error, "connect to " + address + ": " + e.what()};
  }
}

}  // namespace weir::transport

// The endpoint: a ROUTER socket that accepts many peers. ZeroMQ prefixes every
// received message with the routing id of the TCP connection it came from; a
// session exists per routing id once that connection has said hello.

#include <cerrno>
#include <unordered_map>

#include "link_loop.hpp"

namespace weir::transport {

namespace {

using detail::clock;

class router_endpoint final : public endpoint, private detail::link_loop {
 public:
  router_endpoint(std::string address, zmq::context_t context, zmq::socket_t socket,
                  detail::wakeup_fd wakeup, link_options options, link_handler handler)
      : link_loop("weir endpoint " + address, std::move(context), std::move(socket),
                  std::move(wakeup), std::move(options), std::move(handler)),
        address_(std::move(address)) {
    start();
  }

  ~router_endpoint() override { stop(); }

  std::string address() const override { return address_; }

  void send(peer_id peer, zmq::message_t frame) override { enqueue({peer, std::move(frame)}); }

  link_stats stats() const override { return counters_.snapshot(); }

 private:
  struct session {
    peer_id id = 0;
    clock::time_point last_heard;
    clock::time_point last_sent;
    clock::duration silence_allowed;
  };
  using session_map = std::unordered_map<std::string, session>;

  void on_start(clock::time_point) override {}

  void on_readable(clock::time_point now) override {
    for (int i = 0; i < detail::receive_burst_max; ++i) {
      zmq::message_t routing_id;
      if (!socket_.recv(routing_id, zmq::recv_flags::dontwait)) return;
      std::string from(static_cast<const char*>(routing_id.data()), routing_id.size());
      if (!routing_id.more()) {
        // A ROUTER always delivers the routing id plus at least one part.
        counters_.frames_in.fetch_add(1, std::memory_order_relaxed);
        refuse(from, {schema::ErrorCode::MALFORMED_FRAME, "message without a frame part"}, now);
        continue;
      }
      zmq::message_t body;
      if (!socket_.recv(body, zmq::recv_flags::dontwait)) return;
      counters_.frames_in.fetch_add(1, std::memory_order_relaxed);
      counters_.bytes_in.fetch_add(body.size(), std::memory_order_relaxed);
      if (body.more()) {
        counters_.bytes_in.fetch_add(drain_parts(body), std::memory_order_relaxed);
        refuse(from,
               {schema::ErrorCode::MALFORMED_FRAME,
                "multipart message; a frame is a single ZeroMQ message part"},
               now);
        continue;
      }
      receive_frame(from, std::move(body), now);
    }
  }

  void receive_frame(const std::string& from, zmq::message_t body, clock::time_point now) {
    auto decoded = decode_frame(std::move(body), options_.limits);
    if (auto* error = std::get_if<frame_error>(&decoded)) {
      refuse(from, *error, now);
      return;
    }
    auto frame = std::get<inbound_frame_ptr>(std::move(decoded));
    const auto contents = detail::classify(frame->root());
    auto found = sessions_.find(from);

    if (contents.hello) {
      const auto version = contents.hello->getProtocolVersion();
      if (version != schema::WIRE_PROTOCOL_VERSION) {
        refuse(from,
               {schema::ErrorCode::UNSUPPORTED_VERSION,
                "hello for protocol version " + std::to_string(version) + ", this node speaks " +
                    std::to_string(schema::WIRE_PROTOCOL_VERSION)},
               now);
        return;
      }
      if (found == sessions_.end() && sessions_.size() >= options_.sessions_max) {
        // The connection stays open: its hello is sent again later, and gets a
        // session once another one has ended.
        counters_.sessions_refused.fetch_add(1, std::memory_order_relaxed);
        warn("hello from connection " + detail::describe_routing_id(from) + " refused: " +
                 std::to_string(sessions_.size()) + " sessions, the most this node takes",
             now);
        send_to(from,
                encode_error(schema::ErrorCode::TOO_MANY_SESSIONS,
                             "node holds " + std::to_string(sessions_.size()) +
                                 " sessions, the most it takes (sessions_max); try again later"),
                now);
        return;
      }
      // The peer started a new session on this connection; whatever the owner
      // had in flight with the old one must not leak into the new one.
      if (found != sessions_.end()) end_session(found, "re-handshake");
      const peer_id id = detail::allocate_peer_id();
      found = sessions_
                  .emplace(from, session{id, now, now,
                                         detail::silence_allowed(
                                             options_, contents.hello->getHeartbeatIntervalMs())})
                  .first;
      peers_.emplace(id, from);
      // Counted before the reply: a peer that sees its session up finds it counted.
      counters_.peers_up.fetch_add(1, std::memory_order_relaxed);
      send_to(from, detail::encode_hello(options_), now);
      emit({link_event::kind::peer_up, id, contents.hello->getNodeId().cStr(), nullptr});
    } else if (found == sessions_.end()) {
      counters_.handshake_violations.fetch_add(1, std::memory_order_relaxed);
      warn("frame from connection " + detail::describe_routing_id(from) +
               " before its hello; answered handshakeRequired",
           now);
      send_to(from,
              encode_error(schema::ErrorCode::HANDSHAKE_REQUIRED,
                           "no session for this connection: send hello first"),
              now);
      return;
    }

    found->second.last_heard = now;
    if (contents.has_owner_messages) {
      emit({link_event::kind::frame, found->second.id, {}, std::move(frame)});
    }
  }

  // Tells the peer why, counts and logs; a session that sent garbage is ended,
  // because nothing it sends afterwards can be trusted to follow on.
  void refuse(const std::string& from, const frame_error& error, clock::time_point now) {
    counters_.count_refused(error.code);
    warn("refused a frame from connection " + detail::describe_routing_id(from) + ": " +
             error_code_name(error.code) + ": " + error.message,
         now);
    send_to(from, encode_error(error.code, error.message), now);
    auto found = sessions_.find(from);
    if (found != sessions_.end()) {
      end_session(found, "sent a bad frame (" + error_code_name(error.code) + ": " +
                             error.message + ")");
    }
  }

  session_map::iterator end_session(session_map::iterator found, std::string reason) {
    const peer_id id = found->second.id;
    peers_.erase(id);
    auto next = sessions_.erase(found);
    counters_.peers_lost.fetch_add(1, std::memory_order_relaxed);
    emit({link_event::kind::peer_down, id, std::move(reason), nullptr});
    return next;
  }

  void on_outbound(detail::outbound_frame& frame, clock::time_point now) override {
    auto peer = peers_.find(frame.peer);
    if (peer == peers_.end()) {
      counters_.frames_dropped.fetch_add(1, std::memory_order_relaxed);
      return;
    }
    auto found = sessions_.find(peer->second);
    switch (send_to(peer->second, std::move(frame.bytes), now)) {
      case send_outcome::sent:
        found->second.last_sent = now;
        break;
      case send_outcome::dropped:
        break;
      case send_outcome::gone:
        end_session(found, "its connection closed");
        break;
    }
  }

  void on_tick(clock::time_point now) override {
    for (auto it = sessions_.begin(); it != sessions_.end();) {
      const auto silence = now - it->second.last_heard;
      if (silence > it->second.silence_allowed) {
        const auto silence_ms =
            std::chrono::duration_cast<std::chrono::milliseconds>(silence).count();
        it = end_session(it, "no heartbeat for " + std::to_string(silence_ms) + " ms");
        continue;
      }
      if (now - it->second.last_sent >= options_.heartbeat_interval) {
        const auto outcome = send_to(it->first, detail::encode_heartbeat(), now);
        if (outcome == send_outcome::gone) {
          it = end_session(it, "its connection closed");
          continue;
        }
        if (outcome == send_outcome::sent) it->second.last_sent = now;
      }
      ++it;
    }
  }

  // ZeroMQ reports a closed connection before the ROUTER has forgotten its
  // routing id, so the sessions are probed for a short while: a probe to a
  // forgotten routing id fails with EHOSTUNREACH (ROUTER_MANDATORY), and that
  // session ends at once, its deliveries going to other consumers.
  void on_disconnected(clock::time_point now) override {
    probing_until_ = now + probe_period;
    next_probe_ = now;
  }

  void on_poll(clock::time_point now) override {
    if (now > probing_until_ || now < next_probe_) return;
    next_probe_ = now + probe_interval;
    for (auto it = sessions_.begin(); it != sessions_.end();) {
      if (send_to(it->first, detail::encode_heartbeat(), now) == send_outcome::gone) {
        it = end_session(it, "its connection closed");
      } else {
        ++it;
      }
    }
  }

  std::optional<clock::time_point> wake_at() const override {
    if (next_probe_ > probing_until_) return std::nullopt;
    return next_probe_;
  }

  enum class send_outcome { sent, dropped, gone };

  send_outcome send_to(const std::string& routing_id, zmq::message_t frame, clock::time_point) {
    const auto size = frame.size();
    try {
      // With ROUTER_MANDATORY the routing id part fails at once for a
      // connection that is gone; a full pipe gives EAGAIN and the frame is
      // dropped: the queue protocol resends.
      if (!socket_.send(zmq::buffer(routing_id),
                        zmq::send_flags::sndmore | zmq::send_flags::dontwait)) {
        counters_.frames_dropped.fetch_add(1, std::memory_order_relaxed);
        return send_outcome::dropped;
      }
    } catch (const zmq::error_t& e) {
      counters_.frames_dropped.fetch_add(1, std::memory_order_relaxed);
      if (e.num() == EHOSTUNREACH) return send_outcome::gone;
      throw;
    }
    if (!socket_.send(frame, zmq::send_flags::dontwait)) {
      counters_.frames_dropped.fetch_add(1, std::memory_order_relaxed);
      return send_outcome::dropped;
    }
    counters_.frames_out.fetch_add(1, std::memory_order_relaxed);
    counters_.bytes_out.fetch_add(size, std::memory_order_relaxed);
    return send_outcome::sent;
  }

  static constexpr auto probe_period = std::chrono::milliseconds(200);
  static constexpr auto probe_interval = std::chrono::milliseconds(2);
  clock::time_point probing_until_{};
  clock::time_point next_probe_{clock::time_point::max()};

  const std::string address_;
  session_map sessions_;                            // by routing id; socket thread only
  std::unordered_map<peer_id, std::string> peers_;  // routing id by session; socket thread only
};

}  // namespace

result<std::unique_ptr<endpoint>> endpoint::listen(const std::string& address, link_options options,
                                                   link_handler handler) {
  if (auto checked = detail::check_options(options); !checked) return checked;
  if (!handler) return status{errc::invalid_argument, "a link needs a handler for its events"};
  auto wakeup = detail::wakeup_fd::create();
  if (!wakeup) return wakeup.error();
  try {
    zmq::context_t context(1);
    zmq::socket_t socket(context, zmq::socket_type::router);
    detail::set_common_options(socket, options);
    // A send to a connection that is gone fails with EHOSTUNREACH, which ends
    // its session at once (see on_disconnected).
    socket.set(zmq::sockopt::router_mandatory, true);
    try {
      socket.bind(address);
    } catch (const zmq::error_t& e) {
      const auto code = e.num() == EADDRINUSE ? errc::in_use : errc::invalid_argument;
      return status{code, "listen on " + address + ": " + e.what()};
    }
    auto bound = socket.get(zmq::sockopt::last_endpoint);
    return std::unique_ptr<endpoint>(new router_endpoint(std::move(bound), std::move(context),
                                                         std::move(socket), std::move(*wakeup),
                                                         std::move(options), std::move(handler)));
  } catch (const std::exception& e) {
    // zmq::error_t from socket set-up, std::system_error from starting the thread.
    return status{errc::io_error, "listen on " + address + ": " + e.what()};
  }
}

}  // namespace weir::transport

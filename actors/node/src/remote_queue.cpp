#include "weir/node/remote_queue.hpp"

#include <thread>
#include <unordered_map>

#include <spdlog/spdlog.h>
#include <caf/all.hpp>

#include "weir/node/wire_codec.hpp"
#include "weir/queue/producer.hpp"
#include "weir/runtime/id_map.hpp"
#include "weir/runtime/latency_trace.hpp"

namespace weir {

namespace {

using link_up_atom = caf::atom_constant<caf::atom("wlinkup")>;
using link_down_atom = caf::atom_constant<caf::atom("wlinkdn")>;
using wire::frame_atom;
using request_timeout_atom = caf::atom_constant<caf::atom("wreqto")>;
using schema::ProtocolMessage;

struct remote_consumer {
  caf::actor handle;
  std::int64_t credit = 0;
  // Delivered in this session and not yet settled. Acks for anything else refer
  // to an earlier session: the node redelivers those, so they are dropped here.
  // An id_map, not a hash set: no allocation per delivery.
  id_map<bool> held;
};

struct pending_request {
  caf::typed_response_promise<std::vector<delivery>> list;  // one of the two is pending
  caf::typed_response_promise<std::uint64_t> replay;
  zmq::message_t frame;  // kept until sent: requests wait for the session
  bool sent = false;

  void fail(caf::error error) {
    if (list.pending()) list.deliver(error);
    if (replay.pending()) replay.deliver(std::move(error));
  }
};

struct remote_state {
  static inline const char* name = "weir.remote_queue";
  remote_queue_options options;
  std::shared_ptr<transport::connection> connection;  // closed with the state, when the proxy ends
  bool up = false;
  std::string node;
  std::unordered_map<std::uint64_t, caf::actor> producers;  // producer id -> its actor
  std::unordered_map<std::uint64_t, remote_consumer> consumers;
  std::unordered_map<caf::actor_addr, std::uint64_t> consumer_ids;
  std::uint64_t next_consumer_id = 1;
  std::uint64_t next_request_id = 1;
  std::unordered_map<std::uint64_t, pending_request> requests;
  std::chrono::steady_clock::time_point last_error_log{};
  bool started = false;  // the session work ran for the current up period
};

using remote_actor = caf::stateful_actor<remote_state>;

/// Sends the frame `build` makes (wire_codec.hpp), built only while the session is up.
template <class Build>
void send_frame(remote_actor* self, Build&& build) {
  auto& state = self->state;
  if (state.up && state.connection) state.connection->send(build());
}

void send_subscribe(remote_actor* self, std::uint64_t id, const remote_consumer& consumer) {
  send_frame(self,
             [&] { return wire::subscribe_frame(self->state.options.queue, id, consumer.credit); });
}

remote_consumer* consumer_of_sender(remote_actor* self, std::uint64_t& id) {
  auto& state = self->state;
  auto it = state.consumer_ids.find(caf::actor_cast<caf::actor_addr>(self->current_sender()));
  if (it == state.consumer_ids.end()) return nullptr;
  id = it->second;
  return &state.consumers[id];
}

/// Registers a request; it is sent now if the session is up, else once it is.
pending_request& start_request(remote_actor* self,
                               const std::function<zmq::message_t(std::uint64_t)>& build) {
  auto& state = self->state;
  const auto id = state.next_request_id++;
  auto& request = state.requests[id];
  request.frame = build(id);
  if (state.up && state.connection) {
    state.connection->send(std::move(request.frame));
    request.sent = true;
  }
  self->delayed_send(self, state.options.request_timeout, request_timeout_atom::value, id);
  return request;
}

void fail_request(remote_actor* self, std::uint64_t id, caf::error error) {
  auto it = self->state.requests.find(id);
  if (it == self->state.requests.end()) return;
  it->second.fail(std::move(error));
  self->state.requests.erase(it);
}

void fail_request(remote_actor* self, std::uint64_t id, const std::string& why) {
  fail_request(self, id, caf::make_error(caf::sec::runtime_error, why));
}

/// Runs once the link is up and the connection handed over, in either order.
void start_session(remote_actor* self) {
  auto& state = self->state;
  if (!state.up || !state.connection || state.started) return;
  state.started = true;
  spdlog::info("queue {}: connected to node {} at {}", state.options.queue, state.node,
               state.options.address);
  for (auto& [id, consumer] : state.consumers) send_subscribe(self, id, consumer);
  for (auto& [id, producer] : state.producers) {
    self->send(producer, rebind_atom::value, caf::actor_cast<caf::actor>(self));
  }
  for (auto& [id, request] : state.requests) {
    if (!request.sent) {
      state.connection->send(std::move(request.frame));
      request.sent = true;
    }
  }
}

/// True at most once a second, so that a node repeating an error fills no log.
bool error_log_due(remote_state& state) {
  const auto now = std::chrono::steady_clock::now();
  if (now - state.last_error_log <= std::chrono::seconds(1)) return false;
  state.last_error_log = now;
  return true;
}

void handle_frame(remote_actor* self, const wire::frame_handle& handle) {
  auto& state = self->state;
  for (auto message : handle.frame->root().getMessages()) {
    switch (message.which()) {
      case ProtocolMessage::CONFIRM: {
        auto confirm = wire::read_confirm(message.getConfirm(), state.options.queue);
        auto it = state.producers.find(confirm.producer_id);
        if (it == state.producers.end()) break;
        self->send(it->second, confirm_atom::value, std::move(confirm));
        break;
      }
      case ProtocolMessage::DELIVER: {
        auto deliver = message.getDeliver();
        auto it = state.consumers.find(deliver.getConsumerId());
        if (it == state.consumers.end()) break;  // unsubscribed meanwhile: the node redelivers
        delivery_batch batch;
        batch.queue = state.options.queue;
        batch.deliveries.reserve(deliver.getEnvelopes().size());
        for (auto envelope : deliver.getEnvelopes()) {
          // Queues number messages from 1; the two ids id_map cannot hold are never sent.
          if (envelope.getId() == 0 || envelope.getId() == ~std::uint64_t{0}) {
            if (error_log_due(state)) {
              spdlog::warn("queue {} on {}: delivery with invalid id {} ignored",
                           state.options.queue, state.options.address, envelope.getId());
            }
            continue;
          }
          batch.deliveries.push_back(wire::read_delivery(envelope, handle.frame));
          it->second.held.try_emplace(batch.deliveries.back().id, true);
        }
        if (batch.deliveries.empty()) break;
        self->send(it->second.handle, deliver_atom::value, std::move(batch));
        break;
      }
      case ProtocolMessage::LIST_REPLY: {
        auto reply = message.getListReply();
        auto it = state.requests.find(reply.getRequestId());
        if (it == state.requests.end()) break;
        if (it->second.list.pending()) {
          it->second.list.deliver(wire::read_list_reply(reply, handle.frame));
        }
        state.requests.erase(it);
        break;
      }
      case ProtocolMessage::REPLAY_REPLY: {
        auto reply = message.getReplayReply();
        auto it = state.requests.find(reply.getRequestId());
        if (it == state.requests.end()) break;
        if (it->second.replay.pending()) it->second.replay.deliver(std::uint64_t{reply.getMoved()});
        state.requests.erase(it);
        break;
      }
      case ProtocolMessage::ERROR: {
        auto error = message.getError();
        const std::string text = error.getMessage();
        if (error.getRequestId() != 0) {
          fail_request(self, error.getRequestId(),
                       caf::error(static_cast<std::uint8_t>(error.getCode()),
                                  wire::node_error_category, caf::make_message(text)));
          break;
        }
        if (error_log_due(state)) {
          spdlog::warn("queue {} on {}: node says: {}", state.options.queue, state.options.address,
                       text);
        }
        // Producers learn of the queue's refusals (a fenced epoch stops them, a gap
        // makes them resend). An unknown queue would only make producers resend in a
        // loop, so it is just logged.
        if (auto kind = wire::protocol_error_kind_of(error.getCode())) {
          for (auto& [id, producer] : state.producers) {
            self->send(producer, protocol_error_atom::value,
                       protocol_error{state.options.queue, text, *kind});
          }
        }
        break;
      }
      default:
        break;  // hello and heartbeat are the link's; a node sends nothing else
    }
  }
}

caf::typed_response_promise<std::vector<delivery>> list_request(remote_actor* self,
                                                                bool dead_letters,
                                                                std::uint64_t from_id,
                                                                std::uint32_t limit) {
  auto promise = self->make_response_promise<std::vector<delivery>>();
  const auto& queue = self->state.options.queue;
  start_request(self, [&](std::uint64_t id) {
    return wire::list_request_frame(queue, id, from_id, limit, dead_letters);
  }).list = promise;
  return promise;
}

caf::behavior remote_behavior(remote_actor* self, remote_queue_options options) {
  auto& state = self->state;
  state.options = std::move(options);
  self->set_down_handler([self](caf::down_msg& down) {
    auto& state = self->state;
    auto it = state.consumer_ids.find(down.source);
    if (it != state.consumer_ids.end()) {
      const auto id = it->second;
      send_frame(self, [&] { return wire::unsubscribe_frame(state.options.queue, id); });
      state.consumers.erase(id);
      state.consumer_ids.erase(it);
    }
    for (auto p = state.producers.begin(); p != state.producers.end();) {
      p = p->second.address() == down.source ? state.producers.erase(p) : std::next(p);
    }
  });
  return {
      [self](wire::connection_handle& handle) {
        self->state.connection = std::move(handle.connection);
        start_session(self);
      },
      [self](link_up_atom, transport::peer_id, std::string& node) {
        auto& state = self->state;
        state.up = true;
        state.started = false;
        state.node = std::move(node);
        start_session(self);
      },
      [self](link_down_atom, transport::peer_id, const std::string& reason) {
        auto& state = self->state;
        if (!state.up) return;
        state.up = false;
        state.started = false;
        spdlog::warn("queue {}: lost node {} at {}: {}", state.options.queue, state.node,
                     state.options.address, reason);
        for (auto& [id, consumer] : state.consumers) consumer.held.clear();
        std::vector<std::uint64_t> sent;
        for (auto& [id, request] : state.requests) {
          if (request.sent) sent.push_back(id);
        }
        for (auto id : sent) fail_request(self, id, "lost the node: " + reason);
      },
      [self](frame_atom, const wire::frame_handle& handle) { handle_frame(self, handle); },
      // By const reference: the producer keeps this same message for resends,
      // and a mutable one would make CAF copy it first.
      [self](publish_atom, const publish_batch& batch) {
        auto& state = self->state;
        auto producer = caf::actor_cast<caf::actor>(self->current_sender());
        if (producer && state.producers.emplace(batch.producer_id, producer).second) {
          self->monitor(producer);
        }
        if (!batch.messages.empty()) {
          latency_trace::mark(latency_trace::stage::producer_sent,
                              batch.messages.front().publish_time_ns);
        }
        send_frame(self, [&] { return wire::publish_frame(state.options.queue, batch); });
      },
      [self](subscribe_atom, std::int64_t credit) {
        auto& state = self->state;
        auto sender = caf::actor_cast<caf::actor>(self->current_sender());
        if (!sender) return;
        if (credit <= 0 || credit > std::int64_t{1} << 24) {
          self->send(sender, protocol_error_atom::value,
                     protocol_error{state.options.queue,
                                    "subscribe with credit " + std::to_string(credit) +
                                        " (must be 1.." + std::to_string(1 << 24) + ")"});
          return;
        }
        std::uint64_t id = 0;
        auto* consumer = consumer_of_sender(self, id);
        if (consumer == nullptr) {
          id = state.next_consumer_id++;
          state.consumer_ids[sender.address()] = id;
          consumer = &state.consumers[id];
          consumer->handle = sender;
          self->monitor(sender);
        }
        consumer->credit = credit;
        send_subscribe(self, id, *consumer);
      },
      [self](credit_atom, std::int64_t more) {
        std::uint64_t id = 0;
        auto* consumer = consumer_of_sender(self, id);
        if (consumer == nullptr || more <= 0) return;
        consumer->credit += more;
        send_frame(self, [&] { return wire::credit_frame(self->state.options.queue, id, more); });
      },
      [self](unsubscribe_atom) {
        auto& state = self->state;
        std::uint64_t id = 0;
        if (consumer_of_sender(self, id) == nullptr) return;
        send_frame(self, [&] { return wire::unsubscribe_frame(state.options.queue, id); });
        state.consumer_ids.erase(state.consumers[id].handle.address());
        state.consumers.erase(id);
      },
      [self](ack_atom, const std::vector<id_range>& ranges) {
        std::uint64_t id = 0;
        auto* consumer = consumer_of_sender(self, id);
        if (consumer == nullptr) return;
        std::vector<id_range> current;
        // A range wider than what is held cannot be all ours: the bound keeps a
        // bogus range from costing a loop over billions of ids.
        const auto held = consumer->held.size();
        for (const auto& range : ranges) {
          for (auto i = range.begin; i < range.end && i - range.begin < held; ++i) {
            if (!consumer->held.erase(i)) continue;
            if (!current.empty() && current.back().end == i) {
              ++current.back().end;
            } else {
              current.push_back({i, i + 1});
            }
          }
        }
        if (current.empty()) return;
        send_frame(self, [&] { return wire::ack_frame(self->state.options.queue, id, current); });
      },
      [self](nack_atom, const nack_request& request) {
        std::uint64_t id = 0;
        auto* consumer = consumer_of_sender(self, id);
        if (consumer == nullptr) return;
        std::vector<std::uint64_t> current;
        for (auto i : request.ids) {
          if (consumer->held.erase(i)) current.push_back(i);
        }
        if (current.empty()) return;
        send_frame(self, [&] {
          return wire::nack_frame(self->state.options.queue, id, current, request);
        });
      },
      [self](extend_atom, const std::vector<std::uint64_t>& ids, std::uint32_t extension_ms) {
        std::uint64_t id = 0;
        auto* consumer = consumer_of_sender(self, id);
        if (consumer == nullptr) return;
        std::vector<std::uint64_t> current;
        for (auto i : ids) {
          if (consumer->held.contains(i)) current.push_back(i);
        }
        if (current.empty()) return;
        send_frame(self, [&] {
          return wire::extend_frame(self->state.options.queue, id, current, extension_ms);
        });
      },
      [self](list_atom, std::uint64_t from_id,
             std::uint32_t limit) -> caf::result<std::vector<delivery>> {
        return list_request(self, false, from_id, limit);
      },
      [self](list_atom, dead_letters_atom, std::uint64_t from_id,
             std::uint32_t limit) -> caf::result<std::vector<delivery>> {
        return list_request(self, true, from_id, limit);
      },
      [self](replay_atom, std::uint32_t limit) -> caf::result<std::uint64_t> {
        auto promise = self->make_response_promise<std::uint64_t>();
        const auto& queue = self->state.options.queue;
        start_request(self, [&](std::uint64_t id) {
          return wire::replay_request_frame(queue, id, limit);
        }).replay = promise;
        return promise;
      },
      [self](request_timeout_atom, std::uint64_t id) {
        fail_request(self, id,
                     "node at " + self->state.options.address + " did not answer within " +
                         std::to_string(self->state.options.request_timeout.count()) + " ms");
      },
  };
}

}  // namespace

result<caf::actor> spawn_remote_queue(caf::actor_system& system, remote_queue_options options) {
  if (options.queue.empty()) return status{errc::invalid_argument, "remote queue without a name"};
  if (options.link.node_id.empty()) options.link.node_id = "client:" + options.queue;
  auto proxy = system.spawn(remote_behavior, options);
  // The link's thread reports through a weak handle: the proxy owns the
  // connection, not the other way round.
  auto handler = [weak = proxy.address()](transport::link_event event) {
    auto target = caf::actor_cast<caf::actor>(weak);
    if (!target) return;
    switch (event.type) {
      case transport::link_event::kind::peer_up:
        caf::anon_send(target, link_up_atom::value, event.peer, std::move(event.detail));
        break;
      case transport::link_event::kind::peer_down:
        caf::anon_send(target, link_down_atom::value, event.peer, std::move(event.detail));
        break;
      case transport::link_event::kind::frame:
        caf::anon_send(target, frame_atom::value, wire::frame_handle{std::move(event.frame)});
        break;
    }
  };
  auto connection = transport::connection::connect(options.address, options.link, handler);
  if (!connection) {
    caf::anon_send_exit(proxy, caf::exit_reason::user_shutdown);
    return status{connection.error().code(), "queue " + options.queue + " at " + options.address +
                                                 ": " + connection.error().message()};
  }
  caf::anon_send(proxy, wire::connection_handle{std::move(*connection)});
  return proxy;
}

bool is_unknown_queue(const caf::error& error) {
  return error.category() == wire::node_error_category &&
         error.code() == static_cast<std::uint8_t>(schema::ErrorCode::UNKNOWN_QUEUE);
}

std::string error_text(caf::actor_system& system, const caf::error& error) {
  const auto& context = error.context();
  if (context.match_elements<std::string>()) return context.get_as<std::string>(0);
  return system.render(error);
}

caf::error probe_queue(caf::scoped_actor& self, const caf::actor& proxy,
                       std::chrono::steady_clock::time_point deadline) {
  for (;;) {
    caf::error failed;
    self->request(proxy, caf::infinite, list_atom::value, std::uint64_t{0}, std::uint32_t{0})
        .receive([](const std::vector<delivery>&) {}, [&](caf::error& error) { failed = error; });
    if (!failed || is_unknown_queue(failed) || std::chrono::steady_clock::now() >= deadline) {
      return failed;
    }
    // Not connected yet: a pause, so that a node still starting is not asked in a spin.
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
}

}  // namespace weir

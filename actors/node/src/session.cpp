// A peer's session on a node: reads the peer's frames (wire_codec.hpp) and hands
// each message to the queue, the consumer stand-in or the collector it is for.

#include "session.hpp"

#include <caf/all.hpp>

#include "consumer_stand_in.hpp"

namespace weir::detail {

namespace {

using schema::ErrorCode;
using schema::ProtocolMessage;

constexpr std::chrono::seconds request_timeout{10};

// How long an infoRequest waits for the queues and the supervisor; a queue that
// is slower (restarting) shows as weir_queue_up 0. Below the client's default
// timeout of 5 s, so a reply arrives before the client gives up.
constexpr std::chrono::seconds info_timeout{2};

caf::actor find_consumer(session_actor* self, const std::string& queue, std::uint64_t id) {
  auto& state = self->state;
  auto it = state.consumers.find(id);
  if (it != state.consumers.end()) return it->second;
  state.shared->refuse(state.peer, ErrorCode::BAD_REQUEST,
                       "consumer " + std::to_string(id) + " of queue " + queue +
                           " has not subscribed in this session",
                       queue);
  return {};
}

caf::actor find_queue(session_actor* self, const std::string& name, std::uint64_t request_id = 0) {
  auto& state = self->state;
  auto queue = state.shared->lookup(name);
  if (!queue) {
    state.shared->refuse(state.peer, ErrorCode::UNKNOWN_QUEUE,
                         "node " + state.shared->node_id + " has no queue named '" + name + "'",
                         name, request_id);
  }
  return queue;
}

void handle_publish(session_actor* self, schema::Publish::Reader publish,
                    const transport::inbound_frame_ptr& frame) {
  auto queue = find_queue(self, publish.getQueue());
  if (!queue) return;
  self->send(queue, publish_atom::value, wire::read_publish(publish, frame));
}

void handle_subscribe(session_actor* self, schema::Subscribe::Reader subscribe) {
  auto& state = self->state;
  const std::string queue_name = subscribe.getQueue();
  const auto credit = static_cast<std::int64_t>(subscribe.getCredit());
  auto existing = state.consumers.find(subscribe.getConsumerId());
  if (existing != state.consumers.end()) {
    self->send(existing->second, subscribe_atom::value, credit);
    return;
  }
  auto queue = find_queue(self, queue_name);
  if (!queue) return;
  // Linked: when the session ends, its consumers end, and their queues redeliver at once.
  auto proxy = self->spawn<caf::linked>(consumer_stand_in_behavior, state.shared, state.peer,
                                        queue_name, queue, subscribe.getConsumerId(), credit);
  state.consumers.emplace(subscribe.getConsumerId(), proxy);
}

void handle_list(session_actor* self, schema::ListRequest::Reader list) {
  auto& state = self->state;
  const auto request_id = list.getRequestId();
  std::string name = list.getQueue();
  if (list.getDeadLetters()) {
    if (!find_queue(self, name, request_id)) return;
    auto dead_letters = state.shared->dead_letter_queue_of(name);
    if (dead_letters.empty()) {
      state.shared->refuse(state.peer, ErrorCode::UNKNOWN_QUEUE,
                           "queue '" + name + "' has no dead-letter queue", name, request_id);
      return;
    }
    name = dead_letters;
  }
  auto queue = find_queue(self, name, request_id);
  if (!queue) return;
  self->request(queue, request_timeout, list_atom::value, list.getFromId(), list.getLimit())
      .then(
          [self, request_id](const std::vector<delivery>& ready) {
            auto& state = self->state;
            state.shared->send(state.peer, wire::list_reply_frame(request_id, ready));
          },
          [self, request_id, name](const caf::error& error) {
            auto& state = self->state;
            state.shared->refuse(state.peer, ErrorCode::INTERNAL,
                                 "list of " + name + " failed: " + self->system().render(error),
                                 name, request_id);
          });
}

void handle_replay(session_actor* self, schema::ReplayRequest::Reader replay) {
  auto& state = self->state;
  const auto request_id = replay.getRequestId();
  const std::string name = replay.getQueue();
  auto target = find_queue(self, name, request_id);
  if (!target) return;
  auto dead_letters_name = state.shared->dead_letter_queue_of(name);
  auto dead_letters =
      dead_letters_name.empty() ? caf::actor{} : state.shared->lookup(dead_letters_name);
  if (!dead_letters) {
    state.shared->refuse(state.peer, ErrorCode::UNKNOWN_QUEUE,
                         "queue '" + name + "' has no dead-letter queue", name, request_id);
    return;
  }
  self->request(dead_letters, request_timeout, replay_atom::value, target, replay.getLimit())
      .then(
          [self, request_id](std::uint64_t moved) {
            auto& state = self->state;
            state.shared->send(state.peer, wire::replay_reply_frame(request_id, moved));
          },
          [self, request_id, name](const caf::error& error) {
            auto& state = self->state;
            state.shared->refuse(state.peer, ErrorCode::INTERNAL,
                                 "replay into " + name + " failed: " + self->system().render(error),
                                 name, request_id);
          });
}

void handle_info(session_actor* self, schema::InfoRequest::Reader request) {
  auto& state = self->state;
  const auto request_id = request.getRequestId();
  const auto topic = request.getTopic();
  if (topic != schema::InfoTopic::METRICS && topic != schema::InfoTopic::TREE) {
    state.shared->refuse(state.peer, ErrorCode::BAD_REQUEST,
                         "unknown info topic " + std::to_string(static_cast<unsigned>(topic)) +
                             " (this node knows metrics and tree)",
                         "", request_id);
    return;
  }
  auto source = state.shared->metrics();
  if (topic == schema::InfoTopic::TREE) source.queues.clear();  // only the tree is needed
  // Collected without blocking the session: the reply is sent from the collector.
  auto reply = [shared = state.shared, peer = state.peer, request_id,
                topic](metrics_snapshot snapshot) {
    if (topic == schema::InfoTopic::TREE && !snapshot.tree) {
      shared->refuse(peer, ErrorCode::INTERNAL,
                     "node " + shared->node_id + ": the supervisor did not list its tree in time",
                     "", request_id);
      return;
    }
    const auto text = topic == schema::InfoTopic::METRICS ? render_prometheus(snapshot)
                                                          : render_tree(*snapshot.tree);
    shared->send(peer, wire::info_reply_frame(request_id, topic, text));
  };
  collect_metrics(self->system(), std::move(source), info_timeout, std::move(reply));
}

void handle_message(session_actor* self, ProtocolMessage::Reader message,
                    const transport::inbound_frame_ptr& frame) {
  auto& state = self->state;
  switch (message.which()) {
    case ProtocolMessage::HELLO:
    case ProtocolMessage::HEARTBEAT:
      break;  // the link's business
    case ProtocolMessage::PUBLISH:
      handle_publish(self, message.getPublish(), frame);
      break;
    case ProtocolMessage::SUBSCRIBE:
      handle_subscribe(self, message.getSubscribe());
      break;
    case ProtocolMessage::CREDIT: {
      auto credit = message.getCredit();
      if (auto proxy = find_consumer(self, credit.getQueue(), credit.getConsumerId())) {
        self->send(proxy, credit_atom::value, static_cast<std::int64_t>(credit.getGrant()));
      }
      break;
    }
    case ProtocolMessage::ACK: {
      auto ack = message.getAck();
      if (auto proxy = find_consumer(self, ack.getQueue(), ack.getConsumerId())) {
        self->send(proxy, ack_atom::value, wire::read_ranges(ack.getRanges()));
      }
      break;
    }
    case ProtocolMessage::NACK: {
      auto nack = message.getNack();
      if (auto proxy = find_consumer(self, nack.getQueue(), nack.getConsumerId())) {
        self->send(proxy, nack_atom::value, wire::read_nack(nack));
      }
      break;
    }
    case ProtocolMessage::EXTEND_LEASE: {
      auto extend = message.getExtendLease();
      if (auto proxy = find_consumer(self, extend.getQueue(), extend.getConsumerId())) {
        self->send(proxy, extend_atom::value, wire::read_ids(extend.getIds()),
                   extend.getExtensionMs());
      }
      break;
    }
    case ProtocolMessage::UNSUBSCRIBE: {
      auto unsubscribe = message.getUnsubscribe();
      if (auto proxy = find_consumer(self, unsubscribe.getQueue(), unsubscribe.getConsumerId())) {
        self->send(proxy, unsubscribe_atom::value);
        state.consumers.erase(unsubscribe.getConsumerId());
      }
      break;
    }
    case ProtocolMessage::LIST_REQUEST:
      handle_list(self, message.getListRequest());
      break;
    case ProtocolMessage::REPLAY_REQUEST:
      handle_replay(self, message.getReplayRequest());
      break;
    case ProtocolMessage::INFO_REQUEST:
      handle_info(self, message.getInfoRequest());
      break;
    case ProtocolMessage::ERROR: {
      auto error = message.getError();
      spdlog::warn("node {}: peer {} reports: {}", state.shared->node_id, state.peer_node,
                   error.getMessage().cStr());
      break;
    }
    case ProtocolMessage::CONFIRM:
    case ProtocolMessage::DELIVER:
    case ProtocolMessage::LIST_REPLY:
    case ProtocolMessage::REPLAY_REPLY:
    case ProtocolMessage::INFO_REPLY:
      state.shared->refuse(state.peer, ErrorCode::BAD_REQUEST,
                           "a node does not accept message kind " +
                               std::to_string(static_cast<int>(message.which())) + " from a client",
                           "");
      break;
  }
}

}  // namespace

caf::behavior session_behavior(session_actor* self, node_shared_ptr shared, transport::peer_id peer,
                               std::string peer_node) {
  auto& state = self->state;
  state.shared = std::move(shared);
  state.peer = peer;
  state.peer_node = std::move(peer_node);
  return {
      [self](wire::frame_atom, const wire::frame_handle& handle) {
        // Bodies share the frame only when it carries one message: the queue keeps
        // a publish's bodies in its cache, and must not keep other messages' bytes alive.
        auto messages = handle.frame->root().getMessages();
        const auto shared = messages.size() == 1 ? handle.frame : transport::inbound_frame_ptr{};
        for (auto message : messages) handle_message(self, message, shared);
      },
      [self](confirm_atom, const confirmation& c) {
        auto& state = self->state;
        state.shared->send(state.peer, wire::confirm_frame(c));
      },
      [self](protocol_error_atom, const protocol_error& e) {
        auto& state = self->state;
        state.shared->refuse(state.peer, wire::error_code_of(e.kind), e.message, e.queue);
      },
  };
}

}  // namespace weir::detail

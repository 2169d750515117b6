#include "weir/actors/node.hpp"

#include <algorithm>
#include <atomic>
#include <map>
#include <mutex>
#include <set>
#include <thread>
#include <unordered_map>

#include <spdlog/spdlog.h>
#include <caf/all.hpp>

#include "weir/actors/metrics.hpp"
#include "weir/runtime/supervisor.hpp"
#include "wire_codec.hpp"

namespace weir {

namespace {

using resolve_atom = caf::atom_constant<caf::atom("wresolve")>;
using frame_atom = caf::atom_constant<caf::atom("wframe")>;
using schema::ErrorCode;
using schema::ProtocolMessage;

constexpr std::chrono::seconds request_timeout{10};

// How long an infoRequest waits for the queues and the supervisor; a queue that
// is slower (restarting) shows as weir_queue_up 0. Below the client's default
// timeout of 5 s, so a reply arrives before the client gives up.
constexpr std::chrono::seconds info_timeout{2};

/// What the node's actors and its link thread share.
struct node_shared {
  mutable std::mutex mutex;
  std::map<std::string, caf::actor> queues;           // name -> the queue actor serving it now
  std::map<std::string, std::string> dead_letter_of;  // queue -> its dead-letter queue
  std::unique_ptr<transport::endpoint> endpoint;
  caf::actor supervisor;  // of the queues; guarded by mutex
  std::string node_id;
  std::atomic<std::uint64_t> unknown_queue{0};
  std::atomic<std::uint64_t> bad_requests{0};
  std::atomic<std::uint64_t> sessions{0};  // open now; kept by the node with its session map

  node_stats stats() const {
    node_stats out;
    out.unknown_queue = unknown_queue.load();
    out.bad_requests = bad_requests.load();
    out.peers = sessions.load();
    std::lock_guard lock(mutex);
    if (endpoint) out.link = endpoint->stats();
    return out;
  }

  metrics_source metrics() const {
    metrics_source out;
    {
      std::lock_guard lock(mutex);
      out.queues.assign(queues.begin(), queues.end());
      out.supervisor = supervisor;
    }
    out.node = stats();
    return out;
  }

  caf::actor lookup(const std::string& name) const {
    std::lock_guard lock(mutex);
    auto it = queues.find(name);
    return it == queues.end() ? caf::actor{} : it->second;
  }

  std::string dead_letter_queue_of(const std::string& name) const {
    std::lock_guard lock(mutex);
    auto it = dead_letter_of.find(name);
    return it == dead_letter_of.end() ? std::string{} : it->second;
  }

  void send(transport::peer_id peer, zmq::message_t frame) {
    std::lock_guard lock(mutex);
    if (endpoint) endpoint->send(peer, std::move(frame));
  }

  void refuse(transport::peer_id peer, ErrorCode code, const std::string& message,
              const std::string& queue, std::uint64_t request_id = 0) {
    (code == ErrorCode::UNKNOWN_QUEUE ? unknown_queue : bad_requests)++;
    spdlog::warn("node {}: peer {}: {}", node_id, peer, message);
    send(peer, wire::error_frame(code, message, queue, request_id));
  }
};

using shared_ptr = std::shared_ptr<node_shared>;

// --- a remote consumer's stand-in: the queue sees it as the consumer ----------

struct consumer_proxy_state {
  static inline const char* name = "weir.remote_consumer";
  shared_ptr shared;
  transport::peer_id peer = 0;
  std::string queue_name;
  caf::actor queue;
  std::uint64_t consumer_id = 0;
  std::int64_t credit = 0;
};

using consumer_proxy = caf::stateful_actor<consumer_proxy_state>;

caf::behavior consumer_proxy_behavior(consumer_proxy* self, shared_ptr shared,
                                      transport::peer_id peer, std::string queue_name,
                                      caf::actor queue, std::uint64_t consumer_id,
                                      std::int64_t credit) {
  auto& state = self->state;
  state.shared = std::move(shared);
  state.peer = peer;
  state.queue_name = std::move(queue_name);
  state.queue = std::move(queue);
  state.consumer_id = consumer_id;
  state.credit = credit;
  self->monitor(state.queue);
  self->send(state.queue, subscribe_atom::value, credit);
  // A restarted queue is a new actor: subscribe to it, and it redelivers what was unacked.
  self->set_down_handler([self](caf::down_msg& down) {
    if (down.source == self->state.queue) self->send(self, resolve_atom::value);
  });
  return {
      [self](deliver_atom, const delivery_batch& batch) {
        auto& state = self->state;
        std::size_t bytes = state.queue_name.size();
        for (const auto& d : batch.deliveries) bytes += wire::frame_bytes_of(d.data);
        auto write = [&](ProtocolMessage::Builder out) {
          auto deliver = out.initDeliver();
          deliver.setQueue(state.queue_name);
          deliver.setConsumerId(state.consumer_id);
          auto envelopes = deliver.initEnvelopes(static_cast<unsigned>(batch.deliveries.size()));
          for (unsigned i = 0; i < batch.deliveries.size(); ++i) {
            wire::write_delivery(envelopes[i], batch.deliveries[i]);
          }
        };
        state.shared->send(state.peer, wire::single_message_frame(write, bytes));
      },
      [self](protocol_error_atom, const protocol_error& e) {
        auto& state = self->state;
        state.shared->refuse(state.peer, ErrorCode::BAD_REQUEST, e.message, e.queue);
      },
      [self](subscribe_atom, std::int64_t credit) {
        self->state.credit = credit;
        self->send(self->state.queue, subscribe_atom::value, credit);
      },
      [self](credit_atom, std::int64_t more) {
        self->state.credit += more;
        self->send(self->state.queue, credit_atom::value, more);
      },
      [self](ack_atom, std::vector<id_range>& ranges) {
        self->send(self->state.queue, ack_atom::value, std::move(ranges));
      },
      [self](nack_atom, nack_request& request) {
        self->send(self->state.queue, nack_atom::value, std::move(request));
      },
      [self](extend_atom, std::vector<std::uint64_t>& ids, std::uint32_t extension_ms) {
        self->send(self->state.queue, extend_atom::value, std::move(ids), extension_ms);
      },
      [self](unsubscribe_atom) {
        self->send(self->state.queue, unsubscribe_atom::value);
        self->quit();
      },
      [self](resolve_atom) {
        auto& state = self->state;
        auto now = state.shared->lookup(state.queue_name);
        if (!now || now == state.queue) {
          self->delayed_send(self, std::chrono::milliseconds(20), resolve_atom::value);
          return;
        }
        state.queue = now;
        self->monitor(state.queue);
        self->send(state.queue, subscribe_atom::value, state.credit);
      },
  };
}

// --- a peer's session: decodes its frames and acts on them ----------------------

struct session_state {
  static inline const char* name = "weir.session";
  shared_ptr shared;
  transport::peer_id peer = 0;
  std::string peer_node;
  std::unordered_map<std::uint64_t, caf::actor> consumers;  // consumer id -> its proxy
};

using session_actor = caf::stateful_actor<session_state>;

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
  publish_batch batch;
  batch.producer_id = publish.getProducerId();
  batch.epoch = publish.getProducerEpoch();
  batch.first_seq = publish.getFirstSeq();
  batch.messages.reserve(publish.getEnvelopes().size());
  for (auto envelope : publish.getEnvelopes())
    batch.messages.push_back(wire::read_message(envelope, frame));
  self->send(queue, publish_atom::value, std::move(batch));
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
  auto proxy = self->spawn<caf::linked>(consumer_proxy_behavior, state.shared, state.peer,
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
            state.shared->send(
                state.peer, wire::single_message_frame([&](ProtocolMessage::Builder out) {
                  auto reply = out.initListReply();
                  reply.setRequestId(request_id);
                  auto envelopes = reply.initEnvelopes(static_cast<unsigned>(ready.size()));
                  for (unsigned i = 0; i < ready.size(); ++i) {
                    wire::write_delivery(envelopes[i], ready[i]);
                  }
                }));
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
            state.shared->send(state.peer,
                               wire::single_message_frame([&](ProtocolMessage::Builder out) {
                                 auto reply = out.initReplayReply();
                                 reply.setRequestId(request_id);
                                 reply.setMoved(moved);
                               }));
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
    shared->send(peer, wire::single_message_frame([&](ProtocolMessage::Builder out) {
                   auto answer = out.initInfoReply();
                   answer.setRequestId(request_id);
                   answer.setTopic(topic);
                   answer.setText(text);
                 }));
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
        self->send(proxy, nack_atom::value,
                   nack_request{wire::read_ids(nack.getIds()),
                                nack.getAction() == schema::NackAction::DEAD_LETTER,
                                nack.getDelayMs(), nack.getReason()});
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

caf::behavior session_behavior(session_actor* self, shared_ptr shared, transport::peer_id peer,
                               std::string peer_node) {
  auto& state = self->state;
  state.shared = std::move(shared);
  state.peer = peer;
  state.peer_node = std::move(peer_node);
  return {
      [self](frame_atom, const wire::frame_handle& handle) {
        // Bodies share the frame only when it carries one message: the queue keeps
        // a publish's bodies in its cache, and must not keep other messages' bytes alive.
        auto messages = handle.frame->root().getMessages();
        const auto shared = messages.size() == 1 ? handle.frame : transport::inbound_frame_ptr{};
        for (auto message : messages) handle_message(self, message, shared);
      },
      [self](confirm_atom, const confirmation& c) {
        auto& state = self->state;
        state.shared->send(state.peer,
                           wire::single_message_frame([&](ProtocolMessage::Builder out) {
                             auto confirm = out.initConfirm();
                             confirm.setQueue(c.queue);
                             confirm.setProducerId(c.producer_id);
                             confirm.setProducerEpoch(c.epoch);
                             confirm.setUpToSeq(c.up_to_seq);
                           }));
      },
      [self](protocol_error_atom, const protocol_error& e) {
        auto& state = self->state;
        state.shared->refuse(state.peer, wire::error_code_of(e.kind), e.message, e.queue);
      },
  };
}

// --- the node ------------------------------------------------------------------

class node_impl final : public node {
 public:
  node_impl(caf::actor_system& system, file_system& fs) : system_(system), fs_(fs) {}

  ~node_impl() override { (void)stop(); }

  status start(node_options options) {
    shared_->node_id = options.link.node_id;
    if (auto queues = start_queues(options); !queues) return queues;
    auto endpoint = transport::endpoint::listen(
        options.listen, options.link,
        [this](transport::link_event event) { on_link(std::move(event)); });
    if (!endpoint) {
      stop_queues();
      return endpoint.error();
    }
    address_ = (*endpoint)->address();
    std::lock_guard lock(shared_->mutex);
    shared_->endpoint = std::move(*endpoint);
    return {};
  }

  std::string address() const override { return address_; }

  result<caf::actor> queue(const std::string& name) const override {
    if (auto queue = shared_->lookup(name)) return queue;
    return status{errc::not_found,
                  "node " + shared_->node_id + " has no queue named '" + name + "'"};
  }

  void serve(const std::string& name, caf::actor queue) override {
    std::lock_guard lock(shared_->mutex);
    shared_->queues[name] = std::move(queue);
  }

  node_stats stats() const override { return shared_->stats(); }

  caf::actor supervisor() const override {
    std::lock_guard lock(shared_->mutex);
    return shared_->supervisor;
  }

  weir::metrics_source metrics() const override { return shared_->metrics(); }

  status stop() override {
    std::unique_ptr<transport::endpoint> endpoint;
    {
      std::lock_guard lock(shared_->mutex);
      endpoint = std::move(shared_->endpoint);
    }
    endpoint.reset();  // joins the link thread: no more sessions start after this
    std::map<transport::peer_id, caf::actor> sessions;
    {
      std::lock_guard lock(sessions_mutex_);
      sessions.swap(sessions_);
      shared_->sessions = 0;
    }
    caf::scoped_actor self{system_};
    for (auto& [peer, session] : sessions) {
      self->send_exit(session, caf::exit_reason::user_shutdown);
      self->wait_for(session);
    }
    stop_queues();
    return {};
  }

 private:
  status start_queues(node_options& options) {
    std::set<std::string> names;
    for (const auto& q : options.queues) {
      if (!names.insert(q.queue.name).second) {
        return {errc::invalid_argument, "queue '" + q.queue.name + "' is declared twice"};
      }
    }
    // A dead-letter queue named but not declared is created with its queue's settings.
    std::vector<node_queue_options> dead_letter_queues;
    for (const auto& q : options.queues) {
      if (q.dead_letter_queue.empty()) continue;
      if (q.dead_letter_queue == q.queue.name) {
        return {errc::invalid_argument,
                "queue '" + q.queue.name + "' cannot be its own dead-letter queue"};
      }
      shared_->dead_letter_of[q.queue.name] = q.dead_letter_queue;
      if (names.insert(q.dead_letter_queue).second) {
        node_queue_options dead;
        dead.queue = q.queue;
        dead.queue.name = q.dead_letter_queue;
        dead.queue.data_dir.clear();
        dead.queue.max_deliveries = 0;
        dead_letter_queues.push_back(std::move(dead));
      }
    }
    // A dead-letter queue starts before its queue, which needs it at spawn; with
    // rest_for_one a restarted dead-letter queue then restarts the queues after it.
    std::vector<node_queue_options> pending = options.queues;
    for (auto& q : dead_letter_queues) pending.push_back(std::move(q));
    std::vector<node_queue_options> ordered;
    std::set<std::string> started;
    while (!pending.empty()) {
      auto ready = std::find_if(pending.begin(), pending.end(), [&](const node_queue_options& q) {
        return q.dead_letter_queue.empty() || started.count(q.dead_letter_queue) > 0;
      });
      if (ready == pending.end()) {
        return {errc::invalid_argument, "dead-letter queues form a cycle through queue '" +
                                            pending.front().queue.name + "'"};
      }
      started.insert(ready->queue.name);
      ordered.push_back(std::move(*ready));
      pending.erase(ready);
    }

    if (auto made = fs_.create_dirs(options.data_dir); !made) return made;
    auto failure = std::make_shared<std::pair<std::mutex, status>>();
    std::vector<child_spec> children;
    for (auto q : ordered) {
      if (q.queue.data_dir.empty()) q.queue.data_dir = options.data_dir + "/" + q.queue.name;
      if (!q.queue.counters) q.queue.counters = std::make_shared<queue_stats>();  // across restarts
      child_spec spec;
      spec.name = q.queue.name;
      spec.start = [shared = shared_, fs = &fs_, q, failure](caf::actor_system& sys) {
        auto settings = q.queue;
        if (!q.dead_letter_queue.empty()) {
          settings.dead_letter_queue = shared->lookup(q.dead_letter_queue);
        }
        auto spawned = spawn_queue(sys, *fs, settings);
        if (!spawned) {
          spdlog::error("node {}: {}", shared->node_id, spawned.error().to_string());
          std::lock_guard lock(failure->first);
          failure->second = spawned.error();
          return caf::actor{};
        }
        std::lock_guard lock(shared->mutex);
        shared->queues[settings.name] = *spawned;
        return *spawned;
      };
      children.push_back(std::move(spec));
    }
    supervisor_options supervision;
    supervision.name = "node " + options.link.node_id;
    supervision.strategy = restart_strategy::rest_for_one;
    supervision.max_restarts = options.restarts_max;
    supervision.period = options.restart_period;
    supervisor_ = spawn_supervisor(system_, supervision, std::move(children));
    {
      std::lock_guard lock(shared_->mutex);
      shared_->supervisor = supervisor_;
    }

    // The supervisor starts its children asynchronously: wait until every queue
    // is serving or one failed to start, so a node never serves half its queues.
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::minutes(10);
    for (;;) {
      {
        std::lock_guard lock(failure->first);
        if (!failure->second.is_ok()) {
          auto error = failure->second;
          stop_queues();
          return error;
        }
      }
      {
        std::lock_guard lock(shared_->mutex);
        if (shared_->queues.size() == ordered.size()) return {};
      }
      if (std::chrono::steady_clock::now() > deadline) {
        stop_queues();
        return {errc::closed, "queues did not start within 10 minutes"};
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
  }

  void stop_queues() {
    if (!supervisor_) return;
    caf::scoped_actor self{system_};
    self->send_exit(supervisor_, caf::exit_reason::user_shutdown);
    self->wait_for(supervisor_);
    supervisor_ = caf::actor{};
    std::lock_guard lock(shared_->mutex);
    shared_->queues.clear();
    shared_->supervisor = caf::actor{};
  }

  // Runs on the link's thread.
  void on_link(transport::link_event event) {
    std::lock_guard lock(sessions_mutex_);
    switch (event.type) {
      case transport::link_event::kind::peer_up: {
        spdlog::info("node {}: peer {} ({}) connected", shared_->node_id, event.peer, event.detail);
        sessions_[event.peer] =
            system_.spawn(session_behavior, shared_, event.peer, std::move(event.detail));
        shared_->sessions = sessions_.size();
        break;
      }
      case transport::link_event::kind::frame: {
        auto it = sessions_.find(event.peer);
        if (it != sessions_.end()) {
          caf::anon_send(it->second, frame_atom::value, wire::frame_handle{std::move(event.frame)});
        }
        break;
      }
      case transport::link_event::kind::peer_down: {
        auto it = sessions_.find(event.peer);
        if (it == sessions_.end()) break;
        spdlog::info("node {}: peer {} lost: {}", shared_->node_id, event.peer, event.detail);
        caf::anon_send_exit(it->second, caf::exit_reason::user_shutdown);
        sessions_.erase(it);
        shared_->sessions = sessions_.size();
        break;
      }
    }
  }

  caf::actor_system& system_;
  file_system& fs_;
  shared_ptr shared_ = std::make_shared<node_shared>();
  caf::actor supervisor_;
  std::string address_;
  mutable std::mutex sessions_mutex_;
  std::map<transport::peer_id, caf::actor> sessions_;
};

}  // namespace

result<std::unique_ptr<node>> node::start(caf::actor_system& system, file_system& fs,
                                          node_options options) {
  if (options.listen.empty())
    return status{errc::invalid_argument, "node without a listen address"};
  if (options.link.node_id.empty()) options.link.node_id = options.listen;
  auto started = std::make_unique<node_impl>(system, fs);
  if (auto ok = started->start(std::move(options)); !ok) return ok;
  return std::unique_ptr<node>(std::move(started));
}

}  // namespace weir

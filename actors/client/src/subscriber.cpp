#include "subscriber.hpp"

#include <caf/all.hpp>

#include "weir/queue/protocol.hpp"

namespace weir::client_detail {

namespace {

struct subscriber_state {
  static inline const char* name = "weir.client.subscriber";
  caf::actor proxy;
  std::shared_ptr<subscriber_inbox> inbox;

  // A thread waiting in next() learns that nothing more will come.
  ~subscriber_state() {
    if (!inbox) return;
    std::lock_guard lock(inbox->mutex);
    inbox->closed = true;
    inbox->changed.notify_all();
  }
};

using subscriber_actor = caf::stateful_actor<subscriber_state>;

received_message to_received(delivery& d) {
  received_message m;
  m.id = d.id;
  m.attempt = d.attempt;
  m.key = std::move(d.data.key);
  m.headers.reserve(d.data.headers.size());
  for (auto& header : d.data.headers) {
    m.headers.emplace_back(std::move(header.name), std::move(header.value));
  }
  // A copy: the frame this body shares may hold many others the application
  // has long settled, and a body held by a slow task would keep them all.
  m.body = d.data.payload.str();
  m.publish_time_ns = d.data.publish_time_ns;
  return m;
}

caf::behavior subscriber_behavior(subscriber_actor* self, caf::actor proxy, std::int64_t credit,
                                  std::shared_ptr<subscriber_inbox> inbox) {
  self->state.proxy = std::move(proxy);
  self->state.inbox = std::move(inbox);
  self->send(self->state.proxy, subscribe_atom::value, credit);
  return {
      [self](deliver_atom, delivery_batch& batch) {
        auto& inbox = *self->state.inbox;
        std::lock_guard lock(inbox.mutex);
        for (auto& d : batch.deliveries) inbox.messages.push_back(to_received(d));
        inbox.changed.notify_all();
      },
      [self](ack_atom, std::vector<id_range>& ranges) {
        self->send(self->state.proxy, ack_atom::value, std::move(ranges));
      },
      [self](nack_atom, nack_request& request) {
        self->send(self->state.proxy, nack_atom::value, std::move(request));
      },
      [self](extend_atom, std::vector<std::uint64_t>& ids, std::uint32_t extension_ms) {
        self->send(self->state.proxy, extend_atom::value, std::move(ids), extension_ms);
      },
      // After the settlements sent before it (one sender's messages keep their
      // order), so that only what is truly unsettled goes back to ready.
      [self](unsubscribe_atom) {
        self->send(self->state.proxy, unsubscribe_atom::value);
        self->quit();
      },
      [self](protocol_error_atom, const protocol_error& error) {
        auto& inbox = *self->state.inbox;
        std::lock_guard lock(inbox.mutex);
        inbox.failure =
            status{errc::invalid_argument, "queue " + error.queue + ": " + error.message};
        inbox.changed.notify_all();
      },
  };
}

}  // namespace

caf::actor spawn_subscriber(caf::actor_system& system, caf::actor proxy, std::int64_t credit,
                            std::shared_ptr<subscriber_inbox> inbox) {
  return system.spawn(subscriber_behavior, std::move(proxy), credit, std::move(inbox));
}

}  // namespace weir::client_detail

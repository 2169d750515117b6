#include "consumer_stand_in.hpp"

#include <caf/all.hpp>

namespace weir::detail {

namespace {

using resolve_atom = caf::atom_constant<caf::atom("wresolve")>;

}  // namespace

caf::behavior consumer_stand_in_behavior(consumer_stand_in* self, node_shared_ptr shared,
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
        state.shared->send(
            state.peer, wire::deliver_frame(state.queue_name, state.consumer_id, batch.deliveries));
      },
      [self](protocol_error_atom, const protocol_error& e) {
        auto& state = self->state;
        state.shared->refuse(state.peer, schema::ErrorCode::BAD_REQUEST, e.message, e.queue);
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

}  // namespace weir::detail

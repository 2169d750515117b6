#include <spdlog/spdlog.h>
#include <caf/all.hpp>

#include "weir/queue/consumer.hpp"
#include "weir/queue/producer.hpp"
#include "weir/runtime/latency_trace.hpp"

namespace weir {

namespace {

struct consumer_state {
  static inline const char* name = "weir.consumer";
  caf::actor queue;
  consumer_options options;
  delivery_handler handler;
  std::uint64_t handled = 0;
  std::uint64_t failed = 0;
  bool unsubscribed = false;  // options.done() said so; deliveries still in flight are left unacked
  bool unsubscribe_sent = false;
};

using consumer_actor = caf::stateful_actor<consumer_state>;

caf::behavior consumer_behavior(consumer_actor* self, caf::actor queue, consumer_options options,
                                delivery_handler handler) {
  auto& state = self->state;
  state.queue = std::move(queue);
  state.options = options;
  state.handler = std::move(handler);
  self->send(state.queue, subscribe_atom::value, options.credit);
  return {
      [self](deliver_atom, delivery_batch& batch) {
        auto& state = self->state;
        if (!batch.deliveries.empty()) {
          latency_trace::mark(latency_trace::stage::consumer_handled,
                              batch.deliveries.front().data.publish_time_ns);
        }
        std::vector<id_range> acks;
        if (state.options.before_batch && !state.unsubscribed) state.options.before_batch();
        for (const auto& d : batch.deliveries) {
          if (state.unsubscribed || (state.options.done && state.options.done())) {
            state.unsubscribed = true;
            break;  // neither handled nor acked: the unsubscribe below makes them ready again
          }
          std::string error;
          try {
            state.handler(d);
          } catch (const std::exception& e) {
            error = e.what();
            if (error.empty()) error = "exception without a message";
          } catch (...) {
            error = "unknown exception";
          }
          if (error.empty()) {
            ++state.handled;
            if (!acks.empty() && acks.back().end == d.id) {
              ++acks.back().end;
            } else {
              acks.push_back({d.id, d.id + 1});
            }
          } else {
            ++state.failed;
            self->send(state.queue, nack_atom::value,
                       nack_request{{d.id}, state.options.dead_letter_on_error, 0, error});
          }
        }
        // One ack per delivery batch, sent after the whole batch was handled.
        if (state.options.before_ack) state.options.before_ack();
        if (!acks.empty()) self->send(state.queue, ack_atom::value, std::move(acks));
        // After the acks: an unsubscribe makes everything still held ready again.
        if (state.unsubscribed && !state.unsubscribe_sent) {
          state.unsubscribe_sent = true;
          self->send(state.queue, unsubscribe_atom::value);
        }
      },
      [](protocol_error_atom, const protocol_error& error) {
        spdlog::warn("consumer: queue {} says: {}", error.queue, error.message);
      },
      [self](rebind_atom, caf::actor queue) {
        self->state.queue = std::move(queue);
        if (self->state.unsubscribed) return;
        self->send(self->state.queue, subscribe_atom::value, self->state.options.credit);
      },
      [self](stats_atom) { return caf::make_message(self->state.handled, self->state.failed); },
  };
}

}  // namespace

caf::actor spawn_consumer(caf::actor_system& system, caf::actor queue, consumer_options options,
                          delivery_handler handler) {
  return system.spawn(consumer_behavior, std::move(queue), options, std::move(handler));
}

}  // namespace weir

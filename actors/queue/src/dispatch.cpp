// Handing ready messages to consumers: per consumer a batch within its credit,
// round robin, bodies from the cache or read from the log together.

#include <algorithm>

#include <caf/all.hpp>

#include "queue_state.hpp"
#include "weir/runtime/latency_trace.hpp"

namespace weir::detail {

caf::actor_clock::duration_type deadline_scan_interval(const queue_options& options) {
  return std::clamp<caf::actor_clock::duration_type>(
      options.ack_timeout / 16, std::chrono::milliseconds(1), std::chrono::milliseconds(100));
}

void schedule_tick_at(queue_actor* self, time_point at) {
  auto& state = self->state;
  if (state.tick_at && *state.tick_at <= at) return;
  state.tick_at = at;
  const auto now = self->clock().now();
  const auto wait = at > now ? at - now : caf::actor_clock::duration_type{0};
  self->delayed_send(self, wait, tick_atom::value, ++state.tick_generation);
}

void schedule_tick(queue_actor* self) {
  if (!self->state.delayed.empty()) schedule_tick_at(self, self->state.delayed.begin()->first);
}

void refill(queue_actor* self) {
  auto& state = self->state;
  if (state.ready.size() >= state.options.ready_window / 2) return;
  const auto room = state.options.ready_window - state.ready.size();
  state.log->for_each_ready(state.log_cursor, room, [&](std::uint64_t id, std::uint32_t attempts) {
    state.ready.push_back({id, attempts});
    state.log_cursor = id + 1;
  });
}

void dispatch(queue_actor* self) {
  auto& state = self->state;
  refill(self);
  bool progress = true;
  while (!state.ready.empty() && progress) {
    progress = false;
    // Round robin: start after the consumer served last.
    auto start = state.consumers.upper_bound(state.last_served);
    for (std::size_t n = 0; n < state.consumers.size() && !state.ready.empty(); ++n, ++start) {
      if (start == state.consumers.end()) start = state.consumers.begin();
      auto& [address, consumer] = *start;
      if (consumer.outstanding >= consumer.window) continue;
      const auto take = std::min<std::size_t>({consumer.window - consumer.outstanding,
                                               state.options.delivery_batch_max,
                                               std::max<std::size_t>(1, consumer.window / 4)});
      delivery_batch batch;
      batch.queue = state.options.name;
      batch.deliveries.reserve(std::min(take, state.ready.size()));
      std::vector<delivery_attempt> attempts;
      attempts.reserve(batch.deliveries.capacity());
      const auto deadline = self->clock().now() + state.options.ack_timeout;
      while (batch.deliveries.size() < take && !state.ready.empty()) {
        // Bodies not cached are read from the log together, after the batch is picked.
        std::vector<std::uint64_t> to_read;
        std::vector<std::size_t> read_into;
        while (batch.deliveries.size() < take && !state.ready.empty()) {
          auto next = state.ready.front();
          state.ready.pop_front();
          if (state.options.max_deliveries != 0 && next.attempts >= state.options.max_deliveries) {
            // Recovered with its deliveries used up (it failed, then we crashed).
            dead_letter(self, next.id, next.attempts, "max_deliveries exceeded");
            continue;
          }
          delivery d;
          d.id = next.id;
          d.attempt = next.attempts + 1;
          if (auto cached = state.recent_bodies.take(next.id)) {
            d.data = std::move(cached->data);
            d.producer_id = cached->producer_id;
            d.producer_seq = cached->producer_seq;
          } else {
            to_read.push_back(next.id);
            read_into.push_back(batch.deliveries.size());
          }
          batch.deliveries.push_back(std::move(d));
        }
        if (to_read.empty()) break;
        auto messages = state.log->read_many(to_read);
        bool dropped = false;
        for (std::size_t k = 0; k < messages.size(); ++k) {
          auto& d = batch.deliveries[read_into[k]];
          auto& message = messages[k];
          if (!message) {
            // Not found: acked meanwhile. Otherwise the log cannot give it back.
            if (message.error().code() != errc::not_found) {
              ++state.counters->storage_errors;
              dead_letter(self, d.id, d.attempt - 1, "unreadable");
            }
            d.id = 0;
            dropped = true;
            continue;
          }
          d.producer_id = message->producer_id;
          d.producer_seq = message->producer_seq;
          d.data.key = std::move(message->key);
          d.data.payload = std::move(message->payload);
          d.data.headers = std::move(message->headers);
          d.data.publish_time_ns = message->publish_time_ns;
        }
        if (dropped) {
          std::erase_if(batch.deliveries, [](const delivery& d) { return d.id == 0; });
        }
      }
      for (const auto& d : batch.deliveries) {
        if (d.attempt > 1) ++state.counters->redelivered;
        if (d.attempt == 1) state.first_delivered_max = std::max(state.first_delivered_max, d.id);
        attempts.push_back({d.id, d.attempt});
        state.in_flight[d.id] = {consumer.serial, d.attempt, deadline};
      }
      if (batch.deliveries.empty()) continue;
      schedule_tick_at(self, deadline);
      // Counted before the delivery so that a message that crashes its consumer
      // every time still reaches max_deliveries across restarts.
      // Not stored (and the queue still running): a restart would count these
      // deliveries again from the last stored count, so a message could get a
      // few more attempts than max_deliveries; it is logged and counted.
      if (stop_if_refused(self, state.log->record_attempts(attempts, {}), "delivery attempts")) {
        return;
      }
      consumer.outstanding += static_cast<std::uint32_t>(batch.deliveries.size());
      state.counters->delivered += batch.deliveries.size();
      state.last_served = address;
      latency_trace::mark(latency_trace::stage::queue_dispatched,
                          batch.deliveries.front().data.publish_time_ns);
      self->send(consumer.handle, deliver_atom::value, std::move(batch));
      progress = true;
      refill(self);
    }
  }
  // Bodies delivered once are read again only for a redelivery.
  state.log->release_cached_below(state.first_delivered_max + 1);
  schedule_tick(self);
}

}  // namespace weir::detail

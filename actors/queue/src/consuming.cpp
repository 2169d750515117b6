// The queue's handlers for consumers: subscriptions, credit, acks, nacks,
// lease extensions, and the tick that takes back what was not acked in time.

#include <algorithm>

#include <spdlog/spdlog.h>
#include <caf/all.hpp>

#include "queue_handlers.hpp"

namespace weir::detail {

void on_subscribe(queue_actor* self, std::int64_t credit) {
  auto& state = self->state;
  auto sender = self->current_sender();
  if (credit <= 0 || credit > std::int64_t{1} << 24) {
    report_protocol_error(self, sender,
                          "subscribe with credit " + std::to_string(credit) + " (must be 1.." +
                              std::to_string(1 << 24) + ")");
    return;
  }
  auto address = caf::actor_cast<caf::actor_addr>(sender);
  auto& consumer = state.consumers[address];
  if (!consumer.handle) {
    consumer.handle = caf::actor_cast<caf::actor>(sender);
    if (++state.consumer_serial_last == 0) ++state.consumer_serial_last;
    consumer.serial = state.consumer_serial_last;
    self->monitor(consumer.handle);
  }
  consumer.window = static_cast<std::uint32_t>(credit);
  state.counters->consumers = state.consumers.size();
  dispatch(self);
}

void on_credit(queue_actor* self, std::int64_t more) {
  auto& state = self->state;
  auto sender = self->current_sender();
  auto it = state.consumers.find(caf::actor_cast<caf::actor_addr>(sender));
  if (it == state.consumers.end()) {
    report_protocol_error(self, sender, "credit from an actor that is not subscribed");
    return;
  }
  const auto window = std::int64_t{it->second.window} + more;
  if (more <= 0 || window > std::int64_t{1} << 24) {
    report_protocol_error(self, sender,
                          "credit of " + std::to_string(more) + " refused (window would be " +
                              std::to_string(window) + ")");
    return;
  }
  it->second.window = static_cast<std::uint32_t>(window);
  dispatch(self);
}

void on_unsubscribe(queue_actor* self) {
  drop_consumer(self, caf::actor_cast<caf::actor_addr>(self->current_sender()), "unsubscribed");
  dispatch(self);
}

void on_ack(queue_actor* self, const std::vector<id_range>& ranges) {
  auto& state = self->state;
  auto sender = self->current_sender();
  const auto consumer = serial_of(state, caf::actor_cast<caf::actor_addr>(sender));
  std::vector<id_range> valid;
  std::uint64_t unknown = 0;
  for (const auto& range : ranges) {
    if (range.begin >= range.end || range.end - range.begin > state.in_flight.size()) {
      unknown += range.end > range.begin ? range.end - range.begin : 1;
      continue;
    }
    for (auto id = range.begin; id < range.end; ++id) {
      if (!take_in_flight(state, consumer, id)) {
        ++unknown;
        continue;
      }
      if (!state.last_errors.empty()) state.last_errors.erase(id);
      if (!valid.empty() && valid.back().end == id) {
        ++valid.back().end;
      } else {
        valid.push_back({id, id + 1});
      }
    }
  }
  if (!valid.empty()) {
    std::uint64_t returned = 0;
    for (const auto& r : valid) returned += r.end - r.begin;
    note_returned(state, consumer, static_cast<std::uint32_t>(returned));
    if (stop_if_refused(self, state.log->ack(valid, {}), "ack")) return;
    for (const auto& r : valid) state.counters->acked += r.end - r.begin;
  }
  if (unknown != 0) {
    report_protocol_error(self, sender,
                          "ack for " + std::to_string(unknown) +
                              " id(s) not delivered to this consumer (or already acked)");
  }
  dispatch(self);
}

void on_nack(queue_actor* self, const nack_request& request) {
  auto& state = self->state;
  auto sender = self->current_sender();
  const auto consumer = serial_of(state, caf::actor_cast<caf::actor_addr>(sender));
  std::uint64_t unknown = 0;
  for (auto id : request.ids) {
    auto entry = release(self, consumer, id);
    if (!entry) {
      ++unknown;
      continue;
    }
    if (!request.reason.empty()) state.last_errors[id] = request.reason;
    if (request.dead_letter) {
      if (state.options.dead_letter_queue) {
        dead_letter(self, id, entry->attempt, "rejected by consumer");
      } else {
        report_protocol_error(self, sender,
                              "nack to dead-letter message " + std::to_string(id) +
                                  " but queue has no dead-letter queue; requeued");
        requeue(self, id, entry->attempt, std::nullopt, "rejected");
      }
    } else {
      std::optional<std::chrono::milliseconds> delay;
      if (request.delay_ms != 0) delay = std::chrono::milliseconds(request.delay_ms);
      requeue(self, id, entry->attempt, delay, "nacked");
    }
  }
  if (unknown != 0) {
    report_protocol_error(
        self, sender,
        "nack for " + std::to_string(unknown) + " id(s) not delivered to this consumer");
  }
  dispatch(self);
}

void on_extend(queue_actor* self, const std::vector<std::uint64_t>& ids,
               std::uint32_t extension_ms) {
  auto& state = self->state;
  const auto consumer = serial_of(state, caf::actor_cast<caf::actor_addr>(self->current_sender()));
  const auto deadline = self->clock().now() + std::chrono::milliseconds(extension_ms);
  for (auto id : ids) {
    // A later deadline needs no new tick: the scheduled one finds it.
    auto* entry = state.in_flight.find(id);
    if (entry && entry->consumer == consumer && entry->deadline < deadline) {
      entry->deadline = deadline;
    }
  }
}

void on_tick(queue_actor* self, std::uint64_t generation) {
  auto& state = self->state;
  // A superseded tick: the one that replaced it did (or will do) the scan.
  if (generation != state.tick_generation) return;
  state.tick_at.reset();
  const auto now = self->clock().now();
  expire_deliveries(self, now);
  while (!state.delayed.empty() && state.delayed.begin()->first <= now) {
    state.ready.push_back(state.delayed.begin()->second);
    state.delayed.erase(state.delayed.begin());
  }
  dispatch(self);
}

}  // namespace weir::detail

// Taking deliveries back: after a nack, a missed ack deadline or a consumer's
// end they are ready again after a backoff, or go to the dead-letter queue.

#include <algorithm>

#include <spdlog/spdlog.h>
#include <caf/all.hpp>

#include "queue_state.hpp"

namespace weir::detail {

void dead_letter(queue_actor* self, std::uint64_t id, std::uint32_t attempts, std::string reason) {
  auto& state = self->state;
  state.recent_bodies.take(id);
  auto message = state.log->read(id);
  std::string last_error;
  if (auto it = state.last_errors.find(id); it != state.last_errors.end()) {
    last_error = it->second;
  }
  if (!message) {
    // Unreadable (corrupt on disk): it can never be delivered, so record it as
    // a dead letter with the reason instead of retrying it forever.
    spdlog::error("queue {}: message {} is unreadable, dead-lettering it: {}", state.options.name,
                  id, message.error().to_string());
    dead_letter_entry entry{id, attempts, "unreadable: " + message.error().to_string(), last_error,
                            ""};
    if (stop_if_refused(self, state.log->dead_letter({&entry, 1}, {}), "dead-letter mark")) return;
    ++state.counters->dead_lettered;
    state.last_errors.erase(id);
    return;
  }
  publish_batch batch;
  batch.producer_id = state.dlq_producer_id;
  batch.epoch = state.dlq_epoch;
  batch.first_seq = state.dlq_next_seq++;
  message_data data;
  data.key = std::move(message->key);
  // Its own copy: a slice would keep this queue's whole log record alive in
  // the dead-letter queue's cache, which may hold it for a long time.
  data.payload = message->payload.owned();
  data.headers = std::move(message->headers);
  data.headers.push_back({"x-dead-letter-reason", reason});
  data.headers.push_back({"x-original-queue", state.options.name});
  data.headers.push_back({"x-original-id", std::to_string(id)});
  data.headers.push_back({"x-attempts", std::to_string(attempts)});
  if (!last_error.empty()) data.headers.push_back({"x-last-error", last_error});
  data.publish_time_ns = message->publish_time_ns;
  batch.messages.push_back(std::move(data));
  state.dlq_pending.emplace(batch.first_seq, dead_letter_pending{id, attempts, reason, last_error});
  state.dead_lettering.insert(id);
  spdlog::info("queue {}: message {} to the dead-letter queue after {} deliveries: {}",
               state.options.name, id, attempts, reason);
  self->send(state.options.dead_letter_queue, publish_atom::value, std::move(batch));
}

void requeue(queue_actor* self, std::uint64_t id, std::uint32_t attempts,
             std::optional<std::chrono::milliseconds> delay, const std::string& why) {
  auto& state = self->state;
  if (state.options.max_deliveries != 0 && attempts >= state.options.max_deliveries) {
    dead_letter(self, id, attempts, "max_deliveries exceeded (" + why + ")");
    return;
  }
  const auto wait = delay ? *delay : state.options.retry_backoff.delay(attempts, state.random);
  if (wait.count() <= 0) {
    state.ready.push_back({id, attempts});
  } else {
    state.delayed.emplace(self->clock().now() + wait, ready_entry{id, attempts});
  }
}

void drop_consumer(queue_actor* self, const caf::actor_addr& consumer, const char* why) {
  auto& state = self->state;
  const auto serial = serial_of(state, consumer);
  std::vector<std::pair<std::uint64_t, std::uint32_t>> held;
  state.in_flight.for_each([&](std::uint64_t id, const in_flight_entry& entry) {
    if (entry.consumer == serial) held.emplace_back(id, entry.attempt);
  });
  std::sort(held.begin(), held.end());
  for (const auto& [id, attempt] : held) {
    state.in_flight.erase(id);
    // Ready again at once: the consumer is gone, there is nothing to back off from.
    requeue(self, id, attempt, std::chrono::milliseconds(0), why);
  }
  state.consumers.erase(consumer);
  state.counters->consumers = state.consumers.size();
  if (!held.empty()) {
    spdlog::info("queue {}: consumer {} {}; {} deliveries ready again", state.options.name,
                 caf::to_string(consumer), why, held.size());
  }
}

void expire_deliveries(queue_actor* self, time_point now) {
  auto& state = self->state;
  std::vector<std::pair<std::uint64_t, in_flight_entry>> expired;
  std::optional<time_point> earliest;
  state.in_flight.for_each([&](std::uint64_t id, const in_flight_entry& entry) {
    if (entry.deadline <= now) {
      expired.emplace_back(id, entry);
    } else if (!earliest || entry.deadline < *earliest) {
      earliest = entry.deadline;
    }
  });
  std::sort(expired.begin(), expired.end(),
            [](const auto& a, const auto& b) { return a.first < b.first; });
  for (const auto& [id, entry] : expired) {
    release(self, entry.consumer, id);
    state.last_errors.try_emplace(id, "ack deadline expired");
    requeue(self, id, entry.attempt, std::nullopt, "ack deadline expired");
  }
  if (earliest) {
    schedule_tick_at(self, std::max(*earliest, now + deadline_scan_interval(state.options)));
  }
}

}  // namespace weir::detail

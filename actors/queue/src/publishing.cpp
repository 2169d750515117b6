// The queue's handlers for publishes: a producer's, and the confirmations of
// what the queue itself publishes (dead letters, replays) into other queues.

#include <algorithm>
#include <memory>
#include <span>

#include <spdlog/spdlog.h>
#include <caf/all.hpp>

#include "queue_handlers.hpp"
#include "weir/runtime/latency_trace.hpp"

namespace weir::detail {

void on_publish(queue_actor* self, publish_batch& batch) {
  auto& state = self->state;
  auto sender = self->current_sender();
  if (batch.messages.empty()) return;
  const std::uint64_t count = batch.messages.size();
  const std::uint64_t last_seq = batch.first_seq + count - 1;
  std::size_t skip = 0;
  if (batch.producer_id != 0) {
    auto [it, inserted] = state.producers.try_emplace(batch.producer_id);
    auto& producer = it->second;
    if (inserted) {
      if (auto known = state.log->producer(batch.producer_id)) {
        producer = {known->epoch, known->last_seq, known->last_seq};
      }
    }
    if (batch.epoch < producer.epoch) {
      report_protocol_error(self, sender,
                            "publish from producer " + std::to_string(batch.producer_id) +
                                " epoch " + std::to_string(batch.epoch) +
                                " is fenced off by epoch " + std::to_string(producer.epoch),
                            protocol_error_kind::fenced);
      return;
    }
    if (batch.epoch > producer.epoch) producer = {batch.epoch, 0, 0};
    if (batch.first_seq > producer.accepted + 1) {
      report_protocol_error(self, sender,
                            "publish from producer " + std::to_string(batch.producer_id) +
                                " skips sequence numbers: expected " +
                                std::to_string(producer.accepted + 1) + ", got " +
                                std::to_string(batch.first_seq));
      return;
    }
    skip = static_cast<std::size_t>(
        std::min<std::uint64_t>(count, producer.accepted + 1 - batch.first_seq));
    state.counters->duplicates += skip;
    if (skip == count) {
      // All resends. Confirm again what is durable: the first confirm may be lost.
      if (producer.durable >= batch.first_seq) {
        self->send(caf::actor_cast<caf::actor>(sender), confirm_atom::value,
                   confirmation{state.options.name, batch.producer_id, batch.epoch,
                                std::min(producer.durable, last_seq)});
      }
      return;
    }
  }
  std::vector<outgoing_message> out(count - skip);
  for (std::size_t i = skip; i < count; ++i) {
    auto& m = batch.messages[i];
    auto& o = out[i - skip];
    o.producer_id = batch.producer_id;
    o.producer_epoch = batch.epoch;
    o.producer_seq = batch.first_seq + i;
    o.key = m.key;
    o.payload = m.payload;
    o.headers = m.headers;
    o.publish_time_ns = m.publish_time_ns;
  }
  auto queue = caf::actor_cast<caf::actor>(self);
  const auto traced = out.front().publish_time_ns;
  latency_trace::mark(latency_trace::stage::queue_received, traced);
  auto published = state.log->publish(
      out,
      [queue, sender, producer = batch.producer_id, epoch = batch.epoch, last_seq,
       confirmed = count - skip, traced](const status& outcome) {
        latency_trace::mark(latency_trace::stage::log_synced, traced);
        // On the log's writer thread: hand the outcome to the actor.
        caf::anon_send(queue, durable_atom::value, producer, epoch, last_seq, confirmed,
                       outcome.is_ok(), outcome.to_string(), sender);
      },
      state.next_publish_id);
  if (!published) {
    ++state.counters->storage_errors;
    report_protocol_error(self, sender,
                          "publish refused by the log: " + published.error().to_string(),
                          protocol_error_kind::store_failed);
    stop_if_log_failed(self);
    return;
  }
  state.next_publish_id = *published + (count - skip);
  state.publish_end_ids.push_back(state.next_publish_id);
  state.recent_bodies.keep(*published, std::span(batch.messages).subspan(skip), batch.producer_id,
                           batch.first_seq + skip);
  if (batch.producer_id != 0) state.producers[batch.producer_id].accepted = last_seq;
}

void on_durable(queue_actor* self, std::uint64_t producer_id, std::uint64_t epoch,
                std::uint64_t up_to_seq, std::uint64_t count, bool ok, const std::string& error,
                const caf::strong_actor_ptr& producer) {
  auto& state = self->state;
  std::uint64_t end_id = 0;  // one per accepted publish, in order; never missing
  if (!state.publish_end_ids.empty()) {
    end_id = state.publish_end_ids.front();
    state.publish_end_ids.pop_front();
  }
  if (!ok) {
    ++state.counters->storage_errors;
    spdlog::error("queue {}: publish failed: {}", state.options.name, error);
    if (state.failed_publishes_to_come > 0) {
      --state.failed_publishes_to_come;  // one more of a failure already handled
    } else {
      // Every publish appended after the failed one failed with it, and
      // the log refused those since: the log holds exactly what it wrote.
      // Accept resends again from there, and forget the bodies of the ids
      // the log will give to the next publishes.
      state.failed_publishes_to_come = state.publish_end_ids.size();
      state.next_publish_id = state.log->stats().next_id;
      state.recent_bodies.forget_from(state.next_publish_id);
      for (auto& [id, entry] : state.producers) {
        auto known = state.log->producer(id);
        entry.accepted = known && known->epoch == entry.epoch ? known->last_seq : 0;
        entry.durable = std::min(entry.durable, entry.accepted);
      }
    }
    report_protocol_error(self, producer, "publish not stored: " + error,
                          protocol_error_kind::store_failed);
    stop_if_log_failed(self);
    return;
  }
  count_published_below(*state.counters, end_id);
  state.counters->confirmed += count;
  if (producer_id != 0) {
    auto& entry = state.producers[producer_id];
    if (entry.epoch == epoch) entry.durable = std::max(entry.durable, up_to_seq);
  }
  if (producer) {
    self->send(caf::actor_cast<caf::actor>(producer), confirm_atom::value,
               confirmation{state.options.name, producer_id, epoch, up_to_seq});
  }
  dispatch(self);
}

void on_confirm(queue_actor* self, const confirmation& c) {
  auto& state = self->state;
  if (c.producer_id == state.replay_producer_id && c.epoch == state.replay_epoch) {
    // The target holds the replayed messages durably: now they leave this queue.
    std::vector<id_range> done;
    std::vector<std::shared_ptr<queue_state::replay_request>> finished;
    for (auto it = state.replaying.begin();
         it != state.replaying.end() && it->first <= c.up_to_seq;) {
      done.push_back({it->second.id, it->second.id + 1});
      if (--it->second.request->left == 0) finished.push_back(it->second.request);
      it = state.replaying.erase(it);
    }
    if (done.empty()) return;
    // Answer once the acks are durable: then the messages are gone from here.
    const auto ticket = state.next_replay_ticket++;
    for (auto& request : finished) state.replay_answers.emplace(ticket, request);
    auto queue = caf::actor_cast<caf::actor>(self);
    const auto stored = state.log->ack(done, [queue, ticket](const status&) {
      caf::anon_send(queue, replayed_atom::value, ticket);
    });
    if (!stored.is_ok()) {
      // Refused at once, so the callback will not answer the replay: answer it
      // now. The moved messages stay here too until their acks are stored (a
      // restart delivers them again): at least once, never lost.
      caf::anon_send(queue, replayed_atom::value, ticket);
      stop_if_refused(self, stored, "replay acks");
    }
    return;
  }
  // The dead-letter queue confirmed our publishes: now they leave this queue.
  if (c.producer_id != state.dlq_producer_id || c.epoch != state.dlq_epoch) return;
  std::vector<dead_letter_entry> entries;
  for (auto it = state.dlq_pending.begin();
       it != state.dlq_pending.end() && it->first <= c.up_to_seq;) {
    auto& p = it->second;
    entries.push_back({p.id, p.attempts, p.reason, p.last_error, c.queue});
    state.dead_lettering.erase(p.id);
    state.last_errors.erase(p.id);
    it = state.dlq_pending.erase(it);
  }
  if (!entries.empty()) {
    if (stop_if_refused(self, state.log->dead_letter(entries, {}), "dead-letter marks")) return;
    state.counters->dead_lettered += entries.size();
  }
}

void on_replayed(queue_actor* self, std::uint64_t ticket) {
  auto& answers = self->state.replay_answers;
  auto range = answers.equal_range(ticket);
  for (auto it = range.first; it != range.second; ++it) {
    it->second->promise.deliver(it->second->total);
  }
  answers.erase(range.first, range.second);
}

std::vector<delivery> on_list(queue_actor* self, std::uint64_t from_id, std::uint32_t limit) {
  auto& state = self->state;
  std::vector<delivery> listed;
  state.log->for_each_ready(from_id, std::min<std::uint32_t>(limit, 10'000),
                            [&](std::uint64_t id, std::uint32_t attempts) {
                              if (state.in_flight.contains(id)) return;  // out with a consumer
                              auto message = state.log->read(id);
                              if (!message) return;
                              delivery d;
                              d.id = id;
                              d.attempt = attempts;
                              d.producer_id = message->producer_id;
                              d.producer_seq = message->producer_seq;
                              d.data = {std::move(message->key), std::move(message->payload),
                                        std::move(message->headers), message->publish_time_ns};
                              listed.push_back(std::move(d));
                            });
  return listed;
}

caf::result<std::uint64_t> on_replay(queue_actor* self, caf::actor target, std::uint32_t limit) {
  auto& state = self->state;
  refill(self);
  publish_batch batch;
  batch.producer_id = state.replay_producer_id;
  batch.epoch = state.replay_epoch;
  batch.first_seq = state.replay_next_seq;
  std::vector<std::uint64_t> ids;
  while (ids.size() < limit && !state.ready.empty()) {
    const auto next = state.ready.front();
    state.ready.pop_front();
    auto message = state.log->read(next.id);
    if (!message) continue;
    // Dead-letter headers stay: they tell the story of the message.
    batch.messages.push_back({std::move(message->key), std::move(message->payload),
                              std::move(message->headers), message->publish_time_ns});
    ids.push_back(next.id);
    state.recent_bodies.take(next.id);
  }
  if (ids.empty()) return std::uint64_t{0};
  auto promise = self->make_response_promise<std::uint64_t>();
  auto request = std::make_shared<queue_state::replay_request>(
      queue_state::replay_request{ids.size(), ids.size(), promise});
  for (auto id : ids) {
    state.replaying.emplace(state.replay_next_seq++, queue_state::replay_pending{id, request});
  }
  spdlog::info("queue {}: replaying {} messages", state.options.name, ids.size());
  self->send(target, publish_atom::value, std::move(batch));
  return promise;
}

}  // namespace weir::detail

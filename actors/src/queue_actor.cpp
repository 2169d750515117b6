#include <algorithm>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <random>
#include <span>
#include <unordered_map>
#include <unordered_set>

#include <spdlog/spdlog.h>
#include <caf/all.hpp>

#include "weir/actors/producer.hpp"
#include "weir/actors/queue.hpp"
#include "weir/runtime/id_map.hpp"
#include "weir/runtime/latency_trace.hpp"
#include "weir/runtime/memory_file_system.hpp"
#include "weir/runtime/supervisor.hpp"
#include "wire_codec.hpp"

namespace weir {

namespace {

using time_point = caf::actor_clock::time_point;
using durable_atom = caf::atom_constant<caf::atom("wdurable")>;
using tick_atom = caf::atom_constant<caf::atom("wtick")>;
using replayed_atom = caf::atom_constant<caf::atom("wreplayed")>;

struct consumer_entry {
  caf::actor handle;
  std::uint32_t serial = 0;       // names it in in_flight; never 0
  std::uint32_t window = 0;       // credit: most deliveries it may hold unacked
  std::uint32_t outstanding = 0;  // deliveries it holds unacked
};

struct in_flight_entry {
  // The holder's consumer_entry::serial: a number, not an actor_addr, whose
  // copy and release would be two atomic operations per delivery.
  std::uint32_t consumer = 0;
  std::uint32_t attempt = 0;
  time_point deadline;  // of its ack; found by a scan at each tick, see expire_deliveries
};

struct producer_entry {
  std::uint64_t epoch = 0;
  std::uint64_t accepted = 0;  // highest sequence handed to the log
  std::uint64_t durable = 0;   // highest sequence confirmed
};

struct ready_entry {
  std::uint64_t id;
  std::uint32_t attempts;  // deliveries so far
};

struct dead_letter_pending {
  std::uint64_t id;
  std::uint32_t attempts;
  std::string reason;
  std::string last_error;
};

/// Bodies of recent publishes, so that a first delivery needs no disk read.
/// Ids arrive in ascending order and first deliveries take them in the same
/// order, so a deque sorted by id serves both ends without an allocation per
/// message; the few taken out of order (dead letters, replays) leave holes that
/// go when they reach the front.
class body_cache {
 public:
  struct body {
    message_data data;
    std::uint64_t producer_id = 0;
    std::uint64_t producer_seq = 0;
  };

  explicit body_cache(std::uint64_t bytes_max = 0) : bytes_max_(bytes_max) {}

  /// Keeps the bodies of ids first_id, first_id + 1, ... (larger than every id
  /// kept before) as far as the bound allows. A body may share the buffer of
  /// its whole batch (a received frame), so a batch is kept whole or its part
  /// that fits is copied: a few kept bodies never hold a large buffer alive.
  void keep(std::uint64_t first_id, std::span<message_data> batch, std::uint64_t producer_id,
            std::uint64_t first_seq) {
    std::uint64_t total = 0;
    for (const auto& data : batch) total += cost(data);
    const bool whole = bytes_ + total <= bytes_max_;
    for (std::size_t i = 0; i < batch.size(); ++i) {
      const auto bytes = cost(batch[i]);
      if (bytes_ + bytes > bytes_max_) return;
      if (!whole) batch[i].payload = batch[i].payload.owned();
      bytes_ += bytes;
      entries_.push_back({first_id + i, {std::move(batch[i]), producer_id, first_seq + i}});
    }
  }

  /// Forgets the bodies of `id` and above: the log gives a failed publish's ids to later ones.
  void forget_from(std::uint64_t id) {
    while (!entries_.empty() && entries_.back().id >= id) {
      if (!entries_.back().taken) bytes_ -= cost(entries_.back().value.data);
      entries_.pop_back();
    }
  }

  /// Takes the body of `id` out, if it is here.
  std::optional<body> take(std::uint64_t id) {
    if (entries_.empty() || id < entries_.front().id || id > entries_.back().id) {
      return std::nullopt;
    }
    auto it = entries_.front().id == id
                  ? entries_.begin()
                  : std::lower_bound(entries_.begin(), entries_.end(), id,
                                     [](const entry& e, std::uint64_t v) { return e.id < v; });
    if (it == entries_.end() || it->id != id || it->taken) return std::nullopt;
    bytes_ -= cost(it->value.data);
    std::optional<body> out = std::move(it->value);
    it->taken = true;
    it->value = {};
    while (!entries_.empty() && entries_.front().taken) entries_.pop_front();
    return out;
  }

 private:
  struct entry {
    std::uint64_t id = 0;
    body value;
    bool taken = false;
  };

  // What an entry holds, plus its bookkeeping, so that empty bodies are bounded too.
  static std::uint64_t cost(const message_data& data) {
    return data.payload.size() + data.key.size() + sizeof(entry);
  }

  std::deque<entry> entries_;  // ascending ids
  std::uint64_t bytes_ = 0;
  std::uint64_t bytes_max_ = 0;
};

struct queue_state {
  static inline const char* name = "weir.queue";
  queue_options options;
  std::shared_ptr<file_system> owned_fs;  // an in-memory queue's; outlives `log`
  std::shared_ptr<checkpoint_log> log;
  std::map<caf::actor_addr, consumer_entry> consumers;
  caf::actor_addr last_served;  // round robin between consumers
  std::uint32_t consumer_serial_last = 0;
  id_map<in_flight_entry> in_flight;
  std::deque<ready_entry> ready;
  std::multimap<time_point, ready_entry> delayed;
  std::unordered_map<std::uint64_t, std::string> last_errors;  // of messages not yet acked
  std::uint64_t log_cursor = 1;  // ids below have been taken into `ready` (or are done)
  std::uint64_t first_delivered_max = 0;  // first deliveries go in id order
  std::unordered_map<std::uint64_t, producer_entry> producers;
  // The queue publishes to its dead-letter queue as a producer of its own.
  std::uint64_t dlq_producer_id = 0;
  std::uint64_t dlq_epoch = 0;
  std::uint64_t dlq_next_seq = 1;
  std::map<std::uint64_t, dead_letter_pending> dlq_pending;  // by dlq sequence
  std::unordered_set<std::uint64_t> dead_lettering;          // ids in dlq_pending
  body_cache recent_bodies;  // bounded by options.body_cache_bytes_max
  // Replays into another queue, as a producer of our own: pending by sequence.
  std::uint64_t replay_producer_id = 0;
  std::uint64_t replay_epoch = 0;
  std::uint64_t replay_next_seq = 1;
  struct replay_request {
    std::uint64_t left;   // not yet confirmed by the target
    std::uint64_t total;  // the answer
    caf::typed_response_promise<std::uint64_t> promise;
  };
  struct replay_pending {
    std::uint64_t id;
    std::shared_ptr<replay_request> request;
  };
  std::map<std::uint64_t, replay_pending> replaying;
  // Replay requests whose acks are being written, by ticket: answered once durable.
  std::multimap<std::uint64_t, std::shared_ptr<replay_request>> replay_answers;
  std::uint64_t next_replay_ticket = 1;
  std::optional<time_point> tick_at;
  std::uint64_t tick_generation = 0;
  std::mt19937_64 random{std::random_device{}()};
  std::shared_ptr<queue_stats> counters;  // options.counters, or the queue's own
  // One past the last id of each publish the log has not yet reported on, oldest
  // first (the log reports in append order).
  std::deque<std::uint64_t> publish_end_ids;
  // The first id the next publish must get. After a failed append the log gives
  // its ids to later appends; until the queue has heard of the failure, a publish
  // that would take them is refused, so that no producer's later messages are
  // stored (and confirmed, which covers all before them) without its earlier ones.
  std::uint64_t next_publish_id = 1;
  // Publishes the log will still report as failed: those behind the first failure
  // of a write, all appended before the queue heard of it.
  std::size_t failed_publishes_to_come = 0;
};

using queue_actor = caf::stateful_actor<queue_state>;

void dispatch(queue_actor* self);

/// Counts the ids below `end_id` not counted yet as published: stored by the log.
void count_published_below(queue_stats& counters, std::uint64_t end_id) {
  if (end_id <= counters.published_end_id) return;
  counters.published += end_id - counters.published_end_id;
  counters.published_end_id = end_id;
}

void report_protocol_error(queue_actor* self, const caf::strong_actor_ptr& to, std::string what,
                           protocol_error_kind kind = protocol_error_kind::refused) {
  auto& state = self->state;
  ++state.counters->protocol_errors;
  spdlog::warn("queue {}: {}", state.options.name, what);
  if (to) {
    self->send(caf::actor_cast<caf::actor>(to), protocol_error_atom::value,
               protocol_error{state.options.name, std::move(what), kind});
  }
}

/// After a failed fdatasync the log refuses every append until it is reopened,
/// and what it holds is only known by reading it back: the queue stops, so that
/// its supervisor restarts it on a fresh open of the log (recovery reads what
/// the disk holds, producers resend what was not confirmed). True when it stops.
bool stop_if_log_failed(queue_actor* self) {
  auto& state = self->state;
  auto failure = state.log->failure();
  if (failure.is_ok()) return false;
  spdlog::error("queue {}: its log refuses appends ({}); restarting the queue on what the disk "
                "holds",
                state.options.name, failure.to_string());
  self->quit(caf::make_error(caf::sec::runtime_error, failure.to_string()));
  return true;
}

/// Ack deadlines have no index (keeping one cost two tree updates per delivery):
/// a tick scans the in-flight deliveries. Ticks come at the earliest deadline,
/// but no closer together than this, so expiry is at most this late.
caf::actor_clock::duration_type deadline_scan_interval(const queue_options& options) {
  return std::clamp<caf::actor_clock::duration_type>(
      options.ack_timeout / 16, std::chrono::milliseconds(1), std::chrono::milliseconds(100));
}

/// A tick at `at`, unless one is due sooner.
void schedule_tick_at(queue_actor* self, time_point at) {
  auto& state = self->state;
  if (state.tick_at && *state.tick_at <= at) return;
  state.tick_at = at;
  const auto now = self->clock().now();
  const auto wait = at > now ? at - now : caf::actor_clock::duration_type{0};
  self->delayed_send(self, wait, tick_atom::value, ++state.tick_generation);
}

/// A tick for the first delayed message to become ready.
void schedule_tick(queue_actor* self) {
  if (!self->state.delayed.empty()) schedule_tick_at(self, self->state.delayed.begin()->first);
}

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
    state.log->dead_letter({&entry, 1}, {});
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

/// A delivery came back unprocessed: ready again (after `delay`), or a dead letter.
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
      const auto take = std::min<std::size_t>(
          {consumer.window - consumer.outstanding, state.options.delivery_batch_max,
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
      state.log->record_attempts(attempts, {});
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

/// The serial of `consumer`, or 0 (which holds nothing) when it is not subscribed.
std::uint32_t serial_of(const queue_state& state, const caf::actor_addr& consumer) {
  auto it = state.consumers.find(consumer);
  return it == state.consumers.end() ? 0 : it->second.serial;
}

/// Takes a delivery held by consumer `serial` out of flight; nothing when it holds
/// no such id (the caller reports it). The consumer's outstanding count is the caller's.
std::optional<in_flight_entry> take_in_flight(queue_state& state, std::uint32_t consumer,
                                              std::uint64_t id) {
  auto* entry = state.in_flight.find(id);
  if (!entry || entry->consumer != consumer) return std::nullopt;
  std::optional<in_flight_entry> taken = std::move(*entry);
  state.in_flight.erase(id);
  return taken;
}

void note_returned(queue_state& state, std::uint32_t consumer, std::uint32_t count) {
  // A scan: there are few consumers, and this runs once per ack message.
  for (auto& [address, c] : state.consumers) {
    if (c.serial == consumer) {
      c.outstanding -= std::min(c.outstanding, count);
      return;
    }
  }
}

/// Releases a delivery held by `consumer`; nothing when it holds no such id (the caller reports
/// it).
std::optional<in_flight_entry> release(queue_actor* self, std::uint32_t consumer,
                                       std::uint64_t id) {
  auto entry = take_in_flight(self->state, consumer, id);
  if (entry) note_returned(self->state, consumer, 1);
  return entry;
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

/// Requeues in-flight deliveries past their ack deadline, in id order, and
/// schedules the tick for the earliest deadline left.
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

/// One log line per thing recovery cut, skipped or passed over: bad bytes on
/// disk are reported where an operator looks, not only by `weir inspect`.
void report_recovery(const std::string& queue, const recovery_report& report) {
  for (const auto& cut : report.truncations) {
    spdlog::warn("queue {}: recovery cut {} bytes at offset {} of {}: {}", queue, cut.bytes,
                 cut.offset, cut.file, cut.reason);
  }
  for (const auto& bad : report.corruptions) {
    spdlog::warn("queue {}: recovery skipped {} corrupt bytes at offset {} of {}: {}", queue,
                 bad.bytes, bad.offset, bad.file, bad.reason);
  }
  for (const auto& warning : report.warnings)
    spdlog::warn("queue {}: recovery: {}", queue, warning);
  if (report.records_replayed > 0) {
    spdlog::info("queue {}: recovered in {:.3f} s ({} records replayed{})", queue, report.seconds,
                 report.records_replayed,
                 report.snapshot_sequence
                     ? " after snapshot " + std::to_string(*report.snapshot_sequence)
                     : std::string());
  }
}

caf::behavior queue_behavior(queue_actor* self, queue_options options,
                             std::shared_ptr<file_system> owned_fs,
                             std::shared_ptr<checkpoint_log> log) {
  auto& state = self->state;
  state.options = std::move(options);
  state.owned_fs = std::move(owned_fs);
  state.log = std::move(log);
  state.recent_bodies = body_cache{state.options.body_cache_bytes_max};
  state.counters =
      state.options.counters ? state.options.counters : std::make_shared<queue_stats>();
  state.counters->name = state.options.name;
  state.counters->consumers = 0;  // a new incarnation starts without any
  state.dlq_producer_id = std::hash<std::string>{}("weir.dlq." + state.options.name) | 1;
  state.dlq_epoch = static_cast<std::uint64_t>(std::chrono::system_clock::now().time_since_epoch() /
                                               std::chrono::microseconds(1));
  state.replay_producer_id = std::hash<std::string>{}("weir.replay." + state.options.name) | 1;
  state.replay_epoch = state.dlq_epoch;
  const auto recovered = state.log->stats();
  // Messages from before the queue started are not counted; those an earlier
  // incarnation stored but heard no durable notice for are counted now.
  if (state.counters->published_end_id == 0) {
    state.counters->published_end_id = recovered.next_id;
  } else {
    count_published_below(*state.counters, recovered.next_id);
  }
  state.next_publish_id = recovered.next_id;
  if (recovered.ready > 0) {
    spdlog::info("queue {}: recovered {} ready messages ({} delivered before, unacked)",
                 state.options.name, recovered.ready, recovered.unacked);
  }
  self->set_down_handler([self](caf::down_msg& msg) {
    if (self->state.consumers.count(msg.source) != 0) {
      drop_consumer(self, msg.source, "is down");
      dispatch(self);
    }
  });
  dispatch(self);
  return {
      [self](publish_atom, publish_batch& batch) {
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
            out, [queue, sender, producer = batch.producer_id, epoch = batch.epoch, last_seq,
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
        state.recent_bodies.keep(*published, std::span(batch.messages).subspan(skip),
                                 batch.producer_id, batch.first_seq + skip);
        if (batch.producer_id != 0) state.producers[batch.producer_id].accepted = last_seq;
      },
      [self](durable_atom, std::uint64_t producer_id, std::uint64_t epoch, std::uint64_t up_to_seq,
             std::uint64_t count, bool ok, const std::string& error,
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
      },
      [self](confirm_atom, const confirmation& c) {
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
          state.log->ack(done, [queue, ticket](const status&) {
            caf::anon_send(queue, replayed_atom::value, ticket);
          });
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
          state.log->dead_letter(entries, {});
          state.counters->dead_lettered += entries.size();
        }
      },
      [self](subscribe_atom, std::int64_t credit) {
        auto& state = self->state;
        auto sender = self->current_sender();
        if (credit <= 0 || credit > std::int64_t{1} << 24) {
          report_protocol_error(self, sender,
                                "subscribe with credit " + std::to_string(credit) +
                                    " (must be 1.." + std::to_string(1 << 24) + ")");
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
      },
      [self](credit_atom, std::int64_t more) {
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
      },
      [self](unsubscribe_atom) {
        drop_consumer(self, caf::actor_cast<caf::actor_addr>(self->current_sender()),
                      "unsubscribed");
        dispatch(self);
      },
      [self](ack_atom, const std::vector<id_range>& ranges) {
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
          if (auto stored = state.log->ack(valid, {}); !stored) {
            ++state.counters->storage_errors;
            spdlog::error("queue {}: ack not stored: {}", state.options.name, stored.to_string());
            if (stop_if_log_failed(self)) return;
          }
          for (const auto& r : valid) state.counters->acked += r.end - r.begin;
        }
        if (unknown != 0) {
          report_protocol_error(self, sender,
                                "ack for " + std::to_string(unknown) +
                                    " id(s) not delivered to this consumer (or already acked)");
        }
        dispatch(self);
      },
      [self](nack_atom, const nack_request& request) {
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
      },
      [self](extend_atom, const std::vector<std::uint64_t>& ids, std::uint32_t extension_ms) {
        auto& state = self->state;
        const auto consumer =
            serial_of(state, caf::actor_cast<caf::actor_addr>(self->current_sender()));
        const auto deadline = self->clock().now() + std::chrono::milliseconds(extension_ms);
        for (auto id : ids) {
          // A later deadline needs no new tick: the scheduled one finds it.
          auto* entry = state.in_flight.find(id);
          if (entry && entry->consumer == consumer && entry->deadline < deadline) {
            entry->deadline = deadline;
          }
        }
      },
      [self](tick_atom, std::uint64_t generation) {
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
      },
      [self](replayed_atom, std::uint64_t ticket) {
        auto& answers = self->state.replay_answers;
        auto range = answers.equal_range(ticket);
        for (auto it = range.first; it != range.second; ++it) {
          it->second->promise.deliver(it->second->total);
        }
        answers.erase(range.first, range.second);
      },
      [self](list_atom, std::uint64_t from_id, std::uint32_t limit) -> std::vector<delivery> {
        auto& state = self->state;
        std::vector<delivery> listed;
        state.log->for_each_ready(from_id, std::min<std::uint32_t>(limit, 10'000),
                                  [&](std::uint64_t id, std::uint32_t attempts) {
                                    if (state.in_flight.contains(id))
                                      return;  // out with a consumer
                                    auto message = state.log->read(id);
                                    if (!message) return;
                                    delivery d;
                                    d.id = id;
                                    d.attempt = attempts;
                                    d.producer_id = message->producer_id;
                                    d.producer_seq = message->producer_seq;
                                    d.data = {std::move(message->key), std::move(message->payload),
                                              std::move(message->headers),
                                              message->publish_time_ns};
                                    listed.push_back(std::move(d));
                                  });
        return listed;
      },
      [self](replay_atom, caf::actor target, std::uint32_t limit) -> caf::result<std::uint64_t> {
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
          state.replaying.emplace(state.replay_next_seq++,
                                  queue_state::replay_pending{id, request});
        }
        spdlog::info("queue {}: replaying {} messages", state.options.name, ids.size());
        self->send(target, publish_atom::value, std::move(batch));
        return promise;
      },
      [self](stats_atom) -> queue_stats {
        auto& state = self->state;
        auto stats = *state.counters;
        stats.unacked = state.in_flight.size();
        stats.delayed = state.delayed.size();
        stats.dead_lettering = state.dlq_pending.size();
        // Ids below the cursor are tracked here; those above it are all still ready
        // in the log (acks are written asynchronously, so the log's own totals lag).
        stats.ready = state.ready.size() + state.log->count_ready_from(state.log_cursor);
        stats.unacked += state.replaying.size();
        // Called on the actor's own thread, so the reader side of its mailbox
        // (fifo_inbox::size moves arrivals into the queue it reads) is safe here;
        // from any other thread it would race with the actor.
        stats.mailbox = self->mailbox().size();
        const auto log = state.log->stats();
        stats.log_bytes = log.log_bytes;
        stats.log_segments = log.segments;
        stats.log_segments_reused = log.segments_reused;
        stats.fsync_seconds = log.fsync_seconds;
        return stats;
      },
  };
}

}  // namespace

void add_actor_types(caf::actor_system_config& config) {
  add_supervisor_types(config);
  wire::add_wire_types(config);
  config.add_message_type<message_header>("weir::message_header");
  config.add_message_type<std::vector<message_header>>("std::vector<weir::message_header>");
  config.add_message_type<id_range>("weir::id_range");
  config.add_message_type<std::vector<id_range>>("std::vector<weir::id_range>");
  config.add_message_type<message_data>("weir::message_data");
  config.add_message_type<std::vector<message_data>>("std::vector<weir::message_data>");
  config.add_message_type<publish_batch>("weir::publish_batch");
  config.add_message_type<confirmation>("weir::confirmation");
  config.add_message_type<delivery>("weir::delivery");
  config.add_message_type<std::vector<delivery>>("std::vector<weir::delivery>");
  config.add_message_type<delivery_batch>("weir::delivery_batch");
  config.add_message_type<nack_request>("weir::nack_request");
  config.add_message_type<protocol_error>("weir::protocol_error");
  config.add_message_type<queue_stats>("weir::queue_stats");
  config.add_message_type<producer_stats>("weir::producer_stats");
}

result<caf::actor> spawn_queue(caf::actor_system& system, file_system& fs, queue_options options) {
  if (options.name.empty()) return status{errc::invalid_argument, "queue without a name"};
  if (options.max_deliveries != 0 && !options.dead_letter_queue) {
    return status{errc::invalid_argument,
                  "queue " + options.name + ": max_deliveries is " +
                      std::to_string(options.max_deliveries) +
                      " but no dead_letter_queue is configured; messages past the limit would "
                      "have nowhere to go"};
  }
  if (auto valid = options.retry_backoff.validate(); !valid) {
    return status{valid.code(), "queue " + options.name + ": " + valid.message()};
  }
  if (options.ack_timeout.count() <= 0 || options.delivery_batch_max == 0 ||
      options.ready_window < 2) {
    return status{errc::invalid_argument,
                  "queue " + options.name +
                      ": ack_timeout, delivery_batch_max and ready_window must be positive"};
  }
  std::shared_ptr<file_system> owned_fs;
  file_system* storage = &fs;
  if (!options.durable) {
    owned_fs = std::make_shared<memory_file_system>();
    storage = owned_fs.get();
    options.log.sync = sync_policy{sync_policy::mode::none, {}};
    options.log.spare_segments_max = 0;  // a spare in memory only holds memory
    if (options.data_dir.empty()) options.data_dir = "/memory/" + options.name;
  }
  auto log = checkpoint_log::open(*storage, options.data_dir, options.log);
  if (!log) {
    return status{log.error().code(), "queue " + options.name + ": " + log.error().message()};
  }
  report_recovery(options.name, (*log)->recovery());
  std::shared_ptr<checkpoint_log> shared = std::move(*log);
  return system.spawn(queue_behavior, std::move(options), std::move(owned_fs), std::move(shared));
}

}  // namespace weir

// The queue actor: its start (recovery report, counters, producer identities
// for dead letters and replays), the table routing each message to its handler
// (queue_handlers.hpp), and spawn_queue.

#include <functional>
#include <memory>

#include <spdlog/spdlog.h>
#include <caf/all.hpp>

#include "queue_handlers.hpp"
#include "weir/runtime/memory_file_system.hpp"

namespace weir {

namespace detail {

void count_published_below(queue_stats& counters, std::uint64_t end_id) {
  if (end_id <= counters.published_end_id) return;
  counters.published += end_id - counters.published_end_id;
  counters.published_end_id = end_id;
}

void report_protocol_error(queue_actor* self, const caf::strong_actor_ptr& to, std::string what,
                           protocol_error_kind kind) {
  auto& state = self->state;
  ++state.counters->protocol_errors;
  spdlog::warn("queue {}: {}", state.options.name, what);
  if (to) {
    self->send(caf::actor_cast<caf::actor>(to), protocol_error_atom::value,
               protocol_error{state.options.name, std::move(what), kind});
  }
}

bool stop_if_log_failed(queue_actor* self) {
  auto& state = self->state;
  auto failure = state.log->failure();
  if (failure.is_ok()) return false;
  spdlog::error(
      "queue {}: its log refuses appends ({}); restarting the queue on what the disk "
      "holds",
      state.options.name, failure.to_string());
  self->quit(caf::make_error(caf::sec::runtime_error, failure.to_string()));
  return true;
}

bool stop_if_refused(queue_actor* self, const status& stored, const char* what) {
  if (stored.is_ok()) return false;
  auto& state = self->state;
  ++state.counters->storage_errors;
  spdlog::error("queue {}: {} not stored: {}", state.options.name, what, stored.to_string());
  return stop_if_log_failed(self);
}

queue_stats on_stats(queue_actor* self) {
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
}

namespace {

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
      // Mutable: the queue moves the bodies into its cache.
      [self](publish_atom, publish_batch& batch) { on_publish(self, batch); },
      [self](durable_atom, std::uint64_t producer_id, std::uint64_t epoch, std::uint64_t up_to_seq,
             std::uint64_t count, bool ok, const std::string& error,
             const caf::strong_actor_ptr& producer) {
        on_durable(self, producer_id, epoch, up_to_seq, count, ok, error, producer);
      },
      [self](confirm_atom, const confirmation& c) { on_confirm(self, c); },
      [self](subscribe_atom, std::int64_t credit) { on_subscribe(self, credit); },
      [self](credit_atom, std::int64_t more) { on_credit(self, more); },
      [self](unsubscribe_atom) { on_unsubscribe(self); },
      [self](ack_atom, const std::vector<id_range>& ranges) { on_ack(self, ranges); },
      [self](nack_atom, const nack_request& request) { on_nack(self, request); },
      [self](extend_atom, const std::vector<std::uint64_t>& ids, std::uint32_t extension_ms) {
        on_extend(self, ids, extension_ms);
      },
      [self](tick_atom, std::uint64_t generation) { on_tick(self, generation); },
      [self](replayed_atom, std::uint64_t ticket) { on_replayed(self, ticket); },
      [self](list_atom, std::uint64_t from_id, std::uint32_t limit) -> std::vector<delivery> {
        return on_list(self, from_id, limit);
      },
      [self](replay_atom, caf::actor target, std::uint32_t limit) -> caf::result<std::uint64_t> {
        return on_replay(self, std::move(target), limit);
      },
      [self](stats_atom) -> queue_stats { return on_stats(self); },
  };
}

}  // namespace

}  // namespace detail

status check_delivery_limit(std::uint32_t max_deliveries, bool has_dead_letter_queue) {
  if (max_deliveries == 0 || has_dead_letter_queue) return {};
  return {errc::invalid_argument,
          "max_deliveries is " + std::to_string(max_deliveries) +
              " but no dead_letter_queue is configured; messages past the limit would have "
              "nowhere to go (set max_deliveries to 0 or name a dead_letter_queue)"};
}

result<caf::actor> spawn_queue(caf::actor_system& system, file_system& fs, queue_options options) {
  if (options.name.empty()) return status{errc::invalid_argument, "queue without a name"};
  if (auto rule = check_delivery_limit(options.max_deliveries,
                                       static_cast<bool>(options.dead_letter_queue));
      !rule) {
    return status{rule.code(), "queue " + options.name + ": " + rule.message()};
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
  detail::report_recovery(options.name, (*log)->recovery());
  std::shared_ptr<checkpoint_log> shared = std::move(*log);
  return system.spawn(detail::queue_behavior, std::move(options), std::move(owned_fs),
                      std::move(shared));
}

}  // namespace weir

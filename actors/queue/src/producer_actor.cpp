#include <deque>

#include <spdlog/spdlog.h>
#include <caf/all.hpp>

#include "weir/queue/producer.hpp"

namespace weir {

namespace {

using resend_tick_atom = caf::atom_constant<caf::atom("wresendt")>;
using time_point = caf::actor_clock::time_point;

struct waiting_send {
  std::vector<message_data> messages;
  caf::response_promise promise;
};

/// A publish as sent, kept until confirmed. The queue is sent this same
/// message, so a remote queue encodes it without a copy and a resend costs
/// nothing to build; a local queue copies it when it takes the bodies.
struct sent_batch {
  std::uint64_t last_seq = 0;
  caf::message publish;  // (publish_atom, publish_batch)
};

struct producer_state {
  static inline const char* name = "weir.producer";
  producer_options options;
  caf::actor queue;
  std::deque<sent_batch> unconfirmed;  // ascending sequence numbers, none confirmed whole
  std::uint64_t confirmed_up_to = 0;
  std::uint64_t accepted_up_to = 0;
  std::size_t sent_batches = 0;      // unconfirmed[0..sent_batches) went to the current queue
  time_point last_progress;          // last confirm, or the first send after one
  std::deque<waiting_send> waiting;  // sends held back by a full window
  std::vector<caf::response_promise> flushes;
  // The queue could not store a publish (a full disk): resends wait for the
  // resend tick instead of following every error and gap report at once.
  bool store_failed = false;
  producer_stats stats;
};

using producer_actor = caf::stateful_actor<producer_state>;

std::uint64_t unconfirmed_count(const producer_state& state) {
  return state.accepted_up_to - state.confirmed_up_to;
}

void send_unsent(producer_actor* self) {
  auto& state = self->state;
  if (!state.queue) return;
  for (; state.sent_batches < state.unconfirmed.size(); ++state.sent_batches) {
    self->send(state.queue, state.unconfirmed[state.sent_batches].publish);
  }
}

void resend_all(producer_actor* self, const char* why) {
  auto& state = self->state;
  if (state.unconfirmed.empty()) return;
  spdlog::info("producer {}: resending {} unconfirmed messages ({})", state.options.producer_id,
               unconfirmed_count(state), why);
  if (state.sent_batches > 0) {
    state.stats.resent += state.unconfirmed[state.sent_batches - 1].last_seq - state.confirmed_up_to;
  }
  state.sent_batches = 0;
  state.last_progress = self->clock().now();
  state.store_failed = false;
  send_unsent(self);
}

bool accept(producer_actor* self, std::vector<message_data>& messages) {
  auto& state = self->state;
  // A batch larger than the window is still accepted when nothing is pending,
  // or it could never be sent.
  if (unconfirmed_count(state) != 0 &&
      unconfirmed_count(state) + messages.size() > state.options.window) {
    return false;
  }
  if (unconfirmed_count(state) == 0) state.last_progress = self->clock().now();
  const std::size_t batch_max = std::max<std::uint32_t>(1, state.options.batch_max);
  const auto total = messages.size();
  for (std::size_t from = 0; from < total; from += batch_max) {
    const auto count = std::min(batch_max, total - from);
    publish_batch batch;
    batch.producer_id = state.options.producer_id;
    batch.epoch = state.options.epoch;
    batch.first_seq = state.accepted_up_to + 1;
    if (count == total) {
      batch.messages = std::move(messages);
    } else {
      batch.messages.assign(std::make_move_iterator(messages.begin() + from),
                            std::make_move_iterator(messages.begin() + from + count));
    }
    state.accepted_up_to += count;
    state.unconfirmed.push_back(
        {state.accepted_up_to, caf::make_message(publish_atom::value, std::move(batch))});
  }
  state.stats.accepted += total;
  send_unsent(self);
  return true;
}

caf::behavior producer_behavior(producer_actor* self, caf::actor queue, producer_options options) {
  self->state.queue = std::move(queue);
  self->state.options = options;
  self->state.last_progress = self->clock().now();
  self->monitor(self->state.queue);
  self->set_down_handler([self](caf::down_msg& msg) {
    if (self->state.queue && msg.source == self->state.queue.address()) {
      spdlog::warn("producer {}: queue is down; holding {} unconfirmed until rebound",
                   self->state.options.producer_id, unconfirmed_count(self->state));
      self->state.queue = nullptr;
    }
  });
  self->delayed_send(self, options.resend_timeout, resend_tick_atom::value);
  return {
      [self](send_atom, std::vector<message_data>& messages) -> caf::result<void> {
        if (accept(self, messages)) return caf::unit;
        auto promise = self->make_response_promise();
        self->state.waiting.push_back({std::move(messages), promise});
        return promise;
      },
      [self](flush_atom) -> caf::result<void> {
        if (self->state.unconfirmed.empty()) return caf::unit;
        auto promise = self->make_response_promise();
        self->state.flushes.push_back(promise);
        return promise;
      },
      [self](confirm_atom, const confirmation& c) {
        auto& state = self->state;
        if (c.producer_id != state.options.producer_id || c.epoch != state.options.epoch ||
            c.up_to_seq <= state.confirmed_up_to) {
          return;
        }
        const auto up_to = std::min(c.up_to_seq, state.accepted_up_to);
        state.stats.confirmed += up_to - state.confirmed_up_to;
        state.confirmed_up_to = up_to;
        while (!state.unconfirmed.empty() && state.unconfirmed.front().last_seq <= up_to) {
          state.unconfirmed.pop_front();
          if (state.sent_batches > 0) --state.sent_batches;
        }
        state.last_progress = self->clock().now();
        if (state.options.on_confirmed) state.options.on_confirmed(state.confirmed_up_to);
        while (!state.waiting.empty() && accept(self, state.waiting.front().messages)) {
          state.waiting.front().promise.deliver(caf::unit);
          state.waiting.pop_front();
        }
        if (state.unconfirmed.empty()) {
          for (auto& flush : state.flushes) flush.deliver(caf::unit);
          state.flushes.clear();
        }
      },
      [self](protocol_error_atom, const protocol_error& error) {
        spdlog::warn("producer {}: queue {} says: {}", self->state.options.producer_id, error.queue,
                     error.message);
        if (error.kind == protocol_error_kind::fenced) {
          self->quit(caf::sec::runtime_error);  // a newer incarnation of us exists
          return;
        }
        // A failed store is retried after resend_timeout: at once, every failure
        // and the gaps it leaves would trigger more resends into the same full disk.
        auto& state = self->state;
        if (error.kind == protocol_error_kind::store_failed) {
          state.store_failed = true;
          state.last_progress = self->clock().now();
          return;
        }
        if (state.store_failed) return;  // a gap left by the failed store: the tick resends
        // A gap: send everything unconfirmed again, in order.
        resend_all(self, "the queue asked for it");
      },
      [self](rebind_atom, caf::actor queue) {
        self->state.queue = std::move(queue);
        self->monitor(self->state.queue);
        resend_all(self, "rebound to a new queue");
      },
      [self](resend_tick_atom) {
        auto& state = self->state;
        if (!state.unconfirmed.empty() &&
            self->clock().now() - state.last_progress >= state.options.resend_timeout) {
          resend_all(self,
                     state.store_failed ? "the queue could not store them" : "confirm timeout");
        }
        self->delayed_send(self, state.options.resend_timeout, resend_tick_atom::value);
      },
      [self](stats_atom) {
        auto stats = self->state.stats;
        stats.unconfirmed = unconfirmed_count(self->state);
        return stats;
      },
  };
}

}  // namespace

caf::actor spawn_producer(caf::actor_system& system, caf::actor queue, producer_options options) {
  return system.spawn(producer_behavior, std::move(queue), options);
}

}  // namespace weir

#include <deque>

#include <spdlog/spdlog.h>
#include <caf/all.hpp>

#include "weir/actors/producer.hpp"

namespace weir {

namespace {

using resend_tick_atom = caf::atom_constant<caf::atom("wresendt")>;
using time_point = caf::actor_clock::time_point;

struct waiting_send {
  std::vector<message_data> messages;
  caf::response_promise promise;
};

struct producer_state {
  static inline const char* name = "weir.producer";
  producer_options options;
  caf::actor queue;
  // unconfirmed[i] has sequence number confirmed_up_to + 1 + i.
  std::deque<message_data> unconfirmed;
  std::uint64_t confirmed_up_to = 0;
  std::uint64_t sent_up_to = 0;      // highest sequence number sent at least once
  time_point last_progress;          // last confirm, or the first send after one
  std::deque<waiting_send> waiting;  // sends held back by a full window
  std::vector<caf::response_promise> flushes;
  producer_stats stats;
};

using producer_actor = caf::stateful_actor<producer_state>;

std::uint64_t next_seq(const producer_state& state) {
  return state.confirmed_up_to + state.unconfirmed.size() + 1;
}

void send_unsent(producer_actor* self) {
  auto& state = self->state;
  if (!state.queue) return;
  while (state.sent_up_to + 1 < next_seq(state)) {
    publish_batch batch;
    batch.producer_id = state.options.producer_id;
    batch.epoch = state.options.epoch;
    batch.first_seq = state.sent_up_to + 1;
    const auto offset = state.sent_up_to - state.confirmed_up_to;
    const auto count =
        std::min<std::uint64_t>(state.options.batch_max, state.unconfirmed.size() - offset);
    batch.messages.assign(state.unconfirmed.begin() + static_cast<std::ptrdiff_t>(offset),
                          state.unconfirmed.begin() + static_cast<std::ptrdiff_t>(offset + count));
    state.sent_up_to += count;
    self->send(state.queue, publish_atom::value, std::move(batch));
  }
}

void resend_all(producer_actor* self, const char* why) {
  auto& state = self->state;
  if (state.unconfirmed.empty()) return;
  spdlog::info("producer {}: resending {} unconfirmed messages ({})", state.options.producer_id,
               state.unconfirmed.size(), why);
  state.stats.resent += state.sent_up_to - state.confirmed_up_to;
  state.sent_up_to = state.confirmed_up_to;
  state.last_progress = self->clock().now();
  send_unsent(self);
}

bool accept(producer_actor* self, std::vector<message_data>& messages) {
  auto& state = self->state;
  // A batch larger than the window is still accepted when nothing is pending,
  // or it could never be sent.
  if (!state.unconfirmed.empty() &&
      state.unconfirmed.size() + messages.size() > state.options.window) {
    return false;
  }
  if (state.unconfirmed.empty()) state.last_progress = self->clock().now();
  for (auto& m : messages) state.unconfirmed.push_back(std::move(m));
  state.stats.accepted += messages.size();
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
                   self->state.options.producer_id, self->state.unconfirmed.size());
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
        const auto newly =
            std::min<std::uint64_t>(c.up_to_seq - state.confirmed_up_to, state.unconfirmed.size());
        state.unconfirmed.erase(state.unconfirmed.begin(),
                                state.unconfirmed.begin() + static_cast<std::ptrdiff_t>(newly));
        state.confirmed_up_to += newly;
        state.sent_up_to = std::max(state.sent_up_to, state.confirmed_up_to);
        state.stats.confirmed += newly;
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
        if (error.message.find("fenced") != std::string::npos) {
          self->quit(caf::sec::runtime_error);  // a newer incarnation of us exists
          return;
        }
        // A gap or a failed store: send everything unconfirmed again, in order.
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
          resend_all(self, "confirm timeout");
        }
        self->delayed_send(self, state.options.resend_timeout, resend_tick_atom::value);
      },
      [self](stats_atom) {
        auto stats = self->state.stats;
        stats.unconfirmed = self->state.unconfirmed.size();
        return stats;
      },
  };
}

}  // namespace

caf::actor spawn_producer(caf::actor_system& system, caf::actor queue, producer_options options) {
  return system.spawn(producer_behavior, std::move(queue), options);
}

}  // namespace weir

#include "publisher.hpp"

#include <random>

#include <caf/all.hpp>

#include "weir/queue/producer.hpp"
#include "weir/node/remote_queue.hpp"

namespace weir::client_detail {

namespace {

using confirmed_atom = caf::atom_constant<caf::atom("wcconf")>;
using probe_atom = caf::atom_constant<caf::atom("wcprobe")>;
using tick_atom = caf::atom_constant<caf::atom("wctick")>;
using clock_type = std::chrono::steady_clock;

// How often deadlines are checked, and how long a failed probe waits before the next.
constexpr auto tick_interval = std::chrono::milliseconds(100);

/// Handed to the producer, waiting for its confirmations to reach `last_seq`.
struct unconfirmed_request {
  std::uint64_t last_seq = 0;
  publish_callback done;  // empty once called (a timeout comes before the confirm)
  clock_type::time_point deadline;
};

enum class probe_state { none, running, ok };

struct publisher_state {
  static inline const char* name = "weir.client.publisher";
  publisher_options options;
  caf::actor proxy;
  caf::actor producer;
  std::shared_ptr<publish_inbox> inbox;
  probe_state probe = probe_state::none;
  clock_type::time_point probe_deadline;
  std::deque<publish_request> queued;  // taken from the inbox, not yet accepted by the producer
  bool sending = false;                // one send to the producer at a time keeps the order
  unconfirmed_request in_flight;       // the one being sent (its last_seq is known once accepted)
  std::uint64_t accepted_seq = 0;      // the producer numbers what it accepts 1, 2, ...
  std::deque<unconfirmed_request> unconfirmed;

  // Every request is answered, also those still here when the client closes.
  ~publisher_state() {
    const status closed{
        errc::closed, "the client closed before queue " + options.queue + " confirmed the publish"};
    for (auto& request : unconfirmed) {
      if (request.done) request.done(closed);
    }
    if (sending && in_flight.done) in_flight.done(closed);
    for (auto& request : queued) request.done(closed);
    if (inbox) {
      // Called with the mutex released: a callback may publish again.
      std::deque<publish_request> left;
      {
        std::lock_guard lock(inbox->mutex);
        left.swap(inbox->requests);
      }
      for (auto& request : left) request.done(closed);
    }
  }
};

using publisher_actor = caf::stateful_actor<publisher_state>;

std::uint64_t random_producer_id() {
  std::random_device device;
  std::uint64_t id = 0;
  while (id == 0) id = (std::uint64_t{device()} << 32) ^ device();  // 0 is never de-duplicated
  return id;
}

void fail_queued(publisher_actor* self, const status& why) {
  auto queued = std::move(self->state.queued);
  self->state.queued.clear();
  for (auto& request : queued) request.done(why);
}

void send_next(publisher_actor* self) {
  auto& state = self->state;
  if (state.sending || state.probe != probe_state::ok) return;
  if (state.queued.empty()) return;
  auto request = std::move(state.queued.front());
  state.queued.pop_front();
  state.sending = true;
  state.in_flight = {0, std::move(request.done), request.deadline};
  const auto count = request.messages.size();
  // The producer answers once the messages fit its window: with the node away
  // and the window full that may take long, so expire() watches this one too.
  self->request(state.producer, caf::infinite, send_atom::value, std::move(request.messages))
      .then(
          [self, count] {
            auto& state = self->state;
            state.accepted_seq += count;
            state.in_flight.last_seq = state.accepted_seq;
            state.unconfirmed.push_back(std::move(state.in_flight));
            state.in_flight = {};
            state.sending = false;
            send_next(self);
          },
          [self](caf::error& error) {
            auto& state = self->state;
            state.sending = false;
            if (state.in_flight.done) {
              state.in_flight.done(
                  status{errc::closed, "the producer of queue " + state.options.queue +
                                           " stopped: " + self->system().render(error)});
            }
            state.in_flight = {};
            send_next(self);
          });
}

void start_probe(publisher_actor* self) {
  auto& state = self->state;
  if (state.probe != probe_state::none) return;
  state.probe = probe_state::running;
  state.probe_deadline = clock_type::now() + state.options.connect_timeout;
  self->send(self, probe_atom::value);
}

void probe_once(publisher_actor* self) {
  self->request(self->state.proxy, caf::infinite, list_atom::value, std::uint64_t{0},
                std::uint32_t{0})
      .then(
          [self](const std::vector<delivery>&) {
            self->state.probe = probe_state::ok;
            send_next(self);
          },
          [self](caf::error& error) {
            auto& state = self->state;
            // The node may still be coming up: only its answer or the deadline ends the probe.
            if (!is_unknown_queue(error) && clock_type::now() < state.probe_deadline) {
              self->delayed_send(self, tick_interval, probe_atom::value);
              return;
            }
            // A later publish probes again: the queue may exist by then.
            state.probe = probe_state::none;
            fail_queued(self, probe_failure(self->system(), error, state.options.queue,
                                            state.options.address));
          });
}

void expire(publisher_actor* self) {
  auto& state = self->state;
  const auto now = clock_type::now();
  const status late{errc::timed_out,
                    "queue " + state.options.queue + " on node " + state.options.address +
                        " did not confirm within the publish timeout; it may still store it"};
  auto expire_one = [&](unconfirmed_request& request) {
    if (request.done && now >= request.deadline) {
      request.done(late);
      request.done = nullptr;  // kept: its sequence numbers still need their confirm
    }
  };
  for (auto& request : state.unconfirmed) expire_one(request);
  if (state.sending) expire_one(state.in_flight);
  // Not sent yet: dropped, so that nothing goes out after its caller was told it failed.
  for (auto it = state.queued.begin(); it != state.queued.end();) {
    if (now < it->deadline) {
      ++it;
      continue;
    }
    it->done(status{errc::timed_out, "publish to queue " + state.options.queue + " on node " +
                                         state.options.address +
                                         " was not sent within the publish timeout"});
    it = state.queued.erase(it);
  }
}

caf::behavior publisher_behavior(publisher_actor* self, caf::actor proxy,
                                 std::shared_ptr<publish_inbox> inbox, publisher_options options) {
  auto& state = self->state;
  state.proxy = std::move(proxy);
  state.inbox = std::move(inbox);
  state.options = std::move(options);
  producer_options settings;
  // A random id: resends after a reconnect are de-duplicated by the node.
  settings.producer_id = random_producer_id();
  settings.window = state.options.window;
  settings.on_confirmed = [weak = caf::actor_cast<caf::actor_addr>(self)](std::uint64_t up_to) {
    if (auto target = caf::actor_cast<caf::actor>(weak)) {
      caf::anon_send(target, confirmed_atom::value, up_to);
    }
  };
  state.producer = spawn_producer(self->system(), state.proxy, settings);
  // The producer goes first and the publisher after it, so that a client waiting
  // for the publisher knows the producer is done with the proxy too; a producer
  // that stops by itself (fenced) takes the publisher along.
  self->monitor(state.producer);
  self->set_exit_handler(
      [self](caf::exit_msg& msg) { self->send_exit(self->state.producer, std::move(msg.reason)); });
  self->set_down_handler([self](caf::down_msg& msg) {
    if (msg.source == self->state.producer.address()) self->quit(std::move(msg.reason));
  });
  self->delayed_send(self, tick_interval, tick_atom::value);
  return {
      [self](take_atom) {
        auto& state = self->state;
        {
          std::lock_guard lock(state.inbox->mutex);
          for (auto& request : state.inbox->requests) state.queued.push_back(std::move(request));
          state.inbox->requests.clear();
        }
        if (state.probe == probe_state::none) start_probe(self);
        send_next(self);
      },
      [self](probe_atom) { probe_once(self); },
      [self](confirmed_atom, std::uint64_t up_to) {
        auto& state = self->state;
        while (!state.unconfirmed.empty() && state.unconfirmed.front().last_seq <= up_to) {
          if (state.unconfirmed.front().done) state.unconfirmed.front().done(status{});
          state.unconfirmed.pop_front();
        }
      },
      [self](tick_atom) {
        expire(self);
        self->delayed_send(self, tick_interval, tick_atom::value);
      },
  };
}

}  // namespace

caf::actor spawn_publisher(caf::actor_system& system, caf::actor proxy,
                           std::shared_ptr<publish_inbox> inbox, publisher_options options) {
  return system.spawn(publisher_behavior, std::move(proxy), std::move(inbox), std::move(options));
}

status probe_failure(caf::actor_system& system, const caf::error& error, const std::string& queue,
                     const std::string& address) {
  if (is_unknown_queue(error)) {
    return status{errc::not_found, "no queue '" + queue + "' on node " + address +
                                       " (the node says: " + error_text(system, error) + ")"};
  }
  return status{errc::timed_out, "queue '" + queue + "' on node " + address +
                                     " could not be reached: " + error_text(system, error)};
}

}  // namespace weir::client_detail

#include "weir/runtime/supervisor.hpp"

#include <deque>
#include <memory>
#include <optional>

#include <spdlog/spdlog.h>
#include <caf/all.hpp>

namespace weir {

namespace {

// The actor clock, not the system one: under CAF's test coordinator, tests move it.
using time_point = caf::actor_clock::time_point;
using restart_timer_atom = caf::atom_constant<caf::atom("wrestartt")>;
using stop_timer_atom = caf::atom_constant<caf::atom("wstopt")>;
const caf::atom_value error_category = caf::atom("weir");

caf::error make_supervisor_error(supervisor_errc code, std::string context) {
  return caf::error(static_cast<std::uint8_t>(code), error_category,
                    caf::make_message(std::move(context)));
}

enum class child_state { running, restarting, stopping, stopped };

const char* state_name(child_state state) {
  switch (state) {
    case child_state::running:
      return "running";
    case child_state::restarting:
      return "restarting";
    case child_state::stopping:
      return "stopping";
    case child_state::stopped:
      return "stopped";
  }
  return "?";
}

struct child_entry {
  child_spec spec;
  caf::actor handle;
  child_state state = child_state::stopped;
  std::uint32_t restarts = 0;
  std::deque<time_point> recent_restarts;  // for the backoff step
  std::uint64_t generation = 0;            // bumped on every start or stop, to ignore stale timers
};

/// Work to do once a set of children has stopped: restart some, or quit.
struct stop_plan {
  std::vector<std::size_t> to_stop;     // in the order to stop them (reverse start order)
  std::vector<std::size_t> to_restart;  // in start order, once all stopped
  std::optional<caf::error> quit_with;  // when set, the supervisor quits at the end
};

struct supervisor_state {
  static inline const char* name = "weir.supervisor";
  supervisor_options options;
  std::vector<child_entry> children;
  std::deque<time_point> restart_times;
  std::mt19937_64 random{std::random_device{}()};
  std::optional<stop_plan> stopping;
  std::vector<std::size_t> pending_restarts;  // waiting for the backoff timer
  std::uint64_t restart_round = 0;
  // The running children, shared with the exit hook that stops them when the
  // supervisor itself terminates, however it does.
  std::shared_ptr<std::vector<caf::actor>> live = std::make_shared<std::vector<caf::actor>>();
};

using supervisor_actor = caf::stateful_actor<supervisor_state>;

// Returns false when the start function failed.
bool start_child(supervisor_actor* self, std::size_t index) {
  auto& child = self->state.children[index];
  caf::actor handle;
  try {
    handle = child.spec.start(self->system());
  } catch (const std::exception& e) {
    spdlog::error("supervisor {}: starting child {} threw: {}", self->state.options.name,
                  child.spec.name, e.what());
  }
  ++child.generation;
  if (!handle) {
    child.state = child_state::stopped;
    return false;
  }
  self->monitor(handle);
  (*self->state.live)[index] = handle;
  child.handle = handle;
  child.state = child_state::running;
  return true;
}

void continue_stop_plan(supervisor_actor* self);
void schedule_restarts(supervisor_actor* self, std::vector<std::size_t> indices);

void fail(supervisor_actor* self, caf::error reason) {
  // Stop every running child in reverse order, then quit with `reason`.
  stop_plan plan;
  for (std::size_t i = self->state.children.size(); i-- > 0;) {
    auto& child = self->state.children[i];
    if (child.state == child_state::running || child.state == child_state::stopping) {
      plan.to_stop.push_back(i);
    } else {
      child.state = child_state::stopped;
    }
  }
  self->state.pending_restarts.clear();
  plan.quit_with = std::move(reason);
  self->state.stopping = std::move(plan);
  continue_stop_plan(self);
}

void continue_stop_plan(supervisor_actor* self) {
  auto& plan = *self->state.stopping;
  while (!plan.to_stop.empty()) {
    auto& child = self->state.children[plan.to_stop.front()];
    if (child.state == child_state::stopping) return;  // waiting for its exit
    if (child.state != child_state::running) {
      plan.to_stop.erase(plan.to_stop.begin());
      continue;
    }
    child.state = child_state::stopping;
    ++child.generation;
    self->send_exit(child.handle, caf::exit_reason::user_shutdown);
    self->delayed_send(self, self->state.options.shutdown_timeout, stop_timer_atom::value,
                       std::uint64_t{plan.to_stop.front()}, child.generation);
    return;
  }
  auto done = std::move(plan);
  self->state.stopping.reset();
  if (done.quit_with) {
    self->quit(*done.quit_with);
    return;
  }
  if (!done.to_restart.empty()) schedule_restarts(self, std::move(done.to_restart));
}

void schedule_restarts(supervisor_actor* self, std::vector<std::size_t> indices) {
  auto& state = self->state;
  std::uint32_t retry = 1;
  const auto now = self->clock().now();
  for (auto i : indices) {
    auto& child = state.children[i];
    child.state = child_state::restarting;
    while (!child.recent_restarts.empty() &&
           now - child.recent_restarts.front() > state.options.period) {
      child.recent_restarts.pop_front();
    }
    child.recent_restarts.push_back(now);
    retry = std::max<std::uint32_t>(retry, std::uint32_t(child.recent_restarts.size()));
  }
  for (auto i : indices) state.pending_restarts.push_back(i);
  const auto delay = state.options.restart_backoff.delay(retry, state.random);
  spdlog::warn("supervisor {}: restarting {} child(ren) in {} ms", state.options.name,
               indices.size(), delay.count());
  self->delayed_send(self, delay, restart_timer_atom::value, ++state.restart_round);
}

void on_restart_timer(supervisor_actor* self, std::uint64_t round) {
  auto& state = self->state;
  if (round != state.restart_round || state.stopping) return;
  auto indices = std::move(state.pending_restarts);
  state.pending_restarts.clear();
  std::sort(indices.begin(), indices.end());  // children start in order
  for (auto i : indices) {
    auto& child = state.children[i];
    if (child.state != child_state::restarting) continue;
    ++child.restarts;
    if (!start_child(self, i)) {
      // A failed start is a failure like any other: it counts against intensity.
      state.restart_times.push_back(self->clock().now());
      if (state.restart_times.size() > state.options.restarts_max) {
        fail(self, make_supervisor_error(supervisor_errc::restart_intensity,
                                         "child " + child.spec.name + " failed to start"));
        return;
      }
      schedule_restarts(self, {i});
    }
  }
}

// Records one restart; false when the intensity is exceeded.
bool within_intensity(supervisor_actor* self) {
  auto& state = self->state;
  const auto now = self->clock().now();
  while (!state.restart_times.empty() && now - state.restart_times.front() > state.options.period) {
    state.restart_times.pop_front();
  }
  state.restart_times.push_back(now);
  return state.restart_times.size() <= state.options.restarts_max;
}

void on_child_exit(supervisor_actor* self, std::size_t index, const caf::error& reason) {
  auto& state = self->state;
  auto& child = state.children[index];
  child.handle = nullptr;
  (*state.live)[index] = nullptr;
  ++child.generation;
  if (child.state == child_state::stopping) {
    child.state = child_state::stopped;
    if (state.stopping) continue_stop_plan(self);
    return;
  }
  const bool failed = reason != caf::exit_reason::normal;
  child.state = child_state::stopped;
  if (child.spec.restart == restart_type::temporary ||
      (child.spec.restart == restart_type::transient && !failed)) {
    spdlog::info("supervisor {}: child {} exited ({}); not restarted", state.options.name,
                 child.spec.name, caf::to_string(reason));
    return;
  }
  spdlog::warn("supervisor {}: child {} exited: {}", state.options.name, child.spec.name,
               caf::to_string(reason));
  if (state.stopping) {
    // Already stopping children for an earlier failure; restart this one with them.
    auto& plan = *state.stopping;
    if (!plan.quit_with &&
        std::find(plan.to_restart.begin(), plan.to_restart.end(), index) == plan.to_restart.end()) {
      plan.to_restart.push_back(index);
      std::sort(plan.to_restart.begin(), plan.to_restart.end());
    }
    return;
  }
  if (!within_intensity(self)) {
    spdlog::error("supervisor {}: more than {} restarts in {} ms; giving up", state.options.name,
                  state.options.restarts_max, state.options.period.count());
    fail(self, make_supervisor_error(
                   supervisor_errc::restart_intensity,
                   state.options.name + ": child " + child.spec.name + " failed too often"));
    return;
  }
  stop_plan plan;
  std::size_t first_affected = index;
  switch (state.options.strategy) {
    case restart_strategy::one_for_one:
      schedule_restarts(self, {index});
      return;
    case restart_strategy::one_for_all:
      first_affected = 0;
      break;
    case restart_strategy::rest_for_one:
      break;
  }
  for (std::size_t i = state.children.size(); i-- > first_affected;) {
    auto& other = state.children[i];
    if (i != index && (other.state == child_state::running)) plan.to_stop.push_back(i);
  }
  for (std::size_t i = first_affected; i < state.children.size(); ++i) {
    auto& other = state.children[i];
    // Temporary children the supervisor stops are not started again (as in OTP).
    if (i == index || other.spec.restart != restart_type::temporary) {
      if (i == index || other.state == child_state::running) plan.to_restart.push_back(i);
    }
  }
  state.stopping = std::move(plan);
  continue_stop_plan(self);
}

caf::behavior supervisor_behavior(supervisor_actor* self, supervisor_options options,
                                  std::vector<child_spec> specs) {
  auto& state = self->state;
  state.options = std::move(options);
  for (auto& spec : specs) state.children.push_back(child_entry{std::move(spec), {}, {}, 0, {}, 0});
  // Children are monitored, not linked: CAF propagates exit_reason::kill over a
  // link and a supervisor cannot trap it, so one killed child would take the
  // whole tree down. The exit hook below ties the children's lifetime to ours.
  state.live->resize(state.children.size());
  self->attach_functor([live = state.live](const caf::error& reason) {
    const auto how =
        reason == caf::exit_reason::kill ? caf::exit_reason::kill : caf::exit_reason::user_shutdown;
    for (auto it = live->rbegin(); it != live->rend(); ++it) {
      if (*it) caf::anon_send_exit(*it, how);
    }
  });
  self->set_down_handler([self](caf::down_msg& msg) {
    auto& children = self->state.children;
    for (std::size_t i = 0; i < children.size(); ++i) {
      if (children[i].handle && children[i].handle.address() == msg.source) {
        on_child_exit(self, i, msg.reason);
        return;
      }
    }
  });
  // An exit message asks us to stop: the children go first, in reverse order.
  self->set_exit_handler([self](caf::exit_msg& msg) {
    if (msg.reason == caf::exit_reason::normal) return;
    if (self->state.stopping && self->state.stopping->quit_with) return;
    fail(self, msg.reason);
  });
  for (std::size_t i = 0; i < state.children.size(); ++i) {
    if (!start_child(self, i)) {
      // Nothing is running yet that needs an orderly stop plan: stop the children
      // started so far (reverse order) and fail at once.
      for (std::size_t j = i; j-- > 0;) {
        self->send_exit(state.children[j].handle, caf::exit_reason::user_shutdown);
      }
      self->quit(make_supervisor_error(
          supervisor_errc::start_failed,
          state.options.name + ": child " + state.children[i].spec.name + " failed to start"));
      return {};
    }
  }
  return {
      [self](restart_timer_atom, std::uint64_t round) { on_restart_timer(self, round); },
      [self](stop_timer_atom, std::uint64_t index, std::uint64_t generation) {
        auto& child = self->state.children[index];
        if (child.state == child_state::stopping && child.generation == generation &&
            child.handle) {
          spdlog::warn("supervisor {}: child {} did not stop in time; killing it",
                       self->state.options.name, child.spec.name);
          self->send_exit(child.handle, caf::exit_reason::kill);
        }
      },
      [self](tree_atom) -> caf::result<supervision_node> {
        auto& state = self->state;
        auto node = std::make_shared<supervision_node>();
        node->name = state.options.name;
        node->state =
            self->state.stopping && self->state.stopping->quit_with ? "stopping" : "running";
        auto promise = self->make_response_promise<supervision_node>();
        auto pending = std::make_shared<std::size_t>(0);
        for (const auto& child : state.children) {
          node->children.push_back({child.spec.name, state_name(child.state), child.restarts, {}});
        }
        for (std::size_t i = 0; i < state.children.size(); ++i) {
          const auto& child = state.children[i];
          if (!child.spec.is_supervisor || child.state != child_state::running) continue;
          ++*pending;
          self->request(child.handle, std::chrono::seconds(5), tree_atom::value)
              .then(
                  [=](supervision_node& subtree) mutable {
                    node->children[i].children = std::move(subtree.children);
                    if (--*pending == 0) promise.deliver(*node);
                  },
                  [=](caf::error&) mutable {
                    if (--*pending == 0) promise.deliver(*node);
                  });
        }
        if (*pending == 0) promise.deliver(*node);
        return promise;
      },
  };
}

}  // namespace

void add_supervisor_types(caf::actor_system_config& config) {
  config.add_message_type<supervision_node>("weir::supervision_node");
  config.add_message_type<std::vector<supervision_node>>("std::vector<weir::supervision_node>");
  config.add_error_category(
      error_category,
      [](std::uint8_t code, caf::atom_value, const caf::message& context) -> std::string {
        std::string text;
        switch (static_cast<supervisor_errc>(code)) {
          case supervisor_errc::restart_intensity:
            text = "restart_intensity";
            break;
          case supervisor_errc::start_failed:
            text = "start_failed";
            break;
          default:
            text = "weir_error_" + std::to_string(code);
        }
        if (!context.empty() && context.match_elements<std::string>()) {
          text += ": " + context.get_as<std::string>(0);
        }
        return text;
      });
}

caf::actor spawn_supervisor(caf::actor_system& system, supervisor_options options,
                            std::vector<child_spec> children) {
  return system.spawn(supervisor_behavior, std::move(options), std::move(children));
}

child_spec supervisor_child(supervisor_options options, std::vector<child_spec> children,
                            restart_type restart) {
  child_spec spec;
  spec.name = options.name;
  spec.restart = restart;
  spec.is_supervisor = true;
  spec.start = [options = std::move(options),
                children = std::move(children)](caf::actor_system& system) {
    return spawn_supervisor(system, options, children);
  };
  return spec;
}

}  // namespace weir

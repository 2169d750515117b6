#pragma once
// Supervision trees for CAF actors, after Erlang/OTP: a supervisor starts its
// children in order, restarts them by strategy when they fail, gives up when
// they fail too often (its parent then decides), and stops them in reverse order.

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include <caf/atom.hpp>
#include <caf/fwd.hpp>
#include <caf/meta/type_name.hpp>

#include "weir/runtime/backoff.hpp"

namespace weir {

/// Asks a supervisor for its tree; the answer is a supervision_node.
using tree_atom = caf::atom_constant<caf::atom("wtree")>;

/// When a child that exited is started again.
enum class restart_type : std::uint8_t {
  permanent,  ///< always
  transient,  ///< only when it failed (exit reason other than normal)
  temporary,  ///< never
};

/// Which children a failure restarts.
enum class restart_strategy : std::uint8_t {
  one_for_one,   ///< only the failed child
  one_for_all,   ///< every child: the others are stopped first
  rest_for_one,  ///< the failed child and those started after it
};

struct child_spec {
  std::string name;
  /// Spawns the child; an invalid handle (or a throw) counts as a failed start.
  std::function<caf::actor(caf::actor_system&)> start;
  restart_type restart = restart_type::permanent;
  bool is_supervisor = false;  ///< its own tree is included when the tree is listed
};

struct supervisor_options {
  std::string name = "supervisor";
  restart_strategy strategy = restart_strategy::one_for_one;
  /// Restart intensity: more than `restarts_max` restarts within `period` and the
  /// supervisor stops its children and fails with supervisor_errc::restart_intensity.
  std::uint32_t restarts_max = 3;
  std::chrono::milliseconds period{5000};
  /// Delay before a restart; retry n is the child's n-th restart within `period`.
  backoff_policy restart_backoff =
      backoff_policy::exponential(std::chrono::milliseconds(10), std::chrono::milliseconds(1000));
  /// How long a child may take to stop before it is killed.
  std::chrono::milliseconds shutdown_timeout{5000};
};

/// Error codes of the "weir" CAF error category; values are stable.
enum class supervisor_errc : std::uint8_t {
  restart_intensity = 1,  ///< children failed more often than the intensity allows
  start_failed = 2,       ///< a child's start function failed at the supervisor's start
};

/// One node of a supervision tree as listed by `tree_atom`.
struct supervision_node {
  std::string name;
  std::string state;  ///< "running", "restarting", "stopping", "stopped"
  std::uint32_t restarts = 0;
  std::vector<supervision_node> children;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, supervision_node& x) {
  return f(caf::meta::type_name("weir::supervision_node"), x.name, x.state, x.restarts, x.children);
}

/// Registers the message types and error category used here; call on the config.
void add_supervisor_types(caf::actor_system_config& config);

/// Spawns a supervisor. Send it `tree_atom` to list the tree; send it an exit
/// (user_shutdown) to stop the children in reverse order and then itself.
caf::actor spawn_supervisor(caf::actor_system& system, supervisor_options options,
                            std::vector<child_spec> children);

/// A child_spec whose child is itself a supervisor, for nesting trees.
child_spec supervisor_child(supervisor_options options, std::vector<child_spec> children,
                            restart_type restart = restart_type::permanent);

}  // namespace weir

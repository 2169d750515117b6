// Supervision trees, run on CAF's deterministic test coordinator: start order,
// reverse stop order, the three strategies, restart types, intensity and its
// escalation through a nested tree, restart backoff bounds, and the tree listing.

#include <boost/test/unit_test.hpp>

#include <map>
#include <memory>

#include <caf/all.hpp>
#include <caf/scheduler/test_coordinator.hpp>

#include "weir/runtime/supervisor.hpp"

using namespace weir;
using namespace std::chrono_literals;

namespace {

using crash_atom = caf::atom_constant<caf::atom("tcrash")>;
using finish_atom = caf::atom_constant<caf::atom("tfinish")>;

struct test_config : caf::actor_system_config {
  test_config() {
    set("scheduler.policy", caf::atom("testing"));
    set("logger.file-verbosity", caf::atom("quiet"));
    add_supervisor_types(*this);
  }
};

/// What the children did, in order: "start:a", "stop:b".
struct journal {
  std::vector<std::string> events;
  std::map<std::string, caf::actor> current;
  std::map<std::string, int> starts;
};

/// A child that records its start and stop, crashes on crash_atom, ends on finish_atom.
child_spec worker(std::shared_ptr<journal> log, std::string name,
                  restart_type restart = restart_type::permanent) {
  child_spec spec;
  spec.name = name;
  spec.restart = restart;
  spec.start = [log, name](caf::actor_system& system) {
    // Spawned with arguments: CAF 0.17's init_fun_factory dereferences an empty
    // shared_ptr<tuple<>> for argument-less functors, which UBSan reports.
    auto handle = system.spawn(
        [](caf::event_based_actor* self, std::shared_ptr<journal> log,
           std::string name) -> caf::behavior {
          self->attach_functor(
              [log, name](const caf::error&) { log->events.push_back("stop:" + name); });
          return {
              [self](crash_atom) { self->quit(caf::sec::runtime_error); },
              [self](finish_atom) { self->quit(); },
          };
        },
        log, name);
    log->events.push_back("start:" + name);
    log->current[name] = handle;
    ++log->starts[name];
    return handle;
  };
  return spec;
}

struct fixture {
  test_config config;
  caf::actor_system system{config};
  caf::scoped_actor self{system, true};
  caf::scheduler::test_coordinator& sched =
      dynamic_cast<caf::scheduler::test_coordinator&>(system.scheduler());
  std::shared_ptr<journal> log = std::make_shared<journal>();

  /// Runs every message and every timer until nothing is left.
  void settle() {
    do {
      sched.run();
    } while (sched.trigger_timeouts() > 0);
    sched.run();
  }

  void crash(const std::string& name) {
    caf::anon_send(log->current.at(name), crash_atom::value);
    settle();
  }

  supervision_node tree(const caf::actor& supervisor) {
    self->send(supervisor, tree_atom::value);
    supervision_node result;
    settle();
    // The answer went to the scoped actor's mailbox directly.
    self->receive([&](supervision_node& node) { result = std::move(node); },
                  caf::after(std::chrono::seconds(0)) >> [] { BOOST_FAIL("no tree answer"); });
    return result;
  }

  /// The reason the supervisor exited with, if it did.
  std::optional<caf::error> exit_reason(const caf::actor& supervisor) {
    std::optional<caf::error> reason;
    self->receive(
        [&](caf::down_msg& down) {
          if (down.source == supervisor.address()) reason = down.reason;
        },
        caf::after(std::chrono::seconds(0)) >> [] {});
    return reason;
  }

  ~fixture() { settle(); }
};

std::vector<std::string> events_after(const journal& log, std::size_t from) {
  return {log.events.begin() + static_cast<std::ptrdiff_t>(from), log.events.end()};
}

supervisor_options options(restart_strategy strategy) {
  supervisor_options opts;
  opts.strategy = strategy;
  opts.restarts_max = 10;
  opts.period = 10s;
  return opts;
}

}  // namespace

BOOST_FIXTURE_TEST_CASE(children_start_in_order_and_stop_in_reverse_order, fixture) {
  auto sup = spawn_supervisor(system, options(restart_strategy::one_for_one),
                              {worker(log, "a"), worker(log, "b"), worker(log, "c")});
  settle();
  BOOST_TEST(log->events == (std::vector<std::string>{"start:a", "start:b", "start:c"}));
  self->monitor(sup);
  self->send_exit(sup, caf::exit_reason::user_shutdown);
  settle();
  BOOST_TEST(events_after(*log, 3) == (std::vector<std::string>{"stop:c", "stop:b", "stop:a"}));
  BOOST_TEST(exit_reason(sup).has_value());
}

BOOST_FIXTURE_TEST_CASE(one_for_one_restarts_only_the_failed_child, fixture) {
  auto sup = spawn_supervisor(system, options(restart_strategy::one_for_one),
                              {worker(log, "a"), worker(log, "b"), worker(log, "c")});
  settle();
  crash("b");
  BOOST_TEST(log->starts["a"] == 1);
  BOOST_TEST(log->starts["b"] == 2);
  BOOST_TEST(log->starts["c"] == 1);
  auto t = tree(sup);
  BOOST_REQUIRE_EQUAL(t.children.size(), 3u);
  BOOST_TEST(t.children[1].name == "b");
  BOOST_TEST(t.children[1].restarts == 1u);
  BOOST_TEST(t.children[1].state == "running");
  BOOST_TEST(t.children[0].restarts == 0u);
}

BOOST_FIXTURE_TEST_CASE(one_for_all_stops_the_others_in_reverse_then_restarts_all_in_order,
                        fixture) {
  auto sup = spawn_supervisor(system, options(restart_strategy::one_for_all),
                              {worker(log, "a"), worker(log, "b"), worker(log, "c")});
  settle();
  crash("b");
  BOOST_TEST(events_after(*log, 3) == (std::vector<std::string>{"stop:b", "stop:c", "stop:a",
                                                                "start:a", "start:b", "start:c"}));
}

BOOST_FIXTURE_TEST_CASE(rest_for_one_restarts_the_failed_child_and_those_after_it, fixture) {
  auto sup = spawn_supervisor(system, options(restart_strategy::rest_for_one),
                              {worker(log, "a"), worker(log, "b"), worker(log, "c")});
  settle();
  crash("b");
  BOOST_TEST(events_after(*log, 3) ==
             (std::vector<std::string>{"stop:b", "stop:c", "start:b", "start:c"}));
  BOOST_TEST(log->starts["a"] == 1);
}

BOOST_FIXTURE_TEST_CASE(restart_types_decide_what_comes_back, fixture) {
  auto sup = spawn_supervisor(
      system, options(restart_strategy::one_for_one),
      {worker(log, "perm", restart_type::permanent), worker(log, "trans", restart_type::transient),
       worker(log, "temp", restart_type::temporary)});
  settle();
  caf::anon_send(log->current.at("perm"), finish_atom::value);  // a normal exit
  caf::anon_send(log->current.at("trans"), finish_atom::value);
  settle();
  BOOST_TEST(log->starts["perm"] == 2);   // permanent: even after a normal exit
  BOOST_TEST(log->starts["trans"] == 1);  // transient: not after a normal exit
  crash("temp");
  BOOST_TEST(log->starts["temp"] == 1);  // temporary: never
  auto t = tree(sup);
  BOOST_TEST(t.children[1].state == "stopped");
  BOOST_TEST(t.children[2].state == "stopped");
}

BOOST_FIXTURE_TEST_CASE(a_transient_child_that_fails_is_restarted, fixture) {
  auto sup = spawn_supervisor(system, options(restart_strategy::one_for_one),
                              {worker(log, "trans", restart_type::transient)});
  settle();
  crash("trans");
  BOOST_TEST(log->starts["trans"] == 2);
}

BOOST_FIXTURE_TEST_CASE(exceeding_the_restart_intensity_fails_the_supervisor, fixture) {
  auto opts = options(restart_strategy::one_for_one);
  opts.restarts_max = 2;
  auto sup = spawn_supervisor(system, opts, {worker(log, "a"), worker(log, "flaky")});
  self->monitor(sup);
  settle();
  crash("flaky");
  crash("flaky");
  BOOST_TEST(log->starts["flaky"] == 3);
  BOOST_TEST(!exit_reason(sup).has_value());
  crash("flaky");  // the third restart within the period is one too many
  auto reason = exit_reason(sup);
  BOOST_REQUIRE(reason.has_value());
  BOOST_TEST(reason->category() == caf::atom("weir"));
  BOOST_TEST(reason->code() == static_cast<std::uint8_t>(supervisor_errc::restart_intensity));
  BOOST_TEST(system.render(*reason).find("restart_intensity") != std::string::npos);
  // Its other children were stopped with it.
  BOOST_TEST(log->events.back() == "stop:a");
}

BOOST_FIXTURE_TEST_CASE(restarts_spread_over_more_than_the_period_are_tolerated, fixture) {
  auto opts = options(restart_strategy::one_for_one);
  opts.restarts_max = 1;
  opts.period = 1s;
  auto sup = spawn_supervisor(system, opts, {worker(log, "flaky")});
  self->monitor(sup);
  settle();
  for (int i = 0; i < 4; ++i) {
    crash("flaky");
    sched.advance_time(2s);  // the previous restart falls out of the window
  }
  BOOST_TEST(log->starts["flaky"] == 5);
  BOOST_TEST(!exit_reason(sup).has_value());
}

BOOST_FIXTURE_TEST_CASE(a_failing_subtree_escalates_to_its_parent, fixture) {
  auto inner_opts = options(restart_strategy::one_for_one);
  inner_opts.name = "inner";
  inner_opts.restarts_max = 1;
  auto outer_opts = options(restart_strategy::one_for_one);
  outer_opts.name = "outer";
  auto outer = spawn_supervisor(
      system, outer_opts,
      {worker(log, "sibling"), supervisor_child(inner_opts, {worker(log, "leaf")})});
  settle();
  crash("leaf");  // inner restarts it once
  crash("leaf");  // inner gives up; outer restarts inner, which starts a fresh leaf
  BOOST_TEST(log->starts["leaf"] == 3);
  BOOST_TEST(log->starts["sibling"] == 1);
  auto t = tree(outer);
  BOOST_TEST(t.name == "outer");
  BOOST_REQUIRE_EQUAL(t.children.size(), 2u);
  BOOST_TEST(t.children[1].name == "inner");
  BOOST_TEST(t.children[1].restarts == 1u);
  BOOST_REQUIRE_EQUAL(t.children[1].children.size(), 1u);
  BOOST_TEST(t.children[1].children[0].name == "leaf");
  BOOST_TEST(t.children[1].children[0].restarts == 0u);  // a fresh inner supervisor
}

BOOST_FIXTURE_TEST_CASE(restart_delays_fall_within_the_backoff_bounds, fixture) {
  auto opts = options(restart_strategy::one_for_one);
  opts.restart_backoff = backoff_policy::exponential(100ms, 2s, 2.0, 0.3);
  auto sup = spawn_supervisor(system, opts, {worker(log, "flaky")});
  settle();
  for (std::uint32_t restart = 1; restart <= 5; ++restart) {
    caf::anon_send(log->current.at("flaky"), crash_atom::value);
    sched.run();
    const auto& schedule = sched.clock().schedule();
    BOOST_REQUIRE(!schedule.empty());
    const auto delay = std::chrono::duration_cast<std::chrono::milliseconds>(
        schedule.begin()->first - sched.clock().now());
    const auto [lo, hi] = opts.restart_backoff.bounds(restart);
    BOOST_TEST(delay >= lo, "restart " << restart << " waited " << delay.count() << " ms");
    BOOST_TEST(delay <= hi, "restart " << restart << " waited " << delay.count() << " ms");
    settle();
    BOOST_TEST(log->starts["flaky"] == int(restart) + 1);
  }
}

BOOST_FIXTURE_TEST_CASE(a_child_that_cannot_start_fails_the_supervisor_at_once, fixture) {
  child_spec broken;
  broken.name = "broken";
  broken.start = [](caf::actor_system&) -> caf::actor { throw std::runtime_error("no config"); };
  auto sup =
      spawn_supervisor(system, options(restart_strategy::one_for_one), {worker(log, "a"), broken});
  self->monitor(sup);
  settle();
  auto reason = exit_reason(sup);
  BOOST_REQUIRE(reason.has_value());
  BOOST_TEST(reason->code() == static_cast<std::uint8_t>(supervisor_errc::start_failed));
  BOOST_TEST(system.render(*reason).find("broken") != std::string::npos);
  BOOST_TEST(log->events == (std::vector<std::string>{"start:a", "stop:a"}));
}

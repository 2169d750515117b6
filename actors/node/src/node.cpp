// The node: starts its queues under a supervisor (dead-letter queues first),
// listens, and gives each handshaked peer a session (session.hpp).

#include "weir/node/node.hpp"

#include <algorithm>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include <spdlog/spdlog.h>
#include <caf/all.hpp>

#include "node_shared.hpp"
#include "session.hpp"
#include "weir/runtime/supervisor.hpp"

namespace weir {

namespace {

class node_impl final : public node {
 public:
  node_impl(caf::actor_system& system, file_system& fs) : system_(system), fs_(fs) {}

  ~node_impl() override { (void)stop(); }

  status start(node_options options) {
    shared_->node_id = options.link.node_id;
    if (auto queues = start_queues(options); !queues) return queues;
    auto endpoint = transport::endpoint::listen(
        options.listen, options.link,
        [this](transport::link_event event) { on_link(std::move(event)); });
    if (!endpoint) {
      stop_queues();
      return endpoint.error();
    }
    address_ = (*endpoint)->address();
    std::lock_guard lock(shared_->mutex);
    shared_->endpoint = std::move(*endpoint);
    return {};
  }

  std::string address() const override { return address_; }

  result<caf::actor> queue(const std::string& name) const override {
    if (auto queue = shared_->lookup(name)) return queue;
    return status{errc::not_found,
                  "node " + shared_->node_id + " has no queue named '" + name + "'"};
  }

  void serve(const std::string& name, caf::actor queue) override {
    std::lock_guard lock(shared_->mutex);
    shared_->queues[name] = std::move(queue);
  }

  node_stats stats() const override { return shared_->stats(); }

  caf::actor supervisor() const override {
    std::lock_guard lock(shared_->mutex);
    return shared_->supervisor;
  }

  weir::metrics_source metrics() const override { return shared_->metrics(); }

  status stop() override {
    std::unique_ptr<transport::endpoint> endpoint;
    {
      std::lock_guard lock(shared_->mutex);
      endpoint = std::move(shared_->endpoint);
    }
    endpoint.reset();  // joins the link thread: no more sessions start after this
    std::map<transport::peer_id, caf::actor> sessions;
    {
      std::lock_guard lock(sessions_mutex_);
      sessions.swap(sessions_);
      shared_->sessions = 0;
    }
    caf::scoped_actor self{system_};
    for (auto& [peer, session] : sessions) {
      self->send_exit(session, caf::exit_reason::user_shutdown);
      self->wait_for(session);
    }
    stop_queues();
    return {};
  }

 private:
  status start_queues(node_options& options) {
    std::set<std::string> names;
    for (const auto& q : options.queues) {
      if (!names.insert(q.queue.name).second) {
        return {errc::invalid_argument, "queue '" + q.queue.name + "' is declared twice"};
      }
    }
    // A dead-letter queue named but not declared is created with its queue's settings.
    std::vector<node_queue_options> dead_letter_queues;
    for (const auto& q : options.queues) {
      if (q.dead_letter_queue.empty()) continue;
      if (q.dead_letter_queue == q.queue.name) {
        return {errc::invalid_argument,
                "queue '" + q.queue.name + "' cannot be its own dead-letter queue"};
      }
      shared_->dead_letter_of[q.queue.name] = q.dead_letter_queue;
      if (names.insert(q.dead_letter_queue).second) {
        node_queue_options dead;
        dead.queue = q.queue;
        dead.queue.name = q.dead_letter_queue;
        dead.queue.data_dir.clear();
        dead.queue.max_deliveries = 0;
        dead_letter_queues.push_back(std::move(dead));
      }
    }
    // A dead-letter queue starts before its queue, which needs it at spawn; with
    // rest_for_one a restarted dead-letter queue then restarts the queues after it.
    std::vector<node_queue_options> pending = options.queues;
    for (auto& q : dead_letter_queues) pending.push_back(std::move(q));
    std::vector<node_queue_options> ordered;
    std::set<std::string> started;
    while (!pending.empty()) {
      auto ready = std::find_if(pending.begin(), pending.end(), [&](const node_queue_options& q) {
        return q.dead_letter_queue.empty() || started.count(q.dead_letter_queue) > 0;
      });
      if (ready == pending.end()) {
        return {errc::invalid_argument, "dead-letter queues form a cycle through queue '" +
                                            pending.front().queue.name + "'"};
      }
      started.insert(ready->queue.name);
      ordered.push_back(std::move(*ready));
      pending.erase(ready);
    }

    if (auto made = fs_.create_dirs(options.data_dir); !made) return made;
    auto failure = std::make_shared<std::pair<std::mutex, status>>();
    std::vector<child_spec> children;
    for (auto q : ordered) {
      if (q.queue.data_dir.empty()) q.queue.data_dir = options.data_dir + "/" + q.queue.name;
      if (!q.queue.counters) q.queue.counters = std::make_shared<queue_stats>();  // across restarts
      child_spec spec;
      spec.name = q.queue.name;
      spec.start = [shared = shared_, fs = &fs_, q, failure](caf::actor_system& sys) {
        auto settings = q.queue;
        if (!q.dead_letter_queue.empty()) {
          settings.dead_letter_queue = shared->lookup(q.dead_letter_queue);
        }
        auto spawned = spawn_queue(sys, *fs, settings);
        if (!spawned) {
          spdlog::error("node {}: {}", shared->node_id, spawned.error().to_string());
          std::lock_guard lock(failure->first);
          failure->second = spawned.error();
          return caf::actor{};
        }
        std::lock_guard lock(shared->mutex);
        shared->queues[settings.name] = *spawned;
        return *spawned;
      };
      children.push_back(std::move(spec));
    }
    supervisor_options supervision;
    supervision.name = "node " + options.link.node_id;
    supervision.strategy = restart_strategy::rest_for_one;
    supervision.restarts_max = options.restarts_max;
    supervision.period = options.restart_period;
    supervisor_ = spawn_supervisor(system_, supervision, std::move(children));
    {
      std::lock_guard lock(shared_->mutex);
      shared_->supervisor = supervisor_;
    }

    // The supervisor starts its children asynchronously: wait until every queue
    // is serving or one failed to start, so a node never serves half its queues.
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::minutes(10);
    for (;;) {
      {
        std::lock_guard lock(failure->first);
        if (!failure->second.is_ok()) {
          auto error = failure->second;
          stop_queues();
          return error;
        }
      }
      {
        std::lock_guard lock(shared_->mutex);
        if (shared_->queues.size() == ordered.size()) return {};
      }
      if (std::chrono::steady_clock::now() > deadline) {
        stop_queues();
        return {errc::closed, "queues did not start within 10 minutes"};
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
  }

  void stop_queues() {
    if (!supervisor_) return;
    caf::scoped_actor self{system_};
    self->send_exit(supervisor_, caf::exit_reason::user_shutdown);
    self->wait_for(supervisor_);
    supervisor_ = caf::actor{};
    std::lock_guard lock(shared_->mutex);
    shared_->queues.clear();
    shared_->supervisor = caf::actor{};
  }

  // Runs on the link's thread.
  void on_link(transport::link_event event) {
    std::lock_guard lock(sessions_mutex_);
    switch (event.type) {
      case transport::link_event::kind::peer_up: {
        spdlog::info("node {}: peer {} ({}) connected", shared_->node_id, event.peer, event.detail);
        sessions_[event.peer] =
            system_.spawn(detail::session_behavior, shared_, event.peer, std::move(event.detail));
        shared_->sessions = sessions_.size();
        break;
      }
      case transport::link_event::kind::frame: {
        auto it = sessions_.find(event.peer);
        if (it != sessions_.end()) {
          caf::anon_send(it->second, wire::frame_atom::value,
                         wire::frame_handle{std::move(event.frame)});
        }
        break;
      }
      case transport::link_event::kind::peer_down: {
        auto it = sessions_.find(event.peer);
        if (it == sessions_.end()) break;
        spdlog::info("node {}: peer {} lost: {}", shared_->node_id, event.peer, event.detail);
        caf::anon_send_exit(it->second, caf::exit_reason::user_shutdown);
        sessions_.erase(it);
        shared_->sessions = sessions_.size();
        break;
      }
    }
  }

  caf::actor_system& system_;
  file_system& fs_;
  detail::node_shared_ptr shared_ = std::make_shared<detail::node_shared>();
  caf::actor supervisor_;
  std::string address_;
  mutable std::mutex sessions_mutex_;
  std::map<transport::peer_id, caf::actor> sessions_;
};

}  // namespace

result<std::unique_ptr<node>> node::start(caf::actor_system& system, file_system& fs,
                                          node_options options) {
  if (options.listen.empty())
    return status{errc::invalid_argument, "node without a listen address"};
  if (options.link.node_id.empty()) options.link.node_id = options.listen;
  auto started = std::make_unique<node_impl>(system, fs);
  if (auto ok = started->start(std::move(options)); !ok) return ok;
  return std::unique_ptr<node>(std::move(started));
}

}  // namespace weir

// A started pipeline: the source thread, the queues and stage actors
// (stage_actor.cpp) under one supervisor, the node that serves this process's
// queues when the run spans nodes, and wait()/state() for the application.

#include "pipeline_run.hpp"

#include <algorithm>
#include <atomic>
#include <fstream>
#include <mutex>
#include <optional>
#include <random>
#include <set>
#include <thread>

#include <spdlog/spdlog.h>
#include <caf/all.hpp>

#include "stage_actor.hpp"
#include "weir/node/node.hpp"
#include "weir/node/remote_queue.hpp"
#include "weir/queue/producer.hpp"
#include "weir/queue/queue.hpp"
#include "weir/runtime/memory_file_system.hpp"

namespace weir {

namespace {

using op_kind = pipeline_op::kind;

/// A queue of a run: the one after the source, then one per queue(...) step.
struct edge_plan {
  std::string name;        // "<source>.queue" for the first, else the step's name
  std::string queue_name;  // the queue's own name; its log is <data_dir>/<queue_name>.queue
  bool durable = true;
  std::string node;               // where it and the stage reading it run; "" is the home node
  edge_options options;           // its policies
  std::uint64_t incarnation = 0;  // 0: durable; else new per run (stage.capnp, inputIncarnation)
  std::shared_ptr<shared_handle> handle = std::make_shared<shared_handle>();
};

struct stage_plan {
  std::string name;  // its last operator's
  bool has_reduce = false;
  std::shared_ptr<const stage_definition> definition;
  std::shared_ptr<shared_handle> handle = std::make_shared<shared_handle>();
  std::shared_ptr<stage_progress> progress = std::make_shared<stage_progress>();
};

std::uint64_t new_incarnation() {
  std::random_device random;
  return ((std::uint64_t{random()} << 32) ^ random()) | 1;
}

class pipeline_run_impl final : public pipeline_run {
 public:
  pipeline_run_impl(caf::actor_system& system, file_system& fs,
                    pipeline::recovery_progress_factory recovery_progress)
      : system_(system), fs_(fs), recovery_progress_(std::move(recovery_progress)) {}

  ~pipeline_run_impl() override {
    stopping_ = true;
    if (source_.joinable()) source_.join();
    // Remote stages stop reading from this node first. A destructor cannot
    // return the failure (a queue's last sync); the log line is its record.
    if (server_) {
      if (auto stopped = server_->stop(); !stopped) {
        spdlog::warn("pipeline: stopping its node: {}", stopped.to_string());
      }
    }
    for (auto& proxy : remote_outputs_) caf::anon_send_exit(proxy, caf::exit_reason::user_shutdown);
    if (supervisor_) {
      // The supervisor stops the stages, then the queues, and ends only once all
      // have: after that nothing uses memory_fs_.
      caf::scoped_actor self{system_};
      self->send_exit(supervisor_, caf::exit_reason::user_shutdown);
      self->wait_for(supervisor_);
    }
  }

  status start(const std::string& pipeline_name, const std::string& source_name,
               const std::string& source_path, const edge_options& source_queue,
               const std::vector<pipeline_op>& ops, const std::string& data_dir,
               supervisor_options supervision, const deployment* where) {
    where_ = where == nullptr ? std::nullopt : std::optional<deployment>(*where);
    // Cut the steps into stages at each queue.
    edges_.push_back({source_name + ".queue", source_name, true, "", source_queue, 0});
    std::vector<std::vector<pipeline_op>> chains(1);
    for (const auto& o : ops) {
      if (o.type == op_kind::queue) {
        edges_.push_back({o.name, o.name, o.edge.durable, o.edge.node, o.edge,
                          o.edge.durable ? 0 : new_incarnation()});
        chains.emplace_back();
      } else {
        chains.back().push_back(o);
      }
    }
    if (auto placed = check_placement(); !placed) return placed;
    if (auto made = fs_.create_dirs(data_dir); !made) return made;
    if (is_local(edges_.front())) {
      std::ifstream probe(source_path);
      if (!probe) return {errc::not_found, "source file " + source_path + " cannot be read"};
    }
    if (where_) {
      // This node's queues are served to the stages on other nodes that write them.
      node_options serving;
      serving.listen = where_->addresses.at(where_->this_node);
      serving.data_dir = data_dir;
      serving.link = where_->link;
      serving.link.node_id = where_->this_node;
      auto started = node::start(system_, fs_, serving);
      if (!started) return started.error();
      server_ = std::move(*started);
    }
    for (std::size_t k = 0; k < chains.size(); ++k) {
      auto definition = std::make_shared<stage_definition>();
      const auto& last = chains[k].back().name;
      definition->name = pipeline_name + "/" + last;
      definition->checkpoint_path = data_dir + "/" + last + ".checkpoint";
      definition->ops = std::move(chains[k]);
      definition->input_queue = edges_[k].queue_name;
      definition->reads_source = k == 0;
      definition->input_incarnation = edges_[k].incarnation;
      definition->input_credit = edges_[k].options.credit;
      definition->has_output = k + 1 < edges_.size();
      if (definition->has_output) {
        definition->output_queue = edges_[k + 1].queue_name;
        definition->output_incarnation = edges_[k + 1].incarnation;
      }
      definition->producer_id = stable_id(definition->name);
      stage_plan stage;
      stage.name = last;
      stage.has_reduce = std::any_of(definition->ops.begin(), definition->ops.end(),
                                     [](const auto& o) { return o.type == op_kind::reduce; });
      stage.definition = std::move(definition);
      stages_.push_back(std::move(stage));
    }

    // Queues first, then stages, both in order, rest_for_one: a restarted queue
    // restarts every stage (they re-subscribe and republish their outboxes); a
    // restarted stage reloads its checkpoint, and the stages after it restart too.
    // Dead-letter queues come first: a restarted one restarts the queues that
    // move messages into it, so they pick up its new handle.
    std::vector<child_spec> children;
    for (const auto& edge : edges_) {
      const auto& name = edge.options.dead_letter_queue;
      if (!is_local(edge) || name.empty() || dead_letter_queues_.count(name) != 0) continue;
      auto handle = std::make_shared<shared_handle>();
      dead_letter_queues_[name] = handle;
      queue_options options;
      options.name = name;
      options.data_dir = data_dir + "/" + name + ".queue";
      children.push_back(queue_child(name, fs_, options, handle, nullptr));
    }
    for (const auto& edge : edges_) {
      if (!is_local(edge)) continue;
      queue_options options;
      options.name = edge.queue_name;
      options.data_dir = data_dir + "/" + edge.queue_name + ".queue";
      options.ack_timeout = edge.options.ack_timeout;
      options.retry_backoff = edge.options.retry_backoff;
      options.max_deliveries = edge.options.max_deliveries;
      options.log.sync = edge.options.sync;
      options.log.segment_bytes_max = edge.options.segment_bytes_max;
      options.log.snapshot_every_bytes = edge.options.snapshot_every_bytes;
      options.log.spare_segments_max = edge.options.spare_segments_max;
      std::shared_ptr<shared_handle> dead_letters;
      if (!edge.options.dead_letter_queue.empty()) {
        dead_letters = dead_letter_queues_.at(edge.options.dead_letter_queue);
      }
      // An in-memory edge is a "durable" queue over the run's memory file
      // system: spawn_queue's own in-memory mode would give every incarnation an
      // empty one, and a restarted queue would forget its messages.
      if (!edge.durable) options.log.sync = sync_policy{sync_policy::mode::none, {}};
      children.push_back(queue_child(edge.queue_name, edge.durable ? fs_ : memory_fs_, options,
                                     edge.handle, dead_letters));
    }
    for (std::size_t k = 0; k < stages_.size(); ++k) {
      if (!is_local(edges_[k])) continue;
      child_spec spec;
      spec.name = stages_[k].name;
      std::shared_ptr<shared_handle> output;
      if (k + 1 < edges_.size()) output = edges_[k + 1].handle;
      if (k + 1 < edges_.size() && !is_local(edges_[k + 1])) {
        // The next queue is on another node: publish to it through a remote queue.
        remote_queue_options remote;
        remote.address = where_->addresses.at(node_of(edges_[k + 1]));
        remote.queue = edges_[k + 1].queue_name;
        remote.link = where_->link;
        remote.link.node_id = where_->this_node + "/" + stages_[k].name;
        auto proxy = spawn_remote_queue(system_, remote);
        if (!proxy) return proxy.error();
        remote_outputs_.push_back(*proxy);
        output->set(*proxy);
      }
      spec.start = [fs = &fs_, input = edges_[k].handle, output, stage = stages_[k].handle,
                    definition = stages_[k].definition,
                    progress = stages_[k].progress](caf::actor_system& sys) {
        auto queue = input->get();
        if (!queue) return caf::actor{};
        auto spawned = spawn_stage(sys, definition, *fs, queue, output, progress);
        stage->set(spawned);
        return spawned;
      };
      children.push_back(std::move(spec));
    }
    supervision.name = pipeline_name;
    supervision.strategy = restart_strategy::rest_for_one;
    supervisor_ = spawn_supervisor(system_, supervision, std::move(children));
    supervisor_->attach_functor([ended = supervisor_ended_](const caf::error& reason) {
      std::lock_guard lock(ended->mutex);
      ended->reason = reason ? caf::to_string(reason) : "normal exit";
      ended->done = true;
    });

    if (is_local(edges_.front())) {
      source_ = std::thread([this, source_path, id = stable_id(pipeline_name + "/" + source_name)] {
        run_source(source_path, id);
      });
    } else {
      source_done_ = true;  // another node reads it
    }
    return {};
  }

  status wait(std::chrono::milliseconds timeout) override {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    caf::scoped_actor self{system_};
    for (;;) {
      {
        std::lock_guard lock(supervisor_ended_->mutex);
        if (supervisor_ended_->done) {
          return {errc::closed, "pipeline stopped: its supervisor ended (" +
                                    supervisor_ended_->reason +
                                    "); the log above says which part kept failing"};
        }
      }
      auto missing = what_is_missing(self);
      if (missing.empty()) return {};
      if (std::chrono::steady_clock::now() >= deadline) {
        return {errc::timed_out, "pipeline did not finish in time: " + missing};
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  }

  result<std::map<std::string, std::string>> state() const override {
    const stage_plan* chosen = nullptr;
    for (std::size_t k = 0; k < stages_.size(); ++k) {
      if (is_local(edges_[k]) && (chosen == nullptr || stages_[k].has_reduce)) {
        chosen = &stages_[k];
      }
    }
    if (chosen == nullptr) {
      return status{errc::not_found, "no stage of this pipeline runs on node " + where_->this_node};
    }
    stage_snapshot snapshot;
    if (auto loaded = load_stage_checkpoint(fs_, chosen->definition->checkpoint_path,
                                            chosen->definition->name, snapshot);
        !loaded) {
      return loaded;
    }
    return std::move(snapshot.reduce_state);
  }

  caf::actor actor_of(const std::string& name) const override {
    for (const auto& edge : edges_) {
      if (edge.name == name || edge.queue_name == name) return edge.handle->get();
    }
    for (const auto& stage : stages_) {
      if (stage.name == name) return stage.handle->get();
    }
    if (auto it = dead_letter_queues_.find(name); it != dead_letter_queues_.end()) {
      return it->second->get();
    }
    return {};
  }

  /// A queue under the run's supervisor: each start publishes its new actor in
  /// `handle` (and to the node serving it), with the dead-letter queue's current one.
  child_spec queue_child(const std::string& name, file_system& storage, queue_options options,
                         std::shared_ptr<shared_handle> handle,
                         std::shared_ptr<shared_handle> dead_letters) {
    if (recovery_progress_) options.log.recovery_progress = recovery_progress_(name);
    if (!options.counters) options.counters = std::make_shared<queue_stats>();  // across restarts
    child_spec spec;
    spec.name = name;
    spec.start = [&storage, options = std::move(options), handle = std::move(handle),
                  dead_letters = std::move(dead_letters),
                  server = server_.get()](caf::actor_system& sys) mutable {
      if (dead_letters) options.dead_letter_queue = dead_letters->get();
      auto spawned = spawn_queue(sys, storage, options);
      if (!spawned) {
        spdlog::error("pipeline: {}", spawned.error().to_string());
        return caf::actor{};
      }
      handle->set(*spawned);
      if (server != nullptr) server->serve(options.name, *spawned);
      return *spawned;
    };
    return spec;
  }

  std::vector<std::string> queue_names() const override {
    std::vector<std::string> names;
    for (const auto& [name, handle] : dead_letter_queues_) names.push_back(name);
    for (const auto& edge : edges_) {
      if (is_local(edge)) names.push_back(edge.queue_name);
    }
    return names;
  }

  caf::actor supervisor() const override { return supervisor_; }

 private:
  std::string node_of(const edge_plan& edge) const {
    return edge.node.empty() ? where_->home : edge.node;
  }

  bool is_local(const edge_plan& edge) const {
    return !where_ || node_of(edge) == where_->this_node;
  }

  /// Every node named has an address, and a queue written from another node is durable.
  status check_placement() const {
    if (!where_) {
      for (const auto& edge : edges_) {
        if (!edge.node.empty()) {
          return {errc::invalid_argument, "queue " + edge.name + " is placed on node " + edge.node +
                                              " but the pipeline was started without a deployment"};
        }
      }
      return {};
    }
    auto known = [&](const std::string& name) { return where_->addresses.count(name) != 0; };
    if (!known(where_->this_node) || !known(where_->home)) {
      return {errc::invalid_argument, "deployment: this_node '" + where_->this_node +
                                          "' and home '" + where_->home + "' need addresses"};
    }
    for (std::size_t k = 0; k < edges_.size(); ++k) {
      if (!known(node_of(edges_[k]))) {
        return {errc::invalid_argument, "queue " + edges_[k].name + " is placed on node '" +
                                            edges_[k].node + "', which has no address"};
      }
      if (k > 0 && node_of(edges_[k]) != node_of(edges_[k - 1]) && !edges_[k].durable) {
        return {errc::invalid_argument, "queue " + edges_[k].name + " is written from node " +
                                            node_of(edges_[k - 1]) + " and read on node " +
                                            node_of(edges_[k]) +
                                            ": a queue between nodes must be durable"};
      }
    }
    return {};
  }

  // Checked from the source downstream, each step only after the one before it
  // held: a stage counts outputs into its outbox before it acks the inputs that
  // made them, and an output leaves the outbox only once the next queue holds it.
  // So an empty queue, then an idle stage, then the next queue empty, and so on,
  // means nothing is left anywhere. Returns what is missing, or "" when done.
  std::string what_is_missing(caf::scoped_actor& self) {
    if (!source_done_) return "the source is still being read";
    for (std::size_t k = 0; k < stages_.size(); ++k) {
      const auto& edge = edges_[k];
      if (!is_local(edge)) continue;  // another node's part
      auto queue = edge.handle->get();
      if (!queue) return "queue " + edge.name + " is not running";
      std::string missing;
      self->request(queue, std::chrono::seconds(1), stats_atom::value)
          .receive(
              [&](const queue_stats& stats) {
                if (stats.ready + stats.unacked + stats.delayed + stats.dead_lettering != 0) {
                  missing = "queue " + edge.name + " holds " + std::to_string(stats.ready) +
                            " ready, " + std::to_string(stats.unacked) + " unacked, " +
                            std::to_string(stats.delayed) + " delayed and " +
                            std::to_string(stats.dead_lettering) +
                            " messages on their way to the dead-letter queue";
                }
              },
              [&](caf::error& e) {
                missing = "queue " + edge.name + " did not answer: " + caf::to_string(e);
              });
      if (!missing.empty()) return missing;
      const auto& stage = stages_[k];
      const auto& progress = *stage.progress;
      if (progress.running == 0) return "stage " + stage.name + " is not running";
      if (auto open = progress.open_time_windows.load(); open != 0) {
        return "stage " + stage.name + " has " + std::to_string(open) + " time window(s) open";
      }
      if (auto parked = progress.parked.load(); parked != 0) {
        return "stage " + stage.name + " has " + std::to_string(parked) + " deliveries parked";
      }
      if (auto outbox = progress.outbox.load(); outbox != 0) {
        return "stage " + stage.name + " waits for " + std::to_string(outbox) +
               " outputs to be confirmed";
      }
    }
    return {};
  }

  void run_source(const std::string& path, std::uint64_t producer_id) {
    caf::scoped_actor self{system_};
    caf::actor queue;
    while (!(queue = edges_.front().handle->get()) && !stopping_) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    producer_options options;
    options.producer_id = producer_id;
    options.epoch = 1;  // the same input replays the same sequence numbers: dedup drops them
    options.batch_max = 512;
    options.window = 8192;
    auto producer = spawn_producer(system_, queue, options);
    std::ifstream in(path);
    std::string line;
    // Progress is read from the producer's stats, polled while waiting, not from
    // the answers to send or flush requests: a send whose request timed out would
    // have to be repeated, and the producer, which still holds the first copy,
    // would store the repeat under new sequence numbers (lines applied twice).
    // Polling also points the producer at a restarted queue within milliseconds.
    std::uint64_t sent = 0;
    auto wait_until = [&](auto done) {
      while (!stopping_) {
        rebind(self, producer, queue);
        std::optional<producer_stats> stats;
        self->request(producer, std::chrono::seconds(1), stats_atom::value)
            .receive([&](const producer_stats& s) { stats = s; }, [](caf::error&) {});
        if (stats && done(*stats)) return true;
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
      }
      return false;
    };
    std::vector<message_data> chunk;
    auto send_chunk = [&] {
      sent += chunk.size();
      self->send(producer, send_atom::value, std::move(chunk));
      chunk.clear();
      // Backpressure: the next chunk waits until this one is in the producer's window.
      wait_until([&](const producer_stats& s) { return s.accepted >= sent; });
    };
    while (!stopping_ && std::getline(in, line)) {
      chunk.push_back({"", line, {}, 0});
      if (chunk.size() == 1024) send_chunk();
    }
    if (!chunk.empty()) send_chunk();
    source_done_ = wait_until([&](const producer_stats& s) { return s.confirmed >= sent; });
    self->send_exit(producer, caf::exit_reason::user_shutdown);
  }

  // The queue may have been restarted by the supervisor: point the producer at it.
  void rebind(caf::scoped_actor& self, const caf::actor& producer, caf::actor& queue) {
    auto now = edges_.front().handle->get();
    if (now && now != queue) {
      queue = now;
      self->send(producer, rebind_atom::value, queue);
    }
  }

  caf::actor_system& system_;
  file_system& fs_;
  pipeline::recovery_progress_factory recovery_progress_;  // may be empty
  // In-memory edges' logs: outlive their queues' restarts, not the run.
  memory_file_system memory_fs_;
  std::vector<edge_plan> edges_;
  std::vector<stage_plan> stages_;
  std::map<std::string, std::shared_ptr<shared_handle>> dead_letter_queues_;  // by name
  std::optional<deployment> where_;         // none: everything runs here
  std::unique_ptr<node> server_;            // serves this node's queues to the others
  std::vector<caf::actor> remote_outputs_;  // queues on other nodes that local stages write
  caf::actor supervisor_;
  struct ended_flag {
    std::mutex mutex;
    bool done = false;
    std::string reason;
  };
  // Set when the supervisor ends (it gave up on a part that kept failing):
  // wait() then fails at once instead of waiting out its timeout.
  std::shared_ptr<ended_flag> supervisor_ended_ = std::make_shared<ended_flag>();
  std::thread source_;
  std::atomic<bool> stopping_{false};
  std::atomic<bool> source_done_{false};
};

}  // namespace

result<std::unique_ptr<pipeline_run>> start_pipeline_run(
    caf::actor_system& system, file_system& fs,
    pipeline::recovery_progress_factory recovery_progress, const pipeline_plan& plan,
    const std::string& data_dir, supervisor_options supervision, const deployment* where) {
  auto run = std::make_unique<pipeline_run_impl>(system, fs, std::move(recovery_progress));
  if (auto started = run->start(plan.name, plan.source_name, plan.source_path, plan.source_queue,
                                plan.ops, data_dir, std::move(supervision), where);
      !started) {
    return started;
  }
  return std::unique_ptr<pipeline_run>(std::move(run));
}

}  // namespace weir

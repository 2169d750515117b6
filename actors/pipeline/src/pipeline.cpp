// The pipeline graph builder, its checks and DOT export, and a started run: the
// source thread, the queues and stage actors (stage_actor.cpp) under one
// supervisor, and wait()/state() for the application.

#include "weir/pipeline/pipeline.hpp"

#include <algorithm>
#include <atomic>
#include <fstream>
#include <mutex>
#include <optional>
#include <random>
#include <set>
#include <sstream>
#include <thread>

#include <spdlog/spdlog.h>
#include <caf/all.hpp>

#include "stage_actor.hpp"
#include "weir/node/node.hpp"
#include "weir/queue/producer.hpp"
#include "weir/queue/queue.hpp"
#include "weir/node/remote_queue.hpp"
#include "weir/runtime/memory_file_system.hpp"
#include "weir/runtime/supervisor.hpp"

namespace weir {

namespace {

using op_kind = pipeline::op::kind;

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
    if (server_) server_->stop();  // remote stages stop reading from this node first
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
               const std::vector<pipeline::op>& ops, const std::string& data_dir,
               supervisor_options supervision, const deployment* where) {
    where_ = where == nullptr ? std::nullopt : std::optional<deployment>(*where);
    // Cut the steps into stages at each queue.
    edges_.push_back({source_name + ".queue", source_name, true, "", source_queue, 0});
    std::vector<std::vector<pipeline::op>> chains(1);
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
      options.log.segment_size_bytes_max = edge.options.segment_bytes_max;
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

std::string dot_escape(const std::string& text) {
  std::string out;
  for (char c : text) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out;
}

std::string dot_quote(const std::string& text) {
  return "\"" + dot_escape(text) + "\"";
}

/// A two-line node label: `first` above `second`.
std::string dot_label(const std::string& first, const std::string& second) {
  return "\"" + dot_escape(first) + "\\n" + dot_escape(second) + "\"";
}

const char* kind_name(op_kind kind) {
  switch (kind) {
    case op_kind::map:
      return "map";
    case op_kind::filter:
      return "filter";
    case op_kind::flat_map:
      return "flat_map";
    case op_kind::reduce:
      return "key_by_reduce";
    case op_kind::sink:
      return "sink";
    case op_kind::window:
      return "tumbling_window_count";
    case op_kind::window_time:
      return "tumbling_window_time";
    case op_kind::queue:
      return "queue";
  }
  return "?";
}

bool bad_name(const std::string& name) {
  return name.empty() || name.find('/') != std::string::npos;
}

status check_policy(const std::string& queue, const edge_options& edge) {
  const auto refuse = [&queue](const std::string& why) {
    return status{errc::invalid_argument, "queue " + queue + ": " + why};
  };
  if (edge.credit == 0) return refuse("credit must be at least 1");
  if (edge.ack_timeout.count() <= 0) return refuse("ack timeout must be positive");
  if (auto valid = edge.retry_backoff.validate(); !valid) return refuse(valid.message());
  if (edge.max_deliveries != 0 && edge.dead_letter_queue.empty()) {
    return refuse("max_deliveries needs a dead-letter queue");
  }
  if (!edge.dead_letter_queue.empty() && bad_name(edge.dead_letter_queue)) {
    return refuse("dead-letter queue name '" + edge.dead_letter_queue + "' is empty or has a '/'");
  }
  return {};
}

std::set<std::string> dead_letter_queue_names(const edge_options& source_queue,
                                              const std::vector<pipeline::op>& ops) {
  std::set<std::string> names;
  if (!source_queue.dead_letter_queue.empty()) names.insert(source_queue.dead_letter_queue);
  for (const auto& o : ops) {
    if (o.type == pipeline::op::kind::queue && !o.edge.dead_letter_queue.empty()) {
      names.insert(o.edge.dead_letter_queue);
    }
  }
  return names;
}

}  // namespace

pipeline::pipeline(std::string name) : name_(std::move(name)) {}

pipeline& pipeline::source_lines(std::string name, std::string path) {
  return source_lines(std::move(name), std::move(path), {.durable = true});
}

pipeline& pipeline::source_lines(std::string name, std::string path, edge_options queue) {
  source_name_ = std::move(name);
  source_path_ = std::move(path);
  source_queue_ = std::move(queue);
  source_queue_.durable = true;
  return *this;
}

pipeline& pipeline::map(std::string name, std::function<element(const element&)> fn) {
  ops_.push_back({.type = op::kind::map, .name = std::move(name), .map_fn = std::move(fn)});
  return *this;
}

pipeline& pipeline::filter(std::string name, std::function<bool(const element&)> keep) {
  ops_.push_back({.type = op::kind::filter, .name = std::move(name), .filter_fn = std::move(keep)});
  return *this;
}

pipeline& pipeline::flat_map(std::string name,
                             std::function<std::vector<element>(const element&)> fn) {
  ops_.push_back(
      {.type = op::kind::flat_map, .name = std::move(name), .flat_map_fn = std::move(fn)});
  return *this;
}

pipeline& pipeline::key_by_reduce(
    std::string name, std::function<std::string(const element&)> key,
    std::function<std::string(const std::string&, const element&)> reduce) {
  ops_.push_back({.type = op::kind::reduce,
                  .name = std::move(name),
                  .key_fn = std::move(key),
                  .reduce_fn = std::move(reduce)});
  return *this;
}

pipeline& pipeline::count_by_key(std::string name) {
  return key_by_reduce(
      std::move(name), [](const element& e) { return e.key; },
      [](const std::string& count, const element&) {
        return std::to_string((count.empty() ? 0 : std::stoull(count)) + 1);
      });
}

pipeline& pipeline::tumbling_window_count(
    std::string name, std::size_t count,
    std::function<element(const std::vector<element>&)> aggregate) {
  ops_.push_back({.type = op::kind::window,
                  .name = std::move(name),
                  .window_size = count,
                  .window_fn = std::move(aggregate)});
  return *this;
}

pipeline& pipeline::tumbling_window_time(
    std::string name, std::chrono::milliseconds width,
    std::function<element(const std::vector<element>&)> aggregate) {
  ops_.push_back({.type = op::kind::window_time,
                  .name = std::move(name),
                  .window_width = width,
                  .window_fn = std::move(aggregate)});
  return *this;
}

pipeline& pipeline::sink(std::string name, std::function<void(const element&)> fn) {
  ops_.push_back({.type = op::kind::sink, .name = std::move(name), .sink_fn = std::move(fn)});
  return *this;
}

pipeline& pipeline::queue(std::string name, edge_options options) {
  ops_.push_back({.type = op::kind::queue, .name = std::move(name), .edge = options});
  return *this;
}

pipeline& pipeline::restart_intensity(std::uint32_t max_restarts,
                                      std::chrono::milliseconds period) {
  max_restarts_ = max_restarts;
  restart_period_ = period;
  return *this;
}

status pipeline::validate() const {
  if (name_.empty()) return {errc::invalid_argument, "pipeline without a name"};
  const auto refuse = [this](const std::string& why) {
    return status{errc::invalid_argument, "pipeline " + name_ + ": " + why};
  };
  if (source_name_.empty()) {
    return {errc::invalid_argument, "pipeline " + name_ + " has no source"};
  }
  if (std::none_of(ops_.begin(), ops_.end(),
                   [](const op& o) { return o.type != op::kind::queue; })) {
    return {errc::invalid_argument, "pipeline " + name_ + " has no operator after its source"};
  }
  if (bad_name(source_name_)) return refuse("source name '" + source_name_ + "' has a '/'");
  if (restart_period_.count() <= 0) return refuse("restart period must be positive");
  // One namespace: queue names become directory names and DOT nodes next to the source's queue.
  std::set<std::string> names{source_name_, source_name_ + ".queue"};
  const op* previous = nullptr;
  const op* reduce_in_stage = nullptr;
  for (const auto& o : ops_) {
    const bool is_queue = o.type == op::kind::queue;
    if (bad_name(o.name)) {
      return refuse(std::string(is_queue ? "queue" : "operator") + " name '" + o.name +
                    "' is empty or has a '/'");
    }
    if (!names.insert(o.name).second) return refuse("two steps are named " + o.name);
    if (is_queue) {
      if (previous == nullptr) return refuse("queue " + o.name + " has no operator before it");
      if (previous->type == op::kind::queue) {
        return refuse("queue " + o.name + " follows queue " + previous->name +
                      " with no operator between them");
      }
      reduce_in_stage = nullptr;
    }
    if (o.type == op::kind::window && o.window_size == 0) {
      return refuse("window " + o.name + " of 0 elements");
    }
    if (o.type == op::kind::window_time && o.window_width.count() <= 0) {
      return refuse("window " + o.name + " of " + std::to_string(o.window_width.count()) +
                    " ms (the width must be positive)");
    }
    if (o.type == op::kind::reduce) {
      if (reduce_in_stage != nullptr) {
        return refuse("more than one key_by_reduce in one stage is not supported (" +
                      reduce_in_stage->name + " and " + o.name + "); put a queue between them");
      }
      reduce_in_stage = &o;
    }
    previous = &o;
  }
  if (previous->type == op::kind::queue) {
    return refuse("queue " + previous->name + " has no operator after it");
  }
  if (auto checked = check_policy(source_name_ + ".queue", source_queue_); !checked) {
    return refuse(checked.message());
  }
  for (const auto& o : ops_) {
    if (o.type != op::kind::queue) continue;
    if (auto checked = check_policy(o.name, o.edge); !checked) return refuse(checked.message());
  }
  for (const auto& dead_letters : dead_letter_queue_names(source_queue_, ops_)) {
    if (names.count(dead_letters) != 0) {
      return refuse("dead-letter queue " + dead_letters + " has the name of another step");
    }
  }
  return {};
}

std::string pipeline::to_dot() const {
  std::ostringstream out;
  out << "digraph " << dot_quote(name_) << " {\n  rankdir=LR;\n";
  out << "  " << dot_quote(source_name_)
      << " [shape=box, label=" << dot_label(source_name_, source_path_) << "];\n";
  const auto queue_node = [&out](const std::string& name, bool durable) {
    out << "  " << dot_quote(name)
        << " [shape=cylinder, label=" << dot_label(name, durable ? "(durable)" : "(in-memory)")
        << "];\n";
  };
  const auto source_queue = source_name_ + ".queue";
  queue_node(source_queue, true);
  out << "  " << dot_quote(source_name_) << " -> " << dot_quote(source_queue) << ";\n";
  std::string previous = source_queue;
  std::set<std::string> drawn_dead_letters;
  // A stage's operators are drawn in a cluster named after it (its last operator).
  std::vector<const op*> stage;
  const auto flush_stage = [&] {
    if (stage.empty()) return;
    out << "  subgraph " << dot_quote("cluster_" + stage.back()->name) << " {\n";
    out << "    label=" << dot_quote("stage " + stage.back()->name) << ";\n";
    for (const auto* o : stage) {
      out << "    " << dot_quote(o->name)
          << " [label=" << dot_label(o->name, std::string("(") + kind_name(o->type) + ")")
          << "];\n";
    }
    out << "  }\n";
    for (const auto* o : stage) {
      out << "  " << dot_quote(previous) << " -> " << dot_quote(o->name) << ";\n";
      previous = o->name;
    }
    stage.clear();
  };
  for (const auto& o : ops_) {
    if (o.type != op::kind::queue) {
      stage.push_back(&o);
      continue;
    }
    flush_stage();
    queue_node(o.name, o.edge.durable);
    out << "  " << dot_quote(previous) << " -> " << dot_quote(o.name) << ";\n";
    previous = o.name;
  }
  flush_stage();
  // Dead letters: a dashed edge from each queue to its dead-letter queue.
  const auto dead_letter_edge = [&](const std::string& queue, const edge_options& edge) {
    if (edge.dead_letter_queue.empty()) return;
    if (drawn_dead_letters.insert(edge.dead_letter_queue).second) {
      queue_node(edge.dead_letter_queue, true);
    }
    out << "  " << dot_quote(queue) << " -> " << dot_quote(edge.dead_letter_queue)
        << " [style=dashed, label=\"dead letters\"];\n";
  };
  dead_letter_edge(source_queue, source_queue_);
  for (const auto& o : ops_) {
    if (o.type == op::kind::queue) dead_letter_edge(o.name, o.edge);
  }
  out << "}\n";
  return out.str();
}

result<std::unique_ptr<pipeline_run>> pipeline::start(caf::actor_system& system, file_system& fs,
                                                      const std::string& data_dir) const {
  return start_run(system, fs, data_dir, nullptr);
}

result<std::unique_ptr<pipeline_run>> pipeline::start(caf::actor_system& system, file_system& fs,
                                                      const std::string& data_dir,
                                                      const deployment& where) const {
  return start_run(system, fs, data_dir, &where);
}

result<std::unique_ptr<pipeline_run>> pipeline::start_run(caf::actor_system& system,
                                                          file_system& fs,
                                                          const std::string& data_dir,
                                                          const deployment* where) const {
  if (auto valid = validate(); !valid) return valid;
  supervisor_options supervision;
  supervision.max_restarts = max_restarts_;
  supervision.period = restart_period_;
  auto run = std::make_unique<pipeline_run_impl>(system, fs, recovery_progress_);
  if (auto started = run->start(name_, source_name_, source_path_, source_queue_, ops_, data_dir,
                                supervision, where);
      !started) {
    return started;
  }
  return std::unique_ptr<pipeline_run>(std::move(run));
}

pipeline& pipeline::recovery_progress(recovery_progress_factory make) {
  recovery_progress_ = std::move(make);
  return *this;
}

}  // namespace weir

#pragma once
// The pipeline graph: a source, then stages joined by queues, under one
// supervisor. A stage runs a chain of operators (map, filter, flat_map,
// key_by + reduce, tumbling window by count or by time, sink); `queue(...)` ends
// a stage and starts the next one behind a queue (in memory by default, durable
// when asked). The edge after the source is always a durable queue.
//
// Every stage checkpoints its state (reduce accumulators, open windows), the
// input ids it has applied and its outbox (outputs not yet confirmed by the next
// queue, numbered from a checkpointed counter) in one fsynced file before it
// acks its inputs, then publishes the outbox. After any crash state, input and
// output agree: each input is applied once, and each output is stored once in
// the next queue (its de-duplication drops republished numbers). Across a
// process kill this holds for durable edges; see docs/queues-and-supervision.md.
//
// A queue (and the stage reading it) can be placed on another node; each process
// then starts its part with a `deployment` (docs/nodes-and-transport.md).

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <caf/fwd.hpp>

#include "weir/runtime/backoff.hpp"
#include "weir/runtime/checkpoint_log.hpp"
#include "weir/runtime/file_system.hpp"
#include "weir/runtime/status.hpp"
#include "weir/runtime/sync_policy.hpp"
#include "weir/transport/link_options.hpp"

namespace weir {

/// What flows between operators.
struct element {
  std::string key;
  std::string value;
};

/// How a queue between two stages keeps its messages.
struct edge_options {
  /// true: a queue log on disk, `<data_dir>/<name>.queue`, synced before it confirms:
  /// exactly once holds across actor crashes and process kills.
  /// false: the same queue over an in-memory file system owned by the run: it
  /// survives restarts of the queue actor (exactly once still holds) but not the
  /// process; after a process kill the stage behind it may miss what was in the
  /// queue then (never applies anything twice).
  bool durable = false;
  /// The node that hosts this queue and runs the stage that reads it (a name in
  /// deployment::addresses); empty: the home node. A queue on another node than
  /// the stage that writes it must be durable.
  std::string node = {};

  /// Below: the queue's policies (queue.hpp). The log's sync policy applies to a
  /// durable queue; an in-memory one never syncs.
  sync_policy sync = {};
  std::chrono::milliseconds ack_timeout{60'000};
  backoff_policy retry_backoff = backoff_policy::exponential(std::chrono::milliseconds(100),
                                                             std::chrono::milliseconds(30'000));
  /// Deliveries after which a message goes to `dead_letter_queue`; 0 = no limit.
  std::uint32_t max_deliveries = 0;
  /// A durable queue the run creates as `<data_dir>/<name>.queue`; needed by max_deliveries.
  std::string dead_letter_queue = {};
  /// Deliveries the stage reading this queue holds unacked at most.
  std::uint32_t credit = 1024;
  /// A durable queue's log: segment size, automatic snapshot interval and
  /// spare files kept (log_options); the defaults are the log's.
  std::uint64_t segment_bytes_max = log_options{}.segment_bytes_max;
  std::uint64_t snapshot_every_bytes = log_options{}.snapshot_every_bytes;
  std::uint32_t spare_segments_max = log_options{}.spare_segments_max;
};

/// Where the parts of a pipeline run when it spans processes. Every process runs
/// the same pipeline with its own `this_node`; each starts only its own queues
/// and stages and serves its queues to the others over ZeroMQ.
struct deployment {
  std::string this_node;
  std::string home;  ///< runs the source, its queue and what is not placed elsewhere
  std::map<std::string, std::string> addresses;  ///< node name -> tcp://HOST:PORT
  transport::link_options link;
};

class pipeline_run;
struct pipeline_op;

class pipeline {
 public:
  explicit pipeline(std::string name);
  // Out of line: pipeline_op is complete only inside weir_pipeline.
  pipeline(const pipeline& other);
  pipeline(pipeline&& other) noexcept;
  pipeline& operator=(const pipeline& other);
  pipeline& operator=(pipeline&& other) noexcept;
  ~pipeline();

  /// One element per line of a text file (value = the line). Restarting with the
  /// same file resumes: lines already in the queue are recognised and dropped.
  /// Its queue, named "<name>.queue", is durable.
  pipeline& source_lines(std::string name, std::string path);
  /// The same with the source queue's policies (it is durable whatever `queue.durable` says).
  pipeline& source_lines(std::string name, std::string path, edge_options queue);
  pipeline& map(std::string name, std::function<element(const element&)> fn);
  pipeline& filter(std::string name, std::function<bool(const element&)> keep);
  pipeline& flat_map(std::string name, std::function<std::vector<element>(const element&)> fn);
  /// Folds elements per key into a text accumulator ("" for a new key); emits (key, accumulator).
  /// At most one per stage.
  pipeline& key_by_reduce(std::string name, std::function<std::string(const element&)> key,
                          std::function<std::string(const std::string&, const element&)> reduce);
  /// key_by_reduce that counts elements per element.key.
  pipeline& count_by_key(std::string name);
  /// Tumbling window by count: every `count` elements become aggregate(elements),
  /// emitted downstream. The open window is part of the stage's checkpoint.
  pipeline& tumbling_window_count(std::string name, std::size_t count,
                                  std::function<element(const std::vector<element>&)> aggregate);
  /// Tumbling window by processing time: windows are [k * width, (k + 1) * width)
  /// on the wall clock (system_clock, from the Unix epoch), and an element belongs
  /// to the window that holds the moment this operator sees it. A window closes at
  /// its end, by a timer in the stage, or earlier when an element of a later window
  /// arrives; then aggregate(its elements) goes on down the chain. Windows without
  /// elements emit nothing. The open window and its start are checkpointed, so a
  /// restarted stage closes it once (late, if it was down at the end).
  pipeline& tumbling_window_time(std::string name, std::chrono::milliseconds width,
                                 std::function<element(const std::vector<element>&)> aggregate);
  /// A terminal side effect, called at least once per element (again after a crash).
  pipeline& sink(std::string name, std::function<void(const element&)> fn);

  /// Ends the current stage (named after its last operator) and starts a new one
  /// that reads from a queue called `name`, in `<data_dir>/<name>.queue`.
  pipeline& queue(std::string name, edge_options options = {});

  /// The supervisor's restart intensity: more than `restarts_max` restarts of
  /// queues or stages within `period` and the run stops (wait() then fails). The
  /// restart backoff also counts a child's restarts within `period`.
  /// Default: 5 within 10 s.
  pipeline& restart_intensity(std::uint32_t restarts_max, std::chrono::milliseconds period);

  /// Makes, per queue name, the callback its log's recovery reports progress to
  /// (log_options::recovery_progress; e.g. progress_bar::callback).
  using recovery_progress_factory =
      std::function<std::function<void(std::uint64_t bytes_done, std::uint64_t bytes_total)>(
          const std::string& queue)>;
  pipeline& recovery_progress(recovery_progress_factory make);

  /// invalid_argument naming the problem: no source, no operator, a queue with no
  /// operator before or after it, two key_by_reduce in one stage, bad or duplicate
  /// names (operators, queues and the source share one namespace), empty windows.
  status validate() const;

  /// The graph in Graphviz DOT: queues as cylinders, each stage's operators in a cluster.
  std::string to_dot() const;

  /// Starts it with its data (queue logs, stage checkpoints) under `data_dir`.
  /// `fs` must outlive the run.
  result<std::unique_ptr<pipeline_run>> start(caf::actor_system& system, file_system& fs,
                                              const std::string& data_dir) const;

  /// Starts this process's part of a pipeline spread over nodes. wait() then
  /// covers only the local part: on the home node, until the source is read and
  /// the local stages have handed everything on; elsewhere, until the local
  /// queues are empty and the local stages idle (more may come later).
  result<std::unique_ptr<pipeline_run>> start(caf::actor_system& system, file_system& fs,
                                              const std::string& data_dir,
                                              const deployment& where) const;

 private:
  std::string name_;
  std::string source_name_;
  std::string source_path_;
  edge_options source_queue_ = {.durable = true};
  std::vector<pipeline_op> ops_;  // pipeline_op.hpp, private to weir_pipeline
  std::uint32_t restarts_max_ = 5;
  std::chrono::milliseconds restart_period_{10'000};
  recovery_progress_factory recovery_progress_ = {};

  result<std::unique_ptr<pipeline_run>> start_run(caf::actor_system& system, file_system& fs,
                                                  const std::string& data_dir,
                                                  const deployment* where) const;
};

/// A started pipeline; destroying it stops it.
class pipeline_run {
 public:
  virtual ~pipeline_run() = default;

  /// Waits until the whole source is in the first queue and every stage has
  /// applied all its queue holds, confirmed its outbox downstream and closed its
  /// time windows (open count windows stay open). timed_out with what is missing
  /// otherwise; closed at once when the supervisor gave up (a part kept failing).
  virtual status wait(std::chrono::milliseconds timeout) = 0;

  /// The reduce state as last checkpointed (key -> accumulator), sorted by key, of
  /// the stage with a key_by_reduce (the last such stage if several).
  virtual result<std::map<std::string, std::string>> state() const = 0;

  /// The running actor of a queue (by its name; the source's is "<source>" or "<source>.queue")
  /// or of a stage (by the name of its last operator); an invalid handle while it
  /// restarts or for an unknown name. A hook for tests that kill parts of a run.
  virtual caf::actor actor_of(const std::string& name) const = 0;

  /// The queues this process runs, dead-letter queues first, by the names they
  /// log and answer under (the source's is "<source>"), for actor_of and metrics.
  virtual std::vector<std::string> queue_names() const = 0;

  /// The supervisor of this process's part; answers `tree_atom` (supervisor.hpp).
  virtual caf::actor supervisor() const = 0;
};

}  // namespace weir

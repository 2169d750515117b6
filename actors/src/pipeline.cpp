#include "weir/actors/pipeline.hpp"

#include <atomic>
#include <fstream>
#include <mutex>
#include <set>
#include <sstream>
#include <thread>

#include <spdlog/spdlog.h>
#include <caf/all.hpp>

#include "weir/actors/producer.hpp"
#include "weir/actors/queue.hpp"
#include "weir/runtime/checkpoint_file.hpp"
#include "weir/runtime/id_set.hpp"
#include "weir/runtime/supervisor.hpp"
#include "weir/schema/stage.capnp.h"

namespace weir {

namespace {

using ops_ptr = std::shared_ptr<const std::vector<pipeline::op>>;
constexpr std::int64_t stage_credit = 1024;

// --- the stage: runs the operator chain, checkpoints, then acks ---------------

struct stage_state {
  static inline const char* name = "weir.stage";
  ops_ptr ops;
  std::string stage_name;
  std::string checkpoint_path;
  file_system* fs = nullptr;
  id_set applied;
  std::map<std::string, std::string> reduce_state;
  std::map<std::string, std::vector<element>> windows;  // open window per operator name
  std::shared_ptr<std::atomic<std::uint64_t>> applied_count;
};

using stage_actor = caf::stateful_actor<stage_state>;

void run_chain(stage_state& state, element item, std::size_t from) {
  const auto& ops = *state.ops;
  for (auto i = from; i < ops.size(); ++i) {
    const auto& op = ops[i];
    switch (op.type) {
      case pipeline::op::kind::map:
        item = op.map_fn(item);
        break;
      case pipeline::op::kind::filter:
        if (!op.filter_fn(item)) return;
        break;
      case pipeline::op::kind::flat_map:
        for (auto& out : op.flat_map_fn(item)) run_chain(state, std::move(out), i + 1);
        return;
      case pipeline::op::kind::reduce: {
        auto key = op.key_fn(item);
        auto& accumulator = state.reduce_state[key];
        accumulator = op.reduce_fn(accumulator, item);
        item = {std::move(key), accumulator};
        break;
      }
      case pipeline::op::kind::sink:
        op.sink_fn(item);
        break;
      case pipeline::op::kind::window: {
        auto& open = state.windows[op.name];
        open.push_back(std::move(item));
        if (open.size() < op.window_size) return;
        item = op.window_fn(open);
        open.clear();
        break;
      }
    }
  }
}

status write_stage_checkpoint(const stage_state& state) {
  capnp::MallocMessageBuilder builder;
  auto checkpoint = builder.initRoot<schema::StageCheckpoint>();
  checkpoint.setFormatVersion(schema::STAGE_FORMAT_VERSION);
  checkpoint.setStage(state.stage_name);
  auto applied = checkpoint.initApplied(static_cast<unsigned>(state.applied.ranges().size()));
  unsigned i = 0;
  for (const auto& [begin, end] : state.applied.ranges()) {
    applied[i].setBegin(begin);
    applied[i].setEnd(end);
    ++i;
  }
  auto entries = checkpoint.initState(static_cast<unsigned>(state.reduce_state.size()));
  i = 0;
  for (const auto& [key, value] : state.reduce_state) {
    entries[i].setKey(key);
    entries[i].setValue(value);
    ++i;
  }
  auto windows = checkpoint.initWindows(static_cast<unsigned>(state.windows.size()));
  i = 0;
  for (const auto& [name, open] : state.windows) {
    windows[i].setOperator(name);
    auto elements = windows[i].initElements(static_cast<unsigned>(open.size()));
    for (unsigned e = 0; e < open.size(); ++e) {
      elements[e].setKey(open[e].key);
      elements[e].setValue(open[e].value);
    }
    ++i;
  }
  return write_checkpoint_file(*state.fs, state.checkpoint_path, builder,
                               checkpoint_kind::stage_state, schema::STAGE_FORMAT_VERSION);
}

/// Loads a stage checkpoint; a missing file is a fresh stage, anything else wrong is an error.
status load_stage_checkpoint(file_system& fs, const std::string& path, const std::string& stage,
                             id_set& applied, std::map<std::string, std::string>& reduce_state,
                             std::map<std::string, std::vector<element>>* windows = nullptr) {
  auto exists = fs.exists(path);
  if (!exists) return exists.error();
  if (!*exists) return {};
  auto file =
      checkpoint_file::read(fs, path, checkpoint_kind::stage_state, schema::STAGE_FORMAT_VERSION);
  if (!file) return file.error();
  try {
    auto checkpoint = (*file)->message().getRoot<schema::StageCheckpoint>();
    if (checkpoint.getStage() != stage) {
      return {errc::invalid_argument, path + " is the checkpoint of stage '" +
                                          std::string(checkpoint.getStage().cStr()) +
                                          "', not of '" + stage + "'"};
    }
    for (auto range : checkpoint.getApplied()) applied.insert(range.getBegin(), range.getEnd());
    for (auto entry : checkpoint.getState()) reduce_state[entry.getKey()] = entry.getValue();
    if (windows != nullptr) {
      for (auto window : checkpoint.getWindows()) {
        auto& open = (*windows)[window.getOperator()];
        for (auto e : window.getElements()) open.push_back({e.getKey(), e.getValue()});
      }
    }
  } catch (const kj::Exception& e) {
    return {errc::corruption, path + ": " + std::string(e.getDescription().cStr())};
  }
  return {};
}

caf::behavior stage_behavior(stage_actor* self, caf::actor queue, ops_ptr ops, std::string name,
                             std::string checkpoint_path, file_system* fs,
                             std::shared_ptr<std::atomic<std::uint64_t>> applied_count) {
  auto& state = self->state;
  state.ops = std::move(ops);
  state.stage_name = std::move(name);
  state.checkpoint_path = std::move(checkpoint_path);
  state.fs = fs;
  state.applied_count = std::move(applied_count);
  if (auto loaded = load_stage_checkpoint(*fs, state.checkpoint_path, state.stage_name,
                                          state.applied, state.reduce_state, &state.windows);
      !loaded) {
    // Never start from an empty state over a checkpoint that cannot be read: the
    // supervisor retries and gives up, and the error says why.
    spdlog::error("stage {}: {}", state.stage_name, loaded.to_string());
    self->quit(caf::make_error(caf::sec::runtime_error, loaded.to_string()));
    return {};
  }
  state.applied_count->store(state.applied.size());
  self->send(queue, subscribe_atom::value, stage_credit);
  return {
      [self, queue](deliver_atom, const delivery_batch& batch) {
        auto& state = self->state;
        std::vector<id_range> acks;
        bool changed = false;
        for (const auto& d : batch.deliveries) {
          if (!state.applied.contains(d.id)) {
            run_chain(state, element{d.data.key, d.data.payload}, 0);
            state.applied.insert(d.id);
            changed = true;
          }
          if (!acks.empty() && acks.back().end == d.id) {
            ++acks.back().end;
          } else {
            acks.push_back({d.id, d.id + 1});
          }
        }
        // The state and the ids it covers are on disk before any of them is acked.
        if (changed) {
          if (auto written = write_stage_checkpoint(state); !written) {
            spdlog::error("stage {}: checkpoint failed: {}", state.stage_name, written.to_string());
            self->quit(caf::make_error(caf::sec::runtime_error, written.to_string()));
            return;
          }
        }
        state.applied_count->store(state.applied.size());
        self->send(queue, ack_atom::value, std::move(acks));
      },
      [](protocol_error_atom, const protocol_error& e) {
        spdlog::warn("stage: queue {} says: {}", e.queue, e.message);
      },
  };
}

// --- a started pipeline ----------------------------------------------------------

std::uint64_t stable_id(const std::string& text) {
  // FNV-1a: stable across runs and builds (std::hash is not), which producer
  // de-duplication across restarts depends on.
  std::uint64_t hash = 1469598103934665603ull;
  for (unsigned char c : text) hash = (hash ^ c) * 1099511628211ull;
  return hash | 1;
}

class pipeline_run_impl final : public pipeline_run {
 public:
  pipeline_run_impl(caf::actor_system& system, file_system& fs) : system_(system), fs_(fs) {}

  ~pipeline_run_impl() override {
    stopping_ = true;
    if (source_.joinable()) source_.join();
    if (supervisor_) {
      caf::scoped_actor self{system_};
      self->send_exit(supervisor_, caf::exit_reason::user_shutdown);
      self->wait_for(supervisor_);
    }
  }

  status start(const std::string& pipeline_name, const std::string& source_name,
               const std::string& source_path, ops_ptr ops, const std::string& data_dir) {
    if (auto made = fs_.create_dirs(data_dir); !made) return made;
    std::ifstream probe(source_path);
    if (!probe) return {errc::not_found, "source file " + source_path + " cannot be read"};
    checkpoint_path_ = data_dir + "/" + ops->back().name + ".checkpoint";
    stage_name_ = pipeline_name + "/" + ops->back().name;
    applied_ = std::make_shared<std::atomic<std::uint64_t>>(0);

    // Queue then stage, rest_for_one: a restarted queue restarts the stage, which
    // subscribes to the new queue; a restarted stage reloads its checkpoint.
    auto queue_handle = queue_;
    auto* fs = &fs_;
    child_spec queue_spec;
    queue_spec.name = source_name + ".queue";
    queue_spec.start = [queue_handle, fs, data_dir, source_name](caf::actor_system& sys) {
      queue_options options;
      options.name = source_name;
      options.data_dir = data_dir + "/" + source_name + ".queue";
      options.ack_timeout = std::chrono::seconds(60);
      auto spawned = spawn_queue(sys, *fs, options);
      if (!spawned) {
        spdlog::error("pipeline: {}", spawned.error().to_string());
        return caf::actor{};
      }
      std::lock_guard lock(queue_handle->mutex);
      queue_handle->actor = *spawned;
      return *spawned;
    };
    child_spec stage_spec;
    stage_spec.name = ops->back().name;
    stage_spec.start = [queue_handle, ops, fs, name = stage_name_, path = checkpoint_path_,
                        applied = applied_](caf::actor_system& sys) {
      caf::actor queue;
      {
        std::lock_guard lock(queue_handle->mutex);
        queue = queue_handle->actor;
      }
      return sys.spawn(stage_behavior, queue, ops, name, path, fs, applied);
    };
    supervisor_options options;
    options.name = pipeline_name;
    options.strategy = restart_strategy::rest_for_one;
    options.max_restarts = 5;
    options.period = std::chrono::seconds(10);
    supervisor_ = spawn_supervisor(system_, options, {queue_spec, stage_spec});

    source_ = std::thread([this, source_path, id = stable_id(pipeline_name + "/" + source_name)] {
      run_source(source_path, id);
    });
    return {};
  }

  status wait(std::chrono::milliseconds timeout) override {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (!(source_done_.load() && applied_->load() >= total_lines_.load())) {
      if (std::chrono::steady_clock::now() > deadline) {
        return {errc::closed,
                "pipeline did not finish in time: " + std::to_string(applied_->load()) + " of " +
                    (source_done_ ? std::to_string(total_lines_.load())
                                  : std::string("(source still reading)")) +
                    " lines applied"};
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    return {};
  }

  result<std::map<std::string, std::string>> state() const override {
    id_set applied;
    std::map<std::string, std::string> reduce_state;
    if (auto loaded =
            load_stage_checkpoint(fs_, checkpoint_path_, stage_name_, applied, reduce_state);
        !loaded) {
      return loaded;
    }
    return reduce_state;
  }

 private:
  struct shared_queue {
    std::mutex mutex;
    caf::actor actor;
  };

  caf::actor current_queue() {
    std::lock_guard lock(queue_->mutex);
    return queue_->actor;
  }

  void run_source(const std::string& path, std::uint64_t producer_id) {
    caf::scoped_actor self{system_};
    caf::actor queue;
    while (!(queue = current_queue()) && !stopping_) {
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
    std::uint64_t lines = 0;
    std::vector<message_data> chunk;
    auto send_chunk = [&] {
      bool accepted = false;
      while (!accepted && !stopping_) {
        self->request(producer, std::chrono::seconds(1), send_atom::value, chunk)
            .receive([&] { accepted = true; }, [&](caf::error&) { rebind(self, producer, queue); });
      }
      chunk.clear();
    };
    while (!stopping_ && std::getline(in, line)) {
      chunk.push_back({"", line, {}, 0});
      ++lines;
      if (chunk.size() == 1024) send_chunk();
    }
    if (!chunk.empty()) send_chunk();
    bool flushed = false;
    while (!flushed && !stopping_) {
      self->request(producer, std::chrono::seconds(1), flush_atom::value)
          .receive([&] { flushed = true; }, [&](caf::error&) { rebind(self, producer, queue); });
    }
    total_lines_ = lines;
    source_done_ = flushed;
    self->send_exit(producer, caf::exit_reason::user_shutdown);
  }

  // The queue may have been restarted by the supervisor: point the producer at it.
  void rebind(caf::scoped_actor& self, const caf::actor& producer, caf::actor& queue) {
    auto now = current_queue();
    if (now && now != queue) {
      queue = now;
      self->send(producer, rebind_atom::value, queue);
    }
  }

  caf::actor_system& system_;
  file_system& fs_;
  std::shared_ptr<shared_queue> queue_ = std::make_shared<shared_queue>();
  caf::actor supervisor_;
  std::string checkpoint_path_;
  std::string stage_name_;
  std::shared_ptr<std::atomic<std::uint64_t>> applied_;
  std::thread source_;
  std::atomic<bool> stopping_{false};
  std::atomic<bool> source_done_{false};
  std::atomic<std::uint64_t> total_lines_{0};
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

}  // namespace

pipeline::pipeline(std::string name) : name_(std::move(name)) {}

pipeline& pipeline::source_lines(std::string name, std::string path) {
  source_name_ = std::move(name);
  source_path_ = std::move(path);
  return *this;
}

pipeline& pipeline::map(std::string name, std::function<element(const element&)> fn) {
  op o{op::kind::map, std::move(name), {}, {}, {}, {}, {}, {}, 0, {}};
  o.map_fn = std::move(fn);
  ops_.push_back(std::move(o));
  return *this;
}

pipeline& pipeline::filter(std::string name, std::function<bool(const element&)> keep) {
  op o{op::kind::filter, std::move(name), {}, {}, {}, {}, {}, {}, 0, {}};
  o.filter_fn = std::move(keep);
  ops_.push_back(std::move(o));
  return *this;
}

pipeline& pipeline::flat_map(std::string name,
                             std::function<std::vector<element>(const element&)> fn) {
  op o{op::kind::flat_map, std::move(name), {}, {}, {}, {}, {}, {}, 0, {}};
  o.flat_map_fn = std::move(fn);
  ops_.push_back(std::move(o));
  return *this;
}

pipeline& pipeline::key_by_reduce(
    std::string name, std::function<std::string(const element&)> key,
    std::function<std::string(const std::string&, const element&)> reduce) {
  op o{op::kind::reduce, std::move(name), {}, {}, {}, {}, {}, {}, 0, {}};
  o.key_fn = std::move(key);
  o.reduce_fn = std::move(reduce);
  ops_.push_back(std::move(o));
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
  op o{op::kind::window, std::move(name), {}, {}, {}, {}, {}, {}, count, std::move(aggregate)};
  ops_.push_back(std::move(o));
  return *this;
}

pipeline& pipeline::sink(std::string name, std::function<void(const element&)> fn) {
  op o{op::kind::sink, std::move(name), {}, {}, {}, {}, {}, {}, 0, {}};
  o.sink_fn = std::move(fn);
  ops_.push_back(std::move(o));
  return *this;
}

status pipeline::validate() const {
  if (name_.empty()) return {errc::invalid_argument, "pipeline without a name"};
  if (source_name_.empty()) {
    return {errc::invalid_argument, "pipeline " + name_ + " has no source"};
  }
  if (ops_.empty()) {
    return {errc::invalid_argument, "pipeline " + name_ + " has no operator after its source"};
  }
  std::set<std::string> names{source_name_};
  int reduces = 0;
  for (const auto& o : ops_) {
    if (o.name.empty() || o.name.find('/') != std::string::npos) {
      return {errc::invalid_argument,
              "pipeline " + name_ + ": operator name '" + o.name + "' is empty or has a '/'"};
    }
    if (!names.insert(o.name).second) {
      return {errc::invalid_argument, "pipeline " + name_ + ": two steps are named " + o.name};
    }
    if (o.type == op::kind::window && o.window_size == 0) {
      return {errc::invalid_argument,
              "pipeline " + name_ + ": window " + o.name + " of 0 elements"};
    }
    if (o.type == op::kind::reduce && ++reduces > 1) {
      return {errc::invalid_argument,
              "pipeline " + name_ + ": more than one key_by_reduce in one stage is not supported"};
    }
  }
  return {};
}

std::string pipeline::to_dot() const {
  std::ostringstream out;
  out << "digraph " << dot_quote(name_) << " {\n  rankdir=LR;\n";
  out << "  " << dot_quote(source_name_)
      << " [shape=box, label=" << dot_label(source_name_, source_path_) << "];\n";
  const auto queue = source_name_ + ".queue";
  out << "  " << dot_quote(queue) << " [shape=cylinder];\n";
  out << "  " << dot_quote(source_name_) << " -> " << dot_quote(queue) << ";\n";
  std::string previous = queue;
  for (const auto& o : ops_) {
    static const char* kinds[] = {"map",           "filter", "flat_map",
                                  "key_by_reduce", "sink",   "tumbling_window_count"};
    out << "  " << dot_quote(o.name)
        << " [label=" << dot_label(o.name, std::string("(") + kinds[static_cast<int>(o.type)] + ")")
        << "];\n";
    out << "  " << dot_quote(previous) << " -> " << dot_quote(o.name) << ";\n";
    previous = o.name;
  }
  out << "}\n";
  return out.str();
}

result<std::unique_ptr<pipeline_run>> pipeline::start(caf::actor_system& system, file_system& fs,
                                                      const std::string& data_dir) const {
  if (auto valid = validate(); !valid) return valid;
  auto run = std::make_unique<pipeline_run_impl>(system, fs);
  if (auto started = run->start(name_, source_name_, source_path_,
                                std::make_shared<const std::vector<op>>(ops_), data_dir);
      !started) {
    return started;
  }
  return std::unique_ptr<pipeline_run>(std::move(run));
}

}  // namespace weir

// The pipeline graph builder, its checks and its DOT export. A started run is
// in pipeline_run.cpp.

#include "weir/pipeline/pipeline.hpp"

#include <set>
#include <sstream>

#include "pipeline_op.hpp"
#include "pipeline_run.hpp"
#include "weir/queue/queue.hpp"

namespace weir {

namespace {

using op_kind = pipeline_op::kind;

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
  if (auto rule = check_delivery_limit(edge.max_deliveries, !edge.dead_letter_queue.empty());
      !rule) {
    return refuse(rule.message());
  }
  if (!edge.dead_letter_queue.empty() && bad_name(edge.dead_letter_queue)) {
    return refuse("dead-letter queue name '" + edge.dead_letter_queue + "' is empty or has a '/'");
  }
  return {};
}

std::set<std::string> dead_letter_queue_names(const edge_options& source_queue,
                                              const std::vector<pipeline_op>& ops) {
  std::set<std::string> names;
  if (!source_queue.dead_letter_queue.empty()) names.insert(source_queue.dead_letter_queue);
  for (const auto& o : ops) {
    if (o.type == pipeline_op::kind::queue && !o.edge.dead_letter_queue.empty()) {
      names.insert(o.edge.dead_letter_queue);
    }
  }
  return names;
}

}  // namespace

pipeline::pipeline(std::string name) : name_(std::move(name)) {}
pipeline::pipeline(const pipeline& other) = default;
pipeline::pipeline(pipeline&& other) noexcept = default;
pipeline& pipeline::operator=(const pipeline& other) = default;
pipeline& pipeline::operator=(pipeline&& other) noexcept = default;
pipeline::~pipeline() = default;

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
  ops_.push_back(
      {.type = pipeline_op::kind::map, .name = std::move(name), .map_fn = std::move(fn)});
  return *this;
}

pipeline& pipeline::filter(std::string name, std::function<bool(const element&)> keep) {
  ops_.push_back(
      {.type = pipeline_op::kind::filter, .name = std::move(name), .filter_fn = std::move(keep)});
  return *this;
}

pipeline& pipeline::flat_map(std::string name,
                             std::function<std::vector<element>(const element&)> fn) {
  ops_.push_back(
      {.type = pipeline_op::kind::flat_map, .name = std::move(name), .flat_map_fn = std::move(fn)});
  return *this;
}

pipeline& pipeline::key_by_reduce(
    std::string name, std::function<std::string(const element&)> key,
    std::function<std::string(const std::string&, const element&)> reduce) {
  ops_.push_back({.type = pipeline_op::kind::reduce,
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
  ops_.push_back({.type = pipeline_op::kind::window,
                  .name = std::move(name),
                  .window_size = count,
                  .window_fn = std::move(aggregate)});
  return *this;
}

pipeline& pipeline::tumbling_window_time(
    std::string name, std::chrono::milliseconds width,
    std::function<element(const std::vector<element>&)> aggregate) {
  ops_.push_back({.type = pipeline_op::kind::window_time,
                  .name = std::move(name),
                  .window_width = width,
                  .window_fn = std::move(aggregate)});
  return *this;
}

pipeline& pipeline::sink(std::string name, std::function<void(const element&)> fn) {
  ops_.push_back(
      {.type = pipeline_op::kind::sink, .name = std::move(name), .sink_fn = std::move(fn)});
  return *this;
}

pipeline& pipeline::queue(std::string name, edge_options options) {
  ops_.push_back({.type = pipeline_op::kind::queue, .name = std::move(name), .edge = options});
  return *this;
}

pipeline& pipeline::restart_intensity(std::uint32_t restarts_max,
                                      std::chrono::milliseconds period) {
  restarts_max_ = restarts_max;
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
                   [](const pipeline_op& o) { return o.type != pipeline_op::kind::queue; })) {
    return {errc::invalid_argument, "pipeline " + name_ + " has no operator after its source"};
  }
  if (bad_name(source_name_)) return refuse("source name '" + source_name_ + "' has a '/'");
  if (restart_period_.count() <= 0) return refuse("restart period must be positive");
  // One namespace: queue names become directory names and DOT nodes next to the source's queue.
  std::set<std::string> names{source_name_, source_name_ + ".queue"};
  const pipeline_op* previous = nullptr;
  const pipeline_op* reduce_in_stage = nullptr;
  for (const auto& o : ops_) {
    const bool is_queue = o.type == pipeline_op::kind::queue;
    if (bad_name(o.name)) {
      return refuse(std::string(is_queue ? "queue" : "operator") + " name '" + o.name +
                    "' is empty or has a '/'");
    }
    if (!names.insert(o.name).second) return refuse("two steps are named " + o.name);
    if (is_queue) {
      if (previous == nullptr) return refuse("queue " + o.name + " has no operator before it");
      if (previous->type == pipeline_op::kind::queue) {
        return refuse("queue " + o.name + " follows queue " + previous->name +
                      " with no operator between them");
      }
      reduce_in_stage = nullptr;
    }
    if (o.type == pipeline_op::kind::window && o.window_size == 0) {
      return refuse("window " + o.name + " of 0 elements");
    }
    if (o.type == pipeline_op::kind::window_time && o.window_width.count() <= 0) {
      return refuse("window " + o.name + " of " + std::to_string(o.window_width.count()) +
                    " ms (the width must be positive)");
    }
    if (o.type == pipeline_op::kind::reduce) {
      if (reduce_in_stage != nullptr) {
        return refuse("more than one key_by_reduce in one stage is not supported (" +
                      reduce_in_stage->name + " and " + o.name + "); put a queue between them");
      }
      reduce_in_stage = &o;
    }
    previous = &o;
  }
  if (previous->type == pipeline_op::kind::queue) {
    return refuse("queue " + previous->name + " has no operator after it");
  }
  if (auto checked = check_policy(source_name_ + ".queue", source_queue_); !checked) {
    return refuse(checked.message());
  }
  for (const auto& o : ops_) {
    if (o.type != pipeline_op::kind::queue) continue;
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
  std::vector<const pipeline_op*> stage;
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
    if (o.type != pipeline_op::kind::queue) {
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
    if (o.type == pipeline_op::kind::queue) dead_letter_edge(o.name, o.edge);
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
  supervision.restarts_max = restarts_max_;
  supervision.period = restart_period_;
  return start_pipeline_run(system, fs, recovery_progress_,
                            {name_, source_name_, source_path_, source_queue_, ops_}, data_dir,
                            std::move(supervision), where);
}
pipeline& pipeline::recovery_progress(recovery_progress_factory make) {
  recovery_progress_ = std::move(make);
  return *this;
}

}  // namespace weir

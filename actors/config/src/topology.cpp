// Loading a topology file: every key is checked, then the graph (source ->
// queue -> stage -> queue -> ... -> last stage), then the pipeline is built and
// validated. Nothing is started here, so a bad file starts nothing.

#include "weir/config/topology.hpp"

#include <algorithm>
#include <filesystem>
#include <optional>
#include <set>
#include <sstream>

#include "config_reading.hpp"

namespace weir {

namespace {

using config::where;
using config::wrong;

struct queue_decl {
  std::string name;
  config::queue_policy policy;
  std::uint32_t credit = 1024;
  std::string node;
  const toml::node* table = nullptr;
};

struct operator_decl {
  std::string type;
  std::string name;
  operator_settings settings;
  std::map<std::string, const toml::node*> setting_nodes;
  const toml::node* table = nullptr;
};

struct stage_decl {
  std::string name;
  std::string input;
  std::string output;  // "" for the last stage
  std::vector<operator_decl> operators;
  const toml::node* table = nullptr;
  const toml::node* input_node = nullptr;
  const toml::node* output_node = nullptr;
};

std::string toml_quote(const std::string& text) {
  std::string out = "\"";
  for (char c : text) {
    if (c == '"' || c == '\\') out += '\\';
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out += c;
  }
  return out + "\"";
}

/// A setting's value in TOML form; tables and arrays are refused.
std::optional<std::string> scalar_text(const toml::node& node) {
  if (auto s = node.value<std::string>(); node.is_string() && s) return *s;
  if (node.is_integer()) return std::to_string(*node.value<std::int64_t>());
  if (node.is_boolean()) return *node.value<bool>() ? "true" : "false";
  if (node.is_floating_point()) {
    std::ostringstream out;
    out << *node.value<double>();
    return out.str();
  }
  return std::nullopt;
}

bool bad_name(const std::string& name) {
  return name.empty() || name.find('/') != std::string::npos;
}

class loader {
 public:
  loader(std::string path, const operator_registry& operators, std::string data_dir)
      : path_(std::move(path)), operators_(operators), data_dir_override_(std::move(data_dir)) {
    base_dir_ = std::filesystem::absolute(path_).parent_path().string();
  }

  result<topology> load() {
    auto parsed = config::parse_file(path_);
    if (!parsed) return parsed.error();
    const auto& root = *parsed;
    const toml::node* source_table = nullptr;
    for (const auto& [key_view, node] : root) {
      const std::string key{key_view.str()};
      status ok;
      if (key == "pipeline") {
        ok = read_pipeline(node);
      } else if (key == "source") {
        source_table = &node;
        ok = read_source(node);
      } else if (key == "queue") {
        ok = read_queues(node);
      } else if (key == "node") {
        ok = read_nodes(node);
      } else if (key == "stage") {
        ok = read_stages(node);
      } else {
        ok = config::unknown_key(path_, node, key, key,
                                 {"pipeline", "source", "queue", "node", "stage"});
      }
      if (!ok) return ok;
    }
    if (source_table == nullptr) {
      return status{errc::invalid_argument,
                    path_ +
                        ": no [source] table (hint: [source] path = \"input.txt\", "
                        "output = \"lines\")"};
    }
    if (stages_.empty()) {
      return status{errc::invalid_argument,
                    path_ + ": no stage (hint: add a [[stage]] table reading queue '" +
                        source_output_ + "')"};
    }
    if (auto ok = check_nodes(); !ok) return ok;
    auto chain = order_stages(*source_table);
    if (!chain) return chain.error();
    return build(*chain);
  }

 private:
  status read_pipeline(const toml::node& node) {
    if (!node.is_table()) return wrong(path_, node, "pipeline", "expected a table [pipeline]");
    for (const auto& [key_view, value] : *node.as_table()) {
      const std::string key{key_view.str()};
      const std::string full = "pipeline." + key;
      status ok;
      std::uint64_t count = 0;
      if (key == "name") {
        ok = config::read_text(path_, value, full, name_);
        if (ok && bad_name(name_))
          ok = wrong(path_, value, full, "a name is non-empty without '/'");
      } else if (key == "data_dir") {
        ok = config::read_text(path_, value, full, data_dir_);
        if (ok && data_dir_.empty()) ok = wrong(path_, value, full, "expected a directory");
      } else if (key == "restart_max") {
        ok = config::read_count(path_, value, full, 10'000, count);
        restart_max_ = static_cast<std::uint32_t>(count);
      } else if (key == "restart_period_ms") {
        ok = config::read_millis(path_, value, full, restart_period_);
      } else if (key == "home") {
        ok = config::read_text(path_, value, full, home_);
        home_node_ = &value;
      } else {
        ok = config::unknown_key(path_, value, full, key,
                                 {"name", "data_dir", "restart_max", "restart_period_ms", "home"});
      }
      if (!ok) return ok;
    }
    return {};
  }

  status read_source(const toml::node& node) {
    if (!node.is_table()) return wrong(path_, node, "source", "expected a table [source]");
    for (const auto& [key_view, value] : *node.as_table()) {
      const std::string key{key_view.str()};
      const std::string full = "source." + key;
      status ok;
      if (key == "type") {
        std::string type;
        ok = config::read_text(path_, value, full, type);
        if (ok && type != "file_lines") {
          ok = wrong(path_, value, full, "the only source type is \"file_lines\"");
        }
      } else if (key == "path") {
        ok = config::read_text(path_, value, full, source_path_);
        if (ok && source_path_.empty()) ok = wrong(path_, value, full, "expected a file");
      } else if (key == "output") {
        ok = config::read_text(path_, value, full, source_output_);
        source_output_node_ = &value;
      } else {
        ok = config::unknown_key(path_, value, full, key, {"type", "path", "output"});
      }
      if (!ok) return ok;
    }
    if (source_path_.empty()) {
      return wrong(path_, node, "source.path", "missing (the text file to read line by line)");
    }
    if (source_output_.empty()) {
      return wrong(path_, node, "source.output", "missing (the queue the lines go to)");
    }
    if (source_path_.front() != '/') source_path_ = base_dir_ + "/" + source_path_;
    return {};
  }

  status read_queues(const toml::node& node) {
    if (!node.is_table()) return wrong(path_, node, "queue", "expected tables [queue.NAME]");
    for (const auto& [name_view, table] : *node.as_table()) {
      const std::string name{name_view.str()};
      const std::string prefix = "queue." + name;
      if (!table.is_table())
        return wrong(path_, table, prefix, "expected a table [" + prefix + "]");
      if (bad_name(name))
        return wrong(path_, table, prefix, "a queue name is non-empty without '/'");
      queue_decl q;
      q.name = name;
      q.table = &table;
      q.policy.ack_timeout = std::chrono::seconds(60);
      for (const auto& [key_view, value] : *table.as_table()) {
        const std::string key{key_view.str()};
        const std::string full = prefix + "." + key;
        status ok;
        std::uint64_t count = 0;
        if (config::read_queue_key(path_, full, key, value, q.policy, ok)) {
        } else if (key == "credit") {
          ok = config::read_count(path_, value, full, 1'000'000, count);
          if (ok && count == 0) ok = wrong(path_, value, full, "expected at least 1");
          q.credit = static_cast<std::uint32_t>(count);
        } else if (key == "node") {
          ok = config::read_text(path_, value, full, q.node);
        } else {
          auto known = config::queue_policy_keys();
          known.push_back("credit");
          known.push_back("node");
          ok = config::unknown_key(path_, value, full, key, known);
        }
        if (!ok) return ok;
      }
      if (auto ok = config::check_queue_policy(path_, table, name, q.policy); !ok) return ok;
      queues_.emplace(name, std::move(q));
    }
    return {};
  }

  status read_nodes(const toml::node& node) {
    if (!node.is_table()) return wrong(path_, node, "node", "expected tables [node.NAME]");
    for (const auto& [name_view, table] : *node.as_table()) {
      const std::string name{name_view.str()};
      const std::string prefix = "node." + name;
      if (!table.is_table())
        return wrong(path_, table, prefix, "expected a table [" + prefix + "]");
      if (bad_name(name))
        return wrong(path_, table, prefix, "a node name is non-empty without '/'");
      topology_node n{name, ""};
      for (const auto& [key_view, value] : *table.as_table()) {
        const std::string key{key_view.str()};
        status ok;
        if (key == "address") {
          ok = config::read_text(path_, value, prefix + ".address", n.address);
          if (ok && n.address.rfind("tcp://", 0) != 0) {
            ok = wrong(path_, value, prefix + ".address", "expected tcp://HOST:PORT");
          }
        } else {
          ok = config::unknown_key(path_, value, prefix + "." + key, key, {"address"});
        }
        if (!ok) return ok;
      }
      if (n.address.empty()) return wrong(path_, table, prefix + ".address", "missing");
      nodes_.push_back(std::move(n));
    }
    return {};
  }

  status read_stages(const toml::node& node) {
    if (!node.is_array_of_tables()) {
      return wrong(path_, node, "stage", "expected [[stage]] tables, one per stage");
    }
    std::size_t index = 0;
    for (const auto& table : *node.as_array()) {
      stage_decl stage;
      stage.table = &table;
      const std::string prefix = "stage[" + std::to_string(index++) + "]";
      const toml::node* operators = nullptr;
      for (const auto& [key_view, value] : *table.as_table()) {
        const std::string key{key_view.str()};
        const std::string full = prefix + "." + key;
        status ok;
        if (key == "name") {
          ok = config::read_text(path_, value, full, stage.name);
        } else if (key == "input") {
          ok = config::read_text(path_, value, full, stage.input);
          stage.input_node = &value;
        } else if (key == "output") {
          ok = config::read_text(path_, value, full, stage.output);
          stage.output_node = &value;
        } else if (key == "operators") {
          operators = &value;
        } else {
          ok = config::unknown_key(path_, value, full, key,
                                   {"name", "input", "output", "operators"});
        }
        if (!ok) return ok;
      }
      if (stage.name.empty()) return wrong(path_, table, prefix + ".name", "missing");
      if (bad_name(stage.name)) {
        return wrong(path_, table, prefix + ".name", "a stage name is non-empty without '/'");
      }
      const std::string named = "stage '" + stage.name + "'";
      if (stage.input.empty()) {
        return wrong(path_, table, named + ".input", "missing (the queue this stage reads)");
      }
      if (operators == nullptr) {
        return wrong(path_, table, named + ".operators",
                     "missing (hint: operators = [{ type = \"split_words\" }])");
      }
      if (auto ok = read_operators(*operators, named, stage); !ok) return ok;
      for (const auto& other : stages_) {
        if (other.name == stage.name) {
          return wrong(path_, table, named + ".name",
                       "two stages are named " + stage.name + " (first at " +
                           where(path_, *other.table) + ")");
        }
      }
      stages_.push_back(std::move(stage));
    }
    return {};
  }

  status read_operators(const toml::node& node, const std::string& stage_key, stage_decl& stage) {
    const std::string key = stage_key + ".operators";
    if (!node.is_array() || node.as_array()->empty()) {
      return wrong(path_, node, key, "expected a non-empty array of tables { type = \"...\" }");
    }
    const auto& list = *node.as_array();
    for (std::size_t i = 0; i < list.size(); ++i) {
      const auto& item = list[i];
      const std::string item_key = key + "[" + std::to_string(i) + "]";
      if (!item.is_table())
        return wrong(path_, item, item_key, "expected a table { type = \"...\" }");
      operator_decl op;
      op.table = &item;
      for (const auto& [setting_view, value] : *item.as_table()) {
        const std::string setting{setting_view.str()};
        if (setting == "type") {
          if (auto ok = config::read_text(path_, value, item_key + ".type", op.type); !ok)
            return ok;
        } else if (setting == "name") {
          if (auto ok = config::read_text(path_, value, item_key + ".name", op.name); !ok)
            return ok;
          if (bad_name(op.name)) {
            return wrong(path_, value, item_key + ".name", "a name is non-empty without '/'");
          }
        } else {
          auto text = scalar_text(value);
          if (!text) {
            return wrong(path_, value, item_key + "." + setting,
                         "expected a string, number or boolean");
          }
          op.settings[setting] = *text;
          op.setting_nodes[setting] = &value;
        }
      }
      if (op.type.empty()) {
        return wrong(path_, item, item_key + ".type", "missing (one of: " + known_types() + ")");
      }
      if (operators_.find(op.type) == nullptr) {
        return config::unknown_key(path_, item, item_key + ".type", op.type, operators_.types());
      }
      if (op.name.empty()) {
        // The last operator names the stage (its checkpoint file and its actor).
        op.name = i + 1 == list.size() ? stage.name : stage.name + "." + op.type;
      }
      stage.operators.push_back(std::move(op));
    }
    return {};
  }

  std::string known_types() const {
    std::string list;
    for (const auto& t : operators_.types()) list += (list.empty() ? "" : ", ") + t;
    return list;
  }

  status undeclared(const toml::node& node, const std::string& key, const std::string& queue) {
    return wrong(path_, node, key,
                 "queue '" + queue + "' is referenced but not declared (hint: add a [queue." +
                     queue + "] table)");
  }

  status check_nodes() {
    std::set<std::string> names;
    for (const auto& n : nodes_) names.insert(n.name);
    if (nodes_.empty()) {
      if (home_node_ != nullptr) {
        return wrong(path_, *home_node_, "pipeline.home",
                     "names a node but there are no [node.NAME] tables");
      }
      for (const auto& [name, q] : queues_) {
        if (!q.node.empty()) {
          return wrong(path_, *q.table, "queue." + name + ".node",
                       "names node '" + q.node + "' but there are no [node.NAME] tables");
        }
      }
      return {};
    }
    if (home_.empty()) {
      return status{errc::invalid_argument,
                    path_ +
                        ": key 'pipeline.home': missing (with [node.NAME] tables, say which "
                        "node reads the source)"};
    }
    if (names.count(home_) == 0) {
      return wrong(path_, *home_node_, "pipeline.home", "no [node." + home_ + "] table");
    }
    for (const auto& [name, q] : queues_) {
      if (!q.node.empty() && names.count(q.node) == 0) {
        return wrong(path_, *q.table, "queue." + name + ".node", "no [node." + q.node + "] table");
      }
    }
    return {};
  }

  /// The stages from the source on; every declared queue and stage on the way.
  result<std::vector<const stage_decl*>> order_stages(const toml::node& source_table) {
    const toml::node& output_node =
        source_output_node_ != nullptr ? *source_output_node_ : source_table;
    if (queues_.count(source_output_) == 0) {
      return undeclared(output_node, "source.output", source_output_);
    }
    std::map<std::string, const stage_decl*> reader, writer;
    for (const auto& s : stages_) {
      if (queues_.count(s.input) == 0) {
        return undeclared(*s.input_node, "stage '" + s.name + "'.input", s.input);
      }
      if (auto [it, fresh] = reader.emplace(s.input, &s); !fresh) {
        return wrong(path_, *s.input_node, "stage '" + s.name + "'.input",
                     "queue '" + s.input + "' is already read by stage '" + it->second->name +
                         "' (a queue has one reading stage; fan-out is not supported)");
      }
      if (s.output.empty()) continue;
      if (queues_.count(s.output) == 0) {
        return undeclared(*s.output_node, "stage '" + s.name + "'.output", s.output);
      }
      if (s.output == source_output_) {
        return wrong(path_, *s.output_node, "stage '" + s.name + "'.output",
                     "queue '" + s.output +
                         "' is the source's; writing it back makes a cycle, which a pipeline "
                         "cannot have");
      }
      if (auto [it, fresh] = writer.emplace(s.output, &s); !fresh) {
        return wrong(path_, *s.output_node, "stage '" + s.name + "'.output",
                     "queue '" + s.output + "' is already written by stage '" + it->second->name +
                         "' (fan-in is not supported)");
      }
    }
    std::vector<const stage_decl*> chain;
    std::set<std::string> seen_queues{source_output_};
    std::string queue = source_output_;
    for (;;) {
      auto next = reader.find(queue);
      if (next == reader.end()) {
        const auto* last = chain.empty() ? nullptr : chain.back();
        const toml::node& at = last != nullptr ? *last->output_node : output_node;
        return wrong(path_, at,
                     last != nullptr ? "stage '" + last->name + "'.output" : "source.output",
                     "no stage reads queue '" + queue + "' (hint: add a stage with input = \"" +
                         queue + "\", or leave output out of the last stage)");
      }
      const auto* stage = next->second;
      chain.push_back(stage);
      if (stage->output.empty()) break;
      if (!seen_queues.insert(stage->output).second) {
        return wrong(path_, *stage->output_node, "stage '" + stage->name + "'.output",
                     "queue '" + stage->output +
                         "' was already passed on the way from the "
                         "source: the stages form a cycle, which a pipeline cannot have");
      }
      queue = stage->output;
    }
    for (const auto& s : stages_) {
      if (std::find(chain.begin(), chain.end(), &s) != chain.end()) continue;
      // Not reached from the source: on a loop of its own, or after a dead end.
      std::string cycle = s.name;
      for (const stage_decl* at = &s; !at->output.empty();) {
        auto it = reader.find(at->output);
        if (it == reader.end()) break;
        at = it->second;
        cycle += " -> " + at->name;
        if (at == &s) {
          return wrong(path_, *s.table, "stage '" + s.name + "'",
                       "stages " + cycle + " form a cycle, which a pipeline cannot have");
        }
        if (cycle.size() > 4096) break;
      }
      return wrong(path_, *s.table, "stage '" + s.name + "'.input",
                   "stage '" + s.name + "' reads queue '" + s.input +
                       "', which nothing on the way from the source writes");
    }
    for (const auto& [name, q] : queues_) {
      if (seen_queues.count(name) == 0) {
        return wrong(path_, *q.table, "queue." + name,
                     "declared but no stage reads or writes it (hint: remove it)");
      }
    }
    for (const auto& [name, q] : queues_) {
      const auto& dead = q.policy.dead_letter_queue;
      if (!dead.empty() && queues_.count(dead) != 0) {
        return wrong(path_, *q.table, "queue." + name + ".dead_letter_queue",
                     "'" + dead +
                         "' is a pipeline queue; a dead-letter queue is created by the "
                         "run and must have a name of its own");
      }
    }
    if (queues_.at(source_output_).policy.durable == false) {
      return wrong(path_, *queues_.at(source_output_).table, "queue." + source_output_ + ".durable",
                   "the source's queue is always durable (it is how a rerun resumes)");
    }
    return chain;
  }

  edge_options edge_of(const queue_decl& q) const {
    edge_options edge;
    edge.durable = q.policy.durable;
    edge.node = q.node;
    edge.sync = q.policy.sync;
    edge.ack_timeout = q.policy.ack_timeout;
    edge.retry_backoff = q.policy.retry_backoff();
    edge.max_deliveries = q.policy.max_deliveries;
    edge.dead_letter_queue = q.policy.dead_letter_queue;
    edge.credit = q.credit;
    edge.segment_bytes_max = q.policy.segment_bytes_max;
    edge.snapshot_every_bytes = q.policy.snapshot_every_bytes;
    edge.spare_segments_max = q.policy.spare_segments_max;
    return edge;
  }

  result<topology> build(const std::vector<const stage_decl*>& chain) {
    topology t;
    t.name = name_.empty() ? std::filesystem::path(path_).stem().string() : name_;
    const auto& data_dir = !data_dir_override_.empty() ? data_dir_override_
                           : !data_dir_.empty()        ? data_dir_
                                                       : std::string("weir-data");
    t.data_dir = std::filesystem::absolute(data_dir).lexically_normal().string();
    t.source_path = source_path_;
    t.source_queue = source_output_;
    for (const auto& [name, q] : queues_) {
      const auto& dead = q.policy.dead_letter_queue;
      if (!dead.empty() && std::find(t.dead_letter_queues.begin(), t.dead_letter_queues.end(),
                                     dead) == t.dead_letter_queues.end()) {
        t.dead_letter_queues.push_back(dead);
      }
    }
    t.nodes = nodes_;
    t.home = home_;
    t.graph = pipeline(t.name);
    t.graph.source_lines(source_output_, source_path_, edge_of(queues_.at(source_output_)));
    t.graph.restart_intensity(restart_max_, restart_period_);
    for (const auto* stage : chain) {
      for (const auto& op : stage->operators) {
        const auto* factory = operators_.find(op.type);
        if (auto made = (*factory)(t.graph, {op.name, op.settings, base_dir_}); !made) {
          return located(*stage, op, made.message());
        }
        if (op.type == "count_by_key") t.counting_stage = stage->name;
      }
      if (!stage->output.empty()) t.graph.queue(stage->output, edge_of(queues_.at(stage->output)));
    }
    if (auto valid = t.graph.validate(); !valid) {
      return status{errc::invalid_argument, path_ + ": " + valid.message()};
    }
    t.effective_config = effective(t, chain);
    return t;
  }

  /// A factory's "KEY: why" at KEY's line, anything else at the operator's.
  status located(const stage_decl& stage, const operator_decl& op, const std::string& message) {
    const std::string prefix = "stage '" + stage.name + "' operator '" + op.name + "'";
    auto colon = message.find(": ");
    if (colon != std::string::npos) {
      auto key = message.substr(0, colon);
      if (auto it = op.setting_nodes.find(key); it != op.setting_nodes.end()) {
        return wrong(path_, *it->second, prefix + "." + key, message.substr(colon + 2));
      }
    }
    return status{errc::invalid_argument,
                  where(path_, *op.table) + ": " + prefix + " (" + op.type + "): " + message};
  }

  std::string effective(const topology& t, const std::vector<const stage_decl*>& chain) const {
    std::ostringstream out;
    out << "# effective configuration of " << path_ << " (defaults included)\n";
    out << "[pipeline]\nname = " << toml_quote(t.name) << "\ndata_dir = " << toml_quote(t.data_dir)
        << "\nrestart_max = " << restart_max_ << "\nrestart_period_ms = " << restart_period_.count()
        << "\n";
    if (!home_.empty()) out << "home = " << toml_quote(home_) << "\n";
    out << "\n[source]\ntype = \"file_lines\"\npath = " << toml_quote(source_path_)
        << "\noutput = " << toml_quote(source_output_) << "\n";
    for (const auto& n : nodes_) {
      out << "\n[node." << n.name << "]\naddress = " << toml_quote(n.address) << "\n";
    }
    const auto queue_table = [&](const queue_decl& q) {
      const auto& p = q.policy;
      out << "\n[queue." << q.name << "]\ndurable = " << (p.durable ? "true" : "false")
          << "\nsync = " << toml_quote(p.sync.to_string()) << "\ncredit = " << q.credit
          << "\nack_timeout_ms = " << p.ack_timeout.count()
          << "\nretry_backoff_initial_ms = " << p.retry_backoff_initial.count()
          << "\nretry_backoff_max_ms = " << p.retry_backoff_max.count()
          << "\nmax_deliveries = " << p.max_deliveries
          << "\ndead_letter_queue = " << toml_quote(p.dead_letter_queue)
          << "\nsegment_bytes_max = " << p.segment_bytes_max
          << "\nsnapshot_every_bytes = " << p.snapshot_every_bytes
          << "\nspare_segments_max = " << p.spare_segments_max << "\n";
      if (!nodes_.empty()) out << "node = " << toml_quote(q.node.empty() ? home_ : q.node) << "\n";
    };
    queue_table(queues_.at(source_output_));
    for (const auto* stage : chain) {
      out << "\n[[stage]]\nname = " << toml_quote(stage->name)
          << "\ninput = " << toml_quote(stage->input) << "\n";
      if (!stage->output.empty()) out << "output = " << toml_quote(stage->output) << "\n";
      out << "operators = [\n";
      for (const auto& op : stage->operators) {
        out << "  { type = " << toml_quote(op.type) << ", name = " << toml_quote(op.name);
        for (const auto& [key, value] : op.settings) {
          const auto* node = op.setting_nodes.at(key);
          out << ", " << key << " = " << (node->is_string() ? toml_quote(value) : value);
        }
        out << " },\n";
      }
      out << "]\n";
      if (!stage->output.empty()) queue_table(queues_.at(stage->output));
    }
    return out.str();
  }

  std::string path_;
  const operator_registry& operators_;
  std::string base_dir_;
  std::string name_;
  std::string data_dir_;
  std::string data_dir_override_;
  std::uint32_t restart_max_ = 5;
  std::chrono::milliseconds restart_period_{10'000};
  std::string home_;
  const toml::node* home_node_ = nullptr;
  std::string source_path_;
  std::string source_output_;
  const toml::node* source_output_node_ = nullptr;
  std::map<std::string, queue_decl> queues_;
  std::vector<topology_node> nodes_;
  std::vector<stage_decl> stages_;
};

}  // namespace

result<topology> load_topology(const std::string& path, const operator_registry& operators,
                               const std::string& data_dir) {
  loader reading(path, operators, data_dir);
  return reading.load();
}

result<deployment> deployment_of(const topology& t, const std::string& this_node) {
  if (t.nodes.empty()) {
    return status{errc::invalid_argument, "the topology has no [node.NAME] tables"};
  }
  deployment where;
  where.this_node = this_node;
  where.home = t.home;
  for (const auto& n : t.nodes) where.addresses[n.name] = n.address;
  if (where.addresses.count(this_node) == 0) {
    std::string names;
    for (const auto& n : t.nodes) names += (names.empty() ? "" : ", ") + n.name;
    return status{errc::invalid_argument,
                  "node '" + this_node + "' is not in the topology (its nodes: " + names + ")"};
  }
  return where;
}

}  // namespace weir

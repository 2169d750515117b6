#include "weir/node/metrics.hpp"

#include <charconv>
#include <cmath>
#include <future>
#include <memory>
#include <string_view>

#include <caf/all.hpp>

namespace weir {

namespace {

using labels = std::vector<std::pair<std::string_view, std::string_view>>;

// Label values escape backslash, double quote and newline (format 0.0.4).
void append_escaped(std::string& out, std::string_view value) {
  for (char c : value) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '"') {
      out += "\\\"";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
}

std::string number(double value) {
  if (std::isinf(value)) return value > 0 ? "+Inf" : "-Inf";
  if (std::isnan(value)) return "NaN";
  // Plain decimals ("0.00025", "10") as Prometheus writes `le` itself; the
  // shortest form that reads back exactly, so nothing is lost.
  const auto magnitude = std::fabs(value);
  const auto format = magnitude != 0 && (magnitude < 1e-9 || magnitude >= 1e15)
                          ? std::chars_format::general
                          : std::chars_format::fixed;
  char text[400];
  auto [end, error] = std::to_chars(text, text + sizeof text, value, format);
  return error == std::errc{} ? std::string(text, end) : "NaN";
}

std::string number(std::uint64_t value) {
  return std::to_string(value);
}

/// Builds the text family by family: a family's samples must be contiguous.
class exposition {
 public:
  void family(std::string_view name, std::string_view type, std::string_view help) {
    out_ += "# HELP ";
    out_ += name;
    out_ += ' ';
    out_ += help;  // help texts here hold no backslash or newline to escape
    out_ += "\n# TYPE ";
    out_ += name;
    out_ += ' ';
    out_ += type;
    out_ += '\n';
  }

  void sample(std::string_view name, const labels& with, const std::string& value) {
    out_ += name;
    if (!with.empty()) {
      out_ += '{';
      for (std::size_t i = 0; i < with.size(); ++i) {
        if (i > 0) out_ += ',';
        out_ += with[i].first;
        out_ += "=\"";
        append_escaped(out_, with[i].second);
        out_ += '"';
      }
      out_ += '}';
    }
    out_ += ' ';
    out_ += value;
    out_ += '\n';
  }

  std::string take() { return std::move(out_); }

 private:
  std::string out_;
};

struct queue_family {
  const char* name;
  const char* type;
  const char* help;
  std::uint64_t queue_stats::*field;
};

// Counters restart from 0 when a queue actor restarts (Prometheus treats a drop
// as a reset); the levels are what the queue holds now.
constexpr queue_family queue_families[] = {
    {"weir_queue_ready_messages", "gauge", "Messages ready for delivery (the queue's depth).",
     &queue_stats::ready},
    {"weir_queue_unacked_messages", "gauge", "Messages delivered and not yet acked.",
     &queue_stats::unacked},
    {"weir_queue_delayed_messages", "gauge", "Messages waiting out a retry backoff.",
     &queue_stats::delayed},
    {"weir_queue_dead_lettering_messages", "gauge",
     "Messages sent to the dead-letter queue and not yet confirmed there.",
     &queue_stats::dead_lettering},
    {"weir_queue_consumers", "gauge", "Consumers subscribed now.", &queue_stats::consumers},
    {"weir_queue_published_total", "counter",
     "Messages stored by publishes (resent duplicates not included).", &queue_stats::published},
    {"weir_queue_confirmed_total", "counter", "Messages confirmed to their producers as durable.",
     &queue_stats::confirmed},
    {"weir_queue_duplicates_total", "counter", "Resent publishes dropped by de-duplication.",
     &queue_stats::duplicates},
    {"weir_queue_delivered_total", "counter", "Deliveries to consumers, redeliveries included.",
     &queue_stats::delivered},
    {"weir_queue_redelivered_total", "counter", "Deliveries with attempt > 1.",
     &queue_stats::redelivered},
    {"weir_queue_acked_total", "counter", "Messages acked by consumers.", &queue_stats::acked},
    {"weir_queue_dead_lettered_total", "counter", "Messages moved to the dead-letter queue.",
     &queue_stats::dead_lettered},
    {"weir_queue_protocol_errors_total", "counter",
     "Refused protocol requests: bad acks or credit, fenced epochs, sequence gaps.",
     &queue_stats::protocol_errors},
    {"weir_queue_storage_errors_total", "counter", "Log appends or reads that failed.",
     &queue_stats::storage_errors},
    {"weir_queue_log_bytes", "gauge", "Size of the queue's checkpoint log segments.",
     &queue_stats::log_bytes},
    {"weir_queue_log_segments", "gauge", "Segment files of the queue's checkpoint log.",
     &queue_stats::log_segments},
    {"weir_queue_log_segments_reused_total", "counter",
     "New log segments written over a freed segment's file (a spare) since the queue started.",
     &queue_stats::log_segments_reused},
};

struct link_family {
  const char* name;
  const char* help;
  std::uint64_t transport::link_stats::*field;
};

constexpr link_family link_families[] = {
    {"weir_link_frames_in_total", "Frames received.", &transport::link_stats::frames_in},
    {"weir_link_frames_out_total", "Frames sent.", &transport::link_stats::frames_out},
    {"weir_link_bytes_in_total", "Bytes of frames received.", &transport::link_stats::bytes_in},
    {"weir_link_bytes_out_total", "Bytes of frames sent.", &transport::link_stats::bytes_out},
    {"weir_link_malformed_frames_total",
     "Frames refused as malformed (not Cap'n Proto, truncated, unknown kinds).",
     &transport::link_stats::malformed_frames},
    {"weir_link_version_mismatches_total", "Frames of another protocol version.",
     &transport::link_stats::version_mismatches},
    {"weir_link_oversized_frames_total", "Frames over the frame size limit.",
     &transport::link_stats::oversized_frames},
    {"weir_link_handshake_violations_total", "Frames before hello.",
     &transport::link_stats::handshake_violations},
    {"weir_link_sessions_refused_total", "Hellos refused because sessions_max was reached.",
     &transport::link_stats::sessions_refused},
    {"weir_link_frames_dropped_total",
     "Frames not sent (peer gone, send queue full) or received for an ended session.",
     &transport::link_stats::frames_dropped},
    {"weir_link_peers_up_total", "Sessions that completed the handshake.",
     &transport::link_stats::peers_up},
    {"weir_link_peers_lost_total", "Sessions that ended (silent, closed or misbehaving).",
     &transport::link_stats::peers_lost},
};

// Every actor of the tree with the name of its supervisor ("" for the root).
void flatten(const supervision_node& node, const std::string& parent,
             std::vector<std::pair<const supervision_node*, const std::string*>>& out) {
  out.emplace_back(&node, &parent);
  for (const auto& child : node.children) flatten(child, node.name, out);
}

void render_tree_into(std::string& out, const supervision_node& node, std::size_t depth) {
  out.append(2 * depth, ' ');
  out += node.name;
  out += " state=";
  out += node.state;
  out += " restarts=";
  out += std::to_string(node.restarts);
  out += '\n';
  for (const auto& child : node.children) render_tree_into(out, child, depth + 1);
}

}  // namespace

void collect_metrics(caf::actor_system& system, metrics_source source,
                     std::chrono::milliseconds timeout,
                     std::function<void(metrics_snapshot)> done) {
  struct progress {
    metrics_snapshot snapshot;
    std::size_t pending = 0;
    std::function<void(metrics_snapshot)> done;
    void finish_one() {
      if (--pending == 0) done(std::move(snapshot));
    }
  };
  auto state = std::make_shared<progress>();
  state->done = std::move(done);
  state->snapshot.node = source.node;
  for (const auto& [name, queue] : source.queues) {
    state->snapshot.queues.emplace_back(name, std::nullopt);
    if (queue) ++state->pending;
  }
  if (source.supervisor) ++state->pending;
  if (state->pending == 0) {
    state->done(std::move(state->snapshot));
    return;
  }
  // One short-lived actor asks everyone at once; it ends with its last answer.
  // Its inputs go in as spawn arguments, not captures: CAF 0.17 binds a
  // reference through a null pointer when a function actor gets no arguments
  // (UBSan reports it in init_fun_factory).
  auto ask = [](caf::event_based_actor* self, std::shared_ptr<progress> state,
                const metrics_source& source, std::chrono::milliseconds timeout) {
    for (std::size_t i = 0; i < source.queues.size(); ++i) {
      const auto& queue = source.queues[i].second;
      if (!queue) continue;
      self->request(queue, timeout, stats_atom::value)
          .then(
              [state, i](queue_stats& stats) {
                stats.name = state->snapshot.queues[i].first;
                state->snapshot.queues[i].second = std::move(stats);
                state->finish_one();
              },
              [state](caf::error&) { state->finish_one(); });
    }
    if (source.supervisor) {
      self->request(source.supervisor, timeout, tree_atom::value)
          .then(
              [state](supervision_node& tree) {
                state->snapshot.tree = std::move(tree);
                state->finish_one();
              },
              [state](caf::error&) { state->finish_one(); });
    }
  };
  system.spawn(ask, state, std::move(source), timeout);
}

metrics_snapshot collect_metrics(caf::actor_system& system, const metrics_source& source,
                                 std::chrono::milliseconds timeout) {
  auto answer = std::make_shared<std::promise<metrics_snapshot>>();
  auto future = answer->get_future();
  collect_metrics(system, source, timeout,
                  [answer](metrics_snapshot snapshot) { answer->set_value(std::move(snapshot)); });
  // Every request carries the timeout, so `done` runs; the margin covers a
  // system that is shutting down and no longer schedules the collector.
  if (future.wait_for(timeout + std::chrono::seconds(2)) == std::future_status::ready) {
    return future.get();
  }
  metrics_snapshot nothing;
  nothing.node = source.node;
  for (const auto& [name, queue] : source.queues) nothing.queues.emplace_back(name, std::nullopt);
  return nothing;
}

std::string render_prometheus(const metrics_snapshot& snapshot) {
  exposition out;
  out.family("weir_queue_up", "gauge",
             "1 when the queue answered this scrape, 0 when it did not in time (restarting).");
  for (const auto& [name, stats] : snapshot.queues) {
    out.sample("weir_queue_up", {{"queue", name}}, stats ? "1" : "0");
  }
  for (const auto& family : queue_families) {
    out.family(family.name, family.type, family.help);
    for (const auto& [name, stats] : snapshot.queues) {
      if (stats) out.sample(family.name, {{"queue", name}}, number((*stats).*family.field));
    }
  }

  out.family("weir_fsync_seconds", "histogram",
             "Duration of each fdatasync of the queue's checkpoint log (group commits, segment "
             "seals).");
  for (const auto& [name, stats] : snapshot.queues) {
    if (!stats) continue;
    const auto& h = stats->fsync_seconds;
    std::uint64_t cumulative = 0;
    for (std::size_t i = 0; i < h.counts.size(); ++i) {
      cumulative += h.counts[i];
      const auto le = i < h.bounds.size() ? number(h.bounds[i]) : std::string("+Inf");
      out.sample("weir_fsync_seconds_bucket", {{"queue", name}, {"le", le}}, number(cumulative));
    }
    if (h.counts.empty())
      out.sample("weir_fsync_seconds_bucket", {{"queue", name}, {"le", "+Inf"}}, "0");
    out.sample("weir_fsync_seconds_sum", {{"queue", name}}, number(h.sum));
    out.sample("weir_fsync_seconds_count", {{"queue", name}}, number(h.count));
  }

  out.family("weir_actor_mailbox_messages", "gauge",
             "Messages waiting in the actor's mailbox (reported by queue actors).");
  for (const auto& [name, stats] : snapshot.queues) {
    if (stats) out.sample("weir_actor_mailbox_messages", {{"actor", name}}, number(stats->mailbox));
  }

  if (snapshot.tree) {
    std::vector<std::pair<const supervision_node*, const std::string*>> actors;
    const std::string no_parent;
    flatten(*snapshot.tree, no_parent, actors);
    out.family("weir_actor_restarts_total", "counter",
               "Restarts of the actor by its supervisor since the supervisor started.");
    for (const auto& [actor, parent] : actors) {
      out.sample("weir_actor_restarts_total", {{"actor", actor->name}, {"supervisor", *parent}},
                 number(std::uint64_t{actor->restarts}));
    }
    out.family("weir_actor_up", "gauge",
               "1 when the supervisor reports the actor running, else 0 (restarting, stopping, "
               "stopped).");
    for (const auto& [actor, parent] : actors) {
      out.sample("weir_actor_up", {{"actor", actor->name}, {"supervisor", *parent}},
                 actor->state == "running" ? "1" : "0");
    }
  }

  if (snapshot.node) {
    const auto& node = *snapshot.node;
    out.family("weir_node_peers", "gauge", "Peer sessions open now.");
    out.sample("weir_node_peers", {}, number(node.peers));
    out.family("weir_node_unknown_queue_total", "counter",
               "Requests naming a queue this node does not serve.");
    out.sample("weir_node_unknown_queue_total", {}, number(node.unknown_queue));
    out.family("weir_node_bad_requests_total", "counter",
               "Refused requests: acks for unknown consumers, refused credit, unknown topics.");
    out.sample("weir_node_bad_requests_total", {}, number(node.bad_requests));
    for (const auto& family : link_families) {
      out.family(family.name, "counter", family.help);
      out.sample(family.name, {}, number(node.link.*family.field));
    }
  }
  return out.take();
}

std::string render_prometheus(caf::actor_system& system, const metrics_source& source,
                              std::chrono::milliseconds timeout) {
  return render_prometheus(collect_metrics(system, source, timeout));
}

std::string render_tree(const supervision_node& tree) {
  std::string out;
  render_tree_into(out, tree, 0);
  return out;
}

}  // namespace weir

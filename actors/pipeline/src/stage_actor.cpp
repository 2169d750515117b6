// The stage actor: runs a stage's operator chain over delivery batches, keeps
// its state, input position and outbox in one checkpoint, and publishes its
// outputs to the next queue as a producer of its own.
//
// Order per delivery batch, and why:
//   1. run the chain; outputs are appended to the outbox with the next numbers;
//   2. write the checkpoint (state, applied ids, outbox; fsynced);
//   3. ack the inputs: only now may the input queue forget them;
//   4. publish the new outbox entries; confirmed ones leave the outbox.
// A crash before 2 redelivers the inputs and nothing was published; after 2 the
// inputs are skipped as applied and the outbox is republished under the same
// numbers, which the next queue de-duplicates. Outputs are never regenerated
// from redelivered inputs: redelivery order may differ, and so would they.

#include "stage_actor.hpp"

#include <algorithm>
#include <optional>

#include <spdlog/spdlog.h>
#include <caf/all.hpp>

#include "weir/queue/producer.hpp"
#include "weir/queue/protocol.hpp"

namespace weir {

namespace {

using resend_tick_atom = caf::atom_constant<caf::atom("wstresend")>;
using window_tick_atom = caf::atom_constant<caf::atom("wstwindow")>;
using time_point = caf::actor_clock::time_point;
using wall_clock = std::chrono::system_clock;

/// Unconfirmed outputs past which the stage stops taking input: delivery batches
/// are parked (at most the input credit's worth of deliveries) until confirms bring it back.
constexpr std::size_t outbox_max = 8192;
constexpr std::size_t publish_batch_max = 512;
constexpr auto resend_after = std::chrono::seconds(2);
constexpr auto resend_tick_every = std::chrono::seconds(1);
/// Protocol errors closer than this to the last resend are answered by the resend tick.
constexpr auto resend_error_gap = std::chrono::milliseconds(100);
/// Parked deliveries have their ack deadline pushed by this much every tick, or
/// the queue would hand them out again while they wait and break the credit bound.
constexpr std::uint32_t parked_extension_ms = 60'000;
/// A stage's outputs keep their numbers across restarts (they are checkpointed),
/// so it never needs a newer epoch to fence an older incarnation off.
constexpr std::uint64_t output_epoch = 1;

struct stage_state {
  static inline const char* name = "weir.stage";
  std::shared_ptr<const stage_definition> definition;
  file_system* fs = nullptr;
  caf::actor input;
  std::shared_ptr<shared_handle> output_handle;
  caf::actor output;  // the downstream queue published to last
  std::shared_ptr<stage_progress> progress;
  std::uint64_t incarnation = 0;
  stage_snapshot data;
  std::uint64_t sent_up_to = 0;  // highest outbox number sent since the last resend
  time_point last_progress;      // last confirm, resend, or outbox no longer empty
  time_point last_resend;
  std::deque<delivery_batch> parked;
  std::uint64_t parked_deliveries = 0;
  std::optional<wall_clock::time_point> window_tick_at;
  std::uint64_t window_tick_generation = 0;
};

using stage_actor = caf::stateful_actor<stage_state>;

std::int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(wall_clock::now().time_since_epoch())
      .count();
}

/// The start of the width-aligned window holding `ms`.
std::int64_t window_start_ms(std::int64_t ms, std::chrono::milliseconds width) {
  const auto w = width.count();
  return ms - ((ms % w) + w) % w;
}

void run_chain(stage_state& state, element item, std::size_t from);

/// Aggregates the open window of operator `index` (if any) and sends the result on down the chain.
void close_window(stage_state& state, std::size_t index) {
  const auto& op = state.definition->ops[index];
  auto node = state.data.windows.extract(op.name);
  if (node.empty()) return;
  run_chain(state, op.window_fn(node.mapped().elements), index + 1);
}

void run_chain(stage_state& state, element item, std::size_t from) {
  const auto& ops = state.definition->ops;
  for (auto i = from; i < ops.size(); ++i) {
    const auto& op = ops[i];
    switch (op.type) {
      case pipeline_op::kind::map:
        item = op.map_fn(item);
        break;
      case pipeline_op::kind::filter:
        if (!op.filter_fn(item)) return;
        break;
      case pipeline_op::kind::flat_map:
        for (auto& out : op.flat_map_fn(item)) run_chain(state, std::move(out), i + 1);
        return;
      case pipeline_op::kind::reduce: {
        auto key = op.key_fn(item);
        auto& accumulator = state.data.reduce_state[key];
        accumulator = op.reduce_fn(accumulator, item);
        item = {std::move(key), accumulator};
        break;
      }
      case pipeline_op::kind::sink:
        op.sink_fn(item);
        break;
      case pipeline_op::kind::window: {
        auto& open = state.data.windows[op.name].elements;
        open.push_back(std::move(item));
        if (open.size() < op.window_size) return;
        auto node = state.data.windows.extract(op.name);
        item = op.window_fn(node.mapped().elements);
        break;
      }
      case pipeline_op::kind::window_time: {
        const auto start = window_start_ms(now_ms(), op.window_width);
        auto open = state.data.windows.find(op.name);
        // Only a later window closes the open one: should the wall clock step
        // back, elements join the open window rather than reopen a closed one.
        if (open != state.data.windows.end() && start > open->second.start_ms) {
          close_window(state, i);
          open = state.data.windows.end();
        }
        if (open == state.data.windows.end()) {
          open = state.data.windows.emplace(op.name, open_window{start, {}}).first;
        }
        open->second.elements.push_back(std::move(item));
        return;
      }
      case pipeline_op::kind::queue:  // ends a stage; never inside one
        return;
    }
  }
  if (state.definition->has_output) state.data.outbox.push_back(std::move(item));
}

std::uint64_t open_time_windows(const stage_state& state) {
  std::uint64_t open = 0;
  for (const auto& op : state.definition->ops) {
    if (op.type == pipeline_op::kind::window_time && state.data.windows.count(op.name) != 0) {
      ++open;
    }
  }
  return open;
}

/// Must run before the acks of the inputs it accounts for are sent: the run's
/// wait() trusts these counts once the input queue says everything is acked.
/// Written in the reverse of the order wait() reads them, so that a window or a
/// parked batch that turned into outputs is never seen as gone before they are.
void report_progress(stage_actor* self) {
  auto& state = self->state;
  state.progress->outbox = state.data.outbox.size();
  state.progress->parked = state.parked_deliveries;
  state.progress->open_time_windows = open_time_windows(state);
}

/// False when the checkpoint could not be written: the stage has quit, and the
/// supervisor restarts it from the last good checkpoint.
bool write_checkpoint(stage_actor* self) {
  auto& state = self->state;
  auto written = write_stage_checkpoint(*state.fs, state.definition->checkpoint_path,
                                        state.definition->name, state.data);
  if (written) return true;
  spdlog::error("stage {}: checkpoint failed: {}", state.definition->name, written.to_string());
  self->quit(caf::make_error(caf::sec::runtime_error, written.to_string()));
  return false;
}

/// Sends the outbox entries not sent since the last resend, in order and in batches.
void publish_unsent(stage_actor* self) {
  auto& state = self->state;
  if (!state.definition->has_output) return;
  auto current = state.output_handle->get();
  if (!current) return;  // the queue is restarting; the resend tick tries again
  auto& outbox = state.data.outbox;
  const auto first = state.data.outbox_first_seq;
  if (current != state.output) {
    // A restarted queue holds only what its predecessor made durable: send it all.
    state.output = current;
    state.sent_up_to = first - 1;
  }
  state.sent_up_to = std::max(state.sent_up_to, first - 1);
  while (state.sent_up_to + 1 < first + outbox.size()) {
    publish_batch batch;
    batch.producer_id = state.definition->producer_id;
    batch.epoch = output_epoch;
    batch.first_seq = state.sent_up_to + 1;
    const auto offset = static_cast<std::size_t>(batch.first_seq - first);
    const auto count = std::min(publish_batch_max, outbox.size() - offset);
    batch.messages.reserve(count);
    for (auto i = offset; i < offset + count; ++i) {
      batch.messages.push_back({outbox[i].key, outbox[i].value, {}, 0});
    }
    state.sent_up_to += count;
    self->send(state.output, publish_atom::value, std::move(batch));
  }
}

void resend_all(stage_actor* self, const char* why) {
  auto& state = self->state;
  state.last_progress = state.last_resend = self->clock().now();
  if (state.data.outbox.empty()) return;
  spdlog::info("stage {}: resending {} unconfirmed outputs ({})", state.definition->name,
               state.data.outbox.size(), why);
  state.sent_up_to = state.data.outbox_first_seq - 1;
  publish_unsent(self);
}

status adopt_checkpoint(stage_state& state);

/// Back to the last checkpoint, which precedes the batch being applied: undoes
/// what the operators did to the state, windows and outbox since. False when
/// the stage has quit.
bool reload_checkpoint(stage_actor* self) {
  auto& state = self->state;
  state.data = {};
  auto loaded = load_stage_checkpoint(*state.fs, state.definition->checkpoint_path,
                                      state.definition->name, state.data);
  if (loaded) loaded = adopt_checkpoint(state);
  if (!loaded) {
    spdlog::error("stage {}: {}", state.definition->name, loaded.to_string());
    self->quit(caf::make_error(caf::sec::runtime_error, loaded.to_string()));
    return false;
  }
  // Outputs confirmed since that checkpoint are back in the outbox: send them
  // again, the queue drops what it has.
  state.sent_up_to = state.data.outbox_first_seq - 1;
  return true;
}

/// Runs the operators over the batch's deliveries not yet applied, skipping
/// `failed`; stops at the first that throws and returns its id and reason.
std::optional<std::pair<std::uint64_t, std::string>> run_batch(
    stage_state& state, const delivery_batch& batch,
    const std::map<std::uint64_t, std::string>& failed, bool& changed) {
  for (const auto& d : batch.deliveries) {
    if (state.data.applied.contains(d.id) || failed.count(d.id) != 0) continue;
    try {
      run_chain(state, element{d.data.key, d.data.payload.str()}, 0);
    } catch (const std::exception& e) {
      return std::make_pair(d.id, std::string(e.what()));
    } catch (...) {
      return std::make_pair(d.id, std::string("an exception that is not a std::exception"));
    }
    state.data.applied.insert(d.id);
    changed = true;
  }
  return std::nullopt;
}

/// Applies a delivery batch (steps 1 to 4 above); false when the stage has quit.
/// A delivery whose operators throw is nacked, not applied: the queue retries it
/// after its backoff and moves it to the dead-letter queue after max_deliveries,
/// while the rest of the batch goes on.
bool apply_batch(stage_actor* self, const delivery_batch& batch) {
  auto& state = self->state;
  const bool outbox_was_empty = state.data.outbox.empty();
  std::map<std::uint64_t, std::string> failed;
  bool changed = false;
  while (auto failure = run_batch(state, batch, failed, changed)) {
    spdlog::warn("stage {}: message {} failed: {}", state.definition->name, failure->first,
                 failure->second);
    failed.insert(*std::move(failure));
    // The failed element may have changed the state halfway, and the others
    // before it are run again from the checkpoint (sinks see them again).
    if (!reload_checkpoint(self)) return false;
    changed = false;
  }
  std::vector<id_range> acks;
  for (const auto& d : batch.deliveries) {
    if (failed.count(d.id) != 0) continue;
    if (!acks.empty() && acks.back().end == d.id) {
      ++acks.back().end;
    } else {
      acks.push_back({d.id, d.id + 1});
    }
  }
  // State, outputs and the ids they cover are on disk before any input is acked
  // or any output published.
  if (changed && !write_checkpoint(self)) return false;
  report_progress(self);
  if (!acks.empty()) self->send(state.input, ack_atom::value, std::move(acks));
  for (auto& [id, reason] : failed) {
    state.progress->failed++;
    self->send(state.input, nack_atom::value,
               nack_request{{id}, false, 0, state.definition->name + ": " + reason});
  }
  if (outbox_was_empty && !state.data.outbox.empty()) state.last_progress = self->clock().now();
  publish_unsent(self);
  return true;
}

void schedule_window_tick(stage_actor* self) {
  auto& state = self->state;
  std::optional<std::int64_t> earliest_end_ms;
  for (const auto& op : state.definition->ops) {
    if (op.type != pipeline_op::kind::window_time) continue;
    auto open = state.data.windows.find(op.name);
    if (open == state.data.windows.end()) continue;
    const auto end = open->second.start_ms + op.window_width.count();
    if (!earliest_end_ms || end < *earliest_end_ms) earliest_end_ms = end;
  }
  if (!earliest_end_ms) return;
  const auto at = wall_clock::time_point(std::chrono::milliseconds(*earliest_end_ms));
  if (state.window_tick_at && *state.window_tick_at <= at) return;
  state.window_tick_at = at;
  const auto wait =
      std::max(std::chrono::duration_cast<std::chrono::milliseconds>(at - wall_clock::now()),
               std::chrono::milliseconds(0));
  // One ms late on purpose: the timer runs on the steady clock, the window on the wall clock.
  self->delayed_send(self, wait + std::chrono::milliseconds(1), window_tick_atom::value,
                     ++state.window_tick_generation);
}

/// Closes the time windows whose end has passed; their aggregates are
/// checkpointed (with the outbox) before they are published.
void close_expired_windows(stage_actor* self) {
  auto& state = self->state;
  const auto now = now_ms();
  const auto& ops = state.definition->ops;
  const bool outbox_was_empty = state.data.outbox.empty();
  bool closed = false;
  for (std::size_t i = 0; i < ops.size(); ++i) {
    if (ops[i].type != pipeline_op::kind::window_time) continue;
    auto open = state.data.windows.find(ops[i].name);
    if (open == state.data.windows.end()) continue;
    if (now < open->second.start_ms + ops[i].window_width.count()) continue;
    close_window(state, i);
    closed = true;
  }
  if (closed) {
    if (!write_checkpoint(self)) return;
    if (outbox_was_empty && !state.data.outbox.empty()) state.last_progress = self->clock().now();
    publish_unsent(self);
  }
  schedule_window_tick(self);
  report_progress(self);
}

/// Applies parked batches, oldest first, while the outbox has room.
void drain_parked(stage_actor* self) {
  auto& state = self->state;
  while (!state.parked.empty() && state.data.outbox.size() <= outbox_max) {
    auto batch = std::move(state.parked.front());
    state.parked.pop_front();
    state.parked_deliveries -= batch.deliveries.size();
    if (!apply_batch(self, batch)) return;
  }
  schedule_window_tick(self);
}

/// Adopts the loaded checkpoint for this run's queues (see inputQueue,
/// inputIncarnation and outputIncarnation in stage.capnp); an error when its
/// applied ids belong to another queue.
status adopt_checkpoint(stage_state& state) {
  const auto& definition = *state.definition;
  auto& data = state.data;
  const bool same_input = data.input_queue.empty() ? definition.reads_source || data.applied.empty()
                                                   : data.input_queue == definition.input_queue;
  if (!same_input) {
    return {errc::invalid_argument,
            definition.checkpoint_path + " holds the ids applied from queue '" +
                (data.input_queue.empty() ? "<source>.queue" : data.input_queue) + "', but stage " +
                definition.name + " now reads queue '" + definition.input_queue +
                "': the graph changed; start it over a new data directory"};
  }
  data.input_queue = definition.input_queue;
  if (data.input_incarnation != definition.input_incarnation) {
    if (!data.applied.empty()) {
      spdlog::warn(
          "stage {}: queue {} is a new in-memory queue; the {} ids applied from the "
          "previous one do not name its messages",
          definition.name, definition.input_queue, data.applied.size());
    }
    data.applied = {};
    data.input_incarnation = definition.input_incarnation;
  }
  if (data.output_incarnation != definition.output_incarnation || !definition.has_output) {
    if (!data.outbox.empty()) {
      spdlog::warn(
          "stage {}: dropping {} checkpointed outputs for the in-memory queue {} of "
          "a previous run: that queue is gone, and what it confirmed cannot be told "
          "from what it did not",
          definition.name, data.outbox.size(), definition.output_queue);
    }
    data.outbox.clear();
    data.outbox_first_seq = 1;
    data.output_incarnation = definition.output_incarnation;
  }
  return {};
}

caf::behavior stage_behavior(stage_actor* self, std::shared_ptr<const stage_definition> definition,
                             file_system* fs, caf::actor input,
                             std::shared_ptr<shared_handle> output,
                             std::shared_ptr<stage_progress> progress) {
  auto& state = self->state;
  state.definition = std::move(definition);
  state.fs = fs;
  state.input = std::move(input);
  state.output_handle = std::move(output);
  state.progress = std::move(progress);
  state.incarnation = state.progress->next_incarnation++;
  auto loaded = load_stage_checkpoint(*fs, state.definition->checkpoint_path,
                                      state.definition->name, state.data);
  if (loaded) loaded = adopt_checkpoint(state);
  if (!loaded) {
    // Never start from an empty state over a checkpoint that cannot be read or
    // used: the supervisor retries and gives up, and the error says why.
    spdlog::error("stage {}: {}", state.definition->name, loaded.to_string());
    self->quit(caf::make_error(caf::sec::runtime_error, loaded.to_string()));
    return {};
  }
  report_progress(self);
  state.progress->running = state.incarnation;
  self->attach_functor([progress = state.progress, incarnation = state.incarnation] {
    auto mine = incarnation;  // a newer incarnation may already be running
    progress->running.compare_exchange_strong(mine, 0);
  });
  self->send(state.input, subscribe_atom::value,
             static_cast<std::int64_t>(state.definition->input_credit));
  // The checkpointed outbox may hold outputs the queue never got: send them all;
  // it drops those it has.
  resend_all(self, "restarted");
  // Windows that ended while the stage was down close on the first tick.
  schedule_window_tick(self);
  self->delayed_send(self, resend_tick_every, resend_tick_atom::value);
  return {
      [self](deliver_atom, delivery_batch& batch) {
        auto& state = self->state;
        if (state.data.outbox.size() > outbox_max || !state.parked.empty()) {
          state.parked_deliveries += batch.deliveries.size();
          state.parked.push_back(std::move(batch));
          report_progress(self);
          return;
        }
        if (!apply_batch(self, batch)) return;
        schedule_window_tick(self);
        report_progress(self);
      },
      [self](confirm_atom, const confirmation& c) {
        auto& state = self->state;
        auto& data = state.data;
        if (c.producer_id != state.definition->producer_id || c.epoch != output_epoch ||
            c.up_to_seq < data.outbox_first_seq) {
          return;
        }
        // Dropped here; the next checkpoint records it. Until then a restart
        // republishes them and the queue drops them again: no sync needed.
        const auto done =
            std::min<std::uint64_t>(c.up_to_seq - data.outbox_first_seq + 1, data.outbox.size());
        data.outbox.erase(data.outbox.begin(),
                          data.outbox.begin() + static_cast<std::ptrdiff_t>(done));
        data.outbox_first_seq += done;
        state.sent_up_to = std::max(state.sent_up_to, data.outbox_first_seq - 1);
        state.last_progress = self->clock().now();
        drain_parked(self);
        report_progress(self);
      },
      [self](protocol_error_atom, const protocol_error& e) {
        auto& state = self->state;
        spdlog::warn("stage {}: queue {} says: {}", state.definition->name, e.queue, e.message);
        // A gap or a failed store downstream: send everything unconfirmed again, in
        // order. Once per burst: every batch of a resend that fails again reports
        // again, and answering each with a full resend would multiply them.
        if (state.definition->has_output && e.queue == state.definition->output_queue &&
            self->clock().now() - state.last_resend >= resend_error_gap) {
          resend_all(self, "the queue asked for it");
        }
      },
      [self](rebind_atom, const caf::actor&) {
        // A remote downstream queue reconnected (remote_queue.hpp): the node may
        // have restarted and lost what was not yet durable there.
        resend_all(self, "the downstream node reconnected");
      },
      [self](resend_tick_atom) {
        auto& state = self->state;
        if (!state.data.outbox.empty() &&
            self->clock().now() - state.last_progress >= resend_after) {
          resend_all(self, "no confirm for 2 s");
        } else {
          publish_unsent(self);  // a queue that was restarting may be back
        }
        if (!state.parked.empty()) {
          std::vector<std::uint64_t> ids;
          for (const auto& batch : state.parked) {
            for (const auto& d : batch.deliveries) ids.push_back(d.id);
          }
          self->send(state.input, extend_atom::value, std::move(ids), parked_extension_ms);
        }
        self->delayed_send(self, resend_tick_every, resend_tick_atom::value);
      },
      [self](window_tick_atom, std::uint64_t generation) {
        auto& state = self->state;
        if (generation == state.window_tick_generation) state.window_tick_at.reset();
        close_expired_windows(self);
      },
  };
}

}  // namespace

caf::actor spawn_stage(caf::actor_system& system,
                       std::shared_ptr<const stage_definition> definition, file_system& fs,
                       caf::actor input, std::shared_ptr<shared_handle> output,
                       std::shared_ptr<stage_progress> progress) {
  return system.spawn(stage_behavior, std::move(definition), &fs, std::move(input),
                      std::move(output), std::move(progress));
}

}  // namespace weir

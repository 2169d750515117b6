#pragma once
// Private to weir_pipeline: the stage actor a pipeline run spawns and the
// handles it shares with the run (pipeline.cpp).

#include <atomic>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <caf/actor.hpp>
#include <caf/fwd.hpp>

#include "pipeline_op.hpp"
#include "stage_checkpoint.hpp"
#include "weir/pipeline/pipeline.hpp"
#include "weir/runtime/file_system.hpp"
#include "weir/runtime/id_set.hpp"
#include "weir/runtime/status.hpp"

namespace weir {

/// The current actor of a supervised child, swapped by its start function on
/// every restart and read by whoever needs to talk to it.
class shared_handle {
 public:
  caf::actor get() const {
    std::lock_guard lock(mutex_);
    return actor_;
  }
  void set(caf::actor actor) {
    std::lock_guard lock(mutex_);
    actor_ = std::move(actor);
  }

 private:
  mutable std::mutex mutex_;
  caf::actor actor_;
};

/// What a stage reports to the run's wait(), updated after every batch and tick.
struct stage_progress {
  /// Non-zero while an incarnation runs with its checkpoint loaded: that incarnation's number.
  std::atomic<std::uint64_t> running{0};
  std::atomic<std::uint64_t> outbox{0};  ///< outputs not yet confirmed downstream
  std::atomic<std::uint64_t> parked{0};  ///< deliveries held back while the outbox is full
  std::atomic<std::uint64_t> open_time_windows{0};
  std::atomic<std::uint64_t> next_incarnation{1};
  std::atomic<std::uint64_t> failed{0};  ///< deliveries nacked because an operator threw
};

/// What a stage runs and where its data lives; shared by its incarnations.
struct stage_definition {
  std::string name;  ///< "<pipeline>/<last operator>", checked against the checkpoint
  std::string checkpoint_path;
  std::vector<pipeline_op> ops;
  std::string input_queue;    ///< the input queue's name, as recorded in the checkpoint
  bool reads_source = false;  ///< the input queue is the one after the source
  std::uint64_t input_incarnation = 0;
  std::uint32_t input_credit = 1024;  ///< deliveries held unacked at most
  bool has_output = false;            ///< a downstream queue: outputs go to the outbox
  std::string output_queue;           ///< its name, as in its confirmations
  std::uint64_t output_incarnation = 0;
  std::uint64_t producer_id = 0;  ///< stable_id(name)
};

/// Spawns a stage reading `input` and publishing to whatever `output` holds.
caf::actor spawn_stage(caf::actor_system& system,
                       std::shared_ptr<const stage_definition> definition, file_system& fs,
                       caf::actor input, std::shared_ptr<shared_handle> output,
                       std::shared_ptr<stage_progress> progress);

}  // namespace weir

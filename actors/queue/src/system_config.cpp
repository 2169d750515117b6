#include "weir/queue/system_config.hpp"

#include <caf/atom.hpp>

#include "weir/queue/protocol.hpp"

namespace weir {

system_config::system_config(int scheduler_threads) {
  set("scheduler.max-threads", scheduler_threads);
  // With a node, producers and consumers sharing two cores, work-stealing
  // workers' polling took CPU from the other processes.
  set("scheduler.policy", caf::atom("sharing"));
  set("logger.file-verbosity", caf::atom("quiet"));
  add_queue_types(*this);
}

}  // namespace weir

#pragma once
// Private to weir_pipeline: starting a run of a checked pipeline (pipeline_run.cpp).

#include <memory>
#include <string>
#include <vector>

#include <caf/fwd.hpp>

#include "pipeline_op.hpp"
#include "weir/pipeline/pipeline.hpp"
#include "weir/runtime/supervisor.hpp"

namespace weir {

/// What pipeline::start_run hands over of the builder: its name, source and steps.
struct pipeline_plan {
  const std::string& name;
  const std::string& source_name;
  const std::string& source_path;
  const edge_options& source_queue;
  const std::vector<pipeline_op>& ops;
};

/// Starts `plan` under a supervisor with `supervision`'s restart intensity;
/// `where` is null for a run in this process alone.
result<std::unique_ptr<pipeline_run>> start_pipeline_run(
    caf::actor_system& system, file_system& fs,
    pipeline::recovery_progress_factory recovery_progress, const pipeline_plan& plan,
    const std::string& data_dir, supervisor_options supervision, const deployment* where);

}  // namespace weir

#pragma once
// Private to weir_pipeline: the steps a pipeline is built of (pipeline.hpp).

#include <chrono>
#include <cstddef>
#include <functional>
#include <string>
#include <vector>

#include "weir/pipeline/pipeline.hpp"

namespace weir {

/// One step of the builder: an operator, or a queue between two stages. The
/// stage actor switches on its kind; users of a pipeline never see it.
struct pipeline_op {
  enum class kind { map, filter, flat_map, reduce, sink, window, window_time, queue } type;
  std::string name;
  std::function<element(const element&)> map_fn = {};
  std::function<bool(const element&)> filter_fn = {};
  std::function<std::vector<element>(const element&)> flat_map_fn = {};
  std::function<std::string(const element&)> key_fn = {};
  std::function<std::string(const std::string&, const element&)> reduce_fn = {};
  std::function<void(const element&)> sink_fn = {};
  std::size_t window_size = 0;                ///< window: elements per window
  std::chrono::milliseconds window_width{0};  ///< window_time
  std::function<element(const std::vector<element>&)> window_fn = {};
  edge_options edge = {};  ///< queue
};

}  // namespace weir

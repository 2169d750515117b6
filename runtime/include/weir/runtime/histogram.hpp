#pragma once
// A fixed-bucket histogram for latencies (the checkpoint log's fdatasync), in
// the shape Prometheus exposes: bucket upper bounds, a count and a sum. One
// thread observes, any thread takes a snapshot; every counter is an atomic, so
// observing never takes a lock on the writer's hot path.

#include <atomic>
#include <cstdint>
#include <memory>
#include <vector>

namespace weir {

/// What a histogram held at one moment. `counts` are per bucket (not cumulative):
/// counts[i] observations were <= bounds[i] and > bounds[i - 1]; the last entry
/// (counts.size() == bounds.size() + 1) counts those above every bound (+Inf).
struct histogram_snapshot {
  std::vector<double> bounds = {};  ///< ascending upper bounds, in the observed unit
  std::vector<std::uint64_t> counts = {};
  std::uint64_t count = 0;  ///< the sum of counts
  double sum = 0;           ///< the sum of observed values
};

class histogram {
 public:
  /// Bounds for latencies in seconds, 50 us .. 10 s: an fdatasync takes about
  /// 200 us on a good disk and seconds on a struggling one.
  static std::vector<double> latency_bounds_seconds() {
    return {0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01,
            0.025,   0.05,   0.1,     0.25,   0.5,   1.0,    2.5,   10.0};
  }

  explicit histogram(std::vector<double> bounds = latency_bounds_seconds())
      : bounds_(std::move(bounds)),
        counts_(std::make_unique<std::atomic<std::uint64_t>[]>(bounds_.size() + 1)) {}

  histogram(const histogram&) = delete;
  histogram& operator=(const histogram&) = delete;

  void observe(double value) noexcept {
    std::size_t i = 0;
    while (i < bounds_.size() && value > bounds_[i]) ++i;
    counts_[i].fetch_add(1, std::memory_order_relaxed);
    sum_.fetch_add(value, std::memory_order_relaxed);
  }

  /// Buckets read one by one: `count` is their sum, so a snapshot is always
  /// self-consistent (the +Inf bucket equals the count), if a moment stale.
  histogram_snapshot snapshot() const {
    histogram_snapshot out;
    out.bounds = bounds_;
    out.counts.resize(bounds_.size() + 1);
    for (std::size_t i = 0; i <= bounds_.size(); ++i) {
      out.counts[i] = counts_[i].load(std::memory_order_relaxed);
      out.count += out.counts[i];
    }
    out.sum = sum_.load(std::memory_order_relaxed);
    return out;
  }

 private:
  const std::vector<double> bounds_;
  std::unique_ptr<std::atomic<std::uint64_t>[]> counts_;
  std::atomic<double> sum_{0};
};

}  // namespace weir

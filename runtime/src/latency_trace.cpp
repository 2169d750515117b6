#include "weir/runtime/latency_trace.hpp"

#ifdef WEIR_LATENCY_TRACE

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>

namespace weir::latency_trace {
namespace {

// Fixed, allocated once: a mark never allocates or locks. Marks beyond it are dropped.
constexpr std::size_t capacity = std::size_t{1} << 21;

struct trace_buffer {
  const char* path = std::getenv("WEIR_LATENCY_TRACE_FILE");
  std::unique_ptr<record[]> records{path != nullptr ? new record[capacity] : nullptr};
  std::atomic<std::size_t> used{0};

  ~trace_buffer() {
    if (!records) return;
    if (std::FILE* out = std::fopen(path, "wb")) {
      std::fwrite(records.get(), sizeof(record), std::min(used.load(), capacity), out);
      std::fclose(out);
    }
  }
};

trace_buffer& buffer() {
  static trace_buffer instance;
  return instance;
}

}  // namespace

void mark(stage at, std::int64_t publish_time_ns) noexcept {
  auto& b = buffer();
  if (!b.records) return;
  const auto i = b.used.fetch_add(1, std::memory_order_relaxed);
  if (i >= capacity) return;
  const auto now = std::chrono::duration_cast<std::chrono::microseconds>(
      std::chrono::system_clock::now().time_since_epoch());
  b.records[i] = {now.count(), static_cast<std::int64_t>(at), publish_time_ns};
}

}  // namespace weir::latency_trace

#endif

// Reads the marks written by a build with WEIR_LATENCY_TRACE (one file per
// process, see bench/latency_trace.sh) and prints how long messages spent
// between each pair of hand-overs: for all traced batches, and for the late ones.
//
// A batch is keyed by the publish time of its first message, which the producer
// stamps once per chunk it hands to its actor. Publish-side marks carry exactly
// that key; a delivery batch need not start at a chunk, so a chunk's delivery
// marks are those of the last batch whose first key is not after the chunk's.

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <string>
#include <vector>

#include "weir/runtime/latency_trace.hpp"

namespace {

using weir::latency_trace::record;
using weir::latency_trace::stage;

constexpr int stage_count = static_cast<int>(stage::consumer_handled) + 1;
constexpr std::array<const char*, stage_count + 1> interval_names = {
    "stamped -> producer sent",  "producer sent -> node received",
    "node received -> queue",    "queue -> log synced",
    "log synced -> dispatched",  "dispatched -> consumer received",
    "consumer received -> handled", "stamped -> handled (total)"};

bool publish_side(int s) { return s <= static_cast<int>(stage::log_synced); }

struct chunk_times {
  std::array<std::int64_t, stage_count + 1> interval_us{};  // the last is the total
  std::int64_t stamp_us = 0;
};

std::int64_t percentile(std::vector<std::int64_t> values, double q) {
  const auto k = static_cast<std::size_t>(q * static_cast<double>(values.size() - 1));
  std::nth_element(values.begin(), values.begin() + static_cast<std::ptrdiff_t>(k), values.end());
  return values[k];
}

void print_table(const char* title, const std::vector<chunk_times>& chunks) {
  std::printf("\n%s: %zu batches\n", title, chunks.size());
  if (chunks.empty()) return;
  std::printf("| interval | p50 us | p90 us | p99 us | max us | mean us |\n");
  std::printf("| --- | --- | --- | --- | --- | --- |\n");
  for (int i = 0; i <= stage_count; ++i) {
    std::vector<std::int64_t> values;
    values.reserve(chunks.size());
    double sum = 0;
    for (const auto& c : chunks) {
      values.push_back(c.interval_us[static_cast<std::size_t>(i)]);
      sum += static_cast<double>(values.back());
    }
    std::printf("| %s | %lld | %lld | %lld | %lld | %.0f |\n", interval_names[static_cast<std::size_t>(i)],
                static_cast<long long>(percentile(values, 0.5)),
                static_cast<long long>(percentile(values, 0.9)),
                static_cast<long long>(percentile(values, 0.99)),
                static_cast<long long>(*std::max_element(values.begin(), values.end())),
                sum / static_cast<double>(values.size()));
  }
}

}  // namespace

int main(int argc, char** argv) {
  double late_ms = 5.0;
  std::vector<std::string> files;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--late-ms" && i + 1 < argc) {
      late_ms = std::atof(argv[++i]);
    } else if (arg == "--help" || arg.starts_with("--")) {
      std::fprintf(stderr, "usage: latency_trace_report [--late-ms MS] TRACE_FILE...\n");
      return arg == "--help" ? 0 : 2;
    } else {
      files.push_back(arg);
    }
  }
  if (files.empty()) {
    std::fprintf(stderr, "usage: latency_trace_report [--late-ms MS] TRACE_FILE...\n");
    return 2;
  }
  // Publish side: first mark per (stage, key). Delivery side: marks by key, in order.
  std::array<std::map<std::int64_t, std::int64_t>, stage_count> first_at;
  std::array<std::vector<std::pair<std::int64_t, std::int64_t>>, stage_count> by_key;
  for (const auto& path : files) {
    std::FILE* in = std::fopen(path.c_str(), "rb");
    if (in == nullptr) {
      std::fprintf(stderr, "latency_trace_report: cannot open %s\n", path.c_str());
      return 2;
    }
    record r{};
    while (std::fread(&r, sizeof r, 1, in) == 1) {
      if (r.stage < 0 || r.stage >= stage_count || r.key <= 0) continue;
      const auto s = static_cast<std::size_t>(r.stage);
      if (publish_side(static_cast<int>(r.stage))) {
        first_at[s].emplace(r.key, r.wall_us);  // keeps the first
      } else {
        by_key[s].emplace_back(r.key, r.wall_us);
      }
    }
    std::fclose(in);
  }
  for (auto& marks : by_key) std::sort(marks.begin(), marks.end());

  std::vector<chunk_times> all;
  std::vector<chunk_times> late;
  for (const auto& [key, producer_sent_us] : first_at[0]) {
    std::array<std::int64_t, stage_count + 1> at{};
    at[0] = key / 1000;  // the stamp, in microseconds
    at[1] = producer_sent_us;
    bool complete = true;
    for (int s = 1; s < stage_count && complete; ++s) {
      const auto i = static_cast<std::size_t>(s);
      if (publish_side(s)) {
        auto found = first_at[i].find(key);
        complete = found != first_at[i].end();
        if (complete) at[i + 1] = found->second;
      } else {
        auto after = std::upper_bound(by_key[i].begin(), by_key[i].end(),
                                      std::pair{key, INT64_MAX});
        complete = after != by_key[i].begin();
        if (complete) at[i + 1] = std::prev(after)->second;
      }
    }
    if (!complete) continue;
    chunk_times c;
    c.stamp_us = at[0];
    for (int i = 0; i < stage_count; ++i) {
      c.interval_us[static_cast<std::size_t>(i)] =
          at[static_cast<std::size_t>(i) + 1] - at[static_cast<std::size_t>(i)];
    }
    c.interval_us[stage_count] = at[stage_count] - at[0];
    all.push_back(c);
    if (static_cast<double>(c.interval_us[stage_count]) > late_ms * 1000) late.push_back(c);
  }
  if (all.empty()) {
    std::fprintf(stderr,
                 "latency_trace_report: no batch was marked at every stage (was weir built "
                 "with -DWEIR_LATENCY_TRACE=ON?)\n");
    return 1;
  }
  print_table("all batches", all);
  char title[64];
  std::snprintf(title, sizeof title, "batches over %.1f ms", late_ms);
  print_table(title, late);
  if (!late.empty()) {
    std::array<int, stage_count> longest{};
    for (const auto& c : late) {
      auto it = std::max_element(c.interval_us.begin(), c.interval_us.begin() + stage_count);
      ++longest[static_cast<std::size_t>(it - c.interval_us.begin())];
    }
    std::printf("\nlongest interval of each late batch:");
    for (int i = 0; i < stage_count; ++i) {
      if (longest[static_cast<std::size_t>(i)] != 0) {
        std::printf(" %s %d;", interval_names[static_cast<std::size_t>(i)],
                    longest[static_cast<std::size_t>(i)]);
      }
    }
    std::printf("\n");
    // When: episodes (many late batches close together) or scattered ones.
    const auto start_us = all.front().stamp_us;  // `all` follows the keys' order
    std::map<std::int64_t, std::pair<int, std::int64_t>> by_slot;  // 100 ms slot: count, max
    for (const auto& c : late) {
      auto& [count, max_us] = by_slot[(c.stamp_us - start_us) / 100'000];
      ++count;
      max_us = std::max(max_us, c.interval_us[stage_count]);
    }
    std::printf("late batches by 100 ms of the run (s: batches, longest ms):");
    for (const auto& [slot, figures] : by_slot) {
      std::printf(" %.1f: %d, %.1f;", static_cast<double>(slot) / 10, figures.first,
                  static_cast<double>(figures.second) / 1000);
    }
    std::printf("\n");
  }
  return 0;
}

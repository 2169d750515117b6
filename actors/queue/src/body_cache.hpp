#pragma once
// Private to weir_queue: bodies of recent publishes, kept for their first delivery.

#include <algorithm>
#include <cstdint>
#include <deque>
#include <optional>
#include <span>

#include "weir/queue/protocol.hpp"

namespace weir::detail {

/// Bodies of recent publishes, so that a first delivery needs no disk read.
/// Ids arrive in ascending order and first deliveries take them in the same
/// order, so a deque sorted by id serves both ends without an allocation per
/// message; the few taken out of order (dead letters, replays) leave holes that
/// go when they reach the front.
class body_cache {
 public:
  struct body {
    message_data data;
    std::uint64_t producer_id = 0;
    std::uint64_t producer_seq = 0;
  };

  explicit body_cache(std::uint64_t bytes_max = 0) : bytes_max_(bytes_max) {}

  /// Keeps the bodies of ids first_id, first_id + 1, ... (larger than every id
  /// kept before) as far as the bound allows. A body may share the buffer of
  /// its whole batch (a received frame), so a batch is kept whole or its part
  /// that fits is copied: a few kept bodies never hold a large buffer alive.
  void keep(std::uint64_t first_id, std::span<message_data> batch, std::uint64_t producer_id,
            std::uint64_t first_seq) {
    std::uint64_t total = 0;
    for (const auto& data : batch) total += cost(data);
    const bool whole = bytes_ + total <= bytes_max_;
    for (std::size_t i = 0; i < batch.size(); ++i) {
      const auto bytes = cost(batch[i]);
      if (bytes_ + bytes > bytes_max_) return;
      if (!whole) batch[i].payload = batch[i].payload.owned();
      bytes_ += bytes;
      entries_.push_back({first_id + i, {std::move(batch[i]), producer_id, first_seq + i}});
    }
  }

  /// Forgets the bodies of `id` and above: the log gives a failed publish's ids to later ones.
  void forget_from(std::uint64_t id) {
    while (!entries_.empty() && entries_.back().id >= id) {
      if (!entries_.back().taken) bytes_ -= cost(entries_.back().value.data);
      entries_.pop_back();
    }
  }

  /// Takes the body of `id` out, if it is here.
  std::optional<body> take(std::uint64_t id) {
    if (entries_.empty() || id < entries_.front().id || id > entries_.back().id) {
      return std::nullopt;
    }
    auto it = entries_.front().id == id
                  ? entries_.begin()
                  : std::lower_bound(entries_.begin(), entries_.end(), id,
                                     [](const entry& e, std::uint64_t v) { return e.id < v; });
    if (it == entries_.end() || it->id != id || it->taken) return std::nullopt;
    bytes_ -= cost(it->value.data);
    std::optional<body> out = std::move(it->value);
    it->taken = true;
    it->value = {};
    while (!entries_.empty() && entries_.front().taken) entries_.pop_front();
    return out;
  }

 private:
  struct entry {
    std::uint64_t id = 0;
    body value;
    bool taken = false;
  };

  // What an entry holds, plus its bookkeeping, so that empty bodies are bounded too.
  static std::uint64_t cost(const message_data& data) {
    return data.payload.size() + data.key.size() + sizeof(entry);
  }

  std::deque<entry> entries_;  // ascending ids
  std::uint64_t bytes_ = 0;
  std::uint64_t bytes_max_ = 0;
};

}  // namespace weir::detail

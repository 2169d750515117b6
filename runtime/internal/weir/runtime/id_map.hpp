#pragma once
// A map from message id to T for a queue's bookkeeping (in-flight deliveries,
// delivery counts, held deliveries): a ring for the window of recent ids and a
// hash table for the rest, so an insert, lookup or erase costs no allocation.
// Ids 0 and 2^64-1 cannot be keys: they are never found, and inserting them is
// a bug the caller must rule out.

#include <algorithm>
#include <bit>
#include <cassert>
#include <cstddef>
#include <cstdint>
#include <utility>
#include <vector>

namespace weir {

namespace detail {

/// Open addressing in one array: the part of id_map for ids outside its window.
template <class T>
class id_hash_map {
 public:
  /// The value of `id`, or nullptr.
  T* find(std::uint64_t id) noexcept {
    if (size_ == 0 || id == vacant || id == reserved) return nullptr;
    for (auto i = home(id);; i = next(i)) {
      if (slots_[i].id == id) return &slots_[i].value;
      if (slots_[i].id == vacant) return nullptr;
    }
  }
  const T* find(std::uint64_t id) const noexcept {
    return const_cast<id_hash_map*>(this)->find(id);
  }

  /// Inserts `id` with T(args...) unless present; the bool says whether it was inserted.
  template <class... Args>
  std::pair<T*, bool> try_emplace(std::uint64_t id, Args&&... args) {
    assert(id != vacant && id != reserved);
    if (auto* found = find(id)) return {found, false};
    if (2 * (size_ + 1) > slots_.size()) rehash(slots_.empty() ? 16 : 2 * slots_.size());
    auto i = home(id);
    while (slots_[i].id != vacant) i = next(i);
    slots_[i].id = id;
    slots_[i].value = T(std::forward<Args>(args)...);
    ++size_;
    return {&slots_[i].value, true};
  }

  /// Removes `id`; false when it was absent. Pointers from find() stay valid only until then.
  bool erase(std::uint64_t id) {
    if (size_ == 0 || id == vacant || id == reserved) return false;
    auto hole = home(id);
    while (slots_[hole].id != id) {
      if (slots_[hole].id == vacant) return false;
      hole = next(hole);
    }
    // Backward shift, not a tombstone: later members of the probe run move up
    // into the hole, so lookups never walk over dead slots and no clean-up
    // rehash is needed. Runs are short (hashed ids, at most half full).
    for (auto j = next(hole); slots_[j].id != vacant; j = next(j)) {
      const auto want = home(slots_[j].id);
      // The member at j may fill the hole when its probe from `want` passed the hole.
      const bool passed = hole <= j ? (want <= hole || want > j) : (want <= hole && want > j);
      if (passed) {
        slots_[hole] = std::move(slots_[j]);
        hole = j;
      }
    }
    slots_[hole].id = vacant;
    slots_[hole].value = T{};
    --size_;
    if (slots_.size() > 1024 && 8 * size_ < slots_.size()) rehash(slots_.size() / 2);
    return true;
  }

  /// Calls fn(id, value) for every entry, in no particular order.
  template <class Fn>
  void for_each(Fn&& fn) const {
    for (const auto& slot : slots_) {
      if (slot.id != vacant) fn(slot.id, slot.value);
    }
  }

  std::size_t size() const noexcept { return size_; }
  std::size_t capacity() const noexcept { return slots_.size(); }
  bool empty() const noexcept { return size_ == 0; }
  void clear() {
    slots_.clear();
    size_ = 0;
  }

 private:
  static constexpr std::uint64_t vacant = 0;                    // no id is 0
  static constexpr std::uint64_t reserved = ~std::uint64_t{0};  // nor this one (kept for the API)

  struct slot {
    std::uint64_t id = vacant;
    T value{};
  };

  // Fibonacci hashing scatters consecutive ids. (The identity would keep them
  // together, but then a window of ids is one long run of occupied slots, and a
  // lookup that misses walks the whole run.)
  std::size_t home(std::uint64_t id) const noexcept {
    return static_cast<std::size_t>((id * 0x9E3779B97F4A7C15ull) >> shift_);
  }
  std::size_t next(std::size_t i) const noexcept { return (i + 1) & (slots_.size() - 1); }

  void rehash(std::size_t capacity) {
    std::vector<slot> old(capacity);
    old.swap(slots_);
    shift_ = 64 - static_cast<unsigned>(std::countr_zero(capacity));
    for (auto& s : old) {
      if (s.id == vacant) continue;
      auto i = home(s.id);
      while (slots_[i].id != vacant) i = next(i);
      slots_[i].id = s.id;
      slots_[i].value = std::move(s.value);
    }
  }

  std::vector<slot> slots_;  // power-of-two size; members fill at most half
  std::size_t size_ = 0;
  unsigned shift_ = 64;     // 64 - log2(capacity)
};

}  // namespace detail

template <class T>
class id_map {
 public:
  /// The value of `id`, or nullptr.
  T* find(std::uint64_t id) noexcept {
    if (in_window(id)) {
      auto& s = ring_[id & mask_];
      return s.id == id ? &s.value : nullptr;
    }
    return overflow_.find(id);
  }
  const T* find(std::uint64_t id) const noexcept { return const_cast<id_map*>(this)->find(id); }
  bool contains(std::uint64_t id) const noexcept { return find(id) != nullptr; }

  /// The value of `id`, default-constructed when it was absent.
  T& operator[](std::uint64_t id) { return *try_emplace(id).first; }

  /// Inserts `id` with T(args...) unless present; the bool says whether it was inserted.
  template <class... Args>
  std::pair<T*, bool> try_emplace(std::uint64_t id, Args&&... args) {
    assert(id != vacant && id != reserved);
    if (auto* found = find(id)) return {found, false};
    if (!admit(id)) return overflow_.try_emplace(id, std::forward<Args>(args)...);
    auto& s = ring_[id & mask_];
    s.id = id;
    s.value = T(std::forward<Args>(args)...);
    window_count_peak_ = std::max(window_count_peak_, ++window_count_);
    return {&s.value, true};
  }

  /// Removes `id`; false when it was absent. Pointers from find() stay valid only until then.
  bool erase(std::uint64_t id) {
    if (!in_window(id)) return overflow_.erase(id);
    auto& s = ring_[id & mask_];
    if (s.id != id) return false;
    s.id = vacant;
    s.value = T{};
    --window_count_;
    // The front moves past vacant slots: each slot once per time the window
    // covers it, so the walk is paid for by the inserts that covered it.
    while (span_ > 0 && ring_[base_ & mask_].id == vacant) {
      ++base_;
      --span_;
    }
    if (span_ == 0) shrink_when_oversized();
    return true;
  }

  /// Removes every entry for which pred(id, value) is true.
  template <class Pred>
  void erase_if(Pred pred) {
    std::vector<std::uint64_t> doomed;
    for_each([&](std::uint64_t id, const T& value) {
      if (pred(id, value)) doomed.push_back(id);
    });
    for (auto id : doomed) erase(id);
  }

  /// Calls fn(id, value) for every entry, in no particular order.
  template <class Fn>
  void for_each(Fn&& fn) const {
    for (std::uint64_t k = 0; k < span_; ++k) {
      const auto& s = ring_[(base_ + k) & mask_];
      if (s.id != vacant) fn(s.id, s.value);
    }
    overflow_.for_each(fn);
  }

  std::size_t size() const noexcept { return window_count_ + overflow_.size(); }
  /// Slots held (ring and hash table), each the size of an id and a T: for tests and metrics.
  std::size_t capacity() const noexcept { return ring_.size() + overflow_.capacity(); }
  bool empty() const noexcept { return size() == 0; }
  void clear() {
    ring_.clear();
    base_ = 0;
    span_ = 0;
    window_count_ = 0;
    window_count_peak_ = 0;
    oversized_empties_ = 0;
    oversized_enough_ = 0;
    overflow_.clear();
  }

 private:
  // The ids a queue tracks arrive mostly ascending and leave mostly in order: a
  // sliding window of them, each at ring_[id & mask_], is found without a hash
  // or a cache miss per id. Ids behind the window, and those pushed out of its
  // front to make room far ahead, live in the hash table `overflow_`.
  // Invariants: the window is [base_, base_ + span_); every ring slot outside
  // it is vacant; every id in overflow_ is below base_.
  static constexpr std::uint64_t vacant = 0;
  static constexpr std::uint64_t reserved = ~std::uint64_t{0};
  static constexpr std::size_t capacity_min = 64;

  struct slot {
    std::uint64_t id = vacant;
    T value{};
  };

  bool in_window(std::uint64_t id) const noexcept { return id - base_ < span_; }

  /// Makes the window cover `id` when it may; false sends `id` to the hash table.
  bool admit(std::uint64_t id) {
    if (span_ == 0) {
      if (id < base_ && !overflow_.empty()) return false;
      if (ring_.empty()) resize_ring(capacity_min);
      base_ = id;
      span_ = 1;
      return true;
    }
    if (in_window(id)) return true;
    if (id < base_) return false;
    const std::uint64_t needed = id - base_ + 1;
    if (needed > ring_.size()) {
      // Grow while the window stays at least half full; past that, a far id
      // pushes the oldest entries out (stragglers, or a jump in the ids).
      const auto allowed = std::bit_ceil(std::max(capacity_min, 2 * (window_count_ + 1)));
      if (needed <= allowed) {
        resize_ring(std::bit_ceil(static_cast<std::size_t>(needed)));
      } else {
        evict_front_before(id);
      }
    }
    if (span_ == 0) base_ = id;
    span_ = id - base_ + 1;
    return true;
  }

  /// Moves the window's oldest entries to the hash table until `id` fits in the ring.
  void evict_front_before(std::uint64_t id) {
    while (span_ > 0 && id - base_ >= ring_.size()) {
      auto& s = ring_[base_ & mask_];
      if (s.id != vacant) {
        overflow_.try_emplace(s.id, std::move(s.value));
        s.id = vacant;
        s.value = T{};
        --window_count_;
      }
      ++base_;
      --span_;
    }
  }

  /// With the window empty (nothing to move), gives back a ring far larger than
  /// the most it held between each of the last several times it was empty: a
  /// burst's memory is returned, a load that swings keeps its ring (it would
  /// only grow again).
  void shrink_when_oversized() {
    constexpr int oversized_empties_max = 8;
    const auto enough = std::bit_ceil(std::max(capacity_min, 2 * (window_count_peak_ + 1)));
    oversized_enough_ = std::max(oversized_enough_, enough);
    window_count_peak_ = 0;
    if (ring_.size() <= 1024 || ring_.size() <= 4 * oversized_enough_) {
      oversized_empties_ = 0;
      oversized_enough_ = 0;
      return;
    }
    if (++oversized_empties_ < oversized_empties_max) return;
    std::vector<slot>(oversized_enough_).swap(ring_);
    mask_ = oversized_enough_ - 1;
    oversized_empties_ = 0;
    oversized_enough_ = 0;
  }

  void resize_ring(std::size_t capacity) {
    std::vector<slot> bigger(capacity);
    for (std::uint64_t k = 0; k < span_; ++k) {
      auto& s = ring_[(base_ + k) & mask_];
      if (s.id != vacant) bigger[s.id & (capacity - 1)] = std::move(s);
    }
    ring_.swap(bigger);
    mask_ = capacity - 1;
  }

  std::vector<slot> ring_;  // power-of-two size, or empty
  std::uint64_t mask_ = 0;
  std::uint64_t base_ = 0;
  std::uint64_t span_ = 0;
  std::size_t window_count_ = 0;
  std::size_t window_count_peak_ = 0;  // since the window was last empty
  int oversized_empties_ = 0;          // times in a row it was empty with the ring oversized
  std::size_t oversized_enough_ = 0;   // the ring those times needed at most
  detail::id_hash_map<T> overflow_;
};

}  // namespace weir

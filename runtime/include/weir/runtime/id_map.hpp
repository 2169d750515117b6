#pragma once
// A map from message id to T for a queue's bookkeeping (in-flight deliveries,
// cached bodies, delivery counts): open addressing in one array, so an insert,
// lookup or erase costs no allocation. Ids 0 and 2^64-1 cannot be keys: they
// are never found, and inserting them is a bug the caller must rule out.

#include <bit>
#include <cassert>
#include <cstddef>
#include <cstdint>
#include <utility>
#include <vector>

namespace weir {

template <class T>
class id_map {
 public:
  /// The value of `id`, or nullptr.
  T* find(std::uint64_t id) noexcept {
    if (size_ == 0 || id == vacant || id == reserved) return nullptr;
    for (auto i = home(id);; i = next(i)) {
      if (slots_[i].id == id) return &slots_[i].value;
      if (slots_[i].id == vacant) return nullptr;
    }
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
    for (const auto& slot : slots_) {
      if (slot.id != vacant) fn(slot.id, slot.value);
    }
  }

  std::size_t size() const noexcept { return size_; }
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

}  // namespace weir

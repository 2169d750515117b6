#pragma once
// A set of message ids kept as disjoint half-open ranges, so that acking a
// million consecutive ids costs one range, not a million entries.

#include <cstdint>
#include <map>

namespace weir {

class id_set {
 public:
  /// Adds [begin, end); overlapping and adjacent ranges merge. Empty ranges are ignored.
  void insert(std::uint64_t begin, std::uint64_t end);
  void insert(std::uint64_t id) { insert(id, id + 1); }

  bool contains(std::uint64_t id) const;

  /// Removes every id below `bound`.
  void erase_below(std::uint64_t bound);

  /// True when every id of [begin, end) is in the set (true for an empty range).
  bool contains_all(std::uint64_t begin, std::uint64_t end) const;

  /// Number of ids of [begin, end) in the set.
  std::uint64_t count_in(std::uint64_t begin, std::uint64_t end) const;

  /// The smallest id >= `from` that is not in the set.
  std::uint64_t first_missing_from(std::uint64_t from) const;

  /// Total ids in the set.
  std::uint64_t size() const noexcept { return size_; }
  bool empty() const noexcept { return size_ == 0; }

  /// The disjoint ranges, begin -> end, in ascending order.
  const std::map<std::uint64_t, std::uint64_t>& ranges() const noexcept { return ranges_; }

  friend bool operator==(const id_set&, const id_set&) = default;

 private:
  std::map<std::uint64_t, std::uint64_t> ranges_;
  std::uint64_t size_ = 0;
};

}  // namespace weir

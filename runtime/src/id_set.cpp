#include "weir/runtime/id_set.hpp"

#include <algorithm>
#include <iterator>

namespace weir {

void id_set::insert(std::uint64_t begin, std::uint64_t end) {
  if (begin >= end) return;
  // Start from the first range that could touch [begin, end): the one before
  // `begin` may end at or after it.
  auto it = ranges_.upper_bound(begin);
  if (it != ranges_.begin()) {
    auto previous = std::prev(it);
    if (previous->second >= begin) it = previous;
  }
  while (it != ranges_.end() && it->first <= end) {
    begin = std::min(begin, it->first);
    end = std::max(end, it->second);
    size_ -= it->second - it->first;
    it = ranges_.erase(it);
  }
  ranges_.emplace(begin, end);
  size_ += end - begin;
}

void id_set::erase_below(std::uint64_t bound) {
  auto it = ranges_.begin();
  while (it != ranges_.end() && it->first < bound) {
    const auto end = it->second;
    size_ -= end - it->first;
    it = ranges_.erase(it);
    if (end > bound) {
      ranges_.emplace(bound, end);
      size_ += end - bound;
      break;
    }
  }
}

bool id_set::contains(std::uint64_t id) const {
  auto it = ranges_.upper_bound(id);
  if (it == ranges_.begin()) return false;
  return std::prev(it)->second > id;
}

bool id_set::contains_all(std::uint64_t begin, std::uint64_t end) const {
  if (begin >= end) return true;
  auto it = ranges_.upper_bound(begin);
  if (it == ranges_.begin()) return false;
  return std::prev(it)->second >= end;
}

std::uint64_t id_set::count_in(std::uint64_t begin, std::uint64_t end) const {
  if (begin >= end) return 0;
  std::uint64_t total = 0;
  auto it = ranges_.upper_bound(begin);
  if (it != ranges_.begin()) --it;
  for (; it != ranges_.end() && it->first < end; ++it) {
    auto lo = std::max(begin, it->first);
    auto hi = std::min(end, it->second);
    if (lo < hi) total += hi - lo;
  }
  return total;
}

std::uint64_t id_set::first_missing_from(std::uint64_t from) const {
  auto it = ranges_.upper_bound(from);
  if (it == ranges_.begin()) return from;
  auto previous = std::prev(it);
  return previous->second > from ? previous->second : from;
}

}  // namespace weir

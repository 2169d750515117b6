#include <boost/test/unit_test.hpp>

#include <random>
#include <set>

#include "weir/runtime/id_set.hpp"

using weir::id_set;

namespace {

// Random overlapping inserts, applied to an id_set and to a plain set as its model.
void insert_random_ranges(std::mt19937_64& random, int steps, id_set& ids,
                          std::set<std::uint64_t>& model) {
  for (int step = 0; step < steps; ++step) {
    const std::uint64_t begin = random() % 500;
    const std::uint64_t end = begin + random() % 20;
    ids.insert(begin, end);
    for (auto id = begin; id < end; ++id) model.insert(id);
  }
}

void expect_same_ids(const id_set& ids, const std::set<std::uint64_t>& model) {
  BOOST_TEST(ids.size() == model.size());
  for (std::uint64_t id = 0; id < 530; ++id) {
    BOOST_TEST(ids.contains(id) == (model.count(id) == 1));
  }
}

}  // namespace

BOOST_AUTO_TEST_CASE(adjacent_and_overlapping_ranges_merge) {
  id_set ids;
  ids.insert(10, 20);
  ids.insert(20, 30);
  ids.insert(5, 12);
  BOOST_TEST(ids.ranges().size() == 1u);
  BOOST_TEST(ids.size() == 25u);
  BOOST_TEST(ids.contains(5));
  BOOST_TEST(ids.contains(29));
  BOOST_TEST(!ids.contains(30));
  BOOST_TEST(!ids.contains(4));
}

BOOST_AUTO_TEST_CASE(counts_and_gaps_follow_the_ranges) {
  id_set ids;
  ids.insert(1, 4);
  ids.insert(6, 8);
  BOOST_TEST(ids.count_in(0, 100) == 5u);
  BOOST_TEST(ids.count_in(3, 7) == 2u);
  BOOST_TEST(ids.first_missing_from(1) == 4u);
  BOOST_TEST(ids.first_missing_from(5) == 5u);
  BOOST_TEST(ids.first_missing_from(6) == 8u);
  BOOST_TEST(ids.contains_all(6, 8));
  BOOST_TEST(!ids.contains_all(3, 7));
  BOOST_TEST(ids.contains_all(9, 9));
}

BOOST_AUTO_TEST_CASE(agrees_with_a_plain_set_on_random_inserts) {
  std::mt19937_64 random(42);
  for (int trial = 0; trial < 50; ++trial) {
    id_set ids;
    std::set<std::uint64_t> model;
    insert_random_ranges(random, 200, ids, model);
    expect_same_ids(ids, model);
    const std::uint64_t lo = random() % 500;
    const std::uint64_t hi = lo + random() % 100;
    std::uint64_t expected = 0;
    for (auto id = lo; id < hi; ++id) expected += model.count(id);
    BOOST_TEST(ids.count_in(lo, hi) == expected);
  }
}

BOOST_AUTO_TEST_CASE(erase_below_cuts_ranges_at_the_bound) {
  id_set ids;
  ids.insert(1, 4);
  ids.insert(6, 10);
  ids.insert(12, 14);
  ids.erase_below(8);
  BOOST_TEST(ids.ranges().size() == 2u);
  BOOST_TEST(ids.size() == 4u);
  BOOST_TEST(!ids.contains(7));
  BOOST_TEST(ids.contains(8));
  BOOST_TEST(ids.contains(13));
  ids.erase_below(12);
  BOOST_TEST(ids.ranges().size() == 1u);
  BOOST_TEST(ids.size() == 2u);
  ids.erase_below(100);
  BOOST_TEST(ids.empty());
  BOOST_TEST(ids.ranges().empty());
}

BOOST_AUTO_TEST_CASE(erase_below_agrees_with_a_plain_set) {
  std::mt19937_64 random(7);
  for (int trial = 0; trial < 50; ++trial) {
    id_set ids;
    std::set<std::uint64_t> model;
    insert_random_ranges(random, 100, ids, model);
    const std::uint64_t bound = random() % 530;
    ids.erase_below(bound);
    model.erase(model.begin(), model.lower_bound(bound));
    expect_same_ids(ids, model);
  }
}

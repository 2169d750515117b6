#include <boost/test/unit_test.hpp>

#include <map>
#include <random>
#include <string>

#include "weir/runtime/id_map.hpp"

using weir::id_map;

BOOST_AUTO_TEST_CASE(finds_what_was_inserted_and_forgets_what_was_erased) {
  id_map<std::string> map;
  BOOST_TEST(map.find(7) == nullptr);
  BOOST_TEST(!map.erase(7));
  BOOST_TEST(map.try_emplace(7, "seven").second);
  BOOST_TEST(!map.try_emplace(7, "again").second);
  BOOST_TEST(*map.find(7) == "seven");
  map[8] = "eight";
  BOOST_TEST(map.size() == 2u);
  BOOST_TEST(map.erase(7));
  BOOST_TEST(map.find(7) == nullptr);
  BOOST_TEST(*map.find(8) == "eight");
  BOOST_TEST(map.size() == 1u);
}

BOOST_AUTO_TEST_CASE(the_two_reserved_ids_are_never_found_nor_erased) {
  // They mark vacant slots and tombstones; ids off the network may be either.
  id_map<int> map;
  map[5] = 5;
  BOOST_TEST(map.erase(5));  // leaves a tombstone
  map[6] = 6;
  constexpr auto last = ~std::uint64_t{0};
  BOOST_TEST(map.find(0) == nullptr);
  BOOST_TEST(map.find(last) == nullptr);
  BOOST_TEST(!map.contains(0));
  BOOST_TEST(!map.erase(0));
  BOOST_TEST(!map.erase(last));
  BOOST_TEST(map.size() == 1u);
  BOOST_TEST(*map.find(6) == 6);
}

BOOST_AUTO_TEST_CASE(erasing_some_ids_leaves_the_others_reachable) {
  // Enough ids in a small table that probe runs form, then holes in every run.
  id_map<int> map;
  for (std::uint64_t id = 1; id <= 7; ++id) map[id * 16] = static_cast<int>(id);
  for (std::uint64_t id = 1; id <= 7; id += 2) BOOST_TEST(map.erase(id * 16));
  for (std::uint64_t id = 2; id <= 7; id += 2) BOOST_TEST(*map.find(id * 16) == int(id));
  for (std::uint64_t id = 1; id <= 7; id += 2) BOOST_TEST(map.find(id * 16) == nullptr);
  map[3 * 16] = 30;  // back into a run that had holes
  BOOST_TEST(*map.find(3 * 16) == 30);
  BOOST_TEST(map.size() == 4u);
}

BOOST_AUTO_TEST_CASE(agrees_with_std_map_under_random_work) {
  std::mt19937_64 random(7);
  for (int trial = 0; trial < 20; ++trial) {
    id_map<std::uint64_t> map;
    std::map<std::uint64_t, std::uint64_t> expected;
    // A sliding window of mostly ascending ids, with stragglers far behind: the
    // pattern of a queue's in-flight deliveries, and wrap-around in the table.
    std::uint64_t head = 1 + random() % 1000;
    for (int step = 0; step < 20000; ++step) {
      const auto roll = random() % 10;
      if (roll < 5) {
        const auto id = head++;
        map[id] = id * 3;
        expected[id] = id * 3;
      } else if (roll < 9 && !expected.empty()) {
        auto it = expected.lower_bound(head - 1 - random() % (head));
        if (it == expected.end()) it = expected.begin();
        BOOST_TEST(map.erase(it->first));
        expected.erase(it);
      } else {
        const auto id = 1 + random() % (head + 100);
        BOOST_TEST((map.find(id) != nullptr) == (expected.count(id) != 0));
      }
    }
    BOOST_TEST(map.size() == expected.size());
    std::map<std::uint64_t, std::uint64_t> seen;
    map.for_each([&](std::uint64_t id, std::uint64_t value) { seen[id] = value; });
    BOOST_TEST((seen == expected));
    map.erase_if([](std::uint64_t id, std::uint64_t) { return id % 2 == 0; });
    std::erase_if(expected, [](const auto& e) { return e.first % 2 == 0; });
    for (const auto& [id, value] : expected) BOOST_TEST(*map.find(id) == value);
    BOOST_TEST(map.size() == expected.size());
  }
}

BOOST_AUTO_TEST_CASE(every_entry_stays_reachable_after_each_erase_in_a_crowded_table) {
  // Small, nearly half-full tables: runs are long and wrap around the end, where
  // moving members back into a hole is easiest to get wrong.
  std::mt19937_64 random(11);
  for (int trial = 0; trial < 300; ++trial) {
    id_map<std::uint64_t> map;
    std::map<std::uint64_t, std::uint64_t> expected;
    for (int step = 0; step < 200; ++step) {
      if (expected.size() < 7 || random() % 2 == 0) {
        const auto id = 1 + random() % 64;
        map[id] = id + 1000;
        expected[id] = id + 1000;
      } else {
        auto it = std::next(expected.begin(), static_cast<long>(random() % expected.size()));
        BOOST_TEST_REQUIRE(map.erase(it->first));
        expected.erase(it);
      }
      BOOST_TEST_REQUIRE(map.size() == expected.size());
      for (const auto& [id, value] : expected) {
        const auto* found = map.find(id);
        BOOST_TEST_REQUIRE(found != nullptr, "trial " << trial << " step " << step << " id " << id);
        BOOST_TEST_REQUIRE(*found == value);
      }
    }
  }
}

BOOST_AUTO_TEST_CASE(keeps_its_entries_when_it_shrinks_after_a_burst) {
  id_map<int> map;
  for (std::uint64_t id = 1; id <= 100000; ++id) map[id] = 1;
  for (std::uint64_t id = 1; id <= 99990; ++id) BOOST_TEST_REQUIRE(map.erase(id));
  BOOST_TEST(map.size() == 10u);
  for (std::uint64_t id = 99991; id <= 100000; ++id) BOOST_TEST(map.find(id) != nullptr);
}

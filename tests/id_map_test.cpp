#include <boost/test/unit_test.hpp>

#include <map>
#include <random>
#include <string>

#include "weir/runtime/id_map.hpp"

using weir::id_map;
using weir::detail::id_hash_map;

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

BOOST_AUTO_TEST_CASE(erasing_some_ids_leaves_the_others_reachable_in_the_hash_table) {
  // Enough ids in a small table that probe runs form, then holes in every run.
  id_hash_map<int> map;
  for (std::uint64_t id = 1; id <= 7; ++id) map.try_emplace(id * 16, static_cast<int>(id));
  for (std::uint64_t id = 1; id <= 7; id += 2) BOOST_TEST(map.erase(id * 16));
  for (std::uint64_t id = 2; id <= 7; id += 2) BOOST_TEST(*map.find(id * 16) == int(id));
  for (std::uint64_t id = 1; id <= 7; id += 2) BOOST_TEST(map.find(id * 16) == nullptr);
  map.try_emplace(3 * 16, 30);  // back into a run that had holes
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

BOOST_AUTO_TEST_CASE(every_entry_stays_reachable_after_each_erase_in_a_crowded_hash_table) {
  // Small, nearly half-full tables: runs are long and wrap around the end, where
  // moving members back into a hole is easiest to get wrong.
  std::mt19937_64 random(11);
  for (int trial = 0; trial < 300; ++trial) {
    id_hash_map<std::uint64_t> map;
    std::map<std::uint64_t, std::uint64_t> expected;
    for (int step = 0; step < 200; ++step) {
      if (expected.size() < 7 || random() % 2 == 0) {
        const auto id = 1 + random() % 64;
        if (!map.try_emplace(id, id + 1000).second) *map.find(id) = id + 1000;
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

BOOST_AUTO_TEST_CASE(the_hash_table_keeps_its_entries_when_it_shrinks_after_a_burst) {
  id_hash_map<int> map;
  for (std::uint64_t id = 1; id <= 100000; ++id) map.try_emplace(id, 1);
  for (std::uint64_t id = 1; id <= 99990; ++id) BOOST_TEST_REQUIRE(map.erase(id));
  BOOST_TEST(map.size() == 10u);
  for (std::uint64_t id = 99991; id <= 100000; ++id) BOOST_TEST(map.find(id) != nullptr);
}

BOOST_AUTO_TEST_CASE(a_sliding_window_of_ascending_ids_keeps_every_entry) {
  // The queue's pattern: deliveries ascend, acks follow in order a window behind.
  id_map<std::uint64_t> map;
  constexpr std::uint64_t window = 5000;
  for (std::uint64_t id = 1; id <= 200000; ++id) {
    BOOST_TEST_REQUIRE(map.try_emplace(id, id * 2).second);
    if (id > window) BOOST_TEST_REQUIRE(map.erase(id - window));
  }
  BOOST_TEST(map.size() == window);
  BOOST_TEST(map.find(200000 - window) == nullptr);
  for (auto id = 200001 - window; id <= 200000; ++id) BOOST_TEST_REQUIRE(*map.find(id) == id * 2);
}

BOOST_AUTO_TEST_CASE(a_straggler_stays_reachable_while_many_newer_ids_pass) {
  // One delivery never acked while a million others come and go: the window
  // cannot hold it and the new ids both, so it moves to the hash table.
  id_map<int> map;
  map[1] = 42;
  for (std::uint64_t id = 2; id <= 1000000; ++id) {
    map[id] = 1;
    if (id > 101) BOOST_TEST_REQUIRE(map.erase(id - 100));
    if (id % 100000 == 0) BOOST_TEST_REQUIRE(*map.find(1) == 42);
  }
  BOOST_TEST(*map.find(1) == 42);
  BOOST_TEST(map.size() == 101u);
  BOOST_TEST(map.erase(1));
  BOOST_TEST(!map.erase(1));
  BOOST_TEST(map.size() == 100u);
}

BOOST_AUTO_TEST_CASE(ids_behind_far_ahead_of_and_at_the_top_of_the_range_are_kept) {
  id_map<int> map;
  constexpr auto top = ~std::uint64_t{0} - 1;  // the largest id it may hold
  map[1000] = 1;
  map[999] = 2;            // behind the window
  map[1u << 20] = 3;       // a jump ahead of it
  map[top] = 4;            // and another to the top
  map[top - 70] = 5;       // behind again, near the top
  map[1] = 6;
  BOOST_TEST(map.size() == 6u);
  BOOST_TEST(*map.find(1000) == 1);
  BOOST_TEST(*map.find(999) == 2);
  BOOST_TEST(*map.find(1u << 20) == 3);
  BOOST_TEST(*map.find(top) == 4);
  BOOST_TEST(*map.find(top - 70) == 5);
  BOOST_TEST(*map.find(1) == 6);
  BOOST_TEST(map.find(0) == nullptr);
  BOOST_TEST(map.find(top + 1) == nullptr);
  for (std::uint64_t id : {std::uint64_t{1}, std::uint64_t{999}, std::uint64_t{1000},
                           std::uint64_t{1u << 20}, top - 70, top}) {
    BOOST_TEST(map.erase(id));
  }
  BOOST_TEST(map.empty());
  map[5] = 7;  // empty again: the window may start anywhere
  BOOST_TEST(*map.find(5) == 7);
}

BOOST_AUTO_TEST_CASE(agrees_with_std_map_when_ids_jump_and_fall_back) {
  // Runs of ascending ids, far jumps, redeliveries of old ids, acks in and out
  // of order: every way an id can move between the window and the hash table.
  std::mt19937_64 random(23);
  for (int trial = 0; trial < 40; ++trial) {
    id_map<std::uint64_t> map;
    std::map<std::uint64_t, std::uint64_t> expected;
    std::uint64_t head = 1 + random() % 100;
    for (int step = 0; step < 5000; ++step) {
      const auto roll = random() % 20;
      std::uint64_t id = 0;
      if (roll < 8) {
        id = head++;
      } else if (roll < 9) {
        head += 1 + random() % 5000;  // a jump ahead
        id = head++;
      } else if (roll < 11) {
        id = 1 + random() % head;  // an old id again
      }
      if (id != 0) {
        const bool fresh = expected.count(id) == 0;
        BOOST_TEST_REQUIRE(map.try_emplace(id, id + 7).second == fresh);
        expected.emplace(id, id + 7);
      } else if (roll < 18 && !expected.empty()) {
        // Mostly the oldest, as acks come; sometimes any.
        auto it = roll < 15 ? expected.begin()
                            : std::next(expected.begin(),
                                        static_cast<long>(random() % expected.size()));
        BOOST_TEST_REQUIRE(map.erase(it->first));
        expected.erase(it);
      } else {
        const auto probe = 1 + random() % (head + 100);
        BOOST_TEST_REQUIRE((map.find(probe) != nullptr) == (expected.count(probe) != 0));
      }
      BOOST_TEST_REQUIRE(map.size() == expected.size());
      if (step % 50 == 0) {
        for (const auto& [id, value] : expected) {
          const auto* found = map.find(id);
          BOOST_TEST_REQUIRE(found != nullptr, "trial " << trial << " step " << step << " id " << id);
          BOOST_TEST_REQUIRE(*found == value);
        }
      }
    }
    std::map<std::uint64_t, std::uint64_t> seen;
    map.for_each([&](std::uint64_t id, std::uint64_t value) { seen[id] = value; });
    BOOST_TEST((seen == expected));
  }
}

BOOST_AUTO_TEST_CASE(gives_a_burst_s_memory_back_but_keeps_a_steady_load_s_ring) {
  id_map<int> map;
  std::uint64_t next = 1;
  for (; next <= 100000; ++next) map[next] = 1;
  const auto burst = map.capacity();
  BOOST_TEST(burst >= 100000u);
  for (std::uint64_t id = 1; id < next; ++id) BOOST_TEST_REQUIRE(map.erase(id));
  BOOST_TEST(map.capacity() == burst);  // empty once: it may fill again at once
  for (int round = 0; round < 8; ++round) {
    for (int i = 0; i < 10; ++i) map[next + i] = i;
    for (int i = 0; i < 10; ++i) BOOST_TEST_REQUIRE(map.erase(next + i));
    next += 10;
  }
  BOOST_TEST(map.capacity() <= 1024u);
  map[next] = 5;  // still works after the shrink
  BOOST_TEST(*map.find(next) == 5);

  // A load that swings between large and small keeps its ring.
  id_map<int> swinging;
  next = 1;
  std::size_t largest = 0;
  for (int round = 0; round < 40; ++round) {
    const int held = round % 4 == 0 ? 50000 : 10;
    for (int i = 0; i < held; ++i) swinging[next + i] = i;
    largest = std::max(largest, swinging.capacity());
    for (int i = 0; i < held; ++i) BOOST_TEST_REQUIRE(swinging.erase(next + i));
    next += held;
  }
  BOOST_TEST(swinging.capacity() == largest);
}

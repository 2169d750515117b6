#include <boost/test/unit_test.hpp>

#include <cmath>

#include "weir/runtime/backoff.hpp"

using namespace weir;
using std::chrono::milliseconds;

BOOST_AUTO_TEST_CASE(exponential_delays_grow_to_the_cap_within_their_jitter) {
  auto policy = backoff_policy::exponential(milliseconds(100), milliseconds(5000), 2.0, 0.25);
  BOOST_REQUIRE(policy.validate());
  std::mt19937_64 random(1);
  for (std::uint32_t retry = 1; retry <= 40; ++retry) {
    const double base = std::min(100.0 * std::pow(2.0, retry - 1), 5000.0);
    auto [lo, hi] = policy.bounds(retry);
    BOOST_TEST(lo.count() <= base * 0.75 + 1);
    BOOST_TEST(hi.count() >= base * 1.25 - 1);
    for (int sample = 0; sample < 200; ++sample) {
      auto d = policy.delay(retry, random);
      BOOST_TEST(d >= lo);
      BOOST_TEST(d <= hi);
    }
  }
  BOOST_TEST(policy.bounds(40).second.count() <= 6250);  // capped, jitter included
}

BOOST_AUTO_TEST_CASE(jitter_actually_spreads_the_delays) {
  auto policy = backoff_policy::exponential(milliseconds(1000), milliseconds(1000), 2.0, 0.5);
  std::mt19937_64 random(2);
  std::int64_t smallest = 1'000'000, largest = 0;
  for (int i = 0; i < 500; ++i) {
    auto d = policy.delay(3, random).count();
    smallest = std::min(smallest, d);
    largest = std::max(largest, d);
  }
  BOOST_TEST(smallest < 700);
  BOOST_TEST(largest > 1300);
}

BOOST_AUTO_TEST_CASE(fixed_and_listed_delays_are_exact_without_jitter) {
  std::mt19937_64 random(3);
  auto fixed = backoff_policy::fixed(milliseconds(250));
  for (std::uint32_t retry = 1; retry < 10; ++retry) {
    BOOST_TEST(fixed.delay(retry, random).count() == 250);
  }
  auto listed = backoff_policy::from_list({milliseconds(10), milliseconds(50), milliseconds(900)});
  BOOST_REQUIRE(listed.validate());
  BOOST_TEST(listed.delay(1, random).count() == 10);
  BOOST_TEST(listed.delay(2, random).count() == 50);
  BOOST_TEST(listed.delay(3, random).count() == 900);
  BOOST_TEST(listed.delay(7, random).count() == 900);  // the last one repeats
}

BOOST_AUTO_TEST_CASE(policies_that_cannot_work_are_refused_with_the_field_named) {
  auto negative = backoff_policy::fixed(milliseconds(-1));
  BOOST_TEST(negative.validate().message().find("negative") != std::string::npos);
  auto shrinking = backoff_policy::exponential(milliseconds(10), milliseconds(100), 0.5);
  BOOST_TEST(shrinking.validate().message().find("multiplier") != std::string::npos);
  auto inverted = backoff_policy::exponential(milliseconds(100), milliseconds(10));
  BOOST_TEST(inverted.validate().message().find("cap") != std::string::npos);
  auto empty = backoff_policy::from_list({});
  BOOST_TEST(empty.validate().message().find("empty") != std::string::npos);
  auto wild = backoff_policy::exponential(milliseconds(10), milliseconds(100), 2.0, 3.0);
  BOOST_TEST(wild.validate().message().find("jitter") != std::string::npos);
}

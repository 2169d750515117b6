#include <boost/test/unit_test.hpp>

#include "log_model.hpp"
#include "weir/runtime/checkpoint_log.hpp"
#include "weir/runtime/memory_file_system.hpp"

using namespace weir;
using namespace weir::testing;

BOOST_AUTO_TEST_CASE(a_log_in_memory_round_trips_and_recovers_like_one_on_disk) {
  memory_file_system fs;
  log_model model;
  log_options options;
  options.sync = *sync_policy::parse("none");
  options.segment_bytes_max = 4096;
  {
    auto log = checkpoint_log::open(fs, "/mem/q", options);
    BOOST_REQUIRE_MESSAGE(log, log.error().to_string());
    for (int i = 0; i < 30; ++i) {
      std::vector<std::string> batch{"a" + std::to_string(i), std::string(200, 'x')};
      BOOST_REQUIRE(publish_and_wait(**log, batch));
      model.publish(batch);
    }
    BOOST_REQUIRE(ack_and_wait(**log, 1, 20));
    model.ack(1, 20);
    BOOST_REQUIRE((*log)->snapshot());
    BOOST_TEST((*log)->stats().segments > 1u);
    auto second = checkpoint_log::open(fs, "/mem/q", options);
    BOOST_REQUIRE(!second);
    BOOST_TEST(second.error().code() == errc::in_use);
  }
  auto log = checkpoint_log::open(fs, "/mem/q", options);
  BOOST_REQUIRE(log);
  BOOST_TEST(compare_with_model(**log, model) == "");
  BOOST_TEST(!(*log)->recovery().found_damage());
  BOOST_TEST(fs.size_bytes() > 0u);
}

BOOST_AUTO_TEST_CASE(missing_paths_are_errors_that_name_them) {
  memory_file_system fs;
  auto file = fs.open_for_read("/nowhere/x");
  BOOST_REQUIRE(!file);
  BOOST_TEST(file.error().code() == errc::not_found);
  BOOST_TEST(file.error().message().find("/nowhere/x") != std::string::npos);
  BOOST_TEST(!fs.open_for_append("/nowhere/x").has_value());
  BOOST_TEST(!fs.list_dir("/nowhere").has_value());
  BOOST_REQUIRE(fs.create_dirs("/a/b"));
  BOOST_TEST(fs.open_for_append("/a/b/x").has_value());
  BOOST_TEST(*fs.exists("/a"));
}

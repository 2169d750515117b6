#include <boost/test/unit_test.hpp>

#include <memory>
#include <sstream>
#include <string>

#include "weir/runtime/shared_bytes.hpp"

using namespace weir;

BOOST_AUTO_TEST_CASE(a_slice_keeps_its_buffer_alive_until_the_last_copy_goes) {
  auto buffer = std::make_shared<std::string>("abcdefgh");
  std::weak_ptr<std::string> watch = buffer;
  shared_bytes slice(buffer, std::string_view(*buffer).substr(2, 3));
  buffer.reset();
  BOOST_TEST(!watch.expired());
  BOOST_TEST(slice == "cde");
  auto copy = slice;
  slice = shared_bytes{};
  BOOST_TEST(!watch.expired());
  BOOST_TEST(copy.view() == "cde");
  copy = shared_bytes{};
  BOOST_TEST(watch.expired());
}

BOOST_AUTO_TEST_CASE(owned_copies_the_bytes_and_lets_the_buffer_go) {
  auto buffer = std::make_shared<std::string>(1000, 'x');
  std::weak_ptr<std::string> watch = buffer;
  shared_bytes owned = shared_bytes(buffer, std::string_view(*buffer).substr(0, 10)).owned();
  buffer.reset();
  BOOST_TEST(watch.expired());
  BOOST_TEST(owned == std::string(10, 'x'));
  BOOST_TEST(owned.size() == 10u);
}

BOOST_AUTO_TEST_CASE(strings_convert_in_and_out_and_compare_by_content) {
  shared_bytes from_string(std::string("hello"));
  shared_bytes from_literal = "hello";
  BOOST_TEST((from_string == from_literal));
  BOOST_TEST((from_string == std::string("hello")));
  BOOST_TEST(from_string.str() == "hello");
  BOOST_TEST(!(from_string == "hell"));
  BOOST_TEST((shared_bytes("a") < shared_bytes("b")));
  BOOST_TEST(shared_bytes{}.empty());
  BOOST_TEST((shared_bytes(std::string()) == ""));
  std::ostringstream out;
  out << from_literal;
  BOOST_TEST(out.str() == "hello");
}

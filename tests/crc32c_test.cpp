#include "weir/runtime/crc32c.hpp"

#include <boost/test/unit_test.hpp>

#include <array>
#include <cstdint>
#include <cstring>
#include <numeric>
#include <random>
#include <string>
#include <vector>

namespace crc32c = weir::crc32c;

namespace {

// Lengths that cross every stripe and tail boundary of the fast path.
std::vector<std::size_t> interesting_lengths() {
  std::vector<std::size_t> out;
  for (std::size_t n = 0; n <= 80; ++n) out.push_back(n);
  for (std::size_t base : {128u, 384u, 1024u, 3072u, 4096u, 3 * 1024u + 3 * 128u})
    for (std::size_t delta = 0; delta < 18; ++delta) {
      out.push_back(base + delta);
      if (base >= delta) out.push_back(base - delta);
    }
  out.push_back(100000);
  return out;
}

}  // namespace

BOOST_AUTO_TEST_CASE(check_value) {
  const char* digits = "123456789";
  BOOST_TEST(crc32c::value(digits, 9) == 0xE3069283u);
  BOOST_TEST(crc32c::extend_portable(0, digits, 9) == 0xE3069283u);
}

BOOST_AUTO_TEST_CASE(rfc3720_vectors) {
  std::array<unsigned char, 32> buf{};
  BOOST_TEST(crc32c::value(buf.data(), buf.size()) == 0x8A9136AAu);
  BOOST_TEST(crc32c::extend_portable(0, buf.data(), buf.size()) == 0x8A9136AAu);

  buf.fill(0xFF);
  BOOST_TEST(crc32c::value(buf.data(), buf.size()) == 0x62A8AB43u);
  BOOST_TEST(crc32c::extend_portable(0, buf.data(), buf.size()) == 0x62A8AB43u);

  std::iota(buf.begin(), buf.end(), static_cast<unsigned char>(0));
  BOOST_TEST(crc32c::value(buf.data(), buf.size()) == 0x46DD794Eu);
  BOOST_TEST(crc32c::extend_portable(0, buf.data(), buf.size()) == 0x46DD794Eu);
}

BOOST_AUTO_TEST_CASE(empty_input_leaves_value_unchanged) {
  BOOST_TEST(crc32c::value(nullptr, 0) == 0u);
  BOOST_TEST(crc32c::extend(0xE3069283u, nullptr, 0) == 0xE3069283u);
  BOOST_TEST(crc32c::extend_portable(0xE3069283u, nullptr, 0) == 0xE3069283u);
}

BOOST_AUTO_TEST_CASE(extend_over_split_buffers_equals_whole) {
  std::mt19937_64 rng(42);
  std::vector<unsigned char> buf(10000);
  for (auto& b : buf) b = static_cast<unsigned char>(rng());
  const std::uint32_t whole = crc32c::value(buf.data(), buf.size());
  BOOST_TEST(whole == crc32c::extend_portable(0, buf.data(), buf.size()));
  for (std::size_t split : {0u, 1u, 7u, 8u, 9u, 383u, 384u, 3072u, 5000u, 9999u, 10000u}) {
    const std::uint32_t head = crc32c::value(buf.data(), split);
    BOOST_TEST(crc32c::extend(head, buf.data() + split, buf.size() - split) == whole);
    const std::uint32_t phead = crc32c::extend_portable(0, buf.data(), split);
    BOOST_TEST(crc32c::extend_portable(phead, buf.data() + split, buf.size() - split) == whole);
  }
  // Many small pieces, as a record is checksummed header field by field.
  std::uint32_t crc = 0;
  std::size_t pos = 0;
  while (pos < buf.size()) {
    const std::size_t n = std::min<std::size_t>(rng() % 50, buf.size() - pos);
    crc = crc32c::extend(crc, buf.data() + pos, n);
    pos += n;
  }
  BOOST_TEST(crc == whole);
}

BOOST_AUTO_TEST_CASE(portable_matches_fast_path) {
  std::mt19937_64 rng(7);
  std::vector<unsigned char> buf(100000 + 16);
  for (auto& b : buf) b = static_cast<unsigned char>(rng());
  for (std::size_t n : interesting_lengths())
    for (std::size_t align = 0; align < 8; ++align) {
      const unsigned char* p = buf.data() + align;
      BOOST_TEST_CONTEXT("length " << n << " alignment " << align) {
        BOOST_TEST(crc32c::extend(0, p, n) == crc32c::extend_portable(0, p, n));
        BOOST_TEST(crc32c::extend(0x12345678u, p, n) == crc32c::extend_portable(0x12345678u, p, n));
      }
    }
  for (int i = 0; i < 2000; ++i) {
    const std::size_t align = rng() % 16;
    const std::size_t n = rng() % (buf.size() - align);
    const std::uint32_t seed = static_cast<std::uint32_t>(rng());
    const unsigned char* p = buf.data() + align;
    BOOST_TEST_CONTEXT("length " << n << " alignment " << align) {
      BOOST_TEST(crc32c::extend(seed, p, n) == crc32c::extend_portable(seed, p, n));
    }
  }
}

BOOST_AUTO_TEST_CASE(detects_single_bit_flips) {
  std::vector<unsigned char> buf(4096, 0x5A);
  const std::uint32_t base = crc32c::value(buf.data(), buf.size());
  for (std::size_t i = 0; i < buf.size(); i += 97)
    for (int bit = 0; bit < 8; ++bit) {
      buf[i] ^= static_cast<unsigned char>(1u << bit);
      BOOST_TEST(crc32c::value(buf.data(), buf.size()) != base);
      buf[i] ^= static_cast<unsigned char>(1u << bit);
    }
}

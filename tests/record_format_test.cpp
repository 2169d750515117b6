#include <boost/test/unit_test.hpp>

#include <cstring>

#include <capnp/message.h>
#include <capnp/serialize.h>

#include "record_format.hpp"
#include "weir/schema/log.capnp.h"

namespace rf = weir::record_format;

namespace {

rf::word_buffer framed_ack(std::uint64_t begin, std::uint64_t end) {
  capnp::MallocMessageBuilder builder;
  auto ranges = builder.initRoot<weir::schema::LogRecord>().initAck().initRanges(1);
  ranges[0].setBegin(begin);
  ranges[0].setEnd(end);
  rf::word_buffer words;
  rf::append_record(words, builder);
  return words;
}

/// `first` then `second` in one buffer. Words are copied as bytes: capnp::word
/// forbids assignment, which vector::insert may use.
rf::word_buffer concatenated(const rf::word_buffer& first, const rf::word_buffer& second) {
  rf::word_buffer both(first.size() + second.size());
  std::memcpy(both.data(), first.data(), first.size() * sizeof(capnp::word));
  std::memcpy(both.data() + first.size(), second.data(), second.size() * sizeof(capnp::word));
  return both;
}

std::span<std::byte> bytes_of(rf::word_buffer& words) {
  return std::as_writable_bytes(std::span{words});
}

}  // namespace

BOOST_AUTO_TEST_CASE(a_framed_record_decodes_to_what_was_written) {
  auto words = framed_ack(3, 9);
  auto frame = rf::decode_frame(bytes_of(words), 1 << 20, rf::no_salt);
  BOOST_REQUIRE(frame.status == rf::frame_status::ok);
  BOOST_TEST(frame.size == words.size() * sizeof(capnp::word));
  capnp::FlatArrayMessageReader reader(
      kj::ArrayPtr<const capnp::word>(frame.payload.data(), frame.payload.size()));
  auto record = reader.getRoot<weir::schema::LogRecord>();
  BOOST_REQUIRE(record.isAck());
  BOOST_TEST(record.getAck().getRanges()[0].getBegin() == 3u);
  BOOST_TEST(record.getAck().getRanges()[0].getEnd() == 9u);
}

BOOST_AUTO_TEST_CASE(every_single_bit_flip_is_detected) {
  auto original = framed_ack(1, 1000);
  const auto total_bits = original.size() * sizeof(capnp::word) * 8;
  for (std::size_t bit = 0; bit < total_bits; ++bit) {
    auto words = original;
    auto bytes = bytes_of(words);
    bytes[bit / 8] ^= std::byte(1u << (bit % 8));
    auto frame = rf::decode_frame(bytes, 1 << 20, rf::no_salt);
    BOOST_TEST((frame.status != rf::frame_status::ok), "bit " << bit << " flip went unnoticed");
  }
}

BOOST_AUTO_TEST_CASE(a_cut_record_is_incomplete_not_ok) {
  auto words = framed_ack(1, 2);
  auto bytes = bytes_of(words);
  for (std::size_t cut = 0; cut < bytes.size(); ++cut) {
    BOOST_TEST((rf::decode_frame(bytes.first(cut), 1 << 20, rf::no_salt).status !=
                rf::frame_status::ok));
  }
}

BOOST_AUTO_TEST_CASE(resync_finds_the_record_after_a_damaged_one) {
  auto first = framed_ack(1, 2);
  auto second = framed_ack(5, 6);
  auto both = concatenated(first, second);
  auto bytes = bytes_of(both);
  bytes[3] ^= std::byte{0x10};  // damage the first record's length
  BOOST_TEST((rf::decode_frame(bytes, 1 << 20, rf::no_salt).status != rf::frame_status::ok));
  BOOST_TEST(rf::find_next_frame(bytes, 1 << 20, rf::no_salt) ==
             first.size() * sizeof(capnp::word));
  auto tail = bytes.first(first.size() * sizeof(capnp::word));
  BOOST_TEST(rf::find_next_frame(tail, 1 << 20, rf::no_salt) == tail.size());
}

BOOST_AUTO_TEST_CASE(a_salted_record_passes_only_with_its_own_salt) {
  // Segment records are salted with their segment's number, so the records a
  // reused file held before cannot pass for the new segment's.
  auto older = framed_ack(1, 2);
  rf::salt_record(reinterpret_cast<std::byte*>(older.data()), 7);
  auto newer = framed_ack(1, 2);
  rf::salt_record(reinterpret_cast<std::byte*>(newer.data()), 7 + (1ull << 32));
  auto bytes = bytes_of(older);
  BOOST_TEST((rf::decode_frame(bytes, 1 << 20, 7).status == rf::frame_status::ok));
  BOOST_TEST((rf::decode_frame(bytes, 1 << 20, 7 + (1ull << 32)).status ==
              rf::frame_status::corrupt));
  BOOST_TEST((rf::decode_frame(bytes, 1 << 20, rf::no_salt).status == rf::frame_status::corrupt));
  BOOST_TEST((rf::decode_frame(bytes_of(newer), 1 << 20, 7 + (1ull << 32)).status ==
              rf::frame_status::ok));

  auto both = concatenated(newer, older);
  BOOST_TEST(rf::find_next_frame(bytes_of(both), 1 << 20, 7 + (1ull << 32)) ==
             bytes_of(both).size());
  BOOST_TEST(rf::find_next_frame(bytes_of(both), 1 << 20, 7) ==
             newer.size() * sizeof(capnp::word));
}

BOOST_AUTO_TEST_CASE(file_headers_name_their_problem) {
  std::byte header[rf::header_size];
  rf::write_file_header(header, rf::segment_magic, 1);
  std::uint32_t version = 0;
  BOOST_TEST(int(rf::check_file_header(header, rf::segment_magic, 1, version)) ==
             int(rf::header_check::ok));
  BOOST_TEST(int(rf::check_file_header(header, rf::snapshot_magic, 1, version)) ==
             int(rf::header_check::bad_magic));
  BOOST_TEST(int(rf::check_file_header(std::span{header}.first(10), rf::segment_magic, 1,
                                       version)) == int(rf::header_check::too_short));
  rf::write_file_header(header, rf::segment_magic, 9);
  BOOST_TEST(int(rf::check_file_header(header, rf::segment_magic, 1, version)) ==
             int(rf::header_check::other_version));
  BOOST_TEST(version == 9u);
  header[13] ^= std::byte{1};
  BOOST_TEST(int(rf::check_file_header(header, rf::segment_magic, 9, version)) ==
             int(rf::header_check::bad_crc));
}

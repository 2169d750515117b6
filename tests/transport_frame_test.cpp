// Wire frames: every message kind survives encode and decode, and every way a
// frame from the network can be wrong (size, words, truncation, version,
// pointers, unknown kinds, random bytes) ends in a frame_error, never a throw.

#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include <capnp/any.h>
#include <capnp/message.h>
#include <capnp/serialize.h>

#include "fuzz/frame_walk.hpp"
#include "weir/transport/frame.hpp"

namespace weir::transport {
namespace {

using schema::ErrorCode;
using W = schema::ProtocolMessage::Which;

capnp::Data::Reader bytes_of(const std::string& text) {
  return {reinterpret_cast<const kj::byte*>(text.data()), text.size()};
}

std::string string_of(capnp::Data::Reader data) {
  return {reinterpret_cast<const char*>(data.begin()), data.size()};
}

void fill_envelope(schema::Envelope::Builder envelope, std::uint64_t n) {
  envelope.setId(n);
  envelope.setProducerId(7);
  envelope.setProducerEpoch(2);
  envelope.setProducerSeq(100 + n);
  envelope.setKey(bytes_of("key-" + std::to_string(n)));
  envelope.setPayload(bytes_of("payload " + std::to_string(n) + std::string("\0\xff", 2)));
  auto header = envelope.initHeaders(1)[0];
  header.setName("content-type");
  header.setValue(bytes_of("text/plain"));
  envelope.setPublishTimeNs(1700000000000000000 + static_cast<std::int64_t>(n));
  envelope.setAttempt(3);
}

// One message of every kind, in the order of their union tags, with no field
// left at its default.
void fill_every_kind(schema::Frame::Builder frame) {
  frame.setProtocolVersion(schema::WIRE_PROTOCOL_VERSION);
  auto m = frame.initMessages(18);
  auto hello = m[0].initHello();
  hello.setNodeId("node-a");
  hello.setProtocolVersion(schema::WIRE_PROTOCOL_VERSION);
  hello.setHeartbeatIntervalMs(500);
  m[1].initHeartbeat().setSentAtNs(123456789);
  auto publish = m[2].initPublish();
  publish.setQueue("orders");
  publish.setProducerId(7);
  publish.setProducerEpoch(2);
  publish.setFirstSeq(101);
  auto published = publish.initEnvelopes(2);
  fill_envelope(published[0], 1);
  fill_envelope(published[1], 2);
  auto confirm = m[3].initConfirm();
  confirm.setQueue("orders");
  confirm.setProducerId(7);
  confirm.setProducerEpoch(2);
  confirm.setUpToSeq(102);
  auto subscribe = m[4].initSubscribe();
  subscribe.setQueue("orders");
  subscribe.setConsumerId(11);
  subscribe.setCredit(64);
  auto credit = m[5].initCredit();
  credit.setQueue("orders");
  credit.setConsumerId(11);
  credit.setGrant(32);
  auto deliver = m[6].initDeliver();
  deliver.setQueue("orders");
  deliver.setConsumerId(11);
  fill_envelope(deliver.initEnvelopes(1)[0], 3);
  auto ack = m[7].initAck();
  ack.setQueue("orders");
  ack.setConsumerId(11);
  auto ranges = ack.initRanges(2);
  ranges[0].setBegin(1);
  ranges[0].setEnd(3);
  ranges[1].setBegin(5);
  ranges[1].setEnd(6);
  auto nack = m[8].initNack();
  nack.setQueue("orders");
  nack.setConsumerId(11);
  auto nacked = nack.initIds(3);
  nacked.set(0, 5);
  nacked.set(1, 6);
  nacked.set(2, 7);
  nack.setAction(schema::NackAction::DEAD_LETTER);
  nack.setDelayMs(250);
  nack.setReason("price field is not a number");
  auto extend = m[9].initExtendLease();
  extend.setQueue("orders");
  extend.setConsumerId(11);
  extend.initIds(1).set(0, 8);
  extend.setExtensionMs(1000);
  auto error = m[10].initError();
  error.setCode(ErrorCode::UNKNOWN_QUEUE);
  error.setMessage("no queue named missing");
  error.setQueue("missing");
  error.setRequestId(9);
  auto unsubscribe = m[11].initUnsubscribe();
  unsubscribe.setQueue("orders");
  unsubscribe.setConsumerId(11);
  auto list_request = m[12].initListRequest();
  list_request.setQueue("orders.dead");
  list_request.setRequestId(12);
  list_request.setFromId(4);
  list_request.setLimit(10);
  auto list_reply = m[13].initListReply();
  list_reply.setRequestId(12);
  fill_envelope(list_reply.initEnvelopes(1)[0], 4);
  auto replay_request = m[14].initReplayRequest();
  replay_request.setQueue("orders.dead");
  replay_request.setRequestId(13);
  replay_request.setLimit(100);
  auto replay_reply = m[15].initReplayReply();
  replay_reply.setRequestId(13);
  replay_reply.setMoved(42);
  auto info_request = m[16].initInfoRequest();
  info_request.setRequestId(14);
  info_request.setTopic(schema::InfoTopic::TREE);
  auto info_reply = m[17].initInfoReply();
  info_reply.setRequestId(14);
  info_reply.setTopic(schema::InfoTopic::TREE);
  info_reply.setText("node a state=running restarts=0\n  orders state=running restarts=2\n");
}

std::vector<unsigned char> to_bytes(const zmq::message_t& message) {
  const auto* data = static_cast<const unsigned char*>(message.data());
  return {data, data + message.size()};
}

std::vector<unsigned char> every_kind_bytes() {
  capnp::MallocMessageBuilder builder;
  fill_every_kind(builder.initRoot<schema::Frame>());
  return to_bytes(encode_frame(builder));
}

std::vector<unsigned char> frame_bytes(std::uint16_t version) {
  capnp::MallocMessageBuilder builder;
  auto frame = builder.initRoot<schema::Frame>();
  frame.setProtocolVersion(version);
  auto messages = frame.initMessages(2);
  messages[0].initHeartbeat().setSentAtNs(1);
  auto confirm = messages[1].initConfirm();
  confirm.setQueue("orders");
  confirm.setUpToSeq(5);
  return to_bytes(encode_frame(builder));
}

using decoded = std::variant<inbound_frame_ptr, frame_error>;

decoded decode(const std::vector<unsigned char>& bytes, frame_limits limits = {}) {
  return decode_frame(bytes.data(), bytes.size(), limits);
}

frame_error error_of(const decoded& result) {
  BOOST_REQUIRE_MESSAGE(std::holds_alternative<frame_error>(result), "the frame was accepted");
  return std::get<frame_error>(result);
}

inbound_frame_ptr frame_of(const decoded& result) {
  if (auto* error = std::get_if<frame_error>(&result)) {
    BOOST_FAIL("the frame was refused: " << error->message);
  }
  return std::get<inbound_frame_ptr>(result);
}

std::uint64_t load_word(const std::vector<unsigned char>& bytes, std::size_t index) {
  std::uint64_t word = 0;
  std::memcpy(&word, bytes.data() + index * 8, 8);
  return word;
}

void store_word(std::vector<unsigned char>& bytes, std::size_t index, std::uint64_t word) {
  std::memcpy(bytes.data() + index * 8, &word, 8);
}

// The test owns the buffers it hands to zero-copy messages.
void no_free(void*, void*) {}

std::uint64_t digest_of(schema::Frame::Reader frame) {
  testing::frame_walk walk;
  walk.frame(frame);
  return walk.digest();
}

}  // namespace

BOOST_AUTO_TEST_CASE(round_trips_every_message_kind) {
  capnp::MallocMessageBuilder builder;
  fill_every_kind(builder.initRoot<schema::Frame>());
  auto encoded = encode_frame(builder);

  // Byte for byte the standard flat layout, so any Cap'n Proto reader can read it.
  auto reference = capnp::messageToFlatArray(builder);
  BOOST_REQUIRE_EQUAL(encoded.size(), reference.asBytes().size());
  BOOST_CHECK(std::memcmp(encoded.data(), reference.asBytes().begin(), encoded.size()) == 0);

  const auto expected_digest = digest_of(builder.getRoot<schema::Frame>().asReader());
  auto frame = frame_of(decode_frame(std::move(encoded), {}));
  BOOST_CHECK_EQUAL(frame->size_bytes(), reference.asBytes().size());
  auto root = frame->root();
  BOOST_CHECK_EQUAL(root.getProtocolVersion(), schema::WIRE_PROTOCOL_VERSION);
  auto m = root.getMessages();
  BOOST_REQUIRE_EQUAL(m.size(), 18u);
  for (unsigned i = 0; i < m.size(); ++i) BOOST_CHECK_EQUAL(static_cast<unsigned>(m[i].which()), i);
  // Every field of every kind, compared through a digest of all of them.
  BOOST_CHECK_EQUAL(digest_of(root), expected_digest);

  BOOST_CHECK_EQUAL(m[0].getHello().getNodeId().cStr(), std::string("node-a"));
  BOOST_CHECK_EQUAL(m[0].getHello().getHeartbeatIntervalMs(), 500u);
  BOOST_CHECK_EQUAL(m[1].getHeartbeat().getSentAtNs(), 123456789);
  auto publish = m[2].getPublish();
  BOOST_CHECK_EQUAL(publish.getQueue().cStr(), std::string("orders"));
  BOOST_CHECK_EQUAL(publish.getFirstSeq(), 101u);
  BOOST_REQUIRE_EQUAL(publish.getEnvelopes().size(), 2u);
  auto envelope = publish.getEnvelopes()[1];
  BOOST_CHECK_EQUAL(envelope.getProducerSeq(), 102u);
  BOOST_CHECK_EQUAL(string_of(envelope.getKey()), "key-2");
  BOOST_CHECK_EQUAL(string_of(envelope.getPayload()), std::string("payload 2\0\xff", 11));
  BOOST_CHECK_EQUAL(envelope.getHeaders()[0].getName().cStr(), std::string("content-type"));
  BOOST_CHECK_EQUAL(string_of(envelope.getHeaders()[0].getValue()), "text/plain");
  BOOST_CHECK_EQUAL(envelope.getAttempt(), 3u);
  BOOST_CHECK_EQUAL(m[3].getConfirm().getUpToSeq(), 102u);
  BOOST_CHECK_EQUAL(m[4].getSubscribe().getCredit(), 64u);
  BOOST_CHECK_EQUAL(m[5].getCredit().getGrant(), 32u);
  BOOST_CHECK_EQUAL(m[6].getDeliver().getEnvelopes()[0].getId(), 3u);
  BOOST_CHECK_EQUAL(m[7].getAck().getRanges()[1].getBegin(), 5u);
  BOOST_CHECK(m[8].getNack().getAction() == schema::NackAction::DEAD_LETTER);
  BOOST_CHECK_EQUAL(m[8].getNack().getIds()[2], 7u);
  BOOST_CHECK_EQUAL(m[8].getNack().getReason().cStr(), std::string("price field is not a number"));
  BOOST_CHECK_EQUAL(m[9].getExtendLease().getExtensionMs(), 1000u);
  BOOST_CHECK(m[10].getError().getCode() == ErrorCode::UNKNOWN_QUEUE);
  BOOST_CHECK_EQUAL(m[10].getError().getQueue().cStr(), std::string("missing"));
  BOOST_CHECK_EQUAL(m[11].getUnsubscribe().getConsumerId(), 11u);
  BOOST_CHECK_EQUAL(m[12].getListRequest().getFromId(), 4u);
  BOOST_CHECK_EQUAL(m[13].getListReply().getEnvelopes()[0].getId(), 4u);
  BOOST_CHECK_EQUAL(m[14].getReplayRequest().getLimit(), 100u);
  BOOST_CHECK_EQUAL(m[15].getReplayReply().getMoved(), 42u);
  BOOST_CHECK_EQUAL(m[16].getInfoRequest().getRequestId(), 14u);
  BOOST_CHECK(m[16].getInfoRequest().getTopic() == schema::InfoTopic::TREE);
  BOOST_CHECK_EQUAL(m[17].getInfoReply().getRequestId(), 14u);
  BOOST_CHECK_EQUAL(m[17].getInfoReply().getText().cStr(),
                    std::string("node a state=running restarts=0\n"
                                "  orders state=running restarts=2\n"));
}

BOOST_AUTO_TEST_CASE(encodes_multi_segment_builders_in_the_standard_layout) {
  // A tiny fixed first segment forces the builder to spill into more segments.
  capnp::MallocMessageBuilder builder(8, capnp::AllocationStrategy::FIXED_SIZE);
  fill_every_kind(builder.initRoot<schema::Frame>());
  BOOST_REQUIRE_GT(builder.getSegmentsForOutput().size(), 2u);
  auto encoded = encode_frame(builder);
  auto reference = capnp::messageToFlatArray(builder);
  BOOST_REQUIRE_EQUAL(encoded.size(), reference.asBytes().size());
  BOOST_CHECK(std::memcmp(encoded.data(), reference.asBytes().begin(), encoded.size()) == 0);
  auto frame = frame_of(decode_frame(std::move(encoded), {}));
  BOOST_CHECK_EQUAL(digest_of(frame->root()),
                    digest_of(builder.getRoot<schema::Frame>().asReader()));
}

BOOST_AUTO_TEST_CASE(a_frame_builder_gives_the_standard_layout_whether_or_not_its_guess_fits) {
  for (std::size_t guess : {std::size_t{0}, std::size_t{64}, std::size_t{1} << 20}) {
    frame_builder builder(guess);
    fill_every_kind(builder.initRoot<schema::Frame>());
    const auto segments = builder.getSegmentsForOutput().size();
    BOOST_TEST_CONTEXT("guess " << guess << " bytes, " << segments << " segments") {
      if (guess >= (std::size_t{1} << 20)) BOOST_TEST(segments == 1u);
      if (guess == 0) BOOST_TEST(segments > 1u);
      auto reference = capnp::messageToFlatArray(builder);
      const auto expected_digest = digest_of(builder.getRoot<schema::Frame>().asReader());
      auto encoded = builder.finish();
      BOOST_REQUIRE_EQUAL(encoded.size(), reference.asBytes().size());
      BOOST_CHECK(std::memcmp(encoded.data(), reference.asBytes().begin(), encoded.size()) == 0);
      auto frame = frame_of(decode_frame(std::move(encoded), {}));
      BOOST_CHECK_EQUAL(digest_of(frame->root()), expected_digest);
    }
  }
}

BOOST_AUTO_TEST_CASE(encode_error_builds_a_frame_with_one_error_message) {
  auto frame = frame_of(decode_frame(encode_error(ErrorCode::BAD_REQUEST, "credit 0"), {}));
  auto messages = frame->root().getMessages();
  BOOST_REQUIRE_EQUAL(messages.size(), 1u);
  BOOST_REQUIRE(messages[0].which() == W::ERROR);
  BOOST_CHECK(messages[0].getError().getCode() == ErrorCode::BAD_REQUEST);
  BOOST_CHECK_EQUAL(messages[0].getError().getMessage().cStr(), std::string("credit 0"));

  // A message that quotes a peer is capped so the reply stays small.
  auto long_reply = frame_of(decode_frame(encode_error(ErrorCode::INTERNAL, std::string(5000, 'x')), {}));
  BOOST_CHECK_EQUAL(long_reply->root().getMessages()[0].getError().getMessage().size(), 1024u);
}

BOOST_AUTO_TEST_CASE(refuses_frames_over_the_size_limit_before_reading_them) {
  const auto bytes = every_kind_bytes();
  frame_limits limits;
  limits.max_frame_bytes = 64;
  auto error = error_of(decode(bytes, limits));
  BOOST_CHECK(error.code == ErrorCode::FRAME_TOO_LARGE);
  BOOST_CHECK_EQUAL(error.message, "frame of " + std::to_string(bytes.size()) +
                                       " bytes is larger than the limit of 64 bytes");

  // The size alone decides: a claimed terabyte behind a one-byte buffer is
  // refused without a read (AddressSanitizer would catch one).
  const unsigned char one_byte = 0;
  auto huge = error_of(decode_frame(&one_byte, std::size_t(1) << 40, frame_limits{}));
  BOOST_CHECK(huge.code == ErrorCode::FRAME_TOO_LARGE);

  // Limits apply to received messages too, and a frame exactly at the limit passes.
  zmq::message_t received(bytes.data(), bytes.size());
  limits.max_frame_bytes = bytes.size() - 8;
  BOOST_CHECK(error_of(decode_frame(std::move(received), limits)).code == ErrorCode::FRAME_TOO_LARGE);
  limits.max_frame_bytes = bytes.size();
  frame_of(decode(bytes, limits));
}

BOOST_AUTO_TEST_CASE(refuses_sizes_that_are_not_whole_words) {
  const std::vector<unsigned char> twelve(12, 0);
  auto error = error_of(decode(twelve));
  BOOST_CHECK(error.code == ErrorCode::MALFORMED_FRAME);
  BOOST_CHECK_EQUAL(error.message, "frame of 12 bytes is not a whole number of 8-byte words");

  auto empty = error_of(decode({}));
  BOOST_CHECK(empty.code == ErrorCode::MALFORMED_FRAME);
  BOOST_CHECK_EQUAL(empty.message, "empty frame");
}

BOOST_AUTO_TEST_CASE(refuses_another_protocol_version_naming_both) {
  auto error = error_of(decode(frame_bytes(7)));
  BOOST_CHECK(error.code == ErrorCode::UNSUPPORTED_VERSION);
  BOOST_CHECK_EQUAL(error.message, "protocol version 7, this node speaks " +
                                       std::to_string(schema::WIRE_PROTOCOL_VERSION));
  frame_of(decode(frame_bytes(schema::WIRE_PROTOCOL_VERSION)));
}

BOOST_AUTO_TEST_CASE(refuses_every_truncation_of_a_valid_frame) {
  const auto bytes = every_kind_bytes();
  for (std::size_t size = 8; size < bytes.size(); size += 8) {
    const std::vector<unsigned char> prefix(bytes.begin(), bytes.begin() + size);
    auto result = decode(prefix);
    BOOST_REQUIRE_MESSAGE(std::holds_alternative<frame_error>(result),
                          "a prefix of " << size << " bytes was accepted");
    BOOST_CHECK(std::get<frame_error>(result).code == ErrorCode::MALFORMED_FRAME);
  }
}

BOOST_AUTO_TEST_CASE(refuses_bytes_after_the_message) {
  auto bytes = frame_bytes(schema::WIRE_PROTOCOL_VERSION);
  bytes.resize(bytes.size() + 8, 0);
  auto error = error_of(decode(bytes));
  BOOST_CHECK(error.code == ErrorCode::MALFORMED_FRAME);
  BOOST_CHECK_MESSAGE(error.message.find("segment table describes") != std::string::npos,
                      error.message);
}

BOOST_AUTO_TEST_CASE(refuses_a_segment_table_claiming_too_many_segments) {
  auto bytes = frame_bytes(schema::WIRE_PROTOCOL_VERSION);
  const std::uint32_t segments_minus_one = 999;
  std::memcpy(bytes.data(), &segments_minus_one, 4);
  auto error = error_of(decode(bytes));
  BOOST_CHECK(error.code == ErrorCode::MALFORMED_FRAME);
  BOOST_CHECK_MESSAGE(error.message.find("claims 1000 segments") != std::string::npos,
                      error.message);
}

BOOST_AUTO_TEST_CASE(refuses_a_list_pointer_that_claims_a_huge_size) {
  auto bytes = frame_bytes(schema::WIRE_PROTOCOL_VERSION);
  // Single segment: word 0 is the segment table, word 1 the root pointer, the
  // root struct follows with one data word (the version) and then the
  // `messages` pointer: an inline-composite list (kind 1, element size 7).
  auto messages_pointer = load_word(bytes, 3);
  BOOST_REQUIRE_EQUAL(messages_pointer & 3, 1u);
  BOOST_REQUIRE_EQUAL((messages_pointer >> 32) & 7, 7u);
  const std::uint64_t huge_word_count = (1ull << 29) - 1;
  store_word(bytes, 3, (messages_pointer & ((1ull << 35) - 1)) | (huge_word_count << 35));
  auto error = error_of(decode(bytes));
  BOOST_CHECK(error.code == ErrorCode::MALFORMED_FRAME);
  BOOST_TEST_MESSAGE("huge list: " << error.message);
}

BOOST_AUTO_TEST_CASE(bounds_lists_of_zero_sized_elements_by_the_frame_size) {
  // A list of zero-sized structs costs no bytes per element, so a 40-byte
  // frame could claim a million messages; the traversal limit, tied to the
  // frame size, refuses it while a claim of three passes.
  auto frame_claiming = [](std::uint64_t count) {
    std::vector<unsigned char> bytes(5 * 8);
    store_word(bytes, 0, std::uint64_t(4) << 32);            // one segment of 4 words
    store_word(bytes, 1, (1ull << 32) | (1ull << 48));         // root: 1 data word, 1 pointer
    store_word(bytes, 2, schema::WIRE_PROTOCOL_VERSION);       // protocolVersion
    store_word(bytes, 3, 1 | (7ull << 32));                    // messages: inline composite, 0 words
    store_word(bytes, 4, count << 2);                          // tag: `count` elements of 0 words
    return bytes;
  };
  auto small = frame_of(decode(frame_claiming(3)));
  BOOST_CHECK_EQUAL(small->root().getMessages().size(), 3u);
  auto error = error_of(decode(frame_claiming(1u << 20)));
  BOOST_CHECK(error.code == ErrorCode::MALFORMED_FRAME);
  BOOST_TEST_MESSAGE("amplified list: " << error.message);
}

BOOST_AUTO_TEST_CASE(refuses_an_unknown_message_kind_naming_it) {
  for (std::uint16_t tag : {std::uint16_t(18), std::uint16_t(0xffff)}) {
    capnp::MallocMessageBuilder builder;
    auto frame = builder.initRoot<schema::Frame>();
    frame.setProtocolVersion(schema::WIRE_PROTOCOL_VERSION);
    auto messages = frame.initMessages(2);
    messages[0].initHeartbeat();
    messages[1].initHello().setNodeId("newer");
    // A newer peer's kind: the union discriminant is the first 16 bits of the data section.
    capnp::AnyStruct::Builder raw(messages[1]);
    raw.getDataSection()[0] = static_cast<kj::byte>(tag & 0xff);
    raw.getDataSection()[1] = static_cast<kj::byte>(tag >> 8);
    auto error = error_of(decode(to_bytes(encode_frame(builder))));
    BOOST_CHECK(error.code == ErrorCode::MALFORMED_FRAME);
    BOOST_CHECK_EQUAL(error.message, "message 1 has unknown kind " + std::to_string(tag) +
                                         " (a newer protocol?)");
  }
}

BOOST_AUTO_TEST_CASE(refuses_a_nack_with_an_unknown_action_naming_it) {
  // Read as it comes, an unknown action would be neither dead-letter nor said to be wrong.
  capnp::MallocMessageBuilder builder;
  auto frame = builder.initRoot<schema::Frame>();
  frame.setProtocolVersion(schema::WIRE_PROTOCOL_VERSION);
  auto nack = frame.initMessages(1)[0].initNack();
  nack.setQueue("orders");
  nack.initIds(1).set(0, 5);
  nack.setAction(static_cast<schema::NackAction>(7));
  auto error = error_of(decode(to_bytes(encode_frame(builder))));
  BOOST_CHECK(error.code == ErrorCode::MALFORMED_FRAME);
  BOOST_CHECK_EQUAL(error.message, "message 0 (nack) has unknown action 7");
}

BOOST_AUTO_TEST_CASE(refuses_text_without_its_terminating_nul_deep_inside_a_message) {
  auto bytes = every_kind_bytes();
  const std::string name("content-type");
  auto found = std::search(bytes.begin(), bytes.end(), name.begin(), name.end());
  BOOST_REQUIRE(found != bytes.end());
  auto nul = found + static_cast<std::ptrdiff_t>(name.size());
  BOOST_REQUIRE_EQUAL(*nul, 0);
  *nul = 'x';
  auto error = error_of(decode(bytes));
  BOOST_CHECK(error.code == ErrorCode::MALFORMED_FRAME);
  // The first header named so is in the publish, message 2.
  BOOST_CHECK_MESSAGE(error.message.find("message 2 (publish)") != std::string::npos,
                      error.message);
}

BOOST_AUTO_TEST_CASE(checks_info_messages_field_by_field) {
  auto info_frame = [](std::uint16_t topic, const std::string& text) {
    capnp::MallocMessageBuilder builder;
    auto frame = builder.initRoot<schema::Frame>();
    frame.setProtocolVersion(schema::WIRE_PROTOCOL_VERSION);
    auto messages = frame.initMessages(2);
    auto request = messages[0].initInfoRequest();
    request.setRequestId(7);
    request.setTopic(static_cast<schema::InfoTopic>(topic));
    auto reply = messages[1].initInfoReply();
    reply.setRequestId(7);
    reply.setText(text);
    return to_bytes(encode_frame(builder));
  };
  // A topic this build does not know is well-formed: the node answers it with badRequest.
  auto accepted = frame_of(decode(info_frame(9, "weir_node_peers 1\n")));
  auto messages = accepted->root().getMessages();
  BOOST_CHECK_EQUAL(static_cast<unsigned>(messages[0].getInfoRequest().getTopic()), 9u);
  BOOST_CHECK_EQUAL(messages[1].getInfoReply().getText().cStr(),
                    std::string("weir_node_peers 1\n"));

  // The reply's text without its NUL is refused, naming the message and its kind.
  auto bytes = info_frame(0, "weir_node_peers 1");
  const std::string text("weir_node_peers 1");
  auto found = std::search(bytes.begin(), bytes.end(), text.begin(), text.end());
  BOOST_REQUIRE(found != bytes.end());
  *(found + static_cast<std::ptrdiff_t>(text.size())) = 'x';
  auto error = error_of(decode(bytes));
  BOOST_CHECK(error.code == ErrorCode::MALFORMED_FRAME);
  BOOST_CHECK_MESSAGE(error.message.find("message 1 (infoReply)") != std::string::npos,
                      error.message);

  // So is a request whose struct pointer points outside the frame.
  auto broken = info_frame(1, "x");
  // Word 0 is the segment table, 1 the root pointer, 2..3 the Frame struct, 4 the
  // list tag; word 5 is the first message's data, word 6 its union pointer.
  store_word(broken, 6, (std::uint64_t(1) << 32) | (std::uint64_t(1000) << 2));
  error = error_of(decode(broken));
  BOOST_CHECK(error.code == ErrorCode::MALFORMED_FRAME);
  BOOST_CHECK_MESSAGE(error.message.find("message 0 (infoRequest)") != std::string::npos,
                      error.message);
}

BOOST_AUTO_TEST_CASE(random_and_mutated_bytes_never_throw) {
  std::mt19937_64 random(20240611);
  const auto valid = every_kind_bytes();
  std::size_t accepted = 0;
  std::size_t refused = 0;
  auto check = [&](const std::vector<unsigned char>& bytes, int round) {
    try {
      auto result = decode(bytes);
      if (auto* frame = std::get_if<inbound_frame_ptr>(&result)) {
        digest_of((*frame)->root());  // every getter, which must not throw now
        ++accepted;
      } else {
        BOOST_REQUIRE(!std::get<frame_error>(result).message.empty());
        ++refused;
      }
    } catch (const std::exception& e) {
      BOOST_FAIL("round " << round << " threw: " << e.what());
    } catch (const kj::Exception& e) {
      BOOST_FAIL("round " << round << " threw: " << e.getDescription().cStr());
    }
  };

  for (int round = 0; round < 3000; ++round) {
    std::size_t size = random() % 320;
    if (round % 2 == 0) size &= ~std::size_t(7);
    std::vector<unsigned char> bytes(size);
    for (auto& byte : bytes) byte = static_cast<unsigned char>(random());
    // A quarter get a plausible one-segment table, so the pointers are reached.
    if (round % 4 == 0 && size >= 8) {
      store_word(bytes, 0, std::uint64_t(size / 8 - 1) << 32);
    }
    check(bytes, round);
  }
  for (int round = 0; round < 3000; ++round) {
    auto bytes = valid;
    const int flips = 1 + static_cast<int>(random() % 4);
    for (int i = 0; i < flips; ++i) {
      bytes[random() % bytes.size()] ^= static_cast<unsigned char>(1u << (random() % 8));
    }
    check(bytes, 3000 + round);
  }
  BOOST_TEST_MESSAGE("accepted " << accepted << ", refused " << refused);
  BOOST_CHECK_GT(accepted, 0u);
  BOOST_CHECK_GT(refused, 0u);
}

BOOST_AUTO_TEST_CASE(reads_aligned_received_bytes_in_place_and_copies_misaligned_ones) {
  const auto bytes = every_kind_bytes();
  const auto expected = digest_of(frame_of(decode(bytes))->root());
  auto payload_inside = [](const inbound_frame& frame, const unsigned char* begin,
                           std::size_t size) {
    auto payload = frame.root().getMessages()[2].getPublish().getEnvelopes()[0].getPayload();
    const auto* at = reinterpret_cast<const unsigned char*>(payload.begin());
    return at >= begin && at < begin + size;
  };

  std::vector<capnp::word> aligned(bytes.size() / 8);
  std::memcpy(aligned.data(), bytes.data(), bytes.size());
  const auto* aligned_begin = reinterpret_cast<const unsigned char*>(aligned.data());
  auto in_place = frame_of(decode_frame(zmq::message_t(aligned.data(), bytes.size(), no_free), {}));
  BOOST_CHECK(payload_inside(*in_place, aligned_begin, bytes.size()));
  BOOST_CHECK_EQUAL(digest_of(in_place->root()), expected);

  std::vector<capnp::word> storage(bytes.size() / 8 + 1);
  auto* misaligned = reinterpret_cast<unsigned char*>(storage.data()) + 3;
  std::memcpy(misaligned, bytes.data(), bytes.size());
  auto copied = frame_of(decode_frame(zmq::message_t(misaligned, bytes.size(), no_free), {}));
  BOOST_CHECK(!payload_inside(*copied, misaligned, bytes.size()));
  // The copy is independent of the received buffer.
  std::memset(misaligned, 0xab, bytes.size());
  BOOST_CHECK_EQUAL(digest_of(copied->root()), expected);
}

}  // namespace weir::transport

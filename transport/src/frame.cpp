#include "weir/transport/frame.hpp"

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <new>
#include <optional>
#include <utility>

#include <capnp/schema.h>
#include <capnp/serialize.h>
#include <kj/array.h>
#include <kj/exception.h>

#include "weir/runtime/latency_trace.hpp"

namespace weir::transport {

namespace {

constexpr std::size_t word_bytes = sizeof(capnp::word);

// Cap'n Proto's own limit for streamed messages; a frame built by weir has one
// segment (or a handful when a builder grows), so more is a hostile table.
constexpr std::uint64_t segment_count_max = 512;

// Deep enough for Frame > messages > Publish > envelopes > Envelope > headers >
// Header > name with room for a newer peer's additions; shallow enough that a
// pointer chain cannot recurse for long.
constexpr int nesting_limit = 16;

std::uint32_t load_le32(const unsigned char* bytes) {
  return std::uint32_t(bytes[0]) | std::uint32_t(bytes[1]) << 8 | std::uint32_t(bytes[2]) << 16 |
         std::uint32_t(bytes[3]) << 24;
}

void store_le32(unsigned char* bytes, std::uint32_t value) {
  bytes[0] = static_cast<unsigned char>(value);
  bytes[1] = static_cast<unsigned char>(value >> 8);
  bytes[2] = static_cast<unsigned char>(value >> 16);
  bytes[3] = static_cast<unsigned char>(value >> 24);
}

// kj descriptions of failed checks read "expected <condition>; <what>"; the
// peer and the log need only the what.
std::string describe(const kj::Exception& e) {
  std::string text = e.getDescription().cStr();
  if (text.rfind("expected ", 0) == 0) {
    const auto end = text.find("; ");
    if (end != std::string::npos) text.erase(0, end + 2);
  }
  return text;
}

frame_error malformed(std::string message) {
  return {schema::ErrorCode::MALFORMED_FRAME, std::move(message)};
}

// The frame owns its bytes: the received ZeroMQ message when its data is
// word-aligned (no copy), else an aligned copy. The reader points into them.
class checked_frame final : public inbound_frame {
 public:
  explicit checked_frame(zmq::message_t bytes) : received_(std::move(bytes)) {
    // Only now, at its final address, is the message's data where it stays: a
    // small message keeps its bytes inside the zmq_msg_t itself.
    const auto* data = static_cast<const unsigned char*>(received_.data());
    size_bytes_ = received_.size();
    if (reinterpret_cast<std::uintptr_t>(data) % alignof(capnp::word) == 0) {
      words_ = {reinterpret_cast<const capnp::word*>(data), size_bytes_ / word_bytes};
    } else {
      copy_from(data);
      received_.rebuild();  // the copy is all that is needed from here on
    }
  }

  checked_frame(const void* data, std::size_t size) : size_bytes_(size) { copy_from(data); }

  // kj declares its destructors noexcept(false); the base's is noexcept.
  ~checked_frame() noexcept override {}

  kj::ArrayPtr<const capnp::word> words() const { return words_; }

  // Called once, after the checks passed on a separate bounded reader.
  void open(const capnp::ReaderOptions& options) {
    reader_.emplace(words_, options);
    root_ = reader_->getRoot<schema::Frame>();
  }

  schema::Frame::Reader root() const override { return root_; }
  std::size_t size_bytes() const override { return size_bytes_; }

 private:
  void copy_from(const void* data) {
    copy_ = kj::heapArray<capnp::word>(size_bytes_ / word_bytes);
    std::memcpy(copy_.begin(), data, size_bytes_);
    words_ = copy_.asPtr();
  }

  zmq::message_t received_;
  kj::Array<capnp::word> copy_;
  kj::ArrayPtr<const capnp::word> words_;
  std::size_t size_bytes_ = 0;
  std::optional<capnp::FlatArrayMessageReader> reader_;
  schema::Frame::Reader root_;
};

// Checked by hand before Cap'n Proto sees the bytes, for a clear message and
// because FlatArrayMessageReader allocates a table entry per claimed segment
// and accepts bytes after the message.
std::optional<frame_error> check_segment_table(kj::ArrayPtr<const capnp::word> words) {
  const auto* bytes = reinterpret_cast<const unsigned char*>(words.begin());
  const std::uint64_t frame_words = words.size();
  const std::uint64_t segment_count = std::uint64_t(load_le32(bytes)) + 1;
  if (segment_count > segment_count_max) {
    return malformed("segment table claims " + std::to_string(segment_count) +
                     " segments; at most " + std::to_string(segment_count_max) + " are accepted");
  }
  const std::uint64_t table_words = (segment_count + 2) / 2;  // count and sizes, u32 each, padded
  if (table_words > frame_words) {
    return malformed("segment table of " + std::to_string(segment_count) + " segments needs " +
                     std::to_string(table_words) + " words; the frame holds " +
                     std::to_string(frame_words));
  }
  std::uint64_t total_words = table_words;
  for (std::uint64_t i = 0; i < segment_count; ++i) {
    total_words += load_le32(bytes + 4 + 4 * i);
  }
  if (total_words != frame_words) {
    return malformed("segment table describes " + std::to_string(total_words) +
                     " words; the frame holds " + std::to_string(frame_words));
  }
  return std::nullopt;
}

const char* kind_name(schema::ProtocolMessage::Which kind) {
  using W = schema::ProtocolMessage::Which;
  switch (kind) {
    case W::HELLO:
      return "hello";
    case W::HEARTBEAT:
      return "heartbeat";
    case W::PUBLISH:
      return "publish";
    case W::CONFIRM:
      return "confirm";
    case W::SUBSCRIBE:
      return "subscribe";
    case W::CREDIT:
      return "credit";
    case W::DELIVER:
      return "deliver";
    case W::ACK:
      return "ack";
    case W::NACK:
      return "nack";
    case W::EXTEND_LEASE:
      return "extendLease";
    case W::ERROR:
      return "error";
    case W::UNSUBSCRIBE:
      return "unsubscribe";
    case W::LIST_REQUEST:
      return "listRequest";
    case W::LIST_REPLY:
      return "listReply";
    case W::REPLAY_REQUEST:
      return "replayRequest";
    case W::REPLAY_REPLY:
      return "replayReply";
    case W::INFO_REQUEST:
      return "infoRequest";
    case W::INFO_REPLY:
      return "infoReply";
  }
  return nullptr;
}

// Pointer getters are where a hostile frame throws (out of bounds, wrong
// pointer kind, Text without its NUL, traversal or nesting limit). Data-section
// fields cannot throw: a short data section reads as the default value.
void touch_envelopes(capnp::List<schema::Envelope>::Reader envelopes) {
  for (auto envelope : envelopes) {
    envelope.getKey();
    envelope.getPayload();
    for (auto header : envelope.getHeaders()) {
      header.getName();
      header.getValue();
    }
  }
}

void mark_arrival(capnp::List<schema::Envelope>::Reader envelopes, latency_trace::stage at) {
  if (envelopes.size() != 0) latency_trace::mark(at, envelopes[0].getPublishTimeNs());
}

// Reads every pointer of `message`; says what is wrong with a value it can check.
std::optional<std::string> touch_message(schema::ProtocolMessage::Reader message) {
  using W = schema::ProtocolMessage::Which;
  switch (message.which()) {
    case W::HELLO:
      message.getHello().getNodeId();
      break;
    case W::HEARTBEAT:
      message.getHeartbeat();
      break;
    case W::PUBLISH: {
      auto publish = message.getPublish();
      publish.getQueue();
      touch_envelopes(publish.getEnvelopes());
      mark_arrival(publish.getEnvelopes(), latency_trace::stage::node_received);
      break;
    }
    case W::CONFIRM:
      message.getConfirm().getQueue();
      break;
    case W::SUBSCRIBE:
      message.getSubscribe().getQueue();
      break;
    case W::CREDIT:
      message.getCredit().getQueue();
      break;
    case W::DELIVER: {
      auto deliver = message.getDeliver();
      deliver.getQueue();
      touch_envelopes(deliver.getEnvelopes());
      mark_arrival(deliver.getEnvelopes(), latency_trace::stage::consumer_received);
      break;
    }
    case W::ACK: {
      auto ack = message.getAck();
      ack.getQueue();
      ack.getRanges();
      break;
    }
    case W::NACK: {
      auto nack = message.getNack();
      nack.getQueue();
      nack.getIds();
      nack.getReason();
      // An action this build does not know must not be taken for a requeue.
      const auto action = nack.getAction();
      if (action != schema::NackAction::REQUEUE && action != schema::NackAction::DEAD_LETTER) {
        return "has unknown action " + std::to_string(static_cast<unsigned>(action));
      }
      break;
    }
    case W::EXTEND_LEASE: {
      auto extend = message.getExtendLease();
      extend.getQueue();
      extend.getIds();
      break;
    }
    case W::ERROR: {
      auto error = message.getError();
      error.getMessage();
      error.getQueue();
      break;
    }
    case W::UNSUBSCRIBE:
      message.getUnsubscribe().getQueue();
      break;
    case W::LIST_REQUEST:
      message.getListRequest().getQueue();
      break;
    case W::LIST_REPLY:
      touch_envelopes(message.getListReply().getEnvelopes());
      break;
    case W::REPLAY_REQUEST:
      message.getReplayRequest().getQueue();
      break;
    case W::REPLAY_REPLY:
      message.getReplayReply();
      break;
    // The topic is an enum in the data section: a value this build does not know
    // reads fine and is refused by the node with a badRequest naming it.
    case W::INFO_REQUEST:
      message.getInfoRequest();
      break;
    case W::INFO_REPLY:
      message.getInfoReply().getText();
      break;
  }
  return std::nullopt;
}

// Reads every pointer of the frame once on a reader whose traversal limit is
// tied to the frame's size. Afterwards the frame is known to be a finite tree
// within bounds, so a second reader without that limit can be handed out.
std::optional<frame_error> check_contents(kj::ArrayPtr<const capnp::word> words) {
  capnp::ReaderOptions options;
  // A well-formed frame is read word for word once: at most its own size. The
  // limit is what stops a small frame whose pointers share targets, or whose
  // list claims many zero-sized elements, from costing far more than its bytes
  // (here at most twice, and at most that again for every full read later).
  options.traversalLimitInWords = 2 * words.size() + 1024;
  options.nestingLimit = nesting_limit;
  std::size_t index = 0;
  const char* kind = nullptr;
  try {
    capnp::FlatArrayMessageReader reader(words, options);
    auto root = reader.getRoot<schema::Frame>();
    const auto version = root.getProtocolVersion();
    if (version != schema::WIRE_PROTOCOL_VERSION) {
      return frame_error{schema::ErrorCode::UNSUPPORTED_VERSION,
                         "protocol version " + std::to_string(version) + ", this node speaks " +
                             std::to_string(schema::WIRE_PROTOCOL_VERSION)};
    }
    for (auto message : root.getMessages()) {
      kind = kind_name(message.which());
      if (kind == nullptr) {
        return malformed("message " + std::to_string(index) + " has unknown kind " +
                         std::to_string(static_cast<unsigned>(message.which())) +
                         " (a newer protocol?)");
      }
      if (auto problem = touch_message(message)) {
        return malformed("message " + std::to_string(index) + " (" + kind + ") " + *problem);
      }
      ++index;
    }
  } catch (const kj::Exception& e) {
    std::string where = kind == nullptr ? std::string("frame")
                                        : "message " + std::to_string(index) + " (" + kind + ")";
    return malformed(where + " is not valid Cap'n Proto: " + describe(e));
  } catch (const std::exception& e) {
    return malformed(std::string("frame could not be read: ") + e.what());
  }
  return std::nullopt;
}

std::variant<inbound_frame_ptr, frame_error> check_and_open(std::shared_ptr<checked_frame> frame) {
  if (auto error = check_segment_table(frame->words())) return *error;
  if (auto error = check_contents(frame->words())) return *error;
  capnp::ReaderOptions options;
  options.traversalLimitInWords = kj::maxValue;  // already bounded by check_contents
  options.nestingLimit = nesting_limit;
  try {
    frame->open(options);
  } catch (const kj::Exception& e) {
    // Unreachable after the checks above; kept so a capnp surprise is a refused
    // frame rather than a dead socket thread.
    return malformed("frame could not be opened: " + describe(e));
  }
  return inbound_frame_ptr(std::move(frame));
}

std::optional<frame_error> check_size(std::size_t size, const frame_limits& limits) {
  if (size > limits.max_frame_bytes) {
    return frame_error{schema::ErrorCode::FRAME_TOO_LARGE,
                       "frame of " + std::to_string(size) + " bytes is larger than the limit of " +
                           std::to_string(limits.max_frame_bytes) + " bytes"};
  }
  if (size == 0) return malformed("empty frame");
  if (size % word_bytes != 0) {
    return malformed("frame of " + std::to_string(size) +
                     " bytes is not a whole number of 8-byte words");
  }
  return std::nullopt;
}

}  // namespace

std::variant<inbound_frame_ptr, frame_error> decode_frame(zmq::message_t bytes,
                                                          const frame_limits& limits) {
  if (auto error = check_size(bytes.size(), limits)) return *error;
  return check_and_open(std::make_shared<checked_frame>(std::move(bytes)));
}

std::variant<inbound_frame_ptr, frame_error> decode_frame(const void* data, std::size_t size,
                                                          const frame_limits& limits) {
  if (auto error = check_size(size, limits)) return *error;
  return check_and_open(std::make_shared<checked_frame>(data, size));
}

namespace {

/// The segment table of the flat layout: segment count - 1, each size, padded to a word.
void store_segment_table(unsigned char* out,
                         kj::ArrayPtr<const kj::ArrayPtr<const capnp::word>> segments) {
  std::memset(out, 0, (segments.size() + 2) / 2 * word_bytes);
  store_le32(out, static_cast<std::uint32_t>(segments.size() - 1));
  for (std::size_t i = 0; i < segments.size(); ++i) {
    store_le32(out + 4 + 4 * i, static_cast<std::uint32_t>(segments[i].size()));
  }
}

}  // namespace

zmq::message_t encode_frame(capnp::MessageBuilder& builder) {
  // The standard flat layout (as capnp::messageToFlatArray), written straight
  // into the message's buffer so the frame is copied once.
  auto segments = builder.getSegmentsForOutput();
  const std::size_t table_words = (segments.size() + 2) / 2;
  std::size_t total_words = table_words;
  for (auto segment : segments) total_words += segment.size();

  zmq::message_t out(total_words * word_bytes);
  auto* bytes = static_cast<unsigned char*>(out.data());
  store_segment_table(bytes, segments);
  auto* cursor = bytes + table_words * word_bytes;
  for (auto segment : segments) {
    std::memcpy(cursor, segment.begin(), segment.size() * word_bytes);
    cursor += segment.size() * word_bytes;
  }
  return out;
}

frame_builder::frame_builder(std::size_t expected_bytes)
    : first_words_(std::max<std::size_t>(16, (expected_bytes + word_bytes - 1) / word_bytes)) {}

frame_builder::~frame_builder() noexcept(false) {
  std::free(first_);
  for (auto* segment : more_) std::free(segment);
}

kj::ArrayPtr<capnp::word> frame_builder::allocateSegment(unsigned minimum_words) {
  if (!first_given_ && minimum_words <= first_words_) {
    first_given_ = true;
    first_ = static_cast<capnp::word*>(std::calloc(first_words_ + 1, word_bytes));
    if (first_ == nullptr) throw std::bad_alloc();
    return {first_ + 1, first_words_};
  }
  next_words_ = std::max<std::size_t>({minimum_words, next_words_ * 2, first_words_, 1024});
  auto* segment = static_cast<capnp::word*>(std::calloc(next_words_, word_bytes));
  if (segment == nullptr) throw std::bad_alloc();
  more_.push_back(segment);
  return {segment, next_words_};
}

zmq::message_t frame_builder::finish() {
  auto segments = getSegmentsForOutput();
  if (segments.size() != 1 || first_ == nullptr || segments[0].begin() != first_ + 1) {
    return encode_frame(*this);
  }
  store_segment_table(reinterpret_cast<unsigned char*>(first_), segments);
  const auto bytes = (1 + segments[0].size()) * word_bytes;
  zmq::message_t out(static_cast<void*>(std::exchange(first_, nullptr)), bytes,
                     [](void* data, void*) { std::free(data); });
  return out;
}

zmq::message_t encode_error(schema::ErrorCode code, const std::string& message) {
  // Messages can quote what the peer sent; keep the reply small regardless.
  constexpr std::size_t message_bytes_max = 1024;
  capnp::MallocMessageBuilder builder;
  auto frame = builder.initRoot<schema::Frame>();
  frame.setProtocolVersion(schema::WIRE_PROTOCOL_VERSION);
  auto error = frame.initMessages(1)[0].initError();
  error.setCode(code);
  error.setMessage(message.size() <= message_bytes_max ? message
                                                       : message.substr(0, message_bytes_max));
  return encode_frame(builder);
}

std::string error_code_name(schema::ErrorCode code) {
  // From the schema, so that a new code needs no edit here.
  auto names = capnp::Schema::from<schema::ErrorCode>().getEnumerants();
  const auto index = static_cast<unsigned>(code);
  if (index < names.size()) return names[index].getProto().getName().cStr();
  return "error code " + std::to_string(index);
}

}  // namespace weir::transport

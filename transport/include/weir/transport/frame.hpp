#pragma once
// Wire frames (schema/weir/schema/wire.capnp): decoding with every check a byte
// from the network needs (size limit, Cap'n Proto structure, protocol version,
// known message kinds), and encoding a built frame into one ZeroMQ message.

#include <cstddef>
#include <memory>
#include <string>
#include <variant>
#include <vector>

#include <capnp/message.h>
#include <zmq.hpp>

#include "weir/schema/wire.capnp.h"
#include "weir/transport/link_options.hpp"

namespace weir::transport {

/// The code as the schema spells it ("unknownQueue"), for log lines and errors.
std::string error_code_name(schema::ErrorCode code);

/// Why a frame was refused; `code` is what the peer is told.
struct frame_error {
  schema::ErrorCode code = schema::ErrorCode::MALFORMED_FRAME;
  std::string message;
};

/// A received frame whose every field was checked: reading root() cannot throw.
/// It keeps the received bytes (copied only when they are not word-aligned).
class inbound_frame {
 public:
  virtual ~inbound_frame() = default;
  virtual schema::Frame::Reader root() const = 0;
  virtual std::size_t size_bytes() const = 0;
};

using inbound_frame_ptr = std::shared_ptr<const inbound_frame>;

/// Decodes and validates a frame, taking ownership of the received message.
std::variant<inbound_frame_ptr, frame_error> decode_frame(zmq::message_t bytes,
                                                          const frame_limits& limits);

/// The same over borrowed bytes (copies them); for tests and the fuzz target.
std::variant<inbound_frame_ptr, frame_error> decode_frame(const void* data, std::size_t size,
                                                          const frame_limits& limits);

/// Serialises a built frame (its protocolVersion set by the caller) into one message.
zmq::message_t encode_frame(capnp::MessageBuilder& builder);

/// A message builder whose frame, when it fits the expected size, becomes a
/// ZeroMQ message without a copy: the segment table goes in a word reserved
/// before the first segment, and ZeroMQ frees the buffer once it is sent.
class frame_builder final : public capnp::MessageBuilder {
 public:
  explicit frame_builder(std::size_t expected_bytes);
  ~frame_builder() noexcept(false) override;
  frame_builder(const frame_builder&) = delete;
  frame_builder& operator=(const frame_builder&) = delete;

  kj::ArrayPtr<capnp::word> allocateSegment(unsigned minimum_words) override;

  /// The frame in the flat layout; the builder must not be used afterwards.
  zmq::message_t finish();

 private:
  capnp::word* first_ = nullptr;  // [0] is the segment table; the segment follows
  std::size_t first_words_ = 0;   // of the segment, without the table word
  bool first_given_ = false;
  std::vector<capnp::word*> more_;  // further segments, when the guess was short
  std::size_t next_words_ = 0;
};

/// A frame holding one Error message, sent back to a peer whose frame was refused.
zmq::message_t encode_error(schema::ErrorCode code, const std::string& message);

}  // namespace weir::transport

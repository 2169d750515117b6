#include "wire_codec.hpp"

#include <caf/actor_system_config.hpp>

namespace weir::wire {

namespace {

kj::ArrayPtr<const kj::byte> bytes_of(std::string_view text) {
  return {reinterpret_cast<const kj::byte*>(text.data()), text.size()};
}

std::string string_of(capnp::Data::Reader data) {
  return {reinterpret_cast<const char*>(data.begin()), data.size()};
}

void write_body(schema::Envelope::Builder out, const message_data& message) {
  out.setKey(bytes_of(message.key));
  out.setPayload(bytes_of(message.payload));
  if (!message.headers.empty()) {
    auto headers = out.initHeaders(static_cast<unsigned>(message.headers.size()));
    for (unsigned i = 0; i < message.headers.size(); ++i) {
      headers[i].setName(message.headers[i].name);
      headers[i].setValue(bytes_of(message.headers[i].value));
    }
  }
  out.setPublishTimeNs(message.publish_time_ns);
}

}  // namespace

void add_wire_types(caf::actor_system_config& config) {
  config.add_message_type<frame_handle>("weir::wire::frame_handle");
  config.add_message_type<connection_handle>("weir::wire::connection_handle");
  config.add_error_category(
      node_error_category,
      [](std::uint8_t code, caf::atom_value, const caf::message& context) -> std::string {
        std::string text = transport::error_code_name(static_cast<schema::ErrorCode>(code));
        if (context.match_elements<std::string>()) text += ": " + context.get_as<std::string>(0);
        return text;
      });
}

zmq::message_t single_message_frame(const message_writer& write, std::size_t expected_bytes) {
  // The frame, its one protocol message and the message's fixed fields.
  constexpr std::size_t frame_overhead_bytes = 256;
  transport::frame_builder builder(expected_bytes + frame_overhead_bytes);
  auto frame = builder.initRoot<schema::Frame>();
  frame.setProtocolVersion(schema::WIRE_PROTOCOL_VERSION);
  write(frame.initMessages(1)[0]);
  return builder.finish();
}

std::size_t frame_bytes_of(const message_data& message) {
  auto padded = [](std::size_t bytes) { return (bytes + 7) / 8 * 8; };
  // An envelope: a struct of 6 data words and 3 pointers, its list pointer slot.
  std::size_t bytes = 80 + padded(message.key.size()) + padded(message.payload.size());
  for (const auto& header : message.headers) {
    bytes += 32 + padded(header.name.size() + 1) + padded(header.value.size());
  }
  return bytes;
}

void write_message(schema::Envelope::Builder out, const message_data& message) {
  write_body(out, message);
}

void write_delivery(schema::Envelope::Builder out, const delivery& d) {
  out.setId(d.id);
  out.setAttempt(d.attempt);
  out.setProducerId(d.producer_id);
  out.setProducerSeq(d.producer_seq);
  write_body(out, d.data);
}

message_data read_message(schema::Envelope::Reader in, const transport::inbound_frame_ptr& frame) {
  message_data message;
  message.key = string_of(in.getKey());
  auto payload = in.getPayload();
  const std::string_view bytes{reinterpret_cast<const char*>(payload.begin()), payload.size()};
  message.payload = frame ? shared_bytes(frame, bytes) : shared_bytes(std::string(bytes));
  for (auto header : in.getHeaders()) {
    message.headers.push_back({header.getName(), string_of(header.getValue())});
  }
  message.publish_time_ns = in.getPublishTimeNs();
  return message;
}

delivery read_delivery(schema::Envelope::Reader in, const transport::inbound_frame_ptr& frame) {
  delivery d;
  d.id = in.getId();
  d.attempt = in.getAttempt();
  d.producer_id = in.getProducerId();
  d.producer_seq = in.getProducerSeq();
  d.data = read_message(in, frame);
  return d;
}

void write_ranges(capnp::List<schema::IdRange>::Builder out, const std::vector<id_range>& ranges) {
  for (unsigned i = 0; i < ranges.size(); ++i) {
    out[i].setBegin(ranges[i].begin);
    out[i].setEnd(ranges[i].end);
  }
}

std::vector<id_range> read_ranges(capnp::List<schema::IdRange>::Reader in) {
  std::vector<id_range> ranges;
  ranges.reserve(in.size());
  for (auto range : in) ranges.push_back({range.getBegin(), range.getEnd()});
  return ranges;
}

std::vector<std::uint64_t> read_ids(capnp::List<std::uint64_t>::Reader in) {
  std::vector<std::uint64_t> ids;
  ids.reserve(in.size());
  for (auto id : in) ids.push_back(id);
  return ids;
}

schema::ErrorCode error_code_of(protocol_error_kind kind) {
  switch (kind) {
    case protocol_error_kind::fenced:
      return schema::ErrorCode::FENCED_EPOCH;
    case protocol_error_kind::store_failed:
      return schema::ErrorCode::STORAGE_FAILED;
    case protocol_error_kind::refused:
      break;
  }
  return schema::ErrorCode::BAD_REQUEST;
}

std::optional<protocol_error_kind> protocol_error_kind_of(schema::ErrorCode code) {
  switch (code) {
    case schema::ErrorCode::FENCED_EPOCH:
      return protocol_error_kind::fenced;
    case schema::ErrorCode::STORAGE_FAILED:
      return protocol_error_kind::store_failed;
    case schema::ErrorCode::BAD_REQUEST:
      return protocol_error_kind::refused;
    default:
      return std::nullopt;
  }
}

zmq::message_t error_frame(schema::ErrorCode code, const std::string& message,
                           const std::string& queue, std::uint64_t request_id) {
  return single_message_frame([&](schema::ProtocolMessage::Builder out) {
    auto error = out.initError();
    error.setCode(code);
    error.setMessage(message);
    error.setQueue(queue);
    error.setRequestId(request_id);
  });
}

}  // namespace weir::wire

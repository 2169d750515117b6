#include "weir/node/wire_codec.hpp"

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

/// A frame of the one protocol message `write` fills in. A template, not a
/// std::function: a writer capturing more than two references would cost an
/// allocation per frame, and publish and deliver frames are built once a batch.
/// `expected_bytes`: a guess of the message's size.
template <class Write>
zmq::message_t build_frame(const Write& write, std::size_t expected_bytes = 0) {
  // The frame, its one protocol message and the message's fixed fields.
  constexpr std::size_t frame_overhead_bytes = 256;
  transport::frame_builder builder(expected_bytes + frame_overhead_bytes);
  auto frame = builder.initRoot<schema::Frame>();
  frame.setProtocolVersion(schema::WIRE_PROTOCOL_VERSION);
  write(frame.initMessages(1)[0]);
  return builder.finish();
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

namespace {

/// About how many bytes a message takes in a frame (to size the frame).
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

void write_ranges(capnp::List<schema::IdRange>::Builder out, const std::vector<id_range>& ranges) {
  for (unsigned i = 0; i < ranges.size(); ++i) {
    out[i].setBegin(ranges[i].begin);
    out[i].setEnd(ranges[i].end);
  }
}

}  // namespace

delivery read_delivery(schema::Envelope::Reader in, const transport::inbound_frame_ptr& frame) {
  delivery d;
  d.id = in.getId();
  d.attempt = in.getAttempt();
  d.producer_id = in.getProducerId();
  d.producer_seq = in.getProducerSeq();
  d.data = read_message(in, frame);
  return d;
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
  return build_frame([&](schema::ProtocolMessage::Builder out) {
    auto error = out.initError();
    error.setCode(code);
    error.setMessage(message);
    error.setQueue(queue);
    error.setRequestId(request_id);
  });
}

// --- a producer's and a consumer's messages --------------------------------------

zmq::message_t publish_frame(const std::string& queue, const publish_batch& batch) {
  std::size_t bytes = queue.size();
  for (const auto& m : batch.messages) bytes += frame_bytes_of(m);
  return build_frame(
      [&](schema::ProtocolMessage::Builder out) {
        auto publish = out.initPublish();
        publish.setQueue(queue);
        publish.setProducerId(batch.producer_id);
        publish.setProducerEpoch(batch.epoch);
        publish.setFirstSeq(batch.first_seq);
        auto envelopes = publish.initEnvelopes(static_cast<unsigned>(batch.messages.size()));
        for (unsigned i = 0; i < batch.messages.size(); ++i) {
          write_message(envelopes[i], batch.messages[i]);
        }
      },
      bytes);
}

zmq::message_t subscribe_frame(const std::string& queue, std::uint64_t consumer_id,
                               std::int64_t credit) {
  return build_frame([&](schema::ProtocolMessage::Builder out) {
    auto subscribe = out.initSubscribe();
    subscribe.setQueue(queue);
    subscribe.setConsumerId(consumer_id);
    subscribe.setCredit(static_cast<std::uint32_t>(credit));
  });
}

zmq::message_t credit_frame(const std::string& queue, std::uint64_t consumer_id,
                            std::int64_t grant) {
  return build_frame([&](schema::ProtocolMessage::Builder out) {
    auto credit = out.initCredit();
    credit.setQueue(queue);
    credit.setConsumerId(consumer_id);
    credit.setGrant(static_cast<std::uint32_t>(grant));
  });
}

zmq::message_t unsubscribe_frame(const std::string& queue, std::uint64_t consumer_id) {
  return build_frame([&](schema::ProtocolMessage::Builder out) {
    auto unsubscribe = out.initUnsubscribe();
    unsubscribe.setQueue(queue);
    unsubscribe.setConsumerId(consumer_id);
  });
}

zmq::message_t ack_frame(const std::string& queue, std::uint64_t consumer_id,
                         const std::vector<id_range>& ranges) {
  return build_frame([&](schema::ProtocolMessage::Builder out) {
    auto ack = out.initAck();
    ack.setQueue(queue);
    ack.setConsumerId(consumer_id);
    write_ranges(ack.initRanges(static_cast<unsigned>(ranges.size())), ranges);
  });
}

zmq::message_t nack_frame(const std::string& queue, std::uint64_t consumer_id,
                          const std::vector<std::uint64_t>& ids, const nack_request& request) {
  return build_frame([&](schema::ProtocolMessage::Builder out) {
    auto nack = out.initNack();
    nack.setQueue(queue);
    nack.setConsumerId(consumer_id);
    auto list = nack.initIds(static_cast<unsigned>(ids.size()));
    for (unsigned i = 0; i < ids.size(); ++i) list.set(i, ids[i]);
    nack.setAction(request.dead_letter ? schema::NackAction::DEAD_LETTER
                                       : schema::NackAction::REQUEUE);
    nack.setDelayMs(request.delay_ms);
    nack.setReason(request.reason);
  });
}

zmq::message_t extend_frame(const std::string& queue, std::uint64_t consumer_id,
                            const std::vector<std::uint64_t>& ids, std::uint32_t extension_ms) {
  return build_frame([&](schema::ProtocolMessage::Builder out) {
    auto extend = out.initExtendLease();
    extend.setQueue(queue);
    extend.setConsumerId(consumer_id);
    auto list = extend.initIds(static_cast<unsigned>(ids.size()));
    for (unsigned i = 0; i < ids.size(); ++i) list.set(i, ids[i]);
    extend.setExtensionMs(extension_ms);
  });
}

publish_batch read_publish(schema::Publish::Reader in, const transport::inbound_frame_ptr& frame) {
  publish_batch batch;
  batch.producer_id = in.getProducerId();
  batch.epoch = in.getProducerEpoch();
  batch.first_seq = in.getFirstSeq();
  batch.messages.reserve(in.getEnvelopes().size());
  for (auto envelope : in.getEnvelopes()) batch.messages.push_back(read_message(envelope, frame));
  return batch;
}

nack_request read_nack(schema::Nack::Reader in) {
  return nack_request{read_ids(in.getIds()), in.getAction() == schema::NackAction::DEAD_LETTER,
                      in.getDelayMs(), in.getReason()};
}

// --- a node's answers ------------------------------------------------------------

zmq::message_t confirm_frame(const confirmation& c) {
  return build_frame([&](schema::ProtocolMessage::Builder out) {
    auto confirm = out.initConfirm();
    confirm.setQueue(c.queue);
    confirm.setProducerId(c.producer_id);
    confirm.setProducerEpoch(c.epoch);
    confirm.setUpToSeq(c.up_to_seq);
  });
}

zmq::message_t deliver_frame(const std::string& queue, std::uint64_t consumer_id,
                             const std::vector<delivery>& deliveries) {
  std::size_t bytes = queue.size();
  for (const auto& d : deliveries) bytes += frame_bytes_of(d.data);
  return build_frame(
      [&](schema::ProtocolMessage::Builder out) {
        auto deliver = out.initDeliver();
        deliver.setQueue(queue);
        deliver.setConsumerId(consumer_id);
        auto envelopes = deliver.initEnvelopes(static_cast<unsigned>(deliveries.size()));
        for (unsigned i = 0; i < deliveries.size(); ++i)
          write_delivery(envelopes[i], deliveries[i]);
      },
      bytes);
}

confirmation read_confirm(schema::Confirm::Reader in, const std::string& queue) {
  return confirmation{queue, in.getProducerId(), in.getProducerEpoch(), in.getUpToSeq()};
}

// --- requests and replies ----------------------------------------------------------

zmq::message_t list_request_frame(const std::string& queue, std::uint64_t request_id,
                                  std::uint64_t from_id, std::uint32_t limit, bool dead_letters) {
  return build_frame([&](schema::ProtocolMessage::Builder out) {
    auto list = out.initListRequest();
    list.setQueue(queue);
    list.setRequestId(request_id);
    list.setFromId(from_id);
    list.setLimit(limit);
    list.setDeadLetters(dead_letters);
  });
}

zmq::message_t list_reply_frame(std::uint64_t request_id, const std::vector<delivery>& ready) {
  return build_frame([&](schema::ProtocolMessage::Builder out) {
    auto reply = out.initListReply();
    reply.setRequestId(request_id);
    auto envelopes = reply.initEnvelopes(static_cast<unsigned>(ready.size()));
    for (unsigned i = 0; i < ready.size(); ++i) write_delivery(envelopes[i], ready[i]);
  });
}

zmq::message_t replay_request_frame(const std::string& queue, std::uint64_t request_id,
                                    std::uint32_t limit) {
  return build_frame([&](schema::ProtocolMessage::Builder out) {
    auto replay = out.initReplayRequest();
    replay.setQueue(queue);
    replay.setRequestId(request_id);
    replay.setLimit(limit);
  });
}

zmq::message_t replay_reply_frame(std::uint64_t request_id, std::uint64_t moved) {
  return build_frame([&](schema::ProtocolMessage::Builder out) {
    auto reply = out.initReplayReply();
    reply.setRequestId(request_id);
    reply.setMoved(moved);
  });
}

zmq::message_t info_request_frame(schema::InfoTopic topic, std::uint64_t request_id) {
  return build_frame([&](schema::ProtocolMessage::Builder out) {
    auto request = out.initInfoRequest();
    request.setRequestId(request_id);
    request.setTopic(topic);
  });
}

zmq::message_t info_reply_frame(std::uint64_t request_id, schema::InfoTopic topic,
                                const std::string& text) {
  return build_frame([&](schema::ProtocolMessage::Builder out) {
    auto answer = out.initInfoReply();
    answer.setRequestId(request_id);
    answer.setTopic(topic);
    answer.setText(text);
  });
}

std::vector<delivery> read_list_reply(schema::ListReply::Reader in,
                                      const transport::inbound_frame_ptr& frame) {
  std::vector<delivery> ready;
  for (auto envelope : in.getEnvelopes()) ready.push_back(read_delivery(envelope, frame));
  return ready;
}

}  // namespace weir::wire

// Writes valid frames (one per message kind, one with every kind, an error
// reply) into a directory, as the starting corpus of frame_fuzz: mutations of
// real frames reach the pointer checks far sooner than random bytes do.

#include <cstdio>
#include <fstream>
#include <string>

#include <capnp/message.h>

#include "weir/transport/frame.hpp"

namespace {

using weir::schema::ProtocolMessage;

capnp::Data::Reader bytes_of(const char* text) {
  return {reinterpret_cast<const kj::byte*>(text), std::char_traits<char>::length(text)};
}

void fill_envelopes(capnp::List<weir::schema::Envelope>::Builder envelopes) {
  for (unsigned i = 0; i < envelopes.size(); ++i) {
    auto envelope = envelopes[i];
    envelope.setId(i + 1);
    envelope.setProducerId(7);
    envelope.setProducerSeq(i + 1);
    envelope.setKey(bytes_of("key"));
    envelope.setPayload(bytes_of("a payload of some length"));
    auto header = envelope.initHeaders(1)[0];
    header.setName("content-type");
    header.setValue(bytes_of("text/plain"));
    envelope.setAttempt(1);
  }
}

void fill(ProtocolMessage::Builder message, unsigned kind) {
  switch (kind) {
    case ProtocolMessage::HELLO: {
      auto hello = message.initHello();
      hello.setNodeId("node-a");
      hello.setProtocolVersion(weir::schema::WIRE_PROTOCOL_VERSION);
      hello.setHeartbeatIntervalMs(500);
      break;
    }
    case ProtocolMessage::HEARTBEAT: message.initHeartbeat().setSentAtNs(12345); break;
    case ProtocolMessage::PUBLISH: {
      auto publish = message.initPublish();
      publish.setQueue("orders");
      publish.setFirstSeq(1);
      fill_envelopes(publish.initEnvelopes(2));
      break;
    }
    case ProtocolMessage::CONFIRM: message.initConfirm().setQueue("orders"); break;
    case ProtocolMessage::SUBSCRIBE: message.initSubscribe().setQueue("orders"); break;
    case ProtocolMessage::CREDIT: message.initCredit().setQueue("orders"); break;
    case ProtocolMessage::DELIVER: {
      auto deliver = message.initDeliver();
      deliver.setQueue("orders");
      fill_envelopes(deliver.initEnvelopes(2));
      break;
    }
    case ProtocolMessage::ACK: {
      auto ack = message.initAck();
      ack.setQueue("orders");
      auto range = ack.initRanges(1)[0];
      range.setBegin(1);
      range.setEnd(3);
      break;
    }
    case ProtocolMessage::NACK: {
      auto nack = message.initNack();
      nack.setQueue("orders");
      nack.initIds(2).set(1, 9);
      nack.setReason("bad input");
      break;
    }
    case ProtocolMessage::EXTEND_LEASE: {
      auto extend = message.initExtendLease();
      extend.setQueue("orders");
      extend.initIds(1).set(0, 4);
      break;
    }
    case ProtocolMessage::ERROR: {
      auto error = message.initError();
      error.setCode(weir::schema::ErrorCode::UNKNOWN_QUEUE);
      error.setMessage("no such queue");
      error.setQueue("missing");
      break;
    }
    case ProtocolMessage::UNSUBSCRIBE: message.initUnsubscribe().setQueue("orders"); break;
    case ProtocolMessage::LIST_REQUEST: message.initListRequest().setQueue("orders.dead"); break;
    case ProtocolMessage::LIST_REPLY: fill_envelopes(message.initListReply().initEnvelopes(1)); break;
    case ProtocolMessage::REPLAY_REQUEST: message.initReplayRequest().setQueue("orders.dead"); break;
    case ProtocolMessage::REPLAY_REPLY: message.initReplayReply().setMoved(3); break;
    case ProtocolMessage::INFO_REQUEST: {
      auto request = message.initInfoRequest();
      request.setRequestId(5);
      request.setTopic(weir::schema::InfoTopic::TREE);
      break;
    }
    case ProtocolMessage::INFO_REPLY: {
      auto reply = message.initInfoReply();
      reply.setRequestId(5);
      reply.setTopic(weir::schema::InfoTopic::METRICS);
      reply.setText("# TYPE weir_queue_published_total counter\n"
                    "weir_queue_published_total{queue=\"orders\"} 3\n");
      break;
    }
  }
}

constexpr unsigned kind_count = 18;

bool write(const std::string& path, const zmq::message_t& frame) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(static_cast<const char*>(frame.data()), static_cast<std::streamsize>(frame.size()));
  return static_cast<bool>(out);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s DIRECTORY\n", argv[0]);
    return 2;
  }
  const std::string directory = argv[1];
  bool ok = true;
  for (unsigned kind = 0; kind < kind_count; ++kind) {
    capnp::MallocMessageBuilder builder;
    auto frame = builder.initRoot<weir::schema::Frame>();
    frame.setProtocolVersion(weir::schema::WIRE_PROTOCOL_VERSION);
    fill(frame.initMessages(1)[0], kind);
    ok &= write(directory + "/kind-" + std::to_string(kind), weir::transport::encode_frame(builder));
  }
  capnp::MallocMessageBuilder every;
  auto frame = every.initRoot<weir::schema::Frame>();
  frame.setProtocolVersion(weir::schema::WIRE_PROTOCOL_VERSION);
  auto messages = frame.initMessages(kind_count);
  for (unsigned kind = 0; kind < kind_count; ++kind) fill(messages[kind], kind);
  ok &= write(directory + "/every-kind", weir::transport::encode_frame(every));
  ok &= write(directory + "/error-reply",
              weir::transport::encode_error(weir::schema::ErrorCode::HANDSHAKE_REQUIRED, "hello first"));
  if (!ok) {
    std::fprintf(stderr, "frame_fuzz_seeds: could not write into %s\n", directory.c_str());
    return 1;
  }
  return 0;
}

#pragma once
// Reads every field of a decoded frame the way an owner might (copying Text and
// Data, iterating every list), for the fuzz target and transport_frame_test:
// decode_frame promises that none of this can throw once a frame is accepted.

#include <cstdint>
#include <string_view>

#include "weir/schema/wire.capnp.h"

namespace weir::testing {

/// A digest of every field, so the reads cannot be optimised away.
class frame_walk {
 public:
  std::uint64_t digest() const { return digest_; }

  void frame(schema::Frame::Reader frame) {
    mix(frame.getProtocolVersion());
    for (auto message : frame.getMessages()) this->message(message);
  }

 private:
  using W = schema::ProtocolMessage::Which;

  void mix(std::uint64_t value) { digest_ = (digest_ ^ value) * 0x100000001b3ull; }
  void text(capnp::Text::Reader value) {
    for (char c : std::string_view(value.cStr(), value.size())) mix(static_cast<unsigned char>(c));
  }
  void data(capnp::Data::Reader value) {
    for (auto byte : value) mix(byte);
  }
  void ids(capnp::List<std::uint64_t>::Reader values) {
    for (auto value : values) mix(value);
  }
  void envelopes(capnp::List<schema::Envelope>::Reader list) {
    for (auto e : list) {
      mix(e.getId());
      mix(e.getProducerId());
      mix(e.getProducerEpoch());
      mix(e.getProducerSeq());
      data(e.getKey());
      data(e.getPayload());
      for (auto header : e.getHeaders()) {
        text(header.getName());
        data(header.getValue());
      }
      mix(static_cast<std::uint64_t>(e.getPublishTimeNs()));
      mix(e.getAttempt());
    }
  }

  void message(schema::ProtocolMessage::Reader m) {
    mix(static_cast<std::uint64_t>(m.which()));
    switch (m.which()) {
      case W::HELLO: {
        auto x = m.getHello();
        text(x.getNodeId());
        mix(x.getProtocolVersion());
        mix(x.getHeartbeatIntervalMs());
        break;
      }
      case W::HEARTBEAT:
        mix(static_cast<std::uint64_t>(m.getHeartbeat().getSentAtNs()));
        break;
      case W::PUBLISH: {
        auto x = m.getPublish();
        text(x.getQueue());
        mix(x.getProducerId());
        mix(x.getProducerEpoch());
        mix(x.getFirstSeq());
        envelopes(x.getEnvelopes());
        break;
      }
      case W::CONFIRM: {
        auto x = m.getConfirm();
        text(x.getQueue());
        mix(x.getProducerId());
        mix(x.getProducerEpoch());
        mix(x.getUpToSeq());
        break;
      }
      case W::SUBSCRIBE: {
        auto x = m.getSubscribe();
        text(x.getQueue());
        mix(x.getConsumerId());
        mix(x.getCredit());
        break;
      }
      case W::CREDIT: {
        auto x = m.getCredit();
        text(x.getQueue());
        mix(x.getConsumerId());
        mix(x.getGrant());
        break;
      }
      case W::DELIVER: {
        auto x = m.getDeliver();
        text(x.getQueue());
        mix(x.getConsumerId());
        envelopes(x.getEnvelopes());
        break;
      }
      case W::ACK: {
        auto x = m.getAck();
        text(x.getQueue());
        mix(x.getConsumerId());
        for (auto range : x.getRanges()) {
          mix(range.getBegin());
          mix(range.getEnd());
        }
        break;
      }
      case W::NACK: {
        auto x = m.getNack();
        text(x.getQueue());
        mix(x.getConsumerId());
        ids(x.getIds());
        mix(static_cast<std::uint64_t>(x.getAction()));
        mix(x.getDelayMs());
        text(x.getReason());
        break;
      }
      case W::EXTEND_LEASE: {
        auto x = m.getExtendLease();
        text(x.getQueue());
        mix(x.getConsumerId());
        ids(x.getIds());
        mix(x.getExtensionMs());
        break;
      }
      case W::ERROR: {
        auto x = m.getError();
        mix(static_cast<std::uint64_t>(x.getCode()));
        text(x.getMessage());
        text(x.getQueue());
        mix(x.getRequestId());
        break;
      }
      case W::UNSUBSCRIBE: {
        auto x = m.getUnsubscribe();
        text(x.getQueue());
        mix(x.getConsumerId());
        break;
      }
      case W::LIST_REQUEST: {
        auto x = m.getListRequest();
        text(x.getQueue());
        mix(x.getRequestId());
        mix(x.getFromId());
        mix(x.getLimit());
        break;
      }
      case W::LIST_REPLY: {
        auto x = m.getListReply();
        mix(x.getRequestId());
        envelopes(x.getEnvelopes());
        break;
      }
      case W::REPLAY_REQUEST: {
        auto x = m.getReplayRequest();
        text(x.getQueue());
        mix(x.getRequestId());
        mix(x.getLimit());
        break;
      }
      case W::REPLAY_REPLY: {
        auto x = m.getReplayReply();
        mix(x.getRequestId());
        mix(x.getMoved());
        break;
      }
      case W::INFO_REQUEST: {
        auto x = m.getInfoRequest();
        mix(x.getRequestId());
        mix(static_cast<std::uint64_t>(x.getTopic()));
        break;
      }
      case W::INFO_REPLY: {
        auto x = m.getInfoReply();
        mix(x.getRequestId());
        mix(static_cast<std::uint64_t>(x.getTopic()));
        text(x.getText());
        break;
      }
    }
  }

  std::uint64_t digest_ = 0xcbf29ce484222325ull;
};

}  // namespace weir::testing

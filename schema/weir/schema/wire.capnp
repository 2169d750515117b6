@0xb465e98e8428c8c5;
# Frames exchanged between nodes over ZeroMQ. A frame carries a protocol version
# and a batch of protocol messages; the kind of each is its union tag.

using Cxx = import "/capnp/c++.capnp";
$Cxx.namespace("weir::schema");

using import "envelope.capnp".Envelope;
using import "envelope.capnp".IdRange;

const wireProtocolVersion :UInt16 = 1;
# A node refuses frames of another version with an error message.

struct Frame {
  protocolVersion @0 :UInt16;
  messages @1 :List(ProtocolMessage);
  # Many protocol messages per frame to amortise per-frame cost.
}

struct ProtocolMessage {
  union {
    hello @0 :Hello;
    heartbeat @1 :Heartbeat;
    publish @2 :Publish;
    confirm @3 :Confirm;
    subscribe @4 :Subscribe;
    credit @5 :Credit;
    deliver @6 :Deliver;
    ack @7 :Ack;
    nack @8 :Nack;
    extendLease @9 :ExtendLease;
    error @10 :Error;
    unsubscribe @11 :Unsubscribe;
    listRequest @12 :ListRequest;
    listReply @13 :ListReply;
    replayRequest @14 :ReplayRequest;
    replayReply @15 :ReplayReply;
    infoRequest @16 :InfoRequest;
    infoReply @17 :InfoReply;
  }
}

struct Hello {
  # First message on a connection, both ways; nothing else is accepted before it.
  nodeId @0 :Text;
  protocolVersion @1 :UInt16;
  heartbeatIntervalMs @2 :UInt32;
}

struct Heartbeat {
  sentAtNs @0 :Int64;
  # Sender's monotonic clock; echoed for round-trip measurement.
}

struct Publish {
  queue @0 :Text;
  producerId @1 :UInt64;
  producerEpoch @2 :UInt64;
  firstSeq @3 :UInt64;
  # Sequence number of envelopes[0]; envelope i has firstSeq + i.
  envelopes @4 :List(Envelope);
}

struct Confirm {
  queue @0 :Text;
  producerId @1 :UInt64;
  producerEpoch @2 :UInt64;
  upToSeq @3 :UInt64;
  # Every sequence number <= upToSeq is durable in the queue.
}

struct Subscribe {
  queue @0 :Text;
  consumerId @1 :UInt64;
  credit @2 :UInt32;
  # Deliveries the consumer can hold before it acks.
}

struct Unsubscribe {
  queue @0 :Text;
  consumerId @1 :UInt64;
  # The consumer's unacked deliveries are ready again at once.
}

struct Credit {
  queue @0 :Text;
  consumerId @1 :UInt64;
  grant @2 :UInt32;
  # Additional deliveries the consumer can take.
}

struct Deliver {
  queue @0 :Text;
  consumerId @1 :UInt64;
  envelopes @2 :List(Envelope);
  # Each envelope's id and attempt identify the delivery.
}

struct Ack {
  queue @0 :Text;
  consumerId @1 :UInt64;
  ranges @2 :List(IdRange);
}

struct Nack {
  queue @0 :Text;
  consumerId @1 :UInt64;
  ids @2 :List(UInt64);
  action @3 :NackAction;
  delayMs @4 :UInt32;
  # With requeue: wait this long before the messages are ready again.
  reason @5 :Text;
}

enum NackAction {
  requeue @0;
  deadLetter @1;
}

struct ExtendLease {
  queue @0 :Text;
  consumerId @1 :UInt64;
  ids @2 :List(UInt64);
  extensionMs @3 :UInt32;
}

struct ListRequest {
  # Ready (undelivered) messages of a queue, oldest first: how dead letters are inspected.
  queue @0 :Text;
  requestId @1 :UInt64;
  fromId @2 :UInt64;
  limit @3 :UInt32;
  deadLetters @4 :Bool;
  # true: list the dead-letter queue of `queue` instead of `queue` itself.
}

struct ListReply {
  requestId @0 :UInt64;
  envelopes @1 :List(Envelope);
}

struct ReplayRequest {
  # Moves up to `limit` dead letters of `queue` (from its dead-letter queue) back into it.
  queue @0 :Text;
  requestId @1 :UInt64;
  limit @2 :UInt32;
}

struct ReplayReply {
  requestId @0 :UInt64;
  moved @1 :UInt64;
  # Messages now confirmed in the source queue (and acked in the dead-letter queue).
}

struct InfoRequest {
  # Asks a node about itself (`weir stats`, `weir tree`); answered with an
  # infoReply of the same requestId, or an error naming it.
  requestId @0 :UInt64;
  topic @1 :InfoTopic;
}

enum InfoTopic {
  metrics @0;
  # The node's metrics in Prometheus text format 0.0.4 (docs/metrics.md).
  tree @1;
  # Its supervision tree: one line per actor with its state and restarts.
}

struct InfoReply {
  requestId @0 :UInt64;
  topic @1 :InfoTopic;
  text @2 :Text;
}

struct Error {
  code @0 :ErrorCode;
  message @1 :Text;
  # Human-readable detail: which queue, which field, which limit.
  queue @2 :Text;
  # The queue the failed request named, if any.
  requestId @3 :UInt64;
  # The list or replay request that failed, if any (0 otherwise).
}

enum ErrorCode {
  malformedFrame @0;
  unsupportedVersion @1;
  handshakeRequired @2;
  unknownQueue @3;
  frameTooLarge @4;
  fencedEpoch @5;
  unknownDelivery @6;
  internal @7;
  badRequest @8;
  # Well-formed but refused: credit out of range, an ack of a delivery this peer does not hold.
  tooManySessions @9;
  # The node holds as many sessions as it takes; the hello may be sent again later.
  storageFailed @10;
  # The queue's log could not store a publish (a full disk): resend after a while.
}

@0x8cf902886c7313ec;
# The message envelope: one struct serves the checkpoint log and the wire, so a
# message is never re-encoded between disk and network.

using Cxx = import "/capnp/c++.capnp";
$Cxx.namespace("weir::schema");

const envelopeFormatVersion :UInt32 = 1;
# Bumped when a change to Envelope is not backwards compatible.

struct Envelope {
  id @0 :UInt64;
  # Queue-assigned id, dense per queue, starting at 1. 0 until a queue accepts it.

  producerId @1 :UInt64;
  # Who published it; with producerEpoch and producerSeq it de-duplicates resends.

  producerEpoch @2 :UInt64;
  # Incarnation of the producer; a queue fences off publishes from older epochs.

  producerSeq @3 :UInt64;
  # Per (producerId, producerEpoch) sequence number, starting at 1.

  key @4 :Data;
  # Routing / grouping key chosen by the application; may be empty.

  payload @5 :Data;
  # The application's bytes; weir never interprets them.

  headers @6 :List(Header);
  # Small application metadata (tracing ids, content type).

  publishTimeNs @7 :Int64;
  # Wall-clock time the producer created the message, nanoseconds since the Unix epoch.

  attempt @8 :UInt32;
  # Deliveries so far; 0 while never delivered. Set by the queue on delivery.
}

struct Header {
  name @0 :Text;
  value @1 :Data;
}

struct IdRange {
  # Half-open range of message ids [begin, end).
  begin @0 :UInt64;
  end @1 :UInt64;
}

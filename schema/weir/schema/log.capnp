@0xe5e8a58d5027d776;
# Records of the checkpoint log and its ack-state snapshots. On disk each record
# is framed as [length u32 LE][crc32c u32 LE][Cap'n Proto flat message]; the
# framing and the segment header are described in runtime/record_format.hpp.

using Cxx = import "/capnp/c++.capnp";
$Cxx.namespace("weir::schema");

using import "envelope.capnp".Envelope;
using import "envelope.capnp".IdRange;

const logFormatVersion :UInt32 = 2;
# Written into every segment and snapshot header; a reader refuses other versions.
# 2: segment record crcs are salted with the segment number (files are reused).

struct LogRecord {
  union {
    publish @0 :PublishBatch;
    ack @1 :AckRanges;
    deadLetter @2 :DeadLetterBatch;
    snapshotMarker @3 :SnapshotMarker;
    deliveries @4 :DeliveryAttempts;
  }
}

struct PublishBatch {
  firstId @0 :UInt64;
  # Id of envelopes[0]; envelope i has id firstId + i. Lets recovery learn the
  # ids without reading the envelopes.

  envelopes @1 :List(Envelope);
}

struct AckRanges {
  ranges @0 :List(IdRange);
  # Ids acknowledged by consumers; they are never delivered again.
}

struct DeadLetter {
  id @0 :UInt64;
  # The message moved out of this queue.

  attempts @1 :UInt32;
  # Deliveries it had when it was dead-lettered.

  reason @2 :Text;
  # Why: "max_deliveries exceeded", "rejected by consumer", ...

  lastError @3 :Text;
  # The last handler error text, if any.

  deadLetterQueue @4 :Text;
  # Name of the queue it was moved to; empty when it was only dropped from here.
}

struct DeadLetterBatch {
  entries @0 :List(DeadLetter);
}

struct DeliveryAttempt {
  id @0 :UInt64;
  attempts @1 :UInt32;
  # Deliveries so far, absolute (not an increment), so replaying is idempotent.
}

struct DeliveryAttempts {
  # Persisted so that a message that crashes its consumer every time still
  # reaches max_deliveries across restarts.
  entries @0 :List(DeliveryAttempt);
}

struct LogPosition {
  segment @0 :UInt64;
  # Segment number (the number in its file name).

  offset @1 :UInt64;
  # Byte offset in that segment of the first record not covered.
}

struct SnapshotMarker {
  # Appended after a snapshot is durable; recovery does not need it, it tells
  # readers of the log (weir inspect) where snapshots were taken.
  sequence @0 :UInt64;
  covers @1 :LogPosition;
}

struct SegmentIndex {
  number @0 :UInt64;
  # The segment's number.

  firstId @1 :UInt64;
  endId @2 :UInt64;
  # Publishes in this segment have ids in [firstId, endId); equal when it holds none.

  entries @3 :List(IndexEntry);
  # Sparse index: the first id of some publish records and their offsets.

  size @4 :UInt64;
  # Bytes of the segment covered by this index.
}

struct IndexEntry {
  firstId @0 :UInt64;
  offset @1 :UInt64;
}

struct Snapshot {
  sequence @0 :UInt64;
  # Increases with every snapshot of this log.

  covers @1 :LogPosition;
  # The state below is the result of every record before this position.

  nextId @2 :UInt64;
  # Id the next published message gets.

  done @3 :List(IdRange);
  # Ids that are acked, dead-lettered or lost: never to be delivered again.

  attempts @4 :List(DeliveryAttempt);
  # Delivery counts of messages that are not done.

  publishedCount @5 :UInt64;
  ackedCount @6 :UInt64;
  deadLetteredCount @7 :UInt64;
  lostCount @8 :UInt64;
  # Counters since the log was created. lost = ids whose publish record was
  # unreadable (corruption) and so can never be delivered.

  segments @9 :List(SegmentIndex);
  # Every segment before `covers` that was still live when the snapshot was taken.

  producers @10 :List(ProducerPosition);
  # The newest (epoch, sequence) published by each producer, for de-duplication.
}

struct ProducerPosition {
  producerId @0 :UInt64;
  epoch @1 :UInt64;
  lastSeq @2 :UInt64;
  # Highest sequence number of `epoch` that is in the log.
}

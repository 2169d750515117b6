@0x91d232df1bc5fcac;
# A stateful stage's checkpoint: its state and the input it has applied, written
# together (one file, replaced atomically) so that after a restart they agree.

using Cxx = import "/capnp/c++.capnp";
$Cxx.namespace("weir::schema");

using import "envelope.capnp".IdRange;

const stageFormatVersion :UInt32 = 1;

struct StageCheckpoint {
  formatVersion @0 :UInt32;

  stage @1 :Text;
  # The stage's name, checked on load so a checkpoint is never applied to another stage.

  applied @2 :List(IdRange);
  # Input message ids whose effect is in `state`; redeliveries of them are skipped.

  state @3 :List(KeyValue);
  # key_by + reduce: the accumulator of every key.

  windows @4 :List(WindowBuffer);
  # Tumbling windows: the elements of each window that is still open.

  nextOutputSeq @5 :UInt64;
  # A stage with a downstream queue: the sequence number its next output gets
  # (the first is 1; 0, in a checkpoint written before outboxes existed, reads as 1).
  # Outputs are published under the stage's producer id with these numbers, so the
  # downstream queue drops a republished one it already holds.

  outbox @6 :List(OutboxEntry);
  # Outputs not yet confirmed by the downstream queue, in sequence order, ending at
  # nextOutputSeq - 1. Written with `applied` and `state`, before the inputs that
  # produced them are acked, and republished after a restart: an output is never
  # lost, and never derived twice from a redelivered input.

  inputIncarnation @7 :UInt64;
  # Which incarnation of the input queue the ids in `applied` belong to: 0 for a
  # durable queue (ids outlive the process), a random value per run for an
  # in-memory one. A different value on load means those ids are gone: `applied`
  # is cleared.

  outputIncarnation @8 :UInt64;
  # The same for the downstream queue the outbox numbers are for: a different value
  # on load means that queue and its de-duplication state are gone, so the outbox
  # is dropped and numbering restarts at 1 (at most once across a process kill for
  # in-memory edges; durable edges keep exactly once).

  inputQueue @9 :Text;
  # The name of the queue the ids in `applied` come from, checked on load: after
  # a change of the graph they would name other messages. Empty in checkpoints
  # written before stages had queues of their own: then it is the source's queue.
}

struct WindowBuffer {
  operator @0 :Text;
  # The window operator's name.

  elements @1 :List(KeyValue);
  # Its elements so far (key, value), in arrival order.

  startMs @2 :Int64;
  # Time windows: the start of the open window in ms since the Unix epoch (a
  # multiple of the width); it closes at startMs + width. 0 for count windows.
}

struct OutboxEntry {
  seq @0 :UInt64;
  # The producer sequence number this output is published with.

  key @1 :Data;
  value @2 :Data;
  # The element; bytes, as in the queue's envelope (key, payload).
}

struct KeyValue {
  key @0 :Text;
  value @1 :Text;
}

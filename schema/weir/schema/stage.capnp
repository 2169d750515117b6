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
}

struct WindowBuffer {
  operator @0 :Text;
  # The window operator's name.

  elements @1 :List(KeyValue);
  # Its elements so far (key, value), in arrival order.
}

struct KeyValue {
  key @0 :Text;
  value @1 :Text;
}

// A stage's checkpoint in its Cap'n Proto form (schema/weir/schema/stage.capnp).

#include "stage_checkpoint.hpp"

#include "weir/runtime/checkpoint_file.hpp"
#include "weir/schema/stage.capnp.h"

namespace weir {

namespace {

std::string bytes_to_string(capnp::Data::Reader bytes) {
  return {reinterpret_cast<const char*>(bytes.begin()), bytes.size()};
}

capnp::Data::Reader string_bytes(const std::string& text) {
  return {reinterpret_cast<const kj::byte*>(text.data()), text.size()};
}

}  // namespace

std::uint64_t stable_id(const std::string& text) {
  std::uint64_t hash = 1469598103934665603ull;
  for (unsigned char c : text) hash = (hash ^ c) * 1099511628211ull;
  return hash | 1;
}

status write_stage_checkpoint(file_system& fs, const std::string& path, const std::string& stage,
                              const stage_snapshot& snapshot) {
  capnp::MallocMessageBuilder builder;
  auto checkpoint = builder.initRoot<schema::StageCheckpoint>();
  checkpoint.setFormatVersion(schema::STAGE_FORMAT_VERSION);
  checkpoint.setStage(stage);
  auto applied = checkpoint.initApplied(static_cast<unsigned>(snapshot.applied.ranges().size()));
  unsigned i = 0;
  for (const auto& [begin, end] : snapshot.applied.ranges()) {
    applied[i].setBegin(begin);
    applied[i].setEnd(end);
    ++i;
  }
  auto entries = checkpoint.initState(static_cast<unsigned>(snapshot.reduce_state.size()));
  i = 0;
  for (const auto& [key, value] : snapshot.reduce_state) {
    entries[i].setKey(key);
    entries[i].setValue(value);
    ++i;
  }
  auto windows = checkpoint.initWindows(static_cast<unsigned>(snapshot.windows.size()));
  i = 0;
  for (const auto& [name, open] : snapshot.windows) {
    windows[i].setOperator(name);
    windows[i].setStartMs(open.start_ms);
    auto elements = windows[i].initElements(static_cast<unsigned>(open.elements.size()));
    for (unsigned e = 0; e < open.elements.size(); ++e) {
      elements[e].setKey(open.elements[e].key);
      elements[e].setValue(open.elements[e].value);
    }
    ++i;
  }
  checkpoint.setNextOutputSeq(snapshot.outbox_first_seq + snapshot.outbox.size());
  auto outbox = checkpoint.initOutbox(static_cast<unsigned>(snapshot.outbox.size()));
  for (unsigned e = 0; e < snapshot.outbox.size(); ++e) {
    outbox[e].setSeq(snapshot.outbox_first_seq + e);
    outbox[e].setKey(string_bytes(snapshot.outbox[e].key));
    outbox[e].setValue(string_bytes(snapshot.outbox[e].value));
  }
  checkpoint.setInputIncarnation(snapshot.input_incarnation);
  checkpoint.setOutputIncarnation(snapshot.output_incarnation);
  checkpoint.setInputQueue(snapshot.input_queue);
  return write_checkpoint_file(fs, path, builder, checkpoint_kind::stage_state,
                               schema::STAGE_FORMAT_VERSION);
}

status load_stage_checkpoint(file_system& fs, const std::string& path, const std::string& stage,
                             stage_snapshot& snapshot) {
  auto exists = fs.exists(path);
  if (!exists) return exists.error();
  if (!*exists) return {};
  auto file =
      checkpoint_file::read(fs, path, checkpoint_kind::stage_state, schema::STAGE_FORMAT_VERSION);
  if (!file) return file.error();
  try {
    auto checkpoint = (*file)->message().getRoot<schema::StageCheckpoint>();
    if (checkpoint.getStage() != stage) {
      return {errc::invalid_argument, path + " is the checkpoint of stage '" +
                                          std::string(checkpoint.getStage().cStr()) +
                                          "', not of '" + stage + "'"};
    }
    for (auto range : checkpoint.getApplied()) {
      snapshot.applied.insert(range.getBegin(), range.getEnd());
    }
    for (auto entry : checkpoint.getState()) {
      snapshot.reduce_state[entry.getKey()] = entry.getValue();
    }
    for (auto window : checkpoint.getWindows()) {
      if (window.getElements().size() == 0) continue;  // older checkpoints kept empty ones
      auto& open = snapshot.windows[window.getOperator()];
      open.start_ms = window.getStartMs();
      for (auto e : window.getElements()) open.elements.push_back({e.getKey(), e.getValue()});
    }
    const auto next_seq = std::max<std::uint64_t>(checkpoint.getNextOutputSeq(), 1);
    auto outbox = checkpoint.getOutbox();
    if (outbox.size() >= next_seq) {
      return {errc::corruption, path + ": outbox of " + std::to_string(outbox.size()) +
                                    " entries before output " + std::to_string(next_seq)};
    }
    snapshot.outbox_first_seq = next_seq - outbox.size();
    for (unsigned e = 0; e < outbox.size(); ++e) {
      if (outbox[e].getSeq() != snapshot.outbox_first_seq + e) {
        return {errc::corruption, path + ": outbox entry " + std::to_string(e) + " is output " +
                                      std::to_string(outbox[e].getSeq()) + ", expected " +
                                      std::to_string(snapshot.outbox_first_seq + e)};
      }
      snapshot.outbox.push_back(
          {bytes_to_string(outbox[e].getKey()), bytes_to_string(outbox[e].getValue())});
    }
    snapshot.input_incarnation = checkpoint.getInputIncarnation();
    snapshot.output_incarnation = checkpoint.getOutputIncarnation();
    snapshot.input_queue = checkpoint.getInputQueue();
  } catch (const kj::Exception& e) {
    return {errc::corruption, path + ": " + std::string(e.getDescription().cStr())};
  }
  return {};
}

}  // namespace weir

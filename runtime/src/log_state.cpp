#include "log_state.hpp"

#include <algorithm>

namespace weir::detail {

namespace {

void forget_attempts(log_state& state, std::uint64_t begin, std::uint64_t end) {
  // The attempts map is bounded by unacked deliveries; walk whichever is smaller.
  if (end - begin <= state.attempts.size()) {
    for (auto id = begin; id < end; ++id) state.attempts.erase(id);
    return;
  }
  std::erase_if(state.attempts,
                [&](const auto& entry) { return entry.first >= begin && entry.first < end; });
}

void mark_done(log_state& state, std::uint64_t begin, std::uint64_t end, std::uint64_t& counter) {
  end = std::min(end, state.next_id);
  begin = std::max<std::uint64_t>(begin, 1);
  if (begin >= end) return;
  counter += (end - begin) - state.done.count_in(begin, end);
  state.done.insert(begin, end);
  forget_attempts(state, begin, end);
}

}  // namespace

apply_outcome apply_record(schema::LogRecord::Reader record, log_state& state,
                           segment_entry& segment, std::uint64_t offset,
                           std::uint64_t index_interval_bytes) {
  switch (record.which()) {
    case schema::LogRecord::PUBLISH: {
      auto batch = record.getPublish();
      const std::uint64_t first = batch.getFirstId();
      const std::uint64_t count = batch.getEnvelopes().size();
      if (first < state.next_id || first == 0) return apply_outcome::stale_publish;
      if (first > state.next_id) {
        // The records that held these ids were skipped as corrupt.
        const auto gap_begin = state.next_id;
        state.next_id = first;
        mark_done(state, gap_begin, first, state.lost);
      }
      state.next_id = first + count;
      state.published += count;
      for (auto envelope : batch.getEnvelopes()) {
        const auto producer = envelope.getProducerId();
        if (producer == 0) continue;
        auto& position = state.producers[producer];
        const auto epoch = envelope.getProducerEpoch();
        const auto seq = envelope.getProducerSeq();
        if (epoch > position.epoch || (epoch == position.epoch && seq > position.last_seq)) {
          position = {epoch, seq};
        }
      }
      if (segment.first_id == segment.end_id) segment.first_id = first;
      segment.end_id = first + count;
      if (segment.index.empty() || segment.index_next_publish ||
          offset >= segment.index.back().second + index_interval_bytes) {
        segment.index.emplace_back(first, offset);
        segment.index_next_publish = false;
      }
      break;
    }
    case schema::LogRecord::ACK:
      for (auto range : record.getAck().getRanges()) {
        mark_done(state, range.getBegin(), range.getEnd(), state.acked);
      }
      break;
    case schema::LogRecord::DEAD_LETTER:
      for (auto entry : record.getDeadLetter().getEntries()) {
        mark_done(state, entry.getId(), entry.getId() + 1, state.dead_lettered);
      }
      break;
    case schema::LogRecord::DELIVERIES:
      for (auto entry : record.getDeliveries().getEntries()) {
        const auto id = entry.getId();
        if (id == 0 || id >= state.next_id || state.done.contains(id)) continue;
        state.attempts[id] = entry.getAttempts();
      }
      break;
    case schema::LogRecord::SNAPSHOT_MARKER:
      break;
  }
  ++segment.records;
  return apply_outcome::applied;
}

}  // namespace weir::detail

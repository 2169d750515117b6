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
  state.attempts.erase_if(
      [&](std::uint64_t id, std::uint32_t) { return id >= begin && id < end; });
}

void mark_done(log_state& state, std::uint64_t begin, std::uint64_t end, std::uint64_t& counter) {
  end = std::min(end, state.next_id);
  begin = std::max<std::uint64_t>(begin, 1);
  if (begin >= end) return;
  counter += (end - begin) - state.done.count_in(begin, end);
  state.done.insert(begin, end);
  forget_attempts(state, begin, end);
  // Below the first id not done, nothing is asked about any more: without this,
  // every gap among first deliveries (a lost id, a replay) stayed a range forever.
  state.delivered_once.erase_below(state.done.first_missing_from(1));
}

}  // namespace

bool apply_publish(log_state& state, segment_entry& segment, std::uint64_t offset,
                   std::uint64_t first, std::uint64_t count, std::uint64_t index_interval_bytes) {
  if (first < state.next_id || first == 0) return false;
  if (first > state.next_id) {
    // The records that held these ids were skipped as corrupt.
    const auto gap_begin = state.next_id;
    state.next_id = first;
    mark_done(state, gap_begin, first, state.lost);
  }
  state.next_id = first + count;
  state.published += count;
  if (segment.first_id == segment.end_id) segment.first_id = first;
  segment.end_id = first + count;
  if (segment.index.empty() || segment.index_next_publish ||
      offset >= segment.index.back().second + index_interval_bytes) {
    segment.index.emplace_back(first, offset);
    segment.index_next_publish = false;
  }
  return true;
}

void set_attempts(log_state& state, std::uint64_t id, std::uint32_t count) {
  if (count == 1 && (id > state.attempts_id_max || !state.attempts.contains(id))) {
    state.delivered_once.insert(id);
    return;
  }
  state.attempts[id] = count;
  state.attempts_id_max = std::max(state.attempts_id_max, id);
}

std::uint64_t delivered_count(const log_state& state) {
  std::uint64_t count = state.attempts.size();
  for (const auto& [begin, end] : state.delivered_once.ranges()) {
    count += (end - begin) - state.done.count_in(begin, end);
  }
  // Ids delivered again are in both.
  state.attempts.for_each([&](std::uint64_t id, std::uint32_t) {
    if (state.delivered_once.contains(id)) --count;
  });
  return count;
}

void note_producer(log_state& state, std::uint64_t producer, std::uint64_t epoch,
                   std::uint64_t seq) {
  if (producer == 0) return;
  auto& position = state.producers[producer];
  if (epoch > position.epoch || (epoch == position.epoch && seq > position.last_seq)) {
    position = {epoch, seq};
  }
}

apply_outcome apply_record(schema::LogRecord::Reader record, log_state& state,
                           segment_entry& segment, std::uint64_t offset,
                           std::uint64_t index_interval_bytes) {
  switch (record.which()) {
    case schema::LogRecord::PUBLISH: {
      auto batch = record.getPublish();
      auto envelopes = batch.getEnvelopes();
      if (!apply_publish(state, segment, offset, batch.getFirstId(), envelopes.size(),
                         index_interval_bytes)) {
        return apply_outcome::stale_publish;
      }
      for (auto envelope : envelopes) {
        note_producer(state, envelope.getProducerId(), envelope.getProducerEpoch(),
                      envelope.getProducerSeq());
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
    case schema::LogRecord::DELIVERIES: {
      // A batch of first deliveries is a run of ids: one range insert for all.
      std::uint64_t run_begin = 0;
      std::uint64_t run_end = 0;
      for (auto entry : record.getDeliveries().getEntries()) {
        const auto id = entry.getId();
        if (id == 0 || id >= state.next_id || state.done.contains(id)) continue;
        if (entry.getAttempts() == 1 && id == run_end && id > state.attempts_id_max) {
          ++run_end;
          continue;
        }
        if (run_begin != run_end) state.delivered_once.insert(run_begin, run_end);
        run_begin = run_end = 0;
        if (entry.getAttempts() == 1 && id > state.attempts_id_max) {
          run_begin = id;
          run_end = id + 1;
        } else {
          set_attempts(state, id, entry.getAttempts());
        }
      }
      if (run_begin != run_end) state.delivered_once.insert(run_begin, run_end);
      break;
    }
    case schema::LogRecord::SNAPSHOT_MARKER:
      break;
  }
  ++segment.records;
  return apply_outcome::applied;
}

}  // namespace weir::detail

#include "log_snapshots.hpp"

#include <algorithm>
#include <chrono>
#include <utility>

#include "log_files.hpp"
#include "weir/runtime/checkpoint_file.hpp"
#include "weir/schema/log.capnp.h"

namespace weir::detail {

// The writer thread captures a snapshot (capture, from the writer's
// start_snapshot), the snapshot thread writes it and compacts (write_snapshot),
// the writer appends its marker and answers snapshot() (the writer's
// finish_snapshot). Appends flow meanwhile; one job at a time.
//
// Why every crash point recovers correctly:
// - The capture syncs the active segment first, so everything before the
//   snapshot's position is durable before the snapshot can be.
// - The file is written to a .tmp, fsynced, renamed and the directory fsynced.
//   A crash before that leaves the previous snapshot as the newest (a .tmp is
//   removed at recovery); all segments are still there.
// - Segments rolled while the snapshot was in flight sort after its position,
//   so recovery replays them (only unlisted segments *before* it count as compacted).
// - Segments and old snapshot files are deleted only after the new snapshot is
//   durable, and only segments before the previous snapshot's position too
//   (compact_below): if the new snapshot is ever unreadable, the previous one
//   still finds every segment it needs. A crash part-way through the deletions
//   leaves segments that recovery recognises as compacted and removes.
// - The marker is informational (recovery skips it); the writer appends it,
//   being the only appender, after the snapshot is durable.
// - Done ids only grow, so a segment all done at capture is all done when it is deleted.

log_snapshots::~log_snapshots() {
  stop();
}

void log_snapshots::resume(std::vector<std::uint64_t> kept_sequences,
                           std::uint64_t last_covers_segment) {
  sequences_ = std::move(kept_sequences);
  last_covers_segment_ = last_covers_segment;
}

void log_snapshots::start(std::function<void(std::unique_ptr<snapshot_job>)> written) {
  written_ = std::move(written);
  thread_ = std::thread([this] { snapshot_loop(); });
}

void log_snapshots::stop() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  ready_.notify_all();
  if (thread_.joinable()) thread_.join();
}

std::unique_ptr<snapshot_job> log_snapshots::capture(std::uint64_t covers_segment,
                                                     std::uint64_t covers_offset) {
  auto job = std::make_unique<snapshot_job>();
  job->sequence = sequences_.empty() ? 1 : sequences_.back() + 1;
  job->covers_segment = covers_segment;
  job->covers_offset = covers_offset;
  // Keep every segment the previous snapshot needs, so that if this snapshot is
  // ever unreadable, recovery can fall back to that one and still replay.
  std::uint64_t compact_below = job->covers_segment;
  if (last_covers_segment_ != 0) compact_below = std::min(compact_below, last_covers_segment_);
  {
    // The capture: the Cap'n Proto message itself, built under the lock. It is the
    // cheapest consistent copy (flat words, no per-range allocation), and only the
    // file write and the fsyncs were ever slow.
    std::lock_guard lock(context_.state_mutex);
    for (const auto& [number, entry] : context_.segments) {
      if (number >= compact_below) break;
      if (context_.state.done.contains_all(entry.first_id, entry.end_id)) {
        job->deletable.push_back(number);
      }
    }
    job->message =
        build_snapshot(job->sequence, job->covers_segment, job->covers_offset, job->deletable);
  }
  // Two are kept: the new one and the one to fall back to if it is ever unreadable.
  if (sequences_.size() > 1) {
    job->stale_snapshots.assign(sequences_.begin(), sequences_.end() - 1);
  }
  return job;
}

void log_snapshots::submit(std::unique_ptr<snapshot_job> job) {
  {
    std::lock_guard lock(mutex_);
    todo_ = std::move(job);
  }
  ready_.notify_one();
}

void log_snapshots::written(const snapshot_job& job) {
  sequences_.erase(std::remove_if(sequences_.begin(), sequences_.end(),
                                  [&](std::uint64_t s) {
                                    return std::find(job.stale_snapshots.begin(),
                                                     job.stale_snapshots.end(),
                                                     s) != job.stale_snapshots.end();
                                  }),
                   sequences_.end());
  sequences_.push_back(job.sequence);
  last_covers_segment_ = job.covers_segment;
}

void log_snapshots::snapshot_loop() {
  for (;;) {
    std::unique_ptr<snapshot_job> job;
    {
      std::unique_lock lock(mutex_);
      ready_.wait(lock, [&] { return stopping_ || todo_ != nullptr; });
      if (!todo_) return;
      job = std::move(todo_);
    }
    write_snapshot(*job);
    written_(std::move(job));
  }
}

void log_snapshots::write_snapshot(snapshot_job& job) {
  job.outcome = write_checkpoint_file(
      context_.fs, log_files::join(context_.dir, log_files::snapshot_name(job.sequence)),
      *job.message, checkpoint_kind::log_snapshot, log_format_version);
  job.message.reset();
  if (!job.outcome) return;
  // Durable now: what only older snapshots needed can go.
  for (auto number : job.deletable) {
    std::string segment_path;
    std::weak_ptr<readable_file> reader;
    {
      std::lock_guard lock(context_.state_mutex);
      auto it = context_.segments.find(number);
      if (it == context_.segments.end()) continue;
      segment_path = it->second.path;
      reader = it->second.reader;
      context_.segments.erase(it);
    }
    release_segment(number, segment_path, std::move(reader));
  }
  // Neither the removals nor their directory sync need to succeed: a stale
  // snapshot left behind, or back after a crash, costs only its disk space, as
  // recovery reads the newest valid snapshot.
  for (auto sequence : job.stale_snapshots) {
    static_cast<void>(
        context_.fs.remove_file(log_files::join(context_.dir, log_files::snapshot_name(sequence))));
  }
  static_cast<void>(context_.fs.sync_dir(context_.dir));
}

void log_snapshots::release_segment(std::uint64_t number, const std::string& path,
                                    std::weak_ptr<readable_file> reader) {
  if (spares_.keep(number, path, std::move(reader))) return;
  // Freeing a whole segment in one unlink holds up the writer's next fdatasync
  // behind the filesystem journal (most of the 1 KiB p99 tail in node_bench);
  // cut in slices with pauses between them, the work is spread out. A crash
  // part-way leaves a shorter compacted segment, which recovery removes unread.
  // Smaller slices were tried: 1 and 4 MiB (pausing twice each slice's time)
  // cost 10-35% of the 1 KiB rate, each slice a journal commit of its own.
  constexpr std::uint64_t slice_bytes = 8ull << 20;
  constexpr auto pause = std::chrono::milliseconds(5);
  if (auto size = context_.fs.file_size(path)) {
    for (auto left = *size; left > slice_bytes;) {
      left -= slice_bytes;
      if (!context_.fs.truncate_file(path, left)) break;
      std::this_thread::sleep_for(pause);
    }
  }
  // A compacted segment left behind is removed by the next recovery, which knows
  // it is covered by the snapshot.
  static_cast<void>(context_.fs.remove_file(path));
}

std::unique_ptr<capnp::MallocMessageBuilder> log_snapshots::build_snapshot(
    std::uint64_t sequence, std::uint64_t covers_segment, std::uint64_t covers_offset,
    const std::vector<std::uint64_t>& deleted) const {
  auto builder = std::make_unique<capnp::MallocMessageBuilder>();
  auto snap = builder->initRoot<schema::Snapshot>();
  snap.setSequence(sequence);
  snap.getCovers().setSegment(covers_segment);
  snap.getCovers().setOffset(covers_offset);
  snap.setNextId(context_.state.next_id);
  auto done = snap.initDone(static_cast<unsigned>(context_.state.done.ranges().size()));
  unsigned i = 0;
  for (const auto& [begin, end] : context_.state.done.ranges()) {
    done[i].setBegin(begin);
    done[i].setEnd(end);
    ++i;
  }
  std::vector<std::pair<std::uint64_t, std::uint32_t>> delivered;
  for_each_attempts(context_.state, [&](std::uint64_t id, std::uint32_t count) {
    delivered.emplace_back(id, count);
  });
  auto attempts = snap.initAttempts(static_cast<unsigned>(delivered.size()));
  i = 0;
  for (const auto& [id, count] : delivered) {
    attempts[i].setId(id);
    attempts[i].setAttempts(count);
    ++i;
  }
  snap.setPublishedCount(context_.state.published);
  snap.setAckedCount(context_.state.acked);
  snap.setDeadLetteredCount(context_.state.dead_lettered);
  snap.setLostCount(context_.state.lost);
  auto producers = snap.initProducers(static_cast<unsigned>(context_.state.producers.size()));
  i = 0;
  for (const auto& [id, position] : context_.state.producers) {
    producers[i].setProducerId(id);
    producers[i].setEpoch(position.epoch);
    producers[i].setLastSeq(position.last_seq);
    ++i;
  }
  auto segments =
      snap.initSegments(static_cast<unsigned>(context_.segments.size() - deleted.size()));
  i = 0;
  for (const auto& [number, entry] : context_.segments) {
    if (std::find(deleted.begin(), deleted.end(), number) != deleted.end()) continue;
    auto out = segments[i++];
    out.setNumber(number);
    out.setFirstId(entry.first_id);
    out.setEndId(entry.end_id);
    out.setSize(number == covers_segment ? covers_offset : entry.size);
    auto entries = out.initEntries(static_cast<unsigned>(entry.index.size()));
    for (unsigned e = 0; e < entry.index.size(); ++e) {
      entries[e].setFirstId(entry.index[e].first);
      entries[e].setOffset(entry.index[e].second);
    }
  }
  return builder;
}

}  // namespace weir::detail

#include "log_recovery.hpp"

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <utility>

#include <kj/exception.h>

#include "decoded_record.hpp"
#include "log_files.hpp"
#include "record_format.hpp"
#include "weir/runtime/checkpoint_file.hpp"
#include "weir/schema/log.capnp.h"

namespace weir::detail {

namespace {

// Recovery reads a whole segment at once; this bounds that buffer.
constexpr std::uint64_t segment_size_limit = 1ull << 30;

// Good frames salted with `salt` from `offset` on.
std::uint64_t count_frames_from(std::span<const std::byte> bytes, std::uint64_t offset,
                                std::uint32_t record_size_max, std::uint64_t salt) {
  std::uint64_t count = 0;
  while (offset < bytes.size()) {
    const auto rest = bytes.subspan(offset);
    const auto frame = record_format::decode_frame(rest, record_size_max, salt);
    if (frame.status == record_format::frame_status::ok) {
      ++count;
      offset += frame.size;
    } else {
      offset += record_format::find_next_frame(rest, record_size_max, salt);
    }
  }
  return count;
}

}  // namespace

status log_recovery::recover(recovered_log& found) {
  const auto started = log_clock::now();
  if (context_.options.segment_bytes_max < 4096 ||
      context_.options.segment_bytes_max > segment_size_limit) {
    return {errc::invalid_argument, "segment_bytes_max must be within 4 KiB .. 1 GiB"};
  }
  auto exists = context_.fs.exists(context_.dir);
  if (!exists) return exists.error();
  if (!*exists) {
    if (context_.options.read_only) {
      return {errc::not_found, "log directory " + context_.dir + " does not exist"};
    }
    if (auto created = context_.fs.create_dirs(context_.dir); !created) return created;
  }
  if (!context_.options.read_only) {
    // One writer per directory: a second instance (another process, or a
    // restarted queue whose predecessor is still closing) would interleave records.
    auto lock = context_.fs.lock_file(log_files::join(context_.dir, log_files::lock_name));
    if (!lock) return lock.error();
    found.lock = std::move(*lock);
  }
  auto names = context_.fs.list_dir(context_.dir);
  if (!names) return names.error();

  std::map<std::uint64_t, std::string> segment_files;
  std::map<std::uint64_t, std::string> snapshot_files;
  for (const auto& name : *names) {
    if (auto n = log_files::parse_segment_name(name)) {
      segment_files.emplace(*n, log_files::join(context_.dir, name));
    } else if (auto s = log_files::parse_snapshot_name(name)) {
      snapshot_files.emplace(*s, log_files::join(context_.dir, name));
    } else if (log_files::parse_spare_name(name)) {
      if (context_.options.read_only) continue;
      if (found.spare_files.size() < context_.options.spare_segments_max) {
        found.spare_files.push_back(log_files::join(context_.dir, name));
      } else {
        remove_or_warn(log_files::join(context_.dir, name));
      }
    } else if (name == log_files::lock_name) {
      continue;
    } else if (name == log_files::closed_cleanly_name) {
      closed_cleanly_ = true;
    } else if (name.ends_with(".tmp")) {
      // A snapshot whose write was interrupted; it was never renamed into place.
      if (!context_.options.read_only) remove_or_warn(log_files::join(context_.dir, name));
    } else {
      report_.warnings.push_back("ignoring unexpected file " + log_files::join(context_.dir, name));
    }
  }

  bool fell_back = false;
  if (auto loaded = load_snapshot(snapshot_files, found, fell_back); !loaded) return loaded;

  // Segments the snapshot lists but that are gone.
  const std::uint64_t covers_segment = found.last_snapshot_covers;
  for (auto it = context_.segments.begin(); it != context_.segments.end();) {
    if (segment_files.count(it->first) != 0) {
      ++it;
      continue;
    }
    auto& entry = it->second;
    if (entry.first_id < entry.end_id &&
        !context_.state.done.contains_all(entry.first_id, entry.end_id)) {
      if (fell_back) {
        // A newer snapshot (now unreadable) compacted it, which it only does to
        // segments whose messages were all done.
        report_.warnings.push_back("segment " + entry.path +
                                   " is gone; a newer snapshot had compacted it");
        context_.state.done.insert(entry.first_id, entry.end_id);
        for (auto id = entry.first_id; id < entry.end_id; ++id) context_.state.attempts.erase(id);
      } else {
        const auto lost_before = context_.state.done.count_in(entry.first_id, entry.end_id);
        context_.state.lost += (entry.end_id - entry.first_id) - lost_before;
        context_.state.done.insert(entry.first_id, entry.end_id);
        for (auto id = entry.first_id; id < entry.end_id; ++id) context_.state.attempts.erase(id);
        report_.warnings.push_back("segment " + entry.path + " is missing; ids " +
                                   std::to_string(entry.first_id) + ".." +
                                   std::to_string(entry.end_id - 1) + " are lost");
      }
    }
    it = context_.segments.erase(it);
  }

  // Segment files older than the snapshot's position that it does not list were
  // compacted; their removal just did not reach the disk before a crash.
  std::uint64_t replay_from_offset = 0;
  for (auto& [number, path] : segment_files) {
    if (covers_segment != 0 && number < covers_segment && context_.segments.count(number) == 0) {
      report_.warnings.push_back("removing compacted segment " + path);
      if (!context_.options.read_only) remove_or_warn(path);
      continue;
    }
    auto& entry = context_.segments[number];
    entry.number = number;
    entry.path = path;
  }
  if (covers_segment != 0) {
    auto it = context_.segments.find(covers_segment);
    if (it != context_.segments.end()) replay_from_offset = it->second.size;
  }
  if (covers_segment == 0 && !context_.segments.empty() && context_.segments.begin()->first > 1) {
    report_.warnings.push_back("no snapshot but the first segment is number " +
                               std::to_string(context_.segments.begin()->first) +
                               "; earlier segments were compacted, so acks they held are unknown");
  }

  // Replay: segments from the snapshot's position on; others are only verified on request.
  const std::uint64_t last_number =
      context_.segments.empty() ? 0 : context_.segments.rbegin()->first;
  std::map<std::uint64_t, std::uint64_t> scan_bytes;  // by segment: its size, for progress
  if (context_.options.recovery_progress) {
    for (const auto& [number, entry] : context_.segments) {
      if (number < covers_segment && !context_.options.verify_all_segments) continue;
      auto size = context_.fs.file_size(entry.path);
      scan_bytes[number] = size ? *size : 0;
      progress_total_ += scan_bytes[number];
    }
  }
  for (auto& [number, entry] : context_.segments) {
    const bool is_last = number == last_number;
    progress_segment_bytes_ = context_.options.recovery_progress ? scan_bytes[number] : 0;
    // Reported once the segment is read, whichever way the body below leaves it.
    struct segment_done {
      log_recovery& self;
      ~segment_done() {
        self.progress_base_ += self.progress_segment_bytes_;
        self.progress_segment_bytes_ = 0;
        self.report_progress(0, true);
      }
    } progress_step{*this};
    if (number < covers_segment) {
      if (context_.options.verify_all_segments) {
        entry.records = 0;
        if (auto scanned =
                scan_segment(entry, record_format::header_size, UINT64_MAX, false, false);
            !scanned) {
          return scanned;
        }
      }
      continue;
    }
    const auto start = number == covers_segment
                           ? std::max<std::uint64_t>(replay_from_offset, record_format::header_size)
                           : record_format::header_size;
    std::uint64_t covered_records = 0;
    if (number == covers_segment && context_.options.verify_all_segments) {
      // Verify the covered part too; apply only from the snapshot's position.
      segment_entry scratch = entry;
      scratch.records = 0;
      if (auto scanned = scan_segment(scratch, record_format::header_size, start, false, false);
          !scanned) {
        return scanned;
      }
      covered_records = scratch.records;
    }
    if (auto scanned = scan_segment(entry, start, UINT64_MAX, is_last, true); !scanned) {
      return scanned;
    }
    entry.records += covered_records;
  }

  if (context_.segments.empty()) report_progress(0, true);
  // What recovery read back is what the disk holds.
  context_.durable_next_id = context_.state.next_id;
  for (const auto& [number, entry] : context_.segments) {
    report_.segments.push_back({entry.path, number, entry.size, entry.records, entry.scanned,
                                entry.first_id, entry.end_id});
  }
  report_.seconds = std::chrono::duration<double>(log_clock::now() - started).count();

  // A new segment must sort after everything a snapshot covers, or the next
  // recovery would take it for a compacted one.
  found.create_active_segment = context_.segments.empty();
  found.active_segment =
      found.create_active_segment ? std::max(last_number, covers_segment) + 1 : last_number;

  if (context_.options.read_only) return {};
  if (closed_cleanly_) {
    // Gone for good before the first append: after a crash from here on, the
    // last segment may again hold a torn tail.
    if (auto removed =
            context_.fs.remove_file(log_files::join(context_.dir, log_files::closed_cleanly_name));
        !removed) {
      return removed;
    }
    if (auto synced = context_.fs.sync_dir(context_.dir); !synced) return synced;
  }
  return {};
}

void log_recovery::report_progress(std::uint64_t segment_bytes_done, bool force) {
  if (!context_.options.recovery_progress) return;
  constexpr std::uint64_t report_every_bytes = 4ull << 20;
  auto done = progress_base_ + std::min(segment_bytes_done, progress_segment_bytes_);
  done = std::clamp(done, progress_reported_, progress_total_);
  if (!force && done < progress_reported_ + report_every_bytes) return;
  progress_reported_ = done;
  context_.options.recovery_progress(done, progress_total_);
}

status log_recovery::load_snapshot(const std::map<std::uint64_t, std::string>& snapshots,
                                   recovered_log& found, bool& fell_back) {
  // Newest first; a corrupt snapshot is passed over for the one before it.
  for (auto it = snapshots.rbegin(); it != snapshots.rend(); ++it) {
    const auto& path = it->second;
    auto file = checkpoint_file::read(context_.fs, path, checkpoint_kind::log_snapshot,
                                      log_format_version, context_.options.record_size_bytes_max);
    if (!file && file.error().code() == errc::version_mismatch) {
      return {errc::version_mismatch, "snapshot " + file.error().message()};
    }
    const std::uint64_t size = file ? (*file)->size_bytes() : 0;
    std::string problem;
    bool loaded = false;
    if (!file) {
      problem = file.error().message();
    } else {
      {
        try {
          auto snap = (*file)->message().getRoot<schema::Snapshot>();
          log_state state;
          state.next_id = snap.getNextId();
          for (auto range : snap.getDone()) state.done.insert(range.getBegin(), range.getEnd());
          for (auto a : snap.getAttempts()) {
            set_attempts(state, a.getId(), a.getAttempts());
          }
          state.published = snap.getPublishedCount();
          state.acked = snap.getAckedCount();
          state.dead_lettered = snap.getDeadLetteredCount();
          state.lost = snap.getLostCount();
          for (auto p : snap.getProducers()) {
            state.producers[p.getProducerId()] = {p.getEpoch(), p.getLastSeq()};
          }
          std::map<std::uint64_t, segment_entry> segments;
          for (auto s : snap.getSegments()) {
            segment_entry entry;
            entry.number = s.getNumber();
            entry.path = log_files::join(context_.dir, log_files::segment_name(entry.number));
            entry.first_id = s.getFirstId();
            entry.end_id = s.getEndId();
            entry.size = s.getSize();
            for (auto e : s.getEntries()) entry.index.emplace_back(e.getFirstId(), e.getOffset());
            segments.emplace(entry.number, std::move(entry));
          }
          context_.state = std::move(state);
          context_.segments = std::move(segments);
          found.last_snapshot_covers = snap.getCovers().getSegment();
          report_.snapshot_sequence = it->first;
          report_.snapshot_file = path;
          loaded = true;
        } catch (const kj::Exception& e) {
          problem = "snapshot record does not decode: " + std::string(e.getDescription().cStr());
        }
      }
    }
    if (loaded) {
      for (const auto& [sequence, ignored] : snapshots) {
        if (sequence <= it->first) found.snapshot_sequences.push_back(sequence);
      }
      return {};
    }
    report_.corruptions.push_back({path, 0, size, problem});
    report_.warnings.push_back("snapshot " + path + " is corrupt (" + problem +
                               "); falling back to an older one");
    // Removed so that it is not mistaken for the newest one again; the report
    // above is the record of it.
    if (!context_.options.read_only) remove_or_warn(path);
    fell_back = true;
  }
  return {};
}

status log_recovery::scan_segment(segment_entry& segment, std::uint64_t start_offset,
                                  std::uint64_t stop_at, bool is_last, bool apply) {
  std::uint64_t size = 0;
  auto words = record_format::read_file_aligned(context_.fs, segment.path, size);
  if (!words) return words.error();
  size = std::min(size, stop_at);
  const bool may_modify = apply && !context_.options.read_only;
  auto bytes = std::as_bytes(std::span{*words}).first(size);
  segment.scanned = true;

  std::uint32_t version = 0;
  auto check = record_format::check_file_header(bytes, record_format::segment_magic,
                                                log_format_version, version);
  if (check == record_format::header_check::other_version) {
    return {errc::version_mismatch,
            "segment " + segment.path + " " +
                record_format::describe_header_problem(check, version, log_format_version)};
  }
  if (check == record_format::header_check::too_short) {
    // Only a segment being created when the process died can be this short;
    // the last one gets a fresh header when it is opened for appends.
    report_.truncations.push_back({segment.path, 0, size, "segment header is incomplete"});
    if (may_modify) {
      auto cut = is_last ? context_.fs.truncate_file(segment.path, 0)
                         : context_.fs.remove_file(segment.path);
      if (!cut) return cut;
    }
    segment.size = 0;
    return {};
  }
  if (check != record_format::header_check::ok) {
    report_.corruptions.push_back(
        {segment.path, 0, record_format::header_size,
         record_format::describe_header_problem(check, version, log_format_version)});
  }

  std::uint64_t offset = std::max<std::uint64_t>(start_offset, record_format::header_size);
  if (offset > size) {
    report_.warnings.push_back("segment " + segment.path + " is shorter (" + std::to_string(size) +
                               " bytes) than the snapshot's position " + std::to_string(offset));
    offset = size;
  }
  while (offset < size) {
    auto frame = record_format::decode_frame(
        bytes.subspan(offset), context_.options.record_size_bytes_max, segment.number);
    bool applied = false;
    if (frame.status == record_format::frame_status::ok) {
      if (!apply) {
        ++segment.records;
        applied = true;
      } else {
        apply_outcome outcome = apply_outcome::applied;
        const bool decoded = with_log_record(frame.payload, [&](schema::LogRecord::Reader record) {
          outcome = apply_record(record, context_.state, segment, offset,
                                 context_.options.index_interval_bytes);
        });
        if (!decoded) {
          frame.reason = "record passes its checksum but does not decode";
        } else if (outcome == apply_outcome::stale_publish) {
          frame.reason = "publish record with ids already used";
        } else {
          ++report_.records_replayed;
          report_.bytes_replayed += frame.size;
          applied = true;
        }
      }
    }
    if (applied) {
      offset += frame.size;
      report_progress(offset, false);
      continue;
    }
    // A bad record in a sealed segment (synced in full before the next began),
    // or anywhere in a log that was closed cleanly, is damage: skip to the next
    // good record if any follows. In the last segment after a crash it ends the
    // log. A power cut can keep any mix of the pages written after the last
    // sync, so good records after a bad one there were never confirmed; keeping
    // them would raise their producers' de-duplication marks over the
    // unreadable ones, and the resends of those would then be dropped.
    const auto next =
        offset + record_format::find_next_frame(
                     bytes.subspan(offset), context_.options.record_size_bytes_max, segment.number);
    if (next < size && (!is_last || closed_cleanly_)) {
      report_.corruptions.push_back({segment.path, offset, next - offset, frame.reason});
      segment.index_next_publish = true;
      offset = next;
      continue;
    }
    std::string reason =
        std::string(is_last ? "torn or corrupt tail: " : "corrupt tail of a sealed segment: ") +
        frame.reason;
    if (const auto intact =
            count_frames_from(bytes, next, context_.options.record_size_bytes_max, segment.number);
        intact != 0) {
      reason += "; " + std::to_string(intact) + " intact records after it go with it";
    }
    report_.truncations.push_back({segment.path, offset, size - offset, std::move(reason)});
    if (may_modify) {
      if (auto cut = context_.fs.truncate_file(segment.path, offset); !cut) return cut;
    }
    size = offset;
    break;
  }
  if (apply || segment.size == 0) segment.size = size;
  return {};
}

void log_recovery::remove_or_warn(const std::string& path) {
  if (auto removed = context_.fs.remove_file(path); !removed) {
    report_.warnings.push_back("could not remove " + path + ": " + removed.message());
  }
}

}  // namespace weir::detail

// The checkpoint log's contract: round trips, sync policies, segment rolls,
// snapshots and compaction, refusals of bad input, and behaviour on ENOSPC/EIO.

#include <boost/test/unit_test.hpp>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <future>
#include <map>
#include <mutex>
#include <thread>

#include "fault_injection_fs.hpp"
#include "log_model.hpp"
#include "page_cache.hpp"
#include "temp_dir.hpp"
#include "test_helpers.hpp"
#include "weir/runtime/checkpoint_log.hpp"
#include "weir/runtime/crc32c.hpp"

using namespace weir;
using namespace weir::testing;

namespace {

log_options small_segments() {
  log_options options;
  options.segment_bytes_max = 4096;
  options.snapshot_every_bytes = 0;
  return options;
}

std::vector<std::string> payloads(int count, const std::string& prefix, std::size_t size = 20) {
  std::vector<std::string> out;
  for (int i = 0; i < count; ++i) {
    auto text = prefix + std::to_string(i);
    text.resize(std::max(size, text.size()), '.');
    out.push_back(text);
  }
  return out;
}

/// Publishes `batches` batches of five, the k-th of `size + k * growth` bytes each;
/// returns every payload at its id (index 0 unused: ids start at 1).
std::vector<std::string> publish_batches(checkpoint_log& log, int batches, const std::string& tag,
                                         std::size_t size, std::size_t growth = 0) {
  std::vector<std::string> published{""};
  for (int batch = 0; batch < batches; ++batch) {
    auto p = payloads(5, tag + std::to_string(batch) + "-",
                      size + growth * static_cast<std::size_t>(batch));
    BOOST_REQUIRE(publish_and_wait(log, p));
    published.insert(published.end(), p.begin(), p.end());
  }
  return published;
}

std::size_t count_files(const std::string& dir, const std::string& suffix) {
  std::size_t n = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    if (entry.path().string().ends_with(suffix)) ++n;
  }
  return n;
}

std::vector<std::string> segment_paths(const std::string& dir) {
  std::vector<std::string> out;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    if (entry.path().filename().string().starts_with("segment-")) out.push_back(entry.path());
  }
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace

BOOST_AUTO_TEST_CASE(published_messages_read_back_after_reopen) {
  temp_dir dir;
  posix_file_system fs;
  log_model model;
  {
    auto log = checkpoint_log::open(fs, dir.path());
    BOOST_REQUIRE_MESSAGE(log, log.error().to_string());
    message_header header{"trace", "abc"};
    outgoing_message m;
    m.producer_id = 4;
    m.producer_epoch = 2;
    m.producer_seq = 9;
    m.key = "k1";
    m.payload = "first";
    m.headers = {&header, 1};
    m.publish_time_ns = 123456789;
    auto first = (*log)->publish({&m, 1}, {});
    BOOST_REQUIRE(first);
    BOOST_TEST(*first == 1u);
    model.publish({"first"});
    auto second = publish_and_wait(**log, {"a", "b", "c"});
    BOOST_REQUIRE(second);
    BOOST_TEST(*second == 2u);
    model.publish({"a", "b", "c"});
  }
  auto log = checkpoint_log::open(fs, dir.path());
  BOOST_REQUIRE(log);
  BOOST_TEST(compare_with_model(**log, model) == "");
  auto message = (*log)->read(1);
  BOOST_REQUIRE(message);
  BOOST_TEST(message->producer_id == 4u);
  BOOST_TEST(message->producer_epoch == 2u);
  BOOST_TEST(message->producer_seq == 9u);
  BOOST_TEST(message->key == "k1");
  BOOST_TEST(message->payload == "first");
  BOOST_REQUIRE(message->headers.size() == 1u);
  BOOST_TEST(message->headers[0].name == "trace");
  BOOST_TEST(message->headers[0].value == "abc");
  BOOST_TEST(message->publish_time_ns == 123456789);
  BOOST_TEST(!(*log)->recovery().found_damage());
}

BOOST_AUTO_TEST_CASE(acks_dead_letters_and_attempts_shape_the_ready_set) {
  temp_dir dir;
  posix_file_system fs;
  log_model model;
  {
    auto log = checkpoint_log::open(fs, dir.path());
    BOOST_REQUIRE(log);
    BOOST_REQUIRE(publish_and_wait(**log, payloads(10, "m")));
    model.publish(payloads(10, "m"));
    BOOST_REQUIRE(ack_and_wait(**log, 2, 5));
    model.ack(2, 5);
    dead_letter_entry poison{7, 5, "max_deliveries exceeded", "boom", "orders.dlq"};
    BOOST_REQUIRE(wait_durable([&](durable_callback done) {
      return (*log)->dead_letter({&poison, 1}, std::move(done));
    }));
    model.dead_letter(7);
    std::vector<delivery_attempt> attempts{{1, 2}, {9, 1}, {3, 4}};  // 3 is acked: ignored
    BOOST_REQUIRE(wait_durable(
        [&](durable_callback done) { return (*log)->record_attempts(attempts, std::move(done)); }));
    model.record_attempt(1, 2);
    model.record_attempt(9, 1);
    model.record_attempt(3, 4);
    BOOST_TEST(compare_with_model(**log, model) == "");
    BOOST_TEST((*log)->read(3).error().code() == errc::not_found);
  }
  auto log = checkpoint_log::open(fs, dir.path());
  BOOST_REQUIRE(log);
  BOOST_TEST(compare_with_model(**log, model) == "");
  const auto stats = (*log)->stats();
  BOOST_TEST(stats.ready == 6u);
  BOOST_TEST(stats.unacked == 2u);
  BOOST_TEST(stats.dead_lettered == 1u);
}

BOOST_AUTO_TEST_CASE(refuses_acks_and_dead_letters_for_ids_never_published) {
  temp_dir dir;
  posix_file_system fs;
  auto log = checkpoint_log::open(fs, dir.path());
  BOOST_REQUIRE(log);
  BOOST_REQUIRE(publish_and_wait(**log, payloads(3, "m")));
  id_range beyond{2, 10};
  auto refused = (*log)->ack({&beyond, 1}, {});
  BOOST_TEST(refused.code() == errc::invalid_argument);
  BOOST_TEST(refused.message().find("never published") != std::string::npos);
  id_range empty{3, 3};
  BOOST_TEST((*log)->ack({&empty, 1}, {}).code() == errc::invalid_argument);
  dead_letter_entry unknown{99, 1, "r", "", ""};
  BOOST_TEST((*log)->dead_letter({&unknown, 1}, {}).code() == errc::invalid_argument);
  BOOST_TEST((*log)->read(0).error().code() == errc::not_found);
  BOOST_TEST((*log)->read(4).error().code() == errc::not_found);
  BOOST_TEST((*log)->stats().acked == 0u);
}

BOOST_AUTO_TEST_CASE(refuses_a_record_larger_than_the_limit_without_using_ids) {
  temp_dir dir;
  posix_file_system fs;
  log_options options;
  options.record_size_bytes_max = 1024;
  auto log = checkpoint_log::open(fs, dir.path(), options);
  BOOST_REQUIRE(log);
  std::string big(2000, 'x');
  outgoing_message m;
  m.payload = big;
  auto refused = (*log)->publish({&m, 1}, {});
  BOOST_REQUIRE(!refused);
  BOOST_TEST(refused.error().code() == errc::invalid_argument);
  auto next = publish_and_wait(**log, {"small"});
  BOOST_REQUIRE(next);
  BOOST_TEST(*next == 1u);
}

BOOST_AUTO_TEST_CASE(segments_roll_and_reads_cross_them) {
  temp_dir dir;
  posix_file_system fs;
  log_model model;
  {
    auto log = checkpoint_log::open(fs, dir.path(), small_segments());
    BOOST_REQUIRE(log);
    for (int batch = 0; batch < 40; ++batch) {
      auto p = payloads(5, "b" + std::to_string(batch) + "-", 100);
      BOOST_REQUIRE(publish_and_wait(**log, p));
      model.publish(p);
    }
    BOOST_TEST((*log)->stats().segments >= 8u);
    BOOST_TEST(compare_with_model(**log, model) == "");
  }
  BOOST_TEST(count_files(dir.path(), ".wlog") >= 8u);
  auto log = checkpoint_log::open(fs, dir.path(), small_segments());
  BOOST_REQUIRE(log);
  BOOST_TEST(compare_with_model(**log, model) == "");
  // Random order, to exercise the index and not only the sequential cursor.
  for (std::uint64_t id : {150u, 3u, 77u, 200u, 1u, 101u}) {
    auto message = (*log)->read(id);
    BOOST_REQUIRE(message);
    BOOST_TEST(message->payload == model.payloads[id]);
  }
}

BOOST_AUTO_TEST_CASE(payloads_read_stay_valid_while_later_reads_move_on) {
  // Read payloads are slices of the record they came from: the log must not
  // reuse that buffer for the next record while one of them is still held.
  temp_dir dir;
  posix_file_system fs;
  auto log = checkpoint_log::open(fs, dir.path(), small_segments());
  BOOST_REQUIRE(log);
  const auto published = publish_batches(**log, 30, "r", 60, 10);
  std::vector<stored_message> held;
  for (std::uint64_t id = 1; id < published.size(); id += 3) {
    auto message = (*log)->read(id);
    BOOST_REQUIRE(message);
    held.push_back(std::move(*message));
    if (id % 2 == 0) held.erase(held.begin());  // some let go, so buffers are reused too
  }
  for (const auto& message : held) {
    BOOST_TEST(message.payload == published[message.id], "id " << message.id);
  }
}

BOOST_AUTO_TEST_CASE(read_many_answers_each_id_in_order_across_segments) {
  temp_dir dir;
  posix_file_system fs;
  auto log = checkpoint_log::open(fs, dir.path(), small_segments());
  BOOST_REQUIRE(log);
  const auto published = publish_batches(**log, 40, "b", 100);
  BOOST_REQUIRE(ack_and_wait(**log, 10, 20));
  std::vector<delivery_attempt> attempts{{30, 3}};
  BOOST_REQUIRE(wait_durable(
      [&](durable_callback done) { return (*log)->record_attempts(attempts, std::move(done)); }));

  // Acked (15), never published (201, 0), across segments and out of order.
  const std::vector<std::uint64_t> ids{5, 15, 199, 30, 201, 0, 120, 6, 31};
  auto messages = (*log)->read_many(ids);
  BOOST_REQUIRE_EQUAL(messages.size(), ids.size());
  for (std::size_t i = 0; i < ids.size(); ++i) {
    const auto id = ids[i];
    if (id == 15 || id == 201 || id == 0) {
      BOOST_TEST((!messages[i] && messages[i].error().code() == errc::not_found), "id " << id);
      continue;
    }
    BOOST_REQUIRE_MESSAGE(messages[i], "id " << id << ": " << messages[i].error().to_string());
    BOOST_TEST(messages[i]->payload == published[id]);
    BOOST_TEST(messages[i]->id == id);
    BOOST_TEST(messages[i]->attempts == (id == 30 ? 3u : 0u));
  }
}

BOOST_AUTO_TEST_CASE(sync_always_confirms_after_a_sync_that_covers_the_append) {
  temp_dir dir;
  posix_file_system base;
  fault_injection_fs fs(base);
  log_model model;
  {
    auto log = checkpoint_log::open(fs, dir.path());
    BOOST_REQUIRE(log);
    fs.set_sync_delay(std::chrono::milliseconds(20));
    std::atomic<int> confirmed{0};
    for (int i = 0; i < 200; ++i) {
      auto p = payloads(1, "c" + std::to_string(i));
      model.publish(p);
      std::vector<outgoing_message> batch(1);
      batch[0].payload = model.payloads[model.next_id - 1];
      BOOST_REQUIRE((*log)->publish(batch, [&](const status& s) {
        if (s) ++confirmed;
      }));
    }
    while (confirmed.load() < 200) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    // Group commit: appends queued behind a slow sync share the next one.
    BOOST_TEST((*log)->stats().syncs < 20u);
    BOOST_REQUIRE(fs.crash());
  }
  fs.restart();
  auto log = checkpoint_log::open(fs, dir.path());
  BOOST_REQUIRE(log);
  BOOST_TEST(compare_with_model(**log, model) == "");
}

BOOST_AUTO_TEST_CASE(sync_none_confirms_without_syncing_and_loses_the_tail_on_power_loss) {
  temp_dir dir;
  posix_file_system base;
  fault_injection_fs fs(base);
  log_options options;
  options.sync = *sync_policy::parse("none");
  {
    auto log = checkpoint_log::open(fs, dir.path(), options);
    BOOST_REQUIRE(log);
    const auto syncs_before = (*log)->stats().syncs;
    BOOST_REQUIRE(publish_and_wait(**log, payloads(10, "n")));
    BOOST_TEST((*log)->stats().syncs == syncs_before);
    BOOST_REQUIRE(fs.crash());
  }
  fs.restart();
  auto log = checkpoint_log::open(fs, dir.path(), options);
  BOOST_REQUIRE(log);
  BOOST_TEST((*log)->stats().published == 0u);
}

BOOST_AUTO_TEST_CASE(under_sync_always_appends_nobody_waits_for_ride_on_the_next_sync) {
  temp_dir dir;
  posix_file_system base;
  fault_injection_fs fs(base);
  log_options options;
  options.unwaited_sync_delay_max = std::chrono::seconds(60);  // only a waited append syncs
  log_model model;
  {
    auto log = checkpoint_log::open(fs, dir.path(), options);
    BOOST_REQUIRE(log);
    BOOST_REQUIRE(publish_and_wait(**log, payloads(10, "m")));
    model.publish(payloads(10, "m"));
    // Written with the next waited append: that sync makes this ack durable too.
    id_range carried{1, 4};
    BOOST_REQUIRE((*log)->ack({&carried, 1}, {}));
    BOOST_REQUIRE(publish_and_wait(**log, payloads(2, "n")));
    model.publish(payloads(2, "n"));
    model.ack(1, 4);
    // Not followed by a waited append: written, but no sync of its own.
    const auto syncs_before = (*log)->stats().syncs;
    id_range unsynced{4, 8};
    BOOST_REQUIRE((*log)->ack({&unsynced, 1}, {}));
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while ((*log)->stats().acked < 7u && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    BOOST_REQUIRE((*log)->stats().acked == 7u);
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    BOOST_TEST((*log)->stats().syncs == syncs_before);
    BOOST_REQUIRE(fs.crash());
  }
  // A power cut took the unsynced ack: those messages are delivered again.
  fs.restart();
  auto log = checkpoint_log::open(fs, dir.path(), options);
  BOOST_REQUIRE(log);
  BOOST_TEST(compare_with_model(**log, model) == "");
  BOOST_TEST((*log)->stats().ready == 9u);
}

BOOST_AUTO_TEST_CASE(under_sync_always_an_append_nobody_waits_for_is_synced_within_the_delay) {
  temp_dir dir;
  posix_file_system fs;
  log_options options;
  options.unwaited_sync_delay_max = std::chrono::milliseconds(200);
  auto log = checkpoint_log::open(fs, dir.path(), options);
  BOOST_REQUIRE(log);
  BOOST_REQUIRE(publish_and_wait(**log, payloads(5, "m")));
  const auto syncs_before = (*log)->stats().syncs;
  const auto acked_at = std::chrono::steady_clock::now();
  id_range range{1, 3};
  BOOST_REQUIRE((*log)->ack({&range, 1}, {}));
  while ((*log)->stats().syncs == syncs_before &&
         std::chrono::steady_clock::now() < acked_at + std::chrono::seconds(10)) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  const auto waited = std::chrono::steady_clock::now() - acked_at;
  BOOST_TEST((*log)->stats().syncs == syncs_before + 1);
  BOOST_TEST(waited >= std::chrono::milliseconds(200));
  BOOST_TEST(waited < std::chrono::seconds(5));
}

BOOST_AUTO_TEST_CASE(sync_interval_confirms_only_after_the_interval_sync) {
  temp_dir dir;
  posix_file_system fs;
  log_options options;
  options.sync = *sync_policy::parse("interval:50");
  auto log = checkpoint_log::open(fs, dir.path(), options);
  BOOST_REQUIRE(log);
  // Let the first interval pass so the next append is not synced at once.
  BOOST_REQUIRE(publish_and_wait(**log, {"warm-up"}));
  const auto started = std::chrono::steady_clock::now();
  BOOST_REQUIRE(publish_and_wait(**log, {"x"}));
  const auto waited = std::chrono::steady_clock::now() - started;
  BOOST_TEST(waited <= std::chrono::milliseconds(1000));
  BOOST_TEST((*log)->stats().syncs >= 2u);
}

BOOST_AUTO_TEST_CASE(sync_policy_parses_its_three_forms_and_rejects_others) {
  BOOST_TEST((sync_policy::parse("always")->kind == sync_policy::mode::always));
  BOOST_TEST((sync_policy::parse("none")->kind == sync_policy::mode::none));
  auto interval = sync_policy::parse("interval:25");
  BOOST_REQUIRE(interval);
  BOOST_TEST(interval->interval.count() == 25);
  BOOST_TEST(interval->to_string() == "interval:25");
  for (auto bad : {"", "sometimes", "interval:", "interval:0", "interval:-5", "interval:5ms"}) {
    auto parsed = sync_policy::parse(bad);
    BOOST_TEST(!parsed);
    BOOST_TEST(parsed.error().message().find("always, none, interval:<ms>") != std::string::npos);
  }
}

BOOST_AUTO_TEST_CASE(compaction_deletes_only_segments_whose_messages_are_all_done) {
  temp_dir dir;
  posix_file_system fs;
  log_model model;
  auto log = checkpoint_log::open(fs, dir.path(), small_segments());
  BOOST_REQUIRE(log);
  for (int batch = 0; batch < 60; ++batch) {
    auto p = payloads(4, "c" + std::to_string(batch) + "-", 100);
    BOOST_REQUIRE(publish_and_wait(**log, p));
    model.publish(p);
  }
  const auto segments_before = (*log)->stats().segments;
  // Ack everything except id 5 and the last 10 ids.
  BOOST_REQUIRE(ack_and_wait(**log, 1, 5));
  BOOST_REQUIRE(ack_and_wait(**log, 6, model.next_id - 10));
  model.ack(1, 5);
  model.ack(6, model.next_id - 10);
  // Two snapshots: compaction keeps what the previous snapshot needs.
  BOOST_REQUIRE((*log)->snapshot());
  BOOST_REQUIRE(publish_and_wait(**log, {"after"}));
  model.publish({"after"});
  BOOST_REQUIRE((*log)->snapshot());
  const auto segments_after = (*log)->stats().segments;
  BOOST_TEST(segments_after < segments_before);
  BOOST_TEST(compare_with_model(**log, model) == "");
  BOOST_TEST((*log)->read(5)->payload == model.payloads[5]);
  BOOST_TEST(count_files(dir.path(), ".wsnap") == 2u);
  log->reset();

  auto reopened = checkpoint_log::open(fs, dir.path(), small_segments());
  BOOST_REQUIRE(reopened);
  BOOST_TEST(compare_with_model(**reopened, model) == "");
  BOOST_TEST((*reopened)->recovery().snapshot_sequence.value_or(0) == 2u);
  BOOST_TEST(!(*reopened)->recovery().found_damage());
}

BOOST_AUTO_TEST_CASE(compacted_segment_files_are_written_over_by_later_segments) {
  temp_dir dir;
  posix_file_system fs;
  log_model model;
  auto options = small_segments();
  options.spare_segments_max = 2;
  auto log = checkpoint_log::open(fs, dir.path(), options);
  BOOST_REQUIRE(log);
  auto publish_round = [&](const std::string& tag) {
    for (int batch = 0; batch < 40; ++batch) {
      auto p = payloads(4, tag + std::to_string(batch) + "-", 100);
      BOOST_REQUIRE(publish_and_wait(**log, p));
      model.publish(p);
    }
  };
  publish_round("a");
  BOOST_REQUIRE(ack_and_wait(**log, 1, model.next_id));
  model.ack(1, model.next_id);
  // The first snapshot compacts every segment before its position.
  BOOST_REQUIRE((*log)->snapshot());
  // More segments were compacted than are kept: two files stay as spares.
  BOOST_TEST(count_files(dir.path(), ".wlog") - (*log)->stats().segments == 2u);
  BOOST_TEST((*log)->stats().segments_reused == 0u);

  publish_round("b");
  BOOST_TEST((*log)->stats().segments_reused == 2u);
  BOOST_TEST(count_files(dir.path(), ".wlog") == (*log)->stats().segments);
  BOOST_TEST(compare_with_model(**log, model) == "");
  log->reset();

  // A clean close cuts what followed the last record, so recovery finds no damage.
  auto reopened = checkpoint_log::open(fs, dir.path(), options);
  BOOST_REQUIRE(reopened);
  BOOST_TEST(compare_with_model(**reopened, model) == "");
  BOOST_TEST(!(*reopened)->recovery().found_damage());
  BOOST_TEST((*reopened)->recovery().warnings.empty());
}

BOOST_AUTO_TEST_CASE(delivered_messages_leave_the_page_cache_once_synced) {
  temp_dir dir;
  if (skipped_on_tmpfs(dir.path())) return;
  posix_file_system fs;
  for (const auto mode : {sync_policy::mode::always, sync_policy::mode::none}) {
    temp_dir log_dir;
    log_options options;
    options.segment_bytes_max = 1u << 20;
    options.sync = sync_policy{mode, {}};
    auto log = checkpoint_log::open(fs, log_dir.path(), options);
    BOOST_REQUIRE(log);
    const auto published = publish_batches(**log, 640, "m", 1000);  // 3.2 MB: four segments
    const auto segments = segment_paths(log_dir.path());
    BOOST_REQUIRE(segments.size() >= 4u);
    for (const auto& path : segments) {
      const auto [resident, pages] = resident_pages(path);
      BOOST_REQUIRE_MESSAGE(resident * 10 >= pages * 9,
                            path << ": " << resident << " of " << pages << " pages in memory");
    }
    // Delivered up to the middle (of the second segment): the next sync lets the bytes before go.
    (*log)->release_cached_below(published.size() / 2);
    BOOST_REQUIRE(publish_and_wait(**log, {"after"}));
    // The writer lets them go after it confirmed the sync: wait for it, boundedly.
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(2);
    while (mode == sync_policy::mode::always && resident_pages(segments[0]).first != 0 &&
           std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    const auto first = resident_pages(segments[0]);
    const auto last = resident_pages(segments.back());
    if (mode == sync_policy::mode::always) {
      BOOST_TEST(first.first == 0u);
      const auto middle = resident_pages(segments[1]);  // its first part went
      BOOST_TEST(middle.first * 10 < middle.second * 9);
      BOOST_TEST(middle.first > 0u);
    } else {
      // Unsynced bytes are never dropped: the hint must not start a writeback.
      BOOST_TEST(first.first * 10 >= first.second * 9);
    }
    BOOST_TEST(last.first * 10 >= last.second * 9);  // not yet delivered
    if (mode == sync_policy::mode::always) {
      // Delivered past the second segment: the rest of it goes too, though less
      // than a drop step (1 MiB) is left of it.
      (*log)->release_cached_below(published.size() * 3 / 4);
      BOOST_REQUIRE(publish_and_wait(**log, {"later"}));
      const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(2);
      while (resident_pages(segments[1]).first != 0 && std::chrono::steady_clock::now() < until) {
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
      }
      BOOST_TEST(resident_pages(segments[1]).first == 0u);
    }
    // Read back from the disk, the same bytes.
    for (std::uint64_t id = 1; id < published.size(); id += 97) {
      auto message = (*log)->read(id);
      BOOST_REQUIRE(message);
      BOOST_TEST(message->payload == published[id]);
    }
  }
}

BOOST_AUTO_TEST_CASE(spares_beyond_the_limit_are_deleted_at_open_and_none_are_kept_at_zero) {
  temp_dir dir;
  posix_file_system fs;
  auto spare_files = [&] {
    std::size_t n = 0;
    for (const auto& entry : std::filesystem::directory_iterator(dir.path())) {
      if (entry.path().filename().string().starts_with("spare-")) ++n;
    }
    return n;
  };
  auto compact_a_round = [&](checkpoint_log& log, const std::string& tag) {
    const auto first = log.stats().next_id;
    publish_batches(log, 40, tag, 100);
    BOOST_REQUIRE(ack_and_wait(log, first, log.stats().next_id));
    BOOST_REQUIRE(log.snapshot());
    BOOST_REQUIRE(publish_and_wait(log, {"x"}));
    BOOST_REQUIRE(log.snapshot());
  };
  auto options = small_segments();
  {
    auto log = checkpoint_log::open(fs, dir.path(), options);
    BOOST_REQUIRE(log);
    compact_a_round(**log, "a");
    BOOST_TEST(spare_files() == options.spare_segments_max);
  }
  options.spare_segments_max = 1;
  {
    auto log = checkpoint_log::open(fs, dir.path(), options);
    BOOST_REQUIRE(log);
    BOOST_TEST(spare_files() == 1u);
    BOOST_TEST((*log)->recovery().warnings.empty());
  }
  options.spare_segments_max = 0;
  auto log = checkpoint_log::open(fs, dir.path(), options);
  BOOST_REQUIRE(log);
  BOOST_TEST(spare_files() == 0u);
  compact_a_round(**log, "b");
  BOOST_TEST(spare_files() == 0u);
  BOOST_TEST((*log)->stats().segments_reused == 0u);
}

BOOST_AUTO_TEST_CASE(enospc_mid_batch_fails_the_batch_and_the_log_carries_on) {
  temp_dir dir;
  posix_file_system base;
  fault_injection_fs fs(base);
  log_model model;
  {
    auto log = checkpoint_log::open(fs, dir.path());
    BOOST_REQUIRE(log);
    BOOST_REQUIRE(publish_and_wait(**log, payloads(5, "ok")));
    model.publish(payloads(5, "ok"));
    fs.fail_writes_after(100, errc::no_space);
    auto failed = publish_and_wait(**log, payloads(20, "lost", 50));
    BOOST_REQUIRE(!failed);
    BOOST_TEST(failed.error().code() == errc::no_space);
    BOOST_TEST(failed.error().message().find("No space left on device") != std::string::npos);
    BOOST_TEST((*log)->stats().append_errors == 1u);
    BOOST_TEST(compare_with_model(**log, model) == "");

    fs.clear_faults();
    auto resumed = publish_and_wait(**log, payloads(3, "again"));
    BOOST_REQUIRE(resumed);
    BOOST_TEST(*resumed == 6u);  // ids stay dense: the failed batch used none
    model.publish(payloads(3, "again"));
    BOOST_REQUIRE(fs.crash());
  }
  fs.restart();
  auto log = checkpoint_log::open(fs, dir.path());
  BOOST_REQUIRE(log);
  BOOST_TEST(compare_with_model(**log, model) == "");
  BOOST_TEST(!(*log)->recovery().found_damage());
}

BOOST_AUTO_TEST_CASE(a_publish_expecting_the_ids_a_failed_append_gave_back_is_refused) {
  // A failed append's ids go to the next publish. A caller that has not yet
  // heard of the failure says which first id it expects, and is refused: else a
  // producer's later messages would be stored without its earlier ones.
  temp_dir dir;
  posix_file_system base;
  fault_injection_fs fs(base);
  auto log = checkpoint_log::open(fs, dir.path());
  BOOST_REQUIRE(log);
  auto first = publish_and_wait(**log, payloads(3, "ok"));
  BOOST_REQUIRE(first);
  BOOST_TEST(*first == 1u);
  fs.fail_one_write_after(0, errc::no_space);
  std::vector<outgoing_message> failing(5);
  for (auto& m : failing) m.payload = "lost";
  std::promise<status> failed;
  auto assigned = (*log)->publish(failing, [&](const status& s) { failed.set_value(s); }, 4);
  BOOST_REQUIRE(assigned);
  BOOST_TEST(*assigned == 4u);
  BOOST_TEST(failed.get_future().get().code() == errc::no_space);

  // The caller still expects 9; the disk has space again, but 9 is not where ids resume.
  outgoing_message next;
  next.payload = "next";
  auto refused = (*log)->publish({&next, 1}, {}, 9);
  BOOST_REQUIRE(!refused);
  BOOST_TEST(refused.error().code() == errc::no_space);
  BOOST_TEST(refused.error().message().find("ids resume at 4") != std::string::npos,
             refused.error().message());
  BOOST_TEST((*log)->stats().next_id == 4u);

  // Told of the failure, the caller expects 4, and the ids stay dense.
  auto resumed = wait_durable([&](durable_callback done) {
    auto id = (*log)->publish({&next, 1}, std::move(done), 4);
    return id ? status{} : id.error();
  });
  BOOST_TEST(resumed.is_ok(), resumed.to_string());
  BOOST_TEST((*log)->stats().next_id == 5u);
  auto stored = (*log)->read(4);
  BOOST_REQUIRE(stored);
  BOOST_TEST(stored->payload == "next");
}

BOOST_AUTO_TEST_CASE(a_failed_fsync_fails_the_log_until_it_is_reopened) {
  temp_dir dir;
  posix_file_system base;
  fault_injection_fs fs(base);
  log_model model;
  {
    auto log = checkpoint_log::open(fs, dir.path());
    BOOST_REQUIRE(log);
    BOOST_REQUIRE(publish_and_wait(**log, payloads(2, "ok")));
    model.publish(payloads(2, "ok"));
    BOOST_TEST((*log)->failure().is_ok());
    fs.fail_syncs(1, errc::io_error);
    auto failed = publish_and_wait(**log, {"doubtful"});
    BOOST_REQUIRE(!failed);
    BOOST_TEST(failed.error().code() == errc::io_error);
    BOOST_TEST((*log)->stats().sync_errors == 1u);
    BOOST_TEST((*log)->failure().message().find("fdatasync failed") != std::string::npos);
    auto refused = publish_and_wait(**log, {"after"});
    BOOST_REQUIRE(!refused);
    BOOST_TEST(refused.error().code() == errc::closed);
    BOOST_TEST(refused.error().message().find("fdatasync failed") != std::string::npos);
    BOOST_REQUIRE(fs.crash());
  }
  fs.restart();
  auto log = checkpoint_log::open(fs, dir.path());
  BOOST_REQUIRE(log);
  BOOST_TEST(compare_with_model(**log, model) == "");
  BOOST_TEST(publish_and_wait(**log, {"works again"}).has_value());
}

BOOST_AUTO_TEST_CASE(read_only_open_changes_nothing_and_refuses_appends) {
  temp_dir dir;
  posix_file_system fs;
  {
    auto log = checkpoint_log::open(fs, dir.path());
    BOOST_REQUIRE(log);
    BOOST_REQUIRE(publish_and_wait(**log, payloads(3, "m")));
  }
  log_options options;
  options.read_only = true;
  auto log = checkpoint_log::open(fs, dir.path(), options);
  BOOST_REQUIRE(log);
  BOOST_TEST((*log)->stats().ready == 3u);
  BOOST_TEST((*log)->read(2)->payload == payloads(3, "m")[1]);
  auto refused = publish_and_wait(**log, {"x"});
  BOOST_REQUIRE(!refused);
  BOOST_TEST(refused.error().code() == errc::closed);
  BOOST_TEST((*log)->snapshot().code() == errc::closed);

  auto missing = checkpoint_log::open(fs, dir.file("nope"), options);
  BOOST_REQUIRE(!missing);
  BOOST_TEST(missing.error().code() == errc::not_found);
  BOOST_TEST(missing.error().message().find(dir.file("nope")) != std::string::npos);
}

BOOST_AUTO_TEST_CASE(a_directory_of_another_format_version_is_refused_by_name) {
  temp_dir dir;
  posix_file_system fs;
  {
    auto log = checkpoint_log::open(fs, dir.path());
    BOOST_REQUIRE(log);
    BOOST_REQUIRE(publish_and_wait(**log, {"m"}));
  }
  const auto segment = dir.file("segment-00000000000000000001.wlog");
  // Rewrite the header as version 9 with a valid header checksum.
  {
    std::fstream file(segment, std::ios::in | std::ios::out | std::ios::binary);
    file.seekp(8);
    const char version9[4] = {9, 0, 0, 0};
    file.write(version9, 4);
  }
  // The header crc now mismatches too; a future version would write a valid one,
  // so fix it up the way such a writer would.
  {
    std::fstream file(segment, std::ios::in | std::ios::out | std::ios::binary);
    char header[12];
    file.read(header, 12);
    const auto crc = crc32c::value(header, 12);
    char crc_bytes[4] = {char(crc), char(crc >> 8), char(crc >> 16), char(crc >> 24)};
    file.seekp(12);
    file.write(crc_bytes, 4);
  }
  auto log = checkpoint_log::open(fs, dir.path());
  BOOST_REQUIRE(!log);
  BOOST_TEST(log.error().code() == errc::version_mismatch);
  BOOST_TEST(log.error().message().find(segment) != std::string::npos);
  BOOST_TEST(log.error().message().find("version 9") != std::string::npos);
  BOOST_TEST(file_size_of(segment) > 16u);  // nothing was truncated
}

BOOST_AUTO_TEST_CASE(an_unreadable_directory_is_an_error_not_a_crash) {
  temp_dir dir;
  posix_file_system fs;
  // A file where the directory should be.
  { std::ofstream(dir.file("not-a-dir")) << "x"; }
  auto log = checkpoint_log::open(fs, dir.file("not-a-dir"));
  BOOST_REQUIRE(!log);
  BOOST_TEST(log.error().message().find("not-a-dir") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(enospc_inside_a_group_commit_batch_keeps_exactly_the_confirmed_appends) {
  temp_dir dir;
  posix_file_system base;
  fault_injection_fs fs(base);
  std::mutex mutex;
  std::map<std::uint64_t, std::string> confirmed;  // first id -> payload
  std::atomic<int> failed{0};
  std::atomic<int> finished{0};
  {
    auto log = checkpoint_log::open(fs, dir.path());
    BOOST_REQUIRE(log);
    // Queue many appends at once so the writer takes them as one batch, and
    // let the disk fill up part-way through it.
    fs.fail_writes_after(20'000, errc::no_space);
    fs.set_sync_delay(std::chrono::milliseconds(20));
    const int appends = 400;
    const auto syncs_before = (*log)->stats().syncs;
    for (int i = 0; i < appends; ++i) {
      auto payload =
          std::make_shared<std::string>("payload-" + std::to_string(i) + std::string(100, 'x'));
      outgoing_message m;
      m.payload = *payload;
      auto first = std::make_shared<std::atomic<std::uint64_t>>(0);
      auto published = (*log)->publish({&m, 1}, [&, first, payload](const status& s) {
        if (s) {
          while (first->load() == 0) std::this_thread::yield();
          std::lock_guard lock(mutex);
          confirmed[first->load()] = *payload;
        } else {
          BOOST_CHECK_EQUAL(s.code(), errc::no_space);
          ++failed;
        }
        ++finished;
      });
      BOOST_REQUIRE(published);
      first->store(*published);
    }
    while (finished.load() < appends) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    BOOST_TEST(failed.load() > 0);
    BOOST_TEST(confirmed.size() > 0u);
    // They really were one group commit (or very few), not one sync each.
    BOOST_TEST((*log)->stats().syncs - syncs_before < 20u);
    BOOST_REQUIRE(fs.crash());
  }
  fs.restart();
  auto log = checkpoint_log::open(fs, dir.path());
  BOOST_REQUIRE_MESSAGE(log, log.error().to_string());
  BOOST_TEST(!(*log)->recovery().found_damage());
  // Exactly the confirmed appends, with dense ids from 1.
  BOOST_TEST((*log)->stats().published == confirmed.size());
  std::uint64_t expected_id = 1;
  for (const auto& [id, payload] : confirmed) {
    BOOST_TEST(id == expected_id++);
    auto message = (*log)->read(id);
    BOOST_REQUIRE(message);
    BOOST_TEST(message->payload == payload);
  }
}

BOOST_AUTO_TEST_CASE(producer_positions_survive_reopen_and_snapshots) {
  temp_dir dir;
  posix_file_system fs;
  auto publish_from = [](checkpoint_log& log, std::uint64_t producer, std::uint64_t epoch,
                         std::uint64_t first_seq, int count) {
    std::vector<outgoing_message> batch(count);
    for (int i = 0; i < count; ++i) {
      batch[i].producer_id = producer;
      batch[i].producer_epoch = epoch;
      batch[i].producer_seq = first_seq + i;
      batch[i].payload = "p";
    }
    return wait_durable([&](durable_callback done) {
      auto first = log.publish(batch, std::move(done));
      return first ? status{} : first.error();
    });
  };
  {
    auto log = checkpoint_log::open(fs, dir.path(), small_segments());
    BOOST_REQUIRE(log);
    BOOST_REQUIRE(publish_from(**log, 7, 1, 1, 10));
    BOOST_REQUIRE(publish_from(**log, 8, 3, 100, 5));
    BOOST_REQUIRE(ack_and_wait(**log, 1, 16));
    BOOST_REQUIRE((*log)->snapshot());
    BOOST_REQUIRE(publish_from(**log, 7, 2, 1, 2));  // a new epoch restarts its sequence
    BOOST_REQUIRE((*log)->snapshot());
    BOOST_TEST(!(*log)->producer(9).has_value());
  }
  auto log = checkpoint_log::open(fs, dir.path(), small_segments());
  BOOST_REQUIRE(log);
  BOOST_TEST((*log)->recovery().snapshot_sequence.value_or(0) == 2u);
  auto seven = (*log)->producer(7);
  BOOST_REQUIRE(seven);
  BOOST_TEST(seven->epoch == 2u);
  BOOST_TEST(seven->last_seq == 2u);
  auto eight = (*log)->producer(8);
  BOOST_REQUIRE(eight);  // all its messages are acked and compacted, its position is not
  BOOST_TEST(eight->epoch == 3u);
  BOOST_TEST(eight->last_seq == 104u);
}

BOOST_AUTO_TEST_CASE(a_directory_has_one_writer_at_a_time) {
  temp_dir dir;
  posix_file_system fs;
  auto first = checkpoint_log::open(fs, dir.path());
  BOOST_REQUIRE(first);
  auto second = checkpoint_log::open(fs, dir.path());
  BOOST_REQUIRE(!second);
  BOOST_TEST(second.error().code() == errc::in_use);
  BOOST_TEST(second.error().message().find(dir.file("LOCK")) != std::string::npos);
  // Reading (weir inspect) is allowed meanwhile.
  log_options read_only;
  read_only.read_only = true;
  auto reader = checkpoint_log::open(fs, dir.path(), read_only);
  BOOST_REQUIRE(reader);
  BOOST_TEST((*reader)->recovery().warnings.empty());
  first->reset();
  BOOST_TEST(checkpoint_log::open(fs, dir.path()).has_value());
}

// A consumer must never see a message that a crash could take back: ids
// written but not yet synced are not ready, under any policy that syncs.
BOOST_AUTO_TEST_CASE(a_message_is_ready_only_once_durable) {
  for (const char* policy : {"always", "interval:20", "none"}) {
    BOOST_TEST_CONTEXT("sync " << policy) {
      temp_dir dir;
      posix_file_system base;
      fault_injection_fs fs(base);
      auto options = small_segments();
      options.sync = *sync_policy::parse(policy);
      auto log = checkpoint_log::open(fs, dir.path(), options);
      BOOST_REQUIRE(log);
      BOOST_REQUIRE(publish_and_wait(**log, payloads(3, "synced")));
      auto ready_count = [&] {
        std::size_t n = 0;
        (*log)->for_each_ready(1, SIZE_MAX, [&](std::uint64_t, std::uint32_t) { ++n; });
        return n;
      };
      BOOST_TEST(ready_count() == 3u);

      fs.hold_syncs_of(".wlog");
      std::vector<outgoing_message> batch(2);
      batch[0].payload = "held-1";
      batch[1].payload = "held-2";
      std::atomic<bool> durable{false};
      BOOST_REQUIRE((*log)->publish(batch, [&](const status& s) { durable = s.is_ok(); }));
      if (std::string_view(policy) == "none") {
        BOOST_REQUIRE(eventually([&] { return durable.load(); }));  // no sync to wait for
        BOOST_TEST(ready_count() == 5u);
        fs.release_held_syncs();
        continue;
      }
      BOOST_REQUIRE(eventually([&] { return fs.held_syncs() >= 1u; }));
      BOOST_TEST((*log)->stats().next_id == 6u);  // written
      BOOST_TEST(ready_count() == 3u);            // but not deliverable
      fs.release_held_syncs();
      BOOST_REQUIRE(eventually([&] { return durable.load(); }));
      BOOST_TEST(ready_count() == 5u);
    }
  }
}

BOOST_AUTO_TEST_CASE(appends_flow_while_a_snapshot_is_written_and_recovery_uses_it) {
  for (const char* policy : {"always", "none"}) {
    BOOST_TEST_CONTEXT("sync " << policy) {
      temp_dir dir;
      posix_file_system base;
      fault_injection_fs fs(base);
      auto options = small_segments();
      options.sync = *sync_policy::parse(policy);
      log_model model;
      auto log = checkpoint_log::open(fs, dir.path(), options);
      BOOST_REQUIRE(log);
      for (int batch = 0; batch < 40; ++batch) {
        auto p = payloads(4, "b" + std::to_string(batch) + "-", 100);
        BOOST_REQUIRE(publish_and_wait(**log, p));
        model.publish(p);
      }
      BOOST_REQUIRE(ack_and_wait(**log, 1, 81));
      model.ack(1, 81);
      const auto segments_before = (*log)->stats().segments;

      // The snapshot's fsync stalls; the log's own files are not held.
      fs.hold_syncs_of(".wsnap.tmp");
      auto snapshot = std::async(std::launch::async, [&] { return (*log)->snapshot(); });
      BOOST_REQUIRE(eventually([&] { return fs.held_syncs() == 1; }));
      for (int batch = 0; batch < 30; ++batch) {
        auto p = payloads(4, "during" + std::to_string(batch) + "-", 100);
        BOOST_REQUIRE(publish_and_wait(**log, p));  // its callback fired
        model.publish(p);
      }
      BOOST_REQUIRE(ack_and_wait(**log, 81, 90));
      model.ack(81, 90);
      // All of that happened with the snapshot still in flight.
      BOOST_TEST((snapshot.wait_for(std::chrono::seconds(0)) == std::future_status::timeout));
      BOOST_TEST((*log)->stats().snapshots == 0u);
      BOOST_TEST((*log)->stats().segments > segments_before);  // rolled meanwhile

      fs.release_held_syncs();
      BOOST_REQUIRE(snapshot.get());
      BOOST_TEST((*log)->stats().snapshots == 1u);
      BOOST_TEST(count_files(dir.path(), ".wsnap") == 1u);
      BOOST_TEST(compare_with_model(**log, model) == "");
      BOOST_REQUIRE((*log)->sync());
      log->reset();

      auto reopened = checkpoint_log::open(fs, dir.path(), options);
      BOOST_REQUIRE(reopened);
      const auto& report = (*reopened)->recovery();
      BOOST_TEST(report.snapshot_sequence.value_or(0) == 1u);
      BOOST_TEST(report.records_replayed >= 31u);  // what was appended while it was written
      BOOST_TEST(!report.found_damage());
      BOOST_TEST(report.warnings.empty());
      BOOST_TEST(compare_with_model(**reopened, model) == "");
      // The segments acked before the capture were compacted.
      BOOST_TEST(report.segments.front().first_id > 1u);
    }
  }
}

BOOST_AUTO_TEST_CASE(automatic_snapshots_run_one_at_a_time_without_holding_up_appends) {
  temp_dir dir;
  posix_file_system base;
  fault_injection_fs fs(base);
  auto options = small_segments();
  options.snapshot_every_bytes = 2048;
  log_model model;
  auto log = checkpoint_log::open(fs, dir.path(), options);
  BOOST_REQUIRE(log);
  fs.hold_syncs_of(".wsnap.tmp");
  for (int batch = 0; batch < 60; ++batch) {
    auto p = payloads(4, "a" + std::to_string(batch) + "-", 100);
    BOOST_REQUIRE(publish_and_wait(**log, p));
    model.publish(p);
  }
  // Many triggers came while the first snapshot was held: none started a second.
  BOOST_REQUIRE(eventually([&] { return fs.held_syncs() >= 1u; }));
  BOOST_TEST(fs.held_syncs() == 1u);
  BOOST_TEST((*log)->stats().snapshots == 0u);
  fs.release_held_syncs();
  BOOST_REQUIRE(eventually([&] { return (*log)->stats().snapshots >= 1u; }));
  BOOST_REQUIRE(ack_and_wait(**log, 1, model.next_id));
  model.ack(1, model.next_id);
  for (int batch = 0; batch < 20; ++batch) {
    auto p = payloads(4, "z" + std::to_string(batch) + "-", 100);
    BOOST_REQUIRE(publish_and_wait(**log, p));
    model.publish(p);
  }
  BOOST_REQUIRE(eventually([&] { return (*log)->stats().snapshots >= 3u; }));
  BOOST_TEST(compare_with_model(**log, model) == "");
  log->reset();  // waits for a snapshot still in flight

  auto reopened = checkpoint_log::open(fs, dir.path(), options);
  BOOST_REQUIRE(reopened);
  BOOST_TEST((*reopened)->recovery().snapshot_sequence.has_value());
  BOOST_TEST(!(*reopened)->recovery().found_damage());
  BOOST_TEST(count_files(dir.path(), ".wsnap") <= 2u);
  BOOST_TEST(compare_with_model(**reopened, model) == "");
}

BOOST_AUTO_TEST_CASE(a_power_cut_while_a_snapshot_is_written_keeps_every_confirmed_append) {
  temp_dir dir;
  posix_file_system base;
  fault_injection_fs fs(base);
  const auto options = small_segments();
  log_model model;
  {
    auto log = checkpoint_log::open(fs, dir.path(), options);
    BOOST_REQUIRE(log);
    for (int batch = 0; batch < 20; ++batch) {
      auto p = payloads(4, "p" + std::to_string(batch) + "-", 100);
      BOOST_REQUIRE(publish_and_wait(**log, p));
      model.publish(p);
    }
    BOOST_REQUIRE(ack_and_wait(**log, 1, 41));
    model.ack(1, 41);
    BOOST_REQUIRE((*log)->snapshot());
    BOOST_REQUIRE(ack_and_wait(**log, 41, 61));
    model.ack(41, 61);

    fs.hold_syncs_of(".wsnap.tmp");
    auto snapshot = std::async(std::launch::async, [&] { return (*log)->snapshot(); });
    BOOST_REQUIRE(eventually([&] { return fs.held_syncs() == 1; }));
    for (int batch = 0; batch < 10; ++batch) {
      auto p = payloads(4, "q" + std::to_string(batch) + "-", 100);
      BOOST_REQUIRE(publish_and_wait(**log, p));
      model.publish(p);
    }
    BOOST_REQUIRE(fs.crash());
    fs.release_held_syncs();
    BOOST_TEST(!snapshot.get());  // its fsync met the power cut
  }
  fs.restart();
  auto log = checkpoint_log::open(fs, dir.path(), options);
  BOOST_REQUIRE(log);
  BOOST_TEST((*log)->recovery().snapshot_sequence.value_or(0) == 1u);
  BOOST_TEST(compare_with_model(**log, model) == "");
  BOOST_TEST(count_files(dir.path(), ".tmp") == 0u);
}

#include "fault_injection_fs.hpp"

#include <boost/test/unit_test.hpp>

#include <atomic>
#include <ostream>
#include <string>
#include <thread>
#include <vector>

#include "temp_dir.hpp"
#include "test_helpers.hpp"

using weir::errc;
using weir::testing::fault_injection_fs;
using weir::testing::temp_dir;

namespace {

std::span<const std::byte> as_bytes(const std::string& s) {
  return std::as_bytes(std::span<const char>(s.data(), s.size()));
}

// Contents as they are on the real disk, bypassing the wrapper.
std::string disk_contents(const std::string& path) {
  weir::posix_file_system fs;
  return weir::testing::read_all(fs, path);
}

bool on_disk(const std::string& path) {
  weir::posix_file_system fs;
  return *fs.exists(path);
}

struct fixture {
  temp_dir dir;
  weir::posix_file_system posix;
  fault_injection_fs fs{posix};

  std::unique_ptr<weir::writable_file> open(const std::string& name) {
    auto file = fs.open_for_append(dir.file(name));
    BOOST_REQUIRE_MESSAGE(file, file.error().to_string());
    return std::move(*file);
  }
};

}  // namespace

BOOST_FIXTURE_TEST_CASE(a_crash_keeping_random_pages_zeroes_whole_unsynced_pages, fixture) {
  // 100 synced bytes, then unsynced ones to 5 pages: the rest of the first
  // page (from byte 100) and four whole pages, each filled with its number.
  std::string written(5 * 4096, '\0');
  for (std::size_t i = 0; i < written.size(); ++i) written[i] = char('1' + i / 4096);
  int zeroed = 0, kept = 0;
  for (std::uint64_t seed = 1; seed <= 8; ++seed) {
    const auto name = "seg" + std::to_string(seed);
    {
      auto file = open(name);
      BOOST_REQUIRE(fs.sync_dir(dir.path()).is_ok());
      BOOST_REQUIRE(file->append(as_bytes(written.substr(0, 100))).is_ok());
      BOOST_REQUIRE(file->sync().is_ok());
      BOOST_REQUIRE(file->append(as_bytes(written.substr(100))).is_ok());
    }
    BOOST_REQUIRE(fs.crash_keeping_random_pages(seed).is_ok());
    fs.restart();
    const auto after = disk_contents(dir.file(name));
    BOOST_REQUIRE_EQUAL(after.size(), written.size());
    BOOST_TEST(after.substr(0, 100) == written.substr(0, 100));
    for (std::size_t begin = 100; begin < written.size(); begin = (begin / 4096 + 1) * 4096) {
      const auto end = (begin / 4096 + 1) * 4096;
      const auto part = after.substr(begin, end - begin);
      if (part == written.substr(begin, end - begin)) {
        ++kept;
      } else {
        BOOST_TEST(part == std::string(end - begin, '\0'), "page " << begin / 4096);
        ++zeroed;
      }
    }
  }
  BOOST_TEST(zeroed > 5);
  BOOST_TEST(kept > 5);
}

BOOST_FIXTURE_TEST_CASE(crash_drops_unsynced_bytes_keeps_synced, fixture) {
  auto file = open("seg");
  BOOST_REQUIRE(fs.sync_dir(dir.path()).is_ok());
  BOOST_REQUIRE(file->append(as_bytes("durable|")).is_ok());
  BOOST_REQUIRE(file->sync().is_ok());
  BOOST_REQUIRE(file->append(as_bytes("volatile")).is_ok());
  BOOST_TEST(disk_contents(dir.file("seg")) == "durable|volatile");
  BOOST_TEST(fs.sync_count() == 2u);
  BOOST_TEST(fs.appended_bytes() == 16u);

  BOOST_REQUIRE(fs.crash().is_ok());
  BOOST_TEST(disk_contents(dir.file("seg")) == "durable|");
}

BOOST_FIXTURE_TEST_CASE(keep_unsynced_bytes_models_a_torn_write, fixture) {
  auto file = open("seg");
  BOOST_REQUIRE(fs.sync_dir(dir.path()).is_ok());
  BOOST_REQUIRE(file->append(as_bytes("abc")).is_ok());
  BOOST_REQUIRE(file->sync().is_ok());
  BOOST_REQUIRE(file->append(as_bytes("defgh")).is_ok());
  BOOST_REQUIRE(fs.crash(2).is_ok());
  BOOST_TEST(disk_contents(dir.file("seg")) == "abcde");
}

BOOST_FIXTURE_TEST_CASE(keep_more_than_unsynced_keeps_everything, fixture) {
  auto file = open("seg");
  BOOST_REQUIRE(fs.sync_dir(dir.path()).is_ok());
  BOOST_REQUIRE(file->append(as_bytes("abc")).is_ok());
  BOOST_REQUIRE(fs.crash(100).is_ok());
  BOOST_TEST(disk_contents(dir.file("seg")) == "abc");
}

BOOST_FIXTURE_TEST_CASE(preexisting_file_counts_as_synced, fixture) {
  {
    auto file = weir::posix_file_system().open_for_append(dir.file("old"));
    BOOST_REQUIRE(file);
    BOOST_REQUIRE((*file)->append(as_bytes("before")).is_ok());
  }
  auto file = open("old");
  BOOST_REQUIRE(file->append(as_bytes("+after")).is_ok());
  BOOST_REQUIRE(fs.crash().is_ok());
  BOOST_TEST(disk_contents(dir.file("old")) == "before");
}

BOOST_FIXTURE_TEST_CASE(new_file_survives_only_if_its_dir_was_synced, fixture) {
  auto early = open("early");
  BOOST_REQUIRE(early->append(as_bytes("x")).is_ok());
  BOOST_REQUIRE(early->sync().is_ok());  // data synced; the name waits for sync_dir

  auto kept = open("kept");
  BOOST_REQUIRE(kept->append(as_bytes("y")).is_ok());
  BOOST_REQUIRE(kept->sync().is_ok());
  BOOST_REQUIRE(fs.sync_dir(dir.path() + "/").is_ok());  // trailing slash is the same dir

  auto late = open("late");  // created after the dir sync
  BOOST_REQUIRE(fs.crash().is_ok());
  BOOST_TEST(!on_disk(dir.file("late")));
  BOOST_TEST(disk_contents(dir.file("early")) == "x");  // created before the dir sync
  BOOST_TEST(disk_contents(dir.file("kept")) == "y");
}

BOOST_FIXTURE_TEST_CASE(file_in_unsynced_dir_disappears, fixture) {
  auto file = open("never");
  BOOST_REQUIRE(file->append(as_bytes("data")).is_ok());
  BOOST_REQUIRE(file->sync().is_ok());
  BOOST_REQUIRE(fs.create_dirs(dir.file("sub")).is_ok());
  auto other = open("sub/seg");
  BOOST_REQUIRE(fs.sync_dir(dir.file("sub")).is_ok());  // a different directory
  BOOST_REQUIRE(fs.crash().is_ok());
  BOOST_TEST(!on_disk(dir.file("never")));
  BOOST_TEST(on_disk(dir.file("sub/seg")));
}

BOOST_FIXTURE_TEST_CASE(rename_not_dir_synced_is_undone, fixture) {
  auto tmp = open("snap.tmp");
  BOOST_REQUIRE(fs.sync_dir(dir.path()).is_ok());
  BOOST_REQUIRE(tmp->append(as_bytes("snapshot")).is_ok());
  BOOST_REQUIRE(tmp->sync().is_ok());
  tmp.reset();
  BOOST_REQUIRE(fs.rename_file(dir.file("snap.tmp"), dir.file("snap")).is_ok());
  BOOST_TEST(on_disk(dir.file("snap")));
  BOOST_REQUIRE(fs.crash().is_ok());
  BOOST_TEST(!on_disk(dir.file("snap")));
}

BOOST_FIXTURE_TEST_CASE(rename_dir_synced_survives, fixture) {
  auto tmp = open("snap.tmp");
  BOOST_REQUIRE(tmp->append(as_bytes("snapshot")).is_ok());
  BOOST_REQUIRE(tmp->sync().is_ok());
  tmp.reset();
  BOOST_REQUIRE(fs.rename_file(dir.file("snap.tmp"), dir.file("snap")).is_ok());
  BOOST_REQUIRE(fs.sync_dir(dir.path()).is_ok());
  BOOST_REQUIRE(fs.crash().is_ok());
  BOOST_TEST(disk_contents(dir.file("snap")) == "snapshot");
  BOOST_TEST(!on_disk(dir.file("snap.tmp")));
}

BOOST_FIXTURE_TEST_CASE(fail_writes_after_writes_the_prefix_that_fits, fixture) {
  auto file = open("seg");
  BOOST_REQUIRE(fs.sync_dir(dir.path()).is_ok());
  BOOST_REQUIRE(file->append(as_bytes("0123")).is_ok());
  fs.fail_writes_after(6, errc::no_space);
  BOOST_REQUIRE(file->append(as_bytes("4567")).is_ok());
  auto s = file->append(as_bytes("89abcdef"));
  BOOST_TEST(s.code() == errc::no_space);
  BOOST_TEST(s.message().find("No space left on device") != std::string::npos);
  BOOST_TEST(s.message().find(dir.file("seg")) != std::string::npos);
  BOOST_TEST(file->size() == 10u);
  BOOST_TEST(disk_contents(dir.file("seg")) == "0123456789");
  BOOST_TEST(fs.appended_bytes() == 10u);

  // Every later append fails too, on any file.
  BOOST_TEST(file->append(as_bytes("z")).code() == errc::no_space);
  auto other = open("other");
  BOOST_TEST(other->append(as_bytes("z")).code() == errc::no_space);
  BOOST_TEST(disk_contents(dir.file("seg")) == "0123456789");

  fs.clear_faults();
  BOOST_TEST(file->append(as_bytes("z")).is_ok());
  BOOST_TEST(disk_contents(dir.file("seg")) == "0123456789z");
}

BOOST_FIXTURE_TEST_CASE(fail_one_write_after_fails_that_write_alone, fixture) {
  auto file = open("seg");
  fs.fail_one_write_after(2, errc::no_space);
  BOOST_TEST(file->append(as_bytes("abcd")).code() == errc::no_space);
  BOOST_TEST(disk_contents(dir.file("seg")) == "ab");
  BOOST_TEST(file->append(as_bytes("ef")).is_ok());
  BOOST_TEST(file->append(as_bytes(std::string(10000, 'g'))).is_ok());
  BOOST_TEST(file->size() == 10004u);
}

BOOST_FIXTURE_TEST_CASE(fail_writes_after_zero_fails_next_append, fixture) {
  auto file = open("seg");
  fs.fail_writes_after(0, errc::io_error);
  auto s = file->append(as_bytes("abc"));
  BOOST_TEST(s.code() == errc::io_error);
  BOOST_TEST(file->size() == 0u);
  BOOST_TEST(disk_contents(dir.file("seg")).empty());
}

BOOST_FIXTURE_TEST_CASE(failed_sync_does_not_make_data_durable, fixture) {
  auto file = open("seg");
  BOOST_REQUIRE(fs.sync_dir(dir.path()).is_ok());
  BOOST_REQUIRE(file->append(as_bytes("abc")).is_ok());
  BOOST_REQUIRE(file->sync().is_ok());
  BOOST_REQUIRE(file->append(as_bytes("def")).is_ok());
  fs.fail_syncs(2, errc::io_error);
  auto s = file->sync();
  BOOST_TEST(s.code() == errc::io_error);
  BOOST_TEST(s.message().find(dir.file("seg")) != std::string::npos);
  BOOST_TEST(fs.sync_dir(dir.path()).code() == errc::io_error);
  BOOST_TEST(fs.sync_count() == 4u);
  BOOST_REQUIRE(fs.crash().is_ok());
  BOOST_TEST(disk_contents(dir.file("seg")) == "abc");
}

BOOST_FIXTURE_TEST_CASE(sync_faults_run_out, fixture) {
  auto file = open("seg");
  BOOST_REQUIRE(fs.sync_dir(dir.path()).is_ok());
  BOOST_REQUIRE(file->append(as_bytes("abc")).is_ok());
  fs.fail_syncs(1, errc::io_error);
  BOOST_TEST(!file->sync().is_ok());
  BOOST_TEST(file->sync().is_ok());
  BOOST_REQUIRE(fs.crash().is_ok());
  BOOST_TEST(disk_contents(dir.file("seg")) == "abc");
}

BOOST_FIXTURE_TEST_CASE(truncate_lowers_synced_size, fixture) {
  auto file = open("seg");
  BOOST_REQUIRE(fs.sync_dir(dir.path()).is_ok());
  BOOST_REQUIRE(file->append(as_bytes("abcdef")).is_ok());
  BOOST_REQUIRE(file->sync().is_ok());
  BOOST_REQUIRE(file->truncate(2).is_ok());
  BOOST_REQUIRE(file->append(as_bytes("XY")).is_ok());
  BOOST_REQUIRE(fs.crash().is_ok());
  BOOST_TEST(disk_contents(dir.file("seg")) == "ab");

  fs.restart();
  auto again = open("seg");
  BOOST_REQUIRE(again->append(as_bytes("cdef")).is_ok());
  BOOST_REQUIRE(again->sync().is_ok());
  again.reset();
  BOOST_REQUIRE(fs.truncate_file(dir.file("seg"), 3).is_ok());
  BOOST_REQUIRE(fs.crash(10).is_ok());
  BOOST_TEST(disk_contents(dir.file("seg")) == "abc");
}

BOOST_FIXTURE_TEST_CASE(removed_file_is_forgotten, fixture) {
  auto file = open("seg");
  BOOST_REQUIRE(file->append(as_bytes("abc")).is_ok());
  file.reset();
  BOOST_REQUIRE(fs.remove_file(dir.file("seg")).is_ok());
  BOOST_REQUIRE(fs.crash().is_ok());  // nothing to remove: no error
  BOOST_TEST(!on_disk(dir.file("seg")));
}

BOOST_FIXTURE_TEST_CASE(everything_fails_after_crash_until_restart, fixture) {
  auto file = open("seg");
  BOOST_REQUIRE(fs.sync_dir(dir.path()).is_ok());
  BOOST_REQUIRE(file->append(as_bytes("abc")).is_ok());
  BOOST_REQUIRE(file->sync().is_ok());
  auto reader = fs.open_for_read(dir.file("seg"));
  BOOST_REQUIRE(reader);
  BOOST_REQUIRE(fs.crash().is_ok());

  auto is_crash = [](const weir::status& s) {
    return s.code() == errc::io_error && s.message().rfind("simulated crash: ", 0) == 0;
  };
  BOOST_TEST(is_crash(file->append(as_bytes("x"))));
  BOOST_TEST(is_crash(file->sync()));
  BOOST_TEST(is_crash(file->truncate(0)));
  std::vector<std::byte> buf(3);
  BOOST_TEST(is_crash((*reader)->read_at(0, buf).error()));
  BOOST_TEST(is_crash((*reader)->size().error()));
  BOOST_TEST(is_crash(fs.open_for_append(dir.file("seg")).error()));
  BOOST_TEST(is_crash(fs.open_for_read(dir.file("seg")).error()));
  BOOST_TEST(is_crash(fs.list_dir(dir.path()).error()));
  BOOST_TEST(is_crash(fs.create_dirs(dir.file("d"))));
  BOOST_TEST(is_crash(fs.exists(dir.file("seg")).error()));
  BOOST_TEST(is_crash(fs.file_size(dir.file("seg")).error()));
  BOOST_TEST(is_crash(fs.remove_file(dir.file("seg"))));
  BOOST_TEST(is_crash(fs.rename_file(dir.file("seg"), dir.file("x"))));
  BOOST_TEST(is_crash(fs.truncate_file(dir.file("seg"), 0)));
  BOOST_TEST(is_crash(fs.sync_dir(dir.path())));
  BOOST_TEST(disk_contents(dir.file("seg")) == "abc");

  fs.restart();
  // Files from before the crash stay dead; new ones work.
  BOOST_TEST(is_crash(file->append(as_bytes("x"))));
  BOOST_TEST(is_crash((*reader)->read_at(0, buf).error()));
  auto again = open("seg");
  BOOST_TEST(again->size() == 3u);
  BOOST_TEST(again->append(as_bytes("def")).is_ok());
  BOOST_TEST(again->sync().is_ok());
  auto names = fs.list_dir(dir.path());
  BOOST_REQUIRE(names);
  BOOST_TEST(names->size() == 1u);
  BOOST_REQUIRE(fs.crash().is_ok());
  BOOST_TEST(disk_contents(dir.file("seg")) == "abcdef");
}

BOOST_FIXTURE_TEST_CASE(restart_clears_faults, fixture) {
  auto file = open("seg");
  fs.fail_writes_after(0, errc::no_space);
  fs.fail_syncs(5, errc::io_error);
  BOOST_REQUIRE(fs.crash().is_ok());
  fs.restart();
  auto again = open("seg");
  BOOST_TEST(again->append(as_bytes("a")).is_ok());
  BOOST_TEST(again->sync().is_ok());
}

BOOST_FIXTURE_TEST_CASE(crash_while_a_writer_thread_appends, fixture) {
  auto file = open("seg");
  BOOST_REQUIRE(fs.sync_dir(dir.path()).is_ok());
  std::atomic<std::uint64_t> synced{0};
  std::atomic<bool> started{false};
  std::thread writer([&] {
    const std::string record(100, 'r');
    for (;;) {
      if (!file->append(as_bytes(record)).is_ok()) return;
      if (!file->sync().is_ok()) return;
      synced = file->size();
      started = true;
    }
  });
  while (!started) std::this_thread::yield();
  BOOST_REQUIRE(fs.crash().is_ok());
  writer.join();
  const auto size = weir::testing::file_size_of(dir.file("seg"));
  BOOST_TEST(size % 100 == 0u);
  BOOST_TEST(size >= synced.load());
  BOOST_TEST(size <= synced.load() + 100);
}

BOOST_FIXTURE_TEST_CASE(a_file_written_over_is_cut_at_its_synced_size_by_a_crash, fixture) {
  {
    auto file = open("spare");
    BOOST_REQUIRE(fs.sync_dir(dir.path()).is_ok());
    BOOST_REQUIRE(file->append(as_bytes("older bytes of a compacted segment")).is_ok());
    BOOST_REQUIRE(file->sync().is_ok());
  }
  auto file = fs.open_for_overwrite(dir.file("spare"));
  BOOST_REQUIRE_MESSAGE(file, file.error().to_string());
  BOOST_REQUIRE((*file)->append(as_bytes("NEW|")).is_ok());
  BOOST_REQUIRE((*file)->sync().is_ok());
  BOOST_REQUIRE((*file)->append(as_bytes("unsynced")).is_ok());
  // The posix file runs a write over older bytes on with zeros to its page's end.
  const std::string older = "older bytes of a compacted segment";
  BOOST_TEST(disk_contents(dir.file("spare")) ==
             "NEW|unsynced" + std::string(older.size() - 12, '\0'));

  // The documented simplification: cut at the synced size, older bytes and all.
  BOOST_REQUIRE(fs.crash().is_ok());
  BOOST_TEST(disk_contents(dir.file("spare")) == "NEW|");
  fs.restart();
  BOOST_TEST(!fs.open_for_overwrite(dir.file("missing")));
}

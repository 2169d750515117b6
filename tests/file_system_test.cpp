#include "weir/runtime/file_system.hpp"

#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <cstring>
#include <fstream>
#include <ostream>
#include <string>
#include <vector>

#include "page_cache.hpp"
#include "temp_dir.hpp"
#include "test_helpers.hpp"
#include "weir/runtime/memory_file_system.hpp"

using weir::errc;
using weir::posix_file_system;
using weir::testing::read_all;
using weir::testing::temp_dir;

namespace {

std::span<const std::byte> as_bytes(const std::string& s) {
  return std::as_bytes(std::span<const char>(s.data(), s.size()));
}

// The contract the log's segment reuse relies on, for each file system.
void check_overwrite(weir::file_system& fs, const std::string& path) {
  {
    auto file = fs.open_for_append(path);
    BOOST_REQUIRE(file);
    BOOST_REQUIRE((*file)->append(as_bytes("0123456789")));
  }
  auto file = fs.open_for_overwrite(path);
  BOOST_REQUIRE_MESSAGE(file, file.error().to_string());
  BOOST_TEST((*file)->size() == 0u);
  BOOST_REQUIRE((*file)->append(as_bytes("abc")));
  BOOST_TEST((*file)->size() == 3u);
  // Past the written part: the file's length, and older bytes or zeros.
  const auto after = read_all(fs, path);
  BOOST_REQUIRE_EQUAL(after.size(), 10u);
  BOOST_TEST(after.substr(0, 3) == "abc");
  for (std::size_t i = 3; i < after.size(); ++i) {
    BOOST_TEST((after[i] == "0123456789"[i] || after[i] == '\0'), "byte " << i);
  }
  BOOST_REQUIRE((*file)->append(as_bytes("defghijklm")));
  BOOST_TEST((*file)->size() == 13u);
  BOOST_TEST(read_all(fs, path) == "abcdefghijklm");
  BOOST_REQUIRE((*file)->truncate(5));
  BOOST_REQUIRE((*file)->append(as_bytes("!")));
  BOOST_TEST(read_all(fs, path) == "abcde!");
  BOOST_REQUIRE((*file)->sync());

  auto missing = fs.open_for_overwrite(path + ".missing");
  BOOST_REQUIRE(!missing);
  BOOST_TEST(missing.error().code() == errc::not_found);
  BOOST_TEST(missing.error().message().find(path + ".missing") != std::string::npos);
}

/// Bytes this process made the kernel fetch from storage (/proc/self/io).
std::uint64_t storage_reads() {
  std::ifstream io("/proc/self/io");
  std::string key;
  std::uint64_t value = 0;
  while (io >> key >> value) {
    if (key == "read_bytes:") return value;
  }
  return 0;
}

}  // namespace

BOOST_AUTO_TEST_CASE(overwrite_writes_over_a_file_from_its_start) {
  temp_dir dir;
  posix_file_system posix;
  check_overwrite(posix, dir.file("reused.wlog"));
  weir::memory_file_system memory;
  BOOST_REQUIRE(memory.create_dirs("/m"));
  check_overwrite(memory, "/m/reused.wlog");
}

BOOST_AUTO_TEST_CASE(writing_over_a_file_reads_nothing_from_the_disk) {
  // A write over older bytes that ends inside a page not in the page cache
  // made the kernel read that page first; the posix file system writes on to
  // the page's end, so the log's appends into a reused segment read nothing.
  temp_dir dir;
  if (weir::testing::skipped_on_tmpfs(dir.path())) return;
  posix_file_system fs;
  const auto path = dir.file("spare.wlog");
  const std::string older(16 * 4096, 'o');
  {
    auto file = fs.open_for_append(path);
    BOOST_REQUIRE(file);
    BOOST_REQUIRE((*file)->append(as_bytes(older)));
    BOOST_REQUIRE((*file)->sync());
  }
  fs.drop_cached(path, older.size());
  BOOST_REQUIRE_EQUAL(weir::testing::resident_pages(path).first, 0u);
  const auto before = storage_reads();
  auto file = fs.open_for_overwrite(path);
  BOOST_REQUIRE(file);
  std::string written;
  for (int i = 0; i < 40; ++i) {  // 1000 B at a time: most writes end mid-page
    const std::string record(1000, char('a' + i % 26));
    BOOST_REQUIRE((*file)->append(as_bytes(record)));
    written += record;
  }
  // The old behaviour read 10 pages here. A page or two can be the file
  // system's own metadata, read back because this VM reclaims cold pages.
  BOOST_TEST(storage_reads() - before <= 2 * 4096u);
  BOOST_TEST((*file)->size() == written.size());
  const auto now = read_all(fs, path);
  BOOST_REQUIRE_EQUAL(now.size(), older.size());
  BOOST_TEST(now.substr(0, written.size()) == written);
  // Zeros to the end of the last written page, then the older bytes.
  const auto page_end = (written.size() + 4095) / 4096 * 4096;
  BOOST_TEST(now.substr(written.size(), page_end - written.size()) ==
             std::string(page_end - written.size(), '\0'));
  BOOST_TEST(now.substr(page_end) == older.substr(page_end));
}

BOOST_AUTO_TEST_CASE(dropping_cached_pages_keeps_the_page_appends_go_on_in) {
  // Linux drops the page holding the end of the range as well when the range
  // ends at the file's end; the next append into it then read it back first.
  temp_dir dir;
  if (weir::testing::skipped_on_tmpfs(dir.path())) return;
  posix_file_system fs;
  const auto path = dir.file("active.wlog");
  auto file = fs.open_for_append(path);
  BOOST_REQUIRE(file);
  std::string written;
  std::uint64_t reads = 0;
  for (int round = 0; round < 8; ++round) {
    const std::string synced(10000, char('a' + round));  // ends inside a page
    BOOST_REQUIRE((*file)->append(as_bytes(synced)));
    BOOST_REQUIRE((*file)->sync());
    written += synced;
    fs.drop_cached(path, written.size());
    BOOST_TEST(weir::testing::resident_pages(path).first == 1u);
    const auto before = storage_reads();
    BOOST_REQUIRE((*file)->append(as_bytes(std::string(100, 'e'))));
    reads += storage_reads() - before;
    written += std::string(100, 'e');
  }
  // The old behaviour read one page per round. A page or two can be the file
  // system's own metadata, read back because this VM reclaims cold pages.
  BOOST_TEST(reads <= 2 * 4096u);
  BOOST_TEST(read_all(fs, path) == written);
}

BOOST_AUTO_TEST_CASE(append_size_read_round_trip) {
  temp_dir dir;
  posix_file_system fs;
  const std::string path = dir.file("a.wlog");
  {
    auto file = fs.open_for_append(path);
    BOOST_REQUIRE_MESSAGE(file, file.error().to_string());
    BOOST_TEST((*file)->path() == path);
    BOOST_TEST((*file)->size() == 0u);
    BOOST_TEST((*file)->append(as_bytes("hello ")).is_ok());
    BOOST_TEST((*file)->append(as_bytes("world")).is_ok());
    BOOST_TEST((*file)->append({}).is_ok());
    BOOST_TEST((*file)->size() == 11u);
    BOOST_TEST((*file)->sync().is_ok());
  }
  BOOST_TEST(read_all(fs, path) == "hello world");
  auto size = fs.file_size(path);
  BOOST_REQUIRE(size);
  BOOST_TEST(*size == 11u);

  // Reopening continues at the end.
  {
    auto file = fs.open_for_append(path);
    BOOST_REQUIRE(file);
    BOOST_TEST((*file)->size() == 11u);
    BOOST_TEST((*file)->append(as_bytes("!")).is_ok());
  }
  BOOST_TEST(read_all(fs, path) == "hello world!");
}

BOOST_AUTO_TEST_CASE(large_append_round_trips) {
  temp_dir dir;
  posix_file_system fs;
  const std::string path = dir.file("big");
  std::string data(3 * 1024 * 1024 + 17, '\0');
  for (std::size_t i = 0; i < data.size(); ++i) data[i] = static_cast<char>(i * 131 + (i >> 9));
  {
    auto file = fs.open_for_append(path);
    BOOST_REQUIRE(file);
    BOOST_TEST((*file)->append(as_bytes(data)).is_ok());
  }
  BOOST_TEST((read_all(fs, path) == data));
}

BOOST_AUTO_TEST_CASE(read_at_is_short_at_eof) {
  temp_dir dir;
  posix_file_system fs;
  const std::string path = dir.file("f");
  {
    auto file = fs.open_for_append(path);
    BOOST_REQUIRE(file);
    BOOST_REQUIRE((*file)->append(as_bytes("0123456789")).is_ok());
  }
  auto file = fs.open_for_read(path);
  BOOST_REQUIRE(file);
  BOOST_TEST((*file)->path() == path);
  std::vector<std::byte> buf(8);
  auto got = (*file)->read_at(6, buf);
  BOOST_REQUIRE(got);
  BOOST_TEST(*got == 4u);
  BOOST_TEST(std::memcmp(buf.data(), "6789", 4) == 0);

  got = (*file)->read_at(10, buf);
  BOOST_REQUIRE(got);
  BOOST_TEST(*got == 0u);
  got = (*file)->read_at(1000, buf);
  BOOST_REQUIRE(got);
  BOOST_TEST(*got == 0u);

  got = (*file)->read_at(2, std::span<std::byte>(buf).first(3));
  BOOST_REQUIRE(got);
  BOOST_TEST(*got == 3u);
  BOOST_TEST(std::memcmp(buf.data(), "234", 3) == 0);
}

BOOST_AUTO_TEST_CASE(truncate_then_append_continues_at_cut) {
  temp_dir dir;
  posix_file_system fs;
  const std::string path = dir.file("f");
  auto file = fs.open_for_append(path);
  BOOST_REQUIRE(file);
  BOOST_REQUIRE((*file)->append(as_bytes("abcdefgh")).is_ok());
  BOOST_REQUIRE((*file)->truncate(3).is_ok());
  BOOST_TEST((*file)->size() == 3u);
  BOOST_REQUIRE((*file)->append(as_bytes("XY")).is_ok());
  BOOST_TEST((*file)->size() == 5u);
  BOOST_TEST(read_all(fs, path) == "abcXY");

  BOOST_REQUIRE(fs.truncate_file(path, 1).is_ok());
  BOOST_TEST(read_all(fs, path) == "a");
}

BOOST_AUTO_TEST_CASE(list_dir_rename_remove_exists) {
  temp_dir dir;
  posix_file_system fs;
  for (const char* name : {"one", "two", "three"}) {
    auto file = fs.open_for_append(dir.file(name));
    BOOST_REQUIRE(file);
  }
  BOOST_REQUIRE(fs.create_dirs(dir.file("sub/deeper")).is_ok());
  BOOST_TEST(fs.create_dirs(dir.file("sub/deeper")).is_ok());  // already there
  BOOST_TEST(fs.create_dirs(dir.file("sub/deeper/")).is_ok());

  auto names = fs.list_dir(dir.path());
  BOOST_REQUIRE(names);
  std::sort(names->begin(), names->end());
  BOOST_TEST((*names == std::vector<std::string>{"one", "sub", "three", "two"}));

  BOOST_REQUIRE(fs.rename_file(dir.file("one"), dir.file("uno")).is_ok());
  BOOST_TEST(*fs.exists(dir.file("uno")));
  BOOST_TEST(!*fs.exists(dir.file("one")));
  BOOST_TEST(*fs.exists(dir.file("sub")));  // directories count
  BOOST_TEST(!*fs.exists(dir.file("one/under-a-file")));

  BOOST_REQUIRE(fs.remove_file(dir.file("two")).is_ok());
  BOOST_TEST(!*fs.exists(dir.file("two")));
  BOOST_TEST(fs.sync_dir(dir.path()).is_ok());

  names = fs.list_dir(dir.path());
  BOOST_REQUIRE(names);
  std::sort(names->begin(), names->end());
  BOOST_TEST((*names == std::vector<std::string>{"sub", "three", "uno"}));
}

BOOST_AUTO_TEST_CASE(errors_are_values_naming_the_path) {
  temp_dir dir;
  posix_file_system fs;
  const std::string missing = dir.file("missing.wlog");

  auto r = fs.open_for_read(missing);
  BOOST_REQUIRE(!r);
  BOOST_TEST(r.error().code() == errc::not_found);
  BOOST_TEST(r.error().message().find(missing) != std::string::npos);
  BOOST_TEST(r.error().to_string().rfind("not_found: ", 0) == 0);
  BOOST_TEST(r.error().message().find("No such file or directory") != std::string::npos);

  const std::string in_missing_dir = dir.file("nodir/seg-1.wlog");
  auto w = fs.open_for_append(in_missing_dir);
  BOOST_REQUIRE(!w);
  BOOST_TEST(w.error().code() == errc::not_found);
  BOOST_TEST(w.error().message().find(in_missing_dir) != std::string::npos);

  auto size = fs.file_size(missing);
  BOOST_REQUIRE(!size);
  BOOST_TEST(size.error().code() == errc::not_found);
  BOOST_TEST(size.error().message().find(missing) != std::string::npos);

  auto removed = fs.remove_file(missing);
  BOOST_TEST(removed.code() == errc::not_found);
  BOOST_TEST(removed.message().find(missing) != std::string::npos);

  auto renamed = fs.rename_file(missing, dir.file("x"));
  BOOST_TEST(!renamed.is_ok());
  BOOST_TEST(renamed.message().find(missing) != std::string::npos);

  auto listed = fs.list_dir(dir.file("nodir"));
  BOOST_REQUIRE(!listed);
  BOOST_TEST(listed.error().code() == errc::not_found);

  BOOST_TEST(fs.sync_dir(dir.file("nodir")).code() == errc::not_found);
  BOOST_TEST(fs.truncate_file(missing, 0).code() == errc::not_found);

  // A file in the way of a directory.
  { BOOST_REQUIRE(fs.open_for_append(dir.file("plain"))); }
  auto made = fs.create_dirs(dir.file("plain/sub"));
  BOOST_TEST(!made.is_ok());
  BOOST_TEST(made.message().find(dir.file("plain")) != std::string::npos);
  BOOST_TEST(!fs.create_dirs(dir.file("plain")).is_ok());
}

BOOST_AUTO_TEST_CASE(status_formatting_and_errno_mapping) {
  weir::status s(errc::no_space, "append to /d/seg-1.wlog: No space left on device");
  BOOST_TEST(s.to_string() == "no_space: append to /d/seg-1.wlog: No space left on device");
  BOOST_TEST(weir::status::ok().to_string() == "ok");
  BOOST_TEST(weir::errc_from_errno(ENOSPC) == errc::no_space);
  BOOST_TEST(weir::errc_from_errno(EDQUOT) == errc::no_space);
  BOOST_TEST(weir::errc_from_errno(ENOENT) == errc::not_found);
  BOOST_TEST(weir::errc_from_errno(EINVAL) == errc::invalid_argument);
  BOOST_TEST(weir::errc_from_errno(EIO) == errc::io_error);
  BOOST_TEST(std::string(weir::to_string(errc::version_mismatch)) == "version_mismatch");
}

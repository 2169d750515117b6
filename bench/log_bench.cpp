// log_bench: the checkpoint log's append and recovery rates beside the ceiling of
// the same disk, measured in the same run, so that a ratio means something on a
// machine whose disk speed we do not control (a shared virtual disk).
//
//   log_bench [--dir DIR] [--quick] [--records N] [--bytes N] [--rounds N]
//             [--window N] [--chunk-kib N] [--producers N] [--pending-mib N]
//
// What it measures (see docs/benchmarks.md):
//   ceiling    raw pwrite + fdatasync of the same bytes in group-commit-sized chunks,
//              appended and written over a file already written (as into a reused
//              segment), and 4 KiB append + fdatasync (the cost of one sync);
//   appends    publish() of 100 B and 1 KiB payloads under sync `always` (group
//              commit) and `none`, one message per call, plus 64 per call as extra rows,
//              timed after an untimed warm-up of a quarter of the run;
//   recovery   checkpoint_log::open() of a log of N 100 B records, with no snapshot
//              and with a snapshot near the end. Warm: the files are in the page cache.
//
// Every throughput figure is the median (and best) of --rounds rounds; each round
// runs the ceiling and every append row, in a shuffled order, so that a burst of
// load from elsewhere on the machine hits both sides of a ratio alike.

#include <fcntl.h>
#include <sys/resource.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <random>
#include <span>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "weir/runtime/checkpoint_log.hpp"

namespace {

using clock_type = std::chrono::steady_clock;

// Decimal megabytes, as disk vendors and dd report them.
constexpr double mb = 1e6;
constexpr double target_group_commit_ratio = 0.70;
constexpr double target_recovery_records_per_s = 2e6;

struct bench_options {
  std::string dir;     // parent of the fresh working directory
  bool quick = false;  // smoke run: small counts, one round
  std::uint64_t recovery_records = 1'000'000;
  std::uint64_t target_bytes = 256'000'000;  // log bytes each append row (and the ceiling) writes
  int rounds = 5;
  std::uint64_t window = 65'536;      // unconfirmed messages per producer
  std::size_t chunk_bytes = 1 << 20;  // reference ceiling chunk: about one group-commit batch
  int producers = 1;
  std::uint64_t pending_bytes_max = 0;  // 0: the log's default
  int small_syncs = 2'000;              // 4 KiB append + fdatasync repetitions
  int recovery_repeats = 3;
};

bool show_progress = false;

// Progress goes to stderr and only when a person is watching: piped output
// (CI logs, docs) stays a clean table.
void progress(const std::string& what) {
  if (show_progress) std::fprintf(stderr, "\r\033[K%s", what.c_str());
}
void progress_done() {
  if (show_progress) std::fprintf(stderr, "\r\033[K");
}

[[noreturn]] void fail(const std::string& what) {
  progress_done();
  std::fprintf(stderr, "log_bench: %s\n", what.c_str());
  std::exit(1);
}

void check(const weir::status& outcome, const std::string& what) {
  if (!outcome) fail(what + ": " + outcome.to_string());
}

double seconds_since(clock_type::time_point start) {
  return std::chrono::duration<double>(clock_type::now() - start).count();
}

double median(std::vector<double> values) {
  if (values.empty()) return 0;
  std::sort(values.begin(), values.end());
  const auto n = values.size();
  return n % 2 == 1 ? values[n / 2] : (values[n / 2 - 1] + values[n / 2]) / 2;
}

// (max - min) / median, to show how much the rounds disagreed.
double spread(const std::vector<double>& values) {
  if (values.size() < 2) return 0;
  const auto [lo, hi] = std::minmax_element(values.begin(), values.end());
  const double mid = median(values);
  return mid > 0 ? (*hi - *lo) / mid : 0;
}

double best(const std::vector<double>& values) {
  return values.empty() ? 0 : *std::max_element(values.begin(), values.end());
}

std::string format(const char* spec, double value) {
  char text[64];
  std::snprintf(text, sizeof text, spec, value);
  return text;
}

// 1234567 -> "1.23 M", 45600 -> "45.6 k": rates span four orders of magnitude.
std::string si(double value) {
  if (value >= 1e6) return format("%.2f M", value / 1e6);
  if (value >= 1e3) return format("%.1f k", value / 1e3);
  return format("%.0f", value);
}

std::string percent(double fraction) {
  return format("%.0f%%", fraction * 100);
}

std::string bytes_text(double bytes) {
  if (bytes >= (1 << 20)) return format("%.2f MiB", bytes / (1 << 20));
  if (bytes >= (1 << 10)) return format("%.1f KiB", bytes / (1 << 10));
  return format("%.0f B", bytes);
}

// A plain aligned text table: first column left-aligned, the rest right-aligned.
class text_table {
 public:
  explicit text_table(std::vector<std::string> header) { rows_.push_back(std::move(header)); }
  void add(std::vector<std::string> row) { rows_.push_back(std::move(row)); }

  void print() const {
    std::vector<std::size_t> widths;
    for (const auto& row : rows_) {
      widths.resize(std::max(widths.size(), row.size()));
      for (std::size_t i = 0; i < row.size(); ++i) widths[i] = std::max(widths[i], row[i].size());
    }
    for (std::size_t r = 0; r < rows_.size(); ++r) {
      std::string line;
      for (std::size_t i = 0; i < rows_[r].size(); ++i) {
        const auto& cell = rows_[r][i];
        const std::string pad(widths[i] - cell.size(), ' ');
        if (i != 0) line += "  ";
        line += i == 0 ? cell + pad : pad + cell;
      }
      while (!line.empty() && line.back() == ' ') line.pop_back();
      std::printf("%s\n", line.c_str());
      if (r == 0) {
        std::size_t total = 0;
        for (auto w : widths) total += w;
        std::printf("%s\n", std::string(total + 2 * (widths.size() - 1), '-').c_str());
      }
    }
  }

 private:
  std::vector<std::vector<std::string>> rows_;
};

// --- the raw disk -------------------------------------------------------------------

class raw_file {
 public:
  explicit raw_file(const std::string& path) : path_(path) {
    fd_ = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd_ < 0) fail("open " + path + ": " + std::strerror(errno));
  }
  ~raw_file() {
    ::close(fd_);
    ::unlink(path_.c_str());
  }
  raw_file(const raw_file&) = delete;
  raw_file& operator=(const raw_file&) = delete;

  // Appends at our own offset with pwrite, as weir's posix_writable_file does.
  void append(std::span<const std::byte> bytes) {
    while (!bytes.empty()) {
      const ssize_t n = ::pwrite(fd_, bytes.data(), bytes.size(), static_cast<off_t>(size_));
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) fail("write " + path_ + ": " + std::strerror(errno));
      bytes = bytes.subspan(static_cast<std::size_t>(n));
      size_ += static_cast<std::uint64_t>(n);
    }
  }
  void sync() {
    if (::fdatasync(fd_) != 0) fail("fdatasync " + path_ + ": " + std::strerror(errno));
  }
  // Later appends write over the file from its start, keeping its blocks.
  void rewind() { size_ = 0; }

 private:
  std::string path_;
  int fd_ = -1;
  std::uint64_t size_ = 0;
};

std::vector<std::byte> filler(std::size_t size) {
  std::vector<std::byte> bytes(size);
  std::uint32_t x = 0x9e3779b9u;  // xorshift: bytes that no layer could compress away
  for (auto& b : bytes) {
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    b = std::byte(x);
  }
  return bytes;
}

// Flushes the file system before a timed run, so that no run pays for the one
// before it: this ext4 is mounted with `discard`, and the blocks of a deleted
// 256 MB file are discarded at the next journal commit, which the next
// fdatasync would otherwise wait for. Also flushes other processes' dirty data.
void settle(const std::string& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) fail("open " + dir + ": " + std::strerror(errno));
  if (::syncfs(fd) != 0) fail("syncfs " + dir + ": " + std::strerror(errno));
  ::close(fd);
}

enum class raw_sync { each_chunk, at_end, never };

// Sequential write of `total` bytes in `chunk`-sized appends. With an fdatasync after
// each chunk it is the best a group commit of that batch size could do; with one at
// the end it is the disk's bandwidth; without any it is the page cache's. With
// `overwrite`, the file is first written in full (untimed), and the timed writes go
// over it: what the log's writer does in a reused segment file.
double raw_write_mb_per_s(const std::string& dir, std::uint64_t total, std::size_t chunk,
                          raw_sync sync, bool overwrite) {
  const auto buffer = filler(chunk);
  raw_file file(dir + "/raw-ceiling.bin");
  if (overwrite) {
    for (std::uint64_t written = 0; written < total; written += chunk) {
      file.append(std::span{buffer}.first(
          static_cast<std::size_t>(std::min<std::uint64_t>(chunk, total - written))));
    }
    file.sync();
    settle(dir);
    file.rewind();
  }
  const auto start = clock_type::now();
  for (std::uint64_t written = 0; written < total; written += chunk) {
    const auto n = static_cast<std::size_t>(std::min<std::uint64_t>(chunk, total - written));
    file.append(std::span{buffer}.first(n));
    if (sync == raw_sync::each_chunk) file.sync();
  }
  if (sync == raw_sync::at_end) file.sync();
  return static_cast<double>(total) / seconds_since(start) / mb;
}

struct small_sync_result {
  double syncs_per_s = 0;
  double p50_us = 0;
  double p99_us = 0;
};

// The price of one fdatasync: what a sync per message would cost.
small_sync_result raw_small_syncs(const std::string& dir, int count) {
  const auto buffer = filler(4096);
  raw_file file(dir + "/raw-small-sync.bin");
  std::vector<double> latencies;
  latencies.reserve(static_cast<std::size_t>(count));
  const auto start = clock_type::now();
  for (int i = 0; i < count; ++i) {
    const auto t = clock_type::now();
    file.append(buffer);
    file.sync();
    latencies.push_back(seconds_since(t) * 1e6);
  }
  small_sync_result out;
  out.syncs_per_s = count / seconds_since(start);
  std::sort(latencies.begin(), latencies.end());
  out.p50_us = latencies[latencies.size() / 2];
  out.p99_us = latencies[std::min(latencies.size() - 1, latencies.size() * 99 / 100)];
  return out;
}

// --- weir appends ---------------------------------------------------------------------

struct append_case {
  std::size_t payload_size;
  weir::sync_policy sync;
  std::size_t per_call;  // messages per publish() call
};

std::string case_label(const append_case& c) {
  return (c.payload_size >= 1024 ? std::to_string(c.payload_size / 1024) + " KiB"
                                 : std::to_string(c.payload_size) + " B");
}

// The posix file system with a stopwatch on appends and syncs: file_system is
// the log's injection point, so the bench can see how the writer thread's time
// splits between copying into the page cache, fdatasync, and everything else.
struct io_time {
  std::atomic<std::int64_t> write_ns{0};
  std::atomic<std::int64_t> sync_ns{0};
};

class timed_writable_file final : public weir::writable_file {
 public:
  timed_writable_file(std::unique_ptr<weir::writable_file> inner, io_time& time)
      : inner_(std::move(inner)), time_(time) {}
  weir::status append(std::span<const std::byte> bytes) override {
    const auto start = clock_type::now();
    auto outcome = inner_->append(bytes);
    time_.write_ns += (clock_type::now() - start).count();
    return outcome;
  }
  weir::status sync() override {
    const auto start = clock_type::now();
    auto outcome = inner_->sync();
    time_.sync_ns += (clock_type::now() - start).count();
    return outcome;
  }
  weir::status truncate(std::uint64_t size) override { return inner_->truncate(size); }
  std::uint64_t size() const noexcept override { return inner_->size(); }
  const std::string& path() const noexcept override { return inner_->path(); }

 private:
  std::unique_ptr<weir::writable_file> inner_;
  io_time& time_;
};

class timed_file_system final : public weir::file_system {
 public:
  io_time time;

  weir::result<std::unique_ptr<weir::writable_file>> open_for_append(
      const std::string& path) override {
    auto file = inner_.open_for_append(path);
    if (!file) return file.error();
    return std::unique_ptr<weir::writable_file>(
        std::make_unique<timed_writable_file>(std::move(*file), time));
  }
  weir::result<std::unique_ptr<weir::writable_file>> open_for_overwrite(
      const std::string& path) override {
    auto file = inner_.open_for_overwrite(path);
    if (!file) return file.error();
    return std::unique_ptr<weir::writable_file>(
        std::make_unique<timed_writable_file>(std::move(*file), time));
  }
  weir::result<std::unique_ptr<weir::readable_file>> open_for_read(
      const std::string& path) override {
    return inner_.open_for_read(path);
  }
  weir::result<std::vector<std::string>> list_dir(const std::string& dir) override {
    return inner_.list_dir(dir);
  }
  weir::status create_dirs(const std::string& dir) override { return inner_.create_dirs(dir); }
  weir::result<bool> exists(const std::string& path) override { return inner_.exists(path); }
  weir::result<std::uint64_t> file_size(const std::string& path) override {
    return inner_.file_size(path);
  }
  weir::status remove_file(const std::string& path) override { return inner_.remove_file(path); }
  weir::status rename_file(const std::string& from, const std::string& to) override {
    return inner_.rename_file(from, to);
  }
  weir::status truncate_file(const std::string& path, std::uint64_t size) override {
    return inner_.truncate_file(path, size);
  }
  weir::status sync_dir(const std::string& dir) override { return inner_.sync_dir(dir); }
  weir::result<std::shared_ptr<void>> lock_file(const std::string& path) override {
    return inner_.lock_file(path);
  }

 private:
  weir::posix_file_system inner_;
};

// User + system CPU of the whole process (producers and the log's writer thread).
double process_cpu_seconds() {
  rusage usage{};
  ::getrusage(RUSAGE_SELF, &usage);
  auto seconds = [](const timeval& t) { return static_cast<double>(t.tv_sec) + t.tv_usec / 1e6; };
  return seconds(usage.ru_utime) + seconds(usage.ru_stime);
}

struct append_result {
  std::uint64_t messages = 0;
  std::uint64_t calls = 0;
  std::uint64_t log_bytes = 0;  // segment bytes written (framing and headers included)
  std::uint64_t syncs = 0;
  double seconds = 0;
  double cpu_seconds = 0;    // process CPU while it ran
  double write_seconds = 0;  // writer thread inside the segment's append() (pwrite)
  double sync_seconds = 0;   // writer thread inside fdatasync
  double producer_busy = 0;  // share of wall time producers were not blocked on the window
};

std::unique_ptr<weir::checkpoint_log> open_log(weir::file_system& fs, const std::string& dir,
                                               const weir::log_options& options) {
  auto opened = weir::checkpoint_log::open(fs, dir, options);
  if (!opened) fail("open log " + dir + ": " + opened.error().to_string());
  return std::move(*opened);
}

// One producer's window of unconfirmed appends. Confirmations arrive on the log's
// writer thread; the producer only sleeps when the window is full, and the
// writer only pays for a wake-up when the producer is actually waiting.
struct alignas(64) producer_window {
  std::atomic<std::uint64_t> confirmed{0};  // durable callbacks fired, in calls
  std::atomic<std::uint64_t> wake_at{UINT64_MAX};
  std::atomic<std::uint64_t> failures{0};
  std::string first_failure;  // set by the writer thread before `confirmed` counts that call
  double waited_seconds = 0;  // producer thread only: time blocked on a full window

  void on_durable(const weir::status& outcome) {
    if (!outcome && failures.fetch_add(1) == 0) first_failure = outcome.to_string();
    // seq_cst here and in wait_for: either the waiter sees this increment or
    // this thread sees its wake_at, so a wake-up is never lost.
    const auto now = confirmed.fetch_add(1) + 1;
    if (now >= wake_at.load()) confirmed.notify_one();
  }

  void wait_for(std::uint64_t target) {
    const auto start = clock_type::now();
    for (;;) {
      wake_at.store(target);
      const auto seen = confirmed.load();
      if (seen >= target) break;
      confirmed.wait(seen);
    }
    wake_at.store(UINT64_MAX);
    waited_seconds += seconds_since(start);
  }
};

// Publishes `calls` calls of `c.per_call` messages from this thread, keeping at
// most `window_calls` of them unconfirmed.
void produce(weir::checkpoint_log& log, const append_case& c, std::uint64_t producer_id,
             std::uint64_t calls, std::uint64_t window_calls, producer_window& window) {
  const auto payload = filler(c.payload_size);
  const std::string_view payload_view(reinterpret_cast<const char*>(payload.data()),
                                      payload.size());
  std::vector<weir::outgoing_message> batch(c.per_call);
  std::uint64_t seq = 0;
  const weir::durable_callback done = [&window](const weir::status& s) { window.on_durable(s); };
  for (std::uint64_t issued = 0; issued < calls; ++issued) {
    if (issued >= window_calls + window.confirmed.load(std::memory_order_relaxed)) {
      // Full: wait for an eighth of the window to free up, not one slot, so the
      // producer is not woken once per confirmation.
      window.wait_for(issued - window_calls + std::max<std::uint64_t>(1, window_calls / 8));
    }
    for (auto& m : batch) {
      m.producer_id = producer_id;
      m.producer_epoch = 1;
      m.producer_seq = ++seq;
      m.payload = payload_view;
      m.publish_time_ns = 1'700'000'000'000'000'000;
    }
    auto published = log.publish(batch, done);
    if (!published) fail("publish: " + published.error().to_string());
  }
  window.wait_for(calls);
}

append_result run_appends(const std::string& dir, const append_case& c, std::uint64_t messages,
                          const bench_options& options) {
  weir::log_options log_options;
  log_options.sync = c.sync;
  if (options.pending_bytes_max != 0) log_options.pending_bytes_max = options.pending_bytes_max;
  timed_file_system fs;
  auto log = open_log(fs, dir, log_options);

  const auto producers = static_cast<std::uint64_t>(options.producers);
  const std::uint64_t calls_each = messages / c.per_call / producers;
  const std::uint64_t window_calls = std::max<std::uint64_t>(1, options.window / c.per_call);
  auto run_producers = [&](std::uint64_t calls, std::uint64_t first_producer_id,
                           std::vector<producer_window>& windows) {
    std::vector<std::thread> threads;
    for (std::uint64_t p = 0; p < producers; ++p) {
      threads.emplace_back(
          [&, p] { produce(*log, c, first_producer_id + p, calls, window_calls, windows[p]); });
    }
    for (auto& t : threads) t.join();
  };

  // An untimed warm-up of a quarter of the run: the log's hand-off buffers grow
  // to their working size once (fresh memory is page-faulted and zeroed), as in
  // a queue that has been running for a while; the timed part is steady state.
  std::vector<producer_window> warm_up(producers);
  run_producers(std::max<std::uint64_t>(1, calls_each / 4), 1000, warm_up);
  for (auto& w : warm_up) {
    if (w.failures.load() != 0) fail("append failed during warm-up: " + w.first_failure);
  }

  const auto before = log->stats();
  const auto write_ns_before = fs.time.write_ns.load();
  const auto sync_ns_before = fs.time.sync_ns.load();
  const double cpu_before = process_cpu_seconds();
  std::vector<producer_window> windows(producers);
  const auto start = clock_type::now();
  run_producers(calls_each, 1, windows);
  append_result out;
  out.seconds = seconds_since(start);
  out.cpu_seconds = process_cpu_seconds() - cpu_before;
  // The last callback fires after the last append and sync have returned.
  out.write_seconds = static_cast<double>(fs.time.write_ns.load() - write_ns_before) / 1e9;
  out.sync_seconds = static_cast<double>(fs.time.sync_ns.load() - sync_ns_before) / 1e9;

  for (auto& w : windows) {
    if (w.failures.load() != 0) fail("append failed: " + w.first_failure);
    out.producer_busy += (1 - w.waited_seconds / out.seconds) / static_cast<double>(producers);
  }
  const auto after = log->stats();
  out.calls = calls_each * producers;
  out.messages = out.calls * c.per_call;
  out.log_bytes = after.log_bytes - before.log_bytes;
  out.syncs = after.syncs - before.syncs;
  log.reset();
  std::filesystem::remove_all(dir);
  return out;
}

// Bytes one publish() call of this shape adds to a segment, found by writing one:
// the runs are then sized to write about the same bytes as the ceiling.
std::uint64_t bytes_per_call(weir::file_system& fs, const std::string& dir, const append_case& c) {
  weir::log_options log_options;
  log_options.sync = weir::sync_policy{weir::sync_policy::mode::none, {}};
  auto log = open_log(fs, dir, log_options);
  const auto before = log->stats().log_bytes;
  const auto payload = filler(c.payload_size);
  std::vector<weir::outgoing_message> batch(c.per_call);
  for (auto& m : batch) {
    m.producer_id = 1;
    m.producer_epoch = 1;
    m.payload = std::string_view(reinterpret_cast<const char*>(payload.data()), payload.size());
  }
  auto published = log->publish(batch, {});
  if (!published) fail("publish: " + published.error().to_string());
  check(log->sync(), "sync");
  const auto bytes = log->stats().log_bytes - before;
  log.reset();
  std::filesystem::remove_all(dir);
  return bytes;
}

// --- recovery -------------------------------------------------------------------------

// Writes `records` single-message publishes of 100 B with sync none and no automatic
// snapshot; with `snapshot_tail` > 0, snapshot() is called that many records before the end.
void build_recovery_log(weir::file_system& fs, const std::string& dir, std::uint64_t records,
                        std::uint64_t snapshot_tail) {
  weir::log_options log_options;
  log_options.sync = weir::sync_policy{weir::sync_policy::mode::none, {}};
  log_options.snapshot_every_bytes = 0;
  auto log = open_log(fs, dir, log_options);
  const auto payload = filler(100);
  weir::outgoing_message m;
  m.producer_id = 1;
  m.producer_epoch = 1;
  m.payload = std::string_view(reinterpret_cast<const char*>(payload.data()), payload.size());
  for (std::uint64_t i = 0; i < records; ++i) {
    if (snapshot_tail != 0 && i == records - snapshot_tail) check(log->snapshot(), "snapshot");
    m.producer_seq = i + 1;
    // No callback: recovery only needs the records on disk, and the destructor
    // waits for every accepted append to be written.
    auto published = log->publish(std::span{&m, 1}, {});
    if (!published) fail("publish: " + published.error().to_string());
  }
}

struct recovery_result {
  double seconds = 0;  // median wall time of open()
  std::uint64_t records_replayed = 0;
  std::uint64_t log_bytes = 0;
  bool from_snapshot = false;
};

recovery_result time_recovery(weir::file_system& fs, const std::string& dir, int repeats) {
  weir::log_options log_options;
  log_options.sync = weir::sync_policy{weir::sync_policy::mode::none, {}};
  log_options.snapshot_every_bytes = 0;
  std::vector<double> times;
  recovery_result out;
  for (int i = 0; i < repeats; ++i) {
    settle(dir);
    const auto start = clock_type::now();
    auto log = open_log(fs, dir, log_options);
    times.push_back(seconds_since(start));
    const auto& report = log->recovery();
    if (report.found_damage()) fail("recovery of " + dir + " found damage in a clean log");
    out.records_replayed = report.records_replayed;
    out.from_snapshot = report.snapshot_sequence.has_value();
    out.log_bytes = log->stats().log_bytes;
  }
  out.seconds = median(times);
  return out;
}

// --- command line ---------------------------------------------------------------------

void usage(std::FILE* out) {
  std::fprintf(out,
               "usage: log_bench [--dir DIR] [--quick] [--records N] [--bytes N] [--rounds N]\n"
               "                 [--window N] [--chunk-kib N] [--producers N] [--pending-mib N]\n"
               "  --dir DIR       work in a fresh subdirectory of DIR (default: the current\n"
               "                  directory, else /tmp); it is removed at the end\n"
               "  --quick         smoke run: small counts, one round, a few seconds\n"
               "  --records N     records in the recovery log (default 1000000)\n"
               "  --bytes N       log bytes per append row and for the ceiling (default 256e6)\n"
               "  --rounds N      rounds of ceiling + append rows; medians are shown (default 5)\n"
               "  --window N      unconfirmed messages per producer (default 65536)\n"
               "  --chunk-kib N   reference ceiling chunk between fdatasyncs (default 1024)\n"
               "  --producers N   producer threads (default 1)\n"
               "  --pending-mib N log_options.pending_bytes_max for the append rows (default:\n"
               "                  the log's own default, 64 MiB)\n");
}

std::uint64_t parse_count(std::string_view flag, const char* text) {
  // Accepts 1000000, 1e6 and 256e6 alike, because counts this large are typed that way.
  char* end = nullptr;
  const double value = std::strtod(text, &end);
  if (end == text || *end != '\0' || !(value >= 1) || value > 1e15) {
    std::fprintf(stderr, "log_bench: %.*s needs a positive number, got '%s'\n",
                 static_cast<int>(flag.size()), flag.data(), text);
    usage(stderr);
    std::exit(2);
  }
  return static_cast<std::uint64_t>(value);
}

bench_options parse_options(int argc, char** argv) {
  bench_options options;
  std::optional<std::uint64_t> records, bytes, rounds;
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    auto value = [&]() -> const char* {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "log_bench: %s needs a value\n", argv[i]);
        usage(stderr);
        std::exit(2);
      }
      return argv[++i];
    };
    if (arg == "--dir") {
      options.dir = value();
    } else if (arg == "--quick") {
      options.quick = true;
    } else if (arg == "--records") {
      records = parse_count(arg, value());
    } else if (arg == "--bytes") {
      bytes = parse_count(arg, value());
    } else if (arg == "--rounds") {
      rounds = parse_count(arg, value());
    } else if (arg == "--window") {
      options.window = parse_count(arg, value());
    } else if (arg == "--chunk-kib") {
      options.chunk_bytes = static_cast<std::size_t>(parse_count(arg, value())) << 10;
    } else if (arg == "--pending-mib") {
      options.pending_bytes_max = parse_count(arg, value()) << 20;
    } else if (arg == "--producers") {
      options.producers = static_cast<int>(std::min<std::uint64_t>(64, parse_count(arg, value())));
    } else if (arg == "--help" || arg == "-h") {
      usage(stdout);
      std::exit(0);
    } else {
      std::fprintf(stderr, "log_bench: unknown option %s\n", argv[i]);
      usage(stderr);
      std::exit(2);
    }
  }
  if (options.quick) {
    options.recovery_records = 50'000;
    options.target_bytes = 16'000'000;
    options.rounds = 1;
    options.small_syncs = 100;
    options.recovery_repeats = 1;
  }
  if (records) options.recovery_records = *records;
  if (bytes) options.target_bytes = *bytes;
  if (rounds) options.rounds = static_cast<int>(std::min<std::uint64_t>(*rounds, 100));
  return options;
}

// A fresh directory under `parent`, so that nothing of the caller's is touched or removed.
std::string make_work_dir(const std::string& parent) {
  std::string pattern = (parent.empty() ? std::string(".") : parent) + "/log_bench.XXXXXX";
  if (::mkdtemp(pattern.data()) != nullptr) return pattern;
  if (parent.empty()) {
    pattern = "/tmp/log_bench.XXXXXX";
    if (::mkdtemp(pattern.data()) != nullptr) return pattern;
  }
  fail("cannot create a working directory under " + (parent.empty() ? "." : parent) + ": " +
       std::strerror(errno));
}

std::string file_system_name(const std::string& dir) {
  struct statfs info {};
  if (::statfs(dir.c_str(), &info) != 0) return "unknown";
  switch (static_cast<unsigned long>(info.f_type)) {
    case 0xEF53:
      return "ext2/3/4";
    case 0x58465342:
      return "xfs";
    case 0x9123683E:
      return "btrfs";
    case 0x01021994:
      return "tmpfs (fdatasync is free here: the ceiling is meaningless)";
    case 0x794C7630:
      return "overlayfs";
    default: {
      char text[32];
      std::snprintf(text, sizeof text, "f_type 0x%lx", static_cast<unsigned long>(info.f_type));
      return text;
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  const auto options = parse_options(argc, argv);
  show_progress = ::isatty(STDOUT_FILENO) != 0;
  const auto work_dir = std::filesystem::absolute(make_work_dir(options.dir)).lexically_normal();
  const std::string work = work_dir.string();
  const std::string work_fs = file_system_name(work);  // while the directory exists
  weir::posix_file_system fs;

  const std::vector<append_case> cases = {
      {100, {weir::sync_policy::mode::always, {}}, 1},
      {100, {weir::sync_policy::mode::none, {}}, 1},
      {1024, {weir::sync_policy::mode::always, {}}, 1},
      {1024, {weir::sync_policy::mode::none, {}}, 1},
      {100, {weir::sync_policy::mode::always, {}}, 64},
      {100, {weir::sync_policy::mode::none, {}}, 64},
      {1024, {weir::sync_policy::mode::always, {}}, 64},
      {1024, {weir::sync_policy::mode::none, {}}, 64},
  };

  // Size every append row to write about target_bytes of log, like the ceiling.
  std::vector<std::uint64_t> case_messages;
  std::vector<std::uint64_t> case_call_bytes;
  for (const auto& c : cases) {
    const auto call_bytes = bytes_per_call(fs, work + "/probe", c);
    const std::uint64_t unit = c.per_call * static_cast<std::uint64_t>(options.producers);
    const std::uint64_t calls = std::max<std::uint64_t>(1, options.target_bytes / call_bytes);
    case_call_bytes.push_back(call_bytes);
    case_messages.push_back(std::max<std::uint64_t>(unit, calls * c.per_call / unit * unit));
  }

  // The reference chunk decides the target; the others show how much the batch
  // size alone moves the ceiling on this disk.
  struct ceiling_row {
    std::size_t chunk;
    raw_sync sync;
    std::vector<double> rates;
    bool overwrite = false;
  };
  std::vector<ceiling_row> ceilings;
  for (std::size_t chunk : {std::size_t{256} << 10, options.chunk_bytes, std::size_t{4} << 20}) {
    if (std::none_of(ceilings.begin(), ceilings.end(), [&](auto& r) { return r.chunk == chunk; })) {
      ceilings.push_back({chunk, raw_sync::each_chunk, {}});
    }
  }
  std::sort(ceilings.begin(), ceilings.end(),
            [](const auto& a, const auto& b) { return a.chunk < b.chunk; });
  ceilings.push_back({options.chunk_bytes, raw_sync::each_chunk, {}, true});
  ceilings.push_back({options.chunk_bytes, raw_sync::at_end, {}});
  ceilings.push_back({options.chunk_bytes, raw_sync::never, {}});

  std::vector<double> small_rate, small_p50, small_p99;
  std::vector<std::vector<append_result>> results(cases.size());
  for (int round = 1; round <= options.rounds; ++round) {
    const std::string of =
        " (round " + std::to_string(round) + "/" + std::to_string(options.rounds) + ")";
    // Every measurement of a round, in a shuffled order (seeded, so runs repeat):
    // a fixed order would give whatever the previous run left behind (freed
    // page-cache pages, discards, writeback) to the same rows every time.
    std::vector<std::function<void()>> tasks;
    for (auto& row : ceilings) {
      tasks.push_back([&, of] {
        progress("ceiling: raw writes of " + bytes_text(static_cast<double>(row.chunk)) + of);
        row.rates.push_back(
            raw_write_mb_per_s(work, options.target_bytes, row.chunk, row.sync, row.overwrite));
      });
    }
    tasks.push_back([&, of] {
      progress("ceiling: 4 KiB append + fdatasync" + of);
      const auto small = raw_small_syncs(work, options.small_syncs);
      small_rate.push_back(small.syncs_per_s);
      small_p50.push_back(small.p50_us);
      small_p99.push_back(small.p99_us);
    });
    for (std::size_t i = 0; i < cases.size(); ++i) {
      tasks.push_back([&, i, of] {
        const auto& c = cases[i];
        progress("weir append " + case_label(c) + " " + c.sync.to_string() + " x" +
                 std::to_string(c.per_call) + of);
        results[i].push_back(run_appends(work + "/append", c, case_messages[i], options));
      });
    }
    std::mt19937 shuffle_order(static_cast<std::mt19937::result_type>(round));
    std::shuffle(tasks.begin(), tasks.end(), shuffle_order);
    for (auto& task : tasks) {
      settle(work);
      task();
    }
  }

  progress("recovery: building a log of " + std::to_string(options.recovery_records) + " records");
  const std::string plain_dir = work + "/recovery-plain";
  const std::string snap_dir = work + "/recovery-snapshot";
  settle(work);
  const auto build_start = clock_type::now();
  build_recovery_log(fs, plain_dir, options.recovery_records, 0);
  const double build_seconds = seconds_since(build_start);
  progress("recovery: timing open() without a snapshot");
  const auto plain = time_recovery(fs, plain_dir, options.recovery_repeats);
  std::filesystem::remove_all(plain_dir);
  const std::uint64_t tail = std::max<std::uint64_t>(1, options.recovery_records / 100);
  progress("recovery: building a log with a snapshot near the end");
  build_recovery_log(fs, snap_dir, options.recovery_records, tail);
  progress("recovery: timing open() from the snapshot");
  const auto snap = time_recovery(fs, snap_dir, options.recovery_repeats);
  std::filesystem::remove_all(work_dir);
  progress_done();

  // --- report ---------------------------------------------------------------------------
  // The reference ceiling, as a median (compared with weir's medians) and as the
  // best round (compared with weir's best round): page-cache copies on this kind
  // of VM now and then run several times slower for a whole run, on both sides.
  double raw = 0;
  double raw_best = 0;
  for (const auto& row : ceilings) {
    if (row.sync == raw_sync::each_chunk && row.chunk == options.chunk_bytes && !row.overwrite) {
      raw = median(row.rates);
      raw_best = best(row.rates);
    }
  }
  std::printf(
      "weir log_bench: %s, %u hardware threads, %d round%s, %d producer%s, "
      "window %llu messages\n",
      options.quick ? "QUICK smoke run" : "full run", std::thread::hardware_concurrency(),
      options.rounds, options.rounds == 1 ? "" : "s", options.producers,
      options.producers == 1 ? "" : "s", static_cast<unsigned long long>(options.window));
  std::printf("directory: %s (%s; removed)\n", work.c_str(), work_fs.c_str());
  const weir::log_options defaults;
  std::printf(
      "append rows: log_options defaults except sync%s (pending_bytes_max %s, segment %s)\n",
      options.pending_bytes_max != 0 ? " and pending_bytes_max" : "",
      bytes_text(static_cast<double>(options.pending_bytes_max != 0 ? options.pending_bytes_max
                                                                    : defaults.pending_bytes_max))
          .c_str(),
      bytes_text(static_cast<double>(defaults.segment_bytes_max)).c_str());
  std::printf("MB = 1e6 bytes. Each append row and each raw write writes about %s.\n\n",
              format("%.0f MB", static_cast<double>(options.target_bytes) / mb).c_str());

  std::printf("Ceiling: the raw disk, same directory, same run (pwrite at the end of one file)\n");
  text_table ceiling({"measurement", "median", "best", "spread"});
  for (const auto& row : ceilings) {
    const auto chunk = bytes_text(static_cast<double>(row.chunk));
    std::string what;
    switch (row.sync) {
      case raw_sync::each_chunk:
        what = "write " + chunk + " + fdatasync, repeated" +
               (row.overwrite ? ", over a file already written (a reused segment)"
                : row.chunk == options.chunk_bytes ? "  <- reference"
                                                   : "");
        break;
      case raw_sync::at_end:
        what = "write " + chunk + " chunks, one fdatasync at the end";
        break;
      case raw_sync::never:
        what = "write " + chunk + " chunks, no fdatasync (page cache)";
        break;
    }
    ceiling.add({what, format("%.0f MB/s", median(row.rates)), format("%.0f MB/s", best(row.rates)),
                 percent(spread(row.rates))});
  }
  ceiling.add({"4 KiB append + fdatasync", si(median(small_rate)) + " syncs/s",
               si(best(small_rate)) + " syncs/s", percent(spread(small_rate))});
  ceiling.add({"  latency of one: p50 / p99",
               format("%.0f", median(small_p50)) + " / " + format("%.0f us", median(small_p99)), "",
               ""});
  ceiling.print();

  std::printf("\nAppends: publish() from %d producer thread%s, durable callbacks counted\n",
              options.producers, options.producers == 1 ? "" : "s");
  text_table appends({"payload", "sync", "msgs/call", "records/s", "msgs/s", "log MB/s",
                      "payload MB/s", "best log MB/s", "log/raw", "best/best", "spread"});
  text_table where({"payload", "sync", "msgs/call", "messages", "B/msg", "fdatasyncs",
                    "avg sync batch", "CPU cores", "CPU us/msg", "producer busy",
                    "writer in write()", "writer in fdatasync"});
  std::vector<std::string> verdicts;
  for (std::size_t i = 0; i < cases.size(); ++i) {
    const auto& c = cases[i];
    std::vector<double> msgs_s, log_mb_s, payload_mb_s, calls_s, batch_bytes, syncs, cores, cpu_us,
        write_share, sync_share, busy;
    for (const auto& r : results[i]) {
      const auto messages = static_cast<double>(r.messages);
      msgs_s.push_back(messages / r.seconds);
      calls_s.push_back(static_cast<double>(r.calls) / r.seconds);
      log_mb_s.push_back(static_cast<double>(r.log_bytes) / r.seconds / mb);
      payload_mb_s.push_back(messages * static_cast<double>(c.payload_size) / r.seconds / mb);
      syncs.push_back(static_cast<double>(r.syncs));
      batch_bytes.push_back(r.syncs == 0 ? 0 : static_cast<double>(r.log_bytes) / r.syncs);
      cores.push_back(r.cpu_seconds / r.seconds);
      cpu_us.push_back(r.cpu_seconds / messages * 1e6);
      write_share.push_back(r.write_seconds / r.seconds);
      sync_share.push_back(r.sync_seconds / r.seconds);
      busy.push_back(r.producer_busy);
    }
    const double ratio = median(log_mb_s) / raw;
    const double best_ratio = best(log_mb_s) / raw_best;
    const bool group_commit = c.sync.kind == weir::sync_policy::mode::always;
    const std::string per_call = c.per_call == 1 ? "1" : std::to_string(c.per_call) + " (extra)";
    appends.add({case_label(c), c.sync.to_string(), per_call, si(median(calls_s)),
                 si(median(msgs_s)), format("%.0f", median(log_mb_s)),
                 format("%.0f", median(payload_mb_s)), format("%.0f", best(log_mb_s)),
                 percent(ratio), percent(best_ratio), percent(spread(log_mb_s))});
    where.add(
        {case_label(c), c.sync.to_string(), per_call, si(static_cast<double>(case_messages[i])),
         format("%.0f", static_cast<double>(case_call_bytes[i]) / static_cast<double>(c.per_call)),
         format("%.0f", median(syncs)), group_commit ? bytes_text(median(batch_bytes)) : "-",
         format("%.2f", median(cores)), format("%.2f", median(cpu_us)), percent(median(busy)),
         percent(median(write_share)), percent(median(sync_share))});
    if (group_commit) {
      // Met only when both readings agree; when they straddle the target the
      // noise of this run is larger than the margin, and it says so.
      const bool median_met = ratio >= target_group_commit_ratio;
      const bool best_met = best_ratio >= target_group_commit_ratio;
      verdicts.push_back("group commit " + case_label(c) +
                         (c.per_call == 1 ? ", 1 msg/call" : ", 64 msgs/call (extra row)") + ": " +
                         percent(ratio) + " of raw (median), " + percent(best_ratio) +
                         " (best/best) -> " +
                         (median_met && best_met     ? "met"
                          : !median_met && !best_met ? "MISSED"
                                                     : "unclear (within the noise)"));
    }
  }
  appends.print();
  std::printf(
      "records/s = publish() calls (log records) per second; log MB/s counts framing;\n"
      "log/raw = median log MB/s / median reference raw rate (the target); best/best = best\n"
      "round of log MB/s / best round of the reference; spread = (max - min) / median.\n");

  std::printf("\nAppends: where the time went (medians)\n");
  where.print();
  std::printf(
      "B/msg = segment bytes per message after framing; avg sync batch = log bytes / fdatasyncs;\n"
      "CPU = process user+sys time (producer and writer threads) / wall time, and per message;\n"
      "producer busy = share of wall time the producer was publishing (not blocked on its\n"
      "window); writer in write() / fdatasync = share the log's writer thread spent there.\n");

  std::printf(
      "\nRecovery: checkpoint_log::open() of a log of 100 B single-message records, "
      "warm (files in the page cache)\n");
  text_table recovery(
      {"log", "records", "log MB", "replayed", "open() s", "records/s", "log MB/s"});
  auto add_recovery = [&](const std::string& what, const recovery_result& r) {
    const double n = static_cast<double>(options.recovery_records);
    recovery.add({what, si(n), format("%.0f", static_cast<double>(r.log_bytes) / mb),
                  si(static_cast<double>(r.records_replayed)), format("%.3f", r.seconds),
                  si(n / r.seconds),
                  format("%.0f", static_cast<double>(r.log_bytes) / r.seconds / mb)});
  };
  add_recovery("no snapshot (scan + CRC + apply all)", plain);
  add_recovery("snapshot at -" + si(static_cast<double>(tail)) + " records + tail", snap);
  recovery.print();
  std::printf(
      "records/s = records in the log / open() time (median of %d); building the log "
      "(sync none) ran at %s records/s.\n",
      options.recovery_repeats,
      si(static_cast<double>(options.recovery_records) / build_seconds).c_str());
  if (!snap.from_snapshot) std::printf("warning: the snapshot row did not start from a snapshot\n");

  const double plain_rate = static_cast<double>(options.recovery_records) / plain.seconds;
  verdicts.push_back("recovery without snapshot (warm): " + si(plain_rate) + " records/s -> " +
                     (plain_rate >= target_recovery_records_per_s ? "met" : "MISSED"));

  std::printf(
      "\nTargets: group-commit append >= %.0f%% of raw bandwidth; recovery >= %s "
      "records/s\n",
      target_group_commit_ratio * 100, si(target_recovery_records_per_s).c_str());
  for (const auto& v : verdicts) std::printf("  %s\n", v.c_str());
  if (options.quick) std::printf("(quick run: counts too small for the targets to be judged)\n");
  return 0;
}

#include "client_commands.hpp"

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>
#include <mutex>
#include <optional>
#include <random>
#include <thread>
#include <unordered_set>

#include <unistd.h>

#include <caf/all.hpp>

#include "message_format.hpp"
#include "system_config.hpp"

#include "weir/queue/consumer.hpp"
#include "weir/queue/producer.hpp"
#include "weir/node/remote_queue.hpp"
#include "weir/transport/link_options.hpp"
#include "weir/runtime/progress.hpp"

namespace weir::cli {

namespace {

using clock_type = std::chrono::steady_clock;

constexpr std::size_t sequence_bytes = 8;

// A client runs one actor and its queue proxy; the socket has threads of its
// own. A second scheduler thread only moved that work between cores: with one,
// 100 B flat-out runs delivered 7% more (bench/cpu_split.sh, six alternated runs).
constexpr int client_scheduler_threads = 1;

void put_sequence(char* payload, std::uint64_t k) {
  for (std::size_t i = 0; i < sequence_bytes; ++i) {
    payload[i] = static_cast<char>((k >> (8 * i)) & 0xff);
  }
}

bool get_sequence(std::string_view payload, std::uint64_t& k) {
  if (payload.size() < sequence_bytes) return false;
  k = 0;
  for (std::size_t i = 0; i < sequence_bytes; ++i) {
    k |= std::uint64_t{static_cast<unsigned char>(payload[i])} << (8 * i);
  }
  return true;
}

/// The sequence numbers a consumer has seen: a bitmap over the dense 1..N that
/// `weir produce` sends (a hash set cost an allocation per message), and a set
/// for numbers too large to keep a bitmap up to.
class seen_sequences {
 public:
  /// Room for 1..`expected` up front: growing the bitmap later copies it mid-run.
  explicit seen_sequences(std::uint64_t expected = 0)
      : bits_(static_cast<std::size_t>(std::min(expected, bitmap_bits_max) / 64 + 1)) {}

  /// True when `k` was not seen before.
  bool insert(std::uint64_t k) {
    if (k >= bitmap_bits_max) return others_.insert(k).second;
    const auto word = static_cast<std::size_t>(k / 64);
    if (word >= bits_.size()) bits_.resize(std::max(word + 1, 2 * bits_.size()));
    const auto mask = std::uint64_t{1} << (k % 64);
    const bool fresh = (bits_[word] & mask) == 0;
    bits_[word] |= mask;
    return fresh;
  }

 private:
  static constexpr std::uint64_t bitmap_bits_max = std::uint64_t{1} << 28;  // 32 MiB
  std::vector<std::uint64_t> bits_;
  std::unordered_set<std::uint64_t> others_;
};

std::int64_t wall_clock_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

double seconds_since(clock_type::time_point start) {
  return std::chrono::duration<double>(clock_type::now() - start).count();
}

std::string rate(std::uint64_t count, double seconds) {
  char text[64];
  std::snprintf(text, sizeof text, "%.0f",
                seconds > 0 ? static_cast<double>(count) / seconds : 0.0);
  return text;
}

std::string fixed3(double value) {
  char text[64];
  std::snprintf(text, sizeof text, "%.3f", value);
  return text;
}

/// Prints `NAME p50=X p99=Y max=Z` (and ` count=N` when asked) for the latencies,
/// nothing when there are none.
void print_latency_line(std::ostream& out, const char* name, std::vector<float>& samples,
                        bool with_count) {
  if (samples.empty()) return;
  // Selection, not a sort: a sort of millions of samples delayed the exit by a
  // tenth of a second.
  auto at = [&](double q) {
    const auto k = static_cast<std::size_t>(q * static_cast<double>(samples.size() - 1));
    std::nth_element(samples.begin(), samples.begin() + static_cast<std::ptrdiff_t>(k),
                     samples.end());
    return samples[k];
  };
  const auto p50 = at(0.5);
  const auto p99 = at(0.99);
  const auto max = *std::max_element(samples.begin(), samples.end());
  char line[200];
  std::snprintf(line, sizeof line, "%s p50=%.3f p99=%.3f max=%.3f", name, p50, p99, max);
  out << line;
  if (with_count) out << " count=" << samples.size();
  out << "\n";
}

/// Opens FILE for appending ids, or nothing when no file was asked for.
result<std::FILE*> open_ids_file(const std::string& path) {
  if (path.empty()) return static_cast<std::FILE*>(nullptr);
  auto* file = std::fopen(path.c_str(), "a");
  if (file == nullptr) {
    return status{errc_from_errno(errno), "cannot open " + path + ": " + std::strerror(errno)};
  }
  return file;
}

/// A remote queue whose requests give up after `request_timeout`, so that a
/// command's own --timeout or --idle-exit is never outlasted by a probe.
result<caf::actor> connect_queue(caf::actor_system& system, const std::string& address,
                                 const std::string& queue, const char* role,
                                 std::chrono::milliseconds request_timeout) {
  remote_queue_options options;
  options.address = address;
  options.queue = queue;
  options.request_timeout = std::max(std::chrono::milliseconds(100), request_timeout);
  options.link.node_id = std::string(role) + ":" + std::to_string(::getpid());
  return spawn_remote_queue(system, options);
}

/// The queue's probe as a status: not_found when the node says it has no such
/// queue, timed_out when the node was not reached by `deadline`.
status check_queue(caf::scoped_actor& self, const caf::actor& remote,
                   clock_type::time_point deadline) {
  const auto failed = probe_queue(self, remote, deadline);
  if (!failed) return {};
  return status{is_unknown_queue(failed) ? errc::not_found : errc::timed_out,
                error_text(self->system(), failed)};
}

constexpr std::size_t body_bytes_max = transport::message_body_bytes_max;

// Chunks of real bodies stay under this many bytes (and so each publish does,
// as the producer splits a chunk, not joins chunks), unless one body is larger.
constexpr std::size_t chunk_bytes_max = std::size_t{1} << 20;

/// Where `weir produce` takes its messages from: numbered filler, one --body, or lines.
class message_source {
 public:
  virtual ~message_source() = default;
  /// Appends up to `count_max` messages to `chunk`, stamped `now_ns`; false once
  /// nothing is left (or the input turned out bad: see failure()).
  virtual bool fill(std::vector<message_data>& chunk, std::uint64_t count_max,
                    std::int64_t now_ns) = 0;
  /// How many messages there are in all, when known before they are read.
  virtual std::optional<std::uint64_t> total() const = 0;
  /// Ok, or why the input stopped early.
  virtual status failure() const { return {}; }
};

/// Messages 1..count, each `size` bytes starting with its number.
class numbered_source final : public message_source {
 public:
  numbered_source(std::uint64_t count, std::uint32_t size) : count_(count), size_(size) {}

  bool fill(std::vector<message_data>& chunk, std::uint64_t count_max,
            std::int64_t now_ns) override {
    const auto n = std::min(count_max, count_ - next_ + 1);
    // The chunk's bodies share one buffer: one allocation, not one per message.
    chunk.reserve(n);
    auto bodies = std::make_shared<std::string>(n * size_, 'x');
    for (std::uint64_t i = 0; i < n; ++i, ++next_) {
      char* body = bodies->data() + i * size_;
      put_sequence(body, next_);
      chunk.push_back({"", shared_bytes(bodies, {body, size_}), {}, now_ns});
    }
    return next_ <= count_;
  }
  std::optional<std::uint64_t> total() const override { return count_; }

 private:
  std::uint64_t count_;
  std::uint32_t size_;
  std::uint64_t next_ = 1;
};

/// Real bodies: one --body, or each line of a stream; every message gets the
/// same key and headers.
class body_source final : public message_source {
 public:
  body_source(std::string key, std::vector<message_header> headers)
      : key_(std::move(key)), headers_(std::move(headers)) {}

  /// One message whose body is `body`.
  void set_body(std::string body) { body_ = std::move(body); }
  /// Each line of `in` (without its newline) is a message; `total` when counted first.
  void set_lines(std::unique_ptr<std::istream> owned, std::istream* in, std::string name,
                 std::optional<std::uint64_t> total) {
    owned_ = std::move(owned);
    in_ = in;
    name_ = std::move(name);
    total_ = total;
  }

  bool fill(std::vector<message_data>& chunk, std::uint64_t count_max,
            std::int64_t now_ns) override {
    if (in_ == nullptr) {
      if (!body_) return false;
      chunk.push_back({key_, shared_bytes(std::move(*body_)), headers_, now_ns});
      body_.reset();
      return false;
    }
    // The chunk's bodies share one buffer, cut into views once it is full.
    auto bodies = std::make_shared<std::string>();
    std::vector<std::pair<std::size_t, std::size_t>> spans;
    std::string line;
    bool more = true;
    while (spans.size() < count_max && bodies->size() < chunk_bytes_max) {
      if (!std::getline(*in_, line)) {
        more = false;
        if (in_->bad()) failure_ = status{errc::io_error, "reading " + name_ + " failed"};
        break;
      }
      ++line_number_;
      if (line.size() > body_bytes_max) {
        failure_ = status{errc::invalid_argument, too_large(line.size())};
        more = false;
        break;
      }
      spans.emplace_back(bodies->size(), line.size());
      *bodies += line;
    }
    chunk.reserve(spans.size());
    for (const auto& [offset, size] : spans) {
      chunk.push_back(
          {key_, shared_bytes(bodies, std::string_view(*bodies).substr(offset, size)), headers_,
           now_ns});
    }
    return more;
  }
  std::optional<std::uint64_t> total() const override {
    if (in_ == nullptr) return 1;
    return total_;
  }
  status failure() const override { return failure_; }

  std::string too_large(std::size_t size) const {
    return (in_ == nullptr ? std::string("the --body") : name_ + " line " + std::to_string(line_number_)) +
           " is " + std::to_string(size) + " bytes, over the " + std::to_string(body_bytes_max) +
           "-byte limit of one message";
  }

 private:
  std::string key_;
  std::vector<message_header> headers_;
  std::optional<std::string> body_;
  std::unique_ptr<std::istream> owned_;
  std::istream* in_ = nullptr;
  std::string name_;
  std::optional<std::uint64_t> total_;
  std::uint64_t line_number_ = 0;
  status failure_;
};

/// Counts the lines of `path` and checks each fits in a message, so that a bad
/// file is refused before anything of it is sent.
result<std::uint64_t> check_lines(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return status{errc_from_errno(errno), "cannot open --file " + path + ": " + std::strerror(errno)};
  }
  std::uint64_t lines = 0;
  for (std::string line; std::getline(in, line);) {
    ++lines;
    if (line.size() > body_bytes_max) {
      return status{errc::invalid_argument,
                    path + " line " + std::to_string(lines) + " is " + std::to_string(line.size()) +
                        " bytes, over the " + std::to_string(body_bytes_max) +
                        "-byte limit of one message; nothing was sent"};
    }
  }
  if (in.bad()) return status{errc::io_error, "reading --file " + path + " failed"};
  return lines;
}

/// The source the flags ask for, or why they do not fit together.
result<std::unique_ptr<message_source>> make_message_source(const produce_options& options) {
  const bool lines = options.lines || !options.file.empty();
  const bool real_bodies = options.body || lines;
  if (options.body && lines) {
    return status{errc::invalid_argument, "--body sends one message and --lines many: give one"};
  }
  if (real_bodies && options.count_given) {
    return status{errc::invalid_argument,
                  "--count numbers filler messages; it does not go with --body or --lines"};
  }
  if (!real_bodies && !options.count_given) {
    return status{errc::invalid_argument, "give --count N (numbered filler), --body TEXT or --lines"};
  }
  if (!real_bodies) {
    if (!options.key.empty() || !options.headers.empty()) {
      return status{errc::invalid_argument, "--key and --header go with --body or --lines"};
    }
    if (options.size < sequence_bytes) {
      return status{errc::invalid_argument,
                    "--size " + std::to_string(options.size) + " is below " +
                        std::to_string(sequence_bytes) +
                        " bytes, the size of the sequence number each message carries"};
    }
    return std::unique_ptr<message_source>(new numbered_source(options.count, options.size));
  }
  std::vector<message_header> headers;
  for (const auto& flag : options.headers) {
    auto header = parse_header(flag);
    if (!header) return header.error();
    headers.push_back(std::move(*header));
  }
  auto source = std::make_unique<body_source>(options.key, std::move(headers));
  if (options.body) {
    if (options.body->size() > body_bytes_max) {
      return status{errc::invalid_argument, source->too_large(options.body->size())};
    }
    source->set_body(*options.body);
  } else if (!options.file.empty()) {
    auto counted = check_lines(options.file);
    if (!counted) return counted.error();
    auto file = std::make_unique<std::ifstream>(options.file, std::ios::binary);
    if (!*file) return status{errc_from_errno(errno), "cannot open --file " + options.file};
    auto* in = file.get();
    source->set_lines(std::move(file), in, options.file, *counted);
  } else {
    source->set_lines(nullptr, &std::cin, "standard input", std::nullopt);
  }
  return std::unique_ptr<message_source>(std::move(source));
}

}  // namespace

int run_produce(const produce_options& options) {
  auto source = make_message_source(options);
  if (!source) {
    std::cerr << "weir produce: " << source.error().message() << "\n";
    return 2;
  }
  if (options.window == 0 || options.batch == 0) {
    std::cerr << "weir produce: --window and --batch must be positive\n";
    return 2;
  }
  auto ids = open_ids_file(options.ids_out);
  if (!ids) {
    std::cerr << "weir produce: " << ids.error().message() << "\n";
    return 2;
  }
  const auto start = clock_type::now();
  const auto deadline = start + std::chrono::duration_cast<clock_type::duration>(
                                    std::chrono::duration<double>(options.timeout_s));
  system_config config{client_scheduler_threads};
  caf::actor_system system{config};
  caf::scoped_actor self{system};
  auto remote = connect_queue(
      system, options.connect, options.queue, "produce",
      std::min<std::chrono::milliseconds>(
          std::chrono::seconds(5),
          std::chrono::duration_cast<std::chrono::milliseconds>(deadline - clock_type::now())));
  if (!remote) {
    std::cerr << "weir produce: " << remote.error().to_string() << "\n";
    return 2;
  }
  int exit_status = 0;
  std::atomic<std::uint64_t> confirmed{0};
  if (auto found = check_queue(self, *remote, deadline); !found) {
    std::cerr << "weir produce: " << found.message() << "\n";
    exit_status = found.code() == errc::not_found ? 2 : 1;
  } else {
    producer_options producer_settings;
    std::random_device entropy;
    producer_settings.producer_id = (std::uint64_t{entropy()} << 32 | entropy()) | 1;
    producer_settings.batch_max = options.batch;
    producer_settings.window = options.window;
    producer_settings.resend_timeout = std::chrono::milliseconds(1000);
    std::FILE* ids_file = *ids;
    producer_settings.on_confirmed = [&confirmed, ids_file](std::uint64_t up_to) {
      if (ids_file != nullptr) {
        for (auto k = confirmed.load() + 1; k <= up_to; ++k)
          std::fprintf(ids_file, "%llu\n", static_cast<unsigned long long>(k));
        std::fflush(ids_file);
      }
      confirmed = up_to;
    };
    auto producer = spawn_producer(system, *remote, producer_settings);
    bool timed_out = false;
    std::optional<progress_bar> progress;
    if (options.progress && (*source)->total()) progress.emplace("confirmed", *(*source)->total());
    // --rate paces from the first publish: counted from the process start, the
    // connect and probe time would be made up in one burst (30-50 k messages at
    // 700 k/s), which is not "at most R per second" and inflated the p99.
    const auto paced_from = clock_type::now();
    std::uint64_t sent = 0;
    for (bool more = true; more && !timed_out;) {
      if (progress) progress->update(confirmed.load());
      if (options.rate > 0) {
        std::this_thread::sleep_until(
            paced_from + std::chrono::duration_cast<clock_type::duration>(
                        std::chrono::duration<double>(static_cast<double>(sent) / options.rate)));
      }
      // Flat out, messages go to the producer actor a quarter window at a time (it
      // splits them into publishes of --batch): a hand-over per publish cost this
      // process a thread round trip each.
      const auto chunk_max =
          options.rate > 0
              ? std::min<std::uint64_t>(
                    options.batch,
                    std::max<std::uint64_t>(1, static_cast<std::uint64_t>(options.rate / 1000)))
              : std::max<std::uint64_t>(options.batch, options.window / 4);
      std::vector<message_data> chunk;
      more = (*source)->fill(chunk, chunk_max, wall_clock_ns());
      if (chunk.empty()) break;
      sent += chunk.size();
      const auto left =
          std::chrono::duration_cast<std::chrono::milliseconds>(deadline - clock_type::now());
      if (left.count() <= 0) {
        timed_out = true;
        break;
      }
      self->request(producer, left, send_atom::value, std::move(chunk))
          .receive([] {}, [&](const caf::error&) { timed_out = true; });
    }
    if (!timed_out) {
      const auto left =
          std::chrono::duration_cast<std::chrono::milliseconds>(deadline - clock_type::now());
      if (left.count() > 0) {
        self->request(producer, left, flush_atom::value)
            .receive([] {}, [&](const caf::error&) { timed_out = true; });
      } else {
        timed_out = true;
      }
    }
    self->send_exit(producer, caf::exit_reason::user_shutdown);
    self->wait_for(producer);
    if (progress) {
      progress->update(confirmed.load());
      progress->finish();
    }
    if (auto bad = (*source)->failure(); !bad) {
      // What came before the bad input was sent and stays sent; the count says how much.
      std::cerr << "weir produce: " << bad.message() << " (" << confirmed.load()
                << " message(s) before it confirmed)\n";
      exit_status = 2;
    } else if (const auto expected = (*source)->total().value_or(sent);
               confirmed.load() < expected || (timed_out && !(*source)->total())) {
      std::cerr << "weir produce: timed out after " << options.timeout_s << " s with "
                << confirmed.load() << " of " << expected << " confirmed\n";
      exit_status = 1;
    }
  }
  self->send_exit(*remote, caf::exit_reason::user_shutdown);
  self->wait_for(*remote);
  if (*ids != nullptr) std::fclose(*ids);
  const auto elapsed = seconds_since(start);
  std::cout << "confirmed=" << confirmed.load() << " elapsed_s=" << fixed3(elapsed)
            << " msg_per_s=" << rate(confirmed.load(), elapsed) << std::endl;
  return exit_status;
}

int run_consume(const consume_options& options) {
  if (options.credit == 0) {
    std::cerr << "weir consume: --credit must be positive\n";
    return 2;
  }
  auto ids = open_ids_file(options.ids_out);
  if (!ids) {
    std::cerr << "weir consume: " << ids.error().message() << "\n";
    return 2;
  }
  const auto start = clock_type::now();
  system_config config{client_scheduler_threads};
  caf::actor_system system{config};
  caf::scoped_actor self{system};
  const auto probe_deadline =
      start + (options.idle_exit_s > 0 ? std::chrono::duration_cast<clock_type::duration>(
                                             std::chrono::duration<double>(options.idle_exit_s))
                                       : std::chrono::seconds(30));
  auto remote = connect_queue(
      system, options.connect, options.queue, "consume",
      std::min<std::chrono::milliseconds>(std::chrono::seconds(5),
                                          std::chrono::duration_cast<std::chrono::milliseconds>(
                                              probe_deadline - clock_type::now())));
  if (!remote) {
    std::cerr << "weir consume: " << remote.error().to_string() << "\n";
    return 2;
  }
  std::atomic<std::uint64_t> received{0};
  std::atomic<std::uint64_t> unique{0};
  std::atomic<bool> output_failed{false};
  const bool json = options.format == "json";
  // With --print, standard output holds the messages only; the report goes to stderr.
  std::ostream& report = options.print ? std::cerr : std::cout;
  std::atomic<clock_type::rep> last_delivery{start.time_since_epoch().count()};
  // Set by the first delivery: the rate between first and last delivery leaves
  // out start-up and shutdown, as the raw ZeroMQ ceiling in bench/ does.
  std::atomic<clock_type::rep> first_delivery{0};
  int exit_status = 0;
  if (auto found = check_queue(self, *remote, probe_deadline); !found) {
    std::cerr << "weir consume: " << found.message() << "\n";
    exit_status = found.code() == errc::not_found ? 2 : 1;
  } else {
    consumer_options consumer_settings;
    consumer_settings.credit = options.credit;
    std::FILE* ids_file = *ids;
    if (ids_file != nullptr) consumer_settings.before_ack = [ids_file] { std::fflush(ids_file); };
    if (options.print) {
      // Acked only once written: a failed write (a closed pipe, a full disk) ends
      // the consumer before its acks, and the messages go to another consumer.
      consumer_settings.before_ack = [&output_failed] {
        if (std::fflush(stdout) != 0 || std::ferror(stdout)) {
          output_failed = true;
          throw std::runtime_error("writing standard output failed");
        }
      };
    }
    // Exactly --count unique messages are taken: the rest stay in the queue.
    if (options.count != 0) {
      consumer_settings.done = [&unique, count = options.count] { return unique.load() >= count; };
    }
    auto seen = std::make_shared<seen_sequences>(options.count);
    auto latencies_ms = std::make_shared<std::vector<float>>();
    // Grown up front: a doubling copy of millions of samples stalls the handler.
    latencies_ms->reserve(std::min<std::uint64_t>(options.count, std::uint64_t{1} << 26));
    // A new queue's first segment grows and every process starts cold: --warm-up
    // keeps that apart from the steady state (benchmarks report both).
    auto warm_up_latencies_ms = std::make_shared<std::vector<float>>();
    const auto warm_up = std::chrono::duration_cast<clock_type::duration>(
        std::chrono::duration<double>(options.warm_up_s));
    auto first_arrival = std::make_shared<std::optional<clock_type::time_point>>();
    // Where this batch's latencies go, decided once a batch.
    auto batch_latencies_ms = std::make_shared<std::vector<float>*>(latencies_ms.get());
    auto deliveries = std::make_shared<std::uint64_t>(0);
    // One clock read per batch, when it arrives (a read per delivery cost 7% of
    // this process): wall time is steady time plus the offset between the two at start.
    const auto wall_minus_steady_ns =
        wall_clock_ns() - std::chrono::duration_cast<std::chrono::nanoseconds>(
                              clock_type::now().time_since_epoch())
                              .count();
    auto batch_arrived = std::make_shared<clock_type::time_point>();
    consumer_settings.before_batch = [batch_arrived, first_arrival, batch_latencies_ms,
                                      latencies_ms, warm_up_latencies_ms, warm_up] {
      const auto now = clock_type::now();
      *batch_arrived = now;
      if (!*first_arrival) *first_arrival = now;
      *batch_latencies_ms =
          now - **first_arrival < warm_up ? warm_up_latencies_ms.get() : latencies_ms.get();
    };
    auto seen_ids = std::make_shared<std::unordered_set<std::uint64_t>>();
    auto handler = [&, seen, seen_ids, deliveries, ids_file, batch_latencies_ms,
                    batch_arrived](const delivery& d) {
      const auto now = *batch_arrived;
      if (d.attempt == 1 && d.data.publish_time_ns > 0) {
        const auto now_wall_ns =
            std::chrono::duration_cast<std::chrono::nanoseconds>(now.time_since_epoch()).count() +
            wall_minus_steady_ns;
        (*batch_latencies_ms)
            ->push_back(static_cast<float>(now_wall_ns - d.data.publish_time_ns) / 1e6f);
      }
      last_delivery = now.time_since_epoch().count();
      if (++*deliveries == 1) first_delivery = last_delivery.load();
      if (options.fail_every != 0 && *deliveries % options.fail_every == 0) {
        throw std::runtime_error("failed on purpose (--fail-every " +
                                 std::to_string(options.fail_every) + ")");
      }
      if (options.print) {
        if (json) {
          const auto line = json_line(d);
          std::fwrite(line.data(), 1, line.size(), stdout);
        } else {
          std::fwrite(d.data.payload.data(), 1, d.data.payload.size(), stdout);
        }
        std::fputc('\n', stdout);
        ++received;
        // Ids are counted only against --count (so the set stays that small):
        // a message redelivered to this same consumer is written again, not counted again.
        if (options.count == 0 || seen_ids->insert(d.id).second) ++unique;
        return;
      }
      std::uint64_t k = 0;
      if (!get_sequence(d.data.payload, k)) {
        throw std::runtime_error("payload of " + std::to_string(d.data.payload.size()) +
                                 " bytes carries no sequence number");
      }
      if (ids_file != nullptr) std::fprintf(ids_file, "%llu\n", static_cast<unsigned long long>(k));
      ++received;
      if (seen->insert(k)) ++unique;
      // Handled but not yet acked: a kill now leaves the delivery to be redelivered.
      if (options.delay_ms != 0) {
        std::this_thread::sleep_for(std::chrono::milliseconds(options.delay_ms));
      }
    };
    auto consumer = spawn_consumer(system, *remote, consumer_settings, handler);
    const auto idle = std::chrono::duration_cast<clock_type::duration>(
        std::chrono::duration<double>(options.idle_exit_s));
    for (;;) {
      if (output_failed.load()) {
        std::cerr << "weir consume: writing standard output failed; what was not written "
                     "stays unacked in the queue\n";
        exit_status = 1;
        break;
      }
      if (options.count != 0 && unique.load() >= options.count) break;
      const auto last = clock_type::time_point(clock_type::duration(last_delivery.load()));
      if (options.idle_exit_s > 0 && clock_type::now() - last >= idle) {
        if (options.count != 0) exit_status = 1;
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    self->send_exit(consumer, caf::exit_reason::user_shutdown);
    self->wait_for(consumer);
    if (options.warm_up_s > 0) {
      std::vector<float> all(*latencies_ms);
      all.insert(all.end(), warm_up_latencies_ms->begin(), warm_up_latencies_ms->end());
      print_latency_line(report, "all_latency_ms", all, true);
    }
    print_latency_line(report, "latency_ms", *latencies_ms, false);
    print_latency_line(report, "warm_up_latency_ms", *warm_up_latencies_ms, true);
    if (*deliveries > 1) {
      const auto window = std::chrono::duration<double>(
                              clock_type::duration(last_delivery.load() - first_delivery.load()))
                              .count();
      report << "first_to_last_delivery_s=" << fixed3(window)
                << " delivery_msg_per_s=" << rate(*deliveries - 1, window) << "\n";
    }
    // A round trip after the last ack: the node has read it before we close.
    self->request(*remote, std::chrono::seconds(2), list_atom::value, std::uint64_t{0},
                  std::uint32_t{0})
        .receive([](const std::vector<delivery>&) {}, [](const caf::error&) {});
  }
  self->send_exit(*remote, caf::exit_reason::user_shutdown);
  self->wait_for(*remote);
  if (*ids != nullptr) std::fclose(*ids);
  const auto elapsed = seconds_since(start);
  report << "received=" << received.load() << " unique=" << unique.load()
            << " elapsed_s=" << fixed3(elapsed) << " msg_per_s=" << rate(received.load(), elapsed)
            << std::endl;
  return exit_status;
}

int run_dlq(const dlq_options& options) {
  system_config config{client_scheduler_threads};
  caf::actor_system system{config};
  caf::scoped_actor self{system};
  auto remote =
      connect_queue(system, options.connect, options.queue, "dlq", std::chrono::seconds(10));
  if (!remote) {
    std::cerr << "weir dlq: " << remote.error().to_string() << "\n";
    return 2;
  }
  int exit_status = 0;
  auto fail = [&](const caf::error& error) {
    std::cerr << "weir dlq " << options.action << ": " << error_text(system, error) << "\n";
    exit_status = 2;
  };
  if (options.action == "list") {
    self->request(*remote, caf::infinite, list_atom::value, dead_letters_atom::value,
                  std::uint64_t{0}, options.limit)
        .receive(
            [&](const std::vector<delivery>& dead) {
              for (const auto& d : dead) {
                std::uint64_t k = 0;
                std::cout << "id=" << d.id;
                if (get_sequence(d.data.payload, k)) std::cout << " seq=" << k;
                std::cout << " bytes=" << d.data.payload.size();
                for (const auto& header : d.data.headers) {
                  std::cout << " " << header.name << "=\"" << header.value << "\"";
                }
                std::cout << "\n";
              }
              std::cout << "dead_letters=" << dead.size() << std::endl;
            },
            fail);
  } else {
    self->request(*remote, caf::infinite, replay_atom::value, options.limit)
        .receive([&](std::uint64_t moved) { std::cout << "replayed=" << moved << std::endl; },
                 fail);
  }
  self->send_exit(*remote, caf::exit_reason::user_shutdown);
  self->wait_for(*remote);
  return exit_status;
}

}  // namespace weir::cli

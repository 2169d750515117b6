#include "inspect_command.hpp"

#include <cstdio>

#include "message_format.hpp"
#include "weir/runtime/checkpoint_log.hpp"
#include "weir/runtime/progress.hpp"

namespace weir::cli {

namespace {

void print_json(const inspect_options& options, const recovery_report& report,
                const log_stats& stats, std::ostream& out) {
  out << "{\"dir\":" << json_string(options.dir)
      << ",\"ok\":" << (report.found_damage() ? "false" : "true");
  out << ",\"snapshot\":";
  if (report.snapshot_sequence) {
    out << "{\"sequence\":" << *report.snapshot_sequence
        << ",\"file\":" << json_string(report.snapshot_file) << "}";
  } else {
    out << "null";
  }
  out << ",\"segments\":[";
  for (std::size_t i = 0; i < report.segments.size(); ++i) {
    const auto& s = report.segments[i];
    out << (i ? "," : "") << "{\"file\":" << json_string(s.file) << ",\"number\":" << s.number
        << ",\"size_bytes\":" << s.size_bytes << ",\"records\":" << s.records
        << ",\"first_id\":" << s.first_id << ",\"end_id\":" << s.end_id << "}";
  }
  out << "],\"messages\":{\"next_id\":" << stats.next_id << ",\"published\":" << stats.published
      << ",\"acked\":" << stats.acked << ",\"dead_lettered\":" << stats.dead_lettered
      << ",\"lost\":" << stats.lost << ",\"ready\":" << stats.ready
      << ",\"unacked\":" << stats.unacked << "}";
  out << ",\"corruptions\":[";
  for (std::size_t i = 0; i < report.corruptions.size(); ++i) {
    const auto& c = report.corruptions[i];
    out << (i ? "," : "") << "{\"file\":" << json_string(c.file) << ",\"offset\":" << c.offset
        << ",\"bytes\":" << c.bytes << ",\"reason\":" << json_string(c.reason) << "}";
  }
  out << "],\"truncations\":[";
  for (std::size_t i = 0; i < report.truncations.size(); ++i) {
    const auto& t = report.truncations[i];
    out << (i ? "," : "") << "{\"file\":" << json_string(t.file) << ",\"offset\":" << t.offset
        << ",\"bytes\":" << t.bytes << ",\"reason\":" << json_string(t.reason) << "}";
  }
  out << "],\"warnings\":[";
  for (std::size_t i = 0; i < report.warnings.size(); ++i) {
    out << (i ? "," : "") << json_string(report.warnings[i]);
  }
  out << "]}\n";
}

void print_text(const inspect_options& options, const recovery_report& report,
                const log_stats& stats, std::ostream& out) {
  out << "log: " << options.dir << "\n";
  if (report.snapshot_sequence) {
    out << "snapshot: sequence " << *report.snapshot_sequence << " (" << report.snapshot_file
        << ")\n";
  } else {
    out << "snapshot: none\n";
  }
  out << "segments: " << report.segments.size() << "\n";
  for (const auto& s : report.segments) {
    out << "  " << s.file << "  bytes=" << s.size_bytes << " records=" << s.records;
    if (s.first_id < s.end_id) out << " ids=" << s.first_id << ".." << s.end_id - 1;
    out << "\n";
  }
  out << "messages: next_id=" << stats.next_id << " published=" << stats.published
      << " acked=" << stats.acked << " dead_lettered=" << stats.dead_lettered
      << " lost=" << stats.lost << "\n";
  out << "ready=" << stats.ready << " unacked=" << stats.unacked
      << " dead_letter=" << stats.dead_lettered << "\n";
  for (const auto& c : report.corruptions) {
    out << "corruption: " << c.file << " offset " << c.offset << ": " << c.bytes
        << " bytes skipped: " << c.reason << "\n";
  }
  for (const auto& t : report.truncations) {
    out << "torn tail: " << t.file << " offset " << t.offset << ": " << t.bytes
        << " bytes would be cut on open: " << t.reason << "\n";
  }
  for (const auto& w : report.warnings) out << "warning: " << w << "\n";
  out << (report.found_damage() ? "status: damaged\n" : "status: ok\n");
}

}  // namespace

int run_inspect(const inspect_options& options, std::ostream& out, std::ostream& err) {
  posix_file_system fs;
  log_options log_opts;
  log_opts.read_only = true;
  log_opts.verify_all_segments = true;
  log_opts.recovery_progress = progress_bar::callback("reading " + options.dir);
  auto log = checkpoint_log::open(fs, options.dir, log_opts);
  if (!log) {
    err << "weir inspect: " << log.error().to_string() << "\n";
    return 2;
  }
  const auto& report = (*log)->recovery();
  const auto stats = (*log)->stats();
  if (options.json) {
    print_json(options, report, stats, out);
  } else {
    print_text(options, report, stats, out);
  }
  return report.found_damage() ? 1 : 0;
}

}  // namespace weir::cli

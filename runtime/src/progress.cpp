#include "weir/runtime/progress.hpp"

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>

namespace weir {

namespace {

constexpr auto redraw_every = std::chrono::milliseconds(100);
constexpr int bar_width = 30;

}  // namespace

bool progress_bar::enabled() {
  return ::isatty(STDOUT_FILENO) != 0 && ::isatty(STDERR_FILENO) != 0 &&
         std::getenv("WEIR_NO_PROGRESS") == nullptr;
}

progress_bar::progress_bar(std::string label, std::uint64_t total)
    : label_(std::move(label)),
      total_(total),
      enabled_(enabled()),
      started_(std::chrono::steady_clock::now()),
      drawn_(started_ - redraw_every) {}

progress_bar::~progress_bar() {
  finish();
}

std::function<void(std::uint64_t, std::uint64_t)> progress_bar::callback(std::string label) {
  if (!enabled()) return {};
  auto bar = std::make_shared<std::unique_ptr<progress_bar>>();
  return [bar, label = std::move(label)](std::uint64_t done, std::uint64_t total) {
    if (total == 0) return;  // nothing to read: no bar
    if (!*bar) *bar = std::make_unique<progress_bar>(label, total);
    (*bar)->update(done);
    if (done >= total) (*bar)->finish();
  };
}

void progress_bar::update(std::uint64_t done) {
  done_ = done;
  if (!enabled_ || finished_) return;
  const auto now = std::chrono::steady_clock::now();
  if (now - drawn_ < redraw_every) return;
  drawn_ = now;
  draw();
}

void progress_bar::finish() {
  if (!enabled_ || finished_) return;
  finished_ = true;
  draw();
  std::fputc('\n', stderr);
}

void progress_bar::draw() {
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started_).count();
  const double rate = seconds > 0 ? static_cast<double>(done_) / seconds : 0;
  if (total_ == 0) {
    std::fprintf(stderr, "\r\033[K%s %llu (%.0f/s)", label_.c_str(),
                 static_cast<unsigned long long>(done_), rate);
  } else {
    const double fraction = std::min(1.0, static_cast<double>(done_) / static_cast<double>(total_));
    const int filled = static_cast<int>(fraction * bar_width);
    std::string bar(static_cast<std::size_t>(filled), '#');
    bar.resize(bar_width, '.');
    std::fprintf(stderr, "\r\033[K%s [%s] %3.0f%% %llu/%llu (%.0f/s)", label_.c_str(), bar.c_str(),
                 fraction * 100, static_cast<unsigned long long>(done_),
                 static_cast<unsigned long long>(total_), rate);
  }
  std::fflush(stderr);
}

}  // namespace weir

#include "orchlab/harness/progress.hpp"

#include <unistd.h>

#include <cmath>
#include <cstdio>

namespace orchlab::harness {

std::string format_seconds(double s) {
  if (!std::isfinite(s) || s < 0) s = 0;
  const long total = std::lround(s);
  char buf[32];
  if (total < 60)
    std::snprintf(buf, sizeof buf, "%lds", total);
  else
    std::snprintf(buf, sizeof buf, "%ld:%02ld", total / 60, total % 60);
  return buf;
}

Progress::Progress(std::size_t cells, double planned_s, bool quiet)
    : quiet_(quiet),
      tty_(::isatty(STDERR_FILENO) == 1),
      cells_(cells),
      planned_total_s_(planned_s),
      start_(std::chrono::steady_clock::now()) {
  if (!quiet_ && tty_) thread_ = std::thread([this] { ticker(); });
}

Progress::~Progress() { finish(); }

void Progress::begin_cell(std::size_t index, const std::string& name, double planned_s) {
  std::lock_guard lock(mutex_);
  index_ = index;
  name_ = name;
  rep_ = reps_ = 0;
  planned_cell_s_ = planned_s;
  cell_start_ = std::chrono::steady_clock::now();
  if (!quiet_ && tty_) redraw_locked();
}

void Progress::repetition(int index, int count) {
  std::lock_guard lock(mutex_);
  rep_ = index;
  reps_ = count;
  if (!quiet_ && tty_) redraw_locked();
}

void Progress::end_cell(const std::string& summary) {
  std::lock_guard lock(mutex_);
  planned_done_s_ += planned_cell_s_;
  if (quiet_ || tty_) return;
  const double cell_s =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - cell_start_).count();
  std::fprintf(stderr, "[%zu/%zu] %s  %s  (%.1fs)\n", index_ + 1, cells_, name_.c_str(),
               summary.c_str(), cell_s);
  std::fflush(stderr);
}

void Progress::finish() {
  {
    std::lock_guard lock(mutex_);
    if (stopping_) return;
    stopping_ = true;
    if (!quiet_ && tty_) {
      std::fprintf(stderr, "\r\033[K");
      std::fflush(stderr);
    }
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

std::string Progress::eta_locked() const {
  const double elapsed =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  const double cell_elapsed =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - cell_start_).count();
  // Drift: actual over planned time of what is done (cells plus the running
  // one, capped at its plan), applied to what is left.
  const double done_plan = planned_done_s_ + std::min(cell_elapsed, planned_cell_s_);
  const double ratio = done_plan > 1 ? elapsed / done_plan : 1.0;
  const double left = std::max(0.0, planned_total_s_ - done_plan) * std::max(1.0, ratio);
  return format_seconds(left);
}

void Progress::redraw_locked() {
  const double elapsed =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  std::string rep;
  if (reps_ > 1) rep = "  rep " + std::to_string(rep_ + 1) + "/" + std::to_string(reps_);
  std::fprintf(stderr, "\r\033[K[%zu/%zu] %s%s  elapsed %s  ETA %s", index_ + 1, cells_,
               name_.c_str(), rep.c_str(), format_seconds(elapsed).c_str(), eta_locked().c_str());
  std::fflush(stderr);
}

void Progress::ticker() {
  std::unique_lock lock(mutex_);
  while (!cv_.wait_for(lock, std::chrono::milliseconds(500), [this] { return stopping_; })) {
    if (!name_.empty()) redraw_locked();
  }
}

}  // namespace orchlab::harness

// Progress on stderr: on a terminal one line that updates in place (cell
// i/N, its name, elapsed, ETA); otherwise one line per finished cell, so a
// log stays readable. Silent with --quiet.
#pragma once

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <string>
#include <thread>

namespace orchlab::harness {

class Progress {
 public:
  /// `planned_s`: the sum of every cell's expected time; the ETA scales it
  /// by how far the run has drifted from plan so far.
  Progress(std::size_t cells, double planned_s, bool quiet);
  ~Progress();
  Progress(const Progress&) = delete;
  Progress& operator=(const Progress&) = delete;

  /// Cell `index` (0-based) starts; `planned_s` is its expected time.
  void begin_cell(std::size_t index, const std::string& name, double planned_s);
  /// The repetition being run, for the live line.
  void repetition(int index, int count);
  /// Cell done; `summary` is printed on the per-cell line (non-TTY).
  void end_cell(const std::string& summary);
  /// Clears the live line (before other output and at the end).
  void finish();

 private:
  void redraw_locked();
  void ticker();
  std::string eta_locked() const;

  const bool quiet_;
  const bool tty_;
  const std::size_t cells_;
  const double planned_total_s_;
  const std::chrono::steady_clock::time_point start_;
  std::mutex mutex_;
  std::condition_variable cv_;
  bool stopping_ = false;
  std::size_t index_ = 0;
  std::string name_;
  int rep_ = 0, reps_ = 0;
  double planned_done_s_ = 0;  ///< planned time of the cells already finished
  double planned_cell_s_ = 0;
  std::chrono::steady_clock::time_point cell_start_;
  std::thread thread_;
};

/// "1:05" / "12s".
std::string format_seconds(double s);

}  // namespace orchlab::harness

// The report: Google Benchmark's JSON layout (context, benchmarks[] with one
// entry per repetition plus _mean/_median/_stddev/_cv aggregates) with the
// lab's metrics as flat fields, and a "lab" section holding metric metadata
// and per-cell time series. See docs/harness.md for every field.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "orchlab/histogram.hpp"

namespace orchlab::harness {

/// 100 ms buckets over one repetition (the measured window, then the drain).
struct Series {
  int bucket_ms = 100;
  double window_ms = 0;  ///< where the measured window ends and the drain begins
  std::vector<std::uint64_t> started;   ///< orchestrations started in the bucket
  std::vector<std::uint64_t> finished;  ///< orchestrations returned in the bucket
  std::vector<std::int64_t> in_flight;  ///< started - finished, at the bucket's end
  std::vector<std::int64_t> live_tasks; ///< census live tasks, sampled
  std::vector<std::int64_t> os_threads; ///< threads of the process, sampled
};

/// Totals of the mock services' /__stats over one repetition (deltas).
struct ServerTotals {
  std::uint64_t requests = 0;
  std::uint64_t client_aborts = 0;
  std::uint64_t completed_after_deadline = 0;
  double work_past_deadline_ms = 0;
  double abort_lag_p99_ms = 0;  ///< the worst service's p99
  std::uint64_t max_in_flight = 0;  ///< the busiest service's
  int unreachable = 0;  ///< services whose /__stats could not be read
};

/// One repetition of one cell: everything measured, before formatting.
struct Measurement {
  std::string scenario;
  std::string pattern;
  int fanout = 0;
  int concurrency = 0;
  int deadline_ms = 0;
  int repetitions = 1;
  int repetition_index = 0;
  int family_index = 0;               ///< scenario/pattern, in sweep order
  int per_family_instance_index = 0;  ///< fanout/concurrency within it
  std::optional<std::string> infeasible;  ///< set: not run, and why

  double wall_s = 0;  ///< first start to last return
  std::uint64_t orchestrations = 0;
  LogHistogram latency_ns;    ///< per orchestration (open loop: from the intended start)
  LogHistogram overshoot_ns;  ///< max(0, latency - deadline), per orchestration
  std::uint64_t complete = 0, partial = 0, failed = 0, timed_out = 0;
  std::uint64_t calls = 0, call_ok = 0, call_http_errors = 0, call_transport_errors = 0,
                call_cancelled = 0, call_unanswered = 0;
  std::uint64_t late_starts = 0, dropped_starts = 0;  ///< open loop only

  std::uint64_t leaked_tasks_at_return = 0;
  std::int64_t leaked_tasks_end = 0;
  double zombie_task_s = 0;
  std::uint64_t late_completions = 0;
  std::int64_t threads_peak = 0, threads_end = 0;
  double drain_ms = 0;
  bool drained = true;  ///< false: live tasks remained after the bounded drain

  bool pool_measured = false;  ///< false for patterns with their own client (async-group)
  LogHistogram pool_wait_ns;
  std::uint64_t pool_exhausted = 0;

  std::uint64_t lock_wait_ns = 0, lock_contended = 0;
  double cpu_s = 0;
  std::int64_t ctx_switches_voluntary = 0, ctx_switches_involuntary = 0;
  std::int64_t rss_peak_kb = 0;

  std::optional<ServerTotals> server;  ///< empty when no service answered /__stats
  Series series;
};

/// Fields of the report context that the run knows (the rest comes from the host).
struct RunInfo {
  std::string date;  ///< when the run started (context "date"); empty: now
  std::string executable;
  std::string command_line;
  bool interrupted = false;
};

/// One benchmarks[] entry for a repetition.
nlohmann::ordered_json benchmark_entry(const Measurement& m);

/// The _mean, _median, _stddev and _cv entries of one cell's repetitions
/// (none when fewer than two ran, as Google Benchmark does). Latency
/// percentiles in _mean come from the histograms merged over the repetitions.
std::vector<nlohmann::ordered_json> aggregate_entries(const std::vector<const Measurement*>& reps);

/// The context object (Google Benchmark's fields plus orchlab's).
nlohmann::ordered_json context_json(const RunInfo& info);

/// The local time now, as Google Benchmark writes context.date
/// ("2026-01-01T12:00:00+00:00").
std::string date_now();

/// lab.metrics: unit, better (lower|higher|none) and must_be_zero_for.
nlohmann::ordered_json metrics_metadata();

/// The whole report. `scenarios` is the lab.scenarios description (may be null).
nlohmann::ordered_json build_report(const RunInfo& info, const std::vector<Measurement>& measurements,
                            const nlohmann::ordered_json& scenarios);

/// Writes `doc` to `path` through a temp file in the same folder and a rename,
/// so a reader never sees half a report. Creates the folder. Throws
/// std::runtime_error on failure.
void write_atomic(const std::filesystem::path& path, const nlohmann::ordered_json& doc);

/// The flat metric fields every benchmarks[] entry carries, in DESIGN.md order.
const std::vector<std::string>& metric_fields();

}  // namespace orchlab::harness

// The report: Google Benchmark's JSON layout (context, benchmarks[] with one
// entry per repetition plus _mean/_median/_stddev/_cv aggregates) with the
// lab's metrics as flat fields, and a "lab" section holding metric metadata
// and per-cell time series. See docs/harness.md for every field.
#pragma once

#include <cstdint>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <optional>
#include <ostream>
#include <string>
#include <string_view>
#include <vector>

#include "orchlab/harness/system.hpp"
#include "orchlab/histogram.hpp"

namespace orchlab::harness {

/// 100 ms buckets over one repetition (the measured window, then the drain).
struct Series {
  int bucket_ms = 100;
  double window_ms = 0;                  ///< where the measured window ends and the drain begins
  std::vector<std::uint64_t> started;    ///< orchestrations started in the bucket
  std::vector<std::uint64_t> finished;   ///< orchestrations returned in the bucket
  std::vector<std::int64_t> in_flight;   ///< started - finished, at the bucket's end
  std::vector<std::int64_t> live_tasks;  ///< census live tasks, sampled
  std::vector<std::int64_t> os_threads;  ///< threads of the process, sampled
  /// A Go driver's runtime.NumGoroutine(), sampled (empty for C++ cells).
  std::vector<std::int64_t> goroutines;
};

/// Totals of the services' /__stats over one repetition (deltas). A field
/// is empty (null in the report) when any service did not report it: a
/// service without orchlab's /__stats is unknown, never 0.
struct ServerTotals {
  std::optional<std::uint64_t> requests;
  std::optional<std::uint64_t> client_aborts;
  std::optional<std::uint64_t> completed_after_deadline;
  std::optional<double> work_past_deadline_ms;
  std::optional<double> abort_lag_p99_ms;      ///< the worst service's p99
  std::optional<std::uint64_t> max_in_flight;  ///< the busiest service's
  int unreachable = 0;                         ///< services whose /__stats could not be read
  /// Why a field is empty (which service, which field), for lab.notes.
  std::vector<std::string> notes;
};

/// One repetition of one cell: everything measured, before formatting.
struct Measurement {
  std::string scenario;
  std::string pattern;
  /// What runs the exhibit: "cpp-thread" (a thread per call), "cpp-asio"
  /// (coroutines on an io_context) or "go" (the driver orchlab-go).
  std::string runtime;
  int fanout = 0;
  int concurrency = 0;
  int deadline_ms = 0;
  int repetitions = 1;
  int repetition_index = 0;
  int family_index = 0;                   ///< scenario/pattern, in sweep order
  int per_family_instance_index = 0;      ///< fanout/concurrency within it
  std::optional<std::string> infeasible;  ///< set: not run, and why

  double warmup_s = 0;  ///< load before the window, not counted
  double window_s = 0;  ///< the measured window (the scenario's duration)
  double wall_s = 0;  ///< window start to the last counted return (>= window_s when one ended late)
  /// Orchestrations whose (intended) start fell inside the window: every
  /// latency, verdict and call count below is theirs.
  std::uint64_t orchestrations = 0;
  /// Those of them that also returned inside the window: the throughput.
  std::uint64_t completed_in_window = 0;
  LogHistogram latency_ns;    ///< per orchestration (open loop: from the intended start)
  LogHistogram overshoot_ns;  ///< max(0, latency - deadline), per orchestration
  std::uint64_t complete = 0, partial = 0, failed = 0, timed_out = 0;
  /// Of `failed`: orchestrations whose run() threw (a thread that could not
  /// be created, memory that ran out); the first one's time since the window
  /// began, unset when none threw.
  std::uint64_t orchestrations_threw = 0;
  std::optional<double> first_throw_ms;
  std::uint64_t calls = 0, call_ok = 0, call_http_errors = 0, call_transport_errors = 0,
                call_cancelled = 0, call_unanswered = 0;
  // Open loop only.
  bool open_loop = false;
  double target_rate = 0;            ///< orchestrations per second the schedule asks for
  std::uint64_t starts_late = 0;     ///< began more than 1 ms after their intended start
  std::uint64_t starts_expired = 0;  ///< deadline passed in the queue: timed out, never run

  std::uint64_t leaked_tasks_at_return = 0;
  std::int64_t leaked_tasks_end = 0;
  double zombie_task_s = 0;
  std::uint64_t late_completions = 0;
  /// OS threads of the process when the repetition began (after the previous
  /// one drained); peak and end are counted above it, the peak sampled every
  /// 10 ms.
  std::int64_t threads_baseline = 0;
  std::int64_t threads_peak = 0, threads_end = 0;
  /// false: threads_end is unknown (a driver's callers return inside its
  /// process, where the harness cannot see the moment).
  bool threads_end_measured = true;
  /// The census's live tasks (threads or coroutine calls of this
  /// repetition's orchestrations), peak of the 10 ms samples: the calls in
  /// flight at once, whatever carries them.
  std::int64_t live_tasks_peak = 0;
  double drain_ms = 0;
  bool drained = true;  ///< false: live tasks remained after the bounded drain

  bool pool_measured = false;  ///< false for patterns with their own client (async-group)
  LogHistogram pool_wait_ns;
  std::uint64_t pool_exhausted = 0;

  std::uint64_t lock_wait_ns = 0, lock_contended = 0;
  bool lock_measured = true;  ///< false: no profiled lock (a driver's exhibit)
  double cpu_s = 0;
  std::int64_t ctx_switches_voluntary = 0, ctx_switches_involuntary = 0;
  /// Resident memory above the repetition's baseline: free heap is returned
  /// to the system (malloc_trim) and the high-water mark reset before it, so
  /// an earlier cell's heap is neither counted nor reused unseen.
  std::int64_t rss_baseline_kb = 0;
  std::int64_t rss_peak_kb = 0;
  /// Caveats for lab.notes (deduplicated over the run).
  std::vector<std::string> notes;

  std::optional<ServerTotals> server;  ///< empty: the services were not asked (not run)
  Series series;

  /// Callers (closed loop) or workers (open loop) this process ran: the
  /// concurrency, or a shard's part of it (orchlab run --shard).
  int callers = 0;
  /// When the measured window began, in ns since the Unix epoch (this host's
  /// clock): what `orchlab merge` checks the shards' windows against.
  std::int64_t window_start_unix_ns = 0;
  /// A merged cell (orchlab merge): each shard's process metrics (threads,
  /// memory, drain), which are not summed: the entry's own fields for them
  /// are null and this list says what every shard measured. Empty otherwise.
  std::vector<nlohmann::ordered_json> shard_process;
  /// A driver's own fields (exhibit_form, go_version, goroutines_*, ...),
  /// written into the entry after the common ones. Empty for C++ cells.
  nlohmann::ordered_json runtime_fields = nlohmann::ordered_json::object();
};

/// The shard a report's process drove (orchlab run --shard I/N).
struct ShardInfo {
  int index = 0;
  int count = 1;
  std::int64_t start_at_unix_ns = 0;  ///< the common start instant
  std::string host;
  /// "shared": every shard called the same services (--services URLs), so
  /// each one's /__stats deltas saw all shards' calls; "own": each shard
  /// started services of its own (embedded, inprocess).
  std::string services = "shared";
};

/// Fields of the report context that the run knows (the rest comes from the host).
struct RunInfo {
  std::string date;  ///< when the run started (context "date"); empty: now
  std::string executable;
  std::string command_line;
  bool interrupted = false;
  /// Seed of the per-repetition cell order (context "shuffle_seed").
  std::uint64_t shuffle_seed = 0;
  std::optional<ShardInfo> shard;  ///< context.shard; empty: not sharded
  /// The host measured before the first cell (context.host_before_run);
  /// empty: not measured (null).
  std::optional<sys::HostLoad> host_before_run;
  /// context.runtimes: per runtime, what ran it (the Go driver's path, or
  /// why it is not built). Null when empty.
  nlohmann::ordered_json runtimes;
};

/// `{"buckets": [[lower, upper, count], ...], "count", "min", "max", "sum"}`:
/// the non-empty buckets in order, bounds inclusive as LogHistogram defines
/// them. Merging two = adding the counts of equal buckets.
nlohmann::ordered_json histogram_json(const LogHistogram& h);

/// The histogram histogram_json wrote; std::nullopt (and `why`) when `j` is
/// not one (a bucket whose bounds are not the lab's, counts that do not add
/// up, min or max outside the buckets).
std::optional<LogHistogram> histogram_from_json(const nlohmann::json& j, std::string& why);

/// ISO-8601 UTC of a Unix time in ns ("2026-12-04T13:00:00.250Z").
std::string iso8601_utc(std::int64_t unix_ns);

/// "scenario/pattern/fanout:N/concurrency:C": the cell a measurement is a
/// repetition of (the key of lab.series; run_name adds "/real_time").
std::string cell_name(const Measurement& m);

/// True for the patterns that cancel the siblings on their first error
/// (cancellable-group, bounded-group, async-group; not the +collect-all
/// variants): their cells are the "first-error cells" of the invariants.
bool cancels_on_first_error(std::string_view pattern);

/// The report invariants on a repetition's server counts (docs/harness.md,
/// "Invariants"): client aborts no more than calls, requests no fewer than
/// the calls answered over HTTP, and in a first-error cell no more client
/// aborts than fan-out - 1 per orchestration an error ended (fan-out for one
/// the deadline ended). A count that breaks one cannot be true: it is
/// refused (null) and a note says which, with the numbers. Returns how many
/// were refused. Not for a shard's own report when the shards share their
/// services (its counts hold every shard's calls): merge checks the sum.
int refuse_impossible(Measurement& m);

/// One benchmarks[] entry for a repetition.
nlohmann::ordered_json benchmark_entry(const Measurement& m);

/// The measurement benchmark_entry(m) was written from: every field the
/// entry carries (the histograms too) and the driver fields merge keeps
/// (driver, exhibit_form, go_version, gomaxprocs, go_transport); not the
/// series, the notes or the server's notes, which the entry does not hold.
/// Throws std::invalid_argument, naming the entry, when a histogram is not
/// one or a run entry has none.
Measurement measurement_from_entry(const nlohmann::ordered_json& e);

/// The build a report comes from (context.orchlab_version, git_sha,
/// build_type, compiler, sanitizer), as one object: a run's journal is
/// resumed by the same build only.
nlohmann::ordered_json build_json();

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
nlohmann::ordered_json build_report(const RunInfo& info,
                                    const std::vector<Measurement>& measurements,
                                    const nlohmann::ordered_json& scenarios);

/// Writes `doc` to `path` through a temp file in the same folder and a rename,
/// so a reader never sees half a report. Creates the folder. Throws
/// std::runtime_error on failure.
void write_atomic(const std::filesystem::path& path, const nlohmann::ordered_json& doc);

/// The fields of an entry that describe one process rather than the cell's
/// orchestrations: kept per shard when shards are merged.
const std::vector<std::string>& process_fields();

/// Writes `doc` to `out` in the report's layout (what write_atomic writes).
void write_report(std::ostream& out, const nlohmann::ordered_json& doc);

/// The flat metric fields every benchmarks[] entry carries, in DESIGN.md order.
const std::vector<std::string>& metric_fields();

}  // namespace orchlab::harness

// The orchlab command line: `orchlab run [options]`, `orchlab list`,
// `orchlab --help`. Parsing only; nothing runs here.
#pragma once

#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "orchlab/harness/scenario.hpp"

namespace orchlab::harness {

/// A command-line mistake; what() names the flag. The caller prints it with
/// the usage and exits 2.
class UsageError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// Everything `orchlab run` was asked for.
struct RunOptions {
  std::vector<std::string> scenarios;  ///< NAME or FILE each; empty: "default"
  Overrides overrides;
  /// Where the services run: an orchlab-mock child (embedded, the default),
  /// a MockFleet inside this process (inprocess), or `service_urls`.
  enum class ServicesMode { embedded, inprocess, remote };
  ServicesMode services = ServicesMode::embedded;
  std::vector<std::string> service_urls;  ///< --services URLs, as written; empty unless remote
  std::string mock_binary;                ///< --mock-binary; empty: find_mock_binary()'s search
  std::string go_driver;                  ///< --go-driver; empty: find_go_driver()'s search
  std::string out;                        ///< empty: results/<UTC stamp>/report.json
  /// --trace FILE: Chrome trace-event JSON of sampled orchestrations of
  /// each cell's first repetition; empty: no trace.
  std::string trace;
  /// --trace-scenarios a,b: trace only the cells of these scenarios (names
  /// as the run's scenarios are named); empty: every scenario's cells.
  std::vector<std::string> trace_scenarios;
  bool quiet = false;
  /// false (--no-thread-budget): run thread-per-call cells the thread
  /// estimate would refuse as infeasible.
  bool thread_budget = true;
  /// Seed of the shuffled cell order inside each repetition; unset: random
  /// (recorded in the report's context either way).
  std::optional<std::uint64_t> shuffle_seed;
  std::string command_line;  ///< argv joined, for the report context
  /// The arguments after `run` that decide what is measured: all but
  /// --out, --quiet, --seed and --resume (the run's identity in its journal).
  std::vector<std::string> identity_args;
  /// --resume DIR|REPORT: continue the run whose journal is REPORT.journal
  /// (DIR: DIR/report.json); empty: a new run.
  std::string resume;
  /// --shard I/N (else JOB_COMPLETION_INDEX and ORCHLAB_SHARD_COUNT): this
  /// process drives callers or starts I, I+N, ... of every cell.
  bool sharded = false;
  int shard_index = 0;
  int shard_count = 1;
  /// --start-at (else ORCHLAB_START_AT): the common start instant, ns since
  /// the Unix epoch.
  std::optional<std::int64_t> start_at_unix_ns;
};

/// Everything `orchlab merge` was asked for.
struct MergeOptions {
  std::string out;                  ///< -o; "-" is stdout
  std::vector<std::string> inputs;  ///< the shards' reports
  std::string command_line;
};

struct Command {
  enum class Kind { run, list, merge, help, version };
  Kind kind = Kind::help;
  RunOptions run;
  MergeOptions merge;
};

/// Parses argv. Options without a command mean `run`; "--flag value" and
/// "--flag=value" are both accepted. Throws UsageError.
Command parse_command_line(int argc, const char* const* argv);

/// The --help text (wrk's aligned style, ending with an Example line).
std::string usage();

/// "2s", "500ms", "1.5", "2m", "1h" -> seconds (a bare number is seconds).
/// Throws UsageError naming `flag`. Negative values are returned as given,
/// so validation can name the field.
double parse_duration(const std::string& text, const std::string& flag);

/// "200/s", "200", "12k/s", "5/ms" -> per second. Throws UsageError naming `flag`.
double parse_rate(const std::string& text, const std::string& flag);

/// "2/4" -> {2, 4}: shard 2 of 4 (0 <= I < N). Throws UsageError naming `flag`.
std::pair<int, int> parse_shard(const std::string& text, const std::string& flag);

/// "2026-12-04T13:00:00Z" (also with .fff or +00:00) or epoch seconds
/// ("1796389200", "1796389200.5") -> ns since the Unix epoch. Throws
/// UsageError naming `flag`.
std::int64_t parse_instant(const std::string& text, const std::string& flag);

/// "3,10,30" -> {3, 10, 30}. Throws UsageError naming `flag`.
std::vector<int> parse_int_list(const std::string& text, const std::string& flag);

}  // namespace orchlab::harness

// Scenarios: what a run measures. A scenario file names the mock services,
// the deadline and the sweep (patterns x fanout x concurrency); a sweep file
// ("include") bundles several scenarios with overrides. Everything is
// validated before anything starts, so bad input never leaves a half run.
#pragma once

#include <filesystem>
#include <nlohmann/json.hpp>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace orchlab::harness {

/// How orchestrations are started.
enum class Mode {
  closed,  ///< C callers, each starting the next orchestration when the last returns
  open,    ///< a fixed arrival schedule at `rate`; latency from the intended start
};

/// Bad scenario input. what() names the file and the field ("scenario
/// one-hangs.json: fanout[1]: must be >= 1, got 0").
class ScenarioError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// One validated scenario (a single file, or one entry of a sweep).
struct Scenario {
  std::string name;
  std::string description;
  /// Mock service objects, exactly as orchlab-mock's config takes them.
  nlohmann::json services = nlohmann::json::array();
  int deadline_ms = 100;
  std::vector<int> fanout{3};
  std::vector<int> concurrency{16};
  /// Pattern names, "all" already expanded.
  std::vector<std::string> patterns;
  double duration_s = 1.0;
  int repetitions = 1;
  Mode mode = Mode::closed;
  double rate = 0;  ///< open loop: orchestrations per second (all workers together)
  /// Open loop: the intended starts are evenly spaced, or a Poisson process
  /// of the same mean rate ("arrivals": "poisson").
  bool poisson = false;
  /// Seconds of load before each repetition's window, not counted. Negative:
  /// the default, 10 % of the window and at least 0.2 s (warmup_seconds()).
  double warmup_s = -1;
  std::size_t max_conns_per_host = 64;
  int limit = 16;  ///< bounded-group: concurrency limit per orchestration
  /// The Go exhibits' net/http transport: "lab" (MaxConnsPerHost =
  /// max_conns_per_host, as the C++ pool) or "default" (Go's defaults: no
  /// per-host bound, 2 idle connections per host). C++ cells ignore it.
  std::string go_transport = "lab";
  std::string origin;  ///< file it came from (for messages)
};

/// The warm-up a repetition of `s` runs before its window.
double warmup_seconds(const Scenario& s);

/// Command-line overrides; an unset field keeps the scenario's value.
struct Overrides {
  std::optional<std::vector<std::string>> patterns;  ///< may hold "all"
  std::optional<std::vector<int>> fanout;
  std::optional<std::vector<int>> concurrency;
  std::optional<double> duration_s;
  std::optional<int> repetitions;
  std::optional<Mode> mode;
  std::optional<double> rate;
  std::optional<bool> poisson;
  std::optional<double> warmup_s;
};

/// Maps `name_or_file` to a file: an existing path as given, else (when it is
/// relative) NAME or folder/NAME, with .json added when it has no extension, in
/// each of `search_dirs` (in order). Throws ScenarioError listing where it looked.
std::filesystem::path resolve_scenario(const std::string& name_or_file,
                                       const std::vector<std::filesystem::path>& search_dirs);

/// Reads and validates a scenario or sweep file; a sweep expands to one
/// Scenario per "include" entry (resolved in the file's folder, then
/// `search_dirs`). `known_patterns` validates pattern names and expands "all",
/// but for those in `not_in_all` (known, not runnable here: the Go exhibits
/// when orchlab-go is not built), which only a name given explicitly brings
/// in. Overrides apply last and are validated like file fields.
std::vector<Scenario> load_scenarios(const std::string& name_or_file,
                                     const std::vector<std::filesystem::path>& search_dirs,
                                     const std::vector<std::string>& known_patterns,
                                     const Overrides& overrides = {},
                                     const std::vector<std::string>& not_in_all = {});

/// Validates one scenario object (no "include"). `where` prefixes messages.
Scenario parse_scenario(const nlohmann::json& doc, const std::string& where,
                        const std::vector<std::string>& known_patterns,
                        const Overrides& overrides = {},
                        const std::vector<std::string>& not_in_all = {});

/// One measured unit: scenario x pattern x fanout x concurrency.
struct Cell {
  const Scenario* scenario = nullptr;
  std::string pattern;
  int fanout = 0;
  int concurrency = 0;
  /// "scenario/pattern/fanout:N/concurrency:C" (the benchmark run_name).
  std::string name() const;
};

/// Every cell of `scenarios`, in sweep order: scenario, pattern, fanout,
/// concurrency. The cells point into `scenarios`.
std::vector<Cell> expand_cells(const std::vector<Scenario>& scenarios);

std::string_view to_string(Mode mode);

}  // namespace orchlab::harness

// Exhibits in another language: a driver program runs one repetition of one
// cell in its own process (protocol 1, docs/drivers.md) and prints one
// measurement; the harness spawns it, measures its process from /proc, reads
// the services around it, and turns whatever goes wrong into an infeasible
// cell with the reason.
#pragma once
#include <chrono>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "orchlab/harness/driver.hpp"
#include "orchlab/harness/report.hpp"

namespace orchlab::harness {

/// The Go exhibits orchlab-go runs (its --list), in the order `all` adds them.
const std::vector<std::string>& go_pattern_names();

/// Where the Go driver was found, or why it was not.
struct DriverLookup {
  std::optional<std::string> path;  ///< empty: not found
  std::string found_by;             ///< "--go-driver", "ORCHLAB_GO_DRIVER", "build tree", "PATH"
  std::string why_not;              ///< when not found: where it looked
};

/// Finds orchlab-go: `flag` (--go-driver), else $ORCHLAB_GO_DRIVER, else
/// ../../go/orchlab-go from this executable (build/<tree>/harness/orchlab ->
/// build/go/orchlab-go), else the source tree's build/go/orchlab-go, else
/// PATH. "none" (flag or variable) switches it off. A flag or variable naming something that is not
/// an executable file throws std::invalid_argument (bad input); nothing found is a lookup without a
/// path (its cells are infeasible, the rest of the run goes on).
DriverLookup find_go_driver(const std::string& flag);

/// The cell description a driver reads on stdin (protocol 1) for repetition
/// `repetition` of env's cell: the load starts at `load_start_mono_ns`
/// (CLOCK_MONOTONIC), the drain waits at most `drain_timeout`.
nlohmann::ordered_json driver_input(const CellEnv& env, int repetition,
                                    std::int64_t load_start_mono_ns,
                                    std::chrono::milliseconds drain_timeout);

/// How long a driver may take from its start before it is killed as hung:
/// `lead` + warm-up + window + the longest orchestration (fan-out x deadline
/// for the channel soup, or the services' longest delay or hang) + the drain
/// + `grace` for start-up and encoding.
std::chrono::milliseconds driver_time_budget(const Cell& cell, std::chrono::milliseconds lead,
                                             std::chrono::milliseconds drain_timeout,
                                             std::chrono::milliseconds grace);

/// Checks a driver's measurement against the cell it was asked for and
/// copies it into `m` (whose identity is set). Returns false, with `why`,
/// when it is not a protocol-1 measurement of that cell: another protocol,
/// pattern or shape, a missing field, a field of the wrong type, a histogram
/// that is not the lab's.
bool apply_driver_measurement(const nlohmann::json& out, const Cell& cell, Measurement& m,
                              std::string& why);

/// Runs repetition `repetition_index` of env's cell with the driver at
/// `driver_path`: resets the services, spawns the driver with the cell on
/// stdin, samples its process every 10 ms (threads, RSS) and its CPU and
/// context switches from the window's start, kills it past its time budget,
/// and reads the services' stats after it. A driver that cannot start,
/// crashes, hangs, exits non-zero or prints something that is not a
/// measurement gives a measurement with `infeasible` set (the reason; its
/// stderr's tail in notes). `complete` is false when interrupted.
Measurement run_driver_repetition(const CellEnv& env, const std::string& driver_path,
                                  int repetition_index, bool& complete);

}  // namespace orchlab::harness

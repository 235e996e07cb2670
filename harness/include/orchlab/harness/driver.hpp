// The load driver: runs one repetition of one cell against the services,
// then drains what the pattern left behind, and returns every measurement.
#pragma once

#include <atomic>
#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "orchlab/harness/report.hpp"
#include "orchlab/harness/scenario.hpp"
#include "orchlab/harness/services.hpp"
#include "orchlab/harness/system.hpp"
#include "orchlab/pattern.hpp"

namespace orchlab::http {
class Client;
}

namespace orchlab::harness {

namespace trace {
class Tracer;
}

/// What one cell needs to run its repetitions.
struct CellEnv {
  const Cell* cell = nullptr;
  Pattern* pattern = nullptr;
  /// The shared pooled client behind `fetch` (its stats become the pool
  /// metrics); patterns that bring their own client never call it and
  /// report their pool through Pattern::pool_stats() instead.
  std::shared_ptr<http::Client> client;
  Fetch fetch;
  Services* services = nullptr;
  /// Set asynchronously (SIGINT): callers stop starting orchestrations.
  const std::atomic<bool>* interrupted = nullptr;
  /// Upper bound of the post-repetition wait for leaked tasks. Long enough
  /// for one-hangs' cascades (leaked calls queued behind hung ones for pool
  /// connections); a census ledger per repetition keeps whatever outlives it
  /// out of the next repetition's census metrics anyway.
  std::chrono::milliseconds drain_timeout{30000};
  /// A driver (docs/drivers.md) is killed as hung this long after its
  /// repetition's planned time (warm-up, window, longest orchestration,
  /// drain): its start-up and the encoding of its measurement.
  std::chrono::milliseconds driver_grace{5000};
  int family_index = 0;
  int per_family_instance_index = 0;
  /// Sharded runs (orchlab run --shard I/N): this process drives callers
  /// (closed loop) or schedule positions (open loop) I, I+N, ...
  int shard_index = 0;
  int shard_count = 1;
  /// Set: the repetition's slot begins at this steady-clock instant (ns):
  /// the run sleeps until then, and its load begins kSlotSettle later in
  /// every shard, after the services were reset and read. The drain ends
  /// before `slot_end_ns`, when the next slot begins.
  std::optional<std::int64_t> slot_start_ns;
  std::optional<std::int64_t> slot_end_ns;
  /// false: leave the services' counters alone (shards sharing services:
  /// shard 0 resets them); the measurement is a delta either way.
  bool reset_services = true;
  /// Set: this repetition is traced (orchlab run --trace): its calls and
  /// orchestrations are recorded and its samples handed to the tracer after
  /// the drain.
  trace::Tracer* tracer = nullptr;
};

/// Between a slot's start and its load: the reset and every shard's reading
/// of /__stats happen in it.
inline constexpr std::chrono::milliseconds kSlotSettle{250};

/// The callers (closed loop) or workers (open loop) shard `index` of `count`
/// drives of a cell of `concurrency`: index, index + count, ...
int shard_callers(int concurrency, int index, int count);

/// The start of every repetition, whatever runs it: a sharded one waits for
/// its slot (a note in `m` when it began late), the services are reset
/// (unless env says another shard does), a sharded one waits kSlotSettle,
/// and the services' stats are read: what the server counts are deltas of.
std::vector<StatsReading> begin_repetition(const CellEnv& env, Measurement& m);

/// Runs repetition `repetition_index`: resets the services, drives the
/// orchestrations for the scenario's duration (closed or open loop), joins
/// the callers, drains, and reads the census, locks, rusage, pool and
/// /__stats deltas. Returns with `complete` false if interrupted midway.
Measurement run_repetition(const CellEnv& env, int repetition_index, bool& complete);

/// A measurement carrying only the identity of `cell` (scenario, pattern,
/// fanout, concurrency, deadline, repetitions, benchmark family indices).
Measurement cell_identity(const Cell& cell, int family_index, int per_family_instance_index);

/// Why `cell` must not run on this machine (nullopt: it may). Threads: one
/// per call for thread-per-call patterns (bounded-group: up to its limit;
/// async-group: none) plus callers, against a quarter of what the system
/// can still create. Fds: pooled connections, twice when the services are
/// in-process, against half of RLIMIT_NOFILE.
/// `thread_budget` false skips the thread estimate (orchlab run
/// --no-thread-budget: to run such a cell under limits of your own, as
/// scripts/unbounded.sh does); the fd check always applies.
std::optional<std::string> infeasible_reason(const Cell& cell, std::size_t service_count,
                                             bool embedded_services, const sys::Limits& limits,
                                             bool thread_budget = true);

/// True for patterns that bring their own I/O (no thread per call, their own
/// connection pool): they ignore the Fetch they are given.
bool uses_own_client(std::string_view pattern);

/// True for the exhibits a driver program runs (go-*: orchlab-go), not this
/// binary (docs/drivers.md).
bool is_driver_pattern(std::string_view pattern);

/// "cpp-thread", "cpp-asio" or "go": what runs `pattern`'s calls.
std::string runtime_of(std::string_view pattern);

/// One intended start of the open loop: ns after the load's start (the
/// warm-up's), and its position in the unsharded schedule.
struct PlannedStart {
  std::int64_t offset_ns;
  std::uint64_t seq;
};

/// The open loop's schedule of repetition `repetition` of `sc` as
/// run_repetition draws it (same seed, same arithmetic): shard `shard` of
/// `shards`'s starts, for a driver that runs the load in its own process.
std::vector<PlannedStart> open_loop_starts(const Scenario& sc, int repetition, int shard = 0,
                                           int shards = 1);

/// The X-Orchlab-Key of call `call` of orchestration `seq` of caller
/// `caller` in repetition `repetition`: unique per call of a run, and the
/// same for the same call whatever the pattern, so every pattern meets the
/// same faults.
std::uint64_t call_key(int repetition, int caller, std::uint64_t seq, int call);

}  // namespace orchlab::harness

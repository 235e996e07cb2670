// The contract every orchestration exhibit implements: a Plan of downstream
// calls with a deadline goes in, an Outcome with one slot per call comes out.
// The exhibits differ only in how they orchestrate the concurrent calls.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <stop_token>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

#include "orchlab/histogram.hpp"

namespace orchlab {

/// One downstream request. `url` is required; the rest are additions to the
/// DESIGN.md contract that the harness fills in and the HTTP clients send.
struct Call {
  std::string url;
  /// Sent as X-Orchlab-Key when non-zero: the mock draws this call's latency
  /// and faults from (seed, key), so a run replays whatever the interleaving.
  std::uint64_t key = 0;
  /// Absolute CLOCK_MONOTONIC deadline in ns (0: none); sent as
  /// X-Orchlab-Deadline-Ns to a service on this host, as X-Orchlab-Timeout-Ms
  /// to any other (deadline_header()), so the mock can measure work done
  /// past it.
  std::int64_t deadline_ns = 0;
  /// Sent as `X-Orchlab-Phase: window` when true: the call belongs to an
  /// orchestration of the measured window (not the warm-up), and the mock
  /// counts it in its /__stats "window" totals, so the server-side counts
  /// cover the same orchestrations as the harness's `iterations`.
  bool window = false;
};

/// True for a host that is this machine: 127.0.0.0/8, ::1 (brackets
/// allowed) or "localhost". Only these share this process's CLOCK_MONOTONIC.
bool is_loopback_host(std::string_view host);

/// The deadline header a call to `host` carries for the absolute
/// CLOCK_MONOTONIC `deadline_ns`: X-Orchlab-Deadline-Ns as is on this host;
/// elsewhere the other machine's monotonic clock has another origin, so
/// X-Orchlab-Timeout-Ms, the time left now (at send time), never negative.
std::pair<std::string_view, std::string> deadline_header(std::string_view host,
                                                         std::int64_t deadline_ns);

/// Why a call produced no usable answer.
enum class ReplyError {
  none,       ///< 2xx answer
  http,       ///< an HTTP answer with a non-2xx status
  transport,  ///< connect/read/write failed, reset, closed or malformed
  cancelled,  ///< the stop token fired before an answer arrived
};

/// The answer to one Call. `status` 0 means no HTTP answer arrived.
struct Reply {
  int status = 0;
  std::string body;
  ReplyError error = ReplyError::none;
};

/// Performs one call, blocking. Returns early with ReplyError::cancelled once
/// the token is stopped (if the implementation can cancel at that point).
using Fetch = std::function<Reply(const Call&, std::stop_token)>;

/// What an orchestration must do: every call, within `deadline` of run().
struct Plan {
  std::vector<Call> calls;
  std::chrono::nanoseconds deadline{std::chrono::milliseconds(100)};
};

enum class Verdict {
  complete,  ///< every slot holds a 2xx reply
  partial,   ///< returned with some slots empty or failed, not for a timeout
  failed,    ///< returned on an error with no usable slot
  /// the orchestration returned at or after its deadline (steady clock, read
  /// when the verdict is taken) with a slot still empty; the one definition
  /// every exhibit uses, whether or not its own timer had fired by then
  timed_out,
};

/// What run() returns. slots[i] answers plan.calls[i]; an empty slot means the
/// call had not answered when the orchestration returned.
struct Outcome {
  std::vector<std::optional<Reply>> slots;
  Verdict verdict = Verdict::failed;
  std::string error;  ///< first error, human readable ("" when none)
};

/// Knobs the harness passes from a scenario to the patterns that use them.
struct PatternOptions {
  /// bounded-group: concurrency limit per orchestration (errgroup SetLimit).
  int limit = 16;
  /// async-group: keep-alive connections per host in its own client pool.
  std::size_t max_conns_per_host = 64;
  /// async-group: io_context threads (0: std::thread::hardware_concurrency()).
  int threads = 0;
};

/// A connection pool's counters since its construction or last reset: what
/// the report calls pool_exhausted (acquires_waited) and pool_wait_p99_us.
struct PoolStats {
  std::uint64_t requests = 0;
  std::uint64_t acquires_waited = 0;  ///< acquires that found the host's pool full
  std::uint64_t connections_opened = 0;
  std::uint64_t transport_errors = 0;
  std::uint64_t cancelled = 0;
  LogHistogram wait_ns;  ///< time to acquire a connection, every acquire
};

/// What the harness's tracer (`orchlab run --trace`) sees of the calls a
/// pattern makes through its own client instead of the Fetch (async-group):
/// the same three instants the traced Fetch stamps for the other exhibits.
/// Called concurrently from the pattern's threads: cheap, never throws.
class CallObserver {
 public:
  virtual ~CallObserver() = default;
  /// A call begins (its key is Call::key). Returns the handle the two below
  /// take, or nullptr when this call is not recorded (then neither is called).
  virtual void* call_started(const Call& call) noexcept = 0;
  /// The call's reply is known: an answer, an error or a cancellation.
  virtual void call_replied(void* handle, const Reply& reply) noexcept = 0;
  /// The task that made the call has ended (async-group: its coroutine).
  virtual void task_ended(void* handle) noexcept = 0;
};

/// An orchestration strategy. run() blocks the caller until the strategy
/// returns; what it leaves running after that is what the lab measures.
/// NOTE: run() may be called concurrently from several caller threads.
class Pattern {
 public:
  virtual ~Pattern() = default;
  virtual std::string_view name() const = 0;
  virtual Outcome run(const Plan& plan, const Fetch& fetch) = 0;

  /// A pattern that calls through its own HTTP client instead of the Fetch
  /// (async-group) returns that client's pool counters here, and the
  /// harness reports them as the cell's pool_* metrics. nullopt: the pattern
  /// has no pool of its own. Read and reset them while no run() is active.
  virtual std::optional<PoolStats> pool_stats() const { return std::nullopt; }
  virtual void reset_pool_stats() {}

  /// A pattern that calls through its own client reports its calls to
  /// `observer` (nullptr: to nobody, the default, at the cost of one null
  /// check per call) and returns true; a pattern whose calls all go through
  /// the Fetch returns false. Set it while no run() is active.
  virtual bool observe_calls(CallObserver* /*observer*/) { return false; }
};

/// Category "orchlab.reply" for ReplyError::transport and ::cancelled.
const std::error_category& reply_category();
std::error_code make_error_code(ReplyError e);
/// Category "orchlab.http": the value is the HTTP status ("HTTP 503").
const std::error_category& http_category();

/// The error a Reply stands for: empty for a 2xx answer, {status,
/// http_category()} for ReplyError::http, the ReplyError otherwise. The
/// group exhibits return it from their tasks.
std::error_code to_error_code(const Reply& reply);

/// Creates the exhibit registered under `name` ("channel-soup", ...).
/// Returns nullptr for an unknown name.
std::unique_ptr<Pattern> make_pattern(std::string_view name, const PatternOptions& options = {});

/// Every registered exhibit name, in the order reports list them.
std::vector<std::string> pattern_names();

std::string_view to_string(Verdict v);
std::string_view to_string(ReplyError e);

/// Derives the verdict from the slots: complete when all hold 2xx, timed_out
/// when `deadline_passed` (steady_clock::now() >= the orchestration's
/// deadline, read as it returns) and a slot is empty, failed when none is usable,
/// partial otherwise. Shared by all exhibits so verdicts mean the same thing.
Verdict classify(const std::vector<std::optional<Reply>>& slots, bool deadline_passed);

}  // namespace orchlab

template <>
struct std::is_error_code_enum<orchlab::ReplyError> : std::true_type {};

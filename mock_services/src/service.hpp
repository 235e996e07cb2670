// Internal: the shared state of one mock service (profile, request counter,
// statistics) and the small histogram the statistics use. Sessions of any
// thread update it under its mutex; the hot path takes the lock twice per
// request (begin, finish), which costs far less than the syscalls around it.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "orchlab/mock/config.hpp"

namespace orchlab::mock::detail {

using Clock = std::chrono::steady_clock;

/// Log-bucketed histogram of non-negative microsecond values: 32 sub-buckets
/// per power of two, so a reported quantile is within ~3% of a recorded value.
class MicrosHistogram {
 public:
  void record(std::uint64_t us);
  void clear();
  std::uint64_t count() const { return count_; }
  std::uint64_t max() const { return max_; }
  /// Upper edge of the bucket holding quantile q (exact max for q = 1).
  std::uint64_t quantile(double q) const;
  /// The value of the rank-th smallest observation (1-based), as quantile().
  std::uint64_t at_rank(std::uint64_t rank) const;
  /// {"count", "p50", "p99", "max"} in milliseconds.
  nlohmann::json to_json_ms() const;

  /// Fixed upper bounds (µs) of the exposition's histogram buckets: the log
  /// buckets above do not fall on round numbers, these are counted exactly.
  static constexpr std::array<std::uint64_t, 16> kBoundsUs{
      100,   250,    500,    1000,   2500,    5000,    10000,   25000,
      50000, 100000, 250000, 500000, 1000000, 2500000, 5000000, 10000000};
  /// Observations at most kBoundsUs[i] (not cumulative).
  std::uint64_t at_most(std::size_t i) const { return at_most_[i]; }
  std::uint64_t sum_us() const { return sum_; }

 private:
  static constexpr int kSubBits = 5;
  static constexpr std::size_t kBuckets = (64 - kSubBits + 1) << kSubBits;
  static std::size_t bucket_of(std::uint64_t v);
  static std::uint64_t bucket_high(std::size_t b);
  std::array<std::uint64_t, kBuckets> buckets_{};
  std::array<std::uint64_t, kBoundsUs.size()> at_most_{};
  std::uint64_t count_ = 0;
  std::uint64_t sum_ = 0;
  std::uint64_t max_ = 0;
};

/// How a counted request ended; see docs/mock.md for the /__stats identity
/// requests = completed + client_aborts + no_response + bad_requests + in_flight.
/// write_timeout is a client abort too (the client stopped reading), counted
/// apart and kept out of the abort lag.
enum class Outcome { completed, client_abort, write_timeout, no_response };

/// Process-wide state shared by every service of a fleet.
struct FleetShared {
  std::size_t max_connections = 20000;
  std::atomic<std::size_t> connections{0};
  std::chrono::milliseconds header_timeout{10000};
  std::chrono::milliseconds idle_timeout{60000};
  std::chrono::milliseconds write_timeout{30000};
};

/// What a request decided at its start (under the service lock).
struct RequestPlan {
  std::uint64_t index = 0;  ///< draw index: X-Orchlab-Key or the request counter
  std::shared_ptr<const ServiceConfig> profile;
  /// Non-zero for a request marked `X-Orchlab-Phase: window`: the reset
  /// generation it began in. It ends in the window totals only if no reset
  /// came between (a reset starts a new window).
  std::uint64_t window_generation = 0;
  /// Non-zero for a request to trace (tracing on and an X-Orchlab-Key): the
  /// trace's generation it began in; it is recorded only if the trace was not
  /// cleared or switched off meanwhile.
  std::uint64_t trace_generation = 0;
};

/// One traced request (docs/mock.md, /__trace). Its session fills the start
/// and how it ended; finish_request stamps `ended` and keeps it.
struct TraceRecord {
  std::uint64_t generation = 0;  ///< RequestPlan::trace_generation; 0: not traced
  std::uint64_t key = 0;
  Clock::time_point received;
  std::optional<Clock::time_point> deadline;
  std::optional<FaultKind> fault;
  double intended_ms = 0;  ///< the latency drawn, or a hang's max_ms
  Outcome outcome = Outcome::completed;
  int status = 0;  ///< the status answered (outcome completed)
  Clock::time_point ended;
};

/// The totals of the requests marked `X-Orchlab-Phase: window` since the
/// last reset: a load generator's measured window, apart from its warm-up.
/// Requests begun before the reset never end in them, so
/// requests = completed + client_aborts + no_response + in_flight.
struct WindowTotals {
  std::uint64_t requests = 0;
  std::uint64_t completed = 0;
  std::uint64_t in_flight = 0;
  std::uint64_t max_in_flight = 0;
  std::uint64_t client_aborts = 0;
  std::uint64_t no_response = 0;
  std::uint64_t completed_after_deadline = 0;
  double work_past_deadline_ms = 0;
  MicrosHistogram abort_lag_us;
  MicrosHistogram abort_lead_us;
};

/// One service: its live profile and its counters.
class ServiceState {
 public:
  ServiceState(ServiceConfig config, std::shared_ptr<FleetShared> shared);

  const std::string& name() const { return name_; }
  FleetShared& shared() { return *shared_; }
  void set_port(unsigned short port) { port_ = port; }

  std::shared_ptr<const ServiceConfig> profile() const;
  /// Replaces the profile (name and port stay those of the running service).
  void set_profile(ServiceConfig config);

  /// A request head arrived on a service route: counts it, assigns its index.
  /// `window`: it carried `X-Orchlab-Phase: window` (counted in the window
  /// totals too).
  RequestPlan begin_request(std::optional<std::uint64_t> key, bool window = false);
  /// Counts a fault chosen for a begun request.
  void count_fault(FaultKind kind);
  /// Ends a begun request. `deadline` is the caller's, if it sent one;
  /// `window_generation` is its plan's; `trace`, when the plan said to trace
  /// it, is kept (with its end time) if there is room, else counted dropped.
  void finish_request(Outcome outcome, Clock::time_point start,
                      std::optional<Clock::time_point> deadline,
                      std::uint64_t window_generation = 0, TraceRecord* trace = nullptr);
  /// A request (or unparseable input) rejected with 4xx/5xx by the mock itself.
  void count_bad_request();
  void count_header_timeout();
  void count_admin_request();
  /// The timer of a delay of `intended` fired `actual` after it was armed.
  void record_delay_error(Clock::duration intended, Clock::duration actual);

  void connection_opened();
  void connection_closed();
  void connection_refused();

  nlohmann::json stats() const;
  /// The same statistics in Prometheus text exposition format 0.0.4, every
  /// sample labelled service="<name>" (prometheus.cpp; docs/mock.md).
  std::string prometheus() const;
  /// Counters to zero and the request index to 0. Requests and connections
  /// still open are carried over (requests = in_flight) so the identity holds.
  /// Clears the trace's records too (tracing stays on or off).
  void reset();

  /// Tracing on, with room for `max_records` (1..kMaxTraceRecords), or off;
  /// clears the records and the dropped count either way.
  void set_trace(bool enabled, std::size_t max_records);
  /// The /__trace document.
  nlohmann::json trace() const;

 private:
  const std::string name_;
  const std::shared_ptr<FleetShared> shared_;
  std::atomic<unsigned short> port_{0};

  mutable std::mutex mu_;
  std::shared_ptr<const ServiceConfig> profile_;
  std::uint64_t next_index_ = 0;
  std::uint64_t requests_ = 0;
  std::uint64_t completed_ = 0;
  std::uint64_t in_flight_ = 0;
  std::uint64_t max_in_flight_ = 0;
  std::uint64_t client_aborts_ = 0;
  std::uint64_t no_response_ = 0;
  std::uint64_t bad_requests_ = 0;
  std::uint64_t header_timeouts_ = 0;
  std::uint64_t write_timeouts_ = 0;
  std::uint64_t admin_requests_ = 0;
  std::uint64_t open_connections_ = 0;
  std::uint64_t max_open_connections_ = 0;
  std::uint64_t refused_connections_ = 0;
  std::array<std::uint64_t, kFaultKinds> faults_{};
  std::uint64_t completed_after_deadline_ = 0;
  double work_past_deadline_ms_ = 0;
  MicrosHistogram abort_lag_us_;   ///< aborts at or after the deadline: how late
  MicrosHistogram abort_lead_us_;  ///< aborts before it: how early (a sibling's error)
  MicrosHistogram delay_error_us_;
  std::uint64_t generation_ = 1;  ///< +1 on every reset
  WindowTotals window_;

  bool trace_on_ = false;
  std::size_t trace_max_ = kDefaultTraceRecords;
  std::uint64_t trace_generation_ = 1;  ///< +1 on every reset and set_trace
  std::uint64_t trace_dropped_ = 0;
  std::vector<TraceRecord> trace_;  ///< the first trace_max_ ended since the last clear
};

}  // namespace orchlab::mock::detail

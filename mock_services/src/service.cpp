// Internal: service state and statistics (see service.hpp).
#include "service.hpp"

#include <algorithm>
#include <bit>

namespace orchlab::mock::detail {

namespace {

std::uint64_t to_us(Clock::duration d) {
  const auto us = std::chrono::duration_cast<std::chrono::microseconds>(d).count();
  return us > 0 ? static_cast<std::uint64_t>(us) : 0;
}

double to_ms(Clock::duration d) { return std::chrono::duration<double, std::milli>(d).count(); }

// steady_clock is CLOCK_MONOTONIC on Linux: the clock of X-Orchlab-Deadline-Ns.
std::int64_t to_ns(Clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
}

}  // namespace

// --- MicrosHistogram ---------------------------------------------------------

std::size_t MicrosHistogram::bucket_of(std::uint64_t v) {
  constexpr std::uint64_t kSub = 1u << kSubBits;
  if (v < kSub) return static_cast<std::size_t>(v);
  const int octave = std::bit_width(v) - kSubBits;  // >= 1
  const std::uint64_t sub = (v >> (octave - 1)) - kSub;
  return static_cast<std::size_t>(octave) * kSub + static_cast<std::size_t>(sub);
}

std::uint64_t MicrosHistogram::bucket_high(std::size_t b) {
  constexpr std::uint64_t kSub = 1u << kSubBits;
  if (b < kSub) return b;
  const std::uint64_t octave = b / kSub;
  const std::uint64_t sub = b % kSub;
  return ((kSub + sub + 1) << (octave - 1)) - 1;
}

void MicrosHistogram::record(std::uint64_t us) {
  ++buckets_[bucket_of(us)];
  const auto bound = std::lower_bound(kBoundsUs.begin(), kBoundsUs.end(), us);
  if (bound != kBoundsUs.end()) ++at_most_[static_cast<std::size_t>(bound - kBoundsUs.begin())];
  ++count_;
  sum_ += us;
  max_ = std::max(max_, us);
}

void MicrosHistogram::clear() { *this = MicrosHistogram{}; }

std::uint64_t MicrosHistogram::quantile(double q) const {
  if (count_ == 0) return 0;
  if (q >= 1.0) return max_;
  return at_rank(static_cast<std::uint64_t>(q * static_cast<double>(count_ - 1)) + 1);
}

std::uint64_t MicrosHistogram::at_rank(std::uint64_t rank) const {
  if (count_ == 0) return 0;
  std::uint64_t seen = 0;
  for (std::size_t b = 0; b < kBuckets; ++b) {
    seen += buckets_[b];
    if (seen >= rank) return std::min(bucket_high(b), max_);
  }
  return max_;
}

nlohmann::json MicrosHistogram::to_json_ms() const {
  return {{"count", count_},
          {"p50", static_cast<double>(quantile(0.5)) / 1000.0},
          {"p99", static_cast<double>(quantile(0.99)) / 1000.0},
          {"max", static_cast<double>(max_) / 1000.0}};
}

namespace {

/// Abort lag, signed: `lead` holds how long before the deadline aborts came,
/// `lag` how long after. Quantiles over both, as if one histogram of signed
/// values: {"count", "before_deadline", "p50", "p99", "min", "max"} in ms.
nlohmann::json signed_lag_json_ms(const MicrosHistogram& lead, const MicrosHistogram& lag) {
  const std::uint64_t early = lead.count(), n = early + lag.count();
  // The rank-th smallest signed value: the early ones, most negative first.
  const auto at = [&](std::uint64_t rank) -> double {
    if (rank <= early) return -static_cast<double>(lead.at_rank(early - rank + 1)) / 1000.0;
    return static_cast<double>(lag.at_rank(rank - early)) / 1000.0;
  };
  const auto q = [&](double p) -> nlohmann::json {
    if (n == 0) return nullptr;  // no abort: no lag, which is not a lag of 0
    return at(static_cast<std::uint64_t>(p * static_cast<double>(n - 1)) + 1);
  };
  return {{"count", n},
          {"before_deadline", early},
          {"p50", q(0.5)},
          {"p99", q(0.99)},
          {"min", n ? nlohmann::json(at(1)) : nlohmann::json(nullptr)},
          {"max", n ? nlohmann::json(at(n)) : nlohmann::json(nullptr)}};
}
}  // namespace

// --- ServiceState ------------------------------------------------------------

ServiceState::ServiceState(ServiceConfig config, std::shared_ptr<FleetShared> shared)
    : name_(config.name),
      shared_(std::move(shared)),
      profile_(std::make_shared<const ServiceConfig>(std::move(config))) {}

std::shared_ptr<const ServiceConfig> ServiceState::profile() const {
  std::lock_guard lock(mu_);
  auto copy = std::make_shared<ServiceConfig>(*profile_);
  copy->port = port_.load();
  return copy;
}

void ServiceState::set_profile(ServiceConfig config) {
  config.name = name_;
  config.port = port_.load();
  auto next = std::make_shared<const ServiceConfig>(std::move(config));
  std::lock_guard lock(mu_);
  profile_ = std::move(next);
}

RequestPlan ServiceState::begin_request(std::optional<std::uint64_t> key, bool window) {
  std::lock_guard lock(mu_);
  RequestPlan plan;
  const std::uint64_t counter = next_index_++;
  plan.index = key ? *key : counter;
  plan.profile = profile_;
  ++requests_;
  max_in_flight_ = std::max(max_in_flight_, ++in_flight_);
  if (window) {
    plan.window_generation = generation_;
    ++window_.requests;
    window_.max_in_flight = std::max(window_.max_in_flight, ++window_.in_flight);
  }
  if (trace_on_ && key) plan.trace_generation = trace_generation_;
  return plan;
}

void ServiceState::count_fault(FaultKind kind) {
  std::lock_guard lock(mu_);
  ++faults_[static_cast<std::size_t>(kind)];
}

void ServiceState::finish_request(Outcome outcome, Clock::time_point start,
                                  std::optional<Clock::time_point> deadline,
                                  std::uint64_t window_generation, TraceRecord* trace) {
  const auto end = Clock::now();
  std::lock_guard lock(mu_);
  if (in_flight_ > 0) --in_flight_;
  // The same accounting for the whole service and, for a request of the
  // current window, for the window totals.
  auto count = [&](std::uint64_t& completed, std::uint64_t& aborts, std::uint64_t& no_response,
                   std::uint64_t& after_deadline, double& past_ms, MicrosHistogram& lag,
                   MicrosHistogram& lead) {
    switch (outcome) {
      case Outcome::completed:
        ++completed;
        break;
      case Outcome::client_abort:
      case Outcome::write_timeout:
        ++aborts;
        break;
      case Outcome::no_response:
        ++no_response;
        break;
    }
    if (!deadline) return;
    if (end > *deadline) {
      // Work the mock kept doing for a caller that had already given up.
      past_ms += to_ms(end - std::max(*deadline, start));
      if (outcome == Outcome::completed) ++after_deadline;
    }
    if (outcome == Outcome::client_abort) {
      if (end >= *deadline)
        lag.record(to_us(end - *deadline));
      else
        lead.record(to_us(*deadline - end));
    }
  };
  if (outcome == Outcome::write_timeout) ++write_timeouts_;
  count(completed_, client_aborts_, no_response_, completed_after_deadline_, work_past_deadline_ms_,
        abort_lag_us_, abort_lead_us_);
  if (window_generation != 0 && window_generation == generation_) {
    if (window_.in_flight > 0) --window_.in_flight;
    count(window_.completed, window_.client_aborts, window_.no_response,
          window_.completed_after_deadline, window_.work_past_deadline_ms, window_.abort_lag_us,
          window_.abort_lead_us);
  }
  if (trace && trace->generation == trace_generation_) {
    if (trace_.size() < trace_max_) {
      trace->ended = end;  // the instant the statistics count too
      trace_.push_back(*trace);
    } else {
      ++trace_dropped_;
    }
  }
}

void ServiceState::count_bad_request() {
  std::lock_guard lock(mu_);
  ++requests_;
  ++bad_requests_;
}

void ServiceState::count_header_timeout() {
  std::lock_guard lock(mu_);
  ++header_timeouts_;
}

void ServiceState::count_admin_request() {
  std::lock_guard lock(mu_);
  ++admin_requests_;
}

void ServiceState::record_delay_error(Clock::duration intended, Clock::duration actual) {
  std::lock_guard lock(mu_);
  delay_error_us_.record(to_us(actual - intended));
}

void ServiceState::connection_opened() {
  std::lock_guard lock(mu_);
  max_open_connections_ = std::max(max_open_connections_, ++open_connections_);
}

void ServiceState::connection_closed() {
  std::lock_guard lock(mu_);
  if (open_connections_ > 0) --open_connections_;
}

void ServiceState::connection_refused() {
  std::lock_guard lock(mu_);
  ++refused_connections_;
}

nlohmann::json ServiceState::stats() const {
  std::lock_guard lock(mu_);
  nlohmann::json faults = nlohmann::json::object();
  for (std::size_t k = 0; k < kFaultKinds; ++k) {
    faults[std::string(fault_name(static_cast<FaultKind>(k)))] = faults_[k];
  }
  return {{"service", name_},
          {"requests", requests_},
          {"completed", completed_},
          {"in_flight", in_flight_},
          {"max_in_flight", max_in_flight_},
          {"client_aborts", client_aborts_},
          {"no_response", no_response_},
          {"bad_requests", bad_requests_},
          {"header_timeouts", header_timeouts_},
          {"write_timeouts", write_timeouts_},
          {"admin_requests", admin_requests_},
          {"open_connections", open_connections_},
          {"max_open_connections", max_open_connections_},
          {"refused_connections", refused_connections_},
          {"faults", std::move(faults)},
          {"completed_after_deadline", completed_after_deadline_},
          {"work_past_deadline_ms", work_past_deadline_ms_},
          {"abort_lag_ms", signed_lag_json_ms(abort_lead_us_, abort_lag_us_)},
          {"delay_error_ms", delay_error_us_.to_json_ms()},
          {"window",
           {{"requests", window_.requests},
            {"completed", window_.completed},
            {"in_flight", window_.in_flight},
            {"max_in_flight", window_.max_in_flight},
            {"client_aborts", window_.client_aborts},
            {"no_response", window_.no_response},
            {"completed_after_deadline", window_.completed_after_deadline},
            {"work_past_deadline_ms", window_.work_past_deadline_ms},
            {"abort_lag_ms", signed_lag_json_ms(window_.abort_lead_us, window_.abort_lag_us)}}}};
}

void ServiceState::reset() {
  std::lock_guard lock(mu_);
  next_index_ = 0;
  requests_ = in_flight_;
  completed_ = client_aborts_ = no_response_ = bad_requests_ = 0;
  header_timeouts_ = write_timeouts_ = admin_requests_ = refused_connections_ = 0;
  max_in_flight_ = in_flight_;
  max_open_connections_ = open_connections_;
  faults_.fill(0);
  completed_after_deadline_ = 0;
  work_past_deadline_ms_ = 0;
  abort_lag_us_.clear();
  abort_lead_us_.clear();
  delay_error_us_.clear();
  // A new window: requests of the old one still in flight end outside it.
  ++generation_;
  window_ = WindowTotals{};
  // Likewise a new trace, on or off as it was.
  ++trace_generation_;
  trace_.clear();
  trace_dropped_ = 0;
}

void ServiceState::set_trace(bool enabled, std::size_t max_records) {
  std::vector<TraceRecord> old;
  std::lock_guard lock(mu_);
  trace_on_ = enabled;
  trace_max_ = std::clamp<std::size_t>(max_records, 1, kMaxTraceRecords);
  ++trace_generation_;
  old.swap(trace_);  // freed after the unlock
  trace_dropped_ = 0;
}

namespace {

std::string_view end_name(const TraceRecord& r) {
  switch (r.outcome) {
    case Outcome::completed:
      // Answered after the caller's deadline: it had given up; nobody read it.
      return r.deadline && r.ended > *r.deadline ? "for_nobody" : "answered";
    case Outcome::client_abort:
      return "client_abort";
    case Outcome::write_timeout:
      return "write_timeout";
    case Outcome::no_response:
      return "no_response";
  }
  return "unknown";
}

}  // namespace

nlohmann::json ServiceState::trace() const {
  std::vector<TraceRecord> records;
  nlohmann::json doc;
  {
    // Copied under the lock, written out after it: a long trace must not
    // hold up the requests that end meanwhile.
    std::lock_guard lock(mu_);
    records = trace_;
    doc = {{"service", name_},
           {"enabled", trace_on_},
           {"max_records", trace_max_},
           {"recorded", trace_.size()},
           {"dropped", trace_dropped_}};
  }
  auto& out = doc["records"] = nlohmann::json::array();
  for (const auto& r : records) {
    const bool answered = r.outcome == Outcome::completed;
    out.push_back({{"service", name_},
                   {"key", r.key},
                   {"received_ns", to_ns(r.received)},
                   {"deadline_ns", r.deadline ? nlohmann::json(to_ns(*r.deadline)) : nullptr},
                   {"fault", r.fault ? nlohmann::json(std::string(fault_name(*r.fault))) : nullptr},
                   {"intended_ms", r.intended_ms},
                   {"end", std::string(end_name(r))},
                   {"status", answered ? nlohmann::json(r.status) : nullptr},
                   {"ended_ns", to_ns(r.ended)}});
  }
  return doc;
}

}  // namespace orchlab::mock::detail

#include "orchlab/harness/report.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <map>
#include <numeric>
#include <stdexcept>

#include "orchlab/harness/driver.hpp"
#include "orchlab/harness/system.hpp"

#ifndef ORCHLAB_VERSION
#define ORCHLAB_VERSION "0.0.0"
#endif
#include "orchlab_git_sha.h"  // generated at build time (cmake/git_sha.cmake)
#ifndef ORCHLAB_BUILD_TYPE
#define ORCHLAB_BUILD_TYPE ""
#endif
#ifndef ORCHLAB_SANITIZER
#define ORCHLAB_SANITIZER ""
#endif

namespace orchlab::harness {
// ordered: fields appear in the order DESIGN.md lists them, as Google
// Benchmark writes its own.
using json = nlohmann::ordered_json;
namespace {

double us(std::uint64_t ns) { return static_cast<double>(ns) / 1000.0; }

// Fields whose _mean comes from the merged histograms, not from averaging.
const std::vector<std::string> kHistogramFields = {
    "p50_us",          "p90_us", "p99_us", "p999_us", "max_us", "deadline_overshoot_p99_us",
    "pool_wait_p99_us"};

// A quantile q needs at least 1 / (1 - q) samples to be more than the
// maximum in disguise: p99 100, p99.9 1,000.
constexpr std::uint64_t min_samples(double q) {
  return static_cast<std::uint64_t>(1.0 / (1.0 - q) + 0.5);
}

json quantile_or_null(const LogHistogram& h, double q) {
  return h.count() >= min_samples(q) ? json(us(h.quantile(q))) : json(nullptr);
}

void latency_fields(json& e, const LogHistogram& lat, const LogHistogram& over,
                    const LogHistogram* pool_wait) {
  e["p50_us"] = quantile_or_null(lat, 0.50);
  e["p90_us"] = quantile_or_null(lat, 0.90);
  e["p99_us"] = quantile_or_null(lat, 0.99);
  e["p999_us"] = quantile_or_null(lat, 0.999);
  e["max_us"] = lat.count() ? json(us(lat.max())) : json(nullptr);
  e["latency_samples"] = lat.count();
  e["deadline_overshoot_p99_us"] = quantile_or_null(over, 0.99);
  e["pool_wait_p99_us"] = pool_wait ? quantile_or_null(*pool_wait, 0.99) : json(nullptr);
  e["pool_wait_samples"] = pool_wait ? json(pool_wait->count()) : json(nullptr);
}

std::string compiler() {
#if defined(__clang__)
  return "clang " __clang_version__;
#elif defined(__GNUC__)
  return "gcc " __VERSION__;
#else
  return "unknown";
#endif
}

// Google Benchmark-like layout: objects and arrays of objects indented,
// arrays of scalars on one line (the time series would otherwise take a
// line per number).
void write_pretty(std::string& out, const json& v, int indent) {
  const std::string pad(indent, ' ');
  const std::string inner(indent + 2, ' ');
  if (v.is_object()) {
    if (v.empty()) {
      out += "{}";
      return;
    }
    out += "{\n";
    bool first = true;
    for (const auto& [key, value] : v.items()) {
      if (!first) out += ",\n";
      first = false;
      out += inner + json(key).dump() + ": ";
      write_pretty(out, value, indent + 2);
    }
    out += "\n" + pad + "}";
  } else if (v.is_array()) {
    const bool scalars =
        std::all_of(v.begin(), v.end(), [](const json& x) { return x.is_primitive(); });
    if (scalars) {
      out += v.dump();
      return;
    }
    out += "[\n";
    for (std::size_t i = 0; i < v.size(); ++i) {
      if (i) out += ",\n";
      out += inner;
      write_pretty(out, v[i], indent + 2);
    }
    out += "\n" + pad + "]";
  } else {
    out += v.dump();
  }
}

}  // namespace

json histogram_json(const LogHistogram& h) {
  json buckets = json::array();
  for (std::size_t i = 0; i < h.bucket_end(); ++i)
    if (const auto n = h.bucket_count(i))
      buckets.push_back(
          json::array({LogHistogram::bucket_low(i), LogHistogram::bucket_high(i), n}));
  json out = json::object();
  out["buckets"] = std::move(buckets);
  out["count"] = h.count();
  out["min"] = h.count() ? json(h.min()) : json(nullptr);
  out["max"] = h.count() ? json(h.max()) : json(nullptr);
  out["sum"] = h.sum();
  return out;
}

std::optional<LogHistogram> histogram_from_json(const nlohmann::json& j, std::string& why) {
  auto u64 = [](const nlohmann::json& v) { return v.is_number_unsigned(); };
  if (!j.is_object() || !j.contains("buckets") || !j["buckets"].is_array() ||
      !j.contains("count") || !u64(j["count"]) || !j.contains("sum") || !u64(j["sum"])) {
    why = "not a histogram (needs buckets, count and sum)";
    return std::nullopt;
  }
  std::vector<std::pair<std::size_t, std::uint64_t>> counts;
  std::uint64_t total = 0;
  for (const auto& b : j["buckets"]) {
    if (!b.is_array() || b.size() != 3 || !u64(b[0]) || !u64(b[1]) || !u64(b[2])) {
      why = "a bucket that is not [lower, upper, count]: " + b.dump();
      return std::nullopt;
    }
    const auto lo = b[0].get<std::uint64_t>();
    const auto index = LogHistogram::bucket_of(lo);
    if (LogHistogram::bucket_low(index) != lo || LogHistogram::bucket_high(index) != b[1]) {
      why = "bucket " + b.dump() + " is not one of the lab's histogram buckets";
      return std::nullopt;
    }
    counts.emplace_back(index, b[2].get<std::uint64_t>());
    total += b[2].get<std::uint64_t>();
  }
  if (total != j["count"].get<std::uint64_t>()) {
    why = "bucket counts add up to " + std::to_string(total) + ", not count " + j["count"].dump();
    return std::nullopt;
  }
  LogHistogram h;
  if (total == 0) return h;
  if (!j.contains("min") || !u64(j["min"]) || !j.contains("max") || !u64(j["max"]) ||
      !h.assign(counts, j["min"].get<std::uint64_t>(), j["max"].get<std::uint64_t>(),
                j["sum"].get<std::uint64_t>())) {
    why =
        "buckets, min and max do not fit together (unsorted, empty or duplicated buckets, or "
        "min/max outside them)";
    return std::nullopt;
  }
  return h;
}

std::string iso8601_utc(std::int64_t unix_ns) {
  const std::time_t t = static_cast<std::time_t>(unix_ns / 1'000'000'000);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[48];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  const auto ms = (unix_ns % 1'000'000'000) / 1'000'000;
  char frac[8];
  std::snprintf(frac, sizeof frac, ".%03d", static_cast<int>(ms));
  return std::string(buf) + (ms ? frac : "") + "Z";
}

const std::vector<std::string>& process_fields() {
  static const std::vector<std::string> fields = {
      "threads_peak", "live_tasks_peak",  "threads_end",    "drain_ms",
      "rss_peak_kb",  "threads_baseline", "rss_baseline_kb"};
  return fields;
}

std::string date_now() {
  const std::time_t t = std::time(nullptr);
  std::tm tm{};
  localtime_r(&t, &tm);
  char buf[64];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S%z", &tm);
  std::string s(buf);
  if (s.size() > 2) s.insert(s.size() - 2, ":");  // +0000 -> +00:00, as Google Benchmark writes
  return s;
}

const std::vector<std::string>& metric_fields() {
  static const std::vector<std::string> fields = {"pattern",
                                                  "scenario",
                                                  "fanout",
                                                  "concurrency",
                                                  "items_per_second",
                                                  "p50_us",
                                                  "p90_us",
                                                  "p99_us",
                                                  "p999_us",
                                                  "max_us",
                                                  "complete",
                                                  "partial",
                                                  "failed",
                                                  "timed_out",
                                                  "deadline_overshoot_p99_us",
                                                  "leaked_tasks_at_return",
                                                  "leaked_tasks_end",
                                                  "zombie_task_s",
                                                  "late_completions",
                                                  "threads_peak",
                                                  "live_tasks_peak",
                                                  "threads_end",
                                                  "drain_ms",
                                                  "pool_wait_p99_us",
                                                  "pool_exhausted",
                                                  "lock_wait_ns",
                                                  "lock_contended",
                                                  "ctx_switches_voluntary",
                                                  "ctx_switches_involuntary",
                                                  "rss_peak_kb",
                                                  "server_client_aborts",
                                                  "server_work_past_deadline_ms",
                                                  "server_abort_lag_p99_ms",
                                                  "infeasible"};
  return fields;
}

std::string cell_name(const Measurement& m) {
  return m.scenario + "/" + m.pattern + "/fanout:" + std::to_string(m.fanout) +
         "/concurrency:" + std::to_string(m.concurrency);
}

bool cancels_on_first_error(std::string_view pattern) {
  return pattern == "cancellable-group" || pattern == "bounded-group" || pattern == "async-group" ||
         pattern == "go-errgroup" || pattern == "go-errgroup-limit";
}

int refuse_impossible(Measurement& m) {
  if (m.infeasible || !m.server) return 0;
  ServerTotals& t = *m.server;
  int refused = 0;
  const std::string where = cell_name(m) + " repetition " + std::to_string(m.repetition_index + 1);
  auto refuse = [&](auto& field, const char* name, const std::string& why) {
    field.reset();
    ++refused;
    m.notes.push_back(std::string(name) + " of " + where + " refused (null): " + why +
                      ", which cannot happen");
  };
  // Each abort is one request of one call the services saw the client leave.
  if (t.client_aborts && *t.client_aborts > m.calls)
    refuse(t.client_aborts, "server_client_aborts",
           std::to_string(*t.client_aborts) + " client aborts for " + std::to_string(m.calls) +
               " calls");
  // A call answered over HTTP was a request the services saw.
  const std::uint64_t answered = m.call_ok + m.call_http_errors;
  if (t.requests && *t.requests < answered)
    refuse(t.requests, "server_requests",
           std::to_string(*t.requests) + " requests seen for " + std::to_string(answered) +
               " calls answered over HTTP");
  // The first error cancels at most fan-out - 1 siblings (the call that
  // failed was answered or ended by the service, not aborted by the client);
  // only an orchestration its deadline ended (timed out, partial) or one that
  // threw can have every call aborted.
  if (t.client_aborts && cancels_on_first_error(m.pattern) && m.fanout > 0) {
    const std::uint64_t f = static_cast<std::uint64_t>(m.fanout);
    const std::uint64_t whole = m.partial + m.timed_out + m.orchestrations_threw;
    const std::uint64_t ended_by_error = m.complete + m.failed - m.orchestrations_threw;
    const std::uint64_t bound = (f - 1) * ended_by_error + f * whole;
    if (*t.client_aborts > bound) {
      char per[32];
      std::snprintf(per, sizeof per, "%.2f",
                    m.orchestrations ? static_cast<double>(*t.client_aborts) /
                                           static_cast<double>(m.orchestrations)
                                     : 0.0);
      refuse(t.client_aborts, "server_client_aborts",
             std::to_string(*t.client_aborts) + " client aborts (" + per +
                 " per orchestration) in a first-error cell of fan-out " +
                 std::to_string(m.fanout) + ": more than the " + std::to_string(bound) +
                 " its orchestrations allow (fan-out - 1 per orchestration an error ended, "
                 "fan-out per one the deadline ended)");
    }
  }
  return refused;
}

json benchmark_entry(const Measurement& m) {
  const std::string run_name = cell_name(m) + "/real_time";
  const bool ran = !m.infeasible;
  json e = json::object();
  e["name"] = run_name;
  e["family_index"] = m.family_index;
  e["per_family_instance_index"] = m.per_family_instance_index;
  e["run_name"] = run_name;
  e["run_type"] = "iteration";
  e["repetitions"] = m.repetitions;
  e["repetition_index"] = m.repetition_index;
  e["threads"] = 1;
  e["iterations"] = m.orchestrations;
  e["real_time"] = m.latency_ns.mean() / 1000.0;
  e["cpu_time"] = m.orchestrations ? m.cpu_s * 1e6 / static_cast<double>(m.orchestrations) : 0.0;
  e["time_unit"] = "us";
  e["label"] = m.pattern;
  if (!ran) {
    // Google Benchmark's way to say "this one did not run".
    e["error_occurred"] = true;
    e["error_message"] = "infeasible: " + *m.infeasible;
  }
  e["pattern"] = m.pattern;
  e["runtime"] = m.runtime;
  e["scenario"] = m.scenario;
  e["fanout"] = m.fanout;
  e["concurrency"] = m.concurrency;
  // Every DESIGN.md field, in its order (an ordered_json keeps a key where
  // it was first set).
  for (const auto& f : metric_fields())
    if (!e.contains(f)) e[f] = nullptr;
  // Not measured (infeasible cell, or a pattern with its own pool): null,
  // never a zero that reads as "fine".
  auto val = [&](auto v, bool measured = true) {
    return ran && measured ? json(v) : json(nullptr);
  };
  // Throughput: orchestrations that started and returned inside the window,
  // over the window. One that returns after it counts in the latency only.
  e["items_per_second"] =
      val(m.window_s > 0 ? static_cast<double>(m.completed_in_window) / m.window_s : 0.0);
  if (ran) {
    latency_fields(e, m.latency_ns, m.overshoot_ns, m.pool_measured ? &m.pool_wait_ns : nullptr);
  } else {
    for (const auto& f : kHistogramFields) e[f] = nullptr;
  }
  e["complete"] = val(m.complete);
  e["partial"] = val(m.partial);
  e["failed"] = val(m.failed);
  e["timed_out"] = val(m.timed_out);
  e["leaked_tasks_at_return"] = val(m.leaked_tasks_at_return);
  e["leaked_tasks_end"] = val(m.leaked_tasks_end);
  e["zombie_task_s"] = val(m.zombie_task_s);
  e["late_completions"] = val(m.late_completions);
  e["threads_peak"] = val(m.threads_peak);
  e["live_tasks_peak"] = val(m.live_tasks_peak);
  e["threads_end"] = val(m.threads_end, m.threads_end_measured);
  e["drain_ms"] = val(m.drain_ms);
  e["pool_exhausted"] = val(m.pool_exhausted, m.pool_measured);
  e["lock_wait_ns"] = val(m.lock_wait_ns, m.lock_measured);
  e["lock_contended"] = val(m.lock_contended, m.lock_measured);
  e["ctx_switches_voluntary"] = val(m.ctx_switches_voluntary);
  e["ctx_switches_involuntary"] = val(m.ctx_switches_involuntary);
  e["rss_peak_kb"] = val(m.rss_peak_kb);
  // A server field some service did not report is null (lab.notes says
  // which), never an invented 0.
  const bool srv = m.server.has_value();
  auto server_val = [&](const auto& field) { return srv && field ? val(*field) : json(nullptr); };
  e["server_client_aborts"] = server_val(srv ? m.server->client_aborts : std::nullopt);
  e["server_work_past_deadline_ms"] =
      server_val(srv ? m.server->work_past_deadline_ms : std::nullopt);
  e["server_abort_lag_p99_ms"] = server_val(srv ? m.server->abort_lag_p99_ms : std::nullopt);
  e["infeasible"] = ran ? json(nullptr) : json(*m.infeasible);
  // Beyond DESIGN.md's list: what explains the numbers above.
  e["deadline_ms"] = m.deadline_ms;
  e["warmup_s"] = val(m.warmup_s);
  e["window_s"] = val(m.window_s);
  e["wall_s"] = val(m.wall_s);
  e["completed_in_window"] = val(m.completed_in_window);
  e["cpu_s"] = val(m.cpu_s);
  e["calls"] = val(m.calls);
  e["call_ok"] = val(m.call_ok);
  e["call_http_errors"] = val(m.call_http_errors);
  e["call_transport_errors"] = val(m.call_transport_errors);
  e["call_cancelled"] = val(m.call_cancelled);
  e["call_unanswered"] = val(m.call_unanswered);
  e["orchestrations_threw"] = val(m.orchestrations_threw);
  // null: none threw (not a time of 0), or the cell did not run.
  e["first_throw_ms"] = ran && m.first_throw_ms ? json(*m.first_throw_ms) : json(nullptr);
  if (m.open_loop) {
    // The rate the schedule was kept at: starts of the window that a worker
    // began (late or not) rather than letting them expire in the queue.
    const double achieved =
        m.window_s > 0 ? static_cast<double>(m.orchestrations - m.starts_expired) / m.window_s
                       : 0.0;
    e["target_rate"] = m.target_rate;
    e["achieved_rate"] = val(achieved);
    e["saturated"] = val(achieved < 0.95 * m.target_rate);
    e["starts_late"] = val(m.starts_late);
    e["starts_expired"] = val(m.starts_expired);
  }
  e["threads_baseline"] = val(m.threads_baseline);
  e["rss_baseline_kb"] = val(m.rss_baseline_kb);
  e["drained"] = val(m.drained);
  e["server_requests"] = server_val(srv ? m.server->requests : std::nullopt);
  e["server_completed_after_deadline"] =
      server_val(srv ? m.server->completed_after_deadline : std::nullopt);
  e["server_max_in_flight"] = server_val(srv ? m.server->max_in_flight : std::nullopt);
  e["server_max_open_connections"] =
      server_val(srv ? m.server->max_open_connections : std::nullopt);
  e["server_unreachable"] = val(srv ? m.server->unreachable : 0, srv);
  e["callers"] = val(m.callers);
  e["window_start_unix_ns"] = val(m.window_start_unix_ns);
  if (ran && !m.shard_process.empty()) {
    // Merged shards: a peak, a baseline or a drain belongs to one process;
    // summed over processes it would describe none of them.
    for (const auto& f : process_fields()) e[f] = nullptr;
    e["shards"] = m.shard_process;
  }
  if (ran)
    for (const auto& [key, value] : m.runtime_fields.items()) e[key] = value;
  if (ran) {
    json h = json::object();
    h["latency_ns"] = histogram_json(m.latency_ns);
    h["overshoot_ns"] = histogram_json(m.overshoot_ns);
    if (m.pool_measured) h["pool_wait_ns"] = histogram_json(m.pool_wait_ns);
    e["histograms"] = std::move(h);
  }
  return e;
}

namespace {

std::uint64_t u64(const json& e, const char* key) {
  return e.contains(key) && e[key].is_number() ? e[key].get<std::uint64_t>() : 0;
}
std::int64_t i64(const json& e, const char* key) {
  return e.contains(key) && e[key].is_number() ? e[key].get<std::int64_t>() : 0;
}
double dbl(const json& e, const char* key) {
  return e.contains(key) && e[key].is_number() ? e[key].get<double>() : 0.0;
}
template <class T>
std::optional<T> opt(const json& e, const char* key) {
  if (!e.contains(key) || e[key].is_null()) return std::nullopt;
  return e[key].get<T>();
}

LogHistogram entry_histogram(const json& e, const char* name) {
  const auto& h = e["histograms"];
  if (!h.contains(name)) return {};
  std::string why;
  auto out = histogram_from_json(h[name], why);
  if (!out) throw std::invalid_argument(e.value("name", "?") + ": histograms." + name + ": " + why);
  return *out;
}

}  // namespace

Measurement measurement_from_entry(const json& e) {
  Measurement m;
  m.scenario = e.value("scenario", "");
  m.pattern = e.value("pattern", "");
  m.runtime = e.contains("runtime") && e["runtime"].is_string() ? e["runtime"].get<std::string>()
                                                                : runtime_of(m.pattern);
  m.fanout = e.value("fanout", 0);
  m.concurrency = e.value("concurrency", 0);
  m.deadline_ms = e.value("deadline_ms", 0);
  m.repetitions = e.value("repetitions", 1);
  m.repetition_index = e.value("repetition_index", 0);
  m.family_index = e.value("family_index", 0);
  m.per_family_instance_index = e.value("per_family_instance_index", 0);
  if (e.contains("infeasible") && e["infeasible"].is_string()) {
    m.infeasible = e["infeasible"].get<std::string>();
    return m;
  }
  if (!e.contains("histograms"))
    throw std::invalid_argument(
        e.value("name", "?") +
        " has no histograms (a report of an orchlab without them cannot be read back exactly)");
  m.latency_ns = entry_histogram(e, "latency_ns");
  m.overshoot_ns = entry_histogram(e, "overshoot_ns");
  m.pool_measured = e["histograms"].contains("pool_wait_ns");
  if (m.pool_measured) m.pool_wait_ns = entry_histogram(e, "pool_wait_ns");
  m.warmup_s = dbl(e, "warmup_s");
  m.window_s = dbl(e, "window_s");
  m.wall_s = dbl(e, "wall_s");
  m.orchestrations = u64(e, "iterations");
  m.completed_in_window = u64(e, "completed_in_window");
  m.complete = u64(e, "complete");
  m.partial = u64(e, "partial");
  m.failed = u64(e, "failed");
  m.timed_out = u64(e, "timed_out");
  m.orchestrations_threw = u64(e, "orchestrations_threw");
  m.first_throw_ms = opt<double>(e, "first_throw_ms");
  m.calls = u64(e, "calls");
  m.call_ok = u64(e, "call_ok");
  m.call_http_errors = u64(e, "call_http_errors");
  m.call_transport_errors = u64(e, "call_transport_errors");
  m.call_cancelled = u64(e, "call_cancelled");
  m.call_unanswered = u64(e, "call_unanswered");
  m.open_loop = e.contains("target_rate");
  m.target_rate = dbl(e, "target_rate");
  m.starts_late = u64(e, "starts_late");
  m.starts_expired = u64(e, "starts_expired");
  m.leaked_tasks_at_return = u64(e, "leaked_tasks_at_return");
  m.leaked_tasks_end = i64(e, "leaked_tasks_end");
  m.zombie_task_s = dbl(e, "zombie_task_s");
  m.late_completions = u64(e, "late_completions");
  m.threads_baseline = i64(e, "threads_baseline");
  m.threads_peak = i64(e, "threads_peak");
  m.threads_end = i64(e, "threads_end");
  m.live_tasks_peak = i64(e, "live_tasks_peak");
  m.drain_ms = dbl(e, "drain_ms");
  m.drained = e.value("drained", true);
  m.pool_exhausted = u64(e, "pool_exhausted");
  m.lock_wait_ns = u64(e, "lock_wait_ns");
  m.lock_contended = u64(e, "lock_contended");
  m.cpu_s = dbl(e, "cpu_s");
  m.ctx_switches_voluntary = i64(e, "ctx_switches_voluntary");
  m.ctx_switches_involuntary = i64(e, "ctx_switches_involuntary");
  m.rss_baseline_kb = i64(e, "rss_baseline_kb");
  m.rss_peak_kb = i64(e, "rss_peak_kb");
  m.callers = e.value("callers", 0);
  m.window_start_unix_ns = i64(e, "window_start_unix_ns");
  // A driver's exhibit: no profiled lock, no threads_end; what describes the
  // runtime (not one process's counts) carries over.
  m.lock_measured = e.contains("lock_wait_ns") && !e["lock_wait_ns"].is_null();
  m.threads_end_measured = e.contains("threads_end") && !e["threads_end"].is_null();
  for (const char* f : {"driver", "exhibit_form", "go_version", "gomaxprocs", "go_transport"})
    if (e.contains(f)) m.runtime_fields[f] = e[f];
  if (e.contains("server_unreachable") && !e["server_unreachable"].is_null()) {
    ServerTotals t;
    t.requests = opt<std::uint64_t>(e, "server_requests");
    t.client_aborts = opt<std::uint64_t>(e, "server_client_aborts");
    t.completed_after_deadline = opt<std::uint64_t>(e, "server_completed_after_deadline");
    t.work_past_deadline_ms = opt<double>(e, "server_work_past_deadline_ms");
    t.abort_lag_p99_ms = opt<double>(e, "server_abort_lag_p99_ms");
    t.max_in_flight = opt<std::uint64_t>(e, "server_max_in_flight");
    t.max_open_connections = opt<std::uint64_t>(e, "server_max_open_connections");
    t.unreachable = e["server_unreachable"].get<int>();
    m.server = t;
  }
  return m;
}

std::vector<json> aggregate_entries(const std::vector<const Measurement*>& reps) {
  std::vector<json> out;
  if (reps.size() < 2) return out;
  std::vector<json> entries;
  for (const auto* m : reps) entries.push_back(benchmark_entry(*m));
  const json& first = entries.front();
  const std::string run_name = first["run_name"];

  LogHistogram lat, over, pool;
  bool pool_measured = true;
  for (const auto* m : reps) {
    lat.merge(m->latency_ns);
    over.merge(m->overshoot_ns);
    pool.merge(m->pool_wait_ns);
    pool_measured = pool_measured && m->pool_measured;
  }

  struct Stat {
    const char* name;
    const char* unit;
  };
  for (const Stat stat : {Stat{"mean", "time"}, Stat{"median", "time"}, Stat{"stddev", "time"},
                          Stat{"cv", "percentage"}}) {
    json a = json::object();
    a["name"] = run_name + "_" + stat.name;
    a["family_index"] = first["family_index"];
    a["per_family_instance_index"] = first["per_family_instance_index"];
    a["run_name"] = run_name;
    a["run_type"] = "aggregate";
    a["repetitions"] = first["repetitions"];
    a["threads"] = 1;
    a["aggregate_name"] = stat.name;
    a["aggregate_unit"] = stat.unit;
    a["iterations"] = reps.size();
    const std::string s = stat.name;
    auto compute = [&](const std::string& field) -> json {
      std::vector<double> v;
      for (const auto& e : entries)
        if (e.contains(field) && e[field].is_number()) v.push_back(e[field].get<double>());
      if (v.empty()) return nullptr;
      const double mean = std::accumulate(v.begin(), v.end(), 0.0) / v.size();
      if (s == "mean") return mean;
      if (s == "median") {
        std::sort(v.begin(), v.end());
        const auto k = v.size() / 2;
        return v.size() % 2 ? v[k] : (v[k - 1] + v[k]) / 2;
      }
      double ss = 0;
      for (double x : v) ss += (x - mean) * (x - mean);
      const double sd = v.size() > 1 ? std::sqrt(ss / (v.size() - 1)) : 0.0;
      if (s == "stddev") return sd;
      return mean != 0 ? sd / mean : 0.0;
    };
    a["real_time"] = compute("real_time");
    a["cpu_time"] = compute("cpu_time");
    a["time_unit"] = "us";
    a["label"] = first["label"];
    for (const auto& [key, value] : first.items()) {
      if (a.contains(key) || key == "repetition_index" || key == "window_start_unix_ns" ||
          value.is_structured())
        continue;
      if (value.is_string() || value.is_boolean()) {
        a[key] = value;
      } else if (key == "fanout" || key == "concurrency" || key == "deadline_ms") {
        a[key] = value;
      } else {
        a[key] = compute(key);
      }
    }
    if (s == "mean") {
      // Percentiles are never averaged: the mean entry reports them from the
      // histograms merged over every repetition.
      a["real_time"] = us(static_cast<std::uint64_t>(lat.mean()));
      latency_fields(a, lat, over, pool_measured ? &pool : nullptr);
    }
    if (first.contains("drained")) {
      bool all = true;
      for (const auto& e : entries) all = all && e.value("drained", true);
      a["drained"] = all;
    }
    out.push_back(std::move(a));
  }
  return out;
}

json build_json() {
  json b = json::object();
  b["orchlab_version"] = ORCHLAB_VERSION;
  b["git_sha"] = ORCHLAB_GIT_SHA;
  b["build_type"] = std::string(ORCHLAB_BUILD_TYPE).empty() ? "none" : ORCHLAB_BUILD_TYPE;
  b["compiler"] = compiler();
  // A sanitizer's allocator and shadow memory are in every RSS and CPU
  // figure: such a report measures the instrumented program.
  b["sanitizer"] = std::string(ORCHLAB_SANITIZER).empty() ? json(nullptr) : json(ORCHLAB_SANITIZER);
  return b;
}

json context_json(const RunInfo& info) {
  const auto h = sys::host();
  json c = json::object();
  c["date"] = info.date.empty() ? date_now() : info.date;
  c["host_name"] = h.host_name;
  c["executable"] = info.executable;
  c["num_cpus"] = h.num_cpus;
  c["usable_cpus"] = h.usable_cpus;
  c["mhz_per_cpu"] = static_cast<int>(std::lround(h.mhz_per_cpu));
  c["cpu_scaling_enabled"] = h.cpu_scaling_enabled;
  json caches = json::array();
  for (const auto& k : h.caches)
    caches.push_back(
        {{"type", k.type}, {"level", k.level}, {"size", k.size}, {"num_sharing", k.num_sharing}});
  c["caches"] = caches;
  // Read now, as the report is written: the run's own threads are in it.
  // host_before_run says how busy the host was without the run.
  c["load_avg"] = h.load_avg;
#ifdef NDEBUG
  c["library_build_type"] = "release";
#else
  c["library_build_type"] = "debug";
#endif
  const json build = build_json();
  for (const auto& [key, value] : build.items()) c[key] = value;
  c["command_line"] = info.command_line;
  c["interrupted"] = info.interrupted;
  c["shuffle_seed"] = info.shuffle_seed;
  if (const auto& hb = info.host_before_run) {
    auto opt = [](const std::optional<double>& v) { return v ? json(*v) : json(nullptr); };
    json procs = json::array();
    for (const auto& p : hb->busy_processes)
      procs.push_back({{"pid", p.pid}, {"comm", p.comm}, {"cpu_share", p.cpu_share}});
    c["host_before_run"] = {{"load_avg_1m", opt(hb->load_avg_1m)},
                            {"cpu_busy_share", opt(hb->cpu_busy_share)},
                            {"steal_share", opt(hb->steal_share)},
                            {"busy_processes", procs},
                            {"cpus", hb->cpus},
                            {"measured_for_s", hb->measured_for_s},
                            {"busy", hb->busy},
                            {"why", hb->busy ? json(hb->why) : json(nullptr)}};
  } else {
    c["host_before_run"] = nullptr;
  }
  c["runtimes"] = info.runtimes.is_null() ? json::object() : info.runtimes;
  if (info.shard) {
    c["shard"] = {{"index", info.shard->index},
                  {"count", info.shard->count},
                  {"start_at", iso8601_utc(info.shard->start_at_unix_ns)},
                  {"start_at_unix_ns", info.shard->start_at_unix_ns},
                  {"host", info.shard->host},
                  {"services", info.shard->services}};
  }
  return c;
}

json metrics_metadata() {
  // The groups join every task before returning: anything left behind by
  // them is a bug, not a measurement.
  const json groups = {"cancellable-group",
                       "cancellable-group+collect-all",
                       "cancellable-group+ignores-stop",
                       "bounded-group",
                       "async-group",
                       "async-group+collect-all",
                       "go-errgroup",
                       "go-errgroup-limit",
                       "go-errgroup+collect-all",
                       "go-errgroup+ignores-ctx"};
  auto m = [](const char* unit, const char* better) {
    return json{{"unit", unit}, {"better", better}, {"must_be_zero_for", json::array()}};
  };
  json x = json::object();
  x["real_time"] = m("us", "lower");
  x["cpu_time"] = m("us", "lower");
  x["items_per_second"] = m("1/s", "higher");
  for (const char* p : {"p50_us", "p90_us", "p99_us", "p999_us", "max_us"}) x[p] = m("us", "lower");
  x["complete"] = m("orchestrations", "higher");
  x["partial"] = m("orchestrations", "none");
  x["failed"] = m("orchestrations", "lower");
  x["timed_out"] = m("orchestrations", "lower");
  x["orchestrations_threw"] = m("orchestrations", "lower");
  x["deadline_overshoot_p99_us"] = m("us", "lower");
  x["leaked_tasks_at_return"] = m("tasks", "lower");
  x["leaked_tasks_end"] = m("tasks", "lower");
  x["zombie_task_s"] = m("s", "lower");
  x["late_completions"] = m("calls", "lower");
  for (const char* f :
       {"leaked_tasks_at_return", "leaked_tasks_end", "zombie_task_s", "late_completions"})
    x[f]["must_be_zero_for"] = groups;
  x["threads_peak"] = m("threads", "lower");
  x["live_tasks_peak"] = m("tasks", "none");
  x["threads_end"] = m("threads", "lower");
  x["drain_ms"] = m("ms", "lower");
  x["pool_wait_p99_us"] = m("us", "lower");
  x["pool_exhausted"] = m("acquires", "lower");
  x["lock_wait_ns"] = m("ns", "lower");
  x["lock_contended"] = m("acquisitions", "lower");
  x["ctx_switches_voluntary"] = m("switches", "lower");
  x["ctx_switches_involuntary"] = m("switches", "lower");
  x["rss_peak_kb"] = m("KiB", "lower");
  // Aborts seen by the server are cancellation reaching it: more is better
  // when a deadline or an error has made the call useless.
  x["server_client_aborts"] = m("requests", "higher");
  x["server_work_past_deadline_ms"] = m("ms", "lower");
  x["server_abort_lag_p99_ms"] = m("ms", "lower");
  x["call_transport_errors"] = m("calls", "lower");
  x["achieved_rate"] = m("1/s", "higher");
  x["starts_late"] = m("orchestrations", "lower");
  x["starts_expired"] = m("orchestrations", "lower");
  return x;
}

// Why a field is null or what it rests on, once per run: the measurements'
// own notes, and one per percentile that some cell had too few samples for.
json run_notes(const std::vector<Measurement>& measurements) {
  std::vector<std::string> notes;
  auto add = [&](const std::string& n) {
    if (std::find(notes.begin(), notes.end(), n) == notes.end()) notes.push_back(n);
  };
  for (const auto& m : measurements) {
    for (const auto& n : m.notes) add(n);
    if (m.infeasible) continue;
    const std::uint64_t n = m.latency_ns.count();
    for (const auto& [field, q] : {std::pair{"p50_us", 0.50}, std::pair{"p90_us", 0.90},
                                   std::pair{"p99_us", 0.99}, std::pair{"p999_us", 0.999}}) {
      if (n < min_samples(q))
        add(std::string(field) + " is null where a repetition has fewer than " +
            std::to_string(min_samples(q)) +
            " latency samples (latency_samples gives each count); the _mean entry's comes "
            "from the merged histogram and may exist");
    }
    if (m.overshoot_ns.count() < min_samples(0.99))
      add("deadline_overshoot_p99_us is null where a repetition has fewer than " +
          std::to_string(min_samples(0.99)) +
          " orchestrations (one overshoot each: latency_samples gives the count)");
  }
  return notes;
}

json build_report(const RunInfo& info, const std::vector<Measurement>& measurements,
                  const json& scenarios) {
  json doc = json::object();
  doc["context"] = context_json(info);
  json benchmarks = json::array();
  json series = json::object();
  // Repetitions of a cell are contiguous; each cell's entries are followed by
  // its aggregates, as Google Benchmark writes them.
  for (std::size_t i = 0; i < measurements.size();) {
    std::size_t j = i;
    std::vector<const Measurement*> reps;
    const auto same_cell = [&](const Measurement& a, const Measurement& b) {
      return a.scenario == b.scenario && a.pattern == b.pattern && a.fanout == b.fanout &&
             a.concurrency == b.concurrency;
    };
    while (j < measurements.size() && same_cell(measurements[i], measurements[j]))
      reps.push_back(&measurements[j++]);
    for (const auto* m : reps) benchmarks.push_back(benchmark_entry(*m));
    if (!reps.front()->infeasible) {
      for (auto& a : aggregate_entries(reps)) benchmarks.push_back(std::move(a));
      const auto& m = *reps.front();
      series[cell_name(m)] = {
          {"repetition_index", m.repetition_index}, {"bucket_ms", m.series.bucket_ms},
          {"window_ms", m.series.window_ms},        {"started", m.series.started},
          {"finished", m.series.finished},          {"in_flight", m.series.in_flight},
          {"live_tasks", m.series.live_tasks},      {"os_threads", m.series.os_threads}};
      if (!m.series.goroutines.empty()) series[cell_name(m)]["goroutines"] = m.series.goroutines;
    }
    i = j;
  }
  doc["benchmarks"] = std::move(benchmarks);
  doc["lab"] = {{"schema_version", 1},
                {"metrics", metrics_metadata()},
                {"scenarios", scenarios.is_null() ? json::object() : scenarios},
                {"notes", run_notes(measurements)},
                {"series", std::move(series)}};
  return doc;
}

void write_report(std::ostream& out, const json& doc) {
  std::string text;
  write_pretty(text, doc, 0);
  text += "\n";
  out << text << std::flush;
  if (!out) throw std::runtime_error("cannot write the report to the output stream");
}

void write_atomic(const std::filesystem::path& path, const json& doc) {
  namespace fs = std::filesystem;
  const fs::path dir = path.has_parent_path() ? path.parent_path() : fs::path(".");
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) throw std::runtime_error("cannot create " + dir.string() + ": " + ec.message());
  std::string text;
  write_pretty(text, doc, 0);
  text += "\n";
  const fs::path tmp =
      dir / ("." + path.filename().string() + ".tmp." + std::to_string(::getpid()));
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) throw std::runtime_error("cannot write " + tmp.string());
  std::size_t done = 0;
  while (done < text.size()) {
    const auto n = ::write(fd, text.data() + done, text.size() - done);
    if (n <= 0) {
      ::close(fd);
      ::unlink(tmp.c_str());
      throw std::runtime_error("cannot write " + tmp.string());
    }
    done += static_cast<std::size_t>(n);
  }
  ::fsync(fd);
  ::close(fd);
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    ::unlink(tmp.c_str());
    throw std::runtime_error("cannot rename " + tmp.string() + " to " + path.string());
  }
}

}  // namespace orchlab::harness

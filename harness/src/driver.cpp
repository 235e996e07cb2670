#include "orchlab/harness/driver.hpp"

#include <algorithm>
#include <cmath>
#include <condition_variable>
#include <mutex>
#include <optional>
#include <thread>

#include "orchlab/census.hpp"
#include "orchlab/http_client.hpp"
#include "orchlab/profiled_mutex.hpp"

namespace orchlab::harness {
namespace {

using Clock = std::chrono::steady_clock;
constexpr std::int64_t kBucketNs = 100'000'000;   // the time series' 100 ms
constexpr std::int64_t kLateStartNs = 1'000'000;  // open loop: a start this late is "late"
// The path every call requests; the mock answers any path that is not an
// admin route, so it only makes the calls recognisable in a capture.
constexpr const char* kCallPath = "/orchestrate";

std::int64_t now_ns() {
  // steady_clock is CLOCK_MONOTONIC on Linux, the clock X-Orchlab-Deadline-Ns uses.
  return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch())
      .count();
}

std::uint64_t splitmix64(std::uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

// One caller's counters: written only by its thread, summed after the join
// (no shared atomics on the hot path).
struct CallerStats {
  LogHistogram latency_ns;
  LogHistogram overshoot_ns;
  std::uint64_t orchestrations = 0, complete = 0, partial = 0, failed = 0, timed_out = 0;
  std::uint64_t calls = 0, ok = 0, http = 0, transport = 0, cancelled = 0, unanswered = 0;
  std::uint64_t late_starts = 0, dropped_starts = 0;
  std::vector<std::uint64_t> started, finished;
  std::int64_t last_end_ns = 0;

  void bump(std::vector<std::uint64_t>& v, std::int64_t since_t0_ns) {
    const auto i = static_cast<std::size_t>(std::max<std::int64_t>(0, since_t0_ns) / kBucketNs);
    if (v.size() <= i) v.resize(i + 1, 0);
    ++v[i];
  }
};

// What every caller of one repetition shares, read-only.
struct Load {
  const CellEnv* env;
  int repetition;
  std::int64_t t0_ns;
  std::int64_t window_end_ns;
  std::int64_t deadline_ns;
  std::vector<std::string> call_urls;  // call i goes to call_urls[i % size]
};

Plan make_plan(const Load& load) {
  Plan plan;
  plan.deadline = std::chrono::milliseconds(load.env->cell->scenario->deadline_ms);
  plan.calls.resize(static_cast<std::size_t>(load.env->cell->fanout));
  for (std::size_t i = 0; i < plan.calls.size(); ++i)
    plan.calls[i].url = load.call_urls[i % load.call_urls.size()];
  return plan;
}

// One orchestration: the census scope around run() is what attributes the
// tasks it leaves behind to it.
void orchestrate(const Load& load, int caller, std::uint64_t seq, std::int64_t intended_ns,
                 Plan& plan, CallerStats& s) {
  const std::int64_t start = now_ns();
  for (std::size_t i = 0; i < plan.calls.size(); ++i) {
    plan.calls[i].key = call_key(load.repetition, caller, seq, static_cast<int>(i));
    plan.calls[i].deadline_ns = start + load.deadline_ns;
  }
  s.bump(s.started, start - load.t0_ns);
  Outcome out;
  bool threw = false;
  {
    census::Scope scope;
    try {
      out = load.env->pattern->run(plan, load.env->fetch);
    } catch (...) {
      threw = true;
    }
    scope.mark_returned();
  }
  const std::int64_t end = now_ns();
  s.bump(s.finished, end - load.t0_ns);
  s.last_end_ns = std::max(s.last_end_ns, end);
  ++s.orchestrations;
  // Open loop: from the intended start, so a stalled schedule shows.
  s.latency_ns.record(static_cast<std::uint64_t>(std::max<std::int64_t>(0, end - intended_ns)));
  s.overshoot_ns.record(
      static_cast<std::uint64_t>(std::max<std::int64_t>(0, end - start - load.deadline_ns)));
  if (threw) {
    ++s.failed;
    s.calls += plan.calls.size();
    s.unanswered += plan.calls.size();
    return;
  }
  switch (out.verdict) {
    case Verdict::complete:
      ++s.complete;
      break;
    case Verdict::partial:
      ++s.partial;
      break;
    case Verdict::failed:
      ++s.failed;
      break;
    case Verdict::timed_out:
      ++s.timed_out;
      break;
  }
  s.calls += plan.calls.size();
  for (std::size_t i = 0; i < plan.calls.size(); ++i) {
    if (i >= out.slots.size() || !out.slots[i]) {
      ++s.unanswered;
      continue;
    }
    switch (out.slots[i]->error) {
      case ReplyError::none:
        ++s.ok;
        break;
      case ReplyError::http:
        ++s.http;
        break;
      case ReplyError::transport:
        ++s.transport;
        break;
      case ReplyError::cancelled:
        ++s.cancelled;
        break;
    }
  }
}

bool interrupted(const Load& load) {
  return load.env->interrupted && load.env->interrupted->load(std::memory_order_relaxed);
}

// Closed loop: back to back until the window ends.
void closed_caller(const Load& load, int caller, CallerStats& s) {
  Plan plan = make_plan(load);
  for (std::uint64_t seq = 0; now_ns() < load.window_end_ns && !interrupted(load); ++seq) {
    orchestrate(load, caller, seq, now_ns(), plan, s);
  }
}

// Open loop: worker w owns slots w, w+C, w+2C, ... of a fixed schedule at
// `rate`. A slot whose worker is still busy starts late (and its latency
// counts from the slot); slots not started when the window ends are dropped.
void open_caller(const Load& load, int caller, int workers, double rate, CallerStats& s) {
  Plan plan = make_plan(load);
  const double period_ns = 1e9 / rate;
  const auto total = static_cast<std::uint64_t>(
      std::ceil(static_cast<double>(load.window_end_ns - load.t0_ns) / period_ns));
  const auto step = static_cast<std::uint64_t>(workers);
  for (std::uint64_t k = static_cast<std::uint64_t>(caller), seq = 0; k < total; k += step, ++seq) {
    const std::int64_t intended =
        load.t0_ns + static_cast<std::int64_t>(static_cast<double>(k) * period_ns);
    std::int64_t now = now_ns();
    while (intended > now && !interrupted(load)) {
      const auto nap = std::min<std::int64_t>(intended - now, 50'000'000);
      std::this_thread::sleep_for(std::chrono::nanoseconds(nap));
      now = now_ns();
    }
    if (now >= load.window_end_ns || interrupted(load)) {
      s.dropped_starts += (total - k + step - 1) / step;
      break;
    }
    if (now - intended > kLateStartNs) ++s.late_starts;
    orchestrate(load, caller, seq, intended, plan, s);
  }
}

// Samples the census and the process every 100 ms, aligned to t0, for the
// time series and the thread/RSS peaks.
class Sampler {
 public:
  Sampler(std::int64_t t0_ns, std::shared_ptr<census::Ledger> ledger)
      : t0_ns_(t0_ns), ledger_(std::move(ledger)), thread_([this] { loop(); }) {}
  ~Sampler() { stop(); }
  void stop() {
    {
      std::lock_guard lock(mutex_);
      stopping_ = true;
    }
    cv_.notify_all();
    if (thread_.joinable()) thread_.join();
  }
  std::vector<std::int64_t> live_tasks, os_threads;
  std::int64_t peak_threads = 0;
  std::int64_t peak_rss_kb = 0;

 private:
  void loop() {
    std::unique_lock lock(mutex_);
    for (std::int64_t k = 1;; ++k) {
      const auto due = Clock::time_point(std::chrono::nanoseconds(t0_ns_ + k * kBucketNs));
      if (cv_.wait_until(lock, due, [this] { return stopping_; })) return;
      live_tasks.push_back(ledger_->totals().live_tasks);
      const std::int64_t threads = os_thread_count();
      os_threads.push_back(threads);
      peak_threads = std::max(peak_threads, threads);
      peak_rss_kb = std::max(peak_rss_kb, sys::rss_kb());
    }
  }
  std::int64_t t0_ns_;
  std::shared_ptr<census::Ledger> ledger_;
  std::mutex mutex_;
  std::condition_variable cv_;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace

bool uses_own_client(std::string_view pattern) { return pattern.rfind("async-group", 0) == 0; }

std::uint64_t call_key(int repetition, int caller, std::uint64_t seq, int call) {
  std::uint64_t h = splitmix64(static_cast<std::uint64_t>(repetition) + 1);
  h = splitmix64(h ^ static_cast<std::uint64_t>(caller));
  h = splitmix64(h ^ seq);
  h = splitmix64(h ^ static_cast<std::uint64_t>(call));
  return h ? h : 1;  // 0 means "no key"
}

std::optional<std::string> infeasible_reason(const Cell& cell, std::size_t service_count,
                                             bool embedded_services, const sys::Limits& limits) {
  const auto& sc = *cell.scenario;
  const std::int64_t c = cell.concurrency, f = cell.fanout;
  // Threads: callers plus, per orchestration, one per call and a waiter.
  std::int64_t threads = 0;
  if (uses_own_client(cell.pattern)) {
    threads = c + 2 * static_cast<std::int64_t>(std::max(1u, std::thread::hardware_concurrency()));
  } else if (cell.pattern == "bounded-group") {
    threads = c * (std::min<std::int64_t>(f, sc.limit) + 2);
  } else {
    threads = c * (f + 2);
  }
  threads += 32;  // main, sampler, the embedded fleet, the allocator's helpers
  // A quarter of what is left: the machine is shared, and a thread-per-call
  // exhibit leaks more than this estimate when its calls hang.
  const std::int64_t thread_budget = limits.threads / 4;
  if (threads > thread_budget)
    return "needs ~" + std::to_string(threads) + " threads (" + std::to_string(c) + " callers x " +
           std::to_string(f) + " calls), over a quarter of the " + std::to_string(limits.threads) +
           " the system can still create (" + limits.threads_bound + ")";
  const std::int64_t conns =
      std::min<std::int64_t>(c * f, static_cast<std::int64_t>(service_count) *
                                        static_cast<std::int64_t>(sc.max_conns_per_host));
  const std::int64_t fds = conns * (embedded_services ? 2 : 1) + 64;
  if (fds > limits.fds / 2)
    return "needs ~" + std::to_string(fds) + " file descriptors, over half of the " +
           std::to_string(limits.fds) + " RLIMIT_NOFILE leaves";
  return std::nullopt;
}

Measurement cell_identity(const Cell& cell, int family_index, int per_family_instance_index) {
  const Scenario& sc = *cell.scenario;
  Measurement m;
  m.scenario = sc.name;
  m.pattern = cell.pattern;
  m.fanout = cell.fanout;
  m.concurrency = cell.concurrency;
  m.deadline_ms = sc.deadline_ms;
  m.repetitions = sc.repetitions;
  m.family_index = family_index;
  m.per_family_instance_index = per_family_instance_index;
  return m;
}

Measurement run_repetition(const CellEnv& env, int repetition_index, bool& complete) {
  const Cell& cell = *env.cell;
  const Scenario& sc = *cell.scenario;
  Measurement m = cell_identity(cell, env.family_index, env.per_family_instance_index);
  m.repetition_index = repetition_index;

  // Reset, then snapshot everything the measurement is a delta of.
  env.services->reset();
  const auto stats_before = env.services->stats();
  if (env.client) env.client->reset_stats();
  env.pattern->reset_pool_stats();
  // This repetition's orchestrations count into a ledger of their own:
  // leftovers of an earlier repetition that end now are not charged here.
  const auto ledger = census::install_ledger();
  const auto lock0 = lock_stats();
  const auto use0 = sys::usage();
  const bool hwm_reset = sys::reset_rss_peak();

  Load load;
  load.env = &env;
  load.repetition = repetition_index;
  load.deadline_ns = static_cast<std::int64_t>(sc.deadline_ms) * 1'000'000;
  for (const auto& url : env.services->urls()) load.call_urls.push_back(url + kCallPath);
  load.t0_ns = now_ns();
  load.window_end_ns = load.t0_ns + static_cast<std::int64_t>(sc.duration_s * 1e9);

  // Drive: C callers, joined before anything is summed.
  Sampler sampler(load.t0_ns, ledger);
  std::vector<CallerStats> per_caller(static_cast<std::size_t>(cell.concurrency));
  {
    std::vector<std::thread> callers;
    callers.reserve(per_caller.size());
    for (int c = 0; c < cell.concurrency; ++c) {
      if (sc.mode == Mode::open)
        callers.emplace_back(open_caller, std::cref(load), c, cell.concurrency, sc.rate,
                             std::ref(per_caller[c]));
      else
        callers.emplace_back(closed_caller, std::cref(load), c, std::ref(per_caller[c]));
    }
    for (auto& t : callers) t.join();
  }
  const bool was_interrupted = env.interrupted && env.interrupted->load();
  const std::int64_t callers_done = now_ns();
  m.threads_end = os_thread_count();
  m.leaked_tasks_end = ledger->totals().live_tasks;

  // Drain: wait (bounded) for what the pattern left running, so this
  // repetition's zombies are measured in full and never reach the services'
  // counters of the next one. (The census metrics are this repetition's
  // ledger's: tasks that outlive the bound are never charged to the next.)
  const auto drain_start = Clock::now();
  m.drained =
      census::wait_idle(was_interrupted ? std::chrono::milliseconds(1000) : env.drain_timeout);
  m.drain_ms = std::chrono::duration<double, std::milli>(Clock::now() - drain_start).count();
  sampler.stop();
  const std::int64_t drain_end = now_ns();

  // Sum per-caller counters.
  std::int64_t last_end = load.t0_ns;
  for (auto& s : per_caller) {
    m.latency_ns.merge(s.latency_ns);
    m.overshoot_ns.merge(s.overshoot_ns);
    m.orchestrations += s.orchestrations;
    m.complete += s.complete;
    m.partial += s.partial;
    m.failed += s.failed;
    m.timed_out += s.timed_out;
    m.calls += s.calls;
    m.call_ok += s.ok;
    m.call_http_errors += s.http;
    m.call_transport_errors += s.transport;
    m.call_cancelled += s.cancelled;
    m.call_unanswered += s.unanswered;
    m.late_starts += s.late_starts;
    m.dropped_starts += s.dropped_starts;
    last_end = std::max(last_end, s.last_end_ns);
  }
  // The window: first start to last return (the join itself is not load).
  m.wall_s = static_cast<double>((m.orchestrations ? last_end : callers_done) - load.t0_ns) / 1e9;

  // Census, locks, rusage, memory, pool: deltas over drive + drain, so the
  // leaked work's cost is charged to the pattern that leaked it.
  census::uninstall_ledger();
  const auto census1 = ledger->totals();
  m.leaked_tasks_at_return = census1.leaked_at_return;
  m.late_completions = census1.late_completions;
  m.zombie_task_s = static_cast<double>(census1.zombie_ns) / 1e9;
  const auto lock1 = lock_stats();
  m.lock_wait_ns = lock1.wait_ns - lock0.wait_ns;
  m.lock_contended = lock1.contended - lock0.contended;
  const auto use1 = sys::usage();
  m.cpu_s = use1.cpu_s - use0.cpu_s;
  m.ctx_switches_voluntary = use1.ctx_voluntary - use0.ctx_voluntary;
  m.ctx_switches_involuntary = use1.ctx_involuntary - use0.ctx_involuntary;
  m.rss_peak_kb = std::max(hwm_reset ? sys::rss_peak_kb() : std::int64_t{0}, sampler.peak_rss_kb);
  m.threads_peak = std::max(sampler.peak_threads, m.threads_end);
  // The pool the calls went through: the pattern's own (async-group) or the
  // shared client behind the Fetch. One that saw no request gives no numbers
  // rather than zeros that would read as "never starved".
  std::optional<PoolStats> pool = env.pattern->pool_stats();
  if (!pool && env.client) pool = env.client->stats();
  if (pool && pool->requests > 0) {
    m.pool_measured = true;
    m.pool_wait_ns = pool->wait_ns;
    m.pool_exhausted = pool->acquires_waited;
  }
  m.server = server_delta(stats_before, env.services->stats());

  // The time series: callers' buckets summed, sampler's aligned to t0.
  auto& ser = m.series;
  ser.window_ms = static_cast<double>(callers_done - load.t0_ns) / 1e6;
  const auto buckets =
      static_cast<std::size_t>((drain_end - load.t0_ns + kBucketNs - 1) / kBucketNs);
  ser.started.assign(buckets, 0);
  ser.finished.assign(buckets, 0);
  for (const auto& s : per_caller) {
    for (std::size_t i = 0; i < s.started.size() && i < buckets; ++i)
      ser.started[i] += s.started[i];
    for (std::size_t i = 0; i < s.finished.size() && i < buckets; ++i)
      ser.finished[i] += s.finished[i];
  }
  std::int64_t in_flight = 0;
  for (std::size_t i = 0; i < buckets; ++i) {
    in_flight +=
        static_cast<std::int64_t>(ser.started[i]) - static_cast<std::int64_t>(ser.finished[i]);
    ser.in_flight.push_back(in_flight);
  }
  ser.live_tasks = sampler.live_tasks;
  ser.os_threads = sampler.os_threads;
  ser.live_tasks.resize(buckets, census1.live_tasks);
  ser.os_threads.resize(buckets, os_thread_count());

  complete = !was_interrupted;
  return m;
}

}  // namespace orchlab::harness

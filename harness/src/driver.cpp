#include "orchlab/harness/driver.hpp"

#include <malloc.h>

#include <algorithm>
#include <cmath>
#include <condition_variable>
#include <mutex>
#include <optional>
#include <random>
#include <system_error>
#include <thread>

#include "orchlab/census.hpp"
#include "orchlab/harness/trace.hpp"
#include "orchlab/http_client.hpp"
#include "orchlab/profiled_mutex.hpp"

namespace orchlab::harness {
namespace {

using Clock = std::chrono::steady_clock;
constexpr std::int64_t kBucketNs = 100'000'000;   // the time series' 100 ms
constexpr std::int64_t kLateStartNs = 1'000'000;  // open loop: a start this late is "late"

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
  std::uint64_t orchestrations = 0, completed_in_window = 0;
  std::uint64_t complete = 0, partial = 0, failed = 0, timed_out = 0;
  std::uint64_t calls = 0, ok = 0, http = 0, transport = 0, cancelled = 0, unanswered = 0;
  std::uint64_t starts_late = 0, starts_expired = 0;
  std::uint64_t threw = 0;           ///< orchestrations whose run() threw (counted in `failed`)
  std::int64_t first_throw_ns = -1;  ///< since t0; -1: none
  std::string first_throw;           ///< what the first one said
  std::vector<std::uint64_t> started, finished;
  std::int64_t last_end_ns = 0;
  std::vector<trace::OrchRecord> traced;  ///< traced repetitions: the window's orchestrations

  void bump(std::vector<std::uint64_t>& v, std::int64_t since_t0_ns) {
    const auto i = static_cast<std::size_t>(std::max<std::int64_t>(0, since_t0_ns) / kBucketNs);
    if (v.size() <= i) v.resize(i + 1, 0);
    ++v[i];
  }
};

// The open loop's one schedule of intended starts for a repetition, shared by
// every worker: whichever worker is idle takes the next start (wrk2's model).
// Starts begin with the warm-up and end with the window. Evenly spaced, or
// exponential gaps of the same mean (Poisson arrivals) from a fixed seed.
class Schedule {
 public:
  // A shard takes positions shard, shard + shards, ... of the one schedule
  // every shard computes alike: together they make the unsharded schedule.
  Schedule(std::int64_t begin_ns, std::int64_t end_ns, double rate, bool poisson,
           std::uint64_t seed, int shard = 0, int shards = 1)
      : begin_ns_(begin_ns),
        end_ns_(end_ns),
        period_ns_(1e9 / rate),
        poisson_(poisson),
        shard_(static_cast<std::uint64_t>(shard)),
        shards_(static_cast<std::uint64_t>(shards)),
        rng_(seed) {}

  struct Start {
    std::int64_t intended_ns;
    std::uint64_t seq;  // position in the schedule: the call keys derive from it
  };
  std::optional<Start> take() {
    std::lock_guard lock(mutex_);
    while (true) {
      const auto at = begin_ns_ + static_cast<std::int64_t>(offset_ns_);
      if (at >= end_ns_) return std::nullopt;
      offset_ns_ += poisson_ ? exponential_(rng_) * period_ns_ : period_ns_;
      const std::uint64_t seq = next_++;
      if (seq % shards_ == shard_) return Start{at, seq};
    }
  }

 private:
  const std::int64_t begin_ns_, end_ns_;
  const double period_ns_;
  const bool poisson_;
  const std::uint64_t shard_, shards_;
  std::mutex mutex_;
  double offset_ns_ = 0;
  std::uint64_t next_ = 0;
  std::mt19937_64 rng_;
  std::exponential_distribution<double> exponential_{1.0};
};

// What every caller of one repetition shares, read-only (but the schedule).
struct Load {
  const CellEnv* env;
  int repetition;
  std::int64_t warmup_start_ns;  // load begins
  std::int64_t t0_ns;            // the window begins: only starts from here count
  std::int64_t window_end_ns;
  std::int64_t deadline_ns;
  std::vector<std::string> call_urls;  // call i goes to call_urls[i % size]
  Schedule* schedule = nullptr;        // open loop
  const Fetch* fetch = nullptr;        // env->fetch, or its traced wrapper
  std::size_t trace_records = 0;       // traced: each caller's bound of OrchRecords (0: off)
};

Plan make_plan(const Load& load) {
  Plan plan;
  plan.deadline = std::chrono::milliseconds(load.env->cell->scenario->deadline_ms);
  plan.calls.resize(static_cast<std::size_t>(load.env->cell->fanout));
  for (std::size_t i = 0; i < plan.calls.size(); ++i)
    plan.calls[i].url = load.call_urls[i % load.call_urls.size()];
  return plan;
}

// Records one orchestration that counts (its intended start is in the window).
void record(const Load& load, CallerStats& s, std::int64_t intended_ns, std::int64_t end_ns) {
  s.bump(s.started, intended_ns - load.t0_ns);
  s.bump(s.finished, end_ns - load.t0_ns);
  s.last_end_ns = std::max(s.last_end_ns, end_ns);
  ++s.orchestrations;
  if (end_ns <= load.window_end_ns) ++s.completed_in_window;
  // From the intended start: in the open loop a stalled schedule shows.
  const std::int64_t latency = std::max<std::int64_t>(0, end_ns - intended_ns);
  s.latency_ns.record(static_cast<std::uint64_t>(latency));
  s.overshoot_ns.record(
      static_cast<std::uint64_t>(std::max<std::int64_t>(0, latency - load.deadline_ns)));
}

// One orchestration: the census scope around run() is what attributes the
// tasks it leaves behind to it. Its deadline counts from `intended_ns` (in
// the open loop a start that waited has less of its budget left).
void orchestrate(const Load& load, int caller, std::uint64_t seq, std::int64_t intended_ns,
                 Plan& plan, CallerStats& s) {
  const std::int64_t start = now_ns();
  const std::int64_t due = intended_ns + load.deadline_ns;
  // Its calls tell the services whether they belong to the window: the
  // server-side counts then cover the orchestrations `iterations` counts,
  // however long their calls run into the drain (docs/harness.md).
  const bool counts = intended_ns >= load.t0_ns;
  // To the nanosecond: in whole milliseconds the exhibit's deadline fell up to
  // 1 ms before `due`, the deadline the services were told, and every abort
  // the deadline caused looked early (a negative abort lag).
  plan.deadline = std::chrono::nanoseconds(std::max<std::int64_t>(0, due - start));
  for (std::size_t i = 0; i < plan.calls.size(); ++i) {
    plan.calls[i].key = call_key(load.repetition, caller, seq, static_cast<int>(i));
    plan.calls[i].deadline_ns = due;
    plan.calls[i].window = counts;
  }
  Outcome out;
  bool threw = false;
  std::string what;
  int live_at_return = 0;
  {
    census::Scope scope;
    try {
      out = load.env->pattern->run(plan, *load.fetch);
    } catch (const std::exception& e) {
      // E.g. std::system_error from a thread that could not be created.
      threw = true;
      what = e.what();
    } catch (...) {
      threw = true;
      what = "an exception that is not a std::exception";
    }
    live_at_return = scope.mark_returned();
  }
  const std::int64_t end = now_ns();
  if (load.trace_records) trace::forget_pending();
  if (!counts) return;  // warm-up: run, not counted
  record(load, s, intended_ns, end);
  if (s.traced.size() < load.trace_records)
    s.traced.push_back({intended_ns, start, end, seq, caller, live_at_return,
                        threw ? Verdict::failed : out.verdict, threw});
  s.calls += plan.calls.size();
  if (threw) {
    ++s.failed;
    ++s.threw;
    if (s.first_throw_ns < 0) {
      s.first_throw_ns = end - load.t0_ns;
      s.first_throw = std::move(what);
    }
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

// Closed loop: back to back from the warm-up until the window ends.
void closed_caller(const Load& load, int caller, CallerStats& s) {
  Plan plan = make_plan(load);
  for (std::uint64_t seq = 0; now_ns() < load.window_end_ns && !interrupted(load); ++seq) {
    orchestrate(load, caller, seq, now_ns(), plan, s);
  }
}

// Open loop: take the next due start of the shared schedule, wait for it,
// run it. A start whose deadline passed while it waited for a worker is a
// timed-out orchestration that never ran, its wait in the histogram: the
// queue is what an overloaded service makes its callers see.
void open_worker(const Load& load, CallerStats& s) {
  Plan plan = make_plan(load);
  while (!interrupted(load)) {
    const auto start = load.schedule->take();
    if (!start) break;
    std::int64_t now = now_ns();
    while (start->intended_ns > now && !interrupted(load)) {
      std::this_thread::sleep_for(
          std::chrono::nanoseconds(std::min<std::int64_t>(start->intended_ns - now, 50'000'000)));
      now = now_ns();
    }
    if (interrupted(load)) break;
    const bool counts = start->intended_ns >= load.t0_ns;
    // Keys from the schedule position (caller 0), not from the worker that
    // happened to take it: the same start meets the same faults in any run.
    if (now - start->intended_ns >= load.deadline_ns - 1'000'000) {  // < 1 ms of budget left
      if (!counts) continue;
      ++s.starts_expired;
      ++s.timed_out;
      record(load, s, start->intended_ns, now);
      continue;
    }
    if (counts && now - start->intended_ns > kLateStartNs) ++s.starts_late;
    orchestrate(load, 0, start->seq, start->intended_ns, plan, s);
  }
}

// Samples the process every 10 ms for the thread and RSS peaks, and every
// 100 ms (aligned to the window's start) the census and the process for the
// time series.
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
  std::int64_t peak_live_tasks = 0;
  std::int64_t peak_rss_kb = 0;

 private:
  static constexpr std::int64_t kPeakNs = 10'000'000;
  void loop() {
    std::unique_lock lock(mutex_);
    const std::int64_t first = now_ns();
    std::int64_t next_bucket = t0_ns_ + kBucketNs;
    for (std::int64_t k = 1;; ++k) {
      const auto due = Clock::time_point(std::chrono::nanoseconds(first + k * kPeakNs));
      if (cv_.wait_until(lock, due, [this] { return stopping_; })) return;
      const std::int64_t threads = os_thread_count();
      peak_threads = std::max(peak_threads, threads);
      const std::int64_t live = ledger_->totals().live_tasks;
      peak_live_tasks = std::max(peak_live_tasks, live);
      peak_rss_kb = std::max(peak_rss_kb, sys::rss_kb());
      if (now_ns() >= next_bucket) {
        next_bucket += kBucketNs;
        live_tasks.push_back(live);
        os_threads.push_back(threads);
      }
    }
  }
  std::int64_t t0_ns_;
  std::shared_ptr<census::Ledger> ledger_;
  std::mutex mutex_;
  std::condition_variable cv_;
  bool stopping_ = false;
  std::thread thread_;
};

// Waits until every task of this repetition's orchestrations has ended, or
// `timeout`: leftovers of an earlier repetition do not hold this one up.
bool wait_ledger_idle(const census::Ledger& ledger, std::chrono::milliseconds timeout) {
  const auto until = Clock::now() + timeout;
  while (ledger.totals().live_tasks > 0) {
    if (Clock::now() >= until) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return true;
}

}  // namespace

int shard_callers(int concurrency, int index, int count) {
  return index < concurrency ? (concurrency - index + count - 1) / count : 0;
}

bool uses_own_client(std::string_view pattern) { return pattern.rfind("async-group", 0) == 0; }

bool is_driver_pattern(std::string_view pattern) { return pattern.rfind("go-", 0) == 0; }

std::string runtime_of(std::string_view pattern) {
  if (is_driver_pattern(pattern)) return "go";
  return uses_own_client(pattern) ? "cpp-asio" : "cpp-thread";
}

std::uint64_t schedule_seed(int repetition) {
  return splitmix64(static_cast<std::uint64_t>(repetition) + 0x5eed);
}

std::vector<PlannedStart> open_loop_starts(const Scenario& sc, int repetition, int shard,
                                           int shards) {
  const auto span = static_cast<std::int64_t>(warmup_seconds(sc) * 1e9) +
                    static_cast<std::int64_t>(sc.duration_s * 1e9);
  Schedule schedule(0, span, sc.rate, sc.poisson, schedule_seed(repetition), shard, shards);
  std::vector<PlannedStart> out;
  while (const auto s = schedule.take()) out.push_back({s->intended_ns, s->seq});
  return out;
}

std::uint64_t call_key(int repetition, int caller, std::uint64_t seq, int call) {
  std::uint64_t h = splitmix64(static_cast<std::uint64_t>(repetition) + 1);
  h = splitmix64(h ^ static_cast<std::uint64_t>(caller));
  h = splitmix64(h ^ seq);
  h = splitmix64(h ^ static_cast<std::uint64_t>(call));
  return h ? h : 1;  // 0 means "no key"
}

std::optional<std::string> infeasible_reason(const Cell& cell, std::size_t service_count,
                                             bool embedded_services, const sys::Limits& limits,
                                             bool thread_budget) {
  const auto& sc = *cell.scenario;
  const std::int64_t c = cell.concurrency, f = cell.fanout;
  // Threads: callers plus, per orchestration, one per call and a waiter.
  std::int64_t threads = 0;
  const bool driver = is_driver_pattern(cell.pattern);
  if (driver) {
    // Goroutines, not threads: the driver's process is its own, and its
    // runtime keeps about GOMAXPROCS threads busy.
  } else if (uses_own_client(cell.pattern)) {
    threads = c + 2 * static_cast<std::int64_t>(std::max(1u, std::thread::hardware_concurrency()));
  } else if (cell.pattern == "bounded-group") {
    threads = c * (std::min<std::int64_t>(f, sc.limit) + 2);
  } else {
    threads = c * (f + 2);
  }
  if (!driver) threads += 32;  // main, sampler, the embedded fleet, the allocator's helpers
  // A quarter of what is left: the machine is shared, and a thread-per-call
  // exhibit leaks more than this estimate when its calls hang.
  if (thread_budget && threads > limits.threads / 4)
    return "needs ~" + std::to_string(threads) + " threads (" + std::to_string(c) + " callers x " +
           std::to_string(f) + " calls), over a quarter of the " + std::to_string(limits.threads) +
           " the system can still create (" + limits.threads_bound + ")";
  // Go's default transport has no per-host bound: every call may hold one.
  const bool unbounded = driver && sc.go_transport == "default";
  const std::int64_t conns =
      unbounded
          ? c * f
          : std::min<std::int64_t>(c * f, static_cast<std::int64_t>(service_count) *
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
  m.runtime = runtime_of(cell.pattern);
  m.fanout = cell.fanout;
  m.concurrency = cell.concurrency;
  m.deadline_ms = sc.deadline_ms;
  m.repetitions = sc.repetitions;
  m.family_index = family_index;
  m.per_family_instance_index = per_family_instance_index;
  return m;
}

std::vector<StatsReading> begin_repetition(const CellEnv& env, Measurement& m) {
  // A sharded repetition starts in its slot: shard 0 resets the services
  // at the slot's start, and every shard reads them kSlotSettle later, before
  // any shard's load begins.
  auto sleep_until = [&](std::int64_t at_ns) {
    while (now_ns() < at_ns && !(env.interrupted && env.interrupted->load()))
      std::this_thread::sleep_for(
          std::chrono::nanoseconds(std::min<std::int64_t>(at_ns - now_ns(), 20'000'000)));
  };
  if (env.slot_start_ns) {
    const std::int64_t late = now_ns() - *env.slot_start_ns;
    if (late > 0)
      m.notes.push_back("a repetition of " + env.cell->name() + " began " +
                        std::to_string(late / 1'000'000) +
                        " ms after its slot (the previous one overran it): its window is not "
                        "aligned with the other shards'");
    sleep_until(*env.slot_start_ns);
  }
  if (env.reset_services) env.services->reset();
  if (env.slot_start_ns)
    sleep_until(*env.slot_start_ns +
                std::chrono::duration_cast<std::chrono::nanoseconds>(kSlotSettle).count());
  return env.services->stats();
}

Measurement run_repetition(const CellEnv& env, int repetition_index, bool& complete) {
  const Cell& cell = *env.cell;
  const Scenario& sc = *cell.scenario;
  Measurement m = cell_identity(cell, env.family_index, env.per_family_instance_index);
  m.repetition_index = repetition_index;

  // Reset, then snapshot everything the measurement is a delta of.
  const auto stats_before = begin_repetition(env, m);
  // Traced: the services record from here, the calls through a wrapper.
  std::unique_ptr<trace::Repetition> traced;
  if (env.tracer)
    traced = env.tracer->begin(*env.services, env.fetch,
                               shard_callers(cell.concurrency, env.shard_index, env.shard_count));
  // A pattern with its own client (async-group) reports its calls itself.
  if (traced) traced->own_client = env.pattern->observe_calls(traced->observer.get());
  if (env.client) env.client->reset_stats();
  env.pattern->reset_pool_stats();
  // This repetition's orchestrations count into a ledger of their own:
  // leftovers of an earlier repetition that end now are not charged here.
  const auto ledger = census::install_ledger();
  // Memory and threads are counted above this repetition's own baseline:
  // the free heap an earlier cell left is handed back first, so RSS growth
  // here is this cell's, whatever ran before it.
  ::malloc_trim(0);
  const bool hwm_reset = sys::reset_rss_peak();
  m.rss_baseline_kb = sys::rss_kb();
  m.threads_baseline = os_thread_count();
  const auto lock0 = lock_stats();

  Load load;
  load.env = &env;
  load.repetition = repetition_index;
  load.deadline_ns = static_cast<std::int64_t>(sc.deadline_ms) * 1'000'000;
  load.call_urls = env.services->urls();  // as given, path and query included
  load.fetch = traced && traced->fetch ? &traced->fetch : &env.fetch;
  if (traced) load.trace_records = std::max<std::size_t>(1, traced->records_per_caller);
  m.warmup_s = warmup_seconds(sc);
  m.window_s = sc.duration_s;
  load.warmup_start_ns = now_ns();
  if (env.slot_start_ns)  // every shard's load from the same instant
    load.warmup_start_ns =
        std::max(load.warmup_start_ns,
                 *env.slot_start_ns +
                     std::chrono::duration_cast<std::chrono::nanoseconds>(kSlotSettle).count());
  load.t0_ns = load.warmup_start_ns + static_cast<std::int64_t>(m.warmup_s * 1e9);
  m.window_start_unix_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(
                               std::chrono::system_clock::now().time_since_epoch())
                               .count() +
                           (load.t0_ns - now_ns());
  load.window_end_ns = load.t0_ns + static_cast<std::int64_t>(sc.duration_s * 1e9);
  std::optional<Schedule> schedule;
  if (sc.mode == Mode::open) {
    m.open_loop = true;
    m.target_rate = sc.rate / env.shard_count;
    schedule.emplace(load.warmup_start_ns, load.window_end_ns, sc.rate, sc.poisson,
                     schedule_seed(repetition_index), env.shard_index, env.shard_count);
    load.schedule = &*schedule;
  }

  // Drive: C callers (closed) or C workers (open), joined before anything is
  // summed. CPU and context switches are taken over the window alone (the
  // warm-up's are not the window's), plus the drain.
  Sampler sampler(load.t0_ns, ledger);
  // Unsharded: callers 0..C-1. Shard I of N: callers I, I+N, ..., each with
  // the caller number (and so the call keys) it has in an unsharded run.
  std::vector<CallerStats> per_caller(
      static_cast<std::size_t>(shard_callers(cell.concurrency, env.shard_index, env.shard_count)));
  sys::Usage use0{};
  {
    std::vector<std::thread> callers;
    callers.reserve(per_caller.size());
    for (std::size_t k = 0; k < per_caller.size(); ++k) {
      const int c = env.shard_index + static_cast<int>(k) * env.shard_count;
      // Out of threads (a process under resource limits, or one that the
      // exhibit's leftovers filled): run with the callers that started and
      // say so; an exception here would destroy joinable threads.
      try {
        if (sc.mode == Mode::open)
          callers.emplace_back(open_worker, std::cref(load), std::ref(per_caller[k]));
        else
          callers.emplace_back(closed_caller, std::cref(load), c, std::ref(per_caller[k]));
      } catch (const std::system_error& e) {
        m.notes.push_back("only " + std::to_string(k) + " of " + std::to_string(per_caller.size()) +
                          " callers of " + cell.name() + " could be started: " + e.what());
        break;
      }
    }
    m.callers = static_cast<int>(callers.size());
    const auto t0 = Clock::time_point(std::chrono::nanoseconds(load.t0_ns));
    while (Clock::now() < t0 && !(env.interrupted && env.interrupted->load()))
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    use0 = sys::usage();
    for (auto& t : callers) t.join();
  }
  const bool was_interrupted = env.interrupted && env.interrupted->load();
  const std::int64_t callers_done = now_ns();
  m.threads_end = os_thread_count() - m.threads_baseline;
  m.leaked_tasks_end = ledger->totals().live_tasks;

  // Drain: wait (bounded) for what this repetition's orchestrations left
  // running, so its zombies are measured in full and never reach the
  // services' counters of the next one.
  const auto drain_start = Clock::now();
  auto drain_timeout = was_interrupted ? std::chrono::milliseconds(1000) : env.drain_timeout;
  if (env.slot_end_ns)  // a shard's next slot does not wait for this drain
    drain_timeout =
        std::min(drain_timeout, std::chrono::milliseconds(std::max<std::int64_t>(
                                    0, (*env.slot_end_ns - now_ns()) / 1'000'000 - 100)));
  m.drained = wait_ledger_idle(*ledger, drain_timeout);
  m.drain_ms = std::chrono::duration<double, std::milli>(Clock::now() - drain_start).count();
  sampler.stop();
  const std::int64_t drain_end = now_ns();

  // Sum per-caller counters.
  std::int64_t last_end = load.t0_ns;
  std::string first_throw;
  for (auto& s : per_caller) {
    m.latency_ns.merge(s.latency_ns);
    m.overshoot_ns.merge(s.overshoot_ns);
    m.orchestrations += s.orchestrations;
    m.completed_in_window += s.completed_in_window;
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
    m.starts_late += s.starts_late;
    m.starts_expired += s.starts_expired;
    m.orchestrations_threw += s.threw;
    if (s.first_throw_ns >= 0 &&
        (!m.first_throw_ms || static_cast<double>(s.first_throw_ns) / 1e6 < *m.first_throw_ms)) {
      m.first_throw_ms = static_cast<double>(s.first_throw_ns) / 1e6;
      first_throw = s.first_throw;
    }
    last_end = std::max(last_end, s.last_end_ns);
  }
  m.wall_s = static_cast<double>(last_end - load.t0_ns) / 1e9;
  if (m.orchestrations_threw > 0)
    m.notes.push_back(std::to_string(m.orchestrations_threw) + " orchestration(s) of " +
                      m.scenario + "/" + m.pattern + " threw (counted as failed), the first " +
                      std::to_string(static_cast<std::int64_t>(*m.first_throw_ms)) +
                      " ms into the window: " + first_throw);
  if (was_interrupted) {
    // Cut short: the window is what actually ran.
    m.window_s = std::max(
        0.0, static_cast<double>(std::min(callers_done, load.window_end_ns) - load.t0_ns) / 1e9);
  }

  // Census, locks, rusage, memory, pool: deltas over window + drain, so the
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
  const std::int64_t peak_rss =
      std::max(hwm_reset ? sys::rss_peak_kb() : std::int64_t{0}, sampler.peak_rss_kb);
  m.rss_peak_kb = std::max<std::int64_t>(0, peak_rss - m.rss_baseline_kb);
  if (!hwm_reset)
    m.notes.push_back(
        "rss_peak_kb: /proc/self/clear_refs is not writable here, so the peak is the 10 ms "
        "sampler's, which can miss a shorter spike");
  m.threads_peak =
      std::max<std::int64_t>(sampler.peak_threads, os_thread_count()) - m.threads_baseline;
  m.live_tasks_peak = sampler.peak_live_tasks;
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
  ser.window_ms =
      static_cast<double>(std::min(callers_done, load.window_end_ns) - load.t0_ns) / 1e6;
  const auto buckets = static_cast<std::size_t>(
      std::max<std::int64_t>(0, drain_end - load.t0_ns + kBucketNs - 1) / kBucketNs);
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

  if (traced) {
    env.pattern->observe_calls(nullptr);
    std::vector<trace::OrchRecord> records;
    for (auto& s : per_caller) {
      records.insert(records.end(), s.traced.begin(), s.traced.end());
      std::vector<trace::OrchRecord>().swap(s.traced);
    }
    env.tracer->end(cell, m, repetition_index, std::move(records), *traced, *env.services);
  }

  complete = !was_interrupted;
  return m;
}

}  // namespace orchlab::harness

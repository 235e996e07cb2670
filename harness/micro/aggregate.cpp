// BM_Aggregate: how N concurrent tasks hand their results to the collector
// that waits for them. Tests the article's "mutex aggregation loses 30-60% at
// higher goroutine counts" and "index-based slots always win".
//
// One iteration is one fan-out: the collector hands a batch of N tasks to a
// crew of T threads (itself included), each task does W ns of calibrated CPU
// work and publishes one result, and the collector waits until every result
// is in. That wait (the latch, or the channel's receives) is inside the timed
// region for every strategy, so no strategy skips the join the others pay for.
// T runs from 1 to the usable cores (the affinity mask) and never beyond:
// an oversubscribed lock measures the scheduler, not the lock.
// items/s is tasks per second; the contention share of a strategy is
// 1 - R(T)/R(1) with R = its throughput / slots' throughput (claims.py).
#include <benchmark/benchmark.h>
#include <sched.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "micro.hpp"
#include "orchlab/channel.hpp"

namespace orchlab::micro {
namespace {

constexpr std::size_t kCacheLine = 64;
/// Work per task, ns: none (aggregation alone), then 1, 10 and 100 µs.
constexpr std::int64_t kWorkNs[] = {0, 1'000, 10'000, 100'000};

/// A small result: 16 bytes, so four share a cache line in a plain vector.
struct Result {
  std::uint64_t value = 0;
  std::uint32_t status = 0;
  std::uint32_t size = 0;
};
static_assert(sizeof(Result) == 16);
struct alignas(kCacheLine) PaddedResult {
  Result r;
};

Result make_result(std::uint64_t i) { return Result{i, 200, 64}; }

/// Tasks per fan-out: about 2 ms of work at one thread, 64 to 4096 tasks.
std::int64_t tasks_for(std::int64_t work_ns) {
  return std::clamp<std::int64_t>(work_ns > 0 ? 2'000'000 / work_ns : 4096, 64, 4096);
}

// --- calibrated work ---------------------------------------------------------

std::uint64_t spin(std::uint64_t rounds) {
  std::uint64_t x = 0x9E3779B97F4A7C15ull;
  for (std::uint64_t i = 0; i < rounds; ++i) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
  }
  return x;
}

/// Spin rounds per ns, from the fastest of several 2 ms runs (the slow ones
/// were interrupted): work is CPU, not clock reads, so it scales with cores.
double rounds_per_ns() {
  static const double rate = [] {
    constexpr std::uint64_t kRounds = 1'000'000;
    double best = 0;
    for (int i = 0; i < 7; ++i) {
      const auto t0 = std::chrono::steady_clock::now();
      benchmark::DoNotOptimize(spin(kRounds));
      const double ns =
          std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - t0).count();
      best = std::max(best, kRounds / ns);
    }
    return best;
  }();
  return rate;
}

void work(std::uint64_t rounds) {
  if (rounds) benchmark::DoNotOptimize(spin(rounds));
}

// --- the strategies --------------------------------------------------------------

enum class Strategy { mutex_vector, slots, slots_padded, channel_fan_in, atomic_index };

/// Where the results go; one instance per benchmark run.
struct Sink {
  explicit Sink(std::int64_t n)
      : slots(static_cast<std::size_t>(n)),
        padded(static_cast<std::size_t>(n)),
        ring(static_cast<std::size_t>(n)),
        channel(static_cast<std::size_t>(n)) {
    results.reserve(static_cast<std::size_t>(n));
  }
  std::mutex mutex;
  std::vector<Result> results;       // mutex-vector: mu.Lock(); append
  std::vector<Result> slots;         // slots: results[i] = r
  std::vector<PaddedResult> padded;  // slots, one cache line each
  std::vector<Result> ring;          // atomic-index: ring[next++] = r
  alignas(kCacheLine) std::atomic<std::uint64_t> next{0};
  Channel<Result> channel;  // channel fan-in: ch <- r

  void publish(Strategy s, std::int64_t i) {
    const Result r = make_result(static_cast<std::uint64_t>(i));
    switch (s) {
      case Strategy::mutex_vector: {
        std::lock_guard lock(mutex);
        results.push_back(r);
        break;
      }
      case Strategy::slots:
        slots[static_cast<std::size_t>(i)] = r;
        break;
      case Strategy::slots_padded:
        padded[static_cast<std::size_t>(i)].r = r;
        break;
      case Strategy::channel_fan_in:
        channel.send(r);
        break;
      case Strategy::atomic_index:
        ring[next.fetch_add(1, std::memory_order_relaxed) % ring.size()] = r;
        break;
    }
  }
};

/// T-1 threads that, with the collector, run each batch: task i goes to
/// thread i mod T, so neighbouring results are written by different threads
/// (as goroutines land on any P). Workers sleep on the generation counter.
class Crew {
 public:
  Crew(int threads, Strategy s, Sink& sink, std::int64_t tasks, std::uint64_t rounds)
      : threads_(threads), strategy_(s), sink_(sink), tasks_(tasks), rounds_(rounds) {
    for (int t = 1; t < threads; ++t) workers_.emplace_back([this, t] { loop(t); });
  }
  ~Crew() {
    stop_.store(true);
    generation_.fetch_add(1);
    generation_.notify_all();
    for (auto& w : workers_) w.join();
  }

  /// One fan-out, from the hand-off to the last result collected.
  void fan_out() {
    if (strategy_ == Strategy::mutex_vector) sink_.results.clear();  // no worker is running
    remaining_.store(threads_ - 1, std::memory_order_relaxed);
    generation_.fetch_add(1, std::memory_order_release);
    generation_.notify_all();
    run_share(0);
    if (strategy_ == Strategy::channel_fan_in) {
      // The channel is the join: receive every result.
      for (std::int64_t i = 0; i < tasks_; ++i) benchmark::DoNotOptimize(sink_.channel.receive());
    } else {
      // The latch: the last worker out wakes the collector.
      for (int left = remaining_.load(std::memory_order_acquire); left != 0;
           left = remaining_.load(std::memory_order_acquire))
        remaining_.wait(left, std::memory_order_acquire);
    }
  }

 private:
  void run_share(int t) {
    for (std::int64_t i = t; i < tasks_; i += threads_) {
      work(rounds_);
      sink_.publish(strategy_, i);
    }
  }
  void loop(int t) {
    std::uint64_t seen = 0;
    for (;;) {
      generation_.wait(seen, std::memory_order_acquire);
      seen = generation_.load(std::memory_order_acquire);
      if (stop_.load()) return;
      run_share(t);
      if (remaining_.fetch_sub(1, std::memory_order_acq_rel) == 1) remaining_.notify_one();
    }
  }

  const int threads_;
  const Strategy strategy_;
  Sink& sink_;
  const std::int64_t tasks_;
  const std::uint64_t rounds_;
  alignas(kCacheLine) std::atomic<std::uint64_t> generation_{0};
  alignas(kCacheLine) std::atomic<int> remaining_{0};
  std::atomic<bool> stop_{false};
  std::vector<std::thread> workers_;
};

void BM_Aggregate(benchmark::State& state, Strategy s, std::int64_t work_ns, int threads) {
  const std::int64_t tasks = tasks_for(work_ns);
  const auto rounds = static_cast<std::uint64_t>(static_cast<double>(work_ns) * rounds_per_ns());
  Sink sink(tasks);
  Crew crew(threads, s, sink, tasks, rounds);
  for (auto _ : state) crew.fan_out();
  state.SetItemsProcessed(state.iterations() * tasks);
  state.counters["tasks_per_fan_out"] = static_cast<double>(tasks);
  state.counters["work_ns"] = static_cast<double>(work_ns);
  state.counters["crew_threads"] = threads;
}

int usable_cpus() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof(set), &set) != 0) return 1;
  return std::max(1, CPU_COUNT(&set));
}

}  // namespace

void register_aggregate() {
  const struct {
    const char* name;
    Strategy strategy;
  } strategies[] = {
      {"mutex-vector", Strategy::mutex_vector}, {"slots", Strategy::slots},
      {"slots-padded", Strategy::slots_padded}, {"channel-fan-in", Strategy::channel_fan_in},
      {"atomic-index", Strategy::atomic_index},
  };
  const int cores = usable_cpus();
  for (const auto& s : strategies)
    for (const std::int64_t w : kWorkNs)
      for (int t = 1; t <= cores; t = t < cores ? std::min(cores, t * 2) : cores + 1) {
        const std::string name = std::string("BM_Aggregate/") + s.name +
                                 "/work_ns:" + std::to_string(w) + "/threads:" + std::to_string(t);
        benchmark::RegisterBenchmark(name.c_str(), BM_Aggregate, s.strategy, w, t)->UseRealTime();
      }
}

}  // namespace orchlab::micro

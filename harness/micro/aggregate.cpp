// BM_Aggregate: how concurrent tasks hand their results to the caller, at 1 to
// 64 threads. Tests the article's "mutex aggregation loses 30-60% at higher
// goroutine counts" and "index-based slots always win" — false sharing
// included: packed slots put four results on one cache line.
//
// Each benchmark thread plays one task that stores one result per iteration
// into state shared by all threads; items/s is the aggregate throughput
// (real time, summed over threads).
#include <benchmark/benchmark.h>

#include <atomic>
#include <cstdint>
#include <new>
#include <string>
#include <vector>

#include "micro.hpp"
#include "orchlab/channel.hpp"
#include "orchlab/profiled_mutex.hpp"

namespace orchlab::micro {
namespace {

constexpr int kMaxThreads = 64;
constexpr std::size_t kCacheLine = 64;

/// A small result: 16 bytes, so four share a cache line when packed.
struct Result {
  std::uint64_t value = 0;
  std::uint32_t status = 0;
  std::uint32_t size = 0;
};
static_assert(sizeof(Result) == 16);

struct alignas(kCacheLine) PaddedResult {
  Result r;
};
static_assert(sizeof(PaddedResult) == kCacheLine);

Result make_result(std::uint64_t i) { return Result{i, 200, 64}; }

// mutex+vector: the article's `mu.Lock(); results = append(results, r)`.
void BM_MutexVector(benchmark::State& state) {
  static ProfiledMutex mutex;
  static std::vector<Result> results = [] {
    std::vector<Result> v;
    v.reserve(1 << 16);
    return v;
  }();
  std::uint64_t i = 0;
  for (auto _ : state) {
    std::lock_guard lock(mutex);
    // Bounded memory: start over without freeing once the reserve is full.
    if (results.size() == results.capacity()) results.clear();
    results.push_back(make_result(i++));
  }
  state.SetItemsProcessed(state.iterations());
}

// Index slots, packed: task t owns slots[t]; neighbours share cache lines.
void BM_SlotsPacked(benchmark::State& state) {
  alignas(kCacheLine) static Result slots[kMaxThreads];
  Result& mine = slots[state.thread_index()];
  std::uint64_t i = 0;
  for (auto _ : state) {
    mine = make_result(i++);
    benchmark::ClobberMemory();  // keep every store; none may be merged away
  }
  state.SetItemsProcessed(state.iterations());
}

// Index slots, each on its own cache line: no sharing at all.
void BM_SlotsPadded(benchmark::State& state) {
  static PaddedResult slots[kMaxThreads];
  Result& mine = slots[state.thread_index()].r;
  std::uint64_t i = 0;
  for (auto _ : state) {
    mine = make_result(i++);
    benchmark::ClobberMemory();
  }
  state.SetItemsProcessed(state.iterations());
}

// Channel fan-in: every task sends into one shared channel and the collector
// receives; here each thread does both halves, so every item crosses the
// channel's mutex twice, as in Go.
void BM_ChannelFanIn(benchmark::State& state) {
  static Channel<Result> channel(4096);  // > 64 in flight: send never blocks
  std::uint64_t i = 0;
  for (auto _ : state) {
    channel.send(make_result(i++));
    auto r = channel.try_receive();
    benchmark::DoNotOptimize(r);
  }
  state.SetItemsProcessed(state.iterations());
}

// Atomic index: a shared counter hands out the next free slot of a ring
// (lock-free append); the counter's cache line is the contended spot.
void BM_AtomicIndex(benchmark::State& state) {
  constexpr std::size_t kRing = 4096;
  alignas(kCacheLine) static std::atomic<std::uint64_t> next{0};
  alignas(kCacheLine) static Result ring[kRing];
  std::uint64_t i = 0;
  for (auto _ : state) {
    ring[next.fetch_add(1, std::memory_order_relaxed) % kRing] = make_result(i++);
    benchmark::ClobberMemory();
  }
  state.SetItemsProcessed(state.iterations());
}

}  // namespace

void register_aggregate() {
  const struct {
    const char* name;
    void (*fn)(benchmark::State&);
  } strategies[] = {
      {"mutex-vector", BM_MutexVector}, {"slots-packed", BM_SlotsPacked},
      {"slots-padded", BM_SlotsPadded}, {"channel-fan-in", BM_ChannelFanIn},
      {"atomic-index", BM_AtomicIndex},
  };
  for (const auto& s : strategies) {
    const std::string name = std::string("BM_Aggregate/") + s.name;
    benchmark::RegisterBenchmark(name.c_str(), s.fn)
        ->ThreadRange(1, kMaxThreads)  // 1, 2, 4, ..., 64
        ->UseRealTime();
  }
}

}  // namespace orchlab::micro

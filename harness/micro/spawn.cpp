// BM_Spawn: the floor under every thread-per-call exhibit — start one empty
// task and wait until it has finished — next to a pool that reuses threads.
#include <benchmark/benchmark.h>

#include <atomic>
#include <boost/asio/post.hpp>
#include <boost/asio/thread_pool.hpp>
#include <chrono>
#include <cstddef>
#include <string>
#include <thread>
#include <vector>

#include "micro.hpp"
#include "orchlab/census.hpp"

namespace orchlab::micro {
namespace {

void BM_StdThread(benchmark::State& state) {
  for (auto _ : state) {
    std::thread t([] {});
    t.join();
  }
  state.SetItemsProcessed(state.iterations());
}

// The floor of a thread-per-call orchestration of fanout N: start N empty
// threads, then join them all.
void BM_StdThreadBatch(benchmark::State& state, int fanout) {
  const auto n = static_cast<std::size_t>(fanout);
  std::vector<std::thread> threads;
  threads.reserve(n);
  for (auto _ : state) {
    for (std::size_t i = 0; i < n; ++i) threads.emplace_back([] {});
    for (auto& t : threads) t.join();
    threads.clear();
  }
  state.SetItemsProcessed(state.iterations() * fanout);
}

void BM_StdJthread(benchmark::State& state) {
  for (auto _ : state) {
    std::jthread t([] {});
  }
  state.SetItemsProcessed(state.iterations());
}

// The lab's `go` statement: a detached thread plus its census registration;
// "finished" is when the census sees it end (there is nothing to join).
void BM_GoCensus(benchmark::State& state) {
  for (auto _ : state) {
    go([] {});
    if (!census::wait_idle(std::chrono::seconds(10))) {
      state.SkipWithError("failed: go() task did not finish within 10 s");
      note_failure();
      break;
    }
  }
  state.SetItemsProcessed(state.iterations());
}

// A post to a running pool of 2 threads (the machine's cores) and a wait for
// the task to have run: no thread is created per task.
void BM_AsioPost(benchmark::State& state) {
  boost::asio::thread_pool pool(2);
  for (auto _ : state) {
    std::atomic<bool> done{false};
    boost::asio::post(pool, [&done] {
      done.store(true);
      done.notify_one();
    });
    done.wait(false);
  }
  pool.join();
  state.SetItemsProcessed(state.iterations());
}

}  // namespace

void register_spawn() {
  // Process CPU time, as BM_Orchestrate: the started thread's CPU counts too.
  benchmark::RegisterBenchmark("BM_Spawn/std-thread", BM_StdThread)
      ->UseRealTime()
      ->MeasureProcessCPUTime();
  for (int fanout : {3, 10, 100}) {
    const std::string name = "BM_Spawn/std-thread-batch/fanout:" + std::to_string(fanout);
    benchmark::RegisterBenchmark(name.c_str(), BM_StdThreadBatch, fanout)
        ->UseRealTime()
        ->MeasureProcessCPUTime()
        ->Unit(benchmark::kMicrosecond);
  }
  benchmark::RegisterBenchmark("BM_Spawn/std-jthread", BM_StdJthread)
      ->UseRealTime()
      ->MeasureProcessCPUTime();
  benchmark::RegisterBenchmark("BM_Spawn/go-census", BM_GoCensus)
      ->UseRealTime()
      ->MeasureProcessCPUTime();
  benchmark::RegisterBenchmark("BM_Spawn/asio-thread-pool", BM_AsioPost)
      ->UseRealTime()
      ->MeasureProcessCPUTime();
}

}  // namespace orchlab::micro

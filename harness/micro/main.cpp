// orchlab-micro: Google Benchmark microbenchmarks of the lab's building blocks.
// Takes every --benchmark_* flag; exits 1 when a benchmark failed (a skipped
// one, e.g. a pattern that cannot take an in-process fetch, does not count).
#include <benchmark/benchmark.h>

#include <atomic>

#include "micro.hpp"

namespace orchlab::micro {
namespace {
std::atomic<int> g_failures{0};
}  // namespace

void note_failure() { g_failures.fetch_add(1); }

}  // namespace orchlab::micro

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 2;
  orchlab::micro::register_aggregate();
  orchlab::micro::register_orchestrate();
  orchlab::micro::register_spawn();
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return orchlab::micro::g_failures.load() == 0 ? 0 : 1;
}

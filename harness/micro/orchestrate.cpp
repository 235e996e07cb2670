// BM_Orchestrate: the machinery cost of each exhibit. The fetch answers at
// once in-process, so what is timed is spawning, handing results back and
// tearing down — everything but the network. One iteration = one
// orchestration *and* the drain of whatever it left running, so a leaking
// pattern pays for its leaked threads here as a non-leaking one pays for its
// joins; `run_us` is the part the caller waited for.
#include <benchmark/benchmark.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <stop_token>
#include <string>
#include <vector>

#include "micro.hpp"
#include "orchlab/census.hpp"
#include "orchlab/pattern.hpp"

namespace orchlab::micro {
namespace {

using Clock = std::chrono::steady_clock;

Reply answer_at_once(const Call& /*call*/, std::stop_token /*stop*/) {
  return Reply{200, {}, ReplyError::none};
}

Plan make_plan(int fanout) {
  Plan plan;
  for (int i = 0; i < fanout; ++i) {
    plan.calls.push_back(Call{"inproc://svc/" + std::to_string(i)});
  }
  // Far longer than any in-process orchestration: nothing may time out.
  plan.deadline = std::chrono::milliseconds(10000);
  return plan;
}

void BM_Orchestrate(benchmark::State& state, std::string pattern_name, int fanout) {
  auto pattern = make_pattern(pattern_name);
  if (!pattern) {
    state.SkipWithError(
        ("skipped: make_pattern(\"" + pattern_name + "\") returned nullptr").c_str());
    return;
  }
  const Plan plan = make_plan(fanout);
  const Fetch fetch = answer_at_once;
  // A pattern that does not call the Fetch (async-group talks HTTP through
  // its own client) cannot complete on an in-process URL: skip it, loudly.
  {
    census::Scope scope;
    const Outcome probe = pattern->run(plan, fetch);
    scope.mark_returned();
    census::wait_idle(std::chrono::seconds(10));
    if (probe.verdict != Verdict::complete) {
      state.SkipWithError(("skipped: cannot run an in-process fetch (verdict " +
                           std::string(to_string(probe.verdict)) + ": " + probe.error + ")")
                              .c_str());
      return;
    }
  }

  const auto before = census::totals();
  std::int64_t run_ns = 0;
  std::int64_t drain_ns = 0;
  std::int64_t incomplete = 0;
  for (auto _ : state) {
    const auto start = Clock::now();
    Clock::time_point returned;
    {
      census::Scope scope;
      const Outcome out = pattern->run(plan, fetch);
      returned = Clock::now();
      scope.mark_returned();
      incomplete += out.verdict != Verdict::complete;
    }
    if (!census::wait_idle(std::chrono::seconds(10))) {
      state.SkipWithError("failed: leaked tasks did not drain within 10 s");
      note_failure();
      break;
    }
    run_ns += std::chrono::duration_cast<std::chrono::nanoseconds>(returned - start).count();
    drain_ns +=
        std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - returned).count();
  }
  if (incomplete > 0 && !state.error_occurred()) {
    state.SkipWithError("failed: an orchestration did not complete");
    note_failure();
  }
  const auto after = census::totals();
  using benchmark::Counter;
  const double n = static_cast<double>(fanout);
  // Per call: the orchestration's whole cost (run + drain) split over its calls.
  state.counters["per_call_us"] =
      Counter(static_cast<double>(run_ns + drain_ns) / 1e3 / n, Counter::kAvgIterations);
  state.counters["run_us"] = Counter(static_cast<double>(run_ns) / 1e3, Counter::kAvgIterations);
  state.counters["drain_us"] =
      Counter(static_cast<double>(drain_ns) / 1e3, Counter::kAvgIterations);
  state.counters["leaked_at_return"] =
      Counter(static_cast<double>(after.leaked_at_return - before.leaked_at_return),
              Counter::kAvgIterations);
  state.counters["fanout"] = n;
  state.SetItemsProcessed(state.iterations() * fanout);
  state.SetLabel(pattern_name);
}

}  // namespace

void register_orchestrate() {
  for (const std::string& name : pattern_names()) {
    // Its one difference from cancellable-group shows only when a call outlasts
    // the deadline, which these instant calls never do: the same numbers again.
    if (name == "cancellable-group+ignores-stop") continue;
    for (int fanout : {3, 10, 100}) {
      const std::string bench = "BM_Orchestrate/" + name + "/fanout:" + std::to_string(fanout);
      benchmark::RegisterBenchmark(bench.c_str(), BM_Orchestrate, name, fanout)
          ->UseRealTime()
          ->MeasureProcessCPUTime()  // spawned threads' CPU counts too
          ->Unit(benchmark::kMicrosecond);
    }
  }
}

}  // namespace orchlab::micro

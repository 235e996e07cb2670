// What it is: slots-aggregation, mutex-aggregation's twin for measuring the
// lock alone. The same thread per call and the same join of every thread;
// only the aggregation differs: call i writes its own slot, so no reply waits
// for another's lock. It exists to be compared with mutex-aggregation in
// zero-delay and healthy (claim 5's macro twin), not as advice.
//
// Where it rots: like its twin, it has no timeout and nothing to cancel with;
// run() returns only when the slowest call does.
//
// What to watch in the report: items_per_second and lock_wait_ns next to
// mutex-aggregation's in the same cells. No leaks: it joins.
#include <chrono>
#include <optional>
#include <stop_token>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

#include "exhibits.hpp"
#include "orchlab/census.hpp"

namespace orchlab::exhibits {
namespace {

Outcome run(const Plan& plan, const Fetch& fetch, const Knobs& /*knobs*/) {
  const auto deadline = std::chrono::steady_clock::now() + plan.deadline;
  std::vector<std::optional<Reply>> slots(plan.calls.size());
  std::error_code first_error;

  std::vector<std::jthread> threads;
  for (std::size_t i = 0; i < plan.calls.size(); ++i) {
    threads.push_back(spawn_tracked([&, i](std::stop_token) {
      slots[i] = fetch(plan.calls[i], std::stop_token{});  // Go: results[i] = r, no lock
    }));
  }
  // ROTS HERE: no timeout, no cancellation: this waits for the slowest call.
  for (auto& t : threads) t.join();
  for (const auto& s : slots)
    if (!first_error && s) first_error = to_error_code(*s);

  return finish(std::move(slots), first_error, deadline);
}

}  // namespace

std::unique_ptr<Pattern> make_slots_aggregation(const PatternOptions& options) {
  return make_exhibit("slots-aggregation", {options}, run);
}

}  // namespace orchlab::exhibits

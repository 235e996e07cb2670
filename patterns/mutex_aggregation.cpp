// What it is: mutex-aggregation, the Go article's shared-slice shape. A
// thread per call appends (index, reply) to one std::vector under one mutex;
// run() joins every thread (the WaitGroup) and then files the replies.
//
// Where it rots: there is no timeout and nothing to cancel with, so run()
// returns only when the slowest call does; and every reply funnels through
// one lock, which serialises the callers as fan-out and concurrency grow.
//
// What to watch in the report: deadline_overshoot_p99_us and max_us (the
// slow and hang scenarios), lock_contended and lock_wait_ns, and
// items_per_second against the groups at high concurrency. No leaks: it joins.
#include <chrono>
#include <mutex>
#include <optional>
#include <stop_token>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

#include "exhibits.hpp"
#include "orchlab/census.hpp"
#include "orchlab/profiled_mutex.hpp"

namespace orchlab::exhibits {
namespace {

Outcome run(const Plan& plan, const Fetch& fetch, const Knobs& /*knobs*/) {
  const auto deadline = std::chrono::steady_clock::now() + plan.deadline;
  std::vector<std::optional<Reply>> slots(plan.calls.size());
  std::error_code first_error;

  ProfiledMutex mu;
  std::vector<std::pair<std::size_t, Reply>> results;  // Go: results = append(results, r)
  std::vector<std::jthread> threads;
  for (std::size_t i = 0; i < plan.calls.size(); ++i) {
    threads.push_back(spawn_tracked([&, i](std::stop_token) {
      Reply reply = fetch(plan.calls[i], std::stop_token{});
      std::lock_guard lock(mu);  // ROTS HERE: every reply funnels through one lock.
      results.emplace_back(i, std::move(reply));
    }));
  }
  // ROTS HERE: no timeout, no cancellation: this waits for the slowest call.
  for (auto& t : threads) t.join();
  for (auto& [i, reply] : results) {
    if (!first_error) first_error = to_error_code(reply);
    slots[i] = std::move(reply);
  }

  return finish(std::move(slots), first_error, deadline);
}

}  // namespace

std::unique_ptr<Pattern> make_mutex_aggregation(const PatternOptions& options) {
  return make_exhibit("mutex-aggregation", {options}, run);
}

}  // namespace orchlab::exhibits

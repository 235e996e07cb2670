// What it is: channel-soup, the Go article's first shape. One buffered
// Channel per call, a detached thread per call (orchlab::go), and a loop that
// selects over every channel with a timer, returning on the first error.
//
// Where it rots: nothing can stop a call. When the timer or an error wins,
// run() returns and every thread still inside fetch() keeps its connection
// and its downstream work until the service answers, for nobody.
//
// What to watch in the report: leaked_tasks_at_return, zombie_task_s,
// late_completions, server_work_past_deadline_ms, pool_exhausted, and
// lock_wait_ns from the channels' own mutexes.
#include <chrono>
#include <memory>
#include <optional>
#include <stop_token>
#include <system_error>
#include <vector>

#include "exhibits.hpp"
#include "orchlab/census.hpp"
#include "orchlab/channel.hpp"

namespace orchlab::exhibits {
namespace {

Outcome run(const Plan& plan, const Fetch& fetch, const Knobs& /*knobs*/) {
  const auto deadline = std::chrono::steady_clock::now() + plan.deadline;
  std::vector<std::optional<Reply>> slots(plan.calls.size());
  std::error_code first_error;

  std::vector<std::shared_ptr<Channel<Reply>>> results;
  for (const Call& call : plan.calls) {
    auto result = std::make_shared<Channel<Reply>>(1);
    results.push_back(result);
    // ROTS HERE: the thread owns copies of everything it touches, so it may
    // outlive run() safely, but its stop token can never fire.
    go([result, call, fetch] { result->send(fetch(call, std::stop_token{})); });
  }
  for (std::size_t received = 0; received < plan.calls.size(); ++received) {
    auto r = select_until(results, deadline);
    // ROTS HERE: time.After won; the calls still running are abandoned, not stopped.
    if (!r) break;
    slots[r->index] = std::move(r->value);
    // ROTS HERE: an early return on error leaves every sibling running.
    if ((first_error = to_error_code(*slots[r->index]))) break;
  }

  return finish(std::move(slots), first_error, deadline);
}

}  // namespace

std::unique_ptr<Pattern> make_channel_soup(const PatternOptions& options) {
  return make_exhibit("channel-soup", {options}, run);
}

}  // namespace orchlab::exhibits

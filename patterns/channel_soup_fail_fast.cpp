// What it is: channel-soup+fail-fast, the lab's variant of channel-soup, not
// the article's code. The same buffered Channel and detached thread per call
// and the same select loop, with two changes: one fixed deadline for the
// whole orchestration (the article's time.After restarts with every reply),
// and a return on the first error reply (the article never looks at errors).
//
// Where it rots: nothing can stop a call. When the deadline or an error
// wins, run() returns and every thread still inside fetch() keeps its
// connection and its downstream work until the service answers, for nobody:
// returning early on an error only abandons the siblings sooner.
//
// What to watch in the report: against channel-soup, p50_us in fail-fast
// (it returns on the error) and deadline_overshoot_p99_us (it returns at the
// deadline); like it, leaked_tasks_at_return, zombie_task_s,
// late_completions and no server_client_aborts.
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

  std::vector<std::shared_ptr<Channel<Reply>>> chans;
  for (const Call& call : plan.calls) {
    auto ch = std::make_shared<Channel<Reply>>(1);
    chans.push_back(ch);
    // ROTS HERE: the thread owns copies of everything it touches, so it may
    // outlive run() safely, but its stop token can never fire.
    go([ch, call, fetch] { ch->send(fetch(call, std::stop_token{})); });
  }
  for (std::size_t i = 0; i < plan.calls.size(); ++i) {
    // The lab's change: one timer for the whole loop, set before it.
    auto r = select_until(chans, deadline);
    // ROTS HERE: the deadline won; the calls still running are abandoned, not stopped.
    if (!r) break;
    slots[r->index] = std::move(r->value);
    // ROTS HERE: the lab's change, an early return on error, leaves every sibling running.
    if ((first_error = to_error_code(*slots[r->index]))) break;
  }

  return finish(std::move(slots), first_error, deadline);
}

}  // namespace

std::unique_ptr<Pattern> make_channel_soup_fail_fast(const PatternOptions& options) {
  return make_exhibit("channel-soup+fail-fast", {options}, run);
}

}  // namespace orchlab::exhibits

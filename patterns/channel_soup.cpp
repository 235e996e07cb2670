// What it is: channel-soup, the Go article's first shape, line by line. One
// buffered Channel per call (the article's ch1, ch2, ch3; N here), a detached
// thread per call (orchlab::go), and a loop of N selects over every channel,
// each with a fresh timer (time.After inside the loop). Every reply is
// appended; none is looked at.
//
// Where it rots: nothing can stop a call. When the timer wins, run() returns
// and every thread still inside fetch() keeps its connection and its
// downstream work until the service answers, for nobody. An error does not
// end the wait: a failed orchestration still waits for its slow siblings. And
// the timer restarts with every reply, so a run may return up to N deadlines
// after it started. channel-soup+fail-fast is the lab's own variant (one
// fixed deadline, a return on the first error).
//
// What to watch in the report: leaked_tasks_at_return, zombie_task_s,
// late_completions, server_work_past_deadline_ms, pool_exhausted,
// deadline_overshoot_p99_us, p50_us in fail-fast (the error does not end it),
// and lock_wait_ns from the channels' own mutexes.
#include <chrono>
#include <memory>
#include <optional>
#include <stop_token>
#include <system_error>
#include <utility>
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

  std::vector<std::shared_ptr<Channel<Reply>>> chans;  // Go: ch1, ch2, ch3 := make(chan Result, 1)
  for (const Call& call : plan.calls) {
    auto ch = std::make_shared<Channel<Reply>>(1);
    chans.push_back(ch);
    // ROTS HERE: the thread owns copies of everything it touches, so it may
    // outlive run() safely, but its stop token can never fire.
    go([ch, call, fetch] { ch->send(fetch(call, std::stop_token{})); });  // Go: go func() {...}()
  }
  std::vector<std::pair<std::size_t, Reply>> results;  // Go: var results []Result
  for (std::size_t i = 0; i < plan.calls.size(); ++i) {
    // ROTS HERE: a new timer for each select (time.After in the loop): it restarts per reply.
    auto r = select(chans, plan.deadline);
    // ROTS HERE: time.After won; the calls still running are abandoned, not stopped.
    if (!r) break;  // Go: return results, errors.New("timeout")
    // ROTS HERE: appended, never looked at: an error does not end the wait for its siblings.
    results.emplace_back(r->index, std::move(*r->value));  // Go: results = append(results, r)
  }
  // The lab's epilogue, not the article's: each reply to its slot; the first error in arrival
  // order for Outcome::error.
  for (auto& [i, reply] : results) {
    if (!first_error) first_error = to_error_code(reply);
    slots[i] = std::move(reply);
  }

  return finish(std::move(slots), first_error, deadline);
}

}  // namespace

std::unique_ptr<Pattern> make_channel_soup(const PatternOptions& options) {
  return make_exhibit("channel-soup", {options}, run);
}

}  // namespace orchlab::exhibits

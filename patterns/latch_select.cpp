// What it is: latch-select, the Go article's WaitGroup shape. A detached
// thread per call writes its reply into slot i and counts down a std::latch;
// a waiter thread turns the latch into a future, and run() waits on that
// future with a timeout (select on done vs time.After).
//
// Where it rots: the timeout stops only the waiting. The calls and the waiter
// thread live on until the slowest call ends, errors are invisible until the
// latch opens, and replies that did arrive are thrown away on timeout: the
// slots cannot be read while their writers may still be running.
//
// What to watch in the report: leaked_tasks_at_return (calls + 1 waiter),
// zombie_task_s, late_completions, timed_out with empty slots, and the fail-
// fast scenario, where it returns when the slowest sibling ends (the latch
// opens only when every call is done), or at the deadline if that comes
// first, never on the error.
#include <chrono>
#include <future>
#include <latch>
#include <memory>
#include <optional>
#include <stop_token>
#include <system_error>
#include <vector>

#include "exhibits.hpp"
#include "orchlab/census.hpp"
#include "orchlab/task_group.hpp"

namespace orchlab::exhibits {
namespace {

struct Shared {
  explicit Shared(std::size_t n) : done(static_cast<std::ptrdiff_t>(n)), replies(n) {}
  std::latch done;
  std::vector<Reply> replies;  // slot i is written by call i, readable once `done` opens
};

Outcome run(const Plan& plan, const Fetch& fetch, const Knobs& /*knobs*/) {
  const auto deadline = std::chrono::steady_clock::now() + plan.deadline;
  std::vector<std::optional<Reply>> slots(plan.calls.size());
  std::error_code first_error;

  auto shared = std::make_shared<Shared>(plan.calls.size());
  for (std::size_t i = 0; i < plan.calls.size(); ++i) {
    // ROTS HERE: owned copies keep it safe after run() returns; nothing stops it.
    go([shared, i, call = plan.calls[i], fetch] {
      shared->replies[i] = fetch(call, std::stop_token{});
      shared->done.count_down();
    });
  }
  auto all_done = std::make_shared<std::promise<void>>();
  std::future<void> done = all_done->get_future();
  // ROTS HERE: the waiter blocks on the latch until the slowest call ends,
  // whoever is still listening.
  go([shared, all_done] {
    shared->done.wait();
    all_done->set_value();
  });
  if (done.wait_until(deadline) == std::future_status::timeout) {
    // ROTS HERE: the timeout wins; the replies already in the slots are lost.
    return finish(std::move(slots), GroupErrc::deadline_exceeded, deadline);
  }
  for (std::size_t i = 0; i < slots.size(); ++i) {
    slots[i] = std::move(shared->replies[i]);
    if (!first_error) first_error = to_error_code(*slots[i]);
  }

  return finish(std::move(slots), first_error, deadline);
}

}  // namespace

std::unique_ptr<Pattern> make_latch_select(const PatternOptions& options) {
  return make_exhibit("latch-select", {options}, run);
}

}  // namespace orchlab::exhibits

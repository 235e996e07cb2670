// What it is: cancellable-group+ignores-stop, the C++ twin of the Go
// article's FAQ ("If a goroutine ignores context entirely, you're stuck
// waiting for it"): cancellable-group line for line, except that one call
// (call 0, the article's fetchUser) is made with a stop token that never
// fires instead of the group's, as a helper written before the codebase
// passed stop tokens is.
//
// Where it rots: at that call. The deadline and the first error stop every
// other call on time; the one that ignores its token runs on until its
// service answers or closes, and the group's wait() joins it. Nothing leaks
// (the group joins; the task touches only run()'s frame, which outlives it);
// the orchestration overshoots its deadline by as long as that call takes.
//
// What to watch in the report: deadline_overshoot_p99_us in
// claim-ignores-context (about the hang, against cancellable-group's few
// milliseconds), leaked_tasks_at_return at 0 (it waits instead of leaking).
#include <chrono>
#include <optional>
#include <stop_token>
#include <system_error>
#include <vector>

#include "exhibits.hpp"
#include "orchlab/task_group.hpp"

namespace orchlab::exhibits {
namespace {

Outcome run(const Plan& plan, const Fetch& fetch, const Knobs& /*knobs*/) {
  const auto deadline = std::chrono::steady_clock::now() + plan.deadline;
  std::vector<std::optional<Reply>> slots(plan.calls.size());
  std::error_code first_error;

  TaskGroup group({.deadline = deadline, .policy = ErrorPolicy::cancel_siblings});
  for (std::size_t i = 0; i < plan.calls.size(); ++i) {
    group.spawn([&, i](std::stop_token stop) {
      // ROTS HERE: call 0 ignores the group's token; neither the deadline nor
      // a sibling's error can stop it, and group.wait() below waits for it.
      Reply reply = fetch(plan.calls[i], i == 0 ? std::stop_token{} : stop);
      const std::error_code ec = to_error_code(reply);
      if (reply.error != ReplyError::cancelled) slots[i] = std::move(reply);
      return ec;
    });
  }
  first_error = group.wait();

  return finish(std::move(slots), first_error, deadline);
}

}  // namespace

std::unique_ptr<Pattern> make_cancellable_group_ignores_stop(const PatternOptions& options) {
  return make_exhibit("cancellable-group+ignores-stop", {options}, run);
}

}  // namespace orchlab::exhibits

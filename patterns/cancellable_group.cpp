// What it is: cancellable-group, the Go article's answer (errgroup.WithContext
// + context.WithTimeout). A TaskGroup with the plan's deadline runs one task
// per call; each writes only its own slot; the first error stops the others.
// With collect_all (cancellable-group+collect-all) errors stop nobody and
// every slot keeps its own error; the deadline still stops everyone.
//
// Where it rots: only as far as the Fetch honours its stop token. A call that
// ignores the token is still joined, so the group overshoots instead of
// leaking; and it still costs a thread per call.
//
// What to watch in the report: leaked_tasks_at_return and late_completions
// at 0, server_client_aborts > 0 with a small server_abort_lag_p99_ms in the
// fail-fast and hang scenarios, threads_peak as fan-out grows.
#include <chrono>
#include <optional>
#include <stop_token>
#include <system_error>
#include <vector>

#include "exhibits.hpp"
#include "orchlab/task_group.hpp"

namespace orchlab::exhibits {
namespace {

Outcome run(const Plan& plan, const Fetch& fetch, const Knobs& knobs) {
  const auto deadline = std::chrono::steady_clock::now() + plan.deadline;
  std::vector<std::optional<Reply>> slots(plan.calls.size());
  std::error_code first_error;

  TaskGroup group(
      {.deadline = deadline,
       .policy = knobs.collect_all ? ErrorPolicy::collect_all : ErrorPolicy::cancel_siblings});
  for (std::size_t i = 0; i < plan.calls.size(); ++i) {
    group.spawn([&, i](std::stop_token stop) {
      Reply reply = fetch(plan.calls[i], stop);
      const std::error_code ec = to_error_code(reply);
      // A cancelled call never answered: its slot stays empty.
      if (reply.error != ReplyError::cancelled) slots[i] = std::move(reply);
      return ec;
    });
  }
  first_error = group.wait();

  return finish(std::move(slots), first_error, deadline);
}

}  // namespace

std::unique_ptr<Pattern> make_cancellable_group(const PatternOptions& options, bool collect_all) {
  return make_exhibit(collect_all ? "cancellable-group+collect-all" : "cancellable-group",
                      {options, collect_all}, run);
}

}  // namespace orchlab::exhibits

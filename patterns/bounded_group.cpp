// What it is: bounded-group, cancellable-group with a concurrency limit
// (errgroup SetLimit, the article FAQ's semaphore for an unbounded fan-out):
// at most `limit` calls of one orchestration run at once; spawn() blocks for
// a free slot, and stops spawning once the group is stopped.
//
// Where it rots: a limit far below the fan-out turns latency into
// ceil(fanout / limit) rounds, and calls still queued when the deadline
// passes are never made (their slots stay empty).
//
// What to watch in the report: threads_peak and server max_in_flight capped
// by the limit, p99 against cancellable-group at large fan-out, timed_out
// when fan-out / limit rounds exceed the deadline.
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
       .limit = knobs.options.limit,
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

std::unique_ptr<Pattern> make_bounded_group(const PatternOptions& options) {
  return make_exhibit("bounded-group", {options}, run);
}

}  // namespace orchlab::exhibits

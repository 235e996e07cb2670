// Group and Runtime: the strand-confined bookkeeping of one orchestration.
#include "group.hpp"

#include <algorithm>
#include <atomic>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <cstdio>
#include <deque>
#include <exception>
#include <string>

#include "orchlab/fault_point.hpp"

namespace orchlab::async {

Runtime::Runtime(int threads)
    : ioc_(threads > 0 ? threads
                       : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()))),
      work_(asio::make_work_guard(ioc_)) {
  const int n =
      threads > 0 ? threads : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  threads_.reserve(static_cast<std::size_t>(n));
  try {
    for (int i = 0; i < n; ++i) {
      ORCHLAB_FAULT_POINT(runtime_thread, nullptr);
      threads_.emplace_back([this] {
        // A handler that throws must not take the process down with it. The
        // group's own handlers catch everything and hand it to their caller
        // (run_group rethrows it); this is the last line for anything else.
        for (;;) {
          try {
            ioc_.run();
            return;
          } catch (const std::exception& e) {
            std::fprintf(stderr, "orchlab async-group: handler threw: %s\n", e.what());
          } catch (...) {
            std::fprintf(stderr, "orchlab async-group: handler threw a non-std exception\n");
          }
        }
      });
    }
  } catch (...) {
    // A thread that cannot be created (EAGAIN) after others started: they
    // are stopped and joined, or the vector's joinable std::threads would
    // call std::terminate; the caller gets the exception.
    shutdown();
    throw;
  }
}

Runtime::~Runtime() { shutdown(); }

void Runtime::shutdown() {
  work_.reset();
  for (std::thread& t : threads_) t.join();
  threads_.clear();
}

namespace detail {

// Everything here is touched only on `strand`, except `done` and (after done)
// `outcome`, which hand the result to the blocked caller.
struct GroupState {
  GroupState(Strand ex, Policy p, std::shared_ptr<census::Orchestration> o,
             std::chrono::steady_clock::time_point due)
      : strand(std::move(ex)), deadline(strand), policy(p), orch(std::move(o)), due(due) {}

  Strand strand;
  asio::steady_timer deadline;
  Policy policy;
  std::shared_ptr<census::Orchestration> orch;
  std::chrono::steady_clock::time_point due;
  std::deque<Child> children;  // stable addresses: Stop points into it
  std::vector<std::optional<Reply>> slots;
  std::size_t outstanding = 0;
  bool setting_up = true;
  bool cancelling = false;
  bool completed = false;
  std::string error;
  std::exception_ptr exception;  // the first one thrown by setup or a call
  Outcome outcome;
  // The group's own reference to its state, from the post of the setup
  // until maybe_complete() has notified the caller. The calls hold only a
  // raw pointer, and the caller may return and free its reference as soon
  // as it sees `done`: the finisher moves this out first and drops it after
  // the notify, so the atomic it notifies is still alive (it used to be
  // freed memory whenever the deadline handler, the only other owner, had
  // run). The last owner to let go, caller or finisher, frees the state.
  std::shared_ptr<GroupState> self;
  // The caller waits with std::atomic::wait, which spins 16 rounds (the last
  // four with sched_yield) before it sleeps on a futex: with 64 callers on 2
  // cores a group often ends during the spin. A bare futex wait without the
  // spin lost on both benchmarks (docs/async_group.md, fourth pass). An int,
  // not a bool: libstdc++ waits on an int's own address, while a bool waits
  // through a futex shared by a hashed bucket of waiters, every one of which
  // a notify wakes (64 callers share 16 buckets).
  std::atomic<int> done{0};
};

}  // namespace detail

namespace {

using detail::GroupState;

// The same words as the thread exhibits ("HTTP 503"), plus what the
// transport said.
std::string describe(const Reply& reply) {
  std::string s = to_error_code(reply).message();
  if (reply.error == ReplyError::transport && !reply.body.empty()) s += ": " + reply.body;
  return s;
}

// Terminal cancellation of every call still running. Runs on the strand, as
// every asynchronous operation of the calls is initiated and completed there:
// an emit can never race with an operation installing or clearing its
// cancellation handler.
void cancel_all(GroupState& s) noexcept {
  s.cancelling = true;
  for (detail::Child& c : s.children) {
    if (c.finished || c.cancel_requested) continue;
    c.cancel_requested = true;
    try {
      c.signal.emit(asio::cancellation_type::terminal);
    } catch (...) {
      // A handler that could not act (the pool's, when the post of its
      // call's resumption threw) leaves the call to see requested() when it
      // next runs. The exception is the group's; the other calls are still
      // cancelled.
      if (!s.exception) {
        s.exception = std::current_exception();
        if (s.error.empty()) s.error = "exception";
      }
    }
  }
}

// Hands the outcome to the caller. Must complete it whatever happens: an
// exception here would leave the caller blocked forever, so it is handed
// over too (run_group rethrows it).
void maybe_complete(GroupState& s) noexcept {
  if (s.setting_up || s.outstanding != 0 || s.completed) return;
  s.completed = true;
  s.deadline.cancel();
  try {
    s.outcome.slots = std::move(s.slots);
    // Timed out means what it means for the thread exhibits: the clock, not
    // whether the deadline timer's handler has run yet (the strand may be
    // busy when the deadline passes).
    s.outcome.verdict = classify(s.outcome.slots, std::chrono::steady_clock::now() >= s.due);
    s.outcome.error = std::move(s.error);
    if (s.outcome.error.empty() && s.outcome.verdict == Verdict::timed_out)
      s.outcome.error = "deadline exceeded";
  } catch (...) {
    if (!s.exception) s.exception = std::current_exception();
  }
  // The caller may return and drop its reference as soon as it sees 1; the
  // group's own keeps `done` alive across the notify (see GroupState::self).
  const std::shared_ptr<GroupState> keep = std::move(s.self);
  s.done.store(1, std::memory_order_release);
  ORCHLAB_FAULT_POINT(group_notify, &s.done);
  s.done.notify_one();
}  // `keep` may free the state here: nothing after touches it

// The first exception wins; it stops the siblings as the first error does
// under fail_fast (an exception is never an answer), and reaches the caller.
void record_exception(GroupState& s, std::exception_ptr e) noexcept {
  if (s.exception) return;
  s.exception = std::move(e);
  try {
    if (s.error.empty()) s.error = "exception";
    cancel_all(s);
  } catch (...) {
  }
}

}  // namespace

detail::Child& Group::add_child() {
  GroupState& s = *state_;
  // All or nothing: what may throw comes first and is undone if a later step
  // throws. A child left without its slot (setup may catch the exception and
  // go on) shifted every later call's index, so a finished call was never
  // marked finished and cancel_all emitted into its stale handler.
  ORCHLAB_FAULT_POINT(group_add_slot, nullptr);
  s.slots.emplace_back();
  detail::Child* c = nullptr;
  try {
    c = &s.children.emplace_back();
    c->task.emplace(census::Task::Borrowed{}, s.orch.get());  // s.orch outlives the children
  } catch (...) {
    if (c != nullptr) s.children.pop_back();
    s.slots.pop_back();
    throw;
  }
  c->strand = &s.strand;
  c->deadline_ns =
      std::chrono::duration_cast<std::chrono::nanoseconds>(s.due.time_since_epoch()).count();
  c->cancel_requested = s.cancelling;
  ++s.outstanding;
  ++started_;
  return *c;
}

void Group::abandon(detail::Child& c) noexcept {
  c.finished = true;
  c.task.reset();
  --state_->outstanding;
}

void Group::finish(GroupState& s, std::size_t index, std::exception_ptr e, Reply reply) noexcept {
  detail::Child& c = s.children[index];
  c.finished = true;
  try {
    if (e) {
      // A call that threw did not answer: its slot stays empty, and the
      // exception goes to the caller once every call has ended.
      record_exception(s, std::move(e));
    } else if (reply.error != ReplyError::cancelled) {  // a cancelled call did not answer
      census::note_completion(s.orch.get());
      if (reply.error != ReplyError::none && s.error.empty()) {
        s.error = describe(reply);
        // Where the group differs from the anti-patterns: the first error
        // stops the siblings at once, at the socket, not when they next look.
        if (s.policy == Policy::fail_fast) cancel_all(s);
      }
      s.slots[index] = std::move(reply);
    }
  } catch (...) {
    record_exception(s, std::current_exception());
  }
  c.task.reset();
  --s.outstanding;
  maybe_complete(s);
}

Outcome run_group_impl(Runtime& runtime, std::chrono::nanoseconds deadline, Policy policy,
                       void (*setup)(void*, Group&), void* context) {
  // A "no deadline" of nanoseconds::max() must not overflow the time point.
  constexpr std::chrono::nanoseconds kLongest = std::chrono::hours(24 * 365);
  deadline = std::clamp(deadline, std::chrono::nanoseconds(0), kLongest);
  auto state =
      std::make_shared<GroupState>(asio::make_strand(runtime.context()), policy, census::current(),
                                   std::chrono::steady_clock::now() + deadline);
  GroupState* raw = state.get();
  raw->self = state;  // dropped by maybe_complete(), after its notify
  try {
    Group::post_setup(raw, setup, context);
  } catch (...) {
    raw->self.reset();  // nothing was posted: no cycle left behind
    throw;
  }
  state->done.wait(0, std::memory_order_acquire);
  if (state->exception) std::rethrow_exception(state->exception);
  return std::move(state->outcome);
}

void Group::post_setup(GroupState* raw, void (*setup)(void*, Group&), void* context) {
  // `raw` is kept alive by GroupState::self until the group completes, which
  // cannot happen before this handler ends (it holds the strand).
  asio::post(raw->strand, [raw, setup, context] {
    GroupState& s = *raw;
    try {
      Group group(raw);
      setup(context, group);
    } catch (...) {
      // The calls already started are cancelled and waited for; then the
      // caller gets the exception.
      record_exception(s, std::current_exception());
    }
    s.setting_up = false;
    // The deadline's timer, armed only if a call is still running: calls
    // that all answered inside setup (in-process ones) need none. Armed
    // after setup as before it, its handler could not have run earlier
    // (this is the strand); a deadline already past fires at once.
    if (s.outstanding != 0) {
      try {
        s.deadline.expires_at(s.due);
        // A reference of its own: the handler may be queued with success
        // after the group completed and dropped `self`.
        s.deadline.async_wait([state = s.self](const boost::system::error_code& ec) {
          if (ec || state->completed) return;
          cancel_all(*state);
        });
      } catch (...) {
        record_exception(s, std::current_exception());
      }
    }
    maybe_complete(s);
  });
}

}  // namespace orchlab::async

// The machinery behind the async-group exhibit: an io_context pool (Runtime),
// the cancellation view one call gets of its group (Stop), and Group, the
// coroutine analog of errgroup.WithContext + context.WithTimeout. The calls
// are Tasks (task.hpp) on the group's strand.
//
// Private to orchlab_patterns (Asio headers stay out of the public ones).
#pragma once

#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/strand.hpp>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <memory>
#include <optional>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

#include "orchlab/census.hpp"
#include "orchlab/pattern.hpp"
#include "task.hpp"

namespace orchlab::async {

/// An io_context run by a fixed set of threads: the only OS threads async-group
/// ever uses, whatever the fan-out. Owned by the pattern.
class Runtime {
 public:
  /// `threads` <= 0: std::thread::hardware_concurrency() (at least 1).
  explicit Runtime(int threads);
  /// Calls shutdown().
  ~Runtime();
  Runtime(const Runtime&) = delete;
  Runtime& operator=(const Runtime&) = delete;

  asio::io_context& context() { return ioc_; }
  int threads() const { return static_cast<int>(threads_.size()); }
  /// Lets the queued handlers finish and joins the threads. Idempotent.
  /// REQUIRES: no run_group() in progress.
  void shutdown();

 private:
  asio::io_context ioc_;
  asio::executor_work_guard<asio::io_context::executor_type> work_;
  std::vector<std::thread> threads_;
};

/// What to do when a call fails.
enum class Policy {
  fail_fast,    ///< the first error cancels every sibling (errgroup)
  collect_all,  ///< errors stay in their slots; only the deadline cancels
};

namespace detail {
struct GroupState;

/// One call of a group. Lives in the group's state at a stable address and is
/// only touched on the group's strand.
struct Child {
  const Strand* strand = nullptr;  // the group's
  asio::cancellation_signal signal;
  bool cancel_requested = false;
  bool finished = false;
  std::int64_t deadline_ns = 0;
  std::optional<census::Task> task;
};
}  // namespace detail

/// How one call of a group learns that it must stop. Copyable view; valid
/// until the call's coroutine finishes.
///
/// NOTE: a cancellation is delivered twice, on purpose: `requested()` turns
/// true, and a terminal cancellation is emitted to whatever asynchronous
/// operation is bound to slot() at that moment. A call must bind every
/// operation it awaits to the slot (token()) and test requested() after every
/// co_await: an emit that lands while no operation is bound (between two
/// operations) is otherwise lost.
class Stop {
 public:
  explicit Stop(detail::Child* child) : child_(child) {}
  bool requested() const { return child_->cancel_requested; }
  asio::cancellation_slot slot() const { return child_->signal.slot(); }
  /// Absolute steady-clock (CLOCK_MONOTONIC) deadline of the group, in ns.
  std::int64_t deadline_ns() const { return child_->deadline_ns; }
  /// The group's strand, where the call runs.
  const Strand& executor() const { return *child_->strand; }
  /// The token for an operation the call co_awaits: UseTask on the strand,
  /// with this call's cancellation slot bound to it.
  UseTask token() const { return UseTask{executor(), slot()}; }

 private:
  detail::Child* child_;
};

/// A set of concurrent calls started by go() on one strand, with a deadline
/// and a Policy. The errgroup analog of the async-group exhibit: slot i of the
/// Outcome holds the reply of the i-th go(); a reply with ReplyError::cancelled
/// leaves its slot empty (the call did not answer).
///
/// Only run_group() creates groups; go() may only be called from its setup
/// function (which runs on the group's strand).
class Group {
 public:
  /// Starts `f(stop)` on the group's strand, at once: it runs inline until
  /// its first co_await that suspends (a call that needs none has finished
  /// when go() returns). `f` is a callable taking a Stop and returning
  /// Task<Reply>; it is kept alive (in the call's root frame) until the call
  /// has finished.
  template <class F>
  void go(F f) {
    detail::Child& child = add_child();
    try {
      launch(std::move(f), Stop(&child), state_, started_ - 1);
    } catch (...) {
      // Thrown before the call began (its frame could not be made, or `f`
      // not moved into it): not outstanding, or the group would never end.
      abandon(child);
      throw;
    }
  }

 private:
  friend Outcome run_group_impl(Runtime&, std::chrono::nanoseconds, Policy, void (*)(void*, Group&),
                                void*);
  explicit Group(detail::GroupState* state) : state_(state) {}
  static void post_setup(detail::GroupState* state, void (*setup)(void*, Group&), void* context);
  detail::Child& add_child();
  void abandon(detail::Child& child) noexcept;
  static void finish(detail::GroupState& state, std::size_t index, std::exception_ptr e,
                     Reply reply) noexcept;

  // The call's root: awaits f(stop) and hands the reply or the exception to
  // finish(). The group outlives it: its caller holds the state until the
  // last call's finish() has handed the outcome over, the last thing that
  // call touches (then only this frame is freed).
  template <class F>
  static detail::Detached launch(F f, Stop stop, detail::GroupState* state, std::size_t index) {
    std::exception_ptr e;
    Reply reply;
    try {
      reply = co_await f(stop);
    } catch (...) {
      e = std::current_exception();
    }
    finish(*state, index, std::move(e), std::move(reply));
  }

  detail::GroupState* state_;  // alive while the group runs (GroupState::self)
  std::size_t started_ = 0;
};

Outcome run_group_impl(Runtime& runtime, std::chrono::nanoseconds deadline, Policy policy,
                       void (*setup)(void*, Group&), void* context);

/// Runs one orchestration on a fresh strand of `runtime` and blocks the caller
/// until every call it started has finished: `setup(group)` starts the calls
/// (group.go), the deadline (from now) and, under Policy::fail_fast, the first
/// error cancel the calls still running, and the Outcome comes back with the
/// verdict from orchlab::classify and the first error. Every call is a task of
/// the caller's census orchestration (census::current()), and has ended when
/// this returns. Safe to call from many threads at once.
/// An exception thrown by `setup` or by a call (of any type) is the group's
/// first error: it cancels the calls still running (whatever the Policy),
/// leaves the thrower's slot empty and, once every call has ended, is
/// rethrown here; only the first one is kept.
/// NOTE: `setup` runs on an io thread; it may capture the caller's locals by
/// reference (the caller is blocked until the group is done).
template <class Setup>
Outcome run_group(Runtime& runtime, std::chrono::nanoseconds deadline, Policy policy,
                  Setup&& setup) {
  return run_group_impl(
      runtime, deadline, policy,
      [](void* context, Group& group) {
        (*static_cast<std::remove_reference_t<Setup>*>(context))(group);
      },
      static_cast<void*>(&setup));
}

}  // namespace orchlab::async

// The machinery behind the async-group exhibit: an io_context pool (Runtime),
// the cancellation view one call gets of its group (Stop), and Group, the
// coroutine analog of errgroup.WithContext + context.WithTimeout.
//
// Private to orchlab_patterns (Asio headers stay out of the public ones).
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
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

namespace orchlab::async {

namespace asio = boost::asio;

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
/// operation it awaits to the slot (bind()) and test requested() after every
/// co_await: an emit that lands while no operation is bound (between two
/// operations) is otherwise lost.
class Stop {
 public:
  explicit Stop(detail::Child* child) : child_(child) {}
  bool requested() const { return child_->cancel_requested; }
  asio::cancellation_slot slot() const { return child_->signal.slot(); }
  /// Absolute steady-clock (CLOCK_MONOTONIC) deadline of the group, in ns.
  std::int64_t deadline_ns() const { return child_->deadline_ns; }
  /// `token` with this call's cancellation slot bound to it.
  template <class Token>
  auto bind(Token token) const {
    return asio::bind_cancellation_slot(slot(), std::move(token));
  }

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
  /// Starts `f(stop)` as a coroutine on the group's strand. `f` is a callable
  /// taking a Stop and returning asio::awaitable<Reply>; it is kept alive
  /// (moved into the coroutine's launcher) until the call has finished.
  template <class F>
  void go(F f) {
    detail::Child& child = add_child();
    const std::size_t index = started_ - 1;
    asio::co_spawn(
        executor_, [f = std::move(f), stop = Stop(&child)]() mutable { return f(stop); },
        [state = state_, index](std::exception_ptr e, Reply reply) {
          finish(*state, index, std::move(e), std::move(reply));
        });
  }

 private:
  friend Outcome run_group_impl(Runtime&, std::chrono::nanoseconds, Policy, void (*)(void*, Group&),
                                void*);
  Group(std::shared_ptr<detail::GroupState> state, asio::any_io_executor executor)
      : state_(std::move(state)), executor_(std::move(executor)) {}
  detail::Child& add_child();
  static void finish(detail::GroupState& state, std::size_t index, std::exception_ptr e,
                     Reply reply);

  std::shared_ptr<detail::GroupState> state_;
  asio::any_io_executor executor_;
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

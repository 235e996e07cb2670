// TaskGroup runs a group of tasks working on subtasks of a common job, the
// analog of Go's golang.org/x/sync/errgroup.Group with its derived context.
// It is related to std::latch but adds a stop token shared by the tasks, the
// first error, an optional deadline, an optional concurrency limit and joins
// every thread it started.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <exception>
#include <functional>
#include <optional>
#include <stop_token>
#include <system_error>
#include <thread>
#include <vector>

#include "orchlab/profiled_mutex.hpp"

namespace orchlab {

/// Errors a TaskGroup produces itself (category "orchlab.task_group").
enum class GroupErrc {
  deadline_exceeded = 1,  ///< the group's deadline passed before its tasks ended
  task_threw,             ///< a task threw; wait() rethrows the exception itself
};
const std::error_category& group_category();
std::error_code make_error_code(GroupErrc e);

/// What a failed task does to its siblings.
enum class ErrorPolicy {
  cancel_siblings,  ///< errgroup.WithContext: the first error requests stop on all
  collect_all,      ///< errors are only recorded; the deadline still stops everyone
};

/// Construction options; deadline and limit also have setters.
struct TaskGroupOptions {
  /// When it passes, the group records GroupErrc::deadline_exceeded (unless an
  /// error came first) and requests stop, as context.WithTimeout does.
  std::optional<std::chrono::steady_clock::time_point> deadline{};
  /// Maximum tasks running at once; negative: no limit (errgroup SetLimit).
  int limit = -1;
  ErrorPolicy policy = ErrorPolicy::cancel_siblings;
};

/// A TaskGroup is a collection of threads working on subtasks of one job.
/// Each task receives the group's std::stop_token and returns a
/// std::error_code (empty for success).
///
/// The group is owned by one thread, the owner, which calls spawn() and then
/// wait(). A default-constructed group has no deadline, no limit and the
/// cancel_siblings policy.
///
/// Rules, in the order they apply:
/// - The first non-empty error (or the first exception) is kept; under
///   cancel_siblings it requests stop on every task's token.
/// - Once stop has been requested (error, deadline or request_stop()),
///   spawn() no longer starts tasks: they would only see a stopped token.
/// - A task that calls spawn() on its own group while the group is at its
///   limit runs the new task inline, on its own thread and inside its own
///   slot, instead of blocking: blocking there could deadlock when every
///   slot is held by a task waiting to spawn. try_spawn() never runs inline.
/// - Results go wherever the tasks write them; the idiom is a vector of
///   slots sized before the first spawn, task i writing only slot i.
///
/// NOTE: the deadline is enforced by whoever is blocked in wait(), spawn()
/// or the destructor; the group owns no timer thread.
/// NOTE: spawn() joins threads whose task has ended, so a group that runs a
/// large fan-out under a limit holds about `limit` threads, not one per
/// task ever spawned (unjoined threads keep their stacks out of the C
/// library's stack cache, and every new thread then maps a fresh one).
/// NOTE: the destructor requests nothing (unlike std::jthread): it waits as
/// wait() does, pending deadline included, and joins every thread. A group
/// never leaks a thread.
class TaskGroup {
 public:
  /// A task: called once on its own thread with the group's stop token.
  using Task = std::function<std::error_code(std::stop_token)>;

  TaskGroup();
  explicit TaskGroup(TaskGroupOptions options);
  ~TaskGroup();
  TaskGroup(const TaskGroup&) = delete;
  TaskGroup& operator=(const TaskGroup&) = delete;

  /// Starts `task` on a new census-tracked thread (spawn_tracked). At the
  /// limit it blocks until a task ends, the group is stopped or the deadline
  /// passes. Does nothing once the group is stopped. When it throws (a
  /// thread that cannot be created, memory to record it), `task` was not
  /// started and the group is as before.
  /// REQUIRES: called by the owner or by a task of this group.
  void spawn(Task task);

  /// Starts `task` only if that needs no waiting; returns whether it started.
  /// False at the limit and once the group is stopped.
  bool try_spawn(Task task);

  /// Blocks until every task has returned, firing the deadline if it passes
  /// meanwhile, joins their threads and returns the first error. If a task
  /// threw, rethrows the first exception instead. May be called again; it
  /// returns (or throws) the same.
  /// REQUIRES: called by the owner, not by a task of this group.
  std::error_code wait();

  /// Sets the maximum number of tasks running at once; negative: no limit.
  /// REQUIRES: n != 0 and no task running (throws std::logic_error otherwise).
  void set_limit(int n);

  /// Sets or moves the deadline. A deadline already past stops the group at
  /// the next spawn() or wait().
  void set_deadline(std::chrono::steady_clock::time_point deadline);

  /// Requests stop on every task's token without recording an error.
  void request_stop();

  /// The token every task receives.
  std::stop_token stop_token() const { return stop_.get_token(); }

  /// Tasks running right now.
  int active() const;

  /// Threads started and not joined yet: running ones plus ended ones that
  /// spawn() has not reaped (fewer than a small batch).
  std::size_t held_threads() const;

 private:
  void start_locked(Task task, std::unique_lock<ProfiledMutex>& lock);
  void run_task(Task& task);
  void record(std::error_code ec, std::exception_ptr ex);
  void fire_deadline();
  void drain();
  void reap();
  bool inside_own_task() const;

  std::stop_source stop_;
  TaskGroupOptions options_;
  mutable ProfiledMutex mutex_;
  std::condition_variable_any changed_;
  int active_ = 0;
  /// Starts between making room in threads_ and recording the thread there.
  std::size_t starting_ = 0;
  std::vector<std::jthread> threads_;
  /// Threads whose task has ended, not yet joined (see reap()).
  std::vector<std::thread::id> finished_;
  std::error_code first_error_;
  std::exception_ptr first_exception_;
};

}  // namespace orchlab

template <>
struct std::is_error_code_enum<orchlab::GroupErrc> : std::true_type {};

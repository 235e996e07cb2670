// The task census: every task an exhibit starts (a thread from orchlab::go, a
// TaskGroup thread, an async-group coroutine) is registered here under the
// orchestration that started it, so the harness can tell how many of them
// were still running when their orchestration returned, for how long, and how
// many downstream calls completed for nobody.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <stop_token>
#include <thread>

namespace orchlab {
namespace census {

/// One orchestration's bookkeeping. Shared by its tasks, which may outlive it.
class Orchestration {
 public:
  Orchestration();
  std::uint64_t id() const { return id_; }
  /// Tasks of this orchestration still running.
  int live_tasks() const;
  /// True once the orchestration's run() returned (Scope::mark_returned).
  bool returned() const;
  /// Steady-clock ns when it returned (0 before).
  std::int64_t returned_at_ns() const;

 private:
  friend class Scope;
  friend class Task;
  friend void note_completion(Orchestration*);
  std::uint64_t id_;
  struct State;
  std::shared_ptr<State> state_;
};

/// RAII: opens an orchestration and makes it current on this thread. The
/// harness opens one around each Pattern::run call.
class Scope {
 public:
  Scope();
  ~Scope();  // calls mark_returned() if not called yet; restores the previous current
  Scope(const Scope&) = delete;
  Scope& operator=(const Scope&) = delete;
  /// Records that run() returned; returns the tasks still live at that moment
  /// (they are added to Totals::leaked_at_return). Idempotent.
  int mark_returned();
  const std::shared_ptr<Orchestration>& orchestration() const { return orch_; }

 private:
  std::shared_ptr<Orchestration> orch_;
  std::shared_ptr<Orchestration> previous_;
  bool returned_ = false;
};

/// The orchestration current on the calling thread (nullptr outside any).
/// Threads started by go() and spawn_tracked() inherit their parent's.
std::shared_ptr<Orchestration> current();

/// RAII: makes `o` current on this thread (for executor threads running
/// coroutines of several orchestrations). Restores the previous on exit.
class CurrentGuard {
 public:
  explicit CurrentGuard(std::shared_ptr<Orchestration> o);
  ~CurrentGuard();
  CurrentGuard(const CurrentGuard&) = delete;
  CurrentGuard& operator=(const CurrentGuard&) = delete;

 private:
  std::shared_ptr<Orchestration> previous_;
};

/// RAII registration of one live task of `o` (null `o`: counted globally
/// only). go() and spawn_tracked() use it; async code may use it directly.
/// On destruction after `o` returned, the time past the return is added to
/// Totals::zombie_ns.
class Task {
 public:
  explicit Task(std::shared_ptr<Orchestration> o);
  struct Borrowed {};
  /// The same, without a reference of its own to `o`, for a task whose
  /// owner holds the orchestration longer than the task (async-group's
  /// calls: two atomic operations fewer per call).
  /// REQUIRES: `*o` outlives the task.
  Task(Borrowed, Orchestration* o);
  ~Task();
  Task(const Task&) = delete;
  Task& operator=(const Task&) = delete;

 private:
  void start();
  std::shared_ptr<Orchestration> keep_;
  Orchestration* orch_ = nullptr;
};

/// Records that a downstream call completed (an answer or an error arrived)
/// for orchestration `o` (default: the current one). Counted as a late
/// completion when `o` had already returned: work done for nobody.
void note_completion(Orchestration* o);
void note_completion();

/// Process-wide totals since start (monotonic; the harness takes deltas).
struct Totals {
  std::uint64_t tasks_started = 0;
  std::uint64_t tasks_finished = 0;
  std::int64_t live_tasks = 0;         ///< started - finished, now
  std::uint64_t orchestrations = 0;    ///< scopes that returned
  std::uint64_t leaked_at_return = 0;  ///< sum of live tasks at each return
  std::uint64_t completions = 0;       ///< note_completion() calls, late or not
  std::uint64_t late_completions = 0;  ///< completions after their return
  std::uint64_t zombie_ns = 0;  ///< task time past their orchestration's return (finished tasks)
};
Totals totals();

/// The same counters for one measurement: every orchestration opened while a
/// ledger is installed counts into it (as well as into the process totals),
/// and so do its tasks and completions, however late they end. The harness
/// installs one per repetition, so leftovers of an earlier repetition that
/// end during this one are charged to their own ledger, never to this one.
class Ledger {
 public:
  Ledger();
  /// live_tasks: tasks of this ledger's orchestrations still running.
  Totals totals() const;

  struct Counters;  ///< opaque: defined in census.cpp
  const std::shared_ptr<Counters>& counters() const { return counters_; }

 private:
  std::shared_ptr<Counters> counters_;
};

/// Makes a new ledger the one orchestrations opened from now on (on any
/// thread) count into, and returns it. Replaces the previous one.
std::shared_ptr<Ledger> install_ledger();
/// Orchestrations opened from now on count into no ledger.
void uninstall_ledger();

/// Blocks until no registered task is live or `timeout` passes. Returns true
/// when the census drained.
bool wait_idle(std::chrono::milliseconds timeout);

/// Called on a task's own thread as its body ends (go(), spawn_tracked()),
/// just before the census counts it finished. The harness's tracer uses it to
/// stamp the end of the task that made a call (docs/analysis.md, "Traces").
using TaskEndHook = void (*)();
/// Installs `hook` for every task from now on (nullptr: none, the default).
/// NOTE: a task ending while the hook is replaced calls the old or the new one.
void set_task_end_hook(TaskEndHook hook);

}  // namespace census

/// The lab's `go` statement: runs `f` on a new detached thread registered in
/// the census under the current orchestration. Nothing can join or cancel it.
/// NOTE: `f` must own everything it touches (capture by value / shared_ptr);
/// it may outlive every frame of its caller.
void go(std::function<void()> f);

/// A joinable std::jthread registered in the census under the current
/// orchestration. TaskGroup starts its tasks with it.
std::jthread spawn_tracked(std::function<void(std::stop_token)> f);

/// Threads of this process right now, from the Threads: line of
/// /proc/self/status (-1 if unreadable). Cross-checks the census.
int os_thread_count();

}  // namespace orchlab

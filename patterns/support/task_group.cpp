#include "orchlab/task_group.hpp"

#include <algorithm>
#include <iterator>
#include <stdexcept>
#include <string>
#include <utility>

#include "orchlab/census.hpp"
#include "orchlab/fault_point.hpp"

namespace orchlab {
namespace {

// The group whose task runs on this thread: the self-spawn rule needs it.
thread_local const TaskGroup* t_group = nullptr;

class GroupCategory final : public std::error_category {
 public:
  const char* name() const noexcept override { return "orchlab.task_group"; }
  std::string message(int ev) const override {
    switch (static_cast<GroupErrc>(ev)) {
      case GroupErrc::deadline_exceeded:
        return "deadline exceeded";
      case GroupErrc::task_threw:
        return "task threw an exception";
    }
    return "unknown task group error";
  }
};

}  // namespace

const std::error_category& group_category() {
  static const GroupCategory category;
  return category;
}

std::error_code make_error_code(GroupErrc e) { return {static_cast<int>(e), group_category()}; }

TaskGroup::TaskGroup() : TaskGroup(TaskGroupOptions{}) {}

TaskGroup::TaskGroup(TaskGroupOptions options) : options_(options) {
  if (options_.limit == 0) throw std::invalid_argument("orchlab::TaskGroup: limit must not be 0");
}

TaskGroup::~TaskGroup() { drain(); }

void TaskGroup::spawn(Task task) {
  reap();
  std::unique_lock lock(mutex_);
  if (stop_.stop_requested()) return;
  const auto past_deadline = [&] {
    return options_.deadline && std::chrono::steady_clock::now() >= *options_.deadline;
  };
  const auto at_limit = [&] { return options_.limit > 0 && active_ >= options_.limit; };
  if (past_deadline()) {
    lock.unlock();
    fire_deadline();
    return;
  }
  if (at_limit() && inside_own_task()) {
    // The self-spawn rule: every slot may be held by a task waiting here, so
    // waiting could deadlock; the caller's slot runs the new task instead.
    lock.unlock();
    run_task(task);
    return;
  }
  while (at_limit() && !stop_.stop_requested()) {
    if (options_.deadline) {
      // A copy: libstdc++'s condition_variable_any reads the time point after
      // releasing `lock`, and set_deadline() may write the member meanwhile.
      const auto due = *options_.deadline;
      changed_.wait_until(lock, due);
      if (past_deadline()) {
        lock.unlock();
        fire_deadline();
        return;
      }
    } else {
      changed_.wait(lock);
    }
  }
  if (stop_.stop_requested()) return;
  start_locked(std::move(task), lock);
}

bool TaskGroup::try_spawn(Task task) {
  reap();
  std::unique_lock lock(mutex_);
  if (stop_.stop_requested()) return false;
  if (options_.deadline && std::chrono::steady_clock::now() >= *options_.deadline) {
    lock.unlock();
    fire_deadline();
    return false;
  }
  if (options_.limit > 0 && active_ >= options_.limit) return false;
  start_locked(std::move(task), lock);
  return true;
}

std::error_code TaskGroup::wait() {
  if (inside_own_task())
    throw std::logic_error("orchlab::TaskGroup: wait() called from a task of the same group");
  drain();
  std::lock_guard lock(mutex_);
  if (first_exception_) std::rethrow_exception(first_exception_);
  return first_error_;
}

void TaskGroup::set_limit(int n) {
  if (n == 0) throw std::invalid_argument("orchlab::TaskGroup: limit must not be 0");
  std::lock_guard lock(mutex_);
  if (active_ > 0)
    throw std::logic_error("orchlab::TaskGroup: set_limit while " + std::to_string(active_) +
                           " tasks are still active");
  options_.limit = n;
}

void TaskGroup::set_deadline(std::chrono::steady_clock::time_point deadline) {
  {
    std::lock_guard lock(mutex_);
    options_.deadline = deadline;
  }
  changed_.notify_all();
}

void TaskGroup::request_stop() {
  stop_.request_stop();
  // Taking the mutex orders the notify after any waiter's predicate check.
  { std::lock_guard lock(mutex_); }
  changed_.notify_all();
}

int TaskGroup::active() const {
  std::lock_guard lock(mutex_);
  return active_;
}

std::size_t TaskGroup::held_threads() const {
  std::lock_guard lock(mutex_);
  return threads_.size();
}

void TaskGroup::start_locked(Task task, std::unique_lock<ProfiledMutex>& lock) {
  // Room to record the thread is made before it starts, for it and every
  // other start between the unlock and the push_back below: a push_back that
  // threw there destroyed the new std::jthread, which joined, under mutex_,
  // a task that needs mutex_ to finish.
  ORCHLAB_FAULT_POINT(task_group_thread, nullptr);
  const std::size_t room = threads_.size() + starting_ + 1;
  if (threads_.capacity() < room) threads_.reserve(std::max(room, 2 * threads_.capacity()));
  // The slot is taken under the lock; the thread is created outside it.
  // Creating a thread costs tens of microseconds (more under load), and
  // holding the lock meanwhile would make every ending task wait for it.
  ++active_;
  ++starting_;
  lock.unlock();
  std::jthread thread;
  try {
    thread = spawn_tracked([this, task = std::move(task)](std::stop_token) mutable {
      t_group = this;
      run_task(task);
      t_group = nullptr;
      std::lock_guard done(mutex_);
      --active_;
      finished_.push_back(std::this_thread::get_id());
      // Notify under the lock: once active_ reads 0 the owner may join and
      // destroy the group.
      changed_.notify_all();
    });
  } catch (...) {
    lock.lock();
    --starting_;
    --active_;  // the thread could not be created (EAGAIN): nothing started
    changed_.notify_all();
    throw;
  }
  lock.lock();
  --starting_;
  // The thread may have ended already; its id in finished_ is then missed by
  // reap() and the thread is joined by drain(). drain() cannot run before
  // this push: the owner is here, or the spawning task still counts in active_.
  // Cannot throw: the room was made above (reap() only shrinks the vector,
  // and drain(), which swaps it, waits for active_ to reach 0).
  threads_.push_back(std::move(thread));
}

void TaskGroup::run_task(Task& task) {
  std::error_code ec;
  std::exception_ptr ex;
  try {
    ec = task(stop_.get_token());
  } catch (...) {
    ex = std::current_exception();
    ec = GroupErrc::task_threw;
  }
  // Release the task's captures while its slot is still held.
  task = nullptr;
  if (ec) record(ec, ex);
}

void TaskGroup::record(std::error_code ec, std::exception_ptr ex) {
  bool first = false;
  {
    std::lock_guard lock(mutex_);
    if (!first_error_) {
      first_error_ = ec;
      first = true;
    }
    if (ex && !first_exception_) first_exception_ = ex;
  }
  if (first && options_.policy == ErrorPolicy::cancel_siblings) request_stop();
}

void TaskGroup::fire_deadline() {
  {
    std::lock_guard lock(mutex_);
    if (!first_error_) first_error_ = GroupErrc::deadline_exceeded;
  }
  request_stop();
}

void TaskGroup::drain() {
  std::unique_lock lock(mutex_);
  while (active_ > 0) {
    if (options_.deadline && !stop_.stop_requested()) {
      const auto due = *options_.deadline;  // a copy, as in spawn()
      changed_.wait_until(lock, due);
      if (active_ > 0 && std::chrono::steady_clock::now() >= *options_.deadline) {
        lock.unlock();
        fire_deadline();
        lock.lock();
      }
    } else {
      changed_.wait(lock);
    }
  }
  // No task runs, so none can spawn: the vector is complete.
  std::vector<std::jthread> threads;
  threads.swap(threads_);
  finished_.clear();
  lock.unlock();
  for (auto& t : threads) t.join();
}

void TaskGroup::reap() {
  // Batches keep the scan of threads_ (about limit + batch long) cheap.
  constexpr std::size_t kBatch = 16;
  std::vector<std::jthread> ended;
  {
    std::lock_guard lock(mutex_);
    if (finished_.size() < kBatch) return;
    std::sort(finished_.begin(), finished_.end());
    // Every id in finished_ belongs to an ended, unjoined thread, so ids are
    // unique among unjoined threads here (one not pushed to threads_ yet is
    // simply not found, and drain() joins it); after a join they may be reused.
    auto keep = std::stable_partition(threads_.begin(), threads_.end(), [&](const std::jthread& t) {
      return !std::binary_search(finished_.begin(), finished_.end(), t.get_id());
    });
    ended.assign(std::make_move_iterator(keep), std::make_move_iterator(threads_.end()));
    threads_.erase(keep, threads_.end());
    finished_.clear();
  }
  // Their tasks have ended; the joins wait only for the threads to exit.
  for (auto& t : ended) t.join();
}

bool TaskGroup::inside_own_task() const { return t_group == this; }

}  // namespace orchlab

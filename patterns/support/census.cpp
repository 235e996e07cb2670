// The task census. Counters are plain atomics: a task registers and
// unregisters with a handful of relaxed-enough operations, and the harness
// reads deltas of the process-wide totals between cells.
#include "orchlab/census.hpp"

#include <atomic>
#include <condition_variable>
#include <fstream>
#include <mutex>
#include <string>
#include <utility>

namespace orchlab {
namespace census {
namespace {

std::int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

}  // namespace

// The counters behind Totals: the process's, and each ledger's.
struct Ledger::Counters {
  std::atomic<std::uint64_t> tasks_started{0};
  std::atomic<std::uint64_t> tasks_finished{0};
  std::atomic<std::int64_t> live{0};
  std::atomic<std::uint64_t> orchestrations{0};
  std::atomic<std::uint64_t> leaked_at_return{0};
  std::atomic<std::uint64_t> completions{0};
  std::atomic<std::uint64_t> late_completions{0};
  std::atomic<std::uint64_t> zombie_ns{0};
};

namespace {

struct Global : Ledger::Counters {
  std::atomic<std::uint64_t> next_id{1};
  // Only wait_idle() sleeps on this; a plain std::mutex keeps the census out
  // of the lock statistics it sits beside.
  std::mutex idle_mutex;
  std::condition_variable idle_cv;
};

// Leaked detached threads may still unregister during static destruction:
// the census is never destroyed.
Global& global() {
  static Global* g = new Global;
  return *g;
}

thread_local std::shared_ptr<Orchestration> t_current;

// Off by default: one relaxed-enough load per task end.
std::atomic<TaskEndHook> g_task_end_hook{nullptr};

void task_ended() {
  if (const auto hook = g_task_end_hook.load(std::memory_order_acquire)) hook();
}

}  // namespace

Ledger::Ledger() : counters_(std::make_shared<Counters>()) {}

namespace {
Totals read(const Ledger::Counters& c) {
  Totals t;
  t.tasks_started = c.tasks_started.load();
  t.tasks_finished = c.tasks_finished.load();
  t.live_tasks = c.live.load();
  t.orchestrations = c.orchestrations.load();
  t.leaked_at_return = c.leaked_at_return.load();
  t.completions = c.completions.load();
  t.late_completions = c.late_completions.load();
  t.zombie_ns = c.zombie_ns.load();
  return t;
}
}  // namespace

Totals Ledger::totals() const { return read(*counters_); }

namespace {
// The installed ledger's counters. Read once per orchestration (Scope), not
// per task: a plain mutex is cheap enough and keeps out of the lock metrics.
std::mutex g_ledger_mutex;
std::shared_ptr<Ledger::Counters>* g_ledger = new std::shared_ptr<Ledger::Counters>;
}  // namespace

std::shared_ptr<Ledger> install_ledger() {
  auto ledger = std::make_shared<Ledger>();
  std::lock_guard lock(g_ledger_mutex);
  *g_ledger = ledger->counters();
  return ledger;
}

void uninstall_ledger() {
  std::lock_guard lock(g_ledger_mutex);
  g_ledger->reset();
}

struct Orchestration::State {
  std::atomic<int> live{0};
  std::atomic<bool> returned{false};
  std::atomic<std::int64_t> returned_at_ns{0};
  std::shared_ptr<Ledger::Counters> ledger;  // fixed at construction; may be null
};

Orchestration::Orchestration()
    : id_(global().next_id.fetch_add(1)), state_(std::make_shared<State>()) {
  std::lock_guard lock(g_ledger_mutex);
  state_->ledger = *g_ledger;
}

int Orchestration::live_tasks() const { return state_->live.load(); }
bool Orchestration::returned() const { return state_->returned.load(); }
std::int64_t Orchestration::returned_at_ns() const { return state_->returned_at_ns.load(); }

Scope::Scope() : orch_(std::make_shared<Orchestration>()), previous_(std::move(t_current)) {
  t_current = orch_;
}

Scope::~Scope() {
  mark_returned();
  t_current = std::move(previous_);
}

int Scope::mark_returned() {
  if (returned_) return 0;
  returned_ = true;
  auto& s = *orch_->state_;
  // Publish the return before reading `live` (both seq_cst): a task either
  // finished before the read, or it sees `returned` and counts zombie time.
  s.returned_at_ns.store(now_ns());
  s.returned.store(true);
  const int live = s.live.load();
  auto& g = global();
  g.orchestrations.fetch_add(1);
  g.leaked_at_return.fetch_add(static_cast<std::uint64_t>(live));
  if (s.ledger) {
    s.ledger->orchestrations.fetch_add(1);
    s.ledger->leaked_at_return.fetch_add(static_cast<std::uint64_t>(live));
  }
  return live;
}

std::shared_ptr<Orchestration> current() { return t_current; }

CurrentGuard::CurrentGuard(std::shared_ptr<Orchestration> o) : previous_(std::move(t_current)) {
  t_current = std::move(o);
}

CurrentGuard::~CurrentGuard() { t_current = std::move(previous_); }

Task::Task(std::shared_ptr<Orchestration> o) : keep_(std::move(o)), orch_(keep_.get()) { start(); }

Task::Task(Borrowed, Orchestration* o) : orch_(o) { start(); }

void Task::start() {
  auto& g = global();
  g.tasks_started.fetch_add(1);
  g.live.fetch_add(1);
  if (orch_) {
    orch_->state_->live.fetch_add(1);
    if (auto& l = orch_->state_->ledger) {
      l->tasks_started.fetch_add(1);
      l->live.fetch_add(1);
    }
  }
}

Task::~Task() {
  auto& g = global();
  if (orch_) {
    auto& s = *orch_->state_;
    s.live.fetch_sub(1);
    std::uint64_t zombie = 0;
    if (s.returned.load()) {
      const std::int64_t past = now_ns() - s.returned_at_ns.load();
      if (past > 0) zombie = static_cast<std::uint64_t>(past);
    }
    g.zombie_ns.fetch_add(zombie);
    if (auto& l = s.ledger) {
      l->zombie_ns.fetch_add(zombie);
      l->tasks_finished.fetch_add(1);
      l->live.fetch_sub(1);
    }
  }
  g.tasks_finished.fetch_add(1);
  if (g.live.fetch_sub(1) == 1) {
    // Taking the mutex orders this notify after a waiter's predicate check.
    std::lock_guard lock(g.idle_mutex);
    g.idle_cv.notify_all();
  }
}

void note_completion(Orchestration* o) {
  auto& g = global();
  g.completions.fetch_add(1);
  const bool late = o != nullptr && o->returned();
  if (late) g.late_completions.fetch_add(1);
  if (o != nullptr && o->state_->ledger) {
    o->state_->ledger->completions.fetch_add(1);
    if (late) o->state_->ledger->late_completions.fetch_add(1);
  }
}

void note_completion() { note_completion(t_current.get()); }

Totals totals() { return read(global()); }

void set_task_end_hook(TaskEndHook hook) { g_task_end_hook.store(hook, std::memory_order_release); }

bool wait_idle(std::chrono::milliseconds timeout) {
  auto& g = global();
  std::unique_lock lock(g.idle_mutex);
  return g.idle_cv.wait_for(lock, timeout, [&] { return g.live.load() == 0; });
}

}  // namespace census

void go(std::function<void()> f) {
  auto orch = census::current();
  // Registered before the thread exists, so a return racing the thread's
  // start still counts it as live.
  auto task = std::make_unique<census::Task>(orch);
  std::thread([task = std::move(task), orch = std::move(orch), f = std::move(f)]() mutable {
    {
      census::CurrentGuard guard(std::move(orch));
      auto body = std::move(f);
      body();
    }
    census::task_ended();
    // Unregister last: once the census reads zero, nothing `f` owned is alive.
    task.reset();
  }).detach();
}

std::jthread spawn_tracked(std::function<void(std::stop_token)> f) {
  auto orch = census::current();
  auto task = std::make_unique<census::Task>(orch);
  return std::jthread([task = std::move(task), orch = std::move(orch),
                       f = std::move(f)](std::stop_token stop) mutable {
    {
      census::CurrentGuard guard(std::move(orch));
      auto body = std::move(f);
      body(std::move(stop));
    }
    census::task_ended();
    task.reset();
  });
}

int os_thread_count() {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("Threads:", 0) == 0) {
      try {
        return std::stoi(line.substr(8));
      } catch (...) {
        return -1;
      }
    }
  }
  return -1;
}

}  // namespace orchlab

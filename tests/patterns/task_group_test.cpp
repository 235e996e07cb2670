// TaskGroup: the errgroup contract.
#include "orchlab/task_group.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <future>
#include <latch>
#include <mutex>
#include <new>
#include <stdexcept>
#include <thread>
#include <vector>

#include "orchlab/census.hpp"
#include "orchlab/fault_point.hpp"

namespace orchlab {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

// Sleeps up to `d`; returns true if `stop` fired first.
bool sleep_or_stop(std::stop_token stop, std::chrono::milliseconds d) {
  std::mutex m;
  std::condition_variable_any cv;
  std::unique_lock lock(m);
  cv.wait_for(lock, stop, d, [] { return false; });
  return stop.stop_requested();
}

// Counts tasks in flight and the maximum seen.
struct InFlight {
  std::atomic<int> now{0}, max{0};
  void enter() {
    const int n = ++now;
    int seen = max.load();
    while (n > seen && !max.compare_exchange_weak(seen, n)) {
    }
  }
  void leave() { --now; }
};

const std::error_code kBoom = std::make_error_code(std::errc::io_error);
const std::error_code kLater = std::make_error_code(std::errc::bad_message);

class TaskGroupTest : public ::testing::Test {
 protected:
  void TearDown() override { ASSERT_TRUE(census::wait_idle(10s)); }
};

TEST_F(TaskGroupTest, AllSucceed) {
  TaskGroup group;
  std::vector<int> slots(5, 0);
  for (int i = 0; i < 5; ++i)
    group.spawn([&, i](std::stop_token) {
      slots[i] = i + 1;
      return std::error_code{};
    });
  EXPECT_FALSE(group.wait());
  EXPECT_EQ(slots, (std::vector<int>{1, 2, 3, 4, 5}));
  EXPECT_FALSE(group.stop_token().stop_requested());
}

TEST_F(TaskGroupTest, FirstErrorWinsAndCancelsSiblings) {
  TaskGroup group;
  std::atomic<int> cancelled{0};
  std::latch siblings_started(3);  // the error comes once all three run
  const auto start = Clock::now();
  group.spawn([&](std::stop_token) {
    siblings_started.wait();
    return kBoom;
  });
  for (int i = 0; i < 3; ++i)
    group.spawn([&](std::stop_token stop) {
      siblings_started.count_down();
      if (!sleep_or_stop(stop, 10s)) return std::error_code{};
      ++cancelled;
      return kLater;  // a later error: must not replace the first
    });
  EXPECT_EQ(group.wait(), kBoom);
  EXPECT_EQ(cancelled.load(), 3);
  EXPECT_LT(Clock::now() - start, 5s);
  EXPECT_TRUE(group.stop_token().stop_requested());
  EXPECT_EQ(group.wait(), kBoom);  // idempotent
}

TEST_F(TaskGroupTest, NoTaskStartsOnceStopped) {
  TaskGroup group;
  group.spawn([](std::stop_token) { return kBoom; });
  while (!group.stop_token().stop_requested()) std::this_thread::yield();
  bool ran = false;
  group.spawn([&](std::stop_token) {
    ran = true;
    return std::error_code{};
  });
  EXPECT_FALSE(group.try_spawn([](std::stop_token) { return std::error_code{}; }));
  EXPECT_EQ(group.wait(), kBoom);
  EXPECT_FALSE(ran);
}

TEST_F(TaskGroupTest, DeadlineCancels) {
  const auto start = Clock::now();
  TaskGroup group({.deadline = start + 100ms});
  std::atomic<bool> saw_stop{false};
  group.spawn([&](std::stop_token stop) {
    saw_stop = sleep_or_stop(stop, 10s);
    return std::error_code{};
  });
  EXPECT_EQ(group.wait(), GroupErrc::deadline_exceeded);
  const auto took = Clock::now() - start;
  EXPECT_TRUE(saw_stop.load());
  EXPECT_GE(took, 95ms);
  EXPECT_LT(took, 3s);
  EXPECT_EQ(make_error_code(GroupErrc::deadline_exceeded).message(), "deadline exceeded");
}

TEST_F(TaskGroupTest, SetDeadlineCancels) {
  TaskGroup group;
  group.spawn([&](std::stop_token stop) {
    sleep_or_stop(stop, 10s);
    return std::error_code{};
  });
  const auto start = Clock::now();
  group.set_deadline(start + 50ms);
  EXPECT_EQ(group.wait(), GroupErrc::deadline_exceeded);
  EXPECT_LT(Clock::now() - start, 3s);
}

// Defect: the group handed condition_variable_any::wait_until a reference
// to its deadline member, which libstdc++ reads after releasing the group's
// lock: a concurrent set_deadline() was a data race (TSan reports it). Both
// waits are driven while another thread moves the deadline: a spawn()
// blocked at the limit, then wait().
TEST_F(TaskGroupTest, SetDeadlineWhileOthersWaitIsNotADataRace) {
  auto until_stopped = [](std::stop_token stop) {
    while (!stop.stop_requested()) std::this_thread::sleep_for(1ms);
    return std::error_code{};
  };
  auto keep_moving = [](TaskGroup& group) {
    return std::jthread([&group] {
      for (int i = 0; i < 200; ++i) {
        group.set_deadline(Clock::now() + 10s + std::chrono::milliseconds(i));
        std::this_thread::sleep_for(200us);
      }
      group.set_deadline(Clock::now());
    });
  };
  {
    TaskGroup group({.limit = 1});
    group.set_deadline(Clock::now() + 10s);
    group.spawn(until_stopped);
    std::jthread mover = keep_moving(group);
    group.spawn(until_stopped);  // blocked at the limit until the deadline passes
    EXPECT_EQ(group.wait(), make_error_code(GroupErrc::deadline_exceeded));
  }
  {
    TaskGroup group;
    group.set_deadline(Clock::now() + 10s);
    group.spawn(until_stopped);
    std::jthread mover = keep_moving(group);
    EXPECT_EQ(group.wait(), make_error_code(GroupErrc::deadline_exceeded));
  }
}

TEST_F(TaskGroupTest, DeadlineNotReachedIsNoError) {
  TaskGroup group({.deadline = Clock::now() + 5s});
  group.spawn([](std::stop_token) { return std::error_code{}; });
  EXPECT_FALSE(group.wait());
}

TEST_F(TaskGroupTest, LimitBoundsConcurrency) {
  constexpr int kLimit = 3;
  TaskGroup group;
  group.set_limit(kLimit);
  InFlight flight;
  std::atomic<int> done{0};
  for (int i = 0; i < 12; ++i)
    group.spawn([&](std::stop_token) {
      flight.enter();
      // Long enough that the owner starts the next task while this one runs,
      // even on a loaded machine under TSan (thread start can take ms there).
      std::this_thread::sleep_for(150ms);
      flight.leave();
      ++done;
      return std::error_code{};
    });
  EXPECT_FALSE(group.wait());
  EXPECT_EQ(done.load(), 12);
  EXPECT_EQ(flight.max.load(), kLimit);
}

// A large fan-out under a limit must not hold one unjoined thread (and its
// stack) per task ever spawned: spawn() joins ended threads in batches.
TEST_F(TaskGroupTest, LimitedFanOutJoinsEndedThreadsAsItGoes) {
  constexpr int kLimit = 4;
  constexpr int kTasks = 300;
  TaskGroup group({.limit = kLimit});
  std::size_t held_max = 0;
  for (int i = 0; i < kTasks; ++i) {
    group.spawn([](std::stop_token) { return std::error_code{}; });
    held_max = std::max(held_max, group.held_threads());
  }
  EXPECT_FALSE(group.wait());
  EXPECT_EQ(group.held_threads(), 0u);
  // limit running + fewer than a batch (16) ended + the one just started.
  EXPECT_LE(held_max, static_cast<std::size_t>(kLimit + 16 + 1));
}

TEST_F(TaskGroupTest, TrySpawnRefusesAtTheLimit) {
  TaskGroup group({.limit = 1});
  std::latch release(1);
  EXPECT_TRUE(group.try_spawn([&](std::stop_token) {
    release.wait();
    return std::error_code{};
  }));
  EXPECT_EQ(group.active(), 1);
  EXPECT_FALSE(group.try_spawn([](std::stop_token) { return std::error_code{}; }));
  release.count_down();
  EXPECT_FALSE(group.wait());
  EXPECT_TRUE(group.try_spawn([](std::stop_token) { return std::error_code{}; }));
  EXPECT_FALSE(group.wait());
}

TEST_F(TaskGroupTest, BlockedSpawnGivesUpAtTheDeadline) {
  TaskGroup group({.deadline = Clock::now() + 100ms, .limit = 1});
  group.spawn([](std::stop_token stop) {
    sleep_or_stop(stop, 10s);
    return std::error_code{};
  });
  bool ran = false;
  const auto start = Clock::now();
  group.spawn([&](std::stop_token) {  // blocks at the limit until the deadline
    ran = true;
    return std::error_code{};
  });
  EXPECT_LT(Clock::now() - start, 3s);
  EXPECT_EQ(group.wait(), GroupErrc::deadline_exceeded);
  EXPECT_FALSE(ran);
}

TEST_F(TaskGroupTest, LimitMisuseFailsLoudly) {
  EXPECT_THROW(TaskGroup({.limit = 0}), std::invalid_argument);
  TaskGroup group;
  EXPECT_THROW(group.set_limit(0), std::invalid_argument);
  std::latch release(1);
  group.spawn([&](std::stop_token) {
    release.wait();
    return std::error_code{};
  });
  EXPECT_THROW(group.set_limit(2), std::logic_error);
  release.count_down();
  group.wait();
  EXPECT_NO_THROW(group.set_limit(2));
}

TEST_F(TaskGroupTest, ExceptionPropagatesAndCancels) {
  TaskGroup group;
  std::atomic<bool> sibling_stopped{false};
  group.spawn([&](std::stop_token stop) {
    sibling_stopped = sleep_or_stop(stop, 10s);
    return std::error_code{};
  });
  group.spawn([](std::stop_token) -> std::error_code { throw std::runtime_error("boom"); });
  EXPECT_THROW(
      {
        try {
          group.wait();
        } catch (const std::runtime_error& e) {
          EXPECT_STREQ(e.what(), "boom");
          throw;
        }
      },
      std::runtime_error);
  EXPECT_TRUE(sibling_stopped.load());
}

TEST_F(TaskGroupTest, DestructorJoinsAndRequestsNothing) {
  std::atomic<bool> finished{false}, stopped{true};
  {
    TaskGroup group;
    group.spawn([&](std::stop_token stop) {
      stopped = sleep_or_stop(stop, 100ms);
      finished = true;
      return std::error_code{};
    });
  }
  EXPECT_TRUE(finished.load());
  EXPECT_FALSE(stopped.load());
  EXPECT_EQ(census::totals().live_tasks, 0);
}

TEST_F(TaskGroupTest, DestructorStillHonoursTheDeadline) {
  const auto start = Clock::now();
  {
    TaskGroup group({.deadline = start + 50ms});
    group.spawn([](std::stop_token stop) {
      sleep_or_stop(stop, 10s);
      return std::error_code{};
    });
  }
  EXPECT_LT(Clock::now() - start, 3s);
}

TEST_F(TaskGroupTest, SelfSpawnAtTheLimitRunsInline) {
  // Both parents hold the group's two slots, then each spawns two children:
  // blocking would deadlock, so the children run inline on the parent thread.
  TaskGroup group({.limit = 2});
  std::latch both_running(2), both_spawned(2);
  InFlight flight;
  std::mutex m;
  std::vector<std::pair<std::thread::id, std::thread::id>> parent_child;
  for (int p = 0; p < 2; ++p)
    group.spawn([&](std::stop_token) {
      flight.enter();
      both_running.arrive_and_wait();
      const auto parent = std::this_thread::get_id();
      for (int c = 0; c < 2; ++c)
        group.spawn([&, parent](std::stop_token) {
          std::lock_guard lock(m);
          parent_child.emplace_back(parent, std::this_thread::get_id());
          return std::error_code{};
        });
      both_spawned.arrive_and_wait();  // neither slot frees up before both spawned
      flight.leave();
      return std::error_code{};
    });
  EXPECT_FALSE(group.wait());
  ASSERT_EQ(parent_child.size(), 4u);
  for (const auto& [parent, child] : parent_child) EXPECT_EQ(parent, child);
  EXPECT_LE(flight.max.load(), 2);
}

TEST_F(TaskGroupTest, SelfSpawnBelowTheLimitStartsAThread) {
  TaskGroup group({.limit = 4});
  std::thread::id parent, child;
  group.spawn([&](std::stop_token) {
    parent = std::this_thread::get_id();
    group.spawn([&](std::stop_token) {
      child = std::this_thread::get_id();
      return std::error_code{};
    });
    return std::error_code{};
  });
  EXPECT_FALSE(group.wait());
  ASSERT_NE(child, std::thread::id{});  // the nested task ran...
  EXPECT_NE(parent, child);             // ...on a thread of its own
}

TEST_F(TaskGroupTest, CollectAllDoesNotCancelSiblings) {
  TaskGroup group({.policy = ErrorPolicy::collect_all});
  std::atomic<bool> stopped{true};
  group.spawn([](std::stop_token) { return kBoom; });
  group.spawn([&](std::stop_token stop) {
    stopped = sleep_or_stop(stop, 50ms);
    return kLater;
  });
  EXPECT_EQ(group.wait(), kBoom);
  EXPECT_FALSE(stopped.load());
}

TEST_F(TaskGroupTest, TasksAreCountedInTheCensus) {
  census::Scope scope;
  std::latch release(1);
  TaskGroup group;
  for (int i = 0; i < 3; ++i)
    group.spawn([&](std::stop_token) {
      release.wait();
      return std::error_code{};
    });
  EXPECT_EQ(scope.orchestration()->live_tasks(), 3);
  release.count_down();
  group.wait();
  EXPECT_EQ(scope.orchestration()->live_tasks(), 0);  // wait() joined them
}

// Defect: a thread started by spawn() was recorded with threads_.push_back
// under mutex_; a push_back that threw (std::bad_alloc, here from the fault
// point) destroyed the new std::jthread, which joined, still under mutex_,
// the thread whose task needed mutex_ to finish: spawn() never returned.
TEST_F(TaskGroupTest, AThreadThatCannotBeRecordedDoesNotDeadlockSpawn) {
  if (!testing::fault_points()) GTEST_SKIP() << "built without fault points";
  std::atomic<int> passes{0};
  testing::set_fault(testing::Fault::task_group_thread, [&passes](void*) {
    if (passes.fetch_add(1) == 0) throw std::bad_alloc();
  });
  std::atomic<int> ran{0};
  auto result = std::async(std::launch::async, [&ran] {
    TaskGroup group;
    // Still running when spawn() records its thread.
    const auto task = [&ran](std::stop_token) {
      std::this_thread::sleep_for(50ms);
      ++ran;
      return std::error_code{};
    };
    bool threw = false;
    try {
      group.spawn(task);
    } catch (const std::bad_alloc&) {
      threw = true;
    }
    group.spawn(task);  // the group is still usable
    return std::pair(threw, group.wait());
  });
  if (result.wait_for(10s) == std::future_status::timeout) {
    std::fprintf(stderr, "HANG: spawn() deadlocked\n");
    std::fflush(stderr);
    std::_Exit(1);
  }
  const auto [threw, ec] = result.get();
  testing::set_fault(testing::Fault::task_group_thread, nullptr);
  EXPECT_TRUE(threw);
  EXPECT_FALSE(ec) << ec.message();
  EXPECT_EQ(ran.load(), 1) << "a spawn() that throws starts nothing";
}

}  // namespace
}  // namespace orchlab

// Defects of the async core (issue 23, item 6), each reproduced at the exact
// step where it lived through a test-only fault point (orchlab/fault_point.hpp):
// a throw where an allocation or a thread creation can fail, or a thread held
// between two steps of a race. A hang is caught by a bounded wait.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <future>
#include <memory>
#include <new>
#include <nlohmann/json.hpp>
#include <string>
#include <system_error>
#include <thread>
#include <utility>

#include "async/client.hpp"
#include "async/group.hpp"
#include "orchlab/census.hpp"
#include "orchlab/fault_point.hpp"
#include "orchlab/mock/fleet.hpp"

namespace orchlab::async {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using orchlab::testing::Fault;

#define REQUIRE_FAULT_POINTS()           \
  if (!orchlab::testing::fault_points()) \
  GTEST_SKIP() << "built without fault points (an optimised build)"

// Sets a fault point for the test's scope.
class FaultScope {
 public:
  FaultScope(Fault point, std::function<void(void*)> f) : point_(point) {
    orchlab::testing::set_fault(point, std::move(f));
  }
  ~FaultScope() { orchlab::testing::set_fault(point_, nullptr); }
  FaultScope(const FaultScope&) = delete;
  FaultScope& operator=(const FaultScope&) = delete;

 private:
  Fault point_;
};

// Throws `e` at the first pass only.
template <class E>
std::function<void(void*)> throw_once(E e) {
  auto passes = std::make_shared<std::atomic<int>>(0);
  return [passes, e](void*) {
    if (passes->fetch_add(1) == 0) throw e;
  };
}

// Runs `f` on a thread of its own and waits for it at most `limit`. A hang
// ends the process: the hung thread holds the test's locals and cannot be
// taken back.
template <class F>
auto within(std::chrono::milliseconds limit, F f) {
  auto result = std::async(std::launch::async, std::move(f));
  if (result.wait_for(limit) == std::future_status::timeout) {
    std::fprintf(stderr, "HANG: still running after %lld ms\n",
                 static_cast<long long>(limit.count()));
    std::fflush(stderr);
    std::_Exit(1);
  }
  return result.get();
}

std::unique_ptr<mock::MockFleet> one_service() {
  return mock::MockFleet::from_json(nlohmann::json::parse(R"({"services": [
      {"name": "a", "port": 0, "body_bytes": 64, "latency": {"dist": "fixed", "ms": 0}}]})"),
                                    mock::ServerOptions{.threads = 2});
}

// One call on `client`, with a deadline; how long it took.
std::pair<Outcome, Clock::duration> one_call(Runtime& runtime, Client& client, const Call& call,
                                             std::chrono::milliseconds deadline) {
  const auto t0 = Clock::now();
  Outcome out = run_group(runtime, deadline, Policy::fail_fast, [&](Group& g) {
    g.go([&](Stop stop) { return client.get(call, stop); });
  });
  return {std::move(out), Clock::now() - t0};
}

// Defect: the last call's finish() stored `done`, then called notify_one on
// it; the caller, spinning, may see the store, return and free the group's
// state before the notify, which then touches freed memory (routine once the
// deadline handler, the state's other owner, has run). The fault point holds
// the finisher between the store and the notify until the caller has
// returned (woken as a spinning caller would see the store), then reads the
// atomic as the notify is entitled to: heap-use-after-free under ASan before
// the fix.
TEST(AsyncFaultTest, TheLastFinishNotifiesAStateStillAlive) {
  REQUIRE_FAULT_POINTS();
  Runtime runtime(2);
  Client client(runtime.context(), {});
  std::atomic<bool> returned{false};
  std::atomic<int> seen{-1};
  FaultScope fault(Fault::group_notify, [&](void* p) {
    auto* done = static_cast<std::atomic<int>*>(p);
    // The caller may have gone to sleep on the futex: wake it, as if it had
    // still been spinning when the store landed.
    done->notify_all();
    for (int i = 0; i < 2000 && !returned.load(); ++i) std::this_thread::sleep_for(1ms);
    seen = done->load();
  });
  const Call slow{"inproc://slow?delay_ms=10000"};
  const Outcome out = run_group(runtime, 20ms, Policy::fail_fast, [&](Group& g) {
    g.go([&](Stop stop) { return client.get(slow, stop); });
  });
  returned = true;
  for (int i = 0; i < 2000 && seen.load() == -1; ++i) std::this_thread::sleep_for(1ms);
  EXPECT_EQ(seen.load(), 1);
  EXPECT_EQ(out.verdict, Verdict::timed_out);
}

// Defect: go() committed the call's child and census task before adding its
// slot; when that threw and the setup caught it, the half-added child stayed
// and the next go()'s call finished under the wrong index. The call that had
// really finished was never marked so, and the deadline's cancel_all emitted
// into its stale cancellation handler (heap-use-after-free under ASan), and
// a census task outlived the return.
TEST(AsyncFaultTest, ACaughtThrowFromGoLeavesNoHalfAddedCall) {
  REQUIRE_FAULT_POINTS();
  Runtime runtime(2);
  Client client(runtime.context(), {});
  FaultScope fault(Fault::group_add_slot, throw_once(std::bad_alloc()));
  const Call quick{"inproc://quick?delay_ms=1"};
  const Call slow{"inproc://slow?delay_ms=10000"};
  census::Scope scope;
  bool threw = false;
  const Outcome out = run_group(runtime, 200ms, Policy::collect_all, [&](Group& g) {
    try {
      g.go([&](Stop stop) { return client.get(quick, stop); });
    } catch (const std::bad_alloc&) {
      threw = true;
    }
    g.go([&](Stop stop) { return client.get(quick, stop); });
    g.go([&](Stop stop) { return client.get(slow, stop); });
  });
  EXPECT_EQ(scope.mark_returned(), 0) << "a census task outlived run_group";
  EXPECT_TRUE(threw);
  ASSERT_EQ(out.slots.size(), 2u);
  EXPECT_TRUE(out.slots[0].has_value()) << "the quick call's answer went to another slot";
  EXPECT_FALSE(out.slots[1].has_value());
  EXPECT_EQ(out.verdict, Verdict::timed_out);
}

// Defect: an io thread that could not be created after others had started
// left joinable std::threads to the vector's destructor: std::terminate.
TEST(AsyncFaultTest, ARuntimeWhoseThreadCannotStartThrows) {
  REQUIRE_FAULT_POINTS();
  {
    auto passes = std::make_shared<int>(0);
    FaultScope fault(Fault::runtime_thread, [passes](void*) {
      if (++*passes == 3)
        throw std::system_error(std::make_error_code(std::errc::resource_unavailable_try_again),
                                "thread");
    });
    EXPECT_THROW(Runtime(4), std::system_error);
    EXPECT_EQ(*passes, 3);
  }
  Runtime runtime(2);  // the process goes on, and so do later runtimes
  Client client(runtime.context(), {});
  EXPECT_EQ(one_call(runtime, client, Call{"inproc://ok"}, 1000ms).first.verdict,
            Verdict::complete);
}

// Defect: release() took the first parked acquire off the queue and marked
// it woken before the post that resumes it. When the post threw, nothing
// resumed it (its cancellation saw `woken`), the connection stayed in it, and
// its group hung.
TEST(AsyncFaultTest, AWakeThatCannotBePostedOnReleaseStrandsNothing) {
  REQUIRE_FAULT_POINTS();
  auto fleet = one_service();
  Runtime runtime(2);
  Client client(runtime.context(), {.max_conns_per_host = 1});
  const Call holder{fleet->url("a") + "/a?delay_ms=50"};
  const Call waiter{fleet->url("a") + "/b"};
  {
    FaultScope fault(Fault::pool_wake, throw_once(std::bad_alloc()));
    within(10s, [&] {
      EXPECT_THROW(run_group(runtime, 3000ms, Policy::collect_all,
                             [&](Group& g) {
                               g.go([&](Stop stop) { return client.get(holder, stop); });
                               g.go([&](Stop stop) { return client.get(waiter, stop); });
                             }),
                   std::bad_alloc);
    });
  }
  EXPECT_EQ(client.stats().acquires_waited, 1u);
  const auto [out, took] = within(10s, [&] { return one_call(runtime, client, waiter, 2000ms); });
  EXPECT_EQ(out.verdict, Verdict::complete) << out.error;
  EXPECT_LT(took, 1000ms) << "the connection was stranded";
}

// The same in discard(), which hands the parked acquire a place instead of a
// connection (here the holder's connection is reset by the service).
TEST(AsyncFaultTest, AWakeThatCannotBePostedOnDiscardLosesNoPlace) {
  REQUIRE_FAULT_POINTS();
  auto fleet = one_service();
  Runtime runtime(2);
  Client client(runtime.context(), {.max_conns_per_host = 1});
  const Call holder{fleet->url("a") + "/a?delay_ms=50&fault=reset"};
  const Call waiter{fleet->url("a") + "/b"};
  {
    FaultScope fault(Fault::pool_wake, throw_once(std::bad_alloc()));
    within(10s, [&] {
      EXPECT_THROW(run_group(runtime, 3000ms, Policy::collect_all,
                             [&](Group& g) {
                               g.go([&](Stop stop) { return client.get(holder, stop); });
                               g.go([&](Stop stop) { return client.get(waiter, stop); });
                             }),
                   std::bad_alloc);
    });
  }
  const auto [out, took] = within(10s, [&] { return one_call(runtime, client, waiter, 2000ms); });
  EXPECT_EQ(out.verdict, Verdict::complete) << out.error;
  EXPECT_LT(took, 1000ms) << "the place was lost";
}

// Defect: the cancellation of a parked acquire took it off the queue and
// marked it woken before the post; when the post threw (out of the
// deadline's cancel_all, into io_context::run), nothing resumed it and its
// group hung.
TEST(AsyncFaultTest, AWakeThatCannotBePostedOnCancelHangsNothing) {
  REQUIRE_FAULT_POINTS();
  auto fleet = one_service();
  Runtime runtime(2);
  Client client(runtime.context(), {.max_conns_per_host = 1});
  const Call holder{fleet->url("a") + "/a?delay_ms=5000"};
  const Call waiter{fleet->url("a") + "/b"};
  FaultScope fault(Fault::pool_wake, throw_once(std::bad_alloc()));
  const auto t0 = Clock::now();
  within(10s, [&] {
    EXPECT_THROW(run_group(runtime, 200ms, Policy::collect_all,
                           [&](Group& g) {
                             g.go([&](Stop stop) { return client.get(holder, stop); });
                             g.go([&](Stop stop) { return client.get(waiter, stop); });
                           }),
                 std::bad_alloc);
  });
  EXPECT_LT(Clock::now() - t0, 2000ms);
  EXPECT_EQ(client.stats().cancelled, 2u);
}

// Defect: a parked acquire granted a place did record_wait() and, for a
// place without a connection, make_unique<Conn> before the call's Lease held
// the place; a throw there lost it for good, and every later call on the host
// parked until its deadline.
TEST(AsyncFaultTest, AThrowBetweenAGrantAndTheLeaseGivesThePlaceBack) {
  REQUIRE_FAULT_POINTS();
  auto fleet = one_service();
  Runtime runtime(2);
  Client client(runtime.context(), {.max_conns_per_host = 1});
  const Call holder{fleet->url("a") + "/a?delay_ms=50"};
  const Call waiter{fleet->url("a") + "/b"};
  {
    FaultScope fault(Fault::pool_granted, throw_once(std::bad_alloc()));
    within(10s, [&] {
      EXPECT_THROW(run_group(runtime, 3000ms, Policy::collect_all,
                             [&](Group& g) {
                               g.go([&](Stop stop) { return client.get(holder, stop); });
                               g.go([&](Stop stop) { return client.get(waiter, stop); });
                             }),
                   std::bad_alloc);
    });
  }
  const auto [out, took] = within(10s, [&] { return one_call(runtime, client, waiter, 1000ms); });
  EXPECT_EQ(out.verdict, Verdict::complete) << out.error;
  EXPECT_LT(took, 500ms) << "the place was lost";
}

// pool_wait_ns has one definition in both clients (docs/http_client.md):
// from asking the pool for a connection until the call holds one and runs
// on, every acquire, an immediate one measured as it is. With one place
// held for 200 ms, the second acquire waits about that long; the first one
// took its lock's time, not 0. (tests/http: the thread client, the same.)
TEST(AsyncPoolWaitTest, TheWaitRunsFromAskingUntilHoldingAConnection) {
  auto fleet = one_service();
  Runtime runtime(2);
  Client client(runtime.context(), {.max_conns_per_host = 1});
  const Call holder{fleet->url("a") + "/a?delay_ms=200"};
  const Call waiter{fleet->url("a") + "/b"};
  const Outcome out = run_group(runtime, 5000ms, Policy::collect_all, [&](Group& g) {
    g.go([&](Stop stop) { return client.get(holder, stop); });
    g.go([&](Stop stop) { return client.get(waiter, stop); });
  });
  ASSERT_EQ(out.verdict, Verdict::complete) << out.error;
  const ClientStats stats = client.stats();
  EXPECT_EQ(stats.acquires_waited, 1u);
  ASSERT_EQ(stats.wait_ns.count(), 2u);
  EXPECT_GT(stats.wait_ns.min(), 0u) << "an immediate acquire was not measured";
  EXPECT_LT(stats.wait_ns.min(), 50'000'000u);
  EXPECT_GE(stats.wait_ns.max(), 190'000'000u);
  EXPECT_LT(stats.wait_ns.max(), 1'500'000'000u);
}

}  // namespace
}  // namespace orchlab::async

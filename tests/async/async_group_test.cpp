// async-group and async-group+collect-all: the behavioural contract of the
// group exhibits (healthy, deadline, fail-fast, hang, partial, collect-all),
// the connection limit and many concurrent callers, first in-process
// (inproc://) then against mock services on loopback.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "orchlab/census.hpp"
#include "orchlab/mock/fleet.hpp"
#include "orchlab/pattern.hpp"

namespace orchlab {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

// Generous: the machine is shared and sanitizers slow everything down.
constexpr auto kMargin = 1500ms;

struct RunResult {
  Outcome out;
  int live_at_return = -1;  // census tasks of the orchestration when run() returned
  std::chrono::milliseconds took{0};
};

std::unique_ptr<Pattern> make(bool collect_all, PatternOptions options = {}) {
  options.threads = options.threads == 0 ? 2 : options.threads;
  auto p = make_pattern(collect_all ? "async-group+collect-all" : "async-group", options);
  EXPECT_NE(p, nullptr);
  return p;
}

// The Fetch async-group must not use: any call through it fails the test.
Reply no_fetch(const Call&, std::stop_token) {
  ADD_FAILURE() << "async-group called the blocking Fetch";
  return Reply{0, {}, ReplyError::transport};
}

RunResult run_once(Pattern& p, const Plan& plan) {
  census::Scope scope;
  const auto t0 = Clock::now();
  RunResult r;
  r.out = p.run(plan, no_fetch);
  r.live_at_return = scope.mark_returned();
  r.took = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t0);
  return r;
}

Plan plan_of(std::vector<std::string> urls, std::chrono::nanoseconds deadline) {
  Plan plan;
  plan.deadline = deadline;
  for (auto& u : urls) plan.calls.push_back(Call{std::move(u)});
  return plan;
}

std::vector<std::string> repeat(const std::string& url, int n) {
  return std::vector<std::string>(static_cast<std::size_t>(n), url);
}

// ---------------------------------------------------------------------------
// In-process calls: the group machinery alone.

TEST(AsyncGroupInprocTest, HealthyIsComplete) {
  auto p = make(false);
  const RunResult r = run_once(*p, plan_of(repeat("inproc://ok", 100), 5000ms));
  EXPECT_EQ(r.out.verdict, Verdict::complete);
  EXPECT_EQ(r.out.error, "");
  ASSERT_EQ(r.out.slots.size(), 100u);
  for (const auto& s : r.out.slots) {
    ASSERT_TRUE(s.has_value());
    EXPECT_EQ(s->status, 200);
  }
  EXPECT_EQ(r.live_at_return, 0);
}

TEST(AsyncGroupInprocTest, EmptyPlanIsComplete) {
  auto p = make(false);
  const RunResult r = run_once(*p, plan_of({}, 100ms));
  EXPECT_EQ(r.out.verdict, Verdict::complete);
  EXPECT_TRUE(r.out.slots.empty());
}

TEST(AsyncGroupInprocTest, HugeDeadlineDoesNotOverflow) {
  auto p = make(false);
  const RunResult r =
      run_once(*p, plan_of(repeat("inproc://ok", 3), std::chrono::nanoseconds::max()));
  EXPECT_EQ(r.out.verdict, Verdict::complete);
}

TEST(AsyncGroupInprocTest, DeadlineCancelsEveryCall) {
  auto p = make(false);
  auto urls = repeat("inproc://slow?delay_ms=10000", 20);
  urls[3] = "inproc://fast";
  const RunResult r = run_once(*p, plan_of(urls, 100ms));
  EXPECT_LT(r.took, 100ms + kMargin);
  EXPECT_EQ(r.out.verdict, Verdict::timed_out);
  EXPECT_EQ(r.out.error, "deadline exceeded");
  ASSERT_TRUE(r.out.slots[3].has_value());  // partial results survive
  EXPECT_EQ(r.out.slots[3]->status, 200);
  EXPECT_FALSE(r.out.slots[0].has_value());
  EXPECT_EQ(r.live_at_return, 0);
}

TEST(AsyncGroupInprocTest, FirstErrorCancelsSiblings) {
  auto p = make(false);
  auto urls = repeat("inproc://slow?delay_ms=10000", 10);
  urls[0] = "inproc://ok";
  urls[7] = "inproc://bad?status=503&delay_ms=20";
  const RunResult r = run_once(*p, plan_of(urls, 20000ms));
  EXPECT_LT(r.took, kMargin);
  EXPECT_EQ(r.out.error, "HTTP 503");
  EXPECT_EQ(r.out.verdict, Verdict::partial);
  ASSERT_TRUE(r.out.slots[7].has_value());
  EXPECT_EQ(r.out.slots[7]->status, 503);
  EXPECT_EQ(r.out.slots[7]->error, ReplyError::http);
  EXPECT_TRUE(r.out.slots[0].has_value());
  for (int i : {1, 2, 3, 4, 5, 6, 8, 9}) EXPECT_FALSE(r.out.slots[i].has_value()) << i;
  EXPECT_EQ(r.live_at_return, 0);
}

TEST(AsyncGroupInprocTest, CollectAllKeepsEverySlotsOwnError) {
  auto p = make(true);
  const RunResult r = run_once(*p, plan_of({"inproc://a?status=503", "inproc://b?delay_ms=50",
                                            "inproc://c?status=500&delay_ms=10", "inproc://d"},
                                           10000ms));
  EXPECT_GE(r.took, 40ms);  // waited for the slow sibling despite the errors
  EXPECT_EQ(r.out.verdict, Verdict::partial);
  EXPECT_EQ(r.out.error, "HTTP 503");
  ASSERT_EQ(r.out.slots.size(), 4u);
  for (const auto& s : r.out.slots) ASSERT_TRUE(s.has_value());
  EXPECT_EQ(r.out.slots[0]->status, 503);
  EXPECT_EQ(r.out.slots[1]->status, 200);
  EXPECT_EQ(r.out.slots[2]->status, 500);
  EXPECT_EQ(r.out.slots[3]->status, 200);
  EXPECT_EQ(r.live_at_return, 0);
}

TEST(AsyncGroupInprocTest, CollectAllStillHonoursTheDeadline) {
  auto p = make(true);
  const RunResult r =
      run_once(*p, plan_of({"inproc://a?status=503", "inproc://b?delay_ms=10000"}, 100ms));
  EXPECT_LT(r.took, 100ms + kMargin);
  EXPECT_EQ(r.out.verdict, Verdict::timed_out);
  ASSERT_TRUE(r.out.slots[0].has_value());
  EXPECT_EQ(r.out.slots[0]->status, 503);
  EXPECT_FALSE(r.out.slots[1].has_value());
}

TEST(AsyncGroupInprocTest, BadUrlsAreTransportErrors) {
  auto p = make(true);
  const RunResult r = run_once(*p, plan_of({"ftp://x/y", "nonsense"}, 1000ms));
  EXPECT_EQ(r.out.verdict, Verdict::failed);
  ASSERT_TRUE(r.out.slots[0].has_value());
  EXPECT_EQ(r.out.slots[0]->error, ReplyError::transport);
  EXPECT_EQ(r.out.error, "transport error: unsupported scheme: ftp");
}

TEST(AsyncGroupInprocTest, ManyConcurrentCallers) {
  auto p = make(false);
  constexpr int kCallers = 8;
  constexpr int kRuns = 40;
  std::atomic<int> complete{0};
  std::atomic<int> leaked{0};
  std::vector<std::thread> callers;
  for (int c = 0; c < kCallers; ++c) {
    callers.emplace_back([&, c] {
      for (int i = 0; i < kRuns; ++i) {
        auto urls = repeat("inproc://ok", 25);
        if ((c + i) % 5 == 0) urls[4] = "inproc://bad?status=500";  // some fail fast
        if ((c + i) % 7 == 0) urls[9] = "inproc://slow?delay_ms=5000";
        const RunResult r = run_once(*p, plan_of(urls, (c + i) % 7 == 0 ? 30ms : 5000ms));
        if (r.out.verdict == Verdict::complete) complete.fetch_add(1);
        leaked.fetch_add(r.live_at_return);
        const Verdict expect = (c + i) % 7 == 0   ? Verdict::timed_out
                               : (c + i) % 5 == 0 ? Verdict::partial
                                                  : Verdict::complete;
        // Fail-fast may beat the deadline when both apply.
        if ((c + i) % 35 != 0) {
          EXPECT_EQ(r.out.verdict, expect) << c << "/" << i;
        }
      }
    });
  }
  for (auto& t : callers) t.join();
  EXPECT_EQ(leaked.load(), 0);
  EXPECT_GT(complete.load(), kCallers * kRuns / 2);
}

TEST(AsyncGroupInprocTest, UsesNoThreadPerCall) {
  auto p = make(false, {.threads = 2});
  std::atomic<bool> running{true};
  std::atomic<int> peak{0};
  std::thread sampler([&] {
    while (running.load()) {
      peak.store(std::max(peak.load(), os_thread_count()));
      std::this_thread::sleep_for(1ms);
    }
  });
  const int before = os_thread_count();
  const RunResult r = run_once(*p, plan_of(repeat("inproc://slow?delay_ms=50", 2000), 10000ms));
  running.store(false);
  sampler.join();
  EXPECT_EQ(r.out.verdict, Verdict::complete);
  EXPECT_GT(before, 0);
  EXPECT_LE(peak.load(), before);  // 2000 calls in flight, not one thread more
}

// ---------------------------------------------------------------------------
// Against mock services on loopback.

class AsyncGroupMockTest : public ::testing::Test {
 protected:
  void SetUp() override {
    fleet_ = mock::MockFleet::from_json(nlohmann::json::parse(R"({
      "bind": "127.0.0.1",
      "services": [
        {"name": "fast", "port": 0, "body_bytes": 64, "latency": {"dist": "fixed", "ms": 2}},
        {"name": "slow", "port": 0, "body_bytes": 64, "latency": {"dist": "fixed", "ms": 3000}}
      ]})"),
                                        mock::ServerOptions{.threads = 1});
  }
  void TearDown() override { fleet_->stop(); }

  std::string url(const std::string& service, const std::string& query = "") const {
    return fleet_->url(service) + "/item" + (query.empty() ? "" : "?" + query);
  }
  // Client aborts are noticed by the service asynchronously: poll briefly.
  long aborts(const std::string& service, long at_least) const {
    long n = 0;
    for (auto until = Clock::now() + 3s; Clock::now() < until; std::this_thread::sleep_for(10ms)) {
      n = fleet_->stats(service).at("client_aborts").get<long>();
      if (n >= at_least) break;
    }
    return n;
  }

  std::unique_ptr<mock::MockFleet> fleet_;
};

TEST_F(AsyncGroupMockTest, HealthyIsComplete) {
  auto p = make(false);
  for (int round = 0; round < 3; ++round) {  // later rounds reuse pooled connections
    const RunResult r = run_once(*p, plan_of(repeat(url("fast"), 12), 5000ms));
    EXPECT_EQ(r.out.verdict, Verdict::complete) << r.out.error;
    ASSERT_EQ(r.out.slots.size(), 12u);
    for (const auto& s : r.out.slots) {
      ASSERT_TRUE(s.has_value());
      EXPECT_EQ(s->status, 200);
      EXPECT_EQ(s->body.size(), 64u);
    }
    EXPECT_EQ(r.live_at_return, 0);
  }
  const auto stats = fleet_->stats("fast");
  EXPECT_EQ(stats.at("requests").get<long>(), 36);
  EXPECT_LE(stats.at("max_open_connections").get<long>(), 12);
}

TEST_F(AsyncGroupMockTest, SlowBeyondDeadlineReturnsPartialInTime) {
  auto p = make(false);
  auto urls = repeat(url("fast"), 6);
  for (int i = 0; i < 6; i += 2) urls[i] = url("slow");
  const RunResult r = run_once(*p, plan_of(urls, 300ms));
  EXPECT_LT(r.took, 300ms + kMargin);
  EXPECT_GE(r.took, 250ms);
  EXPECT_EQ(r.out.verdict, Verdict::timed_out);
  for (int i = 0; i < 6; ++i) EXPECT_EQ(r.out.slots[i].has_value(), i % 2 == 1) << i;
  EXPECT_EQ(r.live_at_return, 0);
  EXPECT_GE(aborts("slow", 3), 3);  // the cancellation reached the service
}

TEST_F(AsyncGroupMockTest, FailFastCancelsSiblingsAtTheService) {
  auto p = make(false);
  auto urls = repeat(url("fast", "delay_ms=5000"), 8);
  urls[5] = url("fast", "status=503&delay_ms=50");
  const RunResult r = run_once(*p, plan_of(urls, 20000ms));
  EXPECT_LT(r.took, kMargin);
  EXPECT_EQ(r.out.error, "HTTP 503");
  EXPECT_EQ(r.out.verdict, Verdict::failed);
  ASSERT_TRUE(r.out.slots[5].has_value());
  EXPECT_EQ(r.out.slots[5]->status, 503);
  EXPECT_EQ(r.live_at_return, 0);
  EXPECT_GE(aborts("fast", 7), 7);
}

TEST_F(AsyncGroupMockTest, HangLeavesNothingBehind) {
  auto p = make(false);
  const auto before = census::totals();
  auto urls = repeat(url("fast"), 4);
  // The hang gives up by itself after 1.5 s: a call still holding its
  // connection then would end (a late completion) and the mock would count a
  // no_response.
  urls[1] = url("fast", "fault=hang&hang_ms=1500");
  const auto start = Clock::now();
  const RunResult r = run_once(*p, plan_of(urls, 200ms));
  EXPECT_EQ(r.live_at_return, 0);
  EXPECT_LT(r.took, 200ms + kMargin);
  EXPECT_EQ(r.out.verdict, Verdict::timed_out);
  EXPECT_FALSE(r.out.slots[1].has_value());
  EXPECT_TRUE(r.out.slots[0].has_value());
  EXPECT_GE(aborts("fast", 1), 1);
  EXPECT_EQ(fleet_->stats("fast").at("in_flight").get<long>(), 0);
  std::this_thread::sleep_until(start + 2000ms);
  EXPECT_EQ(census::totals().late_completions, before.late_completions);
  EXPECT_EQ(fleet_->stats("fast").at("no_response").get<long>(), 0);
}

TEST_F(AsyncGroupMockTest, CollectAllReturnsEverySlotsOwnError) {
  auto p = make(true);
  const RunResult r = run_once(
      *p, plan_of({url("fast", "status=503"), url("fast"), url("fast", "status=500&delay_ms=30"),
                   url("fast", "fault=reset"), url("fast", "delay_ms=100")},
                  10000ms));
  EXPECT_EQ(r.out.verdict, Verdict::partial);
  ASSERT_EQ(r.out.slots.size(), 5u);
  for (const auto& s : r.out.slots) ASSERT_TRUE(s.has_value());
  EXPECT_EQ(r.out.slots[0]->status, 503);
  EXPECT_EQ(r.out.slots[0]->error, ReplyError::http);
  EXPECT_EQ(r.out.slots[1]->status, 200);
  EXPECT_EQ(r.out.slots[2]->status, 500);
  EXPECT_EQ(r.out.slots[3]->error, ReplyError::transport);
  EXPECT_EQ(r.out.slots[3]->status, 0);
  EXPECT_EQ(r.out.slots[4]->status, 200);
  EXPECT_EQ(r.live_at_return, 0);
}

TEST_F(AsyncGroupMockTest, PoolLimitIsHonoured) {
  constexpr std::size_t kLimit = 4;
  auto p = make(false, {.max_conns_per_host = kLimit});
  std::vector<std::thread> callers;
  std::atomic<int> complete{0};
  for (int c = 0; c < 4; ++c) {
    callers.emplace_back([&] {
      for (int i = 0; i < 3; ++i) {
        const RunResult r = run_once(*p, plan_of(repeat(url("fast", "delay_ms=10"), 16), 20000ms));
        if (r.out.verdict == Verdict::complete) complete.fetch_add(1);
      }
    });
  }
  for (auto& t : callers) t.join();
  EXPECT_EQ(complete.load(), 12);
  const auto stats = fleet_->stats("fast");
  EXPECT_EQ(stats.at("requests").get<long>(), 4 * 3 * 16);
  EXPECT_LE(stats.at("max_open_connections").get<long>(), static_cast<long>(kLimit));
  EXPECT_LE(stats.at("max_in_flight").get<long>(), static_cast<long>(kLimit));

  // The pool's own counters, which the harness reports as pool_*: every
  // acquire timed, the ones that found all kLimit connections busy counted.
  const auto pool = p->pool_stats();
  ASSERT_TRUE(pool.has_value());
  EXPECT_EQ(pool->requests, 4u * 3 * 16);
  EXPECT_EQ(pool->wait_ns.count(), 4u * 3 * 16);
  EXPECT_GT(pool->acquires_waited, 0u);  // 64 calls at once on 4 connections
  EXPECT_GT(pool->wait_ns.max(), 0u);
  EXPECT_LE(pool->connections_opened, kLimit);
  p->reset_pool_stats();
  const auto cleared = p->pool_stats();
  EXPECT_EQ(cleared->requests, 0u);
  EXPECT_EQ(cleared->acquires_waited, 0u);
  EXPECT_EQ(cleared->wait_ns.count(), 0u);
}

TEST_F(AsyncGroupMockTest, WaitForAConnectionIsCancellable) {
  // One connection, held by a slow call: the others wait in the pool and the
  // deadline must end that wait too.
  auto p = make(false, {.max_conns_per_host = 1});
  const RunResult r = run_once(*p, plan_of(repeat(url("fast", "delay_ms=5000"), 5), 200ms));
  EXPECT_LT(r.took, 200ms + kMargin);
  EXPECT_EQ(r.out.verdict, Verdict::timed_out);
  EXPECT_EQ(r.live_at_return, 0);
  EXPECT_EQ(fleet_->stats("fast").at("requests").get<long>(), 1);
  const auto pool = p->pool_stats();
  ASSERT_TRUE(pool.has_value());
  EXPECT_EQ(pool->requests, 5u);
  EXPECT_GE(pool->acquires_waited, 1u);
  EXPECT_GT(pool->wait_ns.max(), 0u);  // the abandoned waits are timed too
}

TEST_F(AsyncGroupMockTest, ManyConcurrentCallers) {
  auto p = make(false, {.max_conns_per_host = 16});
  constexpr int kCallers = 8;
  constexpr int kRuns = 10;
  std::atomic<int> complete{0};
  std::atomic<int> leaked{0};
  std::vector<std::thread> callers;
  for (int c = 0; c < kCallers; ++c) {
    callers.emplace_back([&] {
      for (int i = 0; i < kRuns; ++i) {
        const RunResult r = run_once(*p, plan_of(repeat(url("fast"), 10), 10000ms));
        if (r.out.verdict == Verdict::complete) complete.fetch_add(1);
        leaked.fetch_add(r.live_at_return);
      }
    });
  }
  for (auto& t : callers) t.join();
  EXPECT_EQ(complete.load(), kCallers * kRuns);
  EXPECT_EQ(leaked.load(), 0);
  EXPECT_LE(fleet_->stats("fast").at("max_open_connections").get<long>(), 16);
}

}  // namespace
}  // namespace orchlab

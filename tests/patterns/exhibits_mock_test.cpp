// What each exhibit does against real services: an in-process MockFleet on
// loopback and the cancellable pooled HTTP client. Cancellation is observed
// where it matters, at the service (client_aborts), and leaks in the census.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "exhibit_traits.hpp"
#include "orchlab/census.hpp"
#include "orchlab/http_client.hpp"
#include "orchlab/mock/fleet.hpp"
#include "orchlab/pattern.hpp"

namespace orchlab {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using testing::kExhibits;
using testing::kMargin;
using testing::kSlow;
using testing::Traits;

// Three fast services; each test shapes its calls through the query
// (delay_ms, status, fault=hang). A forced hang closes after 2.5 s, which
// bounds how long a leaked call can live.
constexpr const char* kFleet = R"({
  "bind": "127.0.0.1",
  "services": [
    {"name": "a", "port": 0, "body_bytes": 64, "latency": {"dist": "fixed", "ms": 2},
     "faults": [{"kind": "hang", "max_ms": 2500, "every_nth": 1000000000}]},
    {"name": "b", "port": 0, "body_bytes": 64, "latency": {"dist": "fixed", "ms": 2},
     "faults": [{"kind": "hang", "max_ms": 2500, "every_nth": 1000000000}]},
    {"name": "c", "port": 0, "body_bytes": 64, "latency": {"dist": "fixed", "ms": 2},
     "faults": [{"kind": "hang", "max_ms": 2500, "every_nth": 1000000000}]}]})";

struct RunResult {
  Outcome out;
  Clock::duration took;
  int live_at_return = 0;
};

class MockBackedTest : public ::testing::Test {
 protected:
  void SetUp() override {
    fleet_ = mock::MockFleet::from_json(nlohmann::json::parse(kFleet),
                                        mock::ServerOptions{.threads = 2});
    before_ = census::totals();
  }
  // Leaked calls must end while the fleet is up and before the next test.
  void TearDown() override { ASSERT_TRUE(census::wait_idle(10s)); }

  Call call(const char* service, const std::string& query = "") const {
    return {fleet_->url(service) + "/item" + (query.empty() ? "" : "?" + query)};
  }

  RunResult run(Pattern& pattern, std::vector<Call> calls, std::chrono::milliseconds deadline) {
    Plan plan{std::move(calls), deadline};
    census::Scope scope;
    const auto start = Clock::now();
    RunResult r;
    r.out = pattern.run(plan, client_->fetch());
    r.took = Clock::now() - start;
    r.live_at_return = scope.mark_returned();
    return r;
  }

  std::int64_t stat(const char* field) const {
    std::int64_t sum = 0;
    for (const char* s : {"a", "b", "c"}) sum += fleet_->stats(s).value(field, std::int64_t{0});
    return sum;
  }
  // The mock notices a client leaving asynchronously: poll up to 3 s.
  std::int64_t wait_stat(const char* field, std::int64_t at_least) const {
    const auto start = Clock::now();
    std::int64_t v = stat(field);
    while (v < at_least && Clock::now() - start < 3s) {
      std::this_thread::sleep_for(5ms);
      v = stat(field);
    }
    return v;
  }
  std::uint64_t late_completions() const {
    return census::totals().late_completions - before_.late_completions;
  }

  std::unique_ptr<mock::MockFleet> fleet_;
  std::shared_ptr<http::Client> client_ = http::Client::create();
  census::Totals before_;
};

class ExhibitMockTest : public MockBackedTest, public ::testing::WithParamInterface<Traits> {
 protected:
  void SetUp() override {
    MockBackedTest::SetUp();
    pattern_ = make_pattern(GetParam().name);
    ASSERT_NE(pattern_, nullptr);
  }
  std::unique_ptr<Pattern> pattern_;
};

TEST_P(ExhibitMockTest, HealthyIsComplete) {
  const RunResult r = run(*pattern_, {call("a"), call("b"), call("c")}, 2s);
  EXPECT_EQ(r.out.verdict, Verdict::complete) << r.out.error;
  EXPECT_EQ(r.out.error, "");
  ASSERT_EQ(r.out.slots.size(), 3u);
  for (const auto& s : r.out.slots) {
    ASSERT_TRUE(s.has_value());
    EXPECT_EQ(s->status, 200);
    EXPECT_EQ(s->body.size(), 64u);
  }
  EXPECT_EQ(wait_stat("completed", 3), 3);
  EXPECT_EQ(stat("client_aborts"), 0);
}

TEST_P(ExhibitMockTest, SlowServiceBeyondTheDeadline) {
  const Traits t = GetParam();
  const RunResult r = run(*pattern_, {call("a"), call("b"), call("c", "delay_ms=2500")}, 150ms);
  if (has_timeout(t)) {
    EXPECT_LT(r.took, 150ms + kMargin);
    EXPECT_EQ(r.out.verdict, Verdict::timed_out);
    EXPECT_FALSE(r.out.slots[2].has_value());
    EXPECT_EQ(r.out.slots[0].has_value(), t.keeps_partial);  // partial results
    EXPECT_EQ(r.out.slots[1].has_value(), t.keeps_partial);
  } else {
    EXPECT_GE(r.took, kSlow - 10ms);  // the overshoot: it waited for the slow call
    EXPECT_EQ(r.out.verdict, Verdict::complete);
  }
  EXPECT_EQ(r.live_at_return > 0, t.leaks);
  ASSERT_TRUE(census::wait_idle(10s));
  if (t.cancels) {
    EXPECT_GE(wait_stat("client_aborts", 1), 1);
  } else {
    EXPECT_EQ(stat("client_aborts"), 0);
  }
  EXPECT_EQ(late_completions() > 0, t.leaks);
}

TEST_P(ExhibitMockTest, FailFastCancelsSiblingsOnlyInTheGroup) {
  const Traits t = GetParam();
  // The failing call goes last, so both siblings are in flight when it fails
  // (a stopped group starts no more calls).
  const RunResult r = run(
      *pattern_,
      {call("a", "delay_ms=2500"), call("b", "delay_ms=2500"), call("c", "status=503&delay_ms=50")},
      1000ms);
  if (t.returns_on_error) {
    EXPECT_LT(r.took, 700ms);  // long before the deadline
    EXPECT_EQ(r.out.error, "HTTP 503");
    ASSERT_TRUE(r.out.slots[2].has_value());
    EXPECT_EQ(r.out.slots[2]->status, 503);
  } else if (has_timeout(t)) {
    // The error did not end it; the deadline did (channel-soup: its timer,
    // restarted at the error's reply, ~50 ms in).
    EXPECT_GE(r.took, 990ms);
    EXPECT_LT(r.took, 1000ms + kMargin);
  } else {
    EXPECT_GE(r.took, kSlow - 10ms);
    EXPECT_EQ(r.out.error, "HTTP 503");
  }
  if (t.leaks) {
    EXPECT_GE(r.live_at_return, 2);
  } else {
    EXPECT_EQ(r.live_at_return, 0);
  }
  ASSERT_TRUE(census::wait_idle(10s));
  if (t.cancels) {
    EXPECT_GE(wait_stat("client_aborts", 2), 2);  // the siblings were stopped at the service
  } else {
    EXPECT_EQ(stat("client_aborts"), 0);
  }
  EXPECT_EQ(late_completions() >= 2, t.leaks);
}

TEST_P(ExhibitMockTest, HangLeavesNothingBehindOnlyWhenJoined) {
  const Traits t = GetParam();
  const RunResult r = run(*pattern_, {call("a"), call("b", "fault=hang"), call("c")}, 100ms);
  if (has_timeout(t)) {
    EXPECT_LT(r.took, 100ms + kMargin);
    EXPECT_EQ(r.out.verdict, Verdict::timed_out);
  } else {
    EXPECT_GE(r.took, kSlow - 100ms);  // sat out the hang until the mock closed it
  }
  ASSERT_EQ(r.out.slots.size(), 3u);
  // No answer from the hung call: an empty slot, or (for the one that waited
  // until the mock gave up) a transport error.
  EXPECT_FALSE(r.out.slots[1] && r.out.slots[1]->error == ReplyError::none);
  EXPECT_EQ(r.live_at_return == 0, !t.leaks);
  ASSERT_TRUE(census::wait_idle(10s));
  if (t.cancels) {
    // The service saw the client leave; it never had to give up itself.
    EXPECT_GE(wait_stat("client_aborts", 1), 1);
    EXPECT_EQ(stat("no_response"), 0);
  } else {
    // Nobody told the service: the hang ran until the mock closed it.
    EXPECT_GE(wait_stat("no_response", 1), 1);
    EXPECT_EQ(stat("client_aborts"), 0);
  }
}

INSTANTIATE_TEST_SUITE_P(Exhibits, ExhibitMockTest, ::testing::ValuesIn(kExhibits),
                         [](const auto& info) { return testing::test_name(info.param); });

TEST_F(MockBackedTest, BoundedGroupLimitSeenAtTheService) {
  auto bounded = make_pattern("bounded-group", {.limit = 3});
  std::vector<Call> calls(12, call("a", "delay_ms=30"));
  const RunResult r = run(*bounded, calls, 5s);
  EXPECT_EQ(r.out.verdict, Verdict::complete) << r.out.error;
  EXPECT_EQ(wait_stat("completed", 12), 12);
  const auto max_in_flight = fleet_->stats("a").value("max_in_flight", std::int64_t{0});
  EXPECT_LE(max_in_flight, 3);
  EXPECT_GE(max_in_flight, 2);
}

TEST_F(MockBackedTest, CollectAllKeepsEverySlotsOwnError) {
  auto collect = make_pattern("cancellable-group+collect-all");
  const RunResult r = run(
      *collect,
      {call("a", "status=503"), call("b", "status=500&delay_ms=200"), call("c", "delay_ms=250")},
      2s);
  ASSERT_TRUE(r.out.slots[0] && r.out.slots[1] && r.out.slots[2]);
  EXPECT_EQ(r.out.slots[0]->status, 503);
  EXPECT_EQ(r.out.slots[1]->status, 500);
  EXPECT_EQ(r.out.slots[1]->error, ReplyError::http);
  EXPECT_EQ(r.out.slots[2]->status, 200);
  EXPECT_EQ(r.out.verdict, Verdict::partial);
  EXPECT_EQ(r.out.error, "HTTP 503");
  EXPECT_EQ(stat("client_aborts"), 0);
}

TEST_F(MockBackedTest, IgnoresStopWaitsForItsSlowServiceAndAbortsTheRest) {
  // Call 0 ignores its token: the service answers it at 600 ms, long past
  // the 100 ms deadline, and the group waits; the hung sibling is aborted at
  // the deadline (the service sees the client leave), and nothing is left.
  auto ignores = make_pattern("cancellable-group+ignores-stop");
  const RunResult r =
      run(*ignores, {call("a", "delay_ms=600"), call("b", "fault=hang"), call("c")}, 100ms);
  EXPECT_GE(r.took, 590ms);
  EXPECT_LT(r.took, kSlow - 500ms);  // not the hang's 2.5 s
  EXPECT_EQ(r.live_at_return, 0);
  ASSERT_TRUE(r.out.slots[0].has_value());
  EXPECT_EQ(r.out.slots[0]->status, 200);
  EXPECT_EQ(r.out.verdict, Verdict::timed_out);
  EXPECT_EQ(wait_stat("client_aborts", 1), 1);
  EXPECT_EQ(fleet_->stats("a").value("client_aborts", std::int64_t{-1}), 0);
  EXPECT_EQ(late_completions(), 0u);
}

}  // namespace
}  // namespace orchlab

// What each exhibit does, against an in-process fake service: the same
// behaviours exhibits_mock_test.cpp checks over real HTTP, without sockets.
#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "exhibit_traits.hpp"
#include "fake_fetch.hpp"
#include "orchlab/census.hpp"
#include "orchlab/pattern.hpp"

namespace orchlab {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using testing::fake_call;
using testing::fake_fetch;
using testing::FakeStats;

using testing::kExhibits;
using testing::kMargin;
using testing::kSlow;
using testing::kSlowMs;
using testing::Timeout;
using testing::Traits;

struct RunResult {
  Outcome out;
  Clock::duration took;
  int live_at_return = 0;
};

class ExhibitFakeTest : public ::testing::TestWithParam<Traits> {
 protected:
  void SetUp() override {
    // bounded-group at its default limit (16) behaves as cancellable-group
    // here; BoundedGroupCapsCallsInFlight tests the limit.
    pattern_ = make_pattern(GetParam().name);
    ASSERT_NE(pattern_, nullptr);
    before_ = census::totals();
  }
  // Leaked threads must never outlive the test (LeakSanitizer, next test's counts).
  void TearDown() override { ASSERT_TRUE(census::wait_idle(10s)); }

  RunResult run(std::vector<Call> calls, std::chrono::milliseconds deadline) {
    Plan plan{std::move(calls), deadline};
    census::Scope scope;
    const auto start = Clock::now();
    RunResult r;
    r.out = pattern_->run(plan, fetch_);
    r.took = Clock::now() - start;
    r.live_at_return = scope.mark_returned();
    return r;
  }
  std::uint64_t late_completions() const {
    return census::totals().late_completions - before_.late_completions;
  }

  std::shared_ptr<FakeStats> stats_ = std::make_shared<FakeStats>();
  Fetch fetch_ = fake_fetch(stats_);
  std::unique_ptr<Pattern> pattern_;
  census::Totals before_;
};

TEST_P(ExhibitFakeTest, HealthyIsComplete) {
  const RunResult r = run({fake_call(5), fake_call(10), fake_call(5)}, 2s);
  EXPECT_EQ(r.out.verdict, Verdict::complete) << r.out.error;
  EXPECT_EQ(r.out.error, "");
  ASSERT_EQ(r.out.slots.size(), 3u);
  for (const auto& s : r.out.slots) {
    ASSERT_TRUE(s.has_value());
    EXPECT_EQ(s->status, 200);
  }
  EXPECT_EQ(stats_->aborts.load(), 0);
}

TEST_P(ExhibitFakeTest, SlowCallBeyondTheDeadline) {
  const Traits t = GetParam();
  const RunResult r = run({fake_call(5), fake_call(5), fake_call(kSlowMs)}, 150ms);
  if (has_timeout(t)) {  // per_result: the timer restarted at the last fast reply, ~5 ms in
    EXPECT_GE(r.took, 140ms);
    EXPECT_LT(r.took, 150ms + kMargin);
    EXPECT_EQ(r.out.verdict, Verdict::timed_out);
    EXPECT_EQ(r.out.error, "deadline exceeded");
    EXPECT_FALSE(r.out.slots[2].has_value());
    // Partial results: the fast calls' slots survive, except where the
    // slots cannot be read before the latch opens.
    EXPECT_EQ(r.out.slots[0].has_value(), t.keeps_partial);
    EXPECT_EQ(r.out.slots[1].has_value(), t.keeps_partial);
  } else {
    EXPECT_GE(r.took, kSlow - 10ms);  // it waited for the slow call: the overshoot
    EXPECT_EQ(r.out.verdict, Verdict::complete);
  }
  EXPECT_EQ(r.live_at_return > 0, t.leaks);
  EXPECT_EQ(stats_->aborts.load(), t.cancels ? 1 : 0);
  ASSERT_TRUE(census::wait_idle(10s));
  EXPECT_EQ(late_completions() > 0, t.leaks);
}

TEST_P(ExhibitFakeTest, FailFastError) {
  const Traits t = GetParam();
  // The failing call goes last, so both siblings are running when it fails
  // (a stopped group starts no more calls).
  const RunResult r = run({fake_call(kSlowMs), fake_call(kSlowMs), fake_call(5, 503)}, 1000ms);
  ASSERT_EQ(r.out.slots.size(), 3u);
  ASSERT_TRUE(!t.keeps_partial || r.out.slots[2].has_value());
  if (t.returns_on_error) {
    EXPECT_LT(r.took, 700ms);  // long before the deadline
    EXPECT_EQ(r.out.error, "HTTP 503");
    EXPECT_EQ(r.out.slots[2]->status, 503);
  } else if (has_timeout(t)) {
    // The error did not end it; the deadline did (channel-soup: its timer,
    // restarted at the error's reply, ~5 ms in).
    EXPECT_GE(r.took, 990ms);
    EXPECT_LT(r.took, 1000ms + kMargin);
    EXPECT_EQ(r.out.verdict, Verdict::timed_out);
  } else {
    EXPECT_GE(r.took, kSlow - 10ms);
    EXPECT_EQ(r.out.error, "HTTP 503");
  }
  EXPECT_EQ(stats_->aborts.load(), t.cancels ? 2 : 0);
  EXPECT_EQ(r.live_at_return > 0, t.leaks);
  if (t.leaks) {
    EXPECT_GE(r.live_at_return, 2);
  }
  ASSERT_TRUE(census::wait_idle(10s));
  EXPECT_EQ(late_completions() >= 2, t.leaks);
}

TEST_P(ExhibitFakeTest, HangLeavesNothingBehindOnlyWhenJoined) {
  const Traits t = GetParam();
  const RunResult r = run({fake_call(5), fake_call(kSlowMs), fake_call(5)}, 100ms);
  if (has_timeout(t)) {
    EXPECT_LT(r.took, 100ms + kMargin);
    EXPECT_EQ(r.out.verdict, Verdict::timed_out);
  } else {
    EXPECT_GE(r.took, kSlow - 10ms);  // it sits out the whole hang
  }
  ASSERT_EQ(r.out.slots.size(), 3u);
  EXPECT_EQ(r.out.slots[1].has_value(), !has_timeout(t));  // answered only if waited for
  EXPECT_EQ(r.live_at_return == 0, !t.leaks);
  EXPECT_EQ(stats_->aborts.load(), t.cancels ? 1 : 0);
}

TEST_P(ExhibitFakeTest, ErrorBeforeTheSiblingsAnswer) {
  const Traits t = GetParam();
  // The error at ~5 ms, the siblings at 300 ms, the deadline far away: who
  // returns on the error, and who waits for the siblings (channel-soup, whose
  // loop never looks at errors; latch-select, whose latch opens only when
  // every call is done; the exhibits that wait for all by design).
  const RunResult r = run({fake_call(300), fake_call(300), fake_call(5, 503)}, 2000ms);
  ASSERT_EQ(r.out.slots.size(), 3u);
  EXPECT_EQ(r.out.error, "HTTP 503");
  if (t.returns_on_error) {
    EXPECT_LT(r.took, 200ms);
    EXPECT_EQ(r.out.verdict, Verdict::failed);
    EXPECT_FALSE(r.out.slots[0].has_value());
  } else {
    EXPECT_GE(r.took, 290ms);   // it waited for the siblings...
    EXPECT_LT(r.took, 1500ms);  // ...not for the deadline
    EXPECT_EQ(r.out.verdict, Verdict::partial);
    for (const auto& s : r.out.slots) EXPECT_TRUE(s.has_value());
  }
  // A joined exhibit leaves nothing; a leaky one that waited for every reply
  // may still count a thread that has sent but not yet ended.
  if (!t.leaks) {
    EXPECT_EQ(r.live_at_return, 0);
  } else if (t.returns_on_error) {
    EXPECT_GE(r.live_at_return, 2);
  }
  EXPECT_EQ(stats_->aborts.load(), t.returns_on_error && t.cancels ? 2 : 0);
}

TEST_P(ExhibitFakeTest, StaggeredRepliesAgainstTheTimer) {
  const Traits t = GetParam();
  // Replies at 0.6, 1.2 and 1.8 deadlines. A fixed deadline ends the wait at
  // 400 ms, before the last reply; the article's time.After in the loop
  // restarts with every reply and never fires (overshoot: 0.8 deadline); no
  // timeout waits for all.
  const RunResult r = run({fake_call(240), fake_call(480), fake_call(720)}, 400ms);
  ASSERT_EQ(r.out.slots.size(), 3u);
  switch (t.timeout) {
    case Timeout::fixed:
      EXPECT_GE(r.took, 390ms);
      EXPECT_LT(r.took, 400ms + kMargin);
      EXPECT_EQ(r.out.verdict, Verdict::timed_out);
      EXPECT_FALSE(r.out.slots[2].has_value());
      EXPECT_EQ(r.out.slots[0].has_value(), t.keeps_partial);
      break;
    case Timeout::per_result:
    case Timeout::none:
      EXPECT_GE(r.took, 710ms);  // past the deadline: the last reply was waited for
      EXPECT_LT(r.took, 720ms + kMargin);
      EXPECT_EQ(r.out.verdict, Verdict::complete) << r.out.error;
      for (const auto& s : r.out.slots) EXPECT_TRUE(s.has_value());
      break;
  }
}

TEST_P(ExhibitFakeTest, OutcomeHasOneSlotPerCall) {
  const RunResult none = run({}, 100ms);
  EXPECT_TRUE(none.out.slots.empty());
  EXPECT_EQ(none.out.verdict, Verdict::complete);
  // Slot i answers call i, though the calls end in the reverse order.
  std::vector<Call> calls;
  for (int i = 0; i < 7; ++i) calls.push_back(fake_call(5 + 15 * (6 - i), 200 + i));
  const RunResult r = run(calls, 5s);
  EXPECT_EQ(r.out.verdict, Verdict::complete) << r.out.error;
  ASSERT_EQ(r.out.slots.size(), 7u);
  for (int i = 0; i < 7; ++i) {
    ASSERT_TRUE(r.out.slots[i].has_value()) << i;
    EXPECT_EQ(r.out.slots[i]->status, 200 + i);
  }
}

INSTANTIATE_TEST_SUITE_P(Exhibits, ExhibitFakeTest, ::testing::ValuesIn(kExhibits),
                         [](const auto& info) { return testing::test_name(info.param); });

TEST(ExhibitFakeSpecificTest, CollectAllKeepsEverySlotsOwnError) {
  auto stats = std::make_shared<FakeStats>();
  // Far apart in time, so "first error" is the 503 even on a loaded machine.
  const Plan plan{{fake_call(5, 503), fake_call(200, 500), fake_call(250)}, 2s};
  auto collect = make_pattern("cancellable-group+collect-all");
  const Outcome out = collect->run(plan, fake_fetch(stats));
  ASSERT_TRUE(out.slots[0] && out.slots[1] && out.slots[2]);
  EXPECT_EQ(out.slots[0]->status, 503);
  EXPECT_EQ(out.slots[0]->error, ReplyError::http);
  EXPECT_EQ(out.slots[1]->status, 500);
  EXPECT_EQ(out.slots[2]->status, 200);
  EXPECT_EQ(out.verdict, Verdict::partial);
  EXPECT_EQ(out.error, "HTTP 503");
  EXPECT_EQ(stats->aborts.load(), 0);

  // The same plan under cancel_siblings: the first error empties the rest.
  const Plan slow_siblings{{fake_call(5, 503), fake_call(800, 500), fake_call(800)}, 2s};
  const Outcome cancelled =
      make_pattern("cancellable-group")->run(slow_siblings, fake_fetch(stats));
  EXPECT_EQ(cancelled.slots[0]->status, 503);
  EXPECT_FALSE(cancelled.slots[2].has_value());
  EXPECT_EQ(cancelled.verdict, Verdict::failed);
  // Every sibling started before the error was stopped; later ones never started.
  EXPECT_EQ(stats->aborts.load(), stats->requests.load() - 4);
}

TEST(ExhibitFakeSpecificTest, BoundedGroupCapsCallsInFlight) {
  auto stats = std::make_shared<FakeStats>();
  std::vector<Call> calls(24, fake_call(20));
  auto bounded = make_pattern("bounded-group", {.limit = 4});
  const Outcome out = bounded->run({calls, 5s}, fake_fetch(stats));
  EXPECT_EQ(out.verdict, Verdict::complete) << out.error;
  EXPECT_EQ(stats->requests.load(), 24);
  EXPECT_LE(stats->max_in_flight.load(), 4);
  EXPECT_GE(stats->max_in_flight.load(), 2);

  // Longer calls here, so that all 24 threads overlap even when starting one
  // takes milliseconds (a loaded machine under TSan).
  auto unbounded = make_pattern("cancellable-group");
  auto stats2 = std::make_shared<FakeStats>();
  unbounded->run({std::vector<Call>(24, fake_call(300)), 5s}, fake_fetch(stats2));
  EXPECT_GT(stats2->max_in_flight.load(), 4);  // without the limit the fan-out is unbounded
}

TEST(ExhibitFakeSpecificTest, GroupJoinsAFetchThatIgnoresItsToken) {
  // The group is only as prompt as its Fetch: it joins, so it overshoots
  // instead of leaking.
  auto stats = std::make_shared<FakeStats>();
  census::Scope scope;
  const auto start = Clock::now();
  const Outcome out =
      make_pattern("cancellable-group")
          ->run({{fake_call(5), fake_call(600, 200, true)}, 100ms}, fake_fetch(stats));
  EXPECT_GE(Clock::now() - start, 590ms);
  EXPECT_EQ(scope.mark_returned(), 0);
  EXPECT_EQ(out.error, "deadline exceeded");
}

TEST(ExhibitFakeSpecificTest, IgnoresStopWaitsForTheCallThatIgnoresItsToken) {
  // cancellable-group+ignores-stop makes call 0 with a token that never
  // fires: the group stops call 1 at the deadline, then joins call 0 when it
  // ends (600 ms), leaving nothing behind. cancellable-group, the same plan,
  // stops both at the deadline.
  const std::vector<Call> calls{fake_call(600), fake_call(testing::kSlowMs), fake_call(5)};
  auto stats = std::make_shared<FakeStats>();
  census::Scope scope;
  auto start = Clock::now();
  const Outcome out =
      make_pattern("cancellable-group+ignores-stop")->run({calls, 100ms}, fake_fetch(stats));
  const auto took = Clock::now() - start;
  EXPECT_GE(took, 590ms);
  EXPECT_LT(took, kSlow);  // call 1 was stopped, not waited for
  EXPECT_EQ(scope.mark_returned(), 0);
  ASSERT_EQ(out.slots.size(), 3u);
  ASSERT_TRUE(out.slots[0].has_value());  // the ignoring call's late answer is kept
  EXPECT_EQ(out.slots[0]->error, ReplyError::none);
  EXPECT_FALSE(out.slots[1].has_value());
  EXPECT_EQ(out.verdict, Verdict::timed_out);
  EXPECT_EQ(out.error, "deadline exceeded");
  EXPECT_EQ(stats->aborts.load(), 1);  // call 1 only

  auto control = std::make_shared<FakeStats>();
  start = Clock::now();
  make_pattern("cancellable-group")->run({calls, 100ms}, fake_fetch(control));
  EXPECT_LT(Clock::now() - start, 100ms + kMargin);
  EXPECT_EQ(control->aborts.load(), 2);
}

TEST(ExhibitFakeSpecificTest, IgnoresStopOutlivesTheFirstErrorToo) {
  // The first error stops the siblings that carry the group's token, not call 0.
  auto stats = std::make_shared<FakeStats>();
  const auto start = Clock::now();
  const Outcome out =
      make_pattern("cancellable-group+ignores-stop")
          ->run({{fake_call(400), fake_call(5, 503), fake_call(testing::kSlowMs)}, 5s},
                fake_fetch(stats));
  EXPECT_GE(Clock::now() - start, 390ms);
  EXPECT_EQ(out.error, "HTTP 503");
  EXPECT_EQ(out.verdict, Verdict::partial);  // call 0's answer arrived, call 2 was stopped
  EXPECT_EQ(stats->aborts.load(), 1);
}

}  // namespace
}  // namespace orchlab

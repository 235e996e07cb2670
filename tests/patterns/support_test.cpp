// Census, ProfiledMutex, Channel and the pattern registry.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <latch>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "orchlab/census.hpp"
#include "orchlab/channel.hpp"
#include "orchlab/pattern.hpp"
#include "orchlab/profiled_mutex.hpp"

namespace orchlab {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

class CensusTest : public ::testing::Test {
 protected:
  void TearDown() override { ASSERT_TRUE(census::wait_idle(10s)); }
};

TEST_F(CensusTest, LeakedTaskCountedAtReturn) {
  const auto before = census::totals();
  auto release = std::make_shared<std::latch>(1);
  int live = 0;
  std::shared_ptr<census::Orchestration> orch;
  {
    census::Scope scope;
    orch = scope.orchestration();
    go([release] { release->wait(); });
    live = scope.mark_returned();
    EXPECT_TRUE(orch->returned());
    EXPECT_GT(orch->returned_at_ns(), 0);
  }
  EXPECT_EQ(live, 1);
  EXPECT_EQ(orch->live_tasks(), 1);
  release->count_down();
  ASSERT_TRUE(census::wait_idle(5s));
  EXPECT_EQ(orch->live_tasks(), 0);
  const auto after = census::totals();
  EXPECT_EQ(after.tasks_started - before.tasks_started, 1u);
  EXPECT_EQ(after.leaked_at_return - before.leaked_at_return, 1u);
  EXPECT_EQ(after.orchestrations - before.orchestrations, 1u);
  EXPECT_EQ(after.live_tasks, 0);
}

TEST_F(CensusTest, ZombieTimeIsTimePastReturn) {
  const auto before = census::totals();
  {
    census::Scope scope;
    go([] { std::this_thread::sleep_for(100ms); });
  }  // the destructor marks the return
  ASSERT_TRUE(census::wait_idle(5s));
  const auto zombie = census::totals().zombie_ns - before.zombie_ns;
  EXPECT_GE(zombie, 50'000'000u);
  EXPECT_LT(zombie, 5'000'000'000u);
}

TEST_F(CensusTest, TaskFinishedBeforeReturnIsNeitherLeakedNorZombie) {
  const auto before = census::totals();
  {
    census::Scope scope;
    std::jthread t = spawn_tracked([](std::stop_token) { census::note_completion(); });
    t.join();
    EXPECT_EQ(scope.mark_returned(), 0);
  }
  const auto after = census::totals();
  EXPECT_EQ(after.leaked_at_return - before.leaked_at_return, 0u);
  EXPECT_EQ(after.zombie_ns - before.zombie_ns, 0u);
  EXPECT_EQ(after.completions - before.completions, 1u);
  EXPECT_EQ(after.late_completions - before.late_completions, 0u);
}

TEST_F(CensusTest, LateCompletionCounted) {
  const auto before = census::totals();
  auto release = std::make_shared<std::latch>(1);
  {
    census::Scope scope;
    go([release] {
      release->wait();
      census::note_completion();  // the current orchestration is inherited
    });
  }
  release->count_down();
  ASSERT_TRUE(census::wait_idle(5s));
  EXPECT_EQ(census::totals().late_completions - before.late_completions, 1u);
}

TEST_F(CensusTest, ALedgerKeepsItsOwnOrchestrationsLeftoversToItself) {
  // Repetition A leaks a task that ends only while repetition B is measured:
  // its zombie time and late completion are A's, B's ledger stays clean.
  auto release = std::make_shared<std::latch>(1);
  const auto a = census::install_ledger();
  {
    census::Scope scope;
    go([release] {
      release->wait();
      std::this_thread::sleep_for(20ms);
      census::note_completion();
    });
  }
  EXPECT_EQ(a->totals().leaked_at_return, 1u);
  EXPECT_EQ(a->totals().live_tasks, 1);
  const auto b = census::install_ledger();
  {
    census::Scope scope;
    spawn_tracked([](std::stop_token) { census::note_completion(); }).join();
  }
  release->count_down();
  ASSERT_TRUE(census::wait_idle(5s));
  census::uninstall_ledger();
  const auto ta = a->totals();
  EXPECT_EQ(ta.orchestrations, 1u);
  EXPECT_EQ(ta.tasks_finished, 1u);
  EXPECT_EQ(ta.live_tasks, 0);
  EXPECT_EQ(ta.late_completions, 1u);
  EXPECT_GE(ta.zombie_ns, 10'000'000u);
  const auto tb = b->totals();
  EXPECT_EQ(tb.orchestrations, 1u);
  EXPECT_EQ(tb.tasks_started, 1u);
  EXPECT_EQ(tb.leaked_at_return, 0u);
  EXPECT_EQ(tb.completions, 1u);
  EXPECT_EQ(tb.late_completions, 0u);
  EXPECT_EQ(tb.zombie_ns, 0u);
  // Outside any ledger, orchestrations count in the process totals only.
  { census::Scope scope; }
  EXPECT_EQ(b->totals().orchestrations, 1u);
}

TEST_F(CensusTest, SpawnedThreadsInheritTheCurrentOrchestration) {
  census::Scope scope;
  std::shared_ptr<census::Orchestration> seen_go, seen_nested;
  std::latch done(2);
  go([&] {
    seen_go = census::current();
    go([&] {
      seen_nested = census::current();
      done.count_down();
    });
    done.count_down();
  });
  done.wait();
  ASSERT_TRUE(census::wait_idle(5s));
  EXPECT_EQ(seen_go, scope.orchestration());
  EXPECT_EQ(seen_nested, scope.orchestration());
  EXPECT_EQ(census::current(), scope.orchestration());
}

TEST_F(CensusTest, ScopesNestAndCurrentGuardRestores) {
  EXPECT_EQ(census::current(), nullptr);
  census::Scope outer;
  {
    census::Scope inner;
    EXPECT_EQ(census::current(), inner.orchestration());
    {
      census::CurrentGuard guard(outer.orchestration());
      EXPECT_EQ(census::current(), outer.orchestration());
    }
    EXPECT_EQ(census::current(), inner.orchestration());
    EXPECT_NE(inner.orchestration()->id(), outer.orchestration()->id());
  }
  EXPECT_EQ(census::current(), outer.orchestration());
}

TEST_F(CensusTest, WaitIdleTimesOutWhileATaskLives) {
  auto release = std::make_shared<std::latch>(1);
  go([release] { release->wait(); });
  EXPECT_FALSE(census::wait_idle(50ms));
  release->count_down();
  EXPECT_TRUE(census::wait_idle(5s));
}

TEST_F(CensusTest, OsThreadCountSeesBlockedThreads) {
  // Absolute, not a delta: threads of earlier tests may still be exiting.
  constexpr int kBlocked = 4;
  std::latch started(kBlocked), release(1);
  std::vector<std::jthread> threads;
  for (int i = 0; i < kBlocked; ++i)
    threads.emplace_back([&] {
      started.count_down();
      release.wait();
    });
  started.wait();
  EXPECT_GE(os_thread_count(), kBlocked + 1);
  release.count_down();
}

TEST(ProfiledMutexTest, UncontendedLockCountsNothing) {
  ProfiledMutex m;
  for (int i = 0; i < 100; ++i) std::lock_guard lock(m);
  EXPECT_EQ(m.stats().contended, 0u);
  EXPECT_EQ(m.stats().wait_ns, 0u);
}

TEST(ProfiledMutexTest, ContentionCountedWithWaitTime) {
  ProfiledMutex m;
  const auto before = lock_stats();
  std::latch held(1);
  std::jthread holder;
  {
    std::unique_lock lock(m);
    holder = std::jthread([&] {
      held.count_down();
      std::lock_guard inner(m);  // waits for the 50 ms below
    });
    held.wait();
    std::this_thread::sleep_for(50ms);
  }
  holder.join();
  EXPECT_EQ(m.stats().contended, 1u);
  EXPECT_GE(m.stats().wait_ns, 20'000'000u);
  const auto after = lock_stats();
  EXPECT_GE(after.contended - before.contended, 1u);
  EXPECT_GE(after.wait_ns - before.wait_ns, 20'000'000u);
}

TEST(ChannelTest, BufferedSemantics) {
  Channel<int> ch(2);
  EXPECT_EQ(ch.capacity(), 2u);
  EXPECT_TRUE(ch.try_send(1));
  EXPECT_TRUE(ch.send(2));
  EXPECT_FALSE(ch.try_send(3));  // full
  EXPECT_EQ(ch.size(), 2u);
  EXPECT_EQ(ch.receive(), 1);
  EXPECT_EQ(ch.try_receive(), 2);
  EXPECT_EQ(ch.try_receive(), std::nullopt);
  EXPECT_THROW(Channel<int>(0), std::invalid_argument);
}

TEST(ChannelTest, SendBlocksWhileFull) {
  Channel<int> ch(1);
  ASSERT_TRUE(ch.send(1));
  std::atomic<bool> sent{false};
  std::latch sending(1);
  std::jthread sender([&] {
    sending.count_down();  // about to send into a full channel
    ch.send(2);
    sent = true;
  });
  sending.wait();
  std::this_thread::sleep_for(50ms);
  EXPECT_FALSE(sent.load());
  EXPECT_EQ(ch.receive(), 1);
  sender.join();
  EXPECT_TRUE(sent.load());
  EXPECT_EQ(ch.receive(), 2);
}

TEST(ChannelTest, CloseDrainsThenEnds) {
  Channel<int> ch(3);
  ch.send(7);
  ch.close();
  ch.close();  // idempotent
  EXPECT_TRUE(ch.closed());
  EXPECT_FALSE(ch.send(8));
  EXPECT_FALSE(ch.try_send(8));
  EXPECT_EQ(ch.receive(), 7);
  EXPECT_EQ(ch.receive(), std::nullopt);
  EXPECT_EQ(ch.receive_for(1s), std::nullopt);  // closed: no waiting
}

TEST(ChannelTest, CloseWakesBlockedReceiverAndSender) {
  Channel<int> in(1), out(1);
  out.send(0);
  std::optional<int> got = 42;
  bool send_result = true;
  std::jthread receiver([&] { got = in.receive(); });
  std::jthread sender([&] { send_result = out.send(1); });
  std::this_thread::sleep_for(30ms);
  in.close();
  out.close();
  receiver.join();
  sender.join();
  EXPECT_EQ(got, std::nullopt);
  EXPECT_FALSE(send_result);
}

TEST(ChannelTest, ReceiveForTimesOut) {
  Channel<int> ch(1);
  const auto start = Clock::now();
  EXPECT_EQ(ch.receive_for(50ms), std::nullopt);
  EXPECT_GE(Clock::now() - start, 45ms);
  EXPECT_FALSE(ch.closed());
}

TEST(ChannelTest, SelectTimesOutWhenNothingIsReady) {
  std::vector<std::shared_ptr<Channel<int>>> chans{std::make_shared<Channel<int>>(1),
                                                   std::make_shared<Channel<int>>(1)};
  const auto start = Clock::now();
  EXPECT_FALSE(select(chans, 50ms).has_value());
  EXPECT_GE(Clock::now() - start, 45ms);
}

TEST(ChannelTest, SelectReturnsTheReadyChannel) {
  Channel<int> a(1), b(1);
  std::vector<Channel<int>*> chans{&a, nullptr, &b};
  b.send(5);
  auto r = select(chans, 1s);
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->index, 2u);
  EXPECT_EQ(r->value, 5);
}

TEST(ChannelTest, SelectWakesOnASendFromAnotherThread) {
  Channel<int> a(1), b(1);
  std::vector<Channel<int>*> chans{&a, &b};
  std::jthread sender([&] {
    std::this_thread::sleep_for(30ms);
    a.send(9);
  });
  const auto start = Clock::now();
  auto r = select(chans, 5s);
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->index, 0u);
  EXPECT_EQ(r->value, 9);
  EXPECT_LT(Clock::now() - start, 2s);
}

TEST(ChannelTest, SelectSeesAClosedChannelAsReady) {
  Channel<int> a(1), b(1);
  std::vector<Channel<int>*> chans{&a, &b};
  b.close();
  auto r = select(chans, 1s);
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->index, 1u);
  EXPECT_EQ(r->value, std::nullopt);
}

TEST(ChannelTest, SelectLoopCollectsEveryValueExactlyOnce) {
  constexpr int kChannels = 8;
  std::vector<std::shared_ptr<Channel<int>>> chans;
  std::vector<std::jthread> senders;
  for (int i = 0; i < kChannels; ++i) {
    chans.push_back(std::make_shared<Channel<int>>(1));
    senders.emplace_back([ch = chans.back(), i] { ch->send(i * 10); });
  }
  std::vector<int> seen(kChannels, -1);
  for (int n = 0; n < kChannels; ++n) {
    auto r = select(chans, 5s);
    ASSERT_TRUE(r.has_value());
    ASSERT_TRUE(r->value.has_value());
    EXPECT_EQ(seen[r->index], -1);
    seen[r->index] = *r->value;
  }
  for (int i = 0; i < kChannels; ++i) EXPECT_EQ(seen[i], i * 10);
}

TEST(PatternRegistryTest, NamesInReportOrder) {
  const std::vector<std::string> expected{"channel-soup",
                                          "channel-soup+fail-fast",
                                          "latch-select",
                                          "mutex-aggregation",
                                          "slots-aggregation",
                                          "cancellable-group",
                                          "bounded-group",
                                          "cancellable-group+collect-all",
                                          "cancellable-group+ignores-stop",
                                          "async-group",
                                          "async-group+collect-all"};
  EXPECT_EQ(pattern_names(), expected);
  for (const auto& name : expected) {
    auto p = make_pattern(name);
    ASSERT_NE(p, nullptr) << name;
    EXPECT_EQ(p->name(), name);
  }
  EXPECT_EQ(make_pattern("no-such-pattern"), nullptr);
}

TEST(PatternRegistryTest, ClassifyFollowsTheSlots) {
  const Reply ok{200, "x", ReplyError::none};
  const Reply bad{503, "", ReplyError::http};
  using Slots = std::vector<std::optional<Reply>>;
  EXPECT_EQ(classify(Slots{ok, ok}, false), Verdict::complete);
  EXPECT_EQ(classify(Slots{ok, ok}, true), Verdict::complete);
  EXPECT_EQ(classify(Slots{ok, std::nullopt}, true), Verdict::timed_out);
  EXPECT_EQ(classify(Slots{std::nullopt, std::nullopt}, true), Verdict::timed_out);
  EXPECT_EQ(classify(Slots{ok, std::nullopt}, false), Verdict::partial);
  EXPECT_EQ(classify(Slots{ok, bad}, true), Verdict::partial);
  EXPECT_EQ(classify(Slots{bad, std::nullopt}, false), Verdict::failed);
  EXPECT_EQ(classify(Slots{}, false), Verdict::complete);
  EXPECT_EQ(to_string(Verdict::timed_out), "timed_out");
  EXPECT_EQ(to_string(ReplyError::transport), "transport");
}

TEST(PatternRegistryTest, ReplyErrorCodes) {
  EXPECT_FALSE(to_error_code(Reply{200, "", ReplyError::none}));
  const auto http = to_error_code(Reply{503, "", ReplyError::http});
  EXPECT_EQ(http.value(), 503);
  EXPECT_EQ(http.message(), "HTTP 503");
  EXPECT_EQ(to_error_code(Reply{0, "", ReplyError::cancelled}), ReplyError::cancelled);
  EXPECT_EQ(to_error_code(Reply{0, "", ReplyError::transport}).message(), "transport error");
}

}  // namespace
}  // namespace orchlab

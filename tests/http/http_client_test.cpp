// The cancellable pooled HTTP client against a real in-process MockFleet on
// loopback. Time bounds are generous (shared machine, sanitizers); what each
// test asserts is an order of magnitude: a cancelled 2 s call must come back
// in well under a second.
#include "orchlab/http_client.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <stdexcept>
#include <stop_token>
#include <string>
#include <thread>
#include <vector>

#include "orchlab/census.hpp"
#include "orchlab/mock/fleet.hpp"

namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using orchlab::Call;
using orchlab::ReplyError;
using orchlab::http::Client;
using orchlab::http::PoolOptions;

std::int64_t ms_since(Clock::time_point start) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start).count();
}

/// One fast mock service; tests ask for delays and statuses in the query.
class HttpClientTest : public ::testing::Test {
 protected:
  void SetUp() override {
    fleet_ = orchlab::mock::MockFleet::from_json(nlohmann::json::parse(R"({
      "bind": "127.0.0.1",
      "services": [{"name": "svc", "port": 0, "body_bytes": 64,
                    "latency": {"dist": "fixed", "ms": 0}},
                   {"name": "flaky", "port": 0, "seed": 7,
                    "faults": [{"kind": "status", "code": 503, "probability": 0.5}]}]})"),
                                                 orchlab::mock::ServerOptions{.threads = 2});
    base_ = fleet_->url("svc");
  }

  nlohmann::json stats() const { return fleet_->stats("svc"); }

  /// Polls the mock until `field` reaches `at_least` or 3 s pass; returns
  /// the last value seen.
  std::int64_t wait_stat(const char* field, std::int64_t at_least) const {
    const auto start = Clock::now();
    std::int64_t value = 0;
    while (ms_since(start) < 3000) {
      value = stats().value(field, std::int64_t{0});
      if (value >= at_least) break;
      std::this_thread::sleep_for(5ms);
    }
    return value;
  }

  std::unique_ptr<orchlab::mock::MockFleet> fleet_;
  std::string base_;
};

TEST_F(HttpClientTest, GetOkReturnsBody) {
  auto client = Client::create();
  const auto reply = client->get(Call{base_ + "/users"}, {});
  EXPECT_EQ(reply.error, ReplyError::none);
  EXPECT_EQ(reply.status, 200);
  EXPECT_EQ(reply.body.size(), 64u);
  EXPECT_EQ(client->stats().requests, 1u);
  EXPECT_EQ(wait_stat("completed", 1), 1);
}

TEST_F(HttpClientTest, Non2xxIsHttpError) {
  auto client = Client::create();
  const auto reply = client->get(Call{base_ + "/x?status=503"}, {});
  EXPECT_EQ(reply.error, ReplyError::http);
  EXPECT_EQ(reply.status, 503);
  EXPECT_EQ(client->stats().transport_errors, 0u);
}

TEST_F(HttpClientTest, RefusedPortIsFastTransportError) {
  // Nothing listens on port 1 of loopback: connect() is refused at once,
  // long before a 5 s connect timeout would end it.
  auto client = Client::create(PoolOptions{.connect_timeout = std::chrono::milliseconds(5000)});
  const auto start = Clock::now();
  const auto reply = client->get(Call{"http://127.0.0.1:1/"}, {});
  EXPECT_EQ(reply.error, ReplyError::transport);
  EXPECT_EQ(reply.status, 0);
  EXPECT_LT(ms_since(start), 2000);
  EXPECT_EQ(client->stats().transport_errors, 1u);
}

TEST_F(HttpClientTest, BadUrlIsTransportError) {
  auto client = Client::create();
  EXPECT_EQ(client->get(Call{"ftp://127.0.0.1/"}, {}).error, ReplyError::transport);
  EXPECT_EQ(client->get(Call{"127.0.0.1:80/"}, {}).error, ReplyError::transport);
}

TEST_F(HttpClientTest, CancelInFlightReturnsPromptlyAndServerSeesAbort) {
  auto client = Client::create();
  std::stop_source stop;
  std::jthread stopper([&] {
    std::this_thread::sleep_for(100ms);
    stop.request_stop();
  });
  const auto start = Clock::now();
  const auto reply = client->get(Call{base_ + "/slow?delay_ms=5000"}, stop.get_token());
  const auto took = ms_since(start);
  EXPECT_EQ(reply.error, ReplyError::cancelled);
  EXPECT_GE(took, 90);
  EXPECT_LT(took, 100 + 1500);  // soon after the stop, long before the 5 s reply
  EXPECT_EQ(client->stats().cancelled, 1u);
  // The cancellation reached the service: it closed the delay early.
  EXPECT_GE(wait_stat("client_aborts", 1), 1);
  EXPECT_EQ(stats().value("completed", 0), 0);
}

TEST_F(HttpClientTest, CancelledConnectionIsNotReused) {
  auto client = Client::create(PoolOptions{.max_conns_per_host = 1});
  ASSERT_EQ(client->get(Call{base_ + "/"}, {}).error, ReplyError::none);
  std::stop_source stop;
  std::jthread stopper([&] {
    std::this_thread::sleep_for(50ms);
    stop.request_stop();
  });
  EXPECT_EQ(client->get(Call{base_ + "/?delay_ms=2000"}, stop.get_token()).error,
            ReplyError::cancelled);
  // The next call must get a fresh, healthy connection (not the shut-down one).
  EXPECT_EQ(client->get(Call{base_ + "/"}, {}).error, ReplyError::none);
  EXPECT_EQ(client->stats().connections_opened, 2u);
}

TEST_F(HttpClientTest, StopBeforeSendSendsNothing) {
  auto client = Client::create();
  std::stop_source stop;
  stop.request_stop();
  const auto reply = client->get(Call{base_ + "/?delay_ms=2000"}, stop.get_token());
  EXPECT_EQ(reply.error, ReplyError::cancelled);
  const auto s = client->stats();
  EXPECT_EQ(s.cancelled, 1u);
  EXPECT_EQ(s.connections_opened, 0u);
  EXPECT_EQ(stats().value("requests", 0), 0);
}

TEST_F(HttpClientTest, StopAtAnyMomentIsNeverLost) {
  // Stops land at spread offsets around the start of the request: before the
  // token check, between it and the send, in flight. None may be lost (a lost
  // stop waits out the whole 3 s delay).
  auto client = Client::create(PoolOptions{.max_conns_per_host = 4});
  int cancelled = 0;
  for (int i = 0; i < 60; ++i) {
    std::stop_source stop;
    std::jthread stopper([&, i] {
      std::this_thread::sleep_for(std::chrono::microseconds((i * 37) % 600));
      stop.request_stop();
    });
    const auto start = Clock::now();
    const auto reply = client->get(Call{base_ + "/?delay_ms=3000"}, stop.get_token());
    EXPECT_LT(ms_since(start), 1500) << "stop lost at iteration " << i;
    cancelled += reply.error == ReplyError::cancelled;
  }
  EXPECT_EQ(cancelled, 60);
}

TEST_F(HttpClientTest, CancelWhileWaitingForPoolSlot) {
  auto client = Client::create(PoolOptions{.max_conns_per_host = 1});
  std::stop_source hold;
  std::jthread holder([&] { client->get(Call{base_ + "/?delay_ms=3000"}, hold.get_token()); });
  ASSERT_GE(wait_stat("in_flight", 1), 1);  // the only slot is taken

  std::stop_source stop;
  std::jthread stopper([&] {
    std::this_thread::sleep_for(100ms);
    stop.request_stop();
  });
  const auto start = Clock::now();
  const auto reply = client->get(Call{base_ + "/"}, stop.get_token());
  const auto took = ms_since(start);
  EXPECT_EQ(reply.error, ReplyError::cancelled);
  EXPECT_GE(took, 90);
  EXPECT_LT(took, 100 + 1500);  // the slot is held for 3 s
  const auto s = client->stats();
  EXPECT_EQ(s.acquires_waited, 1u);
  EXPECT_GE(s.wait_ns.max(), 90'000'000u);
  hold.request_stop();
}

TEST_F(HttpClientTest, PoolLimitHonoured) {
  constexpr std::size_t kLimit = 3;
  auto client = Client::create(PoolOptions{.max_conns_per_host = kLimit});
  {
    std::vector<std::jthread> callers;
    for (int t = 0; t < 12; ++t) {
      callers.emplace_back([&] {
        for (int i = 0; i < 5; ++i) {
          EXPECT_EQ(client->get(Call{base_ + "/?delay_ms=10"}, {}).error, ReplyError::none);
        }
      });
    }
  }
  EXPECT_EQ(wait_stat("completed", 60), 60);
  const auto mock = stats();
  EXPECT_LE(mock.value("max_open_connections", 0), static_cast<int>(kLimit));
  EXPECT_LE(mock.value("max_in_flight", 0), static_cast<int>(kLimit));
  const auto s = client->stats();
  EXPECT_LE(s.connections_opened, kLimit);
  EXPECT_GT(s.acquires_waited, 0u);  // 12 callers on 3 connections must queue
  EXPECT_EQ(s.wait_ns.count(), 60u);
}

TEST_F(HttpClientTest, KeepAliveReusesConnections) {
  auto client = Client::create(PoolOptions{.max_conns_per_host = 2});
  for (int i = 0; i < 200; ++i) {
    ASSERT_EQ(client->get(Call{base_ + "/"}, {}).error, ReplyError::none);
  }
  EXPECT_LE(client->stats().connections_opened, 2u);
  EXPECT_LE(stats().value("max_open_connections", 0), 2);
}

TEST_F(HttpClientTest, SendsDeadlineHeader) {
  auto client = Client::create();
  Call call{base_ + "/?delay_ms=100"};
  // CLOCK_MONOTONIC is std::chrono::steady_clock on Linux.
  call.deadline_ns =
      std::chrono::duration_cast<std::chrono::nanoseconds>((Clock::now() + 20ms).time_since_epoch())
          .count();
  EXPECT_EQ(client->get(call, {}).error, ReplyError::none);
  // The mock only knows the deadline passed because the header arrived.
  EXPECT_EQ(wait_stat("completed_after_deadline", 1), 1);
  EXPECT_GT(stats().value("work_past_deadline_ms", 0.0), 40.0);
}

TEST_F(HttpClientTest, KeyHeaderMakesFaultsReplay) {
  // The mock draws a keyed call's fault from (seed, key) instead of its
  // request counter: with the header, one key always gets the same answer.
  auto client = Client::create();
  const std::string url = fleet_->url("flaky") + "/";
  int ok_keys = 0;
  for (std::uint64_t key = 1; key <= 20; ++key) {
    Call call{url};
    call.key = key;
    const int first = client->get(call, {}).status;
    for (int again = 0; again < 4; ++again) {
      EXPECT_EQ(client->get(call, {}).status, first) << "key " << key;
    }
    ok_keys += first == 200;
  }
  // Half of the keys fail: both answers occur (all 20 alike: p = 2^-19).
  EXPECT_GT(ok_keys, 0);
  EXPECT_LT(ok_keys, 20);
}

TEST_F(HttpClientTest, NoDeadlineHeaderNoPastDeadlineWork) {
  auto client = Client::create();
  EXPECT_EQ(client->get(Call{base_ + "/?delay_ms=50"}, {}).error, ReplyError::none);
  EXPECT_EQ(wait_stat("completed", 1), 1);
  EXPECT_EQ(stats().value("completed_after_deadline", 0), 0);
}

TEST_F(HttpClientTest, LateCompletionCountedAfterOrchestrationReturned) {
  auto client = Client::create();
  const auto before = orchlab::census::totals();
  {
    orchlab::census::Scope scope;
    // A leaked call, as the anti-patterns make: it owns the client.
    orchlab::go(
        [fetch = client->fetch(), url = base_ + "/?delay_ms=200"] { fetch(Call{url}, {}); });
    scope.mark_returned();  // the orchestration gives up before the reply
  }
  ASSERT_TRUE(orchlab::census::wait_idle(5s));
  const auto after = orchlab::census::totals();
  EXPECT_EQ(after.late_completions - before.late_completions, 1u);
}

TEST_F(HttpClientTest, CompletionInTimeIsNotLate) {
  auto client = Client::create();
  const auto before = orchlab::census::totals();
  {
    orchlab::census::Scope scope;
    EXPECT_EQ(client->get(Call{base_ + "/"}, {}).error, ReplyError::none);
    scope.mark_returned();
  }
  const auto after = orchlab::census::totals();
  EXPECT_EQ(after.completions - before.completions, 1u);
  EXPECT_EQ(after.late_completions - before.late_completions, 0u);
}

TEST_F(HttpClientTest, CancelledCallIsNotACompletion) {
  auto client = Client::create();
  const auto before = orchlab::census::totals();
  {
    orchlab::census::Scope scope;
    // Stopped while in flight (the service has the request), not before.
    std::stop_source stop;
    std::jthread stopper([&] {
      std::this_thread::sleep_for(50ms);
      stop.request_stop();
    });
    EXPECT_EQ(client->get(Call{base_ + "/?delay_ms=2000"}, stop.get_token()).error,
              ReplyError::cancelled);
    scope.mark_returned();
  }
  EXPECT_GE(wait_stat("client_aborts", 1), 1);  // it did reach the service
  EXPECT_EQ(orchlab::census::totals().completions - before.completions, 0u);
}

TEST_F(HttpClientTest, FetchKeepsClientAliveForLeakedCaller) {
  auto client = Client::create();
  auto fetch = client->fetch();
  std::weak_ptr<Client> weak = client;
  client.reset();  // the orchestration's owner is gone; a leaked call is not
  ASSERT_FALSE(weak.expired());
  std::jthread leaked([fetch = std::move(fetch), url = base_ + "/?delay_ms=50"]() mutable {
    EXPECT_EQ(fetch(Call{url}, {}).error, ReplyError::none);
    fetch = nullptr;  // the last owner: the client is destroyed here, idle
  });
  leaked.join();
  EXPECT_TRUE(weak.expired());
}

// Defect: the outcome was read while the stop callback was still registered.
// A stop landing after the read but before the scope closed stop()ped the
// connection and set its flag, yet it went back to the pool: the next
// borrower came back cancelled without sending anything.
TEST_F(HttpClientTest, AStopAfterTheAnswerDoesNotPoisonThePool) {
  auto client = Client::create(PoolOptions{.max_conns_per_host = 1});
  std::stop_source first;
  orchlab::http::testing::after_get = [&] { first.request_stop(); };
  const auto answered = client->get(Call{base_ + "/one"}, first.get_token());
  orchlab::http::testing::after_get = nullptr;
  // The answer was complete before the stop: it counts.
  EXPECT_EQ(answered.error, ReplyError::none);
  EXPECT_EQ(answered.status, 200);
  const auto next = client->get(Call{base_ + "/two"}, {});
  EXPECT_EQ(next.error, ReplyError::none) << "the pool lent out a stopped connection";
  EXPECT_EQ(next.status, 200);
  EXPECT_EQ(client->stats().cancelled, 0u);
  EXPECT_EQ(client->stats().connections_opened, 2u) << "a stopped connection was reused";
}

// The same window reached by timing: a stopper sweeping from before the
// request to after the answer (the hook widens the window after Get to
// 300 us so a sweep in 10 us steps lands in it). Whatever the first call's
// fate, the next one is never cancelled.
TEST_F(HttpClientTest, StopsSweptAcrossTheAnswerNeverReachTheNextBorrower) {
  auto client = Client::create(PoolOptions{.max_conns_per_host = 1});
  orchlab::http::testing::after_get = [] { std::this_thread::sleep_for(300us); };
  int answered_then_stopped = 0;
  for (int i = 0; i < 200; ++i) {
    std::stop_source source;
    std::jthread stopper([&source, i] {
      std::this_thread::sleep_for(std::chrono::microseconds(i * 10));
      source.request_stop();
    });
    const auto first = client->get(Call{base_ + "/swept"}, source.get_token());
    stopper.join();
    if (first.error == ReplyError::none) ++answered_then_stopped;
    const auto next = client->get(Call{base_ + "/next"}, {});
    ASSERT_EQ(next.error, ReplyError::none) << "after a stop " << i * 10 << " us in";
  }
  orchlab::http::testing::after_get = nullptr;
  // The sweep must have reached the window at all: some answers came first.
  EXPECT_GT(answered_then_stopped, 0);
}

// An exception between acquire and release (here thrown by the test hook)
// reaches the caller and gives the pool place back: with one place per host,
// a lost place would block the next call until its stop.
TEST_F(HttpClientTest, AnExceptionInACallGivesItsPoolPlaceBack) {
  auto client = Client::create(PoolOptions{.max_conns_per_host = 1});
  orchlab::http::testing::after_get = [] { throw std::runtime_error("injected"); };
  EXPECT_THROW((void)client->get(Call{base_ + "/throws"}, {}), std::runtime_error);
  orchlab::http::testing::after_get = nullptr;
  std::stop_source give_up;
  std::jthread watchdog([&give_up](std::stop_token st) {
    for (int i = 0; i < 300 && !st.stop_requested(); ++i) std::this_thread::sleep_for(10ms);
    give_up.request_stop();
  });
  const auto next = client->get(Call{base_ + "/after"}, give_up.get_token());
  watchdog.request_stop();
  EXPECT_EQ(next.error, ReplyError::none) << "the pool place was lost";
}

// pool_wait_ns has one definition in both clients (docs/http_client.md):
// from asking the pool for a connection until the call holds one and runs
// on, every acquire, an immediate one measured as it is. With the only place
// held for 200 ms, the second acquire waits about that long; the first one
// took its lock's time. (tests/async: the async client, the same.)
TEST_F(HttpClientTest, PoolWaitRunsFromAskingUntilHoldingAConnection) {
  auto client = Client::create(PoolOptions{.max_conns_per_host = 1});
  std::jthread holder([&] { client->get(Call{base_ + "/a?delay_ms=200"}, {}); });
  ASSERT_GE(wait_stat("in_flight", 1), 1);  // the only place is taken
  const auto asked = Clock::now();
  EXPECT_EQ(client->get(Call{base_ + "/b"}, {}).error, ReplyError::none);
  const auto asked_ms = ms_since(asked);
  holder.join();
  const auto s = client->stats();
  EXPECT_EQ(s.acquires_waited, 1u);
  ASSERT_EQ(s.wait_ns.count(), 2u);
  EXPECT_GT(s.wait_ns.min(), 0u);
  EXPECT_LT(s.wait_ns.min(), 50'000'000u);
  // The holder's 200 ms less the time it took the mock to see it.
  EXPECT_GE(s.wait_ns.max(), 100'000'000u);
  EXPECT_LE(s.wait_ns.max(), static_cast<std::uint64_t>(asked_ms + 1) * 1'000'000u);
}

}  // namespace

// The async client and Group machinery below the exhibit: the races the
// Pattern-level tests cannot steer (a cancellation that lands while a read's
// completion waits on the strand), exceptions that escape a call or a setup
// function, and inproc:// honouring a stop that fired before it started.
#include <gtest/gtest.h>

#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "async/client.hpp"
#include "async/group.hpp"
#include "orchlab/census.hpp"
#include "orchlab/mock/fleet.hpp"

namespace orchlab::async {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

std::unique_ptr<mock::MockFleet> one_service() {
  return mock::MockFleet::from_json(nlohmann::json::parse(R"({"services": [
      {"name": "a", "port": 0, "body_bytes": 64, "latency": {"dist": "fixed", "ms": 0}}]})"),
                                    mock::ServerOptions{.threads = 2});
}

// Defect: Beast's http::async_read loops over inner reads and never looks at
// a cancellation recorded between them. A cancel emitted while a completed
// inner read waits behind a busy strand reached no operation and was lost,
// so the slow body ran to its end (about 2 s) after the group had failed.
TEST(AsyncClientTest, CancelWhileAReadCompletionWaitsOnTheStrandIsNotLost) {
  auto fleet = one_service();
  const std::string base = fleet->url("a");
  Runtime runtime(2);
  Client client(runtime.context(), {.max_conns_per_host = 8});
  census::Scope scope;
  const auto t0 = Clock::now();
  // Client::get keeps a reference to its Call: they outlive the group.
  // A: 20 000 bytes at 10 000 B/s, a 200-byte piece every 20 ms.
  const Call a{base + "/a?fault=slow_body&bytes_per_s=10000&body_bytes=20000"};
  // B: the first error, at 100 ms.
  const Call b{base + "/b?status=503&delay_ms=100"};
  Outcome out = run_group(runtime, 10000ms, Policy::fail_fast, [&](Group& g) {
    g.go([&](Stop stop) { return client.get(a, stop); });
    g.go([&](Stop stop) { return client.get(b, stop); });
    // C: holds the strand from 95 to 135 ms, so that B's answer and A's next
    // piece both queue behind it.
    g.go([](Stop stop) -> Task<Reply> {
      asio::steady_timer timer(stop.executor(), 95ms);
      co_await timer.async_wait(stop.token());
      std::this_thread::sleep_for(40ms);
      co_return Reply{200, {}, ReplyError::none};
    });
  });
  const auto took = Clock::now() - t0;
  EXPECT_LT(took, 400ms) << "the slow body was not cancelled: "
                         << std::chrono::duration_cast<std::chrono::milliseconds>(took).count()
                         << " ms";
  EXPECT_EQ(out.verdict, Verdict::partial);  // C answered
  EXPECT_EQ(out.error, "HTTP 503");
  ASSERT_EQ(out.slots.size(), 3u);
  EXPECT_FALSE(out.slots[0].has_value()) << "A answered: it was never cancelled";
  EXPECT_TRUE(out.slots[2].has_value());
  EXPECT_EQ(client.stats().cancelled, 1u);
  // The service saw the client leave (it had 1.8 s of body still to send).
  std::int64_t aborts = 0;
  for (int i = 0; i < 100 && aborts == 0; ++i) {
    aborts = fleet->stats("a").value("client_aborts", std::int64_t{0});
    if (aborts == 0) std::this_thread::sleep_for(10ms);
  }
  EXPECT_EQ(aborts, 1);
}

// A pooled connection the service closed while it sat idle (its keep-alive
// timeout) is found out before a request is written on it: the call opens a
// new one and answers, and the dead one is counted, not used. A connection
// back in the pool a moment ago is reused without that check.
TEST(AsyncClientTest, AConnectionTheServiceClosedWhileIdleIsNotUsed) {
  auto fleet = mock::MockFleet::from_json(
      nlohmann::json::parse(R"({"services": [
      {"name": "a", "port": 0, "body_bytes": 64, "latency": {"dist": "fixed", "ms": 0}}]})"),
      mock::ServerOptions{.threads = 1, .idle_timeout = std::chrono::milliseconds(100)});
  Runtime runtime(1);
  Client client(runtime.context(), {.max_conns_per_host = 1});
  const Call call{fleet->url("a") + "/x"};
  auto one = [&] {
    census::Scope scope;
    return run_group(runtime, 2000ms, Policy::fail_fast,
                     [&](Group& g) { g.go([&](Stop stop) { return client.get(call, stop); }); });
  };
  ASSERT_EQ(one().verdict, Verdict::complete);
  ASSERT_EQ(one().verdict, Verdict::complete);  // at once: the same connection
  EXPECT_EQ(client.stats().connections_opened, 1u);
  EXPECT_EQ(client.stats().connections_reused, 1u);
  std::this_thread::sleep_for(400ms);  // the service closes it after 100 ms idle
  const Outcome after = one();
  EXPECT_EQ(after.verdict, Verdict::complete) << after.error;
  EXPECT_EQ(client.stats().stale_discarded, 1u);
  EXPECT_EQ(client.stats().connections_opened, 2u);
}

// Anything a setup function throws, std::exception or not, reaches the
// caller; the calls it had started are cancelled and ended first.
TEST(AsyncGroupExceptionTest, ANonStdExceptionFromSetupIsRethrownToTheCaller) {
  Runtime runtime(2);
  Client client(runtime.context(), {});
  const Call slow{"inproc://slow?delay_ms=10000"};
  census::Scope scope;
  const auto t0 = Clock::now();
  EXPECT_THROW(run_group(runtime, 20000ms, Policy::collect_all,
                         [&](Group& g) {
                           g.go([&](Stop stop) { return client.get(slow, stop); });
                           throw 42;
                         }),
               int);
  EXPECT_LT(Clock::now() - t0, 2000ms) << "the started call was not cancelled";
  EXPECT_EQ(scope.mark_returned(), 0);
  EXPECT_EQ(client.stats().cancelled, 1u);
}

TEST(AsyncGroupExceptionTest, AnExceptionFromACallCancelsItsSiblingsAndReachesTheCaller) {
  Runtime runtime(2);
  Client client(runtime.context(), {});
  const Call slow{"inproc://slow?delay_ms=10000"};
  const auto t0 = Clock::now();
  EXPECT_THROW(run_group(runtime, 20000ms, Policy::fail_fast,
                         [&](Group& g) {
                           g.go([&](Stop stop) { return client.get(slow, stop); });
                           g.go([](Stop) -> Task<Reply> {
                             throw std::string("not a std::exception");
                             co_return Reply{};
                           });
                         }),
               std::string);
  EXPECT_LT(Clock::now() - t0, 2000ms);
  EXPECT_EQ(client.stats().cancelled, 1u);
  // The runtime survived: the next group runs normally.
  const Call ok{"inproc://ok"};
  const Outcome out = run_group(runtime, 1000ms, Policy::fail_fast, [&](Group& g) {
    g.go([&](Stop stop) { return client.get(ok, stop); });
  });
  EXPECT_EQ(out.verdict, Verdict::complete);
}

// An exception between a call's acquire and its release (here from the test
// hook) reaches the caller and frees the pool place: with one place per host
// a lost one would make the next call wait until its deadline.
TEST(AsyncClientTest, AnExceptionInACallGivesItsPoolPlaceBack) {
  auto fleet = one_service();
  const Call call{fleet->url("a") + "/x"};
  Runtime runtime(2);
  Client client(runtime.context(), {.max_conns_per_host = 1});
  testing::after_acquire = [] { throw std::runtime_error("injected"); };
  EXPECT_THROW(
      run_group(runtime, 3000ms, Policy::fail_fast,
                [&](Group& g) { g.go([&](Stop stop) { return client.get(call, stop); }); }),
      std::runtime_error);
  testing::after_acquire = nullptr;
  const Outcome out = run_group(runtime, 3000ms, Policy::fail_fast, [&](Group& g) {
    g.go([&](Stop stop) { return client.get(call, stop); });
  });
  EXPECT_EQ(out.verdict, Verdict::complete) << out.error;
  EXPECT_EQ(client.stats().acquires_waited, 0u) << "the pool place was lost";
}

// Acquires parked on a full pool race the releases of other groups' calls
// (other strands, other threads) and their own group's cancellation: a
// waiter is resumed exactly once, by whichever comes first, and a place
// granted to a call cancelled at the same moment is given back. A lost place
// would leave the last group, 8 calls on a pool of 2, waiting to its
// deadline; a place counted back twice would let it run 3 requests at once.
// (The service's max_open_connections over the storm is no check: a
// connection the client closed counts there until the service sees it go.)
TEST(AsyncClientTest, ParkedAcquiresRaceReleasesAndCancellationsWithoutLosingAPlace) {
  auto fleet = one_service();
  const std::string base = fleet->url("a");
  Runtime runtime(2);
  Client client(runtime.context(), {.max_conns_per_host = 2});
  std::vector<Call> calls;
  for (int i = 0; i < 6; ++i) calls.push_back(Call{base + "/x?delay_ms=" + std::to_string(i % 3)});
  std::vector<Call> errors;
  for (int i = 1; i <= 4; ++i)
    errors.push_back(Call{"inproc://e?status=503&delay_ms=" + std::to_string(i)});
  std::vector<std::thread> callers;
  for (int t = 0; t < 4; ++t) {
    callers.emplace_back([&, t] {
      for (int r = 0; r < 25; ++r) {
        (void)run_group(runtime, 5000ms, Policy::fail_fast, [&](Group& g) {
          for (const Call& c : calls)
            g.go([&c, &client](Stop stop) { return client.get(c, stop); });
          const Call& e = errors[static_cast<std::size_t>(t + r) % errors.size()];
          g.go([&e, &client](Stop stop) { return client.get(e, stop); });
        });
      }
    });
  }
  for (std::thread& t : callers) t.join();
  EXPECT_GT(client.stats().acquires_waited, 0u);
  EXPECT_GT(client.stats().cancelled, 0u);

  std::this_thread::sleep_for(100ms);  // the service sees the closed connections go
  fleet->reset();
  const Call y{base + "/y?delay_ms=20"};
  const auto t0 = Clock::now();
  const Outcome out = run_group(runtime, 5000ms, Policy::fail_fast, [&](Group& g) {
    for (int i = 0; i < 8; ++i) g.go([&y, &client](Stop stop) { return client.get(y, stop); });
  });
  EXPECT_EQ(out.verdict, Verdict::complete) << out.error;
  EXPECT_LT(Clock::now() - t0, 2000ms) << "a pool place was lost";
  EXPECT_LE(fleet->stats("a").at("max_in_flight").get<long>(), 2);
}

// timed_out has one definition: the orchestration returned at or after its
// deadline with a slot empty. Here the last call ends past the deadline while
// it holds the strand, before the deadline timer's handler could run; the
// group used to call that `failed` where a thread exhibit says `timed_out`.
TEST(AsyncGroupVerdictTest, TimedOutIsTheClockNotWhetherTheTimerRan) {
  Runtime runtime(2);
  const Outcome out = run_group(runtime, 50ms, Policy::collect_all, [&](Group& g) {
    g.go([](Stop) -> Task<Reply> { co_return Reply{0, {}, ReplyError::cancelled}; });
    g.go([](Stop) -> Task<Reply> {
      std::this_thread::sleep_for(100ms);  // holds the strand across the deadline
      co_return Reply{503, {}, ReplyError::http};
    });
  });
  EXPECT_EQ(out.verdict, Verdict::timed_out);
  EXPECT_EQ(out.error, "HTTP 503");
}

// Stop's contract: a call whose stop fired before it began does nothing.
// Here the first error has come before the second call reaches its get(),
// so no cancellation emit reaches its timer; inproc:// with a delay used to
// start its timer regardless and ran the whole 10 s.
TEST(AsyncClientTest, InprocChecksTheStopBeforeItStarts) {
  Runtime runtime(2);
  Client client(runtime.context(), {});
  const Call slow{"inproc://slow?delay_ms=10000"};
  const auto t0 = Clock::now();
  const Outcome out = run_group(runtime, 20000ms, Policy::fail_fast, [&](Group& g) {
    g.go([](Stop) -> Task<Reply> { co_return Reply{503, {}, ReplyError::http}; });
    // Yields the strand first (the 503 above answered inside its go()), so
    // this call's stop has fired before get() begins.
    g.go([&](Stop stop) -> Task<Reply> {
      for (int i = 0; i < 3; ++i) co_await asio::post(stop.executor(), stop.token());
      co_return co_await client.get(slow, stop);
    });
  });
  EXPECT_LT(Clock::now() - t0, 2000ms);
  ASSERT_EQ(out.slots.size(), 2u);
  EXPECT_FALSE(out.slots[1].has_value());
  EXPECT_EQ(client.stats().cancelled, 1u);
}

// What a CallObserver (--trace) saw, per call key.
class Recorder final : public CallObserver {
 public:
  struct Seen {
    std::int64_t start = 0, reply = 0, end = 0;
    Reply answer;
  };
  void* call_started(const Call& call) noexcept override {
    if (call.key == 0) return nullptr;  // not recorded: neither of the others comes
    std::lock_guard lock(mu);
    Seen& s = seen[call.key];
    s.start = now();
    return &s;
  }
  void call_replied(void* handle, const Reply& reply) noexcept override {
    std::lock_guard lock(mu);
    auto* s = static_cast<Seen*>(handle);
    s->reply = now();
    s->answer = reply;
  }
  void task_ended(void* handle) noexcept override {
    std::lock_guard lock(mu);
    static_cast<Seen*>(handle)->end = now();
  }
  static std::int64_t now() {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch())
        .count();
  }
  std::mutex mu;
  std::map<std::uint64_t, Seen> seen;  // node-based: a handle stays valid
};

// --trace: the client reports each keyed call's start, its reply (an answer
// or the cancel) and its coroutine's end, all before the group returns; a
// call the observer declines and every call after the observer is removed
// cost it nothing.
TEST(AsyncClientTest, AnObserverSeesEachCallsStartReplyAndEnd) {
  auto fleet = one_service();
  Runtime runtime(2);
  Client client(runtime.context(), {.max_conns_per_host = 8});
  Recorder recorder;
  client.set_observer(&recorder);
  Call now{"inproc://now"}, http{fleet->url("a") + "/x?delay_ms=20"},
      slow{"inproc://s?delay_ms=10000"}, unkeyed{"inproc://unkeyed"};
  now.key = 1;
  http.key = 2;
  slow.key = 3;
  auto run = [&] {
    census::Scope scope;
    return run_group(runtime, 200ms, Policy::collect_all, [&](Group& g) {
      for (const Call* c : {&now, &http, &slow, &unkeyed})
        g.go([&, c](Stop stop) { return client.get(*c, stop); });
    });
  };
  const auto before = Recorder::now();
  const Outcome out = run();
  const auto after = Recorder::now();
  EXPECT_EQ(out.verdict, Verdict::timed_out);
  {
    std::lock_guard lock(recorder.mu);
    ASSERT_EQ(recorder.seen.size(), 3u) << "the unkeyed call is not recorded";
    for (const auto& [key, s] : recorder.seen) {
      EXPECT_LE(before, s.start) << key;
      EXPECT_LE(s.start, s.reply) << key;
      EXPECT_LE(s.reply, s.end) << key;
      EXPECT_LE(s.end, after) << key << ": the call's coroutine ended before the group returned";
    }
    EXPECT_EQ(recorder.seen[1].answer.status, 200);
    EXPECT_EQ(recorder.seen[2].answer.status, 200);
    EXPECT_GE(recorder.seen[2].reply - recorder.seen[2].start, 20'000'000) << "the mock's delay";
    EXPECT_EQ(recorder.seen[3].answer.error, ReplyError::cancelled);
    EXPECT_GE(recorder.seen[3].reply - before, 200'000'000) << "cancelled at the deadline";
    recorder.seen.clear();
  }
  client.set_observer(nullptr);
  run();
  std::lock_guard lock(recorder.mu);
  EXPECT_TRUE(recorder.seen.empty());
}

}  // namespace
}  // namespace orchlab::async

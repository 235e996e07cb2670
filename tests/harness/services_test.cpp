// Unit tests of the services the harness calls: --services parsing and URL
// validation, origins for admin routes, server totals that are null (never
// 0) where a service did not report, the deadline header per host, and the
// orchlab-mock child process.
#include "orchlab/harness/services.hpp"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <thread>

#include "orchlab/harness/cli.hpp"
#include "orchlab/harness/report.hpp"
#include "orchlab/pattern.hpp"

#ifndef ORCHLAB_MOCK_BINARY
#define ORCHLAB_MOCK_BINARY ""
#endif

namespace orchlab::harness {
namespace {

using nlohmann::json;

Command parse(std::vector<const char*> argv) {
  argv.insert(argv.begin(), "orchlab");
  return parse_command_line(static_cast<int>(argv.size()), argv.data());
}

std::string usage_error(std::vector<const char*> argv) {
  try {
    parse(std::move(argv));
  } catch (const UsageError& e) {
    return e.what();
  }
  return "(accepted)";
}

TEST(ServicesCliTest, ModesAndUrlsAsWritten) {
  EXPECT_EQ(parse({"run"}).run.services, RunOptions::ServicesMode::embedded);
  EXPECT_EQ(parse({"run", "--services", "inprocess"}).run.services,
            RunOptions::ServicesMode::inprocess);
  const auto r =
      parse({"run", "--services", "http://127.0.0.1:8080/api/users?tier=gold,http://[::1]:9/",
             "--services", "http://h/x?a=1&b=2", "--mock-binary", "/opt/m"})
          .run;
  EXPECT_EQ(r.services, RunOptions::ServicesMode::remote);
  EXPECT_EQ(r.service_urls,
            (std::vector<std::string>{"http://h/x?a=1&b=2"}));  // the last --services wins
  EXPECT_EQ(r.mock_binary, "/opt/m");
  EXPECT_TRUE(parse({"run", "--services", "http://h:1", "--services", "embedded"})
                  .run.service_urls.empty());
}

TEST(ServicesCliTest, BadUrlsNameTheUrlAndWhy) {
  const std::vector<std::pair<const char*, const char*>> cases = {
      {"https://h:1/x", "scheme is not http"},
      {"h:1/x", "no scheme"},
      {"http://:1/x", "no host"},
      {"http:///x", "no host"},
      {"http://h:port/x", "\"port\" is not a number"},
      {"http://h:0/x", "1..65535"},
      {"http://h:70000", "1..65535"},
      {"http://h:/x", "is not a number"},
      {"http://[::1/x", "unclosed ["},
      {"http://h:1/x#frag", "fragment"},
      {"http://u@h:1/x", "user info"},
  };
  for (const auto& [url, why] : cases) {
    const auto msg = usage_error({"run", "--services", url});
    EXPECT_NE(msg.find("--services"), std::string::npos) << msg;
    EXPECT_NE(msg.find(std::string("\"") + url + "\""), std::string::npos) << msg;
    EXPECT_NE(msg.find(why), std::string::npos) << url << ": " << msg;
  }
  EXPECT_NE(usage_error({"run", "--services", "http://h:1,,http://h:2"}).find("empty URL"),
            std::string::npos);
  EXPECT_NE(usage_error({"run", "--mock-binary"}).find("--mock-binary"), std::string::npos);
}

TEST(ServicesCliTest, HelpListsTheServiceFlags) {
  const auto u = usage();
  for (const char* text : {"--services", "inprocess", "--mock-binary", "ORCHLAB_MOCK",
                           "../mock_services/orchlab-mock"})
    EXPECT_NE(u.find(text), std::string::npos) << text;
}

TEST(ServicesUrlTest, OriginIsSchemeHostPort) {
  std::string why;
  auto o = parse_service_url("http://127.0.0.1:8080/api/users?tier=gold", why);
  ASSERT_TRUE(o) << why;
  EXPECT_EQ(o->origin, "http://127.0.0.1:8080");
  EXPECT_EQ(o->host, "127.0.0.1");
  EXPECT_EQ(o->port, 8080);
  o = parse_service_url("http://[::1]:9/x", why);
  ASSERT_TRUE(o) << why;
  EXPECT_EQ(o->origin, "http://[::1]:9");
  EXPECT_EQ(o->host, "::1");
  o = parse_service_url("http://example.com?q=1", why);
  ASSERT_TRUE(o) << why;
  EXPECT_EQ(o->origin, "http://example.com:80");
}

TEST(ServicesUrlTest, RemoteUrlsAreCalledAsWritten) {
  const std::vector<std::string> urls{"http://127.0.0.1:1/api/users?tier=gold",
                                      "http://127.0.0.1:2/"};
  const auto s = Services::remote(urls);
  EXPECT_EQ(s->urls(), urls);
  EXPECT_FALSE(s->in_process());
  EXPECT_FALSE(s->child_pid());
  EXPECT_THROW(Services::remote({"ftp://x"}), std::invalid_argument);
}

TEST(ServicesStatsTest, AServiceThatDoesNotAnswerIsNamedWithItsReason) {
  // Port 1 on loopback: nothing listens, the connect is refused at once.
  const auto s = Services::remote({"http://127.0.0.1:1/api"});
  const auto readings = s->stats();
  ASSERT_EQ(readings.size(), 1u);
  EXPECT_FALSE(readings[0].doc);
  EXPECT_EQ(readings[0].service, "http://127.0.0.1:1/api");
  EXPECT_FALSE(readings[0].error.empty());
}

StatsReading reading(const std::string& name, std::optional<json> doc) {
  StatsReading r;
  r.service = name;
  r.doc = std::move(doc);
  if (!r.doc) r.error = "no answer: Connection";
  return r;
}

// orchlab-mock's /__stats: the whole service's counts at the top, the
// window's (calls marked X-Orchlab-Phase: window) in "window". The harness
// reads the window's; the top level here holds decoys it must not read.
json full_stats(int requests, int aborts, double lag_p99, int max_in_flight) {
  return {{"requests", 1000 + requests},
          {"client_aborts", 1000 + aborts},
          {"completed_after_deadline", 1000},
          {"work_past_deadline_ms", 1000.0},
          {"abort_lag_ms", {{"count", 1}, {"p99", 1000.0}}},
          {"max_in_flight", max_in_flight},
          {"max_open_connections", max_in_flight + 1},
          {"window",
           {{"requests", requests},
            {"client_aborts", aborts},
            {"completed_after_deadline", 1},
            {"work_past_deadline_ms", 2.5},
            {"abort_lag_ms", {{"count", 1}, {"p99", lag_p99}}}}}};
}

TEST(ServerDeltaTest, SumsDeltasAndTakesTheWorstService) {
  const auto t =
      server_delta({reading("a", full_stats(10, 1, 0, 0)), reading("b", std::nullopt)},
                   {reading("a", full_stats(30, 4, 7, 5)), reading("b", full_stats(5, 2, 9, 3))});
  ASSERT_TRUE(t);
  EXPECT_EQ(t->requests, 20u + 5u);  // b had no `before`: counted from its reset
  EXPECT_EQ(t->client_aborts, 3u + 2u);
  EXPECT_EQ(t->abort_lag_p99_ms, 9.0);
  EXPECT_EQ(t->max_in_flight, 5u);
  EXPECT_EQ(t->max_open_connections, 6u);  // the busiest service's peak, not a sum
  EXPECT_EQ(t->unreachable, 0);
  EXPECT_TRUE(t->notes.empty());
}

TEST(ServerDeltaTest, AbortLagIsTheWorstSignedP99AndNullWithoutAborts) {
  json early = full_stats(10, 2, -90, 1);
  json none = full_stats(10, 0, 0, 1);
  none["window"]["abort_lag_ms"] = {{"count", 0}, {"p99", nullptr}};
  auto t = server_delta({}, {reading("a", early), reading("b", none)});
  ASSERT_TRUE(t);
  // b saw no abort: it has no lag, and must not pull the worst up to 0.
  EXPECT_EQ(t->abort_lag_p99_ms, -90.0);
  EXPECT_TRUE(t->notes.empty());
  t = server_delta({}, {reading("a", none), reading("b", none)});
  ASSERT_TRUE(t);
  EXPECT_FALSE(t->abort_lag_p99_ms);
  ASSERT_EQ(t->notes.size(), 1u);
  EXPECT_NE(t->notes[0].find("no service saw a client abort"), std::string::npos) << t->notes[0];
}

TEST(ServerDeltaTest, AServiceWithoutStatsMakesEveryFieldNull) {
  const auto t =
      server_delta({reading("a", full_stats(0, 0, 0, 0)), reading("http://h:1/x", std::nullopt)},
                   {reading("a", full_stats(30, 4, 7, 5)), reading("http://h:1/x", std::nullopt)});
  ASSERT_TRUE(t);
  EXPECT_FALSE(t->requests);
  EXPECT_FALSE(t->client_aborts);
  EXPECT_FALSE(t->completed_after_deadline);
  EXPECT_FALSE(t->work_past_deadline_ms);
  EXPECT_FALSE(t->abort_lag_p99_ms);
  EXPECT_FALSE(t->max_in_flight);
  EXPECT_EQ(t->unreachable, 1);
  ASSERT_EQ(t->notes.size(), 1u);
  EXPECT_NE(t->notes[0].find("http://h:1/x did not report /__stats"), std::string::npos)
      << t->notes[0];
  EXPECT_NE(t->notes[0].find("Connection"), std::string::npos) << t->notes[0];
}

TEST(ServerDeltaTest, AMissingFieldIsNullForThatFieldOnly) {
  json partial = full_stats(30, 4, 7, 5);
  partial["window"].erase("client_aborts");
  partial["window"]["abort_lag_ms"].erase("p99");
  const auto t = server_delta({}, {reading("a", full_stats(1, 1, 1, 1)), reading("b", partial)});
  ASSERT_TRUE(t);
  EXPECT_FALSE(t->client_aborts);
  EXPECT_FALSE(t->abort_lag_p99_ms);
  EXPECT_EQ(t->requests, 31u);
  EXPECT_EQ(t->max_in_flight, 5u);
  ASSERT_EQ(t->notes.size(), 2u);
  EXPECT_NE(
      t->notes[0].find("server_client_aborts is null where service b answered /__stats without "
                       "\"window.client_aborts\""),
      std::string::npos)
      << t->notes[0];
  EXPECT_NE(t->notes[1].find("abort_lag_ms.p99"), std::string::npos) << t->notes[1];
}

TEST(ServerDeltaTest, AServiceWithoutWindowTotalsGivesNoCounts) {
  // A /__stats without "window" (not orchlab-mock, or an older one): its
  // counts would cover the warm-up's calls too, so they are not read.
  json old = full_stats(30, 4, 7, 5);
  old.erase("window");
  const auto t = server_delta({}, {reading("a", full_stats(1, 1, 1, 1)), reading("old", old)});
  ASSERT_TRUE(t);
  EXPECT_FALSE(t->requests);
  EXPECT_FALSE(t->client_aborts);
  EXPECT_FALSE(t->completed_after_deadline);
  EXPECT_FALSE(t->work_past_deadline_ms);
  EXPECT_FALSE(t->abort_lag_p99_ms);
  EXPECT_EQ(t->max_in_flight, 5u);  // a peak of the service, read at the top level
  EXPECT_EQ(t->unreachable, 0);
  ASSERT_EQ(t->notes.size(), 1u);
  EXPECT_NE(t->notes[0].find("service old answered /__stats without \"window\" totals"),
            std::string::npos)
      << t->notes[0];
}

// A repetition of claim-fail-fast as the issue found it: fan-out 3, every
// orchestration ended by the 503, and the warm-up's aborts counted too.
Measurement fail_fast(const std::string& pattern, std::uint64_t aborts) {
  Measurement m;
  m.scenario = "claim-fail-fast";
  m.pattern = pattern;
  m.fanout = 3;
  m.concurrency = 16;
  m.orchestrations = 1000;
  m.failed = 1000;
  m.calls = 3000;
  m.call_http_errors = 1000;
  m.call_cancelled = 2000;
  ServerTotals t;
  t.requests = 3000;
  t.client_aborts = aborts;
  t.completed_after_deadline = 0;
  t.work_past_deadline_ms = 0.0;
  m.server = t;
  return m;
}

TEST(InvariantTest, MoreAbortsThanSiblingsInAFirstErrorCellAreRefused) {
  for (const char* p : {"cancellable-group", "bounded-group", "async-group"}) {
    auto m = fail_fast(p, 2370);  // 2.37 per orchestration; at most 2 siblings exist
    EXPECT_EQ(refuse_impossible(m), 1) << p;
    EXPECT_FALSE(m.server->client_aborts) << p;
    EXPECT_EQ(m.server->requests, 3000u);  // the others stay
    ASSERT_EQ(m.notes.size(), 1u);
    EXPECT_NE(m.notes[0].find("server_client_aborts of claim-fail-fast/" + std::string(p) +
                              "/fanout:3/concurrency:16 repetition 1 refused (null): 2370 "
                              "client aborts (2.37 per orchestration)"),
              std::string::npos)
        << m.notes[0];
    // The report says null, and lab.notes why.
    const auto e = benchmark_entry(m);
    EXPECT_TRUE(e["server_client_aborts"].is_null());
    EXPECT_EQ(e["server_requests"], 3000);
    const auto doc = build_report(RunInfo{}, {m}, nullptr);
    EXPECT_NE(doc["lab"]["notes"][0].get<std::string>().find("refused"), std::string::npos);
  }
  // Exactly fan-out - 1 per orchestration is possible.
  auto m = fail_fast("async-group", 2000);
  EXPECT_EQ(refuse_impossible(m), 0);
  EXPECT_EQ(m.server->client_aborts, 2000u);
  EXPECT_TRUE(m.notes.empty());
  // The deadline can abort every call of an orchestration it ended.
  m = fail_fast("cancellable-group", 2100);
  m.failed = 900;
  m.timed_out = 100;
  EXPECT_EQ(refuse_impossible(m), 0);
  // A pattern that waits for every call is not a first-error cell: 2.37 is
  // possible there (its calls can all be cut off by the deadline).
  m = fail_fast("cancellable-group+collect-all", 2370);
  EXPECT_EQ(refuse_impossible(m), 0);
  EXPECT_EQ(m.server->client_aborts, 2370u);
}

TEST(InvariantTest, MoreAbortsThanCallsAndFewerRequestsThanAnswersAreRefused) {
  auto m = fail_fast("channel-soup", 3001);
  EXPECT_EQ(refuse_impossible(m), 1);
  EXPECT_FALSE(m.server->client_aborts);
  EXPECT_NE(m.notes.at(0).find("3001 client aborts for 3000 calls"), std::string::npos)
      << m.notes[0];
  m = fail_fast("channel-soup", 0);
  m.call_ok = 1500;
  m.server->requests = 2499;  // 1000 + 1500 answered over HTTP
  EXPECT_EQ(refuse_impossible(m), 1);
  EXPECT_FALSE(m.server->requests);
  EXPECT_EQ(m.server->client_aborts, 0u);
  EXPECT_NE(m.notes.at(0).find("2499 requests seen for 2500 calls answered over HTTP"),
            std::string::npos)
      << m.notes[0];
  // Unknown stays unknown, and nothing is checked without server counts.
  m = fail_fast("async-group", 2370);
  m.server->client_aborts.reset();
  EXPECT_EQ(refuse_impossible(m), 0);
  m.server.reset();
  EXPECT_EQ(refuse_impossible(m), 0);
}

TEST(HostLoadTest, AnotherBusyProcessIsSeenAndThisOneIsNot) {
  // A child that spins through the sample: another process using the CPU.
  const pid_t spinner = ::fork();
  ASSERT_GE(spinner, 0);
  if (spinner == 0) {
    const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(800);
    volatile std::uint64_t n = 0;
    while (std::chrono::steady_clock::now() < until) n = n + 1;
    ::_exit(0);
  }
  const auto h = sys::measure_host_load(std::chrono::milliseconds(400));
  ::kill(spinner, SIGKILL);
  ::waitpid(spinner, nullptr, 0);
  EXPECT_GE(h.measured_for_s, 0.39);
  EXPECT_GE(h.cpus, 1);
  ASSERT_TRUE(h.load_avg_1m);
  ASSERT_TRUE(h.cpu_busy_share);
  ASSERT_TRUE(h.steal_share);
  EXPECT_GT(*h.cpu_busy_share, 0.0);
  EXPECT_LE(*h.cpu_busy_share, 1.0);
  bool seen = false;
  for (const auto& p : h.busy_processes) {
    EXPECT_NE(p.pid, ::getpid()) << "this process is not another one";
    EXPECT_GE(p.cpu_share, 0.05);
    seen = seen || p.pid == spinner;
  }
  EXPECT_TRUE(seen || h.busy_processes.size() == 5u) << "the spinner is among the busiest";
  EXPECT_EQ(h.busy, !h.why.empty());
  // Cut short when asked (Ctrl-C before the first cell).
  const auto cut = sys::measure_host_load(std::chrono::seconds(5), [] { return true; });
  EXPECT_LT(cut.measured_for_s, 1.0);
}

TEST(DeadlineHeaderTest, AbsoluteOnThisHostRelativeElsewhere) {
  for (const char* host : {"127.0.0.1", "127.1.2.3", "::1", "[::1]", "localhost", "LocalHost"})
    EXPECT_TRUE(is_loopback_host(host)) << host;
  for (const char* host :
       {"10.0.0.1", "128.0.0.1", "example.com", "::2", "localhost.example", "", "1270.0.0.1"})
    EXPECT_FALSE(is_loopback_host(host)) << host;
  const auto now = std::chrono::duration_cast<std::chrono::nanoseconds>(
                       std::chrono::steady_clock::now().time_since_epoch())
                       .count();
  const auto local = deadline_header("127.0.0.1", now + 250'000'000);
  EXPECT_EQ(local.first, "X-Orchlab-Deadline-Ns");
  EXPECT_EQ(local.second, std::to_string(now + 250'000'000));
  const auto remote = deadline_header("10.0.0.1", now + 250'000'000);
  EXPECT_EQ(remote.first, "X-Orchlab-Timeout-Ms");
  const double ms = std::stod(remote.second);
  EXPECT_LE(ms, 250.0);
  EXPECT_GE(ms, 150.0);  // generous: the time between the two clock reads
  EXPECT_EQ(remote.second.size() - remote.second.find('.'), 4u) << remote.second;  // to the us
  EXPECT_EQ(deadline_header("10.0.0.1", now - 1'000'000'000).second,
            "0.000");  // past: never negative
}

// The child mock, where the build says where orchlab-mock is.
class MockChildTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (std::string(ORCHLAB_MOCK_BINARY).empty())
      GTEST_SKIP() << "no orchlab-mock path compiled in";
  }
  const json services_ = json::parse(R"([{"name": "a", "port": 0}, {"name": "b", "port": 0}])");
  MockBinary binary_{ORCHLAB_MOCK_BINARY, "test"};
};

TEST_F(MockChildTest, StartsAnswersAndEndsWithTheObject) {
  pid_t pid = 0;
  {
    const auto s = Services::embedded(services_, binary_);
    ASSERT_TRUE(s->child_pid());
    pid = *s->child_pid();
    EXPECT_FALSE(s->in_process());
    ASSERT_EQ(s->urls().size(), 2u);
    for (const auto& url : s->urls()) {
      EXPECT_EQ(url.rfind("http://127.0.0.1:", 0), 0u) << url;
      EXPECT_NE(url.find("/orchestrate"), std::string::npos) << url;
    }
    const auto readings = s->stats();
    ASSERT_EQ(readings.size(), 2u);
    EXPECT_TRUE(readings[0].doc) << readings[0].error;
    EXPECT_EQ(readings[0].service, "a");
    EXPECT_FALSE(s->child_failure());
  }
  EXPECT_NE(::kill(pid, 0), 0) << "the child must be gone (and reaped) with the object";
}

TEST_F(MockChildTest, ADeadChildIsReportedOnceWithItsPidAndSignal) {
  const auto s = Services::embedded(services_, binary_);
  const pid_t pid = *s->child_pid();
  ASSERT_EQ(::kill(pid, SIGKILL), 0);
  std::optional<std::string> failure;
  for (int i = 0; i < 200 && !failure; ++i) {
    failure = s->child_failure();
    if (!failure) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  ASSERT_TRUE(failure);
  EXPECT_NE(failure->find("orchlab-mock (pid " + std::to_string(pid)), std::string::npos)
      << *failure;
  EXPECT_NE(failure->find("signal 9"), std::string::npos) << *failure;
  EXPECT_FALSE(s->child_failure()) << "said once";
  const auto readings = s->stats();
  EXPECT_FALSE(readings[0].doc);
}

TEST_F(MockChildTest, ABinaryThatIsNotTheMockFailsNamingIt) {
  try {
    Services::embedded(services_, MockBinary{"/bin/false", "test"});
    ADD_FAILURE() << "started";
  } catch (const std::runtime_error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("/bin/false"), std::string::npos) << msg;
    EXPECT_NE(msg.find("exited with status 1 before it was ready"), std::string::npos) << msg;
  }
  try {
    Services::embedded(services_, MockBinary{"/nonexistent/orchlab-mock", "test"});
    ADD_FAILURE() << "started";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent/orchlab-mock"), std::string::npos)
        << e.what();
  }
}

TEST_F(MockChildTest, BinaryLookupOrder) {
  EXPECT_EQ(find_mock_binary(ORCHLAB_MOCK_BINARY).found_by, "--mock-binary");
  EXPECT_THROW(find_mock_binary("/nonexistent/orchlab-mock"), std::invalid_argument);
  const char* old = std::getenv("ORCHLAB_MOCK");
  const std::string saved = old ? old : "";
  ::setenv("ORCHLAB_MOCK", ORCHLAB_MOCK_BINARY, 1);
  EXPECT_EQ(find_mock_binary("").found_by, "ORCHLAB_MOCK");
  EXPECT_EQ(find_mock_binary("").path, ORCHLAB_MOCK_BINARY);
  ::setenv("ORCHLAB_MOCK", "/nonexistent/orchlab-mock", 1);
  EXPECT_THROW(find_mock_binary(""), std::invalid_argument);
  if (old)
    ::setenv("ORCHLAB_MOCK", saved.c_str(), 1);
  else
    ::unsetenv("ORCHLAB_MOCK");
}

}  // namespace
}  // namespace orchlab::harness

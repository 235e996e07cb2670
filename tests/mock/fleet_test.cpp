// Integration tests of the mock services: real sockets on loopback, a
// MockFleet in-process, a raw client (test_client.hpp) that can misbehave.
// Time tolerances are generous (shared, sanitised machines); precision is the
// benchmark's job (scripts/bench_mock.sh).
#include "orchlab/mock/fleet.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>
#include <vector>

#include "test_client.hpp"

namespace orchlab::mock {
namespace {

using namespace testing;
using nlohmann::json;

std::unique_ptr<MockFleet> start(const json& service, ServerOptions options = {}) {
  return MockFleet::from_json({{"services", json::array({service})}}, options);
}

double elapsed_ms(Clock::time_point since) {
  return std::chrono::duration<double, std::milli>(Clock::now() - since).count();
}

// The /__stats identity (docs/mock.md): every counted request is in exactly
// one of these states.
void expect_identity(const json& s) {
  EXPECT_EQ(s["requests"].get<std::uint64_t>(),
            s["completed"].get<std::uint64_t>() + s["client_aborts"].get<std::uint64_t>() +
                s["no_response"].get<std::uint64_t>() + s["bad_requests"].get<std::uint64_t>() +
                s["in_flight"].get<std::uint64_t>())
      << s.dump();
}

// After every bad input the service must still answer a healthy request.
void expect_healthy(const std::string& url) {
  const auto r = http_get(url, "/healthy?fault=none&delay_ms=0");
  EXPECT_EQ(r.error, ReadError::none);
  EXPECT_EQ(r.status, 200);
}

bool stat_is(MockFleet& fleet, const char* key, std::uint64_t value) {
  return eventually([&] { return fleet.stats("svc")[key].get<std::uint64_t>() == value; });
}

TEST(MockFleetTest, ServesAndCounts) {
  auto fleet = start({{"name", "svc"}, {"body_bytes", 64}});
  const auto url = fleet->url("svc");
  ASSERT_EQ(url.rfind("http://127.0.0.1:", 0), 0u);
  ASSERT_EQ(fleet->endpoints().size(), 1u);
  EXPECT_EQ(fleet->endpoints()[0].port, port_of(url));
  const auto r = http_get(url, "/anything");
  ASSERT_EQ(r.error, ReadError::none);
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body.size(), 64u);
  EXPECT_EQ(r.headers.at("x-orchlab-index"), "0");
  // The mock counts a request once its write completed, a moment after the
  // client has read the response.
  EXPECT_TRUE(stat_is(*fleet, "completed", 1));
  const auto s = fleet->stats("svc");
  EXPECT_EQ(s["requests"], 1);
  EXPECT_EQ(s["in_flight"], 0);
  EXPECT_EQ(s["admin_requests"], 0);
  EXPECT_THROW(fleet->url("nope"), std::out_of_range);
  EXPECT_THROW(fleet->stats("nope"), std::out_of_range);
}

TEST(MockFleetTest, KeepAliveAndPipelining) {
  auto fleet = start({{"name", "svc"}, {"body_bytes", 10}});
  Conn c(fleet->url("svc"));
  // Two requests in one write: the second arrives while the first waits.
  ASSERT_TRUE(
      c.send("GET /a?delay_ms=50 HTTP/1.1\r\nHost: x\r\n\r\nGET /b HTTP/1.1\r\nHost: x\r\n\r\n"));
  const auto a = c.read_response();
  const auto b = c.read_response();
  EXPECT_EQ(a.status, 200);
  EXPECT_EQ(a.headers.at("x-orchlab-index"), "0");
  EXPECT_EQ(b.status, 200);
  EXPECT_EQ(b.headers.at("x-orchlab-index"), "1");
  ASSERT_TRUE(c.get("/c"));
  EXPECT_EQ(c.read_response().status, 200);
  // HEAD: the length is announced, no body follows, the connection goes on.
  ASSERT_TRUE(c.send("HEAD /d HTTP/1.1\r\nHost: x\r\n\r\nGET /e HTTP/1.1\r\nHost: x\r\n\r\n"));
  const auto head = c.read_response(5000ms, /*no_body=*/true);
  EXPECT_TRUE(head.body.empty());
  EXPECT_EQ(head.headers.at("content-length"), "10");
  const auto e = c.read_response();
  EXPECT_EQ(e.status, 200);
  EXPECT_EQ(e.headers.at("x-orchlab-index"), "4");
  EXPECT_EQ(e.body.size(), 10u);
  EXPECT_TRUE(stat_is(*fleet, "completed", 5));
  EXPECT_EQ(fleet->stats("svc")["max_open_connections"], 1);
}

// The idle timeout counts from the end of the last response, however long
// the connection has been open: a connection kept busy for longer than the
// timeout stays open (its timer, set at its first idle wait, re-arms for a
// later one), and one left idle is closed after the timeout, not before.
TEST(MockFleetTest, TheIdleTimeoutCountsFromTheLastResponse) {
  ServerOptions options;
  // 600 ms against requests 100 ms apart: a loaded, sanitised machine may
  // stall the client for a while without the connection going idle for long.
  options.idle_timeout = 600ms;
  auto fleet = start({{"name", "svc"}}, options);
  Conn c(fleet->url("svc"));
  const auto opened = Clock::now();
  auto answered = opened;
  while (elapsed_ms(opened) < 1800) {  // three timeouts' worth, never idle for one
    std::this_thread::sleep_for(100ms);
    ASSERT_TRUE(c.get("/"));
    const auto r = c.read_response();
    answered = Clock::now();
    ASSERT_EQ(r.error, ReadError::none) << "closed after " << elapsed_ms(opened) << " ms";
    EXPECT_EQ(r.status, 200);
  }
  EXPECT_EQ(fleet->stats("svc")["max_open_connections"], 1);
  const auto end = c.read_response(5000ms);
  EXPECT_EQ(end.error, ReadError::eof);
  EXPECT_GE(elapsed_ms(answered), 590);
  EXPECT_LT(elapsed_ms(answered), 5000);
}

TEST(MockFleetTest, QueryOverrides) {
  auto fleet = start({{"name", "svc"}});
  const auto url = fleet->url("svc");
  auto t0 = Clock::now();
  auto r = http_get(url, "/?delay_ms=150");
  EXPECT_EQ(r.status, 200);
  EXPECT_GE(elapsed_ms(t0), 145);
  EXPECT_EQ(http_get(url, "/?status=418").status, 418);
  r = http_get(url, "/?body_bytes=100000");
  EXPECT_EQ(r.body.size(), 100000u);
  EXPECT_EQ(http_get(url, "/?body_bytes=0").body.size(), 0u);
  r = http_get(url, "/?fault=status&status=502");
  EXPECT_EQ(r.status, 502);
  EXPECT_EQ(http_get(url, "/?fault=status").status, 503);  // the default code
  EXPECT_TRUE(stat_is(*fleet, "completed", 6));
  const auto s = fleet->stats("svc");
  EXPECT_EQ(s["faults"]["status"], 2);
  EXPECT_GE(s["delay_error_ms"]["count"], 1);
  EXPECT_GE(s["delay_error_ms"]["p50"], 0.0);
  EXPECT_LT(s["delay_error_ms"]["p50"], 100.0);
}

TEST(MockBadInputTest, BadQueryValuesGet400WithTheReason) {
  auto fleet = start({{"name", "svc"}});
  const auto url = fleet->url("svc");
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"/?delay_ms=-1", "delay_ms=-1: must be in [0, 600000]"},
      {"/?delay_ms=abc", "delay_ms=abc: not a number"},
      {"/?delay_ms=99999999", "delay_ms=99999999: must be in [0, 600000]"},
      {"/?status=999", "status=999: must be in [200, 599]"},
      {"/?fault=nope", "fault=nope: unknown fault"},
      {"/?body_bytes=16777217", "body_bytes=16777217: must be in [0, 16777216]"},
      {"/?body_bytes=-5", "body_bytes=-5: not a non-negative integer"},
      {"/?fault=hang&hang_ms=-1", "hang_ms=-1: must be in [0, 600000]"},
      {"/?fault=slow_body&bytes_per_s=0", "bytes_per_s=0: must be in [1, 1e12]"},
      {"/?bytes_per_s=fast", "bytes_per_s=fast: not a number"},
  };
  for (const auto& [target, reason] : cases) {
    const auto r = http_get(url, target);
    EXPECT_EQ(r.status, 400) << target;
    EXPECT_NE(r.body.find(reason), std::string::npos) << target << " -> " << r.body;
    expect_healthy(url);
  }
  EXPECT_TRUE(stat_is(*fleet, "completed", cases.size()));
  const auto s = fleet->stats("svc");
  EXPECT_EQ(s["bad_requests"], cases.size());
  expect_identity(s);
}

TEST(MockBadInputTest, MalformedRequestLineGets400AndClose) {
  auto fleet = start({{"name", "svc"}});
  const auto url = fleet->url("svc");
  for (const char* junk : {"GARBAGE\r\n\r\n", "GET\r\n\r\n", "GET / HTTP/9.9\r\n\r\n",
                           "GET / HTTP/1.1\r\nno colon here\r\n\r\n"}) {
    Conn c(url);
    c.send(junk);
    const auto r = c.read_response();
    EXPECT_EQ(r.status, 400) << junk;
    EXPECT_EQ(r.headers.count("connection"), 1u) << junk;
    EXPECT_EQ(c.wait_closed(2000ms), ReadError::eof) << junk;
    expect_healthy(url);
  }
  EXPECT_TRUE(stat_is(*fleet, "bad_requests", 4));
  expect_identity(fleet->stats("svc"));
}

TEST(MockBadInputTest, UnknownMethodGets501) {
  auto fleet = start({{"name", "svc"}});
  const auto url = fleet->url("svc");
  const auto r = http_raw(url, "BREW /pot HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_EQ(r.status, 501);
  EXPECT_NE(r.body.find("unknown method BREW"), std::string::npos);
  expect_healthy(url);
  EXPECT_TRUE(stat_is(*fleet, "bad_requests", 1));
}

TEST(MockBadInputTest, HeaderBlockOver8KiBGets431) {
  auto fleet = start({{"name", "svc"}});
  const auto url = fleet->url("svc");
  const std::string big =
      "GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + std::string(9000, 'a') + "\r\n\r\n";
  const auto r = http_raw(url, big);
  EXPECT_EQ(r.status, 431);
  expect_healthy(url);
  // Just under the limit is fine.
  const auto ok =
      http_raw(url, "GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + std::string(7000, 'a') + "\r\n\r\n");
  EXPECT_EQ(ok.status, 200);
  EXPECT_TRUE(stat_is(*fleet, "bad_requests", 1));
}

TEST(MockBadInputTest, SlowlorisIsCutOffByTheHeaderTimeout) {
  ServerOptions options;
  options.header_timeout = 300ms;
  auto fleet = start({{"name", "svc"}}, options);
  const auto url = fleet->url("svc");
  Conn c(url);
  const auto t0 = Clock::now();
  const std::string head =
      "GET / HTTP/1.1\r\nHost: x\r\nX-Trickle: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
  bool closed = false;
  for (char ch : head) {
    if (!c.send(std::string(1, ch))) {
      closed = true;
      break;
    }
    if (c.wait_closed(50ms) != ReadError::timeout) {
      closed = true;
      break;
    }
  }
  EXPECT_TRUE(closed);
  EXPECT_LT(elapsed_ms(t0), 2500);  // 60 bytes at 50 ms would take 3 s
  EXPECT_TRUE(stat_is(*fleet, "header_timeouts", 1));
  expect_healthy(url);
}

TEST(MockBadInputTest, ClientResetMidResponseIsAnAbort) {
  auto fleet = start({{"name", "svc"}, {"body_bytes", 4000}});
  const auto url = fleet->url("svc");
  {
    Conn c(url);
    ASSERT_TRUE(c.get("/?fault=slow_body"));  // 1024 B/s by default: ~4 s
    std::this_thread::sleep_for(200ms);
    c.reset();
  }
  EXPECT_TRUE(stat_is(*fleet, "client_aborts", 1));
  expect_healthy(url);
  EXPECT_TRUE(stat_is(*fleet, "completed", 1));
  const auto s = fleet->stats("svc");
  EXPECT_EQ(s["in_flight"], 0);
  EXPECT_EQ(s["faults"]["slow_body"], 1);
  expect_identity(s);
}

TEST(MockBadInputTest, AClientThatStopsReadingIsClosedByTheWriteTimeout) {
  ServerOptions options;
  options.write_timeout = 1000ms;
  auto fleet = start({{"name", "svc"}}, options);
  const auto url = fleet->url("svc");
  // A small receive buffer: 16 MiB is far more than the socket buffers
  // hold, so with nobody reading the write stalls until the timeout cuts it
  // off. The request has a deadline (long past when the write times out):
  // the abort lag must still not count it, as the client did not leave.
  Conn c(url, 64 * 1024);
  ASSERT_TRUE(c.get("/?body_bytes=16777216", "X-Orchlab-Timeout-Ms: 1\r\n"));
  EXPECT_TRUE(stat_is(*fleet, "write_timeouts", 1));
  auto s = fleet->stats("svc");
  EXPECT_EQ(s["client_aborts"], 1);
  EXPECT_EQ(s["in_flight"], 0);
  EXPECT_EQ(s["completed"], 0);
  EXPECT_EQ(s["abort_lag_ms"]["count"], 0);  // not a client leaving on its deadline
  expect_identity(s);
  // What was sent arrives, then the end: the response is cut short.
  const auto r = c.read_response(5000ms);
  EXPECT_EQ(r.status, 200);
  EXPECT_NE(r.error, ReadError::none);
  EXPECT_NE(r.error, ReadError::timeout);
  expect_healthy(url);
  // A client that reads gets the same 16 MiB whole, however long all of it
  // takes: the timeout is per round of 1 MiB.
  EXPECT_EQ(http_get(url, "/?body_bytes=16777216").body.size(), 16777216u);
  EXPECT_EQ(fleet->stats("svc")["write_timeouts"], 1);
}

// Defect: a slow body cut off by the write timeout closed the session with
// the watch read still pending, and the linger read was started beside it:
// two reads on one socket and one buffer. Bytes the client kept sending made
// the buffer reallocate under the pending read (heap-use-after-free under
// ASan; an assertion in the -O0 trees).
TEST(MockBadInputTest, ASlowBodyCutOffWhileTheClientKeepsSendingClosesCleanly) {
  ServerOptions options;
  options.write_timeout = 200ms;
  auto fleet = start({{"name", "svc"}}, options);
  const auto url = fleet->url("svc");
  // 64 KiB pieces every 20 ms into a 4 KiB receive buffer nobody reads.
  Conn c(url, 4096);
  ASSERT_TRUE(c.get("/?fault=slow_body&bytes_per_s=100000000&body_bytes=16777216"));
  // Nothing more until the write timeout has fired (the session's buffer
  // keeps its first 4 KiB), then small pieces for 500 ms: the first grows
  // the buffer, the next lands in the linger read.
  EXPECT_TRUE(stat_is(*fleet, "write_timeouts", 1));
  const auto cut = Clock::now();
  while (elapsed_ms(cut) < 500 && c.send(std::string(500, 'b'))) std::this_thread::sleep_for(2ms);
  c.close();
  EXPECT_TRUE(stat_is(*fleet, "open_connections", 0));
  auto s = fleet->stats("svc");
  EXPECT_EQ(s["in_flight"], 0);
  EXPECT_EQ(s["client_aborts"], 1);
  expect_identity(s);
  expect_healthy(url);
}

TEST(MockBadInputTest, ConnectionsBeyondTheLimitAreRefusedAndCounted) {
  ServerOptions options;
  options.max_connections = 3;
  auto fleet = start({{"name", "svc"}}, options);
  const auto url = fleet->url("svc");
  std::vector<std::unique_ptr<Conn>> conns;
  for (int i = 0; i < 3; ++i) {
    conns.push_back(std::make_unique<Conn>(url));
    ASSERT_TRUE(conns.back()->get("/"));
    ASSERT_EQ(conns.back()->read_response().status, 200);  // accepted and served
  }
  for (int i = 0; i < 2; ++i) {
    Conn extra(url);
    extra.get("/");
    const auto r = extra.read_response(2000ms);
    EXPECT_NE(r.error, ReadError::none);  // closed without an answer
    EXPECT_NE(r.error, ReadError::timeout);
  }
  EXPECT_TRUE(stat_is(*fleet, "refused_connections", 2));
  EXPECT_EQ(fleet->stats("svc")["max_open_connections"], 3);
  conns.clear();
  EXPECT_TRUE(stat_is(*fleet, "open_connections", 0));
  expect_healthy(url);
}

TEST(MockBadInputTest, BrokenProfilesGet400AndTheOldProfileStays) {
  auto fleet =
      start({{"name", "svc"},
             {"faults", json::array({{{"kind", "status"}, {"code", 503}, {"every_nth", 1}}})}});
  const auto url = fleet->url("svc");
  auto put = [&](const std::string& body) {
    return http_raw(url, "PUT /__profile HTTP/1.1\r\nHost: x\r\nContent-Length: " +
                             std::to_string(body.size()) + "\r\n\r\n" + body);
  };
  auto r = put("{not json");
  EXPECT_EQ(r.status, 400);
  EXPECT_NE(r.body.find("not valid JSON"), std::string::npos);
  r = put(R"({"latency": {"dist": "lognormal", "p50_ms": 10, "p99_ms": 1}})");
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(json::parse(r.body)["field"], "profile.latency.p99_ms");
  EXPECT_EQ(json::parse(r.body)["reason"], "must be >= p50_ms");
  r = put(R"({"name": "other"})");
  EXPECT_EQ(r.status, 400);
  r = put(R"([1, 2])");
  EXPECT_EQ(r.status, 400);
  // The old profile keeps working.
  EXPECT_EQ(http_get(url, "/").status, 503);
  // GET returns it, with the bound port.
  const auto profile = json::parse(http_get(url, "/__profile").body);
  EXPECT_EQ(profile["name"], "svc");
  EXPECT_EQ(profile["port"], port_of(url));
  EXPECT_EQ(profile["faults"][0]["code"], 503);
  // A valid profile takes over at once.
  r = put(R"({"body_bytes": 7})");
  EXPECT_EQ(r.status, 200);
  const auto ok = http_get(url, "/");
  EXPECT_EQ(ok.status, 200);
  EXPECT_EQ(ok.body.size(), 7u);
  // Wrong methods and unknown admin routes.
  EXPECT_EQ(http_raw(url, "DELETE /__profile HTTP/1.1\r\nHost: x\r\n\r\n").status, 405);
  EXPECT_EQ(http_get(url, "/__nothing").status, 404);
  EXPECT_EQ(http_get(url, "/__reset").status, 405);
  // None of this counts as service requests; every /__* request (5 PUTs, 1
  // GET, DELETE, /__nothing, GET /__reset) counts as an admin request.
  EXPECT_TRUE(stat_is(*fleet, "requests", 2));
  EXPECT_TRUE(stat_is(*fleet, "admin_requests", 9));
}

// --- faults as a client sees them ------------------------------------------------

json with_fault(const json& fault, const json& extra = json::object()) {
  json service = {{"name", "svc"}, {"body_bytes", 32}, {"faults", json::array({fault})}};
  service.update(extra);
  return service;
}

TEST(MockFaultTest, StatusAnswersWithTheCodeAfterTheLatency) {
  auto fleet = start(with_fault({{"kind", "status"}, {"code", 503}, {"every_nth", 1}},
                                {{"latency", {{"dist", "fixed"}, {"ms", 100}}}}));
  const auto t0 = Clock::now();
  const auto r = http_get(fleet->url("svc"), "/");
  EXPECT_EQ(r.status, 503);
  EXPECT_GE(elapsed_ms(t0), 95);
  EXPECT_TRUE(stat_is(*fleet, "completed", 1));
  EXPECT_EQ(fleet->stats("svc")["faults"]["status"], 1);
}

TEST(MockFaultTest, HangClosesAfterMaxMs) {
  auto fleet = start(with_fault({{"kind", "hang"}, {"max_ms", 200}, {"every_nth", 1}}));
  const auto t0 = Clock::now();
  const auto r = http_get(fleet->url("svc"), "/");
  EXPECT_EQ(r.error, ReadError::eof);
  EXPECT_TRUE(r.raw.empty());
  EXPECT_GE(elapsed_ms(t0), 190);
  EXPECT_TRUE(stat_is(*fleet, "no_response", 1));
  const auto s = fleet->stats("svc");
  EXPECT_EQ(s["faults"]["hang"], 1);
  EXPECT_EQ(s["client_aborts"], 0);
  EXPECT_EQ(s["delay_error_ms"]["count"], 0);  // a hang is not a latency sample
  expect_identity(s);
}

TEST(MockFaultTest, HangEndsWhenTheClientLeavesAndCountsAnAbort) {
  auto fleet = start(with_fault({{"kind", "hang"}, {"max_ms", 60000}, {"every_nth", 1}}));
  {
    Conn c(fleet->url("svc"));
    ASSERT_TRUE(c.get("/"));
    ASSERT_TRUE(stat_is(*fleet, "in_flight", 1));
    EXPECT_EQ(c.read_response(100ms).error, ReadError::timeout);
  }  // FIN
  // Noticed at once, not after max_ms.
  EXPECT_TRUE(eventually([&] { return fleet->stats("svc")["client_aborts"] == 1; }, 2000ms));
  const auto s = fleet->stats("svc");
  EXPECT_EQ(s["in_flight"], 0);
  expect_identity(s);
  expect_healthy(fleet->url("svc"));
}

TEST(MockFaultTest, ResetSurfacesAsAConnectionReset) {
  auto fleet = start(with_fault({{"kind", "reset"}, {"every_nth", 1}}));
  const auto r = http_get(fleet->url("svc"), "/");
  EXPECT_EQ(r.error, ReadError::reset);
  EXPECT_TRUE(r.raw.empty());
  EXPECT_TRUE(stat_is(*fleet, "no_response", 1));
  EXPECT_EQ(fleet->stats("svc")["faults"]["reset"], 1);
}

TEST(MockFaultTest, CloseEndsTheConnectionWithNoResponse) {
  auto fleet = start(with_fault({{"kind", "close"}, {"every_nth", 1}}));
  const auto r = http_get(fleet->url("svc"), "/");
  EXPECT_EQ(r.error, ReadError::eof);
  EXPECT_TRUE(r.raw.empty());
  EXPECT_TRUE(stat_is(*fleet, "no_response", 1));
  EXPECT_EQ(fleet->stats("svc")["faults"]["close"], 1);
}

TEST(MockFaultTest, SlowBodyArrivesSlowly) {
  auto fleet = start(with_fault({{"kind", "slow_body"}, {"bytes_per_s", 1000}, {"every_nth", 1}},
                                {{"body_bytes", 300}}));
  Conn c(fleet->url("svc"));
  const auto t0 = Clock::now();
  ASSERT_TRUE(c.get("/"));
  const auto r = c.read_response();
  ASSERT_EQ(r.error, ReadError::none);
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body.size(), 300u);
  EXPECT_GE(elapsed_ms(t0), 250);  // 300 B at 1000 B/s
  // The connection stays usable afterwards.
  ASSERT_TRUE(c.get("/?fault=none"));
  EXPECT_EQ(c.read_response().status, 200);
  EXPECT_TRUE(stat_is(*fleet, "completed", 2));
  EXPECT_EQ(fleet->stats("svc")["faults"]["slow_body"], 1);
}

TEST(MockFaultTest, QuerySetsTheHangAndSlowBodyParameters) {
  auto fleet = start(
      with_fault({{"kind", "hang"}, {"max_ms", 60000}, {"every_nth", 2}}, {{"body_bytes", 100}}));
  const auto url = fleet->url("svc");
  EXPECT_EQ(http_get(url, "/?hang_ms=150").status, 200);  // no hang drawn: ignored
  // Request 1 draws the configured 60 s hang; hang_ms shortens it.
  auto t0 = Clock::now();
  auto r = http_get(url, "/?hang_ms=150");
  EXPECT_EQ(r.error, ReadError::eof);
  EXPECT_TRUE(r.raw.empty());
  EXPECT_GE(elapsed_ms(t0), 140);
  // A forced hang takes it too.
  t0 = Clock::now();
  r = http_get(url, "/?fault=hang&hang_ms=100");
  EXPECT_EQ(r.error, ReadError::eof);
  EXPECT_GE(elapsed_ms(t0), 90);
  // 100 B at 100 B/s: about a second, where the default 1024 B/s takes 0.1 s.
  t0 = Clock::now();
  r = http_get(url, "/?fault=slow_body&bytes_per_s=100");
  EXPECT_EQ(r.error, ReadError::none);
  EXPECT_EQ(r.body.size(), 100u);
  EXPECT_GE(elapsed_ms(t0), 800);
  EXPECT_TRUE(stat_is(*fleet, "no_response", 2));
  EXPECT_TRUE(stat_is(*fleet, "completed", 2));
  const auto s = fleet->stats("svc");
  EXPECT_EQ(s["faults"]["hang"], 2);
  EXPECT_EQ(s["faults"]["slow_body"], 1);
  expect_identity(s);
}

TEST(MockFaultTest, GarbageFailsToParse) {
  auto fleet = start(with_fault({{"kind", "garbage"}, {"every_nth", 1}}));
  const auto r = http_get(fleet->url("svc"), "/");
  EXPECT_EQ(r.error, ReadError::malformed);
  EXPECT_FALSE(r.raw.empty());
  EXPECT_TRUE(stat_is(*fleet, "no_response", 1));
  EXPECT_EQ(fleet->stats("svc")["faults"]["garbage"], 1);
}

TEST(MockFaultTest, EveryNthIsExactOverHttp) {
  auto fleet = start(with_fault({{"kind", "status"}, {"code", 500}, {"every_nth", 3}}));
  Conn c(fleet->url("svc"));
  for (int n = 1; n <= 30; ++n) {
    ASSERT_TRUE(c.get("/"));
    EXPECT_EQ(c.read_response().status, n % 3 == 0 ? 500 : 200) << n;
  }
  EXPECT_TRUE(stat_is(*fleet, "completed", 30));
  EXPECT_EQ(fleet->stats("svc")["faults"]["status"], 10);
}

TEST(MockFaultTest, SameKeySameFaultWhateverTheOrder) {
  auto fleet = start(with_fault({{"kind", "status"}, {"code", 503}, {"probability", 0.5}}));
  const auto url = fleet->url("svc");
  auto status_of = [&](int key) {
    const auto r = http_get(url, "/", "X-Orchlab-Key: " + std::to_string(key) + "\r\n");
    EXPECT_EQ(r.headers.at("x-orchlab-index"), std::to_string(key));
    return r.status;
  };
  std::vector<int> forward, backward(40);
  for (int k = 0; k < 40; ++k) forward.push_back(status_of(k));
  fleet->reset();
  for (int k = 40; k-- > 0;) backward[static_cast<std::size_t>(k)] = status_of(k);
  EXPECT_EQ(forward, backward);
  const auto failures = std::count(forward.begin(), forward.end(), 503);
  EXPECT_GT(failures, 5);
  EXPECT_LT(failures, 35);
  EXPECT_EQ(http_get(url, "/", "X-Orchlab-Key: x\r\n").status, 400);
}

TEST(MockFaultTest, ResetZeroesCountersAndTheRequestIndex) {
  auto fleet = start({{"name", "svc"}});
  const auto url = fleet->url("svc");
  for (int i = 0; i < 3; ++i) http_get(url, "/");
  EXPECT_TRUE(stat_is(*fleet, "completed", 3));
  const auto r = http_raw(url, "POST /__reset HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n");
  EXPECT_EQ(r.status, 200);
  auto s = fleet->stats("svc");
  EXPECT_EQ(s["requests"], 0);
  EXPECT_EQ(s["completed"], 0);
  EXPECT_EQ(http_get(url, "/").headers.at("x-orchlab-index"), "0");
}

// --- the /__stats identity and deadlines -------------------------------------------

TEST(MockStatsTest, IdentityHoldsWithEveryOutcomeMixed) {
  auto fleet = start({{"name", "svc"}, {"body_bytes", 16}});
  const auto url = fleet->url("svc");
  // One of each outcome, and one still in flight.
  http_get(url, "/");                 // completed
  http_get(url, "/?fault=status");    // completed (a status fault answers)
  http_get(url, "/?fault=close");     // no_response
  http_get(url, "/?fault=reset");     // no_response
  http_get(url, "/?fault=garbage");   // no_response
  http_get(url, "/?delay_ms=abc");    // bad_requests
  http_raw(url, "NONSENSE\r\n\r\n");  // bad_requests
  {
    Conn leaver(url);
    leaver.get("/?delay_ms=60000");  // client_aborts
    ASSERT_TRUE(stat_is(*fleet, "in_flight", 1));
  }
  Conn waiting(url);
  waiting.get("/?fault=hang");  // in flight for now
  ASSERT_TRUE(eventually([&] {
    const auto s = fleet->stats("svc");
    return s["client_aborts"] == 1 && s["in_flight"] == 1 && s["requests"] == 9;
  }));
  auto s = fleet->stats("svc");
  EXPECT_EQ(s["completed"], 2);
  EXPECT_EQ(s["no_response"], 3);
  EXPECT_EQ(s["bad_requests"], 2);
  expect_identity(s);
  // A reset with a request in flight: it is carried into the new counts.
  fleet->reset();
  s = fleet->stats("svc");
  EXPECT_EQ(s["requests"], 1);
  EXPECT_EQ(s["in_flight"], 1);
  expect_identity(s);
  waiting.close();
  ASSERT_TRUE(stat_is(*fleet, "client_aborts", 1));
  expect_identity(fleet->stats("svc"));
}

TEST(MockStatsTest, WorkPastTheDeadlineWithTheTimeoutHeader) {
  auto fleet = start({{"name", "svc"}});
  const auto r = http_get(fleet->url("svc"), "/?delay_ms=300", "X-Orchlab-Timeout-Ms: 100\r\n");
  EXPECT_EQ(r.status, 200);
  ASSERT_TRUE(stat_is(*fleet, "completed_after_deadline", 1));
  const double past = fleet->stats("svc")["work_past_deadline_ms"];
  EXPECT_GE(past, 190.0);  // 300 - 100
  EXPECT_LT(past, 1000.0);
  // Within the deadline: nothing counted.
  http_get(fleet->url("svc"), "/", "X-Orchlab-Timeout-Ms: 5000\r\n");
  ASSERT_TRUE(stat_is(*fleet, "completed", 2));
  EXPECT_EQ(fleet->stats("svc")["completed_after_deadline"], 1);
}

TEST(MockStatsTest, AbortLagWithTheAbsoluteDeadlineHeader) {
  auto fleet = start({{"name", "svc"}});
  const auto url = fleet->url("svc");
  {
    // The caller's deadline is 100 ms away; it only leaves after 300 ms.
    const auto deadline = Clock::now() + 100ms;
    const auto ns =
        std::chrono::duration_cast<std::chrono::nanoseconds>(deadline.time_since_epoch()).count();
    Conn c(url);
    ASSERT_TRUE(c.get("/?fault=hang", "X-Orchlab-Deadline-Ns: " + std::to_string(ns) + "\r\n"));
    std::this_thread::sleep_for(300ms);
  }
  ASSERT_TRUE(stat_is(*fleet, "client_aborts", 1));
  const auto s = fleet->stats("svc");
  EXPECT_EQ(s["abort_lag_ms"]["count"], 1);
  EXPECT_GE(s["abort_lag_ms"]["p50"].get<double>(), 180.0);
  EXPECT_LT(s["abort_lag_ms"]["max"].get<double>(), 1500.0);
  EXPECT_GE(s["work_past_deadline_ms"].get<double>(), 180.0);
  // It ended as the client leaving, not as the mock giving up or answering.
  EXPECT_EQ(s["completed"], 0);
  EXPECT_EQ(s["no_response"], 0);
  EXPECT_EQ(http_get(url, "/", "X-Orchlab-Deadline-Ns: soon\r\n").status, 400);
}

TEST(MockStatsTest, AbortLagIsSignedAndNullWithoutAborts) {
  auto fleet = start({{"name", "svc"}});
  const auto url = fleet->url("svc");
  // No abort yet: the lag's quantiles are unknown, not 0.
  auto s = fleet->stats("svc");
  EXPECT_EQ(s["abort_lag_ms"]["count"], 0);
  EXPECT_TRUE(s["abort_lag_ms"]["p99"].is_null());
  EXPECT_TRUE(s["abort_lag_ms"]["min"].is_null());
  {
    // The caller leaves 50 ms in, 400 ms before its deadline: a sibling's
    // error cancelled it, not the deadline, and the lag says so by its sign.
    Conn c(url);
    ASSERT_TRUE(c.get("/?fault=hang", "X-Orchlab-Timeout-Ms: 450\r\n"));
    std::this_thread::sleep_for(50ms);
  }
  ASSERT_TRUE(stat_is(*fleet, "client_aborts", 1));
  s = fleet->stats("svc");
  EXPECT_EQ(s["abort_lag_ms"]["count"], 1);
  EXPECT_EQ(s["abort_lag_ms"]["before_deadline"], 1);
  EXPECT_LT(s["abort_lag_ms"]["p50"].get<double>(), -250.0);
  EXPECT_GT(s["abort_lag_ms"]["p50"].get<double>(), -450.0);
  EXPECT_EQ(s["abort_lag_ms"]["min"], s["abort_lag_ms"]["max"]);
  EXPECT_DOUBLE_EQ(s["abort_lag_ms"]["p99"].get<double>(), s["abort_lag_ms"]["p50"].get<double>());
}

TEST(MockStatsTest, WindowCallsAreCountedApartAndAResetStartsANewWindow) {
  auto fleet = start({{"name", "svc"}});
  const auto url = fleet->url("svc");
  const std::string window = "X-Orchlab-Phase: window\r\n";
  // A window call still in flight when the reset comes (the last repetition's
  // leftover) never ends in the new window's totals.
  Conn leftover(url);
  ASSERT_TRUE(leftover.get("/?fault=hang", window + "X-Orchlab-Timeout-Ms: 10\r\n"));
  ASSERT_TRUE(eventually([&] { return fleet->stats("svc")["window"]["in_flight"] == 1; }));
  fleet->reset();
  EXPECT_EQ(fleet->stats("svc")["window"]["requests"], 0);
  EXPECT_EQ(fleet->stats("svc")["window"]["in_flight"], 0);
  // A warm-up call (no phase, or another one) and two window calls, one of
  // which the client leaves.
  http_get(url, "/");
  http_get(url, "/", "X-Orchlab-Phase: warmup\r\n");
  EXPECT_EQ(http_get(url, "/", window).status, 200);
  {
    Conn leaver(url);
    ASSERT_TRUE(leaver.get("/?delay_ms=60000", window + "X-Orchlab-Timeout-Ms: 5000\r\n"));
    ASSERT_TRUE(eventually([&] { return fleet->stats("svc")["window"]["in_flight"] == 1; }));
  }
  leftover.close();  // its abort counts for the service, not for the window
  ASSERT_TRUE(eventually([&] {
    const auto s = fleet->stats("svc");
    return s["client_aborts"] == 2 && s["window"]["client_aborts"] == 1;
  }));
  const auto s = fleet->stats("svc");
  const auto& w = s["window"];
  EXPECT_EQ(w["requests"], 2);
  EXPECT_EQ(w["completed"], 1);
  EXPECT_EQ(w["in_flight"], 0);
  EXPECT_EQ(w["max_in_flight"], 1);
  EXPECT_EQ(w["no_response"], 0);
  EXPECT_EQ(w["abort_lag_ms"]["count"], 1);
  EXPECT_EQ(w["abort_lag_ms"]["before_deadline"], 1);  // left well before its 5 s
  EXPECT_EQ(w["completed_after_deadline"], 0);
  EXPECT_EQ(w["work_past_deadline_ms"], 0.0);
  EXPECT_EQ(s["requests"], 5);  // the leftover carried over, 2 warm-up, 2 window
  expect_identity(s);
}

TEST(MockStatsTest, ManyThreadsManyClients) {
  ServerOptions options;
  options.threads = 3;
  auto fleet = start(with_fault({{"kind", "status"}, {"code", 500}, {"every_nth", 5}},
                                {{"latency", {{"dist", "uniform"}, {"min_ms", 0}, {"max_ms", 3}}}}),
                     options);
  const auto url = fleet->url("svc");
  std::atomic<int> ok{0}, failed{0};
  std::vector<std::thread> clients;
  for (int t = 0; t < 6; ++t) {
    clients.emplace_back([&] {
      Conn c(url);
      for (int i = 0; i < 40; ++i) {
        if (!c.get("/")) return;
        (c.read_response().status == 200 ? ok : failed)++;
      }
    });
  }
  for (auto& t : clients) t.join();
  EXPECT_EQ(ok + failed, 240);
  EXPECT_EQ(failed, 48);  // exactly every 5th of 240, whatever the interleaving
  ASSERT_TRUE(stat_is(*fleet, "completed", 240));
  ASSERT_TRUE(stat_is(*fleet, "open_connections", 0));
  const auto s = fleet->stats("svc");
  // Clients start and end at different times: at most all six at once.
  EXPECT_LE(s["max_open_connections"], 6);
  EXPECT_GE(s["max_open_connections"], 1);
  EXPECT_EQ(s["open_connections"], 0);
  EXPECT_GT(s["delay_error_ms"]["count"].get<int>(), 100);  // most draws are > 0 ms
  expect_identity(s);
}

TEST(MockFleetTest, SeveralServicesAndStop) {
  auto fleet = MockFleet::from_json(
      {{"services",
        json::array({{{"name", "a"}, {"body_bytes", 1}}, {{"name", "b"}, {"body_bytes", 2}}})}});
  EXPECT_NE(fleet->url("a"), fleet->url("b"));
  EXPECT_EQ(http_get(fleet->url("a"), "/").body.size(), 1u);
  EXPECT_EQ(http_get(fleet->url("b"), "/").body.size(), 2u);
  Conn hanging(fleet->url("a"));
  hanging.get("/?fault=hang");
  ASSERT_TRUE(eventually([&] { return fleet->stats("a")["in_flight"] == 1; }));
  fleet->stop();  // closes the hanging connection
  EXPECT_NE(hanging.wait_closed(2000ms), ReadError::timeout);
  fleet->stop();  // idempotent
  EXPECT_NO_THROW(fleet->stats("a"));
}

TEST(MockFleetTest, RefusesARemoteBindUnlessAllowed) {
  const json config = {{"bind", "0.0.0.0"}, {"services", json::array({{{"name", "a"}}})}};
  try {
    MockFleet::from_json(config);
    FAIL() << "bound 0.0.0.0 without allow_remote";
  } catch (const ConfigError& e) {
    EXPECT_EQ(e.field, "bind");
  }
  // A busy port is a system_error, and nothing is left running.
  auto first = MockFleet::from_json({{"services", json::array({{{"name", "a"}}})}});
  const json clash = {
      {"services",
       json::array({{{"name", "b"}}, {{"name", "a"}, {"port", first->endpoints()[0].port}}})}};
  EXPECT_THROW(MockFleet::from_json(clash), std::system_error);
}

}  // namespace
}  // namespace orchlab::mock

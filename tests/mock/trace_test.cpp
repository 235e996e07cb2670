// The per-request trace of the mock services (GET/POST /__trace,
// docs/mock.md): real sockets on loopback against an in-process MockFleet,
// as in fleet_test.cpp. The tests read the records' CLOCK_MONOTONIC times
// against the client's own steady_clock: the same clock on Linux.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <set>
#include <thread>
#include <vector>

#include "orchlab/mock/fleet.hpp"
#include "test_client.hpp"

namespace orchlab::mock {
namespace {

using namespace testing;
using nlohmann::json;

std::unique_ptr<MockFleet> start(const json& service = {{"name", "svc"}},
                                 ServerOptions options = {}) {
  return MockFleet::from_json({{"services", json::array({service})}}, options);
}

std::int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch())
      .count();
}

std::string key_header(std::uint64_t key) {
  return "X-Orchlab-Key: " + std::to_string(key) + "\r\n";
}

Response post(const std::string& url, std::string_view path, const std::string& body) {
  return http_raw(url, "POST " + std::string(path) + " HTTP/1.1\r\nHost: x\r\nContent-Length: " +
                           std::to_string(body.size()) + "\r\n\r\n" + body);
}

json get_trace(const std::string& url) {
  const auto r = http_get(url, "/__trace");
  EXPECT_EQ(r.status, 200);
  return json::parse(r.body);
}

void trace_on(const std::string& url, std::size_t max_records = kDefaultTraceRecords) {
  const auto r =
      post(url, "/__trace", json{{"enabled", true}, {"max_records", max_records}}.dump());
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(json::parse(r.body), json({{"enabled", true}, {"max_records", max_records}}));
}

// The trace once `n` requests have ended: a record is written when its
// request ends, a moment after the client has read the answer.
json trace_when(MockFleet& fleet, const char* counter, std::uint64_t n) {
  EXPECT_TRUE(eventually([&] { return fleet.stats("svc")[counter].get<std::uint64_t>() == n; }));
  return get_trace(fleet.url("svc"));
}

const json& record_of(const json& trace, std::uint64_t key) {
  for (const auto& r : trace["records"]) {
    if (r["key"] == key) return r;
  }
  static const json none;
  ADD_FAILURE() << "no record for key " << key << " in " << trace.dump();
  return none;
}

TEST(MockTraceTest, OffByDefault) {
  auto fleet = start();
  const auto url = fleet->url("svc");
  auto t = get_trace(url);
  EXPECT_EQ(t, json({{"service", "svc"},
                     {"enabled", false},
                     {"max_records", kDefaultTraceRecords},
                     {"recorded", 0},
                     {"dropped", 0},
                     {"records", json::array()}}));
  EXPECT_EQ(http_get(url, "/", key_header(1)).status, 200);
  t = trace_when(*fleet, "completed", 1);
  EXPECT_EQ(t["records"].size(), 0u);
  EXPECT_EQ(t["dropped"], 0);
  // Reading the trace is an admin request, not a service request.
  EXPECT_EQ(fleet->stats("svc")["requests"], 1);
}

TEST(MockTraceTest, RecordsKeyedRequestsOnlyWithWhatTheyDrew) {
  auto fleet = start();
  const auto url = fleet->url("svc");
  trace_on(url);
  const auto before = now_ns();
  const auto deadline = before + 10'000'000'000;
  EXPECT_EQ(http_get(url, "/?delay_ms=50",
                     key_header(7) + "X-Orchlab-Deadline-Ns: " + std::to_string(deadline) + "\r\n")
                .status,
            200);
  const auto after = now_ns();
  EXPECT_EQ(http_get(url, "/?delay_ms=0").status, 200);  // no key: not traced
  EXPECT_EQ(http_get(url, "/?fault=status&status=502", key_header(8)).status, 502);
  const auto t = trace_when(*fleet, "completed", 3);
  ASSERT_EQ(t["records"].size(), 2u) << t.dump();
  EXPECT_EQ(t["recorded"], 2);
  EXPECT_EQ(t["dropped"], 0);

  const auto& a = record_of(t, 7);
  EXPECT_EQ(a["service"], "svc");
  EXPECT_GE(a["received_ns"].get<std::int64_t>(), before);
  EXPECT_LE(a["received_ns"].get<std::int64_t>(), after);
  EXPECT_GE(a["ended_ns"].get<std::int64_t>() - a["received_ns"].get<std::int64_t>(), 49'000'000);
  EXPECT_LE(a["ended_ns"].get<std::int64_t>(), now_ns());
  EXPECT_EQ(a["deadline_ns"], deadline);
  EXPECT_TRUE(a["fault"].is_null());
  EXPECT_EQ(a["intended_ms"], 50.0);
  EXPECT_EQ(a["end"], "answered");
  EXPECT_EQ(a["status"], 200);

  const auto& b = record_of(t, 8);
  EXPECT_EQ(b["fault"], "status");
  EXPECT_EQ(b["status"], 502);
  EXPECT_EQ(b["end"], "answered");
  EXPECT_TRUE(b["deadline_ns"].is_null());
  EXPECT_EQ(b["intended_ms"], 0.0);  // the default profile: fixed 0 ms
}

TEST(MockTraceTest, AClientAbortIsRecordedWithTheTimeItWasNoticed) {
  auto fleet = start();
  const auto url = fleet->url("svc");
  trace_on(url);
  std::int64_t left = 0;
  {
    Conn c(url);
    ASSERT_TRUE(c.get("/?fault=hang", key_header(3) + "X-Orchlab-Timeout-Ms: 100\r\n"));
    ASSERT_TRUE(eventually([&] { return fleet->stats("svc")["in_flight"] == 1; }));
    std::this_thread::sleep_for(300ms);
    left = now_ns();
  }  // FIN
  const auto t = trace_when(*fleet, "client_aborts", 1);
  const auto& r = record_of(t, 3);
  EXPECT_EQ(r["end"], "client_abort");
  EXPECT_TRUE(r["status"].is_null());
  EXPECT_EQ(r["fault"], "hang");
  EXPECT_EQ(r["intended_ms"], 60000.0);  // the default max_ms of a forced hang
  // The relative deadline counts from the arrival, to the nanosecond.
  EXPECT_EQ(r["deadline_ns"].get<std::int64_t>() - r["received_ns"].get<std::int64_t>(),
            100'000'000);
  const auto ended = r["ended_ns"].get<std::int64_t>();
  EXPECT_GE(ended, left);
  EXPECT_LT(ended - left, 1'500'000'000);  // noticed at once (generous: sanitised trees)
  // The same instant as the abort lag of /__stats (kept in whole µs there).
  const double lag_ms = fleet->stats("svc")["abort_lag_ms"]["max"];
  EXPECT_NEAR(lag_ms * 1e6, static_cast<double>(ended - r["deadline_ns"].get<std::int64_t>()),
              1000.0);
}

TEST(MockTraceTest, EveryWayARequestEnds) {
  ServerOptions options;
  options.write_timeout = 500ms;
  auto fleet = start({{"name", "svc"}, {"body_bytes", 16}}, options);
  const auto url = fleet->url("svc");
  trace_on(url);
  // Answered after the caller's deadline: finished for nobody.
  EXPECT_EQ(http_get(url, "/?delay_ms=300", key_header(1) + "X-Orchlab-Timeout-Ms: 100\r\n").status,
            200);
  EXPECT_EQ(http_get(url, "/?fault=reset", key_header(2)).error, ReadError::reset);
  EXPECT_EQ(http_get(url, "/?fault=hang&hang_ms=50", key_header(3)).error, ReadError::eof);
  {
    // Nobody reads 16 MiB: the write times out.
    Conn c(url, 64 * 1024);
    ASSERT_TRUE(c.get("/?body_bytes=16777216", key_header(4)));
    ASSERT_TRUE(eventually([&] { return fleet->stats("svc")["write_timeouts"] == 1; }));
  }
  json t;
  EXPECT_TRUE(eventually([&] {
    t = get_trace(url);
    return t["records"].size() == 4;
  }));
  ASSERT_EQ(t["records"].size(), 4u) << t.dump();

  const auto& late = record_of(t, 1);
  EXPECT_EQ(late["end"], "for_nobody");
  EXPECT_EQ(late["status"], 200);
  EXPECT_GT(late["ended_ns"].get<std::int64_t>(), late["deadline_ns"].get<std::int64_t>());
  EXPECT_EQ(record_of(t, 2)["end"], "no_response");
  EXPECT_EQ(record_of(t, 2)["fault"], "reset");
  const auto& hang = record_of(t, 3);
  EXPECT_EQ(hang["end"], "no_response");
  EXPECT_EQ(hang["intended_ms"], 50.0);
  EXPECT_GE(hang["ended_ns"].get<std::int64_t>() - hang["received_ns"].get<std::int64_t>(),
            49'000'000);
  EXPECT_EQ(record_of(t, 4)["end"], "write_timeout");
  EXPECT_TRUE(record_of(t, 4)["status"].is_null());
}

TEST(MockTraceTest, TheCapHoldsAndCountsTheDropped) {
  auto fleet = start();
  const auto url = fleet->url("svc");
  trace_on(url, 3);
  Conn c(url);
  for (std::uint64_t k = 10; k < 15; ++k) {
    ASSERT_TRUE(c.get("/", key_header(k)));
    ASSERT_EQ(c.read_response().status, 200);
  }
  const auto t = trace_when(*fleet, "completed", 5);
  EXPECT_EQ(t["max_records"], 3);
  EXPECT_EQ(t["recorded"], 3);
  EXPECT_EQ(t["dropped"], 2);
  // The first to end are kept.
  std::vector<std::uint64_t> keys;
  for (const auto& r : t["records"]) keys.push_back(r["key"]);
  EXPECT_EQ(keys, (std::vector<std::uint64_t>{10, 11, 12}));
}

TEST(MockTraceTest, ResetAndPostClearIt) {
  auto fleet = start();
  const auto url = fleet->url("svc");
  trace_on(url, 100);
  http_get(url, "/", key_header(1));
  http_get(url, "/", key_header(2));
  ASSERT_EQ(trace_when(*fleet, "completed", 2)["records"].size(), 2u);
  // A reset clears the records; tracing stays on, with its room.
  EXPECT_EQ(post(url, "/__reset", "").status, 200);
  auto t = get_trace(url);
  EXPECT_EQ(t["records"].size(), 0u);
  EXPECT_EQ(t["dropped"], 0);
  EXPECT_EQ(t["enabled"], true);
  EXPECT_EQ(t["max_records"], 100);
  // A request in flight when the trace is cleared belongs to the old trace:
  // it never shows in the new one.
  Conn held(url);
  ASSERT_TRUE(held.get("/?fault=hang", key_header(99)));
  ASSERT_TRUE(eventually([&] { return fleet->stats("svc")["in_flight"] == 1; }));
  trace_on(url, 100);
  http_get(url, "/", key_header(3));
  held.close();
  t = trace_when(*fleet, "client_aborts", 1);
  ASSERT_EQ(t["records"].size(), 1u) << t.dump();
  EXPECT_EQ(t["records"][0]["key"], 3);
  // Off: cleared, and nothing more recorded.
  const auto r = post(url, "/__trace", R"({"enabled": false})");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(json::parse(r.body)["enabled"], false);
  http_get(url, "/", key_header(4));
  t = trace_when(*fleet, "completed", 2);
  EXPECT_EQ(t["enabled"], false);
  EXPECT_EQ(t["records"].size(), 0u);
}

TEST(MockTraceTest, BadBodiesGet400AndChangeNothing) {
  auto fleet = start();
  const auto url = fleet->url("svc");
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"{not json", "trace: body is not a JSON object"},
      {"[true]", "trace: body is not a JSON object"},
      {"{}", "trace.enabled: required"},
      {R"({"enabled": "yes"})", "trace.enabled: must be true or false"},
      {R"({"enabled": true, "max_records": 0})", "trace.max_records: must be an integer in [1, "},
      {R"({"enabled": true, "max_records": 1000001})", "trace.max_records: must be an integer"},
      {R"({"enabled": true, "max_records": -1})", "trace.max_records: must be an integer"},
      {R"({"enabled": true, "max_records": 2.5})", "trace.max_records: must be an integer"},
      {R"({"enabled": true, "max": 3})", "trace.max: unknown key"},
  };
  for (const auto& [body, reason] : cases) {
    const auto r = post(url, "/__trace", body);
    EXPECT_EQ(r.status, 400) << body;
    EXPECT_NE(r.body.find(reason), std::string::npos) << body << " -> " << r.body;
  }
  EXPECT_EQ(http_raw(url, "PUT /__trace HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n").status,
            405);
  EXPECT_EQ(get_trace(url)["enabled"], false);
  http_get(url, "/", key_header(1));
  EXPECT_EQ(trace_when(*fleet, "completed", 1)["records"].size(), 0u);
}

TEST(MockTraceTest, TheFleetSwitchesEveryService) {
  auto fleet =
      MockFleet::from_json({{"services", json::array({{{"name", "a"}}, {{"name", "b"}}})}});
  fleet->set_tracing(true, 2);
  for (std::uint64_t k = 0; k < 3; ++k) {
    EXPECT_EQ(http_get(fleet->url("a"), "/", key_header(k)).status, 200);
  }
  EXPECT_EQ(http_get(fleet->url("b"), "/", key_header(5)).status, 200);
  ASSERT_TRUE(eventually([&] { return fleet->stats("a")["completed"] == 3; }));
  ASSERT_TRUE(eventually([&] { return fleet->stats("b")["completed"] == 1; }));
  const auto a = fleet->trace("a");
  EXPECT_EQ(a["recorded"], 2);
  EXPECT_EQ(a["dropped"], 1);
  EXPECT_EQ(a["records"][0]["service"], "a");
  EXPECT_EQ(fleet->trace("b")["records"][0]["service"], "b");
  EXPECT_THROW(fleet->set_tracing(true, 0), std::invalid_argument);
  EXPECT_THROW(fleet->set_tracing(true, kMaxTraceRecords + 1), std::invalid_argument);
  EXPECT_THROW(fleet->trace("nope"), std::out_of_range);
  fleet->reset();
  EXPECT_EQ(fleet->trace("a")["records"].size(), 0u);
  EXPECT_EQ(fleet->trace("a")["enabled"], true);
  fleet->set_tracing(false);
  EXPECT_EQ(fleet->trace("b")["enabled"], false);
}

// Several io threads end traced requests at once (TSan checks the record
// store): every request is recorded once, with its own key.
TEST(MockTraceTest, ManyThreadsEachRequestOnce) {
  ServerOptions options;
  options.threads = 3;
  auto fleet = start(
      {{"name", "svc"}, {"latency", {{"dist", "uniform"}, {"min_ms", 0}, {"max_ms", 2}}}}, options);
  const auto url = fleet->url("svc");
  fleet->set_tracing(true);
  std::vector<std::thread> clients;
  std::atomic<int> ok{0};
  for (int t = 0; t < 4; ++t) {
    clients.emplace_back([&, t] {
      Conn c(url);
      for (int i = 0; i < 25; ++i) {
        if (!c.get("/", key_header(static_cast<std::uint64_t>(t * 100 + i)))) return;
        if (c.read_response().status == 200) ++ok;
      }
    });
  }
  for (auto& c : clients) c.join();
  EXPECT_EQ(ok, 100);
  const auto t = trace_when(*fleet, "completed", 100);
  ASSERT_EQ(t["records"].size(), 100u);
  std::set<std::uint64_t> keys;
  for (const auto& r : t["records"]) {
    keys.insert(r["key"].get<std::uint64_t>());
    EXPECT_EQ(r["end"], "answered");
    EXPECT_LE(r["received_ns"].get<std::int64_t>(), r["ended_ns"].get<std::int64_t>());
  }
  EXPECT_EQ(keys.size(), 100u);
}

}  // namespace
}  // namespace orchlab::mock

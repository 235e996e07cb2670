// GET /__metrics: the Prometheus text exposition, parsed back and checked
// against /__stats; `promtool check metrics` when promtool is installed.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <regex>
#include <sstream>

#include "orchlab/mock/fleet.hpp"
#include "test_client.hpp"

namespace orchlab::mock {
namespace {

using namespace testing;
using nlohmann::json;

/// One scrape: sample "name{labels}" → value, and each family's TYPE.
struct Scrape {
  std::map<std::string, double> samples;
  std::map<std::string, std::string> types;
  std::vector<std::string> order;  ///< sample keys as they appeared
};

Scrape parse(const std::string& text) {
  Scrape s;
  static const std::regex type_line(R"(^# TYPE (\w+) (counter|gauge|histogram)$)");
  static const std::regex sample_line(R"(^(\w+)\{([^}]*)\} (\S+)$)");
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    std::smatch m;
    if (std::regex_match(line, m, type_line)) {
      s.types[m[1]] = m[2];
    } else if (std::regex_match(line, m, sample_line)) {
      const std::string key = std::string(m[1]) + "{" + std::string(m[2]) + "}";
      s.samples[key] = std::stod(m[3]);
      s.order.push_back(key);
    } else {
      EXPECT_EQ(line.rfind("# HELP orchlab_mock_", 0), 0u) << "unexpected line: " << line;
    }
  }
  return s;
}

std::string scrape_text(const std::string& url) {
  const auto r = http_get(url, "/__metrics");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.headers.at("content-type").rfind("text/plain; version=0.0.4", 0), 0u);
  return r.body;
}

double value(const Scrape& s, const std::string& key) {
  const auto it = s.samples.find(key);
  EXPECT_NE(it, s.samples.end()) << key;
  return it == s.samples.end() ? -1 : it->second;
}

std::unique_ptr<MockFleet> start_svc() {
  return MockFleet::from_json({{"services", json::array({{{"name", "svc"}}})}});
}

// A delayed request, a 503 and a client that leaves after its deadline.
void make_traffic(MockFleet& fleet) {
  const auto url = fleet.url("svc");
  EXPECT_EQ(http_get(url, "/?delay_ms=20").status, 200);
  EXPECT_EQ(http_get(url, "/?fault=status").status, 503);
  {
    const auto deadline = Clock::now() + 50ms;
    const auto ns =
        std::chrono::duration_cast<std::chrono::nanoseconds>(deadline.time_since_epoch()).count();
    Conn c(url);
    ASSERT_TRUE(c.get("/?fault=hang", "X-Orchlab-Deadline-Ns: " + std::to_string(ns) + "\r\n"));
    std::this_thread::sleep_for(200ms);
  }
  ASSERT_TRUE(eventually([&] { return fleet.stats("svc")["client_aborts"] == 1; }));
}

TEST(MockMetricsTest, CountersGaugesAndHistogramsMatchStats) {
  auto fleet = start_svc();
  make_traffic(*fleet);
  const auto stats = fleet->stats("svc");
  const auto s = parse(scrape_text(fleet->url("svc")));
  const std::string svc = "{service=\"svc\"}";
  for (const char* name : {"requests", "completed", "client_aborts", "no_response", "bad_requests",
                           "completed_after_deadline"}) {
    EXPECT_EQ(s.types.at(std::string("orchlab_mock_") + name + "_total"), "counter") << name;
    EXPECT_EQ(value(s, std::string("orchlab_mock_") + name + "_total" + svc),
              stats[name].get<double>())
        << name;
  }
  EXPECT_EQ(value(s, "orchlab_mock_faults_total{service=\"svc\",kind=\"status\"}"), 1);
  EXPECT_EQ(value(s, "orchlab_mock_faults_total{service=\"svc\",kind=\"hang\"}"), 1);
  EXPECT_NEAR(value(s, "orchlab_mock_work_past_deadline_seconds_total" + svc),
              stats["work_past_deadline_ms"].get<double>() / 1000.0, 1e-9);
  for (const char* name : {"in_flight", "open_connections", "max_in_flight"}) {
    EXPECT_EQ(s.types.at(std::string("orchlab_mock_") + name), "gauge") << name;
  }
  EXPECT_EQ(value(s, "orchlab_mock_in_flight" + svc), 0);
  EXPECT_GE(value(s, "orchlab_mock_open_connections" + svc), 1);  // the scrape's own

  for (const std::string h : {"orchlab_mock_delay_error_seconds", "orchlab_mock_abort_lag_seconds",
                              "orchlab_mock_abort_lead_seconds"}) {
    EXPECT_EQ(s.types.at(h), "histogram");
    // Buckets in order, le increasing, counts cumulative, +Inf = _count.
    double last_le = -1, last_count = 0;
    int buckets = 0;
    for (const auto& key : s.order) {
      if (key.rfind(h + "_bucket{", 0) != 0) continue;
      ++buckets;
      const auto le_at = key.find("le=\"") + 4;
      const auto le_text = key.substr(le_at, key.find('"', le_at) - le_at);
      const double le = le_text == "+Inf" ? 1e300 : std::stod(le_text);
      EXPECT_GT(le, last_le) << key;
      EXPECT_GE(s.samples.at(key), last_count) << key;
      last_le = le;
      last_count = s.samples.at(key);
    }
    EXPECT_GE(buckets, 2) << h;
    EXPECT_EQ(last_le, 1e300) << h << ": the last bucket is +Inf";
    EXPECT_EQ(last_count, value(s, h + "_count" + svc)) << h;
  }
  EXPECT_EQ(value(s, "orchlab_mock_abort_lead_seconds_count" + svc), 0);  // it left late, not early
  EXPECT_EQ(value(s, "orchlab_mock_abort_lag_seconds_count" + svc), 1);
  EXPECT_EQ(value(s, "orchlab_mock_abort_lag_seconds_bucket{service=\"svc\",le=\"0.01\"}"), 0);
  EXPECT_GE(value(s, "orchlab_mock_abort_lag_seconds_sum" + svc), 0.1);  // left ~150 ms late
  EXPECT_EQ(value(s, "orchlab_mock_delay_error_seconds_count" + svc),
            stats["delay_error_ms"]["count"].get<double>());
}

TEST(MockMetricsTest, OnlyGet) {
  auto fleet = start_svc();
  Conn c(fleet->url("svc"));
  ASSERT_TRUE(c.send("POST /__metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n"));
  EXPECT_EQ(c.read_response().status, 405);
}

// promtool (Debian's prometheus package) lints the exposition; not a
// dependency of the lab, so the test skips without it.
TEST(MockMetricsTest, PromtoolAcceptsIt) {
  if (std::system("command -v promtool >/dev/null 2>&1") != 0) {
    GTEST_SKIP() << "promtool not installed (apt-get install prometheus)";
  }
  auto fleet = start_svc();
  make_traffic(*fleet);
  const auto path = ::testing::TempDir() + "orchlab_metrics_" + std::to_string(::getpid()) + ".txt";
  std::ofstream(path) << scrape_text(fleet->url("svc"));
  const auto out = path + ".out";
  const int rc = std::system(("promtool check metrics < " + path + " > " + out + " 2>&1").c_str());
  std::ifstream result(out);
  const std::string said((std::istreambuf_iterator<char>(result)), {});
  EXPECT_EQ(rc, 0) << said;
  EXPECT_EQ(said, "") << "promtool lint findings";
  std::remove(path.c_str());
  std::remove(out.c_str());
}

}  // namespace
}  // namespace orchlab::mock

// Unit tests of the mock's configuration and per-request decisions: config
// validation, the latency distributions, the deterministic draws.
#include "orchlab/mock/profile.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "orchlab/mock/config.hpp"

namespace orchlab::mock {
namespace {

using nlohmann::json;

std::string config_error(const json& j) {
  try {
    parse_fleet_config(j, "mock.json");
  } catch (const ConfigError& e) {
    return e.field + " | " + e.reason;
  }
  return "no error";
}

json one_service(const json& service) { return {{"services", json::array({service})}}; }

TEST(MockConfigTest, ParsesTheDesignExample) {
  const auto j = json::parse(R"({"bind": "127.0.0.1",
   "services": [
    {"name": "users", "port": 0, "seed": 1, "body_bytes": 256,
     "latency": {"dist": "lognormal", "p50_ms": 10, "p99_ms": 40, "max_ms": 2000},
     "faults": [
       {"kind": "status", "code": 503, "probability": 0.05},
       {"kind": "hang", "probability": 0.01, "max_ms": 5000},
       {"kind": "reset", "every_nth": 100}]}]})");
  const auto fleet = parse_fleet_config(j, "mock.json");
  ASSERT_EQ(fleet.services.size(), 1u);
  const auto& s = fleet.services[0];
  EXPECT_EQ(s.name, "users");
  EXPECT_EQ(s.body_bytes, 256u);
  EXPECT_EQ(s.latency.dist, LatencyDist::lognormal);
  EXPECT_DOUBLE_EQ(s.latency.p99_ms, 40);
  ASSERT_TRUE(s.latency.cap_ms.has_value());
  EXPECT_DOUBLE_EQ(*s.latency.cap_ms, 2000);
  ASSERT_EQ(s.faults.size(), 3u);
  EXPECT_EQ(s.faults[0].code, 503);
  EXPECT_DOUBLE_EQ(s.faults[1].max_ms, 5000);
  EXPECT_EQ(s.faults[2].kind, FaultKind::reset);
  EXPECT_EQ(s.faults[2].every_nth, 100u);
  // The JSON form parses back to the same service.
  const auto again = parse_service_config(to_json(s), "again");
  EXPECT_EQ(to_json(again), to_json(s));
}

TEST(MockConfigTest, DefaultsAreAFastHealthyService) {
  const auto s = parse_service_config({{"name", "a"}}, "x");
  EXPECT_EQ(s.port, 0);
  EXPECT_EQ(s.latency.dist, LatencyDist::fixed);
  EXPECT_DOUBLE_EQ(s.latency.ms, 0);
  EXPECT_TRUE(s.faults.empty());
}

TEST(MockConfigTest, RejectionsNameFieldAndReason) {
  EXPECT_EQ(config_error(json::array()), "mock.json | must be a JSON object");
  EXPECT_EQ(config_error(json::object()), "mock.json: services | is required");
  EXPECT_EQ(config_error({{"services", json::array()}}),
            "mock.json: services | must be a non-empty array");
  EXPECT_EQ(config_error({{"bind", "nope"}, {"services", json::array({{{"name", "a"}}})}}),
            "mock.json: bind | is not an IP address: \"nope\"");
  EXPECT_EQ(config_error(one_service({{"port", 1}})), "mock.json: services[0].name | is required");
  EXPECT_EQ(config_error(one_service({{"name", "a b"}})).substr(0, 31),
            "mock.json: services[0].name | m");
  EXPECT_EQ(config_error(one_service({{"name", "a"}, {"colour", 1}})),
            "mock.json: services[0].colour | unknown key");
  EXPECT_EQ(config_error(one_service({{"name", "a"}, {"port", 70000}})),
            "mock.json: services[0].port | must be in [0, 65535], got 70000");
  EXPECT_EQ(config_error(one_service({{"name", "a"}, {"body_bytes", 16 * 1024 * 1024 + 1}})),
            "mock.json: services[0].body_bytes | must be in [0, 16777216], got 16777217");
  EXPECT_EQ(config_error(one_service({{"name", "a"}, {"seed", -1}})),
            "mock.json: services[0].seed | must be a non-negative integer, got -1");
  EXPECT_EQ(config_error({{"services", json::array({{{"name", "a"}}, {{"name", "a"}}})}}),
            "mock.json: services[1].name | duplicate service name \"a\"");
  EXPECT_EQ(config_error({{"services", json::array({{{"name", "a"}, {"port", 9000}},
                                                    {{"name", "b"}, {"port", 9000}}})}}),
            "mock.json: services[1].port | duplicate port 9000");
}

TEST(MockConfigTest, LatencyRejections) {
  auto latency = [](const json& l) {
    return config_error(one_service({{"name", "a"}, {"latency", l}}));
  };
  EXPECT_EQ(latency({{"dist", "gamma"}}),
            "mock.json: services[0].latency.dist | unknown distribution \"gamma\" (fixed, uniform, "
            "normal, lognormal, pareto)");
  EXPECT_EQ(latency({{"dist", "fixed"}}), "mock.json: services[0].latency.ms | is required");
  EXPECT_EQ(latency({{"dist", "fixed"}, {"ms", 600001}}),
            "mock.json: services[0].latency.ms | must be in [0, 600000], got 600001");
  EXPECT_EQ(latency({{"dist", "fixed"}, {"ms", "5"}}),
            "mock.json: services[0].latency.ms | must be a number");
  EXPECT_EQ(latency({{"dist", "uniform"}, {"min_ms", 5}, {"max_ms", 1}}),
            "mock.json: services[0].latency.max_ms | must be >= min_ms");
  EXPECT_EQ(latency({{"dist", "lognormal"}, {"p50_ms", 10}, {"p99_ms", 5}}),
            "mock.json: services[0].latency.p99_ms | must be >= p50_ms");
  EXPECT_EQ(latency({{"dist", "lognormal"}, {"p50_ms", 10}, {"mu", 5}}),
            "mock.json: services[0].latency.mu | unknown key");
  EXPECT_EQ(latency({{"dist", "pareto"}, {"scale_ms", 1}, {"alpha", 0}}),
            "mock.json: services[0].latency.alpha | must be in [0.01, 100], got 0");
}

TEST(MockConfigTest, FaultRejections) {
  auto fault = [](const json& f) {
    return config_error(one_service({{"name", "a"}, {"faults", json::array({f})}}));
  };
  EXPECT_EQ(fault({{"kind", "explode"}, {"every_nth", 1}}),
            "mock.json: services[0].faults[0].kind | unknown fault kind \"explode\" (status, hang, "
            "reset, close, slow_body, garbage)");
  EXPECT_EQ(
      fault({{"kind", "reset"}}),
      "mock.json: services[0].faults[0] | needs exactly one trigger: probability or every_nth");
  EXPECT_EQ(
      fault({{"kind", "reset"}, {"every_nth", 2}, {"probability", 0.5}}),
      "mock.json: services[0].faults[0] | needs exactly one trigger: probability or every_nth");
  EXPECT_EQ(fault({{"kind", "reset"}, {"probability", 1.5}}),
            "mock.json: services[0].faults[0].probability | must be in [0, 1], got 1.5");
  EXPECT_EQ(fault({{"kind", "reset"}, {"every_nth", 0}}),
            "mock.json: services[0].faults[0].every_nth | must be in [1, 4294967295], got 0");
  EXPECT_EQ(fault({{"kind", "status"}, {"code", 999}, {"every_nth", 1}}),
            "mock.json: services[0].faults[0].code | must be in [200, 599], got 999");
  EXPECT_EQ(fault({{"kind", "slow_body"}, {"every_nth", 1}}),
            "mock.json: services[0].faults[0].bytes_per_s | is required");
  EXPECT_EQ(fault({{"kind", "hang"}, {"max_ms", 700000}, {"every_nth", 1}}),
            "mock.json: services[0].faults[0].max_ms | must be in [0, 600000], got 700000");
  EXPECT_EQ(fault({{"kind", "close"}, {"code", 500}, {"every_nth", 1}}),
            "mock.json: services[0].faults[0].code | unknown key");
}

TEST(MockConfigTest, LoopbackAddresses) {
  EXPECT_TRUE(is_loopback_address("127.0.0.1"));
  EXPECT_TRUE(is_loopback_address("127.3.2.1"));
  EXPECT_TRUE(is_loopback_address("::1"));
  EXPECT_TRUE(is_loopback_address("localhost"));
  EXPECT_FALSE(is_loopback_address("0.0.0.0"));
  EXPECT_FALSE(is_loopback_address("10.0.0.1"));
  EXPECT_FALSE(is_loopback_address("::"));
  EXPECT_FALSE(is_loopback_address("nonsense"));
}

// --- distributions -----------------------------------------------------------

std::vector<double> samples(const LatencySpec& spec, std::size_t n, std::uint64_t seed = 7) {
  std::vector<double> out(n);
  for (std::size_t i = 0; i < n; ++i) out[i] = sample_latency_ms(spec, seed, i);
  std::sort(out.begin(), out.end());
  return out;
}

double quantile(const std::vector<double>& sorted, double q) {
  return sorted[static_cast<std::size_t>(q * static_cast<double>(sorted.size() - 1))];
}

TEST(MockProfileTest, LognormalHitsP50AndP99) {
  LatencySpec spec;
  spec.dist = LatencyDist::lognormal;
  spec.p50_ms = 10;
  spec.p99_ms = 40;
  const auto s = samples(spec, 100000);
  EXPECT_NEAR(quantile(s, 0.50), 10.0, 0.5);  // within 5%
  EXPECT_NEAR(quantile(s, 0.99), 40.0, 2.0);
}

TEST(MockProfileTest, UniformStaysInBoundsAndFillsThem) {
  LatencySpec spec;
  spec.dist = LatencyDist::uniform;
  spec.min_ms = 5;
  spec.max_ms = 15;
  const auto s = samples(spec, 100000);
  EXPECT_GE(s.front(), 5.0);
  EXPECT_LE(s.back(), 15.0);
  EXPECT_LT(s.front(), 5.01);
  EXPECT_GT(s.back(), 14.99);
  EXPECT_NEAR(quantile(s, 0.5), 10.0, 0.1);
}

TEST(MockProfileTest, NormalHasItsMeanAndStddevAndNoNegatives) {
  LatencySpec spec;
  spec.dist = LatencyDist::normal;
  spec.mean_ms = 20;
  spec.stddev_ms = 5;
  const auto s = samples(spec, 100000);
  double sum = 0, sq = 0;
  for (double v : s) sum += v, sq += v * v;
  const double mean = sum / static_cast<double>(s.size());
  EXPECT_NEAR(mean, 20.0, 0.2);
  EXPECT_NEAR(std::sqrt(sq / static_cast<double>(s.size()) - mean * mean), 5.0, 0.2);
  spec.mean_ms = 1;  // most of the left tail would be negative: clamped to 0
  EXPECT_GE(samples(spec, 10000).front(), 0.0);
}

TEST(MockProfileTest, ParetoHasItsScaleAndMedian) {
  LatencySpec spec;
  spec.dist = LatencyDist::pareto;
  spec.scale_ms = 2;
  spec.alpha = 1.5;
  const auto s = samples(spec, 100000);
  EXPECT_GE(s.front(), 2.0);
  // Median of a Pareto: scale * 2^(1/alpha).
  EXPECT_NEAR(quantile(s, 0.5), 2.0 * std::pow(2.0, 1.0 / 1.5), 0.1);
}

TEST(MockProfileTest, CapClampsEveryDistribution) {
  for (auto dist :
       {LatencyDist::fixed, LatencyDist::normal, LatencyDist::lognormal, LatencyDist::pareto}) {
    LatencySpec spec;
    spec.dist = dist;
    spec.ms = 500;
    spec.mean_ms = 50;
    spec.stddev_ms = 100;
    spec.p50_ms = 10;
    spec.p99_ms = 1000;
    spec.scale_ms = 1;
    spec.alpha = 0.5;
    spec.cap_ms = 30;
    const auto s = samples(spec, 20000);
    EXPECT_LE(s.back(), 30.0) << dist_name(dist);
    EXPECT_DOUBLE_EQ(s.back(), 30.0) << dist_name(dist);  // the cap is reached
  }
  // Without a cap, the hard limit still holds.
  LatencySpec wild;
  wild.dist = LatencyDist::pareto;
  wild.scale_ms = 1000;
  wild.alpha = 0.01;
  EXPECT_LE(samples(wild, 1000).back(), kMaxDelayMs);
}

// --- determinism ---------------------------------------------------------------

TEST(MockDrawTest, SameSeedAndIndexSameDraw) {
  LatencySpec spec;
  spec.dist = LatencyDist::lognormal;
  spec.p50_ms = 10;
  spec.p99_ms = 100;
  for (std::uint64_t i = 0; i < 1000; ++i) {
    EXPECT_EQ(sample_latency_ms(spec, 42, i), sample_latency_ms(spec, 42, i));
  }
  // Another seed gives another sequence.
  int same = 0;
  for (std::uint64_t i = 0; i < 1000; ++i)
    same += sample_latency_ms(spec, 42, i) == sample_latency_ms(spec, 43, i);
  EXPECT_LT(same, 5);
}

TEST(MockDrawTest, UnitDrawsAreUniform) {
  // 10 bins over 100k draws: each within 5% of its expected 10k.
  std::array<int, 10> bins{};
  for (std::uint64_t i = 0; i < 100000; ++i) {
    const double u = draw_unit(9, i, 3);
    ASSERT_GT(u, 0.0);
    ASSERT_LT(u, 1.0);
    ++bins[static_cast<std::size_t>(u * 10)];
  }
  for (int b : bins) EXPECT_NEAR(b, 10000, 500);
}

TEST(MockDrawTest, EveryNthIsExact) {
  ServiceConfig s;
  s.faults.push_back({.kind = FaultKind::reset, .every_nth = 7});
  int fired = 0;
  for (std::uint64_t i = 0; i < 7000; ++i) {
    const bool hit = pick_fault(s, i) != nullptr;
    EXPECT_EQ(hit, (i + 1) % 7 == 0) << i;
    fired += hit;
  }
  EXPECT_EQ(fired, 1000);
}

TEST(MockDrawTest, ProbabilityFiresAtItsRateAndFirstMatchWins) {
  ServiceConfig s;
  s.seed = 5;
  s.faults.push_back({.kind = FaultKind::status, .probability = 0.2});
  s.faults.push_back({.kind = FaultKind::close, .every_nth = 1});
  int status = 0, close = 0;
  for (std::uint64_t i = 0; i < 100000; ++i) {
    const FaultSpec* f = pick_fault(s, i);
    ASSERT_NE(f, nullptr);  // every_nth 1 catches whatever the first missed
    (f->kind == FaultKind::status ? status : close)++;
  }
  EXPECT_NEAR(status, 20000, 1000);
  EXPECT_EQ(status + close, 100000);
}

TEST(MockDrawTest, FaultsDependOnlyOnSeedAndIndex) {
  ServiceConfig s;
  s.seed = 11;
  s.faults.push_back({.kind = FaultKind::status, .probability = 0.5});
  std::vector<bool> forward, backward(200);
  for (std::uint64_t i = 0; i < 200; ++i) forward.push_back(pick_fault(s, i) != nullptr);
  for (std::uint64_t i = 200; i-- > 0;) backward[i] = pick_fault(s, i) != nullptr;
  EXPECT_EQ(forward, backward);
  const auto hits = std::count(forward.begin(), forward.end(), true);
  EXPECT_GT(hits, 60);
  EXPECT_LT(hits, 140);
}

}  // namespace
}  // namespace orchlab::mock

// Sharded runs and their merge: histograms that travel losslessly in the
// report, the --shard/--start-at command line, how a shard splits a cell, and
// orchlab merge's arithmetic and refusals on reports built here.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <random>

#include "orchlab/harness/cli.hpp"
#include "orchlab/harness/driver.hpp"
#include "orchlab/harness/merge.hpp"
#include "orchlab/harness/report.hpp"
#include "orchlab/histogram.hpp"

namespace orchlab::harness {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::ordered_json;

LogHistogram lognormal(std::uint64_t seed, int n) {
  std::mt19937_64 rng(seed);
  std::lognormal_distribution<double> dist(std::log(10e6), 0.8);
  LogHistogram h;
  for (int i = 0; i < n; ++i) h.record(static_cast<std::uint64_t>(dist(rng)));
  return h;
}

TEST(HistogramJsonTest, RoundTripsExactly) {
  const auto h = lognormal(7, 5000);
  const json j = histogram_json(h);
  ASSERT_GT(j["buckets"].size(), 10u);
  std::uint64_t prev = 0, total = 0;
  for (const auto& b : j["buckets"]) {  // sorted, non-empty, [lower, upper, count]
    EXPECT_GE(b[0].get<std::uint64_t>(), prev);
    EXPECT_LE(b[0].get<std::uint64_t>(), b[1].get<std::uint64_t>());
    EXPECT_GT(b[2].get<std::uint64_t>(), 0u);
    prev = b[1].get<std::uint64_t>() + 1;
    total += b[2].get<std::uint64_t>();
  }
  EXPECT_EQ(total, h.count());
  std::string why;
  const auto back = histogram_from_json(nlohmann::json::parse(j.dump()), why);
  ASSERT_TRUE(back) << why;
  EXPECT_EQ(back->count(), h.count());
  EXPECT_EQ(back->min(), h.min());
  EXPECT_EQ(back->max(), h.max());
  EXPECT_EQ(back->sum(), h.sum());
  for (double q : {0.5, 0.9, 0.99, 0.999}) EXPECT_EQ(back->quantile(q), h.quantile(q)) << q;
  // Merged from JSON = merged in memory: what orchlab merge relies on.
  const auto other = lognormal(8, 3000);
  LogHistogram a = *back, b = h;
  a.merge(*histogram_from_json(nlohmann::json::parse(histogram_json(other).dump()), why));
  b.merge(other);
  for (double q : {0.5, 0.99, 0.999}) EXPECT_EQ(a.quantile(q), b.quantile(q)) << q;
  EXPECT_EQ(a.count(), 8000u);
}

TEST(HistogramJsonTest, RejectsWhatIsNotOneOfOurs) {
  std::string why;
  auto bad = [&](const char* text) {
    why.clear();
    EXPECT_FALSE(histogram_from_json(nlohmann::json::parse(text), why)) << text;
    EXPECT_FALSE(why.empty()) << text;
  };
  bad(R"({"buckets": [[0, 0, 1]], "count": 2, "min": 0, "max": 0, "sum": 0})");            // counts
  bad(R"({"buckets": [[130, 140, 1]], "count": 1, "min": 130, "max": 130, "sum": 130})");  // bounds
  bad(R"({"buckets": [[5, 5, 1], [3, 3, 1]], "count": 2, "min": 3, "max": 5, "sum": 8})");  // order
  bad(R"({"buckets": [[5, 5, 1]], "count": 1, "min": 9, "max": 5, "sum": 5})");  // min outside
  bad(R"({"count": 0})");
  EXPECT_TRUE(histogram_from_json(
      nlohmann::json::parse(R"({"buckets": [], "count": 0, "min": null, "max": null, "sum": 0})"),
      why));
}

Command parse(std::vector<const char*> argv) {
  argv.insert(argv.begin(), "orchlab");
  return parse_command_line(static_cast<int>(argv.size()), argv.data());
}

void expect_usage_error(std::vector<const char*> argv, const std::string& needle) {
  try {
    parse(argv);
    ADD_FAILURE() << "accepted; expected " << needle;
  } catch (const UsageError& e) {
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
  }
}

// Sets an environment variable for one scope.
struct Env {
  Env(const char* name, const char* value) : name_(name) { ::setenv(name, value, 1); }
  ~Env() { ::unsetenv(name_); }
  const char* name_;
};

TEST(ShardCliTest, ParsesShardAndStart) {
  const auto c = parse({"run", "--shard", "1/3", "--start-at", "2026-12-04T13:00:00.5Z"});
  EXPECT_TRUE(c.run.sharded);
  EXPECT_EQ(c.run.shard_index, 1);
  EXPECT_EQ(c.run.shard_count, 3);
  // 2026-12-04T13:00:00Z is 1796389200 s after the epoch (date -u -d ... +%s).
  EXPECT_EQ(*c.run.start_at_unix_ns, 1796389200'500'000'000LL);
  EXPECT_EQ(parse_instant("1796389200", "--start-at"), 1796389200'000'000'000LL);
  EXPECT_EQ(parse_instant("1970-01-01T00:00:00+00:00", "--start-at"), 0);
  EXPECT_EQ(iso8601_utc(1796389200'250'000'000LL), "2026-12-04T13:00:00.250Z");
  EXPECT_EQ(iso8601_utc(1796389200'000'000'000LL), "2026-12-04T13:00:00Z");
  EXPECT_FALSE(parse({"run"}).run.sharded);
}

TEST(ShardCliTest, RejectsBadShardsAndInstants) {
  expect_usage_error({"run", "--shard", "2/2", "--start-at", "0"}, "below 2");
  expect_usage_error({"run", "--shard", "0/0", "--start-at", "0"}, "at least 1");
  expect_usage_error({"run", "--shard", "1", "--start-at", "0"}, "not I/N");
  expect_usage_error({"run", "--shard", "-1/2", "--start-at", "0"}, "--shard");
  expect_usage_error({"run", "--shard", "0/2"}, "needs --start-at");
  expect_usage_error({"run", "--start-at", "tomorrow"}, "not an instant");
  expect_usage_error({"run", "--start-at", "2026-12-04T13:00:00+01:00"}, "must be UTC");
  expect_usage_error({"run", "--start-at", "2026-13-04T13:00:00Z"}, "not an instant");
  expect_usage_error({"merge", "a.json"}, "-o");
  expect_usage_error({"merge", "-o", "out.json"}, "reports");
  expect_usage_error({"merge", "-o", "out.json", "--frob", "a.json"}, "--frob");
}

TEST(ShardCliTest, IndexedJobEnvironmentIsTheDefault) {
  {
    Env index("JOB_COMPLETION_INDEX", "2");
    Env count("ORCHLAB_SHARD_COUNT", "4");
    Env at("ORCHLAB_START_AT", "2026-12-04T13:00:00Z");
    const auto c = parse({"run"});
    EXPECT_TRUE(c.run.sharded);
    EXPECT_EQ(c.run.shard_index, 2);
    EXPECT_EQ(c.run.shard_count, 4);
    EXPECT_EQ(*c.run.start_at_unix_ns, 1796389200'000'000'000LL);
    const auto flag = parse({"run", "--shard", "0/2"});  // a flag wins
    EXPECT_EQ(flag.run.shard_index, 0);
    EXPECT_EQ(flag.run.shard_count, 2);
  }
  {
    Env index("JOB_COMPLETION_INDEX", "4");
    Env count("ORCHLAB_SHARD_COUNT", "4");
    expect_usage_error({"run", "--start-at", "0"}, "JOB_COMPLETION_INDEX/ORCHLAB_SHARD_COUNT");
  }
  {
    Env count("ORCHLAB_SHARD_COUNT", "4");
    expect_usage_error({"run", "--start-at", "0"}, "JOB_COMPLETION_INDEX is not");
  }
  const auto u = usage();
  for (const char* word : {"--shard", "--start-at", "JOB_COMPLETION_INDEX", "ORCHLAB_SHARD_COUNT",
                           "ORCHLAB_START_AT", "merge -o"})
    EXPECT_NE(u.find(word), std::string::npos) << word;
}

TEST(ShardTest, ShardsSplitEveryCellExactly) {
  for (int c : {1, 2, 3, 7, 16, 1000})
    for (int n = 1; n <= c && n <= 9; ++n) {
      int total = 0;
      for (int i = 0; i < n; ++i) {
        const int part = shard_callers(c, i, n);
        EXPECT_GE(part, 1) << c << " " << i << "/" << n;
        EXPECT_LE(part, (c + n - 1) / n);
        total += part;
      }
      EXPECT_EQ(total, c) << c << " over " << n;
    }
}

// A shard's repetition as run_repetition would measure it.
Measurement shard_measurement(int shard, int rep, std::uint64_t seed) {
  Measurement m;
  m.scenario = "s";
  m.pattern = "p";
  m.fanout = 3;
  m.concurrency = 4;
  m.repetitions = 2;
  m.repetition_index = rep;
  m.deadline_ms = 100;
  m.warmup_s = 0.2;
  m.window_s = 1;
  m.wall_s = 1.0 + 0.01 * shard;
  m.latency_ns = lognormal(seed, 400 + 50 * shard);
  m.overshoot_ns.record(0, m.latency_ns.count());
  m.orchestrations = m.latency_ns.count();
  m.completed_in_window = m.orchestrations - 2;
  m.complete = m.orchestrations;
  m.calls = 3 * m.orchestrations;
  m.call_ok = m.calls;
  m.leaked_tasks_at_return = 5 + shard;
  m.threads_peak = 10 + shard;
  m.rss_peak_kb = 1000;
  m.cpu_s = 0.5;
  m.callers = 2;
  m.window_start_unix_ns = 1796389200'000'000'000LL + rep * 5'000'000'000LL + shard * 3'000'000LL;
  m.pool_measured = true;
  m.pool_wait_ns = lognormal(seed + 1, 600);
  ServerTotals t;
  t.requests = 3000 + shard;
  t.client_aborts = 40 + shard;
  t.abort_lag_p99_ms = 1.0 + shard;
  t.max_in_flight = 12;
  t.completed_after_deadline = 0;
  t.work_past_deadline_ms = 0.0;
  m.server = t;
  m.series.started = {10, 20};
  m.series.finished = {9, 21};
  m.series.in_flight = {1, 0};
  m.series.live_tasks = {3, 0};
  m.series.os_threads = {8, 8};
  return m;
}

struct TempDir {
  TempDir() : path(fs::temp_directory_path() / ("orchlab-shard-" + std::to_string(::getpid()))) {
    fs::create_directories(path);
  }
  ~TempDir() { fs::remove_all(path); }
  fs::path path;
};

std::string write_shard(const TempDir& d, int shard, int count, const std::string& services,
                        const std::function<void(json&)>& edit = nullptr) {
  RunInfo info;
  info.shuffle_seed = 1796389200;
  ShardInfo s;
  s.index = shard;
  s.count = count;
  s.start_at_unix_ns = 1796389200'000'000'000LL;
  s.host = "host" + std::to_string(shard);
  s.services = services;
  info.shard = s;
  std::vector<Measurement> ms;
  for (int rep = 0; rep < 2; ++rep) ms.push_back(shard_measurement(shard, rep, 100 * rep + shard));
  auto doc = build_report(info, ms, json{{"s", {{"deadline_ms", 100}}}});
  if (edit) edit(doc);
  const auto file = (d.path / ("shard-" + std::to_string(shard) + ".json")).string();
  write_atomic(file, doc);
  return file;
}

const json& entry(const json& doc, int rep) {
  for (const auto& e : doc["benchmarks"])
    if (e["run_type"] == "iteration" && e["repetition_index"] == rep) return e;
  throw std::runtime_error("no repetition");
}

TEST(MergeTest, SumsCountsMergesHistogramsAndKeepsProcessesApart) {
  TempDir d;
  const auto a = write_shard(d, 0, 2, "shared");
  const auto b = write_shard(d, 1, 2, "shared");
  const auto doc = merge_reports({b, a});  // any order
  const auto& e = entry(doc, 1);
  const auto m0 = shard_measurement(0, 1, 100), m1 = shard_measurement(1, 1, 101);
  EXPECT_EQ(e["iterations"], m0.orchestrations + m1.orchestrations);
  EXPECT_EQ(e["latency_samples"], m0.latency_ns.count() + m1.latency_ns.count());
  EXPECT_EQ(e["histograms"]["latency_ns"]["count"], e["latency_samples"]);
  LogHistogram both = m0.latency_ns;
  both.merge(m1.latency_ns);
  EXPECT_DOUBLE_EQ(e["p99_us"].get<double>(), both.quantile(0.99) / 1000.0);
  EXPECT_DOUBLE_EQ(e["p50_us"].get<double>(), both.quantile(0.50) / 1000.0);
  EXPECT_DOUBLE_EQ(e["items_per_second"].get<double>(),
                   static_cast<double>(m0.completed_in_window + m1.completed_in_window));
  EXPECT_EQ(e["leaked_tasks_at_return"], 5 + 6);
  EXPECT_EQ(e["callers"], 4);
  EXPECT_DOUBLE_EQ(e["cpu_s"].get<double>(), 1.0);
  // Process metrics: null in the entry, each shard's in the list.
  EXPECT_TRUE(e["threads_peak"].is_null());
  EXPECT_TRUE(e["rss_peak_kb"].is_null());
  ASSERT_EQ(e["shards"].size(), 2u);
  EXPECT_EQ(e["shards"][0]["threads_peak"], 10);
  EXPECT_EQ(e["shards"][1]["threads_peak"], 11);
  EXPECT_EQ(e["shards"][1]["host"], "host1");
  // Shared services: each shard's delta already counts every shard's calls.
  EXPECT_EQ(e["server_client_aborts"], 41);
  EXPECT_DOUBLE_EQ(e["server_abort_lag_p99_ms"].get<double>(), 2.0);
  EXPECT_EQ(doc["context"]["shard"]["count"], 2);
  EXPECT_EQ(doc["context"]["shard"]["merged"].size(), 2u);
  // The _mean aggregate's percentiles come from all four histograms.
  for (const auto& x : doc["benchmarks"]) {
    if (x["run_type"] == "aggregate" && x["aggregate_name"] == "mean") {
      EXPECT_EQ(x["latency_samples"], entry(doc, 0)["latency_samples"].get<std::uint64_t>() +
                                          e["latency_samples"].get<std::uint64_t>());
    }
  }
  // The time series add up bucket by bucket.
  const auto& ser = doc["lab"]["series"]["s/p/fanout:3/concurrency:4"];
  EXPECT_EQ(ser["started"], json::array({20, 40}));
}

TEST(MergeTest, ServicesOfTheirOwnAreSummed) {
  TempDir d;
  const auto doc = merge_reports({write_shard(d, 0, 2, "own"), write_shard(d, 1, 2, "own")});
  EXPECT_EQ(entry(doc, 0)["server_client_aborts"], 40 + 41);
}

TEST(MergeTest, ACellOneShardCouldNotRunIsNotRun) {
  TempDir d;
  const auto a = write_shard(d, 0, 2, "shared");
  const auto b = write_shard(d, 1, 2, "shared", [](json& doc) {
    for (auto& e : doc["benchmarks"])
      if (e["run_type"] == "iteration") e["infeasible"] = "needs ~9000 threads";
  });
  const auto doc = merge_reports({a, b});
  const auto& e = entry(doc, 0);
  EXPECT_EQ(e["infeasible"], "shard 1: needs ~9000 threads");
  EXPECT_TRUE(e["p99_us"].is_null());
  EXPECT_EQ(e["iterations"], 0);
  EXPECT_FALSE(e.contains("histograms"));
}

void expect_refusal(const std::vector<std::string>& files, const std::string& needle) {
  try {
    merge_reports(files);
    ADD_FAILURE() << "merged; expected a refusal saying " << needle;
  } catch (const MergeError& e) {
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
  }
}

TEST(MergeTest, RefusesReportsThatDoNotBelongTogether) {
  TempDir d;
  const auto a = write_shard(d, 0, 2, "shared");
  const auto b = write_shard(d, 1, 2, "shared");
  expect_refusal({a}, "shard 1/2 is missing");
  expect_refusal({a, a, b}, "are both shard 0/2");
  const auto three = write_shard(d, 1, 3, "shared");
  expect_refusal({a, three}, "not the same run");
  const auto build =
      write_shard(d, 1, 2, "shared", [](json& doc) { doc["context"]["git_sha"] = "0000000"; });
  expect_refusal({a, build}, "different builds (context.git_sha)");
  const auto scen = write_shard(
      d, 1, 2, "shared", [](json& doc) { doc["lab"]["scenarios"]["s"]["deadline_ms"] = 200; });
  expect_refusal({a, scen}, "different scenarios");
  const auto late = write_shard(d, 1, 2, "shared", [](json& doc) {
    for (auto& e : doc["benchmarks"])
      if (e["run_type"] == "iteration")
        e["window_start_unix_ns"] = e["window_start_unix_ns"].get<std::int64_t>() + 400'000'000;
  });
  expect_refusal({a, late}, "different windows");
  const auto start = write_shard(d, 1, 2, "shared", [](json& doc) {
    doc["context"]["shard"]["start_at"] = "2026-12-04T13:00:01Z";
  });
  expect_refusal({a, start}, "different start instants");
  const auto cut =
      write_shard(d, 1, 2, "shared", [](json& doc) { doc["context"]["interrupted"] = true; });
  expect_refusal({a, cut}, "interrupted");
  const auto plain =
      write_shard(d, 1, 2, "shared", [](json& doc) { doc["context"].erase("shard"); });
  expect_refusal({a, plain}, "not a shard's report");
  const auto broken = write_shard(d, 1, 2, "shared", [](json& doc) {
    for (auto& e : doc["benchmarks"])
      if (e["run_type"] == "iteration") e["histograms"]["latency_ns"]["count"] = 1;
  });
  expect_refusal({a, broken}, "histograms.latency_ns");
  expect_refusal({a, (d.path / "nothing.json").string()}, "cannot read");
}

}  // namespace
}  // namespace orchlab::harness

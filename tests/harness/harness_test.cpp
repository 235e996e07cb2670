// Unit tests of the harness: scenario parsing and validation, the command
// line, histogram accuracy, report layout and aggregates, feasibility.
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <filesystem>
#include <fstream>
#include <random>
#include <set>

#include "orchlab/harness/cli.hpp"
#include "orchlab/harness/driver.hpp"
#include "orchlab/harness/external.hpp"
#include "orchlab/harness/report.hpp"
#include "orchlab/harness/scenario.hpp"
#include "orchlab/histogram.hpp"
#include "orchlab/pattern.hpp"

namespace orchlab::harness {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

const std::vector<std::string> kPatterns = {"channel-soup", "latch-select", "cancellable-group",
                                            "async-group"};

json valid_scenario() {
  return json::parse(R"({
    "name": "t", "description": "d",
    "services": [{"name": "a", "port": 0, "latency": {"dist": "fixed", "ms": 1}},
                 {"name": "b", "port": 0, "latency": {"dist": "lognormal", "p50_ms": 10, "p99_ms": 40}}],
    "deadline_ms": 100, "fanout": [3, 10], "concurrency": [1, 16], "patterns": ["all"],
    "duration_s": 0.5, "repetitions": 2, "mode": "closed", "max_conns_per_host": 8})");
}

// Expects parse_scenario to throw a message containing `needle`.
void expect_error(const json& doc, const std::string& needle, const Overrides& o = {}) {
  try {
    parse_scenario(doc, "s.json", kPatterns, o);
    FAIL() << "accepted, expected an error naming " << needle;
  } catch (const ScenarioError& e) {
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
  }
}

class TempDir {
 public:
  TempDir()
      : path_(fs::temp_directory_path() / ("orchlab-harness-test-" + std::to_string(::getpid()) +
                                           "-" + std::to_string(counter_++))) {
    fs::create_directories(path_);
  }
  ~TempDir() { fs::remove_all(path_); }
  const fs::path& path() const { return path_; }
  fs::path write(const std::string& name, const std::string& text) const {
    std::ofstream(path_ / name) << text;
    return path_ / name;
  }

 private:
  static inline int counter_ = 0;
  fs::path path_;
};

TEST(ScenarioTest, ParsesEveryField) {
  const auto s = parse_scenario(valid_scenario(), "s.json", kPatterns);
  EXPECT_EQ(s.name, "t");
  EXPECT_EQ(s.deadline_ms, 100);
  EXPECT_EQ(s.fanout, (std::vector<int>{3, 10}));
  EXPECT_EQ(s.concurrency, (std::vector<int>{1, 16}));
  EXPECT_EQ(s.patterns, kPatterns);  // "all" expanded in registry order
  EXPECT_DOUBLE_EQ(s.duration_s, 0.5);
  EXPECT_EQ(s.repetitions, 2);
  EXPECT_EQ(s.mode, Mode::closed);
  EXPECT_EQ(s.max_conns_per_host, 8u);
  EXPECT_EQ(s.services.size(), 2u);
}

TEST(ScenarioTest, RejectsBadFieldsNamingThem) {
  auto doc = valid_scenario();
  doc["fanout"] = json::array({3, 0});
  expect_error(doc, "fanout[1]");
  doc = valid_scenario();
  doc["duration_s"] = -1;
  expect_error(doc, "duration_s");
  doc = valid_scenario();
  doc["patterns"] = {"channel-soup", "no-such-pattern"};
  expect_error(doc, "no-such-pattern");
  doc = valid_scenario();
  doc["fanuot"] = 3;
  expect_error(doc, "fanuot: unknown field");
  doc = valid_scenario();
  doc["mode"] = "half-open";
  expect_error(doc, "mode");
  doc = valid_scenario();
  doc["mode"] = "open";
  expect_error(doc, "rate");
  doc = valid_scenario();
  doc.erase("services");
  expect_error(doc, "services");
  doc = valid_scenario();
  doc["services"][1]["name"] = "a";
  expect_error(doc, "duplicate");
  doc = valid_scenario();
  doc["repetitions"] = 1.5;
  expect_error(doc, "repetitions");
}

TEST(ScenarioTest, MockProfileErrorsSurfaceBeforeAnythingRuns) {
  auto doc = valid_scenario();
  doc["services"][1]["latency"]["p99_ms"] = 1;  // below p50
  expect_error(doc, "services[1]");
  doc = valid_scenario();
  doc["services"][0]["faults"] = json::array({{{"kind", "explode"}, {"probability", 0.5}}});
  expect_error(doc, "services[0]");
}

TEST(ScenarioTest, OverridesApplyAndAreValidated) {
  Overrides o;
  o.fanout = std::vector<int>{7};
  o.duration_s = 0.25;
  o.patterns = std::vector<std::string>{"async-group"};
  const auto s = parse_scenario(valid_scenario(), "s.json", kPatterns, o);
  EXPECT_EQ(s.fanout, std::vector<int>{7});
  EXPECT_DOUBLE_EQ(s.duration_s, 0.25);
  EXPECT_EQ(s.patterns, std::vector<std::string>{"async-group"});
  Overrides bad;
  bad.fanout = std::vector<int>{0};
  expect_error(valid_scenario(), "--fanout", bad);
  bad = {};
  bad.duration_s = -2;
  expect_error(valid_scenario(), "--duration", bad);
  bad = {};
  bad.patterns = std::vector<std::string>{"nope"};
  expect_error(valid_scenario(), "nope", bad);
}

TEST(ScenarioTest, FilesResolveByNameAndFailClearly) {
  TempDir dir;
  dir.write("one.json", valid_scenario().dump());
  dir.write("broken.json", "{\"name\": \"x\",");
  const auto s = load_scenarios("one", {dir.path()}, kPatterns);
  ASSERT_EQ(s.size(), 1u);
  EXPECT_EQ(s[0].name, "t");
  EXPECT_THROW(load_scenarios("missing", {dir.path()}, kPatterns), ScenarioError);
  try {
    load_scenarios("broken", {dir.path()}, kPatterns);
    FAIL();
  } catch (const ScenarioError& e) {
    EXPECT_NE(std::string(e.what()).find("malformed JSON"), std::string::npos) << e.what();
  }
}

TEST(ScenarioTest, SweepIncludesWithPrecedence) {
  TempDir dir;
  dir.write("base.json", valid_scenario().dump());
  dir.write("sweep.json", R"({"name": "sweep",
      "defaults": {"duration_s": 0.1, "repetitions": 3},
      "include": ["base", {"scenario": "base", "name": "base-wide", "fanout": [100], "repetitions": 1}]})");
  Overrides o;
  o.concurrency = std::vector<int>{4};
  const auto s = load_scenarios((dir.path() / "sweep.json").string(), {}, kPatterns, o);
  ASSERT_EQ(s.size(), 2u);
  EXPECT_EQ(s[0].name, "t");
  EXPECT_DOUBLE_EQ(s[0].duration_s, 0.1);  // defaults beat the file
  EXPECT_EQ(s[0].repetitions, 3);
  EXPECT_EQ(s[1].name, "base-wide");
  EXPECT_EQ(s[1].fanout, std::vector<int>{100});
  EXPECT_EQ(s[1].repetitions, 1);                    // the entry beats defaults
  EXPECT_EQ(s[1].concurrency, std::vector<int>{4});  // the command line beats all
  dir.write("dup.json", R"({"name": "dup", "include": ["base", "base"]})");
  EXPECT_THROW(load_scenarios((dir.path() / "dup.json").string(), {}, kPatterns), ScenarioError);
  const auto cells = expand_cells(s);
  EXPECT_EQ(cells.size(), 4u * 2 * 1 + 4u * 1 * 1);
  EXPECT_EQ(cells.front().name(), "t/channel-soup/fanout:3/concurrency:4");
}

TEST(ScenarioTest, ShippedScenariosAreValid) {
  const fs::path dir = fs::path(ORCHLAB_SOURCE_DIR) / "scenarios";
  auto all = pattern_names();
  for (const auto& g : go_pattern_names()) all.push_back(g);
  int files = 0;
  for (const auto& entry : fs::directory_iterator(dir)) {
    if (entry.path().extension() != ".json") continue;
    ++files;
    EXPECT_NO_THROW(load_scenarios(entry.path().string(), {dir}, all)) << entry.path();
  }
  EXPECT_GE(files, 11);
}

TEST(CliTest, ParsesRunFlags) {
  const char* argv[] = {"orchlab",
                        "run",
                        "--scenario",
                        "healthy",
                        "-s",
                        "x.json",
                        "--patterns=a,b",
                        "--fanout",
                        "3,10",
                        "-c",
                        "1,16",
                        "--duration",
                        "500ms",
                        "--repetitions",
                        "4",
                        "--mode",
                        "open",
                        "--rate",
                        "200/s",
                        "--services",
                        "http://h:1,http://h:2/",
                        "--out",
                        "r.json",
                        "--no-thread-budget",
                        "--quiet"};
  const auto cmd = parse_command_line(static_cast<int>(std::size(argv)), argv);
  ASSERT_EQ(cmd.kind, Command::Kind::run);
  const auto& r = cmd.run;
  EXPECT_EQ(r.scenarios, (std::vector<std::string>{"healthy", "x.json"}));
  EXPECT_EQ(*r.overrides.patterns, (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(*r.overrides.fanout, (std::vector<int>{3, 10}));
  EXPECT_EQ(*r.overrides.concurrency, (std::vector<int>{1, 16}));
  EXPECT_DOUBLE_EQ(*r.overrides.duration_s, 0.5);
  EXPECT_EQ(*r.overrides.repetitions, 4);
  EXPECT_EQ(*r.overrides.mode, Mode::open);
  EXPECT_DOUBLE_EQ(*r.overrides.rate, 200);
  // As written: a trailing slash is part of the path the service is asked.
  EXPECT_EQ(r.service_urls, (std::vector<std::string>{"http://h:1", "http://h:2/"}));
  EXPECT_EQ(r.services, RunOptions::ServicesMode::remote);
  EXPECT_EQ(r.out, "r.json");
  EXPECT_TRUE(r.quiet);
  EXPECT_FALSE(r.thread_budget);
  EXPECT_TRUE(
      parse_command_line(2, std::array<const char*, 2>{"orchlab", "run"}.data()).run.thread_budget);
  const char* traced[] = {
      "orchlab", "run", "--trace", "t.json", "--trace-scenarios", "one-hangs,fail-fast"};
  const auto t = parse_command_line(static_cast<int>(std::size(traced)), traced).run;
  EXPECT_EQ(t.trace, "t.json");
  EXPECT_EQ(t.trace_scenarios, (std::vector<std::string>{"one-hangs", "fail-fast"}));
}

TEST(CliTest, RejectsMistakesNamingTheFlag) {
  auto reject = [](std::vector<const char*> argv, const std::string& needle) {
    argv.insert(argv.begin(), "orchlab");
    try {
      parse_command_line(static_cast<int>(argv.size()), argv.data());
      ADD_FAILURE() << "accepted; expected " << needle;
    } catch (const UsageError& e) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
  };
  reject({"run", "--fanout", "3,x"}, "--fanout");
  reject({"run", "--duration", "2 weeks"}, "--duration");
  reject({"run", "--mode", "ajar"}, "--mode");
  reject({"run", "--services", "ftp://x"}, "--services");
  reject({"run", "--bogus"}, "--bogus");
  reject({"run", "--out"}, "--out");
  reject({"run", "--trace-scenarios", "one-hangs"}, "needs --trace");
  reject({"run", "--trace", "t.json", "--trace-scenarios", "a,,b"}, "--trace-scenarios");
  reject({"frobnicate"}, "frobnicate");
  reject({}, "command");
  EXPECT_DOUBLE_EQ(parse_duration("-1s", "--duration"), -1.0);  // validation names it later
  EXPECT_DOUBLE_EQ(parse_duration("2m", "--duration"), 120.0);
  EXPECT_DOUBLE_EQ(parse_rate("2k/s", "--rate"), 2000.0);
}

TEST(CliTest, HelpIsAlignedWithAnExample) {
  const auto u = usage();
  EXPECT_NE(u.find("Example: orchlab run"), std::string::npos);
  for (const char* flag :
       {"--scenario", "--patterns", "--fanout", "--concurrency", "--duration", "--repetitions",
        "--mode", "--rate", "--services", "--out", "--quiet", "--no-thread-budget"})
    EXPECT_NE(u.find(flag), std::string::npos) << flag;
}

TEST(HistogramTest, QuantilesWithinOnePercentOfSortedSamples) {
  std::mt19937_64 rng(42);
  std::lognormal_distribution<double> dist(std::log(10e6), 0.8);  // ns, p50 10 ms
  LogHistogram a, b;
  std::vector<std::uint64_t> raw;
  for (int i = 0; i < 200000; ++i) {
    const auto v = static_cast<std::uint64_t>(dist(rng));
    raw.push_back(v);
    (i % 3 ? a : b).record(v);  // two "threads"
  }
  a.merge(b);
  std::sort(raw.begin(), raw.end());
  ASSERT_EQ(a.count(), raw.size());
  for (double q : {0.5, 0.9, 0.99, 0.999}) {
    const auto exact =
        static_cast<double>(raw[static_cast<std::size_t>(std::ceil(q * raw.size())) - 1]);
    const auto got = static_cast<double>(a.quantile(q));
    EXPECT_NEAR(got, exact, exact * 0.01) << "q=" << q;
  }
  EXPECT_EQ(a.max(), raw.back());
  EXPECT_EQ(a.min(), raw.front());
}

Measurement sample_measurement(int rep, std::uint64_t base_us) {
  Measurement m;
  m.scenario = "s";
  m.pattern = "p";
  m.fanout = 3;
  m.concurrency = 2;
  m.repetitions = 2;
  m.repetition_index = rep;
  m.deadline_ms = 100;
  m.wall_s = 1;
  m.window_s = 1;
  m.orchestrations = 100;
  m.completed_in_window = 100;
  for (int i = 0; i < 100; ++i) m.latency_ns.record((base_us + i) * 1000);
  m.overshoot_ns.record(0, 100);
  m.complete = 100;
  m.leaked_tasks_at_return = rep;
  m.cpu_s = 0.01;
  m.server = ServerTotals{};
  m.series.started = {1, 2};
  m.series.finished = {1, 2};
  m.series.in_flight = {0, 0};
  m.series.live_tasks = {0, 0};
  m.series.os_threads = {3, 3};
  return m;
}

TEST(ReportTest, EntriesCarryEveryFieldInOrder) {
  const auto e = benchmark_entry(sample_measurement(0, 1000));
  EXPECT_EQ(e["name"], "s/p/fanout:3/concurrency:2/real_time");
  EXPECT_EQ(e["run_type"], "iteration");
  EXPECT_EQ(e["time_unit"], "us");
  EXPECT_EQ(e["iterations"], 100);
  EXPECT_EQ(e["threads"], 1);
  std::vector<std::string> keys;
  for (const auto& [k, v] : e.items()) keys.push_back(k);
  std::size_t last = 0;
  for (const auto& f : metric_fields()) {
    const auto it = std::find(keys.begin(), keys.end(), f);
    ASSERT_NE(it, keys.end()) << f;
    const auto pos = static_cast<std::size_t>(it - keys.begin());
    EXPECT_GT(pos, last) << f << " out of DESIGN.md order";
    last = pos;
  }
  EXPECT_TRUE(e["infeasible"].is_null());
  EXPECT_TRUE(e["pool_wait_p99_us"].is_null());  // pool not measured: null, not 0
  EXPECT_NEAR(e["p50_us"].get<double>(), 1050, 1050 * 0.01);
  EXPECT_DOUBLE_EQ(e["items_per_second"].get<double>(), 100);
}

// A percentile needs 1 / (1 - q) samples; with fewer it is null, never the
// maximum in disguise, and lab.notes says why.
TEST(ReportTest, APercentileWithTooFewSamplesIsNullWithTheReason) {
  auto m = sample_measurement(0, 1000);  // 100 samples
  auto e = benchmark_entry(m);
  EXPECT_TRUE(e["p99_us"].is_number());
  EXPECT_TRUE(e["p999_us"].is_null());
  EXPECT_EQ(e["latency_samples"], 100);
  m.latency_ns.clear();
  for (int i = 0; i < 50; ++i) m.latency_ns.record(1000 * 1000);
  e = benchmark_entry(m);
  EXPECT_TRUE(e["p99_us"].is_null());
  EXPECT_TRUE(e["p90_us"].is_number());
  EXPECT_EQ(e["latency_samples"], 50);
  const auto doc = build_report(RunInfo{}, {m}, nullptr);
  const auto notes = doc["lab"]["notes"].dump();
  EXPECT_NE(notes.find("p99_us is null where a repetition has fewer than 100"), std::string::npos)
      << notes;
  EXPECT_EQ(notes.find("p90_us is null"), std::string::npos) << notes;
  // The overshoot's p99 likewise (one overshoot per orchestration).
  EXPECT_EQ(notes.find("deadline_overshoot_p99_us is null"), std::string::npos) << notes;
  m.overshoot_ns.clear();
  m.overshoot_ns.record(0, 50);
  EXPECT_TRUE(benchmark_entry(m)["deadline_overshoot_p99_us"].is_null());
  EXPECT_NE(build_report(RunInfo{}, {m}, nullptr)["lab"]["notes"].dump().find(
                "deadline_overshoot_p99_us is null where a repetition has fewer than 100"),
            std::string::npos);
}

// Throughput is the window's: an orchestration that returned after the
// window counts in the latency, not in items_per_second.
TEST(ReportTest, ThroughputCountsOnlyWhatEndedInTheWindow) {
  auto m = sample_measurement(0, 1000);
  m.window_s = 2;
  m.wall_s = 5.84;  // one overran the window by far
  m.completed_in_window = 90;
  const auto e = benchmark_entry(m);
  EXPECT_DOUBLE_EQ(e["items_per_second"].get<double>(), 45);
  EXPECT_EQ(e["iterations"], 100);
  EXPECT_FALSE(e.contains("target_rate"));  // closed loop
  m.open_loop = true;
  m.target_rate = 50;
  m.starts_expired = 10;  // 90 of the window's 100 starts began
  const auto o = benchmark_entry(m);
  EXPECT_EQ(o["target_rate"], 50);
  EXPECT_DOUBLE_EQ(o["achieved_rate"].get<double>(), 45);
  EXPECT_EQ(o["saturated"], true);  // 45 < 0.95 x 50
}

TEST(ReportTest, AggregatesMergeHistogramsInsteadOfAveragingPercentiles) {
  auto a = sample_measurement(0, 1000);
  auto b = sample_measurement(1, 100000);
  const auto aggs = aggregate_entries({&a, &b});
  ASSERT_EQ(aggs.size(), 4u);
  EXPECT_EQ(aggs[0]["name"], "s/p/fanout:3/concurrency:2/real_time_mean");
  EXPECT_EQ(aggs[0]["run_type"], "aggregate");
  EXPECT_EQ(aggs[0]["aggregate_name"], "mean");
  EXPECT_EQ(aggs[3]["aggregate_name"], "cv");
  EXPECT_EQ(aggs[3]["aggregate_unit"], "percentage");
  // Merged: the p50 of the union lies at the boundary of the two halves, not
  // at the mean of two p50s (~50 500 us).
  const double p50 = aggs[0]["p50_us"].get<double>();
  EXPECT_NEAR(p50, 1099, 1099 * 0.01);
  const double p99 = aggs[0]["p99_us"].get<double>();
  EXPECT_NEAR(p99, 100098, 100098 * 0.01);
  EXPECT_DOUBLE_EQ(aggs[0]["leaked_tasks_at_return"].get<double>(), 0.5);
  EXPECT_NEAR(aggs[2]["leaked_tasks_at_return"].get<double>(), 0.7071, 1e-3);
  EXPECT_EQ(aggs[0]["pattern"], "p");
  EXPECT_TRUE(aggregate_entries({&a}).empty());  // as Google Benchmark: none for one repetition
}

TEST(ReportTest, InfeasibleCellsAreRecordedNotMeasured) {
  Measurement m;
  m.scenario = "s";
  m.pattern = "p";
  m.fanout = 1000;
  m.concurrency = 16;
  m.infeasible = "needs ~16000 threads";
  const auto e = benchmark_entry(m);
  EXPECT_EQ(e["infeasible"], "needs ~16000 threads");
  EXPECT_EQ(e["error_occurred"], true);
  EXPECT_TRUE(e["p99_us"].is_null());
  EXPECT_TRUE(e["leaked_tasks_at_return"].is_null());
  const auto doc = build_report(RunInfo{"", "x", "x run", true, 0, std::nullopt, std::nullopt, {}},
                                {m}, nullptr);
  EXPECT_EQ(doc["context"]["interrupted"], true);
  EXPECT_EQ(doc["benchmarks"].size(), 1u);
  EXPECT_TRUE(doc["lab"]["series"].empty());
}

TEST(ReportTest, AtomicWriteLeavesOnlyTheReport) {
  TempDir dir;
  const auto a = sample_measurement(0, 1000);
  const auto b = sample_measurement(1, 2000);
  const auto doc = build_report(RunInfo{"", "x", "x run", false, 0, std::nullopt, std::nullopt, {}},
                                {a, b}, nullptr);
  const auto path = dir.path() / "sub" / "report.json";
  write_atomic(path, doc);
  std::vector<std::string> names;
  for (const auto& f : fs::directory_iterator(path.parent_path()))
    names.push_back(f.path().filename().string());
  EXPECT_EQ(names, std::vector<std::string>{"report.json"});
  std::ifstream in(path);
  const auto back = json::parse(in);
  EXPECT_EQ(back["benchmarks"].size(), 2u + 4u);
  for (const char* k :
       {"date", "host_name", "executable", "num_cpus", "mhz_per_cpu", "cpu_scaling_enabled",
        "caches", "load_avg", "library_build_type", "orchlab_version", "git_sha", "build_type",
        "compiler", "command_line", "interrupted"})
    EXPECT_TRUE(back["context"].contains(k)) << k;
  // The C++ groups and the Go errgroups (the +ignores ones join every call too).
  EXPECT_EQ(back["lab"]["metrics"]["leaked_tasks_at_return"]["must_be_zero_for"].size(), 10u);
  EXPECT_EQ(back["lab"]["series"]["s/p/fanout:3/concurrency:2"]["os_threads"], json::array({3, 3}));
}

TEST(DriverTest, CallKeysAreUniqueAndPatternIndependent) {
  std::set<std::uint64_t> keys;
  for (int rep = 0; rep < 2; ++rep)
    for (int caller = 0; caller < 8; ++caller)
      for (std::uint64_t seq = 0; seq < 50; ++seq)
        for (int call = 0; call < 10; ++call) {
          const auto k = call_key(rep, caller, seq, call);
          EXPECT_NE(k, 0u);
          keys.insert(k);
        }
  EXPECT_EQ(keys.size(), 2u * 8 * 50 * 10);
  EXPECT_EQ(call_key(1, 2, 3, 4), call_key(1, 2, 3, 4));
}

TEST(DriverTest, ThreadPerCallCellsBeyondTheMachineAreInfeasible) {
  Scenario s;
  s.name = "x";
  s.max_conns_per_host = 256;
  sys::Limits limits;
  limits.threads = 32000;
  limits.fds = 20000;
  limits.threads_bound = "pid_max 32768";
  Cell huge{&s, "channel-soup", 1000, 16};
  const auto why = infeasible_reason(huge, 3, true, limits);
  ASSERT_TRUE(why.has_value());
  EXPECT_NE(why->find("threads"), std::string::npos) << *why;
  EXPECT_FALSE(infeasible_reason(Cell{&s, "async-group", 1000, 16}, 3, true, limits));
  EXPECT_FALSE(infeasible_reason(Cell{&s, "bounded-group", 1000, 16}, 3, true, limits));
  EXPECT_FALSE(infeasible_reason(Cell{&s, "channel-soup", 3, 16}, 3, true, limits));
  // --no-thread-budget: the thread estimate is not applied, the fd check is.
  EXPECT_FALSE(infeasible_reason(huge, 3, true, limits, /*thread_budget=*/false));
  limits.fds = 1000;
  const auto fds = infeasible_reason(Cell{&s, "async-group", 1000, 16}, 3, true, limits);
  ASSERT_TRUE(fds.has_value());
  EXPECT_TRUE(infeasible_reason(Cell{&s, "async-group", 1000, 16}, 3, true, limits, false));
  EXPECT_NE(fds->find("file descriptors"), std::string::npos);
}

}  // namespace
}  // namespace orchlab::harness

// Drivers: exhibits in another language (docs/drivers.md). The protocol's
// input and the reading of a measurement, and what the harness does with a
// driver that is missing, crashes, hangs, garbles or omits a field: small
// fake drivers (shell scripts) stand in for orchlab-go.
#include "orchlab/harness/external.hpp"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "orchlab/harness/driver.hpp"
#include "orchlab/harness/scenario.hpp"
#include "orchlab/harness/services.hpp"
#include "orchlab/harness/trace.hpp"
#include "orchlab/pattern.hpp"

namespace orchlab::harness {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

std::vector<std::string> known() {
  auto k = pattern_names();
  for (const auto& g : go_pattern_names()) k.push_back(g);
  return k;
}

Scenario tiny(const std::string& pattern = "go-errgroup") {
  return parse_scenario(json::parse(R"({"name": "tiny", "deadline_ms": 50, "fanout": 3,
      "concurrency": 2, "duration_s": 0.1, "warmup_s": 0,
      "services": [{"name": "a", "latency": {"dist": "fixed", "ms": 1}}],
      "patterns": [")" + pattern + R"("]})"),
                        "test", known());
}

// The scenario's first cell (expand_cells of a temporary would dangle).
Cell cell_of(const Scenario& sc) {
  return Cell{&sc, sc.patterns.front(), sc.fanout.front(), sc.concurrency.front()};
}

// A measurement a driver could print for `cell`: two orchestrations, both complete.
json good_measurement(const Cell& cell) {
  json m = {{"protocol", 1},
            {"runtime", "go"},
            {"pattern", cell.pattern},
            {"exhibit_form", "article"},
            {"fanout", cell.fanout},
            {"concurrency", cell.concurrency},
            {"callers", cell.concurrency},
            {"mode", "closed"},
            {"deadline_ms", cell.scenario->deadline_ms},
            {"limit", cell.scenario->limit},
            {"iterations", 2},
            {"real_time", 0.005},
            {"time_unit", "us"},
            {"items_per_second", 20.0},
            {"latency_samples", 2},
            {"complete", 2},
            {"partial", 0},
            {"failed", 0},
            {"timed_out", 0},
            {"leaked_tasks_at_return", 0},
            {"leaked_tasks_end", 0},
            {"zombie_task_s", 0.0},
            {"late_completions", 0},
            {"live_tasks_peak", 6},
            {"drain_ms", 0.1},
            {"drained", true},
            {"warmup_s", 0.0},
            {"window_s", 0.1},
            {"wall_s", 0.1},
            {"completed_in_window", 2},
            {"calls", 6},
            {"call_ok", 6},
            {"call_http_errors", 0},
            {"call_transport_errors", 0},
            {"call_cancelled", 0},
            {"call_unanswered", 0},
            {"orchestrations_panicked", 0},
            {"tasks_started", 6},
            {"tasks_finished", 6},
            {"go_version", "go1.19.8"},
            {"gomaxprocs", 2},
            {"transport",
             {{"mode", "lab"},
              {"max_conns_per_host", 64},
              {"max_idle_conns_per_host", 64},
              {"max_idle_conns", 0},
              {"idle_conn_timeout_ms", 90000}}},
            {"goroutines_baseline", 3},
            {"goroutines_peak", 12},
            {"goroutines_end", 0},
            {"series",
             {{"bucket_ms", 100},
              {"window_ms", 100.0},
              {"started", {2}},
              {"finished", {2}},
              {"in_flight", {0}},
              {"live_tasks", {0}},
              {"goroutines", {5}}}},
            {"histograms",
             {{"latency_ns",
               {{"buckets", {{5, 5, 2}}}, {"count", 2}, {"min", 5}, {"max", 5}, {"sum", 10}}},
              {"overshoot_ns",
               {{"buckets", {{0, 0, 2}}}, {"count", 2}, {"min", 0}, {"max", 0}, {"sum", 0}}}}},
            {"notes", json::array()}};
  return json::parse(m.dump());  // as read from a pipe: counts unsigned
}

TEST(ExternalTest, RuntimesAndTheGoExhibitsAreNamed) {
  EXPECT_EQ(runtime_of("channel-soup"), "cpp-thread");
  EXPECT_EQ(runtime_of("async-group+collect-all"), "cpp-asio");
  EXPECT_EQ(runtime_of("go-errgroup-limit"), "go");
  EXPECT_EQ(go_pattern_names().size(), 7u);
  for (const auto& g : go_pattern_names()) EXPECT_TRUE(is_driver_pattern(g)) << g;
}

TEST(ExternalTest, AllLeavesOutWhatCannotRunButANameBringsItIn) {
  const json doc = json::parse(R"({"name": "s", "patterns": ["all"],
      "services": [{"name": "a", "latency": {"dist": "fixed", "ms": 1}}]})");
  const auto with = parse_scenario(doc, "t", known());
  EXPECT_NE(std::find(with.patterns.begin(), with.patterns.end(), "go-errgroup"),
            with.patterns.end());
  const auto without = parse_scenario(doc, "t", known(), {}, go_pattern_names());
  for (const auto& p : without.patterns) EXPECT_FALSE(is_driver_pattern(p)) << p;
  json named = doc;
  named["patterns"] = {"go-errgroup", "cancellable-group"};
  EXPECT_EQ(parse_scenario(named, "t", known(), {}, go_pattern_names()).patterns.size(), 2u);
}

TEST(ExternalTest, GoTransportIsLabOrDefault) {
  auto sc = tiny();
  EXPECT_EQ(sc.go_transport, "lab");
  const json doc = json::parse(R"({"name": "s", "go_transport": "default",
      "services": [{"name": "a", "latency": {"dist": "fixed", "ms": 1}}]})");
  EXPECT_EQ(parse_scenario(doc, "t", known()).go_transport, "default");
  json bad = doc;
  bad["go_transport"] = "fast";
  EXPECT_THROW(parse_scenario(bad, "t", known()), ScenarioError);
}

TEST(ExternalTest, TheInputCarriesTheCellAndTheOpenLoopsOwnSchedule) {
  auto sc = parse_scenario(
      json::parse(R"({"name": "o", "mode": "open", "rate": 200, "arrivals": "poisson",
          "concurrency": 8, "duration_s": 0.5, "deadline_ms": 100, "go_transport": "default",
          "services": [{"name": "a", "latency": {"dist": "fixed", "ms": 1}}]})"),
      "t", known());
  auto services = Services::inprocess(sc.services);
  Cell cell = cell_of(sc);
  cell.pattern = "go-errgroup";
  CellEnv env;
  env.cell = &cell;
  env.services = services.get();
  env.shard_index = 1;
  env.shard_count = 2;
  const auto in = driver_input(env, 3, 12345, std::chrono::milliseconds(700));
  EXPECT_EQ(in["protocol"], 1);
  EXPECT_EQ(in["pattern"], "go-errgroup");
  EXPECT_EQ(in["mode"], "open");
  EXPECT_EQ(in["go_transport"], "default");
  EXPECT_EQ(in["call_keys"]["rule"], "orchlab-v1");
  EXPECT_EQ(in["call_keys"]["repetition"], 3);
  EXPECT_EQ(in["load_start_mono_ns"], 12345);
  EXPECT_EQ(in["drain_timeout_ms"], 700);
  EXPECT_EQ(in["caller_ids"], json({1, 3, 5, 7}));
  EXPECT_DOUBLE_EQ(in["target_rate"].get<double>(), 100.0);
  // Shard 1 of 2 takes the odd positions of the one schedule every shard
  // draws; repetition 3's schedule is not repetition 2's.
  const auto all = open_loop_starts(sc, 3);
  ASSERT_GT(all.size(), 50u);
  std::vector<std::int64_t> odd;
  for (const auto& s : all)
    if (s.seq % 2 == 1) odd.push_back(s.offset_ns);
  EXPECT_EQ(in["start_offsets_ns"].get<std::vector<std::int64_t>>(), odd);
  EXPECT_EQ(in["start_seqs"].size(), odd.size());
  EXPECT_EQ(in["start_seqs"][0], 1);
  EXPECT_NE(open_loop_starts(sc, 2).front().offset_ns + open_loop_starts(sc, 2).back().offset_ns,
            all.front().offset_ns + all.back().offset_ns);
  for (const auto& s : all) EXPECT_LT(s.offset_ns, 700'000'000);  // warm-up 0.2 s + window
}

TEST(ExternalTest, TheBudgetCoversTheLongestOrchestration) {
  auto sc = tiny();
  using ms = std::chrono::milliseconds;
  // 300 lead + 100 window + max(3 x 50, 1) + 200 drain + 1000 grace.
  EXPECT_EQ(driver_time_budget(cell_of(sc), ms(300), ms(200), ms(1000)).count(), 1750);
  sc.services[0]["faults"] = {{{"kind", "hang"}, {"probability", 0.1}, {"max_ms", 4000}}};
  EXPECT_EQ(driver_time_budget(Cell{&sc, "go-errgroup", 3, 2}, ms(300), ms(200), ms(1000)).count(),
            5600);
}

TEST(ExternalTest, AMeasurementIsReadIntoTheEntry) {
  const auto sc = tiny();
  const Cell cell = cell_of(sc);
  Measurement m = cell_identity(cell, 0, 0);
  std::string why;
  ASSERT_TRUE(apply_driver_measurement(good_measurement(cell), cell, m, why)) << why;
  EXPECT_EQ(m.orchestrations, 2u);
  EXPECT_EQ(m.complete, 2u);
  EXPECT_EQ(m.calls, 6u);
  EXPECT_EQ(m.latency_ns.count(), 2u);
  EXPECT_EQ(m.series.goroutines, std::vector<std::int64_t>{5});
  EXPECT_EQ(m.runtime_fields["go_version"], "go1.19.8");
  EXPECT_EQ(m.runtime_fields["go_transport"]["mode"], "lab");
  m.lock_measured = false;
  m.threads_end_measured = false;
  const auto e = benchmark_entry(m);
  EXPECT_EQ(e["runtime"], "go");
  EXPECT_TRUE(e["lock_wait_ns"].is_null());
  EXPECT_TRUE(e["threads_end"].is_null());
  EXPECT_TRUE(e["pool_exhausted"].is_null());
  EXPECT_EQ(e["goroutines_peak"], 12);
  EXPECT_EQ(e["exhibit_form"], "article");
}

TEST(ExternalTest, WhatIsNotAMeasurementOfTheCellIsRefusedNamingWhy) {
  const auto sc = tiny();
  const Cell cell = cell_of(sc);
  struct Case {
    const char* name;
    std::function<void(json&)> spoil;
    const char* says;
  };
  const std::vector<Case> cases = {
      {"missing field", [](json& j) { j.erase("zombie_task_s"); }, "no field \"zombie_task_s\""},
      {"other protocol", [](json& j) { j["protocol"] = 2; }, "protocol 2"},
      {"other pattern", [](json& j) { j["pattern"] = "go-channel-soup"; }, "go-channel-soup"},
      {"other shape", [](json& j) { j["fanout"] = 4; }, "fan-out 4"},
      {"negative count", [](json& j) { j["calls"] = -1; }, "\"calls\" is not a count"},
      {"verdicts", [](json& j) { j["complete"] = 1; }, "do not add up"},
      {"histogram", [](json& j) { j["histograms"]["latency_ns"]["count"] = 3; }, "latency_ns"},
      {"not an object", [](json& j) { j = json::array(); }, "not a measurement"},
  };
  for (const auto& c : cases) {
    json j = good_measurement(cell);
    c.spoil(j);
    Measurement m = cell_identity(cell, 0, 0);
    std::string why;
    EXPECT_FALSE(apply_driver_measurement(j, cell, m, why)) << c.name;
    EXPECT_NE(why.find(c.says), std::string::npos) << c.name << ": " << why;
  }
}

// Fake drivers: each a shell script in a folder of its own.
class FakeDriverTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("orchlab-fake-driver-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::create_directories(dir_);
    sc_ = tiny();
    cell_ = cell_of(sc_);
    services_ = Services::inprocess(sc_.services);
    env_.cell = &cell_;
    env_.services = services_.get();
    env_.drain_timeout = std::chrono::milliseconds(100);
    env_.driver_grace = std::chrono::milliseconds(1500);
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  std::string script(const std::string& body) {
    const auto path = dir_ / "driver.sh";
    std::ofstream(path) << "#!/bin/sh\n" << body << "\n";
    ::chmod(path.c_str(), 0755);
    return path.string();
  }
  Measurement run(const std::string& driver) {
    bool complete = false;
    auto m = run_driver_repetition(env_, driver, 0, complete);
    EXPECT_TRUE(complete);
    return m;
  }
  static std::string notes(const Measurement& m) {
    std::string all;
    for (const auto& n : m.notes) all += n + "\n";
    return all;
  }
  fs::path dir_;
  Scenario sc_, open_;
  Cell cell_;
  std::unique_ptr<Services> services_;
  CellEnv env_;
};

TEST_F(FakeDriverTest, AGoodMeasurementIsMeasuredFromOutsideToo) {
  std::ofstream(dir_ / "m.json") << good_measurement(cell_).dump();
  // It reads its input (as a driver must) and answers after a moment.
  const auto m = run(script("cat > " + (dir_ / "in.json").string() + "; sleep 0.2; cat " +
                            (dir_ / "m.json").string()));
  ASSERT_FALSE(m.infeasible) << *m.infeasible;
  EXPECT_EQ(m.runtime, "go");
  EXPECT_EQ(m.complete, 2u);
  EXPECT_GT(m.threads_baseline, 0);  // /proc of the driver's process was read
  EXPECT_GT(m.rss_baseline_kb, 0);
  ASSERT_TRUE(m.server);
  const auto in = json::parse(std::ifstream(dir_ / "in.json"));
  EXPECT_EQ(in["pattern"], "go-errgroup");
  EXPECT_EQ(in["services"], json(services_->urls()));
}

TEST_F(FakeDriverTest, AMissingDriverIsInfeasible) {
  const auto m = run((dir_ / "no-such-driver").string());
  ASSERT_TRUE(m.infeasible);
  EXPECT_NE(m.infeasible->find("cannot start"), std::string::npos) << *m.infeasible;
}

TEST_F(FakeDriverTest, ACrashIsInfeasibleWithItsSignalAndStderr) {
  const auto m = run(script("cat >/dev/null; echo 'panic: boom' >&2; kill -SEGV $$"));
  ASSERT_TRUE(m.infeasible);
  EXPECT_NE(m.infeasible->find("SIGSEGV"), std::string::npos) << *m.infeasible;
  EXPECT_NE(notes(m).find("panic: boom"), std::string::npos) << notes(m);
}

TEST_F(FakeDriverTest, AHangIsKilledAtItsBudget) {
  const auto start = std::chrono::steady_clock::now();
  // The sleep is a child of the script: the kill must reach its whole group.
  const auto m = run(script("cat >/dev/null; sleep 60; echo late"));
  const auto took = std::chrono::steady_clock::now() - start;
  ASSERT_TRUE(m.infeasible);
  EXPECT_NE(m.infeasible->find("was killed"), std::string::npos) << *m.infeasible;
  EXPECT_LT(took, std::chrono::seconds(20));
  EXPECT_GE(took, std::chrono::milliseconds(1500));
}

TEST_F(FakeDriverTest, GarbageAndBadExitsAreInfeasibleNamingWhat) {
  auto m = run(script("cat >/dev/null; echo 'hello, world'"));
  ASSERT_TRUE(m.infeasible);
  EXPECT_NE(m.infeasible->find("not a measurement: \"hello, world"), std::string::npos)
      << *m.infeasible;
  m = run(script("echo 'orchlab-go: pattern: unknown' >&2; exit 2"));
  ASSERT_TRUE(m.infeasible);
  EXPECT_NE(m.infeasible->find("status 2"), std::string::npos) << *m.infeasible;
  EXPECT_NE(notes(m).find("orchlab-go: pattern: unknown"), std::string::npos);
  json partial = good_measurement(cell_);
  partial.erase("histograms");
  std::ofstream(dir_ / "m.json") << partial.dump();
  m = run(script("cat >/dev/null; cat " + (dir_ / "m.json").string()));
  ASSERT_TRUE(m.infeasible);
  EXPECT_NE(m.infeasible->find("no field \"histograms\""), std::string::npos) << *m.infeasible;
}

TEST_F(FakeDriverTest, ADriverThatReadsNothingIsNotASignal) {
  // An open loop of 100,000 starts is over a megabyte of input, more than a
  // pipe holds: the driver exits without reading it, and the rest of the
  // write meets a closed pipe. EPIPE, not SIGPIPE (this test binary does not
  // ignore it).
  open_ = parse_scenario(json::parse(R"({"name": "o", "mode": "open", "rate": 200000,
      "concurrency": 1000, "duration_s": 0.5, "warmup_s": 0, "deadline_ms": 50,
      "services": [{"name": "a", "latency": {"dist": "fixed", "ms": 1}}],
      "patterns": ["go-errgroup"]})"),
                         "test", known());
  Cell cell = cell_of(open_);
  env_.cell = &cell;
  const auto m = run(script("echo 'orchlab-go: no' >&2; exit 2"));
  ASSERT_TRUE(m.infeasible);
  EXPECT_NE(m.infeasible->find("status 2"), std::string::npos) << *m.infeasible;
}

// --trace and a driver (docs/drivers.md, "The trace"): the input asks for the
// trace; a measurement's samples are drawn with their calls; a measurement
// without one, a malformed one, or a driver that predates the field leaves
// the cell untraced, saying why, and measured all the same.
class FakeTracedDriverTest : public FakeDriverTest {
 protected:
  json traced_run(const std::string& driver, Measurement* out = nullptr) {
    trace::Tracer tracer((dir_ / "t.json").string());
    env_.tracer = &tracer;
    const auto m = run(driver);
    env_.tracer = nullptr;
    EXPECT_FALSE(m.infeasible) << *m.infeasible;
    if (out) *out = m;
    tracer.write();
    return json::parse(std::ifstream(dir_ / "t.json"));
  }
  std::string with_trace(const json& trace) {
    json j = good_measurement(cell_);
    if (!trace.is_null()) j["trace"] = trace;
    std::ofstream(dir_ / "m.json") << j.dump();
    return script("cat > " + (dir_ / "in.json").string() + "; cat " + (dir_ / "m.json").string());
  }
  json sample() const {
    json calls = json::array();
    const std::int64_t t = 1'000'000'000;
    for (int i = 0; i < cell_.fanout; ++i)
      calls.push_back({{"key", call_key(0, 1, 7, i)},
                       {"start_ns", t + 1000},
                       {"reply_ns", t + 2000 + i},
                       {"task_end_ns", t + 3000},
                       {"status", 200},
                       {"outcome", "answered"}});
    return {{"clock", "CLOCK_MONOTONIC ns"},
            {"orchestrations_recorded", 5},
            {"calls_recorded", 15},
            {"orchestrations",
             {{{"sampled_as", "near p50"},
               {"verdict", "complete"},
               {"caller", 1},
               {"seq", 7},
               {"intended_ns", t},
               {"start_ns", t},
               {"end_ns", t + 5000},
               {"tasks_live_at_return", 0},
               {"calls", calls}}}}};
  }
};

TEST_F(FakeTracedDriverTest, ASampleIsDrawnWithItsCalls) {
  const json doc = traced_run(with_trace(sample()));
  const auto in = json::parse(std::ifstream(dir_ / "in.json"));
  EXPECT_EQ(in["trace"]["max_orchestrations"], trace::Repetition::kMaxOrchRecords);
  ASSERT_EQ(doc["otherData"]["cells"].size(), 1u);
  const auto& c = doc["otherData"]["cells"][0];
  EXPECT_EQ(c["traced"], true);
  EXPECT_EQ(c["recorded_by"], "driver");
  EXPECT_EQ(c["samples"], 1);
  EXPECT_EQ(c["calls_recorded"], 15);
  int calls = 0, orchestrations = 0;
  for (const auto& e : doc["traceEvents"]) {
    if (e["ph"] != "X") continue;
    const std::string name = e["name"];
    if (name.rfind("call: answered 200", 0) == 0) {
      ++calls;
      EXPECT_EQ(e["ts"], 1'000'001.0);  // µs
      // The services traced (in-process mocks) but never saw these keys.
      EXPECT_EQ(e["args"]["service_record"], "none: the request never reached the service");
    }
    if (name == "orchestration: complete") ++orchestrations;
  }
  EXPECT_EQ(calls, cell_.fanout);
  EXPECT_EQ(orchestrations, 1);
}

TEST_F(FakeTracedDriverTest, NoTraceOrAMalformedOneLeavesTheCellUntraced) {
  json bad_key = sample();
  bad_key["orchestrations"][0]["calls"][0]["key"] = 12345;
  json no_calls = sample();
  no_calls["orchestrations"][0].erase("calls");
  for (const auto& [trace, says] :
       std::vector<std::pair<json, std::string>>{{json(), "has no \"trace\""},
                                                 {bad_key, "not the one call_keys gives it"},
                                                 {no_calls, "\"calls\" is not a list"}}) {
    Measurement m;
    const json doc = traced_run(with_trace(trace), &m);
    EXPECT_EQ(m.complete, 2u) << "measured all the same";
    ASSERT_EQ(doc["otherData"]["cells"].size(), 1u);
    const auto& c = doc["otherData"]["cells"][0];
    EXPECT_EQ(c["traced"], false);
    EXPECT_NE(c["why"].get<std::string>().find(says), std::string::npos) << c["why"];
  }
}

TEST_F(FakeTracedDriverTest, ADriverThatPredatesTheTraceRunsAgainWithout) {
  std::ofstream(dir_ / "m.json") << good_measurement(cell_).dump();
  // Refuses the field as orchlab-go refuses any unknown one.
  const std::string driver = script(
      "in=$(cat); case \"$in\" in *'\"trace\"'*) echo 'orchlab-go: stdin is not a protocol 1 "
      "cell: json: unknown field \"trace\"' >&2; exit 2;; esac; cat " +
      (dir_ / "m.json").string());
  Measurement m;
  const json doc = traced_run(driver, &m);
  EXPECT_EQ(m.complete, 2u);
  const auto& c = doc["otherData"]["cells"][0];
  EXPECT_EQ(c["traced"], false);
  EXPECT_NE(c["why"].get<std::string>().find("predates"), std::string::npos) << c["why"];
}

}  // namespace
}  // namespace orchlab::harness

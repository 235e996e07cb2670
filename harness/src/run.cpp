#include "orchlab/harness/run.hpp"

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <ctime>
#include <fstream>
#include <iostream>
#include <map>
#include <random>
#include <set>

#include "orchlab/census.hpp"
#include "orchlab/harness/driver.hpp"
#include "orchlab/harness/external.hpp"
#include "orchlab/harness/journal.hpp"
#include "orchlab/harness/progress.hpp"
#include "orchlab/harness/report.hpp"
#include "orchlab/harness/scenario.hpp"
#include "orchlab/harness/services.hpp"
#include "orchlab/harness/system.hpp"
#include "orchlab/harness/trace.hpp"
#include "orchlab/http_client.hpp"
#include "orchlab/mock/config.hpp"
#include "orchlab/pattern.hpp"

#ifndef ORCHLAB_SOURCE_DIR
#define ORCHLAB_SOURCE_DIR "."
#endif

namespace orchlab::harness {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

// Set by SIGINT/SIGTERM; a second signal exits at once.
std::atomic<bool> g_interrupted{false};
static_assert(std::atomic<bool>::is_always_lock_free, "used from a signal handler");

extern "C" void on_signal(int) {
  if (g_interrupted.exchange(true)) ::_exit(130);
  static const char msg[] =
      "\norchlab: interrupted; finishing the current cell (Ctrl-C again to quit now)\n";
  [[maybe_unused]] auto n = ::write(STDERR_FILENO, msg, sizeof msg - 1);
}

void install_signal_handlers() {
  struct sigaction sa {};
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
  // A peer that closes mid-write must be an error code, not a dead process;
  // so must a journal or report past a file-size limit.
  signal(SIGPIPE, SIG_IGN);
  signal(SIGXFSZ, SIG_IGN);
}

std::string utc_stamp() {
  const std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y%m%dT%H%M%SZ", &tm);
  return buf;
}

// results/latest -> <stamp>, replaced atomically (symlink + rename).
void point_latest(const fs::path& folder) {
  const fs::path latest = folder.parent_path() / "latest";
  const fs::path tmp = folder.parent_path() / (".latest.tmp." + std::to_string(::getpid()));
  std::error_code ec;
  fs::remove(tmp, ec);
  fs::create_directory_symlink(folder.filename(), tmp, ec);
  if (!ec) fs::rename(tmp, latest, ec);
  if (ec)
    std::cerr << "orchlab: could not update " << latest.string() << ": " << ec.message() << "\n";
}

// One repetition: warm-up, window, a deadline for the last orchestrations,
// reset/stats overhead.
double planned_repetition_seconds(const Cell& cell) {
  const auto& sc = *cell.scenario;
  return warmup_seconds(sc) + sc.duration_s + sc.deadline_ms / 1000.0 + 0.1;
}

// A sharded run's slot for one repetition: the settle (reset, /__stats
// read), warm-up, window, two deadlines for the last orchestrations and their
// leftovers, and a second of drain. Every shard computes the same slots from
// the common start, so their windows line up without talking to each other.
double slot_seconds(const Cell& cell) {
  const auto& sc = *cell.scenario;
  return std::chrono::duration<double>(kSlotSettle).count() + warmup_seconds(sc) + sc.duration_s +
         2 * sc.deadline_ms / 1000.0 + 1.0;
}

std::int64_t steady_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

std::int64_t unix_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string repetition_summary(const Measurement& m) {
  if (m.infeasible) return "infeasible: " + *m.infeasible;
  char buf[64];
  std::string out;
  std::snprintf(buf, sizeof buf, "%.0f/s",
                m.window_s > 0 ? m.completed_in_window / m.window_s : 0.0);
  out += buf;
  if (m.latency_ns.count() >= 100) {
    std::snprintf(buf, sizeof buf, "  p99 %.1fms", m.latency_ns.quantile(0.99) / 1e6);
    out += buf;
  } else {
    out += "  p99 n/a (" + std::to_string(m.latency_ns.count()) + " samples)";
  }
  out += "  leaked " + std::to_string(m.leaked_tasks_at_return);
  const bool aborts = m.server && m.server->client_aborts;
  out += "  aborts " + (aborts ? std::to_string(*m.server->client_aborts) : std::string("n/a"));
  if (m.call_transport_errors)
    out += "  transport errors " + std::to_string(m.call_transport_errors);
  return out;
}

nlohmann::ordered_json describe_scenarios(const std::vector<Scenario>& scenarios,
                                          const RunOptions& options) {
  nlohmann::ordered_json out = nlohmann::ordered_json::object();
  for (const auto& s : scenarios) {
    out[s.name] = {
        {"description", s.description},
        {"origin", s.origin},
        {"deadline_ms", s.deadline_ms},
        {"fanout", s.fanout},
        {"concurrency", s.concurrency},
        {"patterns", s.patterns},
        {"duration_s", s.duration_s},
        {"repetitions", s.repetitions},
        {"mode", to_string(s.mode)},
        {"rate", s.rate},
        {"arrivals", s.poisson ? "poisson" : "constant"},
        {"warmup_s", warmup_seconds(s)},
        {"max_conns_per_host", s.max_conns_per_host},
        {"limit", s.limit},
        {"go_transport", s.go_transport},
        {"services",
         nlohmann::ordered_json::parse(
             (options.service_urls.empty() ? s.services : json(options.service_urls)).dump())}};
  }
  return out;
}

// The order repetition `r` of a scenario runs its cells in: a shuffle seeded
// from the run's recorded seed, so drift of the machine (thermal, a neighbour)
// spreads over every pattern instead of landing on whichever runs last.
std::vector<std::size_t> repetition_order(std::vector<std::size_t> cells, std::uint64_t seed,
                                          const std::string& scenario, int r) {
  std::uint64_t h = seed ^ std::hash<std::string>{}(scenario);
  std::mt19937_64 rng(h + static_cast<std::uint64_t>(r) * 0x9e3779b97f4a7c15ULL);
  std::shuffle(cells.begin(), cells.end(), rng);
  return cells;
}

// The scenario's services as --services asks: an orchlab-mock child process
// (embedded, the default), a MockFleet in this process (inprocess), or the
// URLs given.
std::unique_ptr<Services> start_services(const Scenario& sc, const RunOptions& options) {
  switch (options.services) {
    case RunOptions::ServicesMode::embedded:
      return Services::embedded(sc.services, find_mock_binary(options.mock_binary));
    case RunOptions::ServicesMode::inprocess:
      return Services::inprocess(sc.services);
    case RunOptions::ServicesMode::remote:
      break;
  }
  return Services::remote(options.service_urls);
}

// context.runtimes: what ran each runtime's exhibits. For Go, the driver
// (or why it is not built) and what its measurements said of themselves.
nlohmann::ordered_json runtimes_json(const DriverLookup& go_driver,
                                     const std::vector<Measurement>& done) {
  nlohmann::ordered_json go = nlohmann::ordered_json::object();
  go["driver"] = go_driver.path ? nlohmann::ordered_json(*go_driver.path) : nullptr;
  go["found_by"] = go_driver.path ? nlohmann::ordered_json(go_driver.found_by) : nullptr;
  go["status"] = go_driver.path ? "built" : "not built: " + go_driver.why_not;
  go["go_version"] = nullptr;
  go["gomaxprocs"] = nullptr;
  std::set<std::string> transports;
  for (const auto& m : done) {
    if (m.infeasible || !m.runtime_fields.contains("go_version")) continue;
    go["go_version"] = m.runtime_fields["go_version"];
    go["gomaxprocs"] = m.runtime_fields["gomaxprocs"];
    if (m.runtime_fields.contains("go_transport"))
      transports.insert(m.runtime_fields["go_transport"].dump());
  }
  nlohmann::ordered_json list = nlohmann::ordered_json::array();
  for (const auto& t : transports) list.push_back(nlohmann::ordered_json::parse(t));
  go["transports"] = std::move(list);
  if (go["go_version"].is_null()) go["why_null"] = "no go-* repetition was measured in this run";
  nlohmann::ordered_json out = nlohmann::ordered_json::object();
  out["go"] = std::move(go);
  return out;
}

// After each repetition: hands the services' notes (which /__stats field is
// unknown, and why) to the report, and checks (waitpid WNOHANG) that the
// orchlab-mock child still runs. A dead child is an error: said at once on
// stderr, in lab.notes and in the exit status; the run goes on, its calls
// failing as transport errors, so the report still shows what happened.
void check_services(Services& services, const Cell& cell, int repetition, Measurement& m,
                    std::vector<std::string>& service_errors) {
  if (m.server) m.notes.insert(m.notes.end(), m.server->notes.begin(), m.server->notes.end());
  const auto failure = services.child_failure();
  if (!failure) return;
  const std::string what = *failure + ", found after repetition " + std::to_string(repetition + 1) +
                           " of " + cell.name() + ": the rest of scenario " + cell.scenario->name +
                           "'s calls fail as transport errors";
  m.notes.push_back("error: " + what);
  // Off the progress line a terminal shows, onto a line of its own.
  std::cerr << (::isatty(STDERR_FILENO) == 1 ? "\r\033[K" : "") << "orchlab: error: " << what
            << std::endl;
  service_errors.push_back(what);
}

constexpr const char* kNotTracedScenario = "not traced: its scenario is not in --trace-scenarios";

// Whether --trace covers the cells of scenario `name` (--trace-scenarios).
bool traces_scenario(const RunOptions& options, const std::string& name) {
  const auto& only = options.trace_scenarios;
  return only.empty() || std::find(only.begin(), only.end(), name) != only.end();
}

// Drives every cell, repetitions interleaved: repetition 1 of every cell of a
// scenario (in a shuffled order), then repetition 2, and so on. Returns false
// when interrupted. Each finished repetition is appended to `journal` and its
// record's index to `by_cell[cell]`, in repetition order (a cell cut short
// keeps the repetitions it finished); a repetition the journal already holds
// (--resume) is taken from it, not run. A service child that died is added to
// `service_errors`.
bool drive_all(const std::vector<Scenario>& scenarios, const std::vector<Cell>& cells,
               const RunOptions& options, const DriverLookup& go_driver, std::uint64_t shuffle_seed,
               Progress& progress, Journal& journal, std::vector<std::vector<std::size_t>>& by_cell,
               std::vector<std::string>& service_errors, trace::Tracer* tracer) {
  std::vector<int> family_of(cells.size()), instance_of(cells.size());
  {
    std::map<std::string, int> families;   // "scenario/pattern" -> family_index
    std::map<std::string, int> instances;  // per family: instances so far
    for (std::size_t i = 0; i < cells.size(); ++i) {
      const std::string family = cells[i].scenario->name + "/" + cells[i].pattern;
      family_of[i] = families.emplace(family, static_cast<int>(families.size())).first->second;
      instance_of[i] = instances[family]++;
    }
  }
  by_cell.assign(cells.size(), {});
  std::vector<bool> failed(cells.size(), false);  // a driver's cell that failed a repetition
  std::size_t step = 0;
  // Sharded: slot k of the run begins at the common start plus the slots
  // before it, on this host's steady clock.
  const std::int64_t start_steady =
      options.start_at_unix_ns ? steady_ns() + (*options.start_at_unix_ns - unix_ns()) : 0;
  double slot_offset_s = 0;
  for (const auto& sc : scenarios) {
    // A scenario the journal holds in full starts no services.
    bool journaled = true;
    for (std::size_t i = 0; i < cells.size() && journaled; ++i) {
      if (cells[i].scenario != &sc) continue;
      RecordKind kind;
      if (journal.find_verdict(cells[i].name(), kind)) continue;
      for (int r = 0; r < sc.repetitions && journaled; ++r)
        journaled = journal.find(cells[i].name(), r).has_value();
    }
    // One service set per scenario; reset (POST /__reset) before each repetition.
    auto services = journaled ? nullptr : start_services(sc, options);
    std::vector<std::size_t> runnable, all;
    for (std::size_t i = 0; i < cells.size(); ++i) {
      if (cells[i].scenario != &sc) continue;
      all.push_back(i);
      // Resumed: a cell the journal says was not measured stays so, in the
      // same place of the order (a dropped cell was runnable).
      RecordKind verdict;
      if (const auto rec = journal.find_verdict(cells[i].name(), verdict)) {
        by_cell[i] = {*rec};
        if (verdict == RecordKind::dropped) {
          runnable.push_back(i);
          failed[i] = true;
        }
        continue;
      }
      if (journaled) {
        runnable.push_back(i);
        continue;
      }
      // A shard's part of the cell is what must fit this machine.
      Cell part = cells[i];
      part.concurrency = shard_callers(part.concurrency, options.shard_index, options.shard_count);
      const Cell& cell = cells[i];
      std::optional<std::string> reason;
      if (is_driver_pattern(cell.pattern) && !go_driver.path) reason = go_driver.why_not;
      if (!reason)
        reason = infeasible_reason(part, services->urls().size(), services->in_process(),
                                   sys::limits(), options.thread_budget);
      if (!reason && !is_driver_pattern(cell.pattern) && !make_pattern(cell.pattern, {}))
        reason = "pattern \"" + cell.pattern + "\" is not built into this binary";
      if (reason) {
        progress.begin_cell(step++, cell.name(), 0);
        Measurement m = cell_identity(cell, family_of[i], instance_of[i]);
        m.infeasible = *reason;
        progress.end_cell(repetition_summary(m));
        by_cell[i].push_back(journal.append(m, RecordKind::infeasible));
      } else {
        runnable.push_back(i);
      }
    }
    for (int r = 0; r < sc.repetitions; ++r) {
      // Sharded: the order of every cell, runnable here or not, so that each
      // slot holds the same cell in every shard (a shard idles through the
      // slot of a cell it cannot run).
      const auto order =
          repetition_order(options.sharded ? all : runnable, shuffle_seed, sc.name, r);
      for (std::size_t i : order) {
        if (g_interrupted.load()) return false;
        const Cell& cell = cells[i];
        std::optional<std::int64_t> slot_start, slot_end;
        if (options.start_at_unix_ns) {
          slot_start = start_steady + static_cast<std::int64_t>(slot_offset_s * 1e9);
          slot_offset_s += slot_seconds(cell);
          slot_end = start_steady + static_cast<std::int64_t>(slot_offset_s * 1e9);
        }
        if (std::find(runnable.begin(), runnable.end(), i) == runnable.end()) continue;
        if (failed[i]) {
          ++step;  // its repetitions are accounted for in the progress
          continue;
        }
        const bool traced = tracer && r == 0 && traces_scenario(options, sc.name);
        if (const auto rec = journal.find(cell.name(), r)) {
          by_cell[i].push_back(*rec);  // resumed: measured before the run was cut short
          // Its measurement is the journal's: there is nothing to draw.
          if (tracer && r == 0)
            tracer->untraced(cell, traced ? "not traced: repetition 0 came from the journal"
                                          : kNotTracedScenario);
          continue;
        }
        progress.begin_cell(step++, cell.name(), planned_repetition_seconds(cell));
        progress.repetition(r, sc.repetitions);
        const bool driver = is_driver_pattern(cell.pattern);
        // A fresh pattern and client per repetition: nothing one repetition
        // leaves in them (idle connections, a grown pool) carries over. A
        // driver's exhibit runs in a process of its own, started afresh.
        std::unique_ptr<Pattern> pattern;
        CellEnv env;
        if (!driver) {
          PatternOptions po;
          po.limit = sc.limit;
          po.max_conns_per_host = sc.max_conns_per_host;
          pattern = make_pattern(cell.pattern, po);
          http::PoolOptions pool;
          pool.max_conns_per_host = sc.max_conns_per_host;
          env.pattern = pattern.get();
          env.client = http::Client::create(pool);
          env.fetch = env.client->fetch();
        }
        env.cell = &cell;
        env.services = services.get();
        env.interrupted = &g_interrupted;
        env.family_index = family_of[i];
        env.per_family_instance_index = instance_of[i];
        env.shard_index = options.shard_index;
        env.shard_count = options.shard_count;
        env.slot_start_ns = slot_start;
        env.slot_end_ns = slot_end;
        // Services every shard calls are reset by shard 0 alone; a shard's
        // own (embedded) services by the shard.
        env.reset_services = !options.sharded || options.shard_index == 0 ||
                             options.services != RunOptions::ServicesMode::remote;
        // --trace: each cell's first repetition (of the --trace-scenarios); a
        // driver's cell too: it records its calls and returns the samples.
        if (tracer && r == 0 && !traced)
          tracer->untraced(cell, kNotTracedScenario);
        else if (traced)
          env.tracer = tracer;
        bool complete = false;
        auto m = driver ? run_driver_repetition(env, *go_driver.path, r, complete)
                        : run_repetition(env, r, complete);
        if (!complete) return false;
        progress.end_cell(repetition_summary(m));
        if (m.infeasible) {
          // A driver that failed once is not trusted for the cell: its
          // repetitions so far are dropped (a cell is measured whole or not
          // at all) and the rest skipped; every other cell goes on.
          if (!by_cell[i].empty())
            m.notes.push_back(cell.name() + ": " + std::to_string(by_cell[i].size()) +
                              " earlier repetition(s) were measured and dropped with the cell");
          m.repetition_index = 0;
          by_cell[i] = {journal.append(m, RecordKind::dropped)};
          failed[i] = true;
          if (!options.quiet)
            std::cerr << (::isatty(STDERR_FILENO) == 1 ? "\r\033[K" : "")
                      << "orchlab: " << cell.name() << " is infeasible: " << *m.infeasible
                      << std::endl;
          continue;
        }
        check_services(*services, cell, r, m, service_errors);
        // A count that cannot be true is refused, never published. A shard
        // of services the shards share sees every shard's calls: merge checks.
        if (!(options.sharded && options.services == RunOptions::ServicesMode::remote))
          refuse_impossible(m);
        by_cell[i].push_back(journal.append(m, RecordKind::repetition));
      }
    }
  }
  return true;
}

}  // namespace

std::vector<fs::path> scenario_dirs() {
  std::vector<fs::path> dirs{fs::path("scenarios")};
  const fs::path source = fs::path(ORCHLAB_SOURCE_DIR) / "scenarios";
  std::error_code ec;
  if (!fs::equivalent(dirs.front(), source, ec)) dirs.push_back(source);
  return dirs;
}

int run_command(const RunOptions& options, const char* argv0) {
  // 1. Scenarios -> cells, all validated before anything starts or is written.
  // The Go driver: a --go-driver or ORCHLAB_GO_DRIVER that is not an
  // executable is bad input; none found leaves the go-* exhibits out of
  // `all` (named explicitly, their cells are infeasible with the reason).
  DriverLookup go_driver;
  try {
    go_driver = find_go_driver(options.go_driver);
  } catch (const std::invalid_argument& e) {
    std::cerr << "orchlab: " << e.what() << "\n";
    return 2;
  }
  std::vector<std::string> known = pattern_names();
  for (const auto& g : go_pattern_names()) known.push_back(g);
  const std::vector<std::string> not_in_all =
      go_driver.path ? std::vector<std::string>{} : go_pattern_names();
  std::vector<Scenario> scenarios;
  try {
    const auto names =
        options.scenarios.empty() ? std::vector<std::string>{"default"} : options.scenarios;
    for (const auto& name : names) {
      for (auto& s : load_scenarios(name, scenario_dirs(), known, options.overrides, not_in_all)) {
        for (const auto& have : scenarios)
          if (have.name == s.name) throw ScenarioError("scenario \"" + s.name + "\" given twice");
        scenarios.push_back(std::move(s));
      }
    }
  } catch (const ScenarioError& e) {
    std::cerr << "orchlab: " << e.what() << "\n";
    return 2;
  }
  // The mock binary is looked up before anything runs: a --mock-binary or
  // ORCHLAB_MOCK that is not an executable is bad input; none found at all
  // is a run that cannot start.
  if (options.services == RunOptions::ServicesMode::embedded) {
    try {
      find_mock_binary(options.mock_binary);
    } catch (const std::invalid_argument& e) {
      std::cerr << "orchlab: " << e.what() << "\n";
      return 2;
    } catch (const std::exception& e) {
      std::cerr << "orchlab: " << e.what() << "\n";
      return 1;
    }
  }
  const auto cells = expand_cells(scenarios);
  if (!go_driver.path && !options.quiet) {
    const bool named = std::any_of(cells.begin(), cells.end(),
                                   [](const Cell& c) { return is_driver_pattern(c.pattern); });
    std::cerr << (named ? "orchlab: warning: the go-* cells are infeasible: "
                        : "orchlab: note: \"all\" leaves out the go-* exhibits: ")
              << go_driver.why_not << "\n";
  }
  if (options.sharded) {
    // Every shard must drive someone in every cell: a cell of C callers
    // splits into at most C shards.
    for (const auto& c : cells) {
      if (c.concurrency < options.shard_count) {
        std::cerr << "orchlab: --shard " << options.shard_index << "/" << options.shard_count
                  << ": cell " << c.name() << " has " << c.concurrency << " "
                  << (c.scenario->mode == Mode::open ? "workers" : "callers") << ", fewer than the "
                  << options.shard_count << " shards (each shard drives at least one)\n";
        return 2;
      }
    }
  }
  if (options.start_at_unix_ns && options.resume.empty()) {
    // A start long past means the shards' windows could not line up (a
    // resumed shard's start is past by design: it waits for its next slot).
    const double late_s = static_cast<double>(unix_ns() - *options.start_at_unix_ns) / 1e9;
    const double window_s = cells.empty() ? 0.0 : cells.front().scenario->duration_s;
    if (late_s > window_s) {
      std::cerr << "orchlab: --start-at " << iso8601_utc(*options.start_at_unix_ns) << " was "
                << late_s << " s ago, more than the first window (" << window_s
                << " s): pick an instant in the future\n";
      return 2;
    }
  }
  // A trace that could not be written is found now, not after the run.
  std::unique_ptr<trace::Tracer> tracer;
  if (!options.trace.empty()) {
    try {
      trace::check_path(options.trace);
    } catch (const std::invalid_argument& e) {
      std::cerr << "orchlab: " << e.what() << "\n";
      return 2;
    }
    // A name that is none of the run's scenarios is a typo that would trace nothing.
    for (const auto& name : options.trace_scenarios) {
      if (std::any_of(scenarios.begin(), scenarios.end(),
                      [&](const Scenario& s) { return s.name == name; }))
        continue;
      std::string have;
      for (const auto& s : scenarios) have += (have.empty() ? "" : ", ") + s.name;
      std::cerr << "orchlab: --trace-scenarios: \"" << name
                << "\" is not a scenario of this run (its scenarios: " << have << ")\n";
      return 2;
    }
    tracer = std::make_unique<trace::Tracer>(options.trace);
  }
  const bool resuming = !options.resume.empty();
  const fs::path resumed_report = resuming ? resume_report_path(options.resume) : fs::path();
  const bool to_stdout = options.out == "-";
  const bool default_out = options.out.empty() && !resuming;
  const fs::path out = !options.out.empty() ? fs::path(options.out)
                       : resuming           ? resumed_report
                                            : fs::path("results") / utc_stamp() / "report.json";

  // 2. The journal: the run's identity, then every finished repetition,
  // beside the report (--out -: in a temporary file). --resume continues
  // the journal of the same run, its seed and date included.
  RunInfo info;
  std::unique_ptr<Journal> journal;
  {
    const fs::path journal_path = resuming    ? fs::path(resumed_report.string() + ".journal")
                                  : to_stdout ? fs::path()
                                              : fs::path(out.string() + ".journal");
    std::optional<nlohmann::ordered_json> existing;
    try {
      if (resuming) existing = Journal::read_identity(journal_path);
      if (resuming && !existing)
        std::cerr << "orchlab: --resume " << options.resume << ": no journal at "
                  << journal_path.string()
                  << " (the run ended before its first line): running it from the start\n";
      // Shards shuffle alike: unless --seed says otherwise, the seed is the
      // start instant, which every shard was given.
      info.shuffle_seed =
          options.shuffle_seed ? *options.shuffle_seed
          : existing && (*existing)["shuffle_seed"].is_number_unsigned()
              ? (*existing)["shuffle_seed"].get<std::uint64_t>()
          : options.start_at_unix_ns
              ? static_cast<std::uint64_t>(*options.start_at_unix_ns / 1'000'000'000)
              : std::random_device{}();
      info.date = existing ? existing->value("date", date_now()) : date_now();
      const auto identity = run_identity(options, describe_scenarios(scenarios, options),
                                         info.shuffle_seed, info.date);
      journal = existing               ? Journal::resume(journal_path, identity)
                : journal_path.empty() ? Journal::anonymous(identity)
                                       : Journal::create(journal_path, identity);
    } catch (const JournalMismatch& e) {
      std::cerr << "orchlab: --resume " << options.resume << ": " << e.what() << "\n";
      return 2;
    } catch (const JournalError& e) {
      std::cerr << "orchlab: " << e.what() << "\n";
      return 1;
    }
    for (const auto& n : journal->notes()) std::cerr << "orchlab: note: " << n << "\n";
    if (existing && !options.quiet)
      std::cerr << "orchlab: resuming " << journal_path.string() << ": " << journal->recovered()
                << " record(s) from the journal\n";
  }

  // 3. Drive every cell (each repetition drains before the next).
  install_signal_handlers();
  sys::raise_fd_limit();
  // The host before anything of the run loads it: the load average read
  // when the report is written counts the run's own threads. A sharded run
  // keeps its start (its services still have to start before it): the
  // sample takes a tenth of the time left, 0.1 to 1 s.
  {
    auto span = std::chrono::milliseconds(1000);
    if (options.start_at_unix_ns)
      span = std::clamp(
          std::chrono::milliseconds((*options.start_at_unix_ns - unix_ns()) / 10'000'000),
          std::chrono::milliseconds(100), span);
    info.host_before_run = sys::measure_host_load(span, [] { return g_interrupted.load(); });
    if (info.host_before_run->busy && !options.quiet)
      std::cerr << "orchlab: warning: the host is busy before the run: "
                << info.host_before_run->why << std::endl;
  }
  double planned = 0;
  std::size_t steps = 0;
  for (const auto& c : cells) {
    for (int r = 0; r < c.scenario->repetitions; ++r) {
      if (journal->find(c.name(), r)) continue;  // resumed: not run again
      planned += options.start_at_unix_ns ? slot_seconds(c) : planned_repetition_seconds(c);
      ++steps;
    }
  }
  if (options.sharded) {
    ShardInfo shard;
    shard.index = options.shard_index;
    shard.count = options.shard_count;
    shard.start_at_unix_ns = *options.start_at_unix_ns;
    shard.host = sys::host().host_name;
    shard.services = options.services == RunOptions::ServicesMode::remote ? "shared" : "own";
    info.shard = shard;
  }
  if (options.start_at_unix_ns && !options.quiet) {
    const double wait_s = static_cast<double>(*options.start_at_unix_ns - unix_ns()) / 1e9;
    if (wait_s > 0)
      std::cerr << "orchlab: "
                << (options.sharded ? "shard " + std::to_string(options.shard_index) + "/" +
                                          std::to_string(options.shard_count) + ": "
                                    : std::string())
                << "waiting " << wait_s << " s for the start at "
                << iso8601_utc(*options.start_at_unix_ns) << std::endl;
  }
  std::vector<std::vector<std::size_t>> by_cell;
  std::vector<std::string> service_errors;
  bool finished = false;
  std::optional<std::string> failure;
  {
    Progress progress(steps, planned, options.quiet);
    try {
      finished = drive_all(scenarios, cells, options, go_driver, info.shuffle_seed, progress,
                           *journal, by_cell, service_errors, tracer.get());
    } catch (const std::exception& e) {
      // What finished is in the journal: the report of it is written below.
      progress.finish();
      failure = e.what();
      std::cerr << "orchlab: run failed: " << e.what() << "\n";
    }
  }

  // 4. Report: what finished, read back from the journal, atomically.
  info.executable = sys::executable(argv0);
  info.command_line = options.command_line;
  info.interrupted = !finished;
  try {
    std::vector<Measurement> done;
    for (const auto& records : by_cell)
      for (const auto index : records) done.push_back(journal->read(index));
    info.runtimes = runtimes_json(go_driver, done);
    auto doc = build_report(info, done, describe_scenarios(scenarios, options));
    doc["context"]["resumed"] = journal->resumes();
    auto& notes = doc["lab"]["notes"];
    for (const auto& n : journal->notes()) notes.push_back(n);
    if (failure)
      notes.push_back("error: the run failed: " + *failure +
                      "; this report holds the repetitions that finished before it");
    if (to_stdout)
      write_report(std::cout, doc);
    else
      write_atomic(out, doc);
  } catch (const std::exception& e) {
    std::cerr << "orchlab: " << e.what() << "\n";
    return 1;
  }
  if (tracer) {
    try {
      tracer->write();
      if (!options.quiet) std::cerr << "orchlab: trace written to " << tracer->path() << "\n";
    } catch (const std::exception& e) {
      std::cerr << "orchlab: " << e.what() << "\n";
      return 1;
    }
  }
  if (default_out) point_latest(out.parent_path());
  if (!options.quiet && !to_stdout)
    std::cerr << "orchlab: report written to " << out.string() << (finished ? "" : " (interrupted)")
              << "\n";
  if (!finished && !journal->path().empty())
    std::cerr << "orchlab: to finish the run: the same command with --resume "
              << journal->path().string().substr(0, journal->path().string().size() - 8) << "\n";
  if (failure) return 1;
  if (!finished) return 130;
  // A mock child that died is said again last, where it is not lost among
  // the progress lines, and fails the run: the report is complete but its
  // cells after the death measured calls to nothing.
  for (const auto& e : service_errors) std::cerr << "orchlab: error: " << e << "\n";
  return service_errors.empty() ? 0 : 1;
}

int list_command() {
  std::cout << "Patterns (runtime):\n";
  auto row = [](const std::string& name, const std::string& what) {
    char line[64];
    std::snprintf(line, sizeof line, "    %-32s", name.c_str());
    std::cout << line << what << "\n";
  };
  for (const auto& p : pattern_names()) row(p, runtime_of(p));
  std::string go_status;
  try {
    const auto d = find_go_driver("");
    go_status = d.path ? "go (orchlab-go: " + *d.path + ")" : "go (" + d.why_not + ")";
  } catch (const std::invalid_argument& e) {
    go_status = std::string("go (") + e.what() + ")";
  }
  for (const auto& p : go_pattern_names()) row(p, go_status);
  std::cout << "Scenarios:\n";
  std::set<std::string> seen;
  for (const auto& dir : scenario_dirs()) {
    std::error_code ec;
    std::vector<fs::path> files;
    for (auto it = fs::directory_iterator(dir, ec); !ec && it != fs::directory_iterator();
         it.increment(ec))
      if (it->path().extension() == ".json") files.push_back(it->path());
    std::sort(files.begin(), files.end());
    for (const auto& f : files) {
      const auto name = f.stem().string();
      if (!seen.insert(name).second) continue;
      std::string description;
      try {
        std::ifstream in(f);
        const auto doc = json::parse(in);
        description = doc.value("description", "");
      } catch (const std::exception&) {
        description = "(unreadable)";
      }
      char line[64];
      std::snprintf(line, sizeof line, "    %-22s", name.c_str());
      std::cout << line << description << "\n";
    }
  }
  return 0;
}

}  // namespace orchlab::harness

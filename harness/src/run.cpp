#include "orchlab/harness/run.hpp"

#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <ctime>
#include <fstream>
#include <iostream>
#include <algorithm>
#include <map>
#include <set>

#include "orchlab/census.hpp"
#include "orchlab/harness/driver.hpp"
#include "orchlab/harness/progress.hpp"
#include "orchlab/harness/report.hpp"
#include "orchlab/harness/scenario.hpp"
#include "orchlab/harness/services.hpp"
#include "orchlab/harness/system.hpp"
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
  static const char msg[] = "\norchlab: interrupted; finishing the current cell (Ctrl-C again to quit now)\n";
  [[maybe_unused]] auto n = ::write(STDERR_FILENO, msg, sizeof msg - 1);
}

void install_signal_handlers() {
  struct sigaction sa {};
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
  // A peer that closes mid-write must be an error code, not a dead process.
  signal(SIGPIPE, SIG_IGN);
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
  if (ec) std::cerr << "orchlab: could not update " << latest.string() << ": " << ec.message() << "\n";
}

double planned_seconds(const Cell& cell) {
  // The window, plus a deadline for the last orchestrations, plus reset/stats overhead.
  const auto& sc = *cell.scenario;
  return sc.repetitions * (sc.duration_s + sc.deadline_ms / 1000.0 + 0.1);
}

std::string cell_summary(const std::vector<Measurement>& reps) {
  if (reps.empty()) return "";
  if (reps.front().infeasible) return "infeasible: " + *reps.front().infeasible;
  std::uint64_t orch = 0, leaked = 0, aborts = 0, transport = 0;
  double wall = 0;
  LogHistogram lat;
  for (const auto& m : reps) {
    orch += m.orchestrations;
    wall += m.wall_s;
    leaked += m.leaked_tasks_at_return;
    aborts += m.server ? m.server->client_aborts : 0;
    transport += m.call_transport_errors;
    lat.merge(m.latency_ns);
  }
  char buf[256];
  std::snprintf(buf, sizeof buf, "%.0f/s  p99 %.1fms  leaked %llu  aborts %llu%s", wall > 0 ? orch / wall : 0.0,
                lat.quantile(0.99) / 1e6, static_cast<unsigned long long>(leaked),
                static_cast<unsigned long long>(aborts),
                transport ? ("  transport errors " + std::to_string(transport)).c_str() : "");
  return buf;
}

nlohmann::ordered_json describe_scenarios(const std::vector<Scenario>& scenarios, const RunOptions& options) {
  nlohmann::ordered_json out = nlohmann::ordered_json::object();
  for (const auto& s : scenarios) {
    out[s.name] = {{"description", s.description},
                   {"origin", s.origin},
                   {"deadline_ms", s.deadline_ms},
                   {"fanout", s.fanout},
                   {"concurrency", s.concurrency},
                   {"patterns", s.patterns},
                   {"duration_s", s.duration_s},
                   {"repetitions", s.repetitions},
                   {"mode", to_string(s.mode)},
                   {"rate", s.rate},
                   {"max_conns_per_host", s.max_conns_per_host},
                   {"limit", s.limit},
                   {"services", nlohmann::ordered_json::parse(
                                     (options.service_urls.empty() ? s.services : json(options.service_urls)).dump())}};
  }
  return out;
}

// Drives every cell in order; returns false when interrupted. Finished cells
// are appended to `done` (a cell cut short by an interrupt is not).
bool drive_all(const std::vector<Scenario>& scenarios, const std::vector<Cell>& cells, const RunOptions& options,
               Progress& progress, std::vector<Measurement>& done) {
  std::map<std::string, int> families;     // "scenario/pattern" -> family_index
  std::map<std::string, int> instances;    // per family: instances so far
  std::size_t index = 0;
  for (const auto& sc : scenarios) {
    // One service set per scenario; reset (POST /__reset) before each repetition.
    auto services = options.service_urls.empty() ? Services::embedded(sc.services)
                                                 : Services::remote(options.service_urls);
    for (const auto& cell : cells) {
      if (cell.scenario != &sc) continue;
      if (g_interrupted.load()) return false;
      const std::string family = sc.name + "/" + cell.pattern;
      const int family_index = families.emplace(family, static_cast<int>(families.size())).first->second;
      const int instance = instances[family]++;
      progress.begin_cell(index++, cell.name(), planned_seconds(cell));

      std::vector<Measurement> reps;
      auto reason = infeasible_reason(cell, services->urls().size(), services->is_embedded(), sys::limits());
      PatternOptions po;
      po.limit = sc.limit;
      po.max_conns_per_host = sc.max_conns_per_host;
      std::unique_ptr<Pattern> pattern;
      if (!reason) {
        pattern = make_pattern(cell.pattern, po);
        if (!pattern) reason = "pattern \"" + cell.pattern + "\" is not built into this binary";
      }
      if (reason) {
        Measurement m = cell_identity(cell, family_index, instance);
        m.infeasible = *reason;
        reps.push_back(std::move(m));
      } else {
        http::PoolOptions pool;
        pool.max_conns_per_host = sc.max_conns_per_host;
        CellEnv env;
        env.cell = &cell;
        env.pattern = pattern.get();
        env.client = http::Client::create(pool);
        env.fetch = env.client->fetch();
        env.services = services.get();
        env.interrupted = &g_interrupted;
        env.family_index = family_index;
        env.per_family_instance_index = instance;
        for (int r = 0; r < sc.repetitions; ++r) {
          progress.repetition(r, sc.repetitions);
          bool complete = false;
          auto m = run_repetition(env, r, complete);
          if (!complete) return false;
          reps.push_back(std::move(m));
        }
      }
      progress.end_cell(cell_summary(reps));
      for (auto& m : reps) done.push_back(std::move(m));
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
  std::vector<Scenario> scenarios;
  try {
    const auto names = options.scenarios.empty() ? std::vector<std::string>{"default"} : options.scenarios;
    for (const auto& name : names) {
      for (auto& s : load_scenarios(name, scenario_dirs(), pattern_names(), options.overrides)) {
        for (const auto& have : scenarios)
          if (have.name == s.name) throw ScenarioError("scenario \"" + s.name + "\" given twice");
        scenarios.push_back(std::move(s));
      }
    }
  } catch (const ScenarioError& e) {
    std::cerr << "orchlab: " << e.what() << "\n";
    return 2;
  }
  const auto cells = expand_cells(scenarios);
  const bool default_out = options.out.empty();
  const fs::path out = default_out ? fs::path("results") / utc_stamp() / "report.json" : fs::path(options.out);

  // 2. Drive every cell (each repetition drains before the next).
  RunInfo info;
  info.date = date_now();
  install_signal_handlers();
  sys::raise_fd_limit();
  double planned = 0;
  for (const auto& c : cells) planned += planned_seconds(c);
  std::vector<Measurement> done;
  bool finished = false;
  {
    Progress progress(cells.size(), planned, options.quiet);
    try {
      finished = drive_all(scenarios, cells, options, progress, done);
    } catch (const std::exception& e) {
      progress.finish();
      std::cerr << "orchlab: run failed: " << e.what() << "\n";
      return 1;
    }
  }

  // 3. Report: what finished, atomically.
  info.executable = sys::executable(argv0);
  info.command_line = options.command_line;
  info.interrupted = !finished;
  try {
    write_atomic(out, build_report(info, done, describe_scenarios(scenarios, options)));
  } catch (const std::exception& e) {
    std::cerr << "orchlab: " << e.what() << "\n";
    return 1;
  }
  if (default_out) point_latest(out.parent_path());
  if (!options.quiet) std::cerr << "orchlab: report written to " << out.string() << (finished ? "" : " (interrupted)") << "\n";
  return finished ? 0 : 130;
}

int list_command() {
  std::cout << "Patterns:\n";
  for (const auto& p : pattern_names()) std::cout << "    " << p << "\n";
  std::cout << "Scenarios:\n";
  std::set<std::string> seen;
  for (const auto& dir : scenario_dirs()) {
    std::error_code ec;
    std::vector<fs::path> files;
    for (auto it = fs::directory_iterator(dir, ec); !ec && it != fs::directory_iterator(); it.increment(ec))
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

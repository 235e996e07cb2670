#include "orchlab/harness/merge.hpp"

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <map>

#include "orchlab/harness/driver.hpp"
#include "orchlab/harness/report.hpp"

namespace orchlab::harness {
namespace {

using json = nlohmann::ordered_json;

// Shards' windows may differ by this much (their hosts' clocks and sleeps):
// beyond it, the orchestrations of one window were not concurrent with the
// other's, and their throughputs do not add up.
constexpr std::int64_t kWindowToleranceNs = 100'000'000;

struct Shard {
  std::string file;
  json doc;
  int index = 0;
  int count = 0;
};

[[noreturn]] void refuse(const std::string& why) { throw MergeError(why); }

// One benchmarks[] entry of a shard, back into the measurement it was
// written from; a histogram that is not one refuses the shard.
Measurement measurement_of(const Shard& s, const json& e) {
  try {
    return measurement_from_entry(e);
  } catch (const std::invalid_argument& err) {
    refuse(s.file + ": " + err.what());
  }
}

// Both known: combined; either unknown: unknown.
template <class T, class F>
std::optional<T> both(const std::optional<T>& a, const std::optional<T>& b, F f) {
  return a && b ? std::optional<T>(f(*a, *b)) : std::nullopt;
}

json process_of(const Shard& s, const Measurement& m) {
  json p = json::object();
  p["index"] = s.index;
  p["host"] = s.doc["context"]["shard"].value("host", "");
  p["callers"] = m.callers;
  p["cpu_s"] = m.cpu_s;
  p["threads_peak"] = m.threads_peak;
  p["live_tasks_peak"] = m.live_tasks_peak;
  p["threads_end"] = m.threads_end;
  p["threads_baseline"] = m.threads_baseline;
  p["rss_peak_kb"] = m.rss_peak_kb;
  p["rss_baseline_kb"] = m.rss_baseline_kb;
  p["ctx_switches_voluntary"] = m.ctx_switches_voluntary;
  p["ctx_switches_involuntary"] = m.ctx_switches_involuntary;
  p["drain_ms"] = m.drain_ms;
  p["drained"] = m.drained;
  p["window_start_unix_ns"] = m.window_start_unix_ns;
  return p;
}

// Adds shard `b`'s repetition into `a`: counts summed, histograms merged,
// process metrics listed per shard. `shared`: the shards called the same
// services, so each one's /__stats delta already holds every shard's calls.
void add(Measurement& a, const Measurement& b, bool shared) {
  a.latency_ns.merge(b.latency_ns);
  a.overshoot_ns.merge(b.overshoot_ns);
  a.pool_wait_ns.merge(b.pool_wait_ns);
  a.pool_measured = a.pool_measured || b.pool_measured;
  a.wall_s = std::max(a.wall_s, b.wall_s);
  a.window_start_unix_ns = std::min(a.window_start_unix_ns, b.window_start_unix_ns);
  a.orchestrations += b.orchestrations;
  a.completed_in_window += b.completed_in_window;
  a.complete += b.complete;
  a.partial += b.partial;
  a.failed += b.failed;
  a.timed_out += b.timed_out;
  a.orchestrations_threw += b.orchestrations_threw;
  if (b.first_throw_ms && (!a.first_throw_ms || *b.first_throw_ms < *a.first_throw_ms))
    a.first_throw_ms = b.first_throw_ms;
  a.calls += b.calls;
  a.call_ok += b.call_ok;
  a.call_http_errors += b.call_http_errors;
  a.call_transport_errors += b.call_transport_errors;
  a.call_cancelled += b.call_cancelled;
  a.call_unanswered += b.call_unanswered;
  a.target_rate += b.target_rate;
  a.starts_late += b.starts_late;
  a.starts_expired += b.starts_expired;
  a.leaked_tasks_at_return += b.leaked_tasks_at_return;
  a.leaked_tasks_end += b.leaked_tasks_end;
  a.zombie_task_s += b.zombie_task_s;
  a.late_completions += b.late_completions;
  a.drained = a.drained && b.drained;
  a.pool_exhausted += b.pool_exhausted;
  a.lock_wait_ns += b.lock_wait_ns;
  a.lock_contended += b.lock_contended;
  // CPU seconds and context switches add up over processes; per
  // orchestration they are the fleet's cost of one.
  a.cpu_s += b.cpu_s;
  a.ctx_switches_voluntary += b.ctx_switches_voluntary;
  a.ctx_switches_involuntary += b.ctx_switches_involuntary;
  a.callers += b.callers;
  if (a.server && b.server) {
    auto& t = *a.server;
    const auto& u = *b.server;
    // Shared services: each shard's delta already holds every shard's
    // calls, so the largest is the total; services of their own add up.
    auto total = [shared](auto x, auto y) { return shared ? std::max(x, y) : x + y; };
    auto most = [](auto x, auto y) { return std::max(x, y); };
    t.requests = both(t.requests, u.requests, total);
    t.client_aborts = both(t.client_aborts, u.client_aborts, total);
    t.completed_after_deadline =
        both(t.completed_after_deadline, u.completed_after_deadline, total);
    t.work_past_deadline_ms = both(t.work_past_deadline_ms, u.work_past_deadline_ms, total);
    t.unreachable = total(t.unreachable, u.unreachable);
    t.abort_lag_p99_ms = both(t.abort_lag_p99_ms, u.abort_lag_p99_ms, most);
    t.max_in_flight = both(t.max_in_flight, u.max_in_flight, most);
  } else {
    a.server.reset();
  }
}

void add_series(Series& a, const json& s) {
  auto sum_into = [&](auto& v, const char* key) {
    if (!s.contains(key) || !s[key].is_array()) return;
    const auto& src = s[key];
    if (v.size() < src.size()) v.resize(src.size(), 0);
    for (std::size_t i = 0; i < src.size(); ++i)
      v[i] += src[i].template get<typename std::decay_t<decltype(v)>::value_type>();
  };
  a.bucket_ms = s.value("bucket_ms", a.bucket_ms);
  a.window_ms = std::max(a.window_ms, s.value("window_ms", 0.0));
  sum_into(a.started, "started");
  sum_into(a.finished, "finished");
  sum_into(a.in_flight, "in_flight");
  sum_into(a.live_tasks, "live_tasks");
  sum_into(a.os_threads, "os_threads");
}

Shard read_shard(const std::string& file) {
  Shard s;
  s.file = file;
  std::ifstream in(file);
  if (!in) refuse(file + ": cannot read it");
  try {
    s.doc = json::parse(in);
  } catch (const std::exception& e) {
    refuse(file + ": not valid JSON: " + e.what());
  }
  const auto& d = s.doc;
  if (!d.is_object() || !d.contains("context") || !d.contains("benchmarks") ||
      !d["benchmarks"].is_array())
    refuse(file + ": not an orchlab report (no context and benchmarks)");
  const auto& c = d["context"];
  if (!c.contains("shard") || !c["shard"].is_object())
    refuse(file + ": not a shard's report (no context.shard): run it with orchlab run --shard I/N");
  if (c["shard"].contains("merged"))
    refuse(file + ": a merged report already (merge the shards' own reports)");
  const auto& sh = c["shard"];
  s.index = sh.contains("index") && sh["index"].is_number_integer() ? sh["index"].get<int>() : -1;
  s.count = sh.contains("count") && sh["count"].is_number_integer() ? sh["count"].get<int>() : 0;
  if (s.count < 1 || s.index < 0 || s.index >= s.count)
    refuse(file + ": context.shard " + c["shard"].dump() + " is not a shard I/N");
  if (c.value("interrupted", false))
    refuse(file + ": shard " + std::to_string(s.index) + "/" + std::to_string(s.count) +
           " was interrupted: its cells are incomplete");
  return s;
}

std::string value_text(const json& v) { return v.is_string() ? v.get<std::string>() : v.dump(); }

// Refuses shards that are not parts of one run: different builds, scenarios,
// starts or cell orders; a shard missing or given twice.
void check_together(const std::vector<Shard>& shards) {
  const Shard& first = shards.front();
  std::map<int, const Shard*> by_index;
  for (const auto& s : shards) {
    if (s.count != first.count)
      refuse(first.file + " is one of " + std::to_string(first.count) + " shards, " + s.file +
             " one of " + std::to_string(s.count) + ": not the same run");
    if (auto [it, fresh] = by_index.emplace(s.index, &s); !fresh)
      refuse(it->second->file + " and " + s.file + " are both shard " + std::to_string(s.index) +
             "/" + std::to_string(s.count));
  }
  for (int i = 0; i < first.count; ++i)
    if (!by_index.count(i))
      refuse("shard " + std::to_string(i) + "/" + std::to_string(first.count) +
             " is missing (merge needs all " + std::to_string(first.count) + ")");
  auto same = [&](const char* what, auto get) {
    for (const auto& s : shards) {
      const json a = get(first), b = get(s);
      if (a != b)
        refuse("different " + std::string(what) + ": " + first.file + " has " + value_text(a) +
               ", " + s.file + " has " + value_text(b));
    }
  };
  for (const char* key : {"orchlab_version", "git_sha", "build_type", "compiler", "sanitizer"})
    same((std::string("builds (context.") + key + ")").c_str(), [&](const Shard& s) {
      return s.doc["context"].contains(key) ? s.doc["context"][key] : json(nullptr);
    });
  same("start instants (context.shard.start_at)",
       [](const Shard& s) { return s.doc["context"]["shard"].value("start_at", json(nullptr)); });
  same("services (context.shard.services)",
       [](const Shard& s) { return s.doc["context"]["shard"].value("services", json(nullptr)); });
  same("cell orders (context.shuffle_seed)",
       [](const Shard& s) { return s.doc["context"].value("shuffle_seed", json(nullptr)); });
  const auto scenarios = [](const Shard& s) {
    return s.doc.contains("lab") ? s.doc["lab"].value("scenarios", json::object()) : json::object();
  };
  for (const auto& s : shards) {
    const json a = scenarios(first), b = scenarios(s);
    if (a == b) continue;
    std::string which;
    for (const auto& [name, v] : a.items())
      if (!b.contains(name) || b[name] != v) which = name;
    for (const auto& [name, v] : b.items())
      if (!a.contains(name)) which = name;
    refuse("different scenarios: " + first.file + " and " + s.file + " differ in scenario \"" +
           which + "\"");
  }
}

}  // namespace

json merge_reports(const std::vector<std::string>& files, const std::string& command_line) {
  if (files.empty()) refuse("no reports to merge");
  std::vector<Shard> shards;
  for (const auto& f : files) shards.push_back(read_shard(f));
  check_together(shards);
  std::sort(shards.begin(), shards.end(),
            [](const Shard& a, const Shard& b) { return a.index < b.index; });
  const bool shared =
      shards.front().doc["context"]["shard"].value("services", "shared") == "shared";

  // Every shard's repetitions, keyed by cell and repetition; shard 0's order.
  using Key = std::pair<std::string, int>;
  std::vector<Key> order;
  std::vector<std::map<Key, Measurement>> per_shard(shards.size());
  for (std::size_t k = 0; k < shards.size(); ++k) {
    for (const auto& e : shards[k].doc["benchmarks"]) {
      if (e.value("run_type", "") != "iteration") continue;
      const Key key{e.value("run_name", ""), e.value("repetition_index", 0)};
      if (!per_shard[k].emplace(key, measurement_of(shards[k], e)).second)
        refuse(shards[k].file + ": " + key.first + " repetition " + std::to_string(key.second) +
               " appears twice");
      if (k == 0) order.push_back(key);
    }
  }
  for (std::size_t k = 1; k < shards.size(); ++k) {
    for (const auto& key : order)
      if (!per_shard[k].count(key))
        refuse(shards[k].file + " has no " + key.first + " repetition " +
               std::to_string(key.second) + ", which " + shards[0].file + " has");
    for (const auto& [key, m] : per_shard[k])
      if (!per_shard[0].count(key))
        refuse(shards[0].file + " has no " + key.first + " repetition " +
               std::to_string(key.second) + ", which " + shards[k].file + " has");
  }

  std::vector<Measurement> merged;
  for (const auto& key : order) {
    Measurement m = per_shard[0].at(key);
    // A cell one shard could not run is not run: the first such shard's
    // entry (its identity and the reason) stands for the merged cell.
    std::size_t refused = 0;
    while (refused < shards.size() && !per_shard[refused].at(key).infeasible) ++refused;
    if (refused < shards.size()) {
      Measurement id = per_shard[refused].at(key);
      id.infeasible = "shard " + std::to_string(shards[refused].index) + ": " + *id.infeasible;
      merged.push_back(std::move(id));
      continue;
    }
    m.shard_process.push_back(process_of(shards[0], m));
    for (std::size_t k = 1; k < shards.size(); ++k) {
      const auto& b = per_shard[k].at(key);
      if (b.window_s != m.window_s || b.warmup_s != m.warmup_s)
        refuse("different windows: " + key.first + " repetition " + std::to_string(key.second) +
               " measured " + std::to_string(m.window_s) + " s in " + shards[0].file + ", " +
               std::to_string(b.window_s) + " s in " + shards[k].file);
      const std::int64_t skew = b.window_start_unix_ns - per_shard[0].at(key).window_start_unix_ns;
      if (std::llabs(skew) > kWindowToleranceNs)
        refuse("different windows: " + key.first + " repetition " + std::to_string(key.second) +
               " began " + std::to_string(skew / 1'000'000) + " ms apart in " + shards[0].file +
               " and " + shards[k].file + " (more than " +
               std::to_string(kWindowToleranceNs / 1'000'000) +
               " ms: a shard overran its slot, or the hosts' clocks disagree)");
      m.shard_process.push_back(process_of(shards[k], b));
      add(m, b, shared);
    }
    refuse_impossible(m);
    merged.push_back(std::move(m));
  }

  // Time series: each shard wrote the first repetition of a cell it ran;
  // counts of orchestrations, calls in flight and threads add up bucket by
  // bucket over aligned windows.
  std::map<std::string, Series> series;
  for (const auto& s : shards) {
    if (!s.doc.contains("lab") || !s.doc["lab"].contains("series")) continue;
    for (const auto& [cell, ser] : s.doc["lab"]["series"].items()) add_series(series[cell], ser);
  }
  for (auto& m : merged)
    if (auto it = series.find(cell_name(m)); it != series.end()) m.series = it->second;

  RunInfo info;
  const auto& c0 = shards.front().doc["context"];
  info.shuffle_seed = c0.value("shuffle_seed", std::uint64_t{0});
  auto doc = build_report(info, merged,
                          shards.front().doc.contains("lab")
                              ? shards.front().doc["lab"].value("scenarios", json::object())
                              : json::object());
  // The shards' context, not the merging host's: shard 0's, with every
  // shard's host and command listed.
  json context = c0;
  json list = json::array();
  for (const auto& s : shards)
    list.push_back({{"index", s.index},
                    {"host", s.doc["context"]["shard"].value("host", "")},
                    {"file", s.file},
                    {"date", s.doc["context"].value("date", "")},
                    {"command_line", s.doc["context"].value("command_line", "")}});
  context["shard"] = {{"index", nullptr},
                      {"count", shards.front().count},
                      {"start_at", c0["shard"].value("start_at", json(nullptr))},
                      {"start_at_unix_ns", c0["shard"].value("start_at_unix_ns", json(nullptr))},
                      {"host", nullptr},
                      {"services", c0["shard"].value("services", "shared")},
                      {"merged", list}};
  context["merge_command_line"] = command_line;
  doc["context"] = context;
  // The shards' notes, each once, then what merging did.
  json all_notes = json::array();
  auto note = [&](const std::string& n) {
    if (std::find(all_notes.begin(), all_notes.end(), json(n)) == all_notes.end())
      all_notes.push_back(n);
  };
  for (const auto& s : shards)
    if (s.doc.contains("lab") && s.doc["lab"].contains("notes"))
      for (const auto& n : s.doc["lab"]["notes"]) note(n.get<std::string>());
  note("merged from " + std::to_string(shards.size()) +
       " shards: counts and throughput are sums over aligned windows, percentiles come from the "
       "merged histograms; threads, memory and drain belong to one process and are null in the "
       "entry, each shard's in its \"shards\" list; cpu_time is all shards' CPU per orchestration");
  note(shared ? "server_* fields of merged cells: the shards called the same services, so each "
                "shard's /__stats delta counts every shard's calls; the merged value is the "
                "largest shard's (abort lag p99: the worst)"
              : "server_* fields of merged cells: each shard ran services of its own; counts "
                "are summed, the abort lag p99 is the worst shard's");
  // And the merged cells' own (a server count the merge refused).
  for (const auto& n : doc["lab"].value("notes", json::array()))
    if (n.is_string()) note(n.get<std::string>());
  doc["lab"]["notes"] = all_notes;
  return doc;
}

int merge_command(const MergeOptions& options) {
  json doc;
  try {
    doc = merge_reports(options.inputs, options.command_line);
  } catch (const MergeError& e) {
    std::cerr << "orchlab merge: " << e.what() << "\n";
    return 2;
  } catch (const nlohmann::json::exception& e) {
    // A field of the wrong type in a report edited by hand or by another tool.
    std::cerr << "orchlab merge: a report has a field of the wrong type: " << e.what() << "\n";
    return 2;
  }
  try {
    if (options.out == "-")
      write_report(std::cout, doc);
    else
      write_atomic(options.out, doc);
  } catch (const std::exception& e) {
    std::cerr << "orchlab merge: " << e.what() << "\n";
    return 1;
  }
  return 0;
}

}  // namespace orchlab::harness

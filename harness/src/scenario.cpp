#include "orchlab/harness/scenario.hpp"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <limits>
#include <set>
#include <sstream>

#include "orchlab/mock/config.hpp"

namespace orchlab::harness {
namespace {

using nlohmann::json;

// Upper bounds that keep a typo from asking for a day-long run or a million
// threads; feasibility against the machine is checked later, per cell.
constexpr int kMaxFanout = 65535;  // the call index fits the key's 16 bits
constexpr int kMaxConcurrency = 65535;
constexpr double kMaxDurationS = 3600;
constexpr int kMaxRepetitions = 1000;
constexpr int kMaxDeadlineMs = 600000;

const std::set<std::string> kScenarioFields = {
    "name",     "description",        "services",    "deadline_ms", "fanout",      "concurrency",
    "patterns", "duration_s",         "repetitions", "mode",        "rate",        "arrivals",
    "warmup_s", "max_conns_per_host", "limit",       "comment",     "go_transport"};
const std::set<std::string> kSweepFields = {"name", "description", "include", "defaults",
                                            "comment"};

[[noreturn]] void fail(const std::string& where, const std::string& field,
                       const std::string& what) {
  throw ScenarioError(where + ": " + field + ": " + what);
}

std::string type_name(const json& v) { return v.type_name(); }

int get_int(const json& v, const std::string& where, const std::string& field, int lo, int hi) {
  if (!v.is_number_integer() &&
      !(v.is_number_float() && std::floor(v.get<double>()) == v.get<double>()))
    fail(where, field, "must be an integer, got " + type_name(v) + " " + v.dump());
  const double d = v.get<double>();
  if (d < lo || d > hi)
    fail(where, field,
         "must be in [" + std::to_string(lo) + ", " + std::to_string(hi) + "], got " + v.dump());
  return static_cast<int>(d);
}

double get_number(const json& v, const std::string& where, const std::string& field, double lo,
                  double hi, bool lo_open) {
  if (!v.is_number()) fail(where, field, "must be a number, got " + type_name(v) + " " + v.dump());
  const double d = v.get<double>();
  if (!std::isfinite(d) || d < lo || (lo_open && d == lo) || d > hi) {
    std::ostringstream os;
    os << "must be " << (lo_open ? "> " : ">= ") << lo << " and <= " << hi << ", got " << v.dump();
    fail(where, field, os.str());
  }
  return d;
}

std::vector<int> get_int_list(const json& v, const std::string& where, const std::string& field,
                              int lo, int hi) {
  std::vector<int> out;
  if (v.is_number()) {
    out.push_back(get_int(v, where, field, lo, hi));
  } else if (v.is_array()) {
    if (v.empty()) fail(where, field, "must not be empty");
    for (std::size_t i = 0; i < v.size(); ++i)
      out.push_back(get_int(v[i], where, field + "[" + std::to_string(i) + "]", lo, hi));
  } else {
    fail(where, field, "must be an integer or a list of integers, got " + type_name(v));
  }
  return out;
}

std::string get_string(const json& v, const std::string& where, const std::string& field) {
  if (!v.is_string()) fail(where, field, "must be a string, got " + type_name(v) + " " + v.dump());
  return v.get<std::string>();
}

Mode parse_mode(const std::string& s, const std::string& where) {
  if (s == "closed") return Mode::closed;
  if (s == "open") return Mode::open;
  fail(where, "mode", "must be \"closed\" or \"open\", got \"" + s + "\"");
}

std::vector<std::string> expand_patterns(const std::vector<std::string>& requested,
                                         const std::vector<std::string>& known,
                                         const std::vector<std::string>& not_in_all,
                                         const std::string& where) {
  std::vector<std::string> out;
  for (std::size_t i = 0; i < requested.size(); ++i) {
    const auto& p = requested[i];
    if (p == "all") {
      for (const auto& k : known)
        if (std::find(out.begin(), out.end(), k) == out.end() &&
            std::find(not_in_all.begin(), not_in_all.end(), k) == not_in_all.end())
          out.push_back(k);
      continue;
    }
    if (std::find(known.begin(), known.end(), p) == known.end()) {
      std::string list;
      for (const auto& k : known) list += (list.empty() ? "" : ", ") + k;
      fail(where, "patterns[" + std::to_string(i) + "]",
           "unknown pattern \"" + p + "\" (known: " + list + ", all)");
    }
    if (std::find(out.begin(), out.end(), p) == out.end()) out.push_back(p);
  }
  if (out.empty()) fail(where, "patterns", "must name at least one pattern");
  return out;
}

// The service objects are the mock's own config: its parser validates
// them, so a scenario fails here, before anything starts, not mid-run.
void check_services(const json& services, const std::string& where) {
  if (!services.is_array()) fail(where, "services", "must be a list of service objects");
  if (services.empty()) fail(where, "services", "must name at least one service");
  std::set<std::string> names;
  for (std::size_t i = 0; i < services.size(); ++i) {
    const std::string field = "services[" + std::to_string(i) + "]";
    const auto& s = services[i];
    if (!s.is_object()) fail(where, field, "must be an object, got " + type_name(s));
    if (!s.contains("name")) fail(where, field + ".name", "is required");
    const auto name = get_string(s["name"], where, field + ".name");
    if (name.empty()) fail(where, field + ".name", "must not be empty");
    if (!names.insert(name).second)
      fail(where, field + ".name", "duplicate service \"" + name + "\"");
    try {
      mock::parse_service_config(s, where + ": " + field);
    } catch (const mock::ConfigError& e) {
      throw ScenarioError(e.what());
    }
  }
}

json read_json_file(const std::filesystem::path& path) {
  std::ifstream in(path);
  if (!in) throw ScenarioError("scenario " + path.string() + ": cannot open file");
  try {
    return json::parse(in, nullptr, true, /*ignore_comments=*/false);
  } catch (const json::exception& e) {
    // Not only parse_error: a number too large for a double ("1e400") is
    // an out_of_range, and it must still read as bad input.
    throw ScenarioError("scenario " + path.string() + ": malformed JSON: " + e.what());
  }
}

}  // namespace

std::string_view to_string(Mode mode) { return mode == Mode::open ? "open" : "closed"; }

std::string Cell::name() const {
  return scenario->name + "/" + pattern + "/fanout:" + std::to_string(fanout) +
         "/concurrency:" + std::to_string(concurrency);
}

std::filesystem::path resolve_scenario(const std::string& name_or_file,
                                       const std::vector<std::filesystem::path>& search_dirs) {
  namespace fs = std::filesystem;
  if (name_or_file.empty()) throw ScenarioError("scenario: empty name");
  std::error_code ec;
  const fs::path given(name_or_file);
  if (fs::is_regular_file(given, ec)) return given;
  std::string looked = given.string();
  // A relative NAME or folder/NAME (without an extension: NAME.json) is
  // looked up in each search dir: "claims/fail-fast" in a sweep of scenarios/.
  if (given.is_relative()) {
    const fs::path file = given.has_extension() ? given : fs::path(name_or_file + ".json");
    for (const auto& dir : search_dirs) {
      const fs::path candidate = dir / file;
      if (fs::is_regular_file(candidate, ec)) return candidate;
      looked += ", " + candidate.string();
    }
  }
  throw ScenarioError("scenario " + name_or_file + ": not found (looked at " + looked + ")");
}

// The least time any orchestration of `services` can take, by the services'
// own latency profiles: the smallest `fixed` ms or `uniform` min_ms (0 for
// the other distributions, which may draw near zero). Round-robin calls reach
// every service once fan-out covers them, but a fan-out of 1 meets only one,
// so the minimum over services is the bound that always holds.
double floor_latency_ms(const json& services) {
  double floor = std::numeric_limits<double>::infinity();
  for (const auto& svc : services) {
    double ms = 0;
    const auto lat = svc.find("latency");
    if (lat != svc.end() && lat->is_object()) {
      const std::string dist = lat->value("dist", "");
      if (dist == "fixed") ms = lat->value("ms", 0.0);
      if (dist == "uniform") ms = lat->value("min_ms", 0.0);
    }
    floor = std::min(floor, ms);
  }
  return std::isfinite(floor) ? floor : 0.0;
}

// Open loop: a rate > 0, the default worker count, and a rate the workers
// can hold at all. W workers whose orchestrations each take at least L ms
// start at most W / L per second, whatever the pattern: a higher rate is a
// schedule that must fall behind from its first second.
void check_open_loop(Scenario& s, bool concurrency_given, const std::string& where) {
  if (s.rate <= 0) fail(where, "rate", "open mode needs a rate > 0 (orchestrations per second)");
  if (!concurrency_given) {
    // Enough for every start of two deadlines' worth to be in flight at once.
    const double need = std::ceil(s.rate * s.deadline_ms / 1000.0 * 2);
    s.concurrency = {static_cast<int>(std::clamp(need, 1.0, static_cast<double>(kMaxConcurrency)))};
  }
  const double floor_ms = floor_latency_ms(s.services);
  if (floor_ms <= 0) return;
  for (int workers : s.concurrency) {
    const double most = workers * 1000.0 / floor_ms;
    if (s.rate > most) {
      std::ostringstream os;
      os << s.rate << "/s cannot be held by " << workers
         << " workers: every orchestration takes at least " << floor_ms
         << " ms (the services' latency), so they start at most " << most
         << "/s; give --concurrency >= " << std::ceil(s.rate * floor_ms / 1000.0);
      fail(where, "rate", os.str());
    }
  }
}

Scenario parse_scenario(const json& doc, const std::string& where,
                        const std::vector<std::string>& known_patterns, const Overrides& overrides,
                        const std::vector<std::string>& not_in_all) {
  if (!doc.is_object()) throw ScenarioError(where + ": must be a JSON object");
  for (const auto& [key, value] : doc.items())
    if (!kScenarioFields.count(key)) fail(where, key, "unknown field");
  Scenario s;
  s.origin = where;
  if (!doc.contains("name")) fail(where, "name", "is required");
  s.name = get_string(doc["name"], where, "name");
  if (s.name.empty() || s.name.find('/') != std::string::npos)
    fail(where, "name", "must be non-empty and contain no '/'");
  if (doc.contains("description"))
    s.description = get_string(doc["description"], where, "description");
  if (!doc.contains("services")) fail(where, "services", "is required");
  check_services(doc["services"], where);
  s.services = doc["services"];
  if (doc.contains("deadline_ms"))
    s.deadline_ms = get_int(doc["deadline_ms"], where, "deadline_ms", 1, kMaxDeadlineMs);
  if (doc.contains("fanout"))
    s.fanout = get_int_list(doc["fanout"], where, "fanout", 1, kMaxFanout);
  if (doc.contains("concurrency"))
    s.concurrency = get_int_list(doc["concurrency"], where, "concurrency", 1, kMaxConcurrency);
  if (doc.contains("duration_s"))
    s.duration_s = get_number(doc["duration_s"], where, "duration_s", 0, kMaxDurationS, true);
  if (doc.contains("repetitions"))
    s.repetitions = get_int(doc["repetitions"], where, "repetitions", 1, kMaxRepetitions);
  if (doc.contains("mode")) s.mode = parse_mode(get_string(doc["mode"], where, "mode"), where);
  if (doc.contains("rate")) s.rate = get_number(doc["rate"], where, "rate", 0, 1e7, false);
  if (doc.contains("arrivals")) {
    const std::string a = get_string(doc["arrivals"], where, "arrivals");
    if (a != "constant" && a != "poisson")
      fail(where, "arrivals", "must be \"constant\" or \"poisson\", got \"" + a + "\"");
    s.poisson = a == "poisson";
  }
  if (doc.contains("warmup_s"))
    s.warmup_s = get_number(doc["warmup_s"], where, "warmup_s", 0, kMaxDurationS, false);
  if (doc.contains("max_conns_per_host"))
    s.max_conns_per_host = static_cast<std::size_t>(
        get_int(doc["max_conns_per_host"], where, "max_conns_per_host", 1, 100000));
  if (doc.contains("limit")) s.limit = get_int(doc["limit"], where, "limit", 1, kMaxFanout);
  if (doc.contains("go_transport")) {
    s.go_transport = get_string(doc["go_transport"], where, "go_transport");
    if (s.go_transport != "lab" && s.go_transport != "default")
      fail(where, "go_transport",
           "must be \"lab\" (MaxConnsPerHost = max_conns_per_host) or \"default\" (Go's "
           "defaults), got \"" +
               s.go_transport + "\"");
  }
  std::vector<std::string> patterns{"all"};
  if (doc.contains("patterns")) {
    const auto& p = doc["patterns"];
    if (!p.is_array()) fail(where, "patterns", "must be a list of pattern names");
    patterns.clear();
    for (std::size_t i = 0; i < p.size(); ++i)
      patterns.push_back(get_string(p[i], where, "patterns[" + std::to_string(i) + "]"));
  }

  // Command-line overrides: validated with the same bounds, named as flags.
  const std::string cli = "command line";
  if (overrides.patterns) patterns = *overrides.patterns;
  if (overrides.fanout)
    s.fanout = get_int_list(json(*overrides.fanout), cli, "--fanout", 1, kMaxFanout);
  if (overrides.concurrency)
    s.concurrency =
        get_int_list(json(*overrides.concurrency), cli, "--concurrency", 1, kMaxConcurrency);
  if (overrides.duration_s)
    s.duration_s =
        get_number(json(*overrides.duration_s), cli, "--duration", 0, kMaxDurationS, true);
  if (overrides.repetitions)
    s.repetitions = get_int(json(*overrides.repetitions), cli, "--repetitions", 1, kMaxRepetitions);
  if (overrides.mode) s.mode = *overrides.mode;
  if (overrides.rate) s.rate = get_number(json(*overrides.rate), cli, "--rate", 0, 1e7, true);
  if (overrides.poisson) s.poisson = *overrides.poisson;
  if (overrides.warmup_s)
    s.warmup_s = get_number(json(*overrides.warmup_s), cli, "--warmup", 0, kMaxDurationS, false);

  s.patterns =
      expand_patterns(patterns, known_patterns, not_in_all, overrides.patterns ? cli : where);
  if (s.mode == Mode::open)
    check_open_loop(s, doc.contains("concurrency") || overrides.concurrency, where);
  return s;
}

std::vector<Scenario> load_scenarios(const std::string& name_or_file,
                                     const std::vector<std::filesystem::path>& search_dirs,
                                     const std::vector<std::string>& known_patterns,
                                     const Overrides& overrides,
                                     const std::vector<std::string>& not_in_all) {
  const auto path = resolve_scenario(name_or_file, search_dirs);
  const json doc = read_json_file(path);
  const std::string where = "scenario " + path.string();
  if (!doc.is_object()) throw ScenarioError(where + ": must be a JSON object");
  if (!doc.contains("include"))
    return {parse_scenario(doc, where, known_patterns, overrides, not_in_all)};

  // A sweep: each entry is a scenario name or {"scenario": NAME, field: value...};
  // precedence: included file < "defaults" < entry fields < command line.
  for (const auto& [key, value] : doc.items())
    if (!kSweepFields.count(key))
      fail(where, key, "unknown field in a sweep (one with \"include\")");
  const auto& include = doc["include"];
  if (!include.is_array() || include.empty()) fail(where, "include", "must be a non-empty list");
  json defaults = json::object();
  if (doc.contains("defaults")) {
    defaults = doc["defaults"];
    if (!defaults.is_object()) fail(where, "defaults", "must be an object of scenario fields");
    for (const auto& [key, value] : defaults.items())
      if (!kScenarioFields.count(key) || key == "name")
        fail(where, "defaults." + key, "unknown or not overridable");
  }
  std::vector<std::filesystem::path> dirs{path.parent_path().empty() ? "." : path.parent_path()};
  dirs.insert(dirs.end(), search_dirs.begin(), search_dirs.end());
  std::vector<Scenario> out;
  std::set<std::string> seen;
  for (std::size_t i = 0; i < include.size(); ++i) {
    const std::string field = "include[" + std::to_string(i) + "]";
    const auto& entry = include[i];
    json fields = json::object();
    std::string ref;
    if (entry.is_string()) {
      ref = entry.get<std::string>();
    } else if (entry.is_object()) {
      if (!entry.contains("scenario")) fail(where, field + ".scenario", "is required");
      ref = get_string(entry["scenario"], where, field + ".scenario");
      for (const auto& [key, value] : entry.items()) {
        if (key == "scenario") continue;
        if (!kScenarioFields.count(key)) fail(where, field + "." + key, "unknown field");
        fields[key] = value;
      }
    } else {
      fail(where, field, "must be a scenario name or an object with \"scenario\"");
    }
    std::filesystem::path inc_path;
    try {
      inc_path = resolve_scenario(ref, dirs);
    } catch (const ScenarioError& e) {
      fail(where, field, e.what());
    }
    json inc = read_json_file(inc_path);
    const std::string inc_where =
        "scenario " + inc_path.string() + " (" + where + " " + field + ")";
    if (!inc.is_object()) throw ScenarioError(inc_where + ": must be a JSON object");
    if (inc.contains("include")) fail(inc_where, "include", "sweeps cannot be nested");
    for (const auto& [key, value] : defaults.items()) inc[key] = value;
    for (const auto& [key, value] : fields.items()) inc[key] = value;
    auto s = parse_scenario(inc, inc_where, known_patterns, overrides, not_in_all);
    if (!seen.insert(s.name).second)
      fail(where, field,
           "scenario \"" + s.name + "\" included twice (give one a different \"name\")");
    out.push_back(std::move(s));
  }
  return out;
}

double warmup_seconds(const Scenario& s) {
  return s.warmup_s >= 0 ? s.warmup_s : std::max(0.2, 0.1 * s.duration_s);
}

std::vector<Cell> expand_cells(const std::vector<Scenario>& scenarios) {
  std::vector<Cell> cells;
  for (const auto& s : scenarios)
    for (const auto& p : s.patterns)
      for (int f : s.fanout)
        for (int c : s.concurrency) cells.push_back(Cell{&s, p, f, c});
  return cells;
}

}  // namespace orchlab::harness

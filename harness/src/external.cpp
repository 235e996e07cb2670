#include "orchlab/harness/external.hpp"

#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "orchlab/harness/services.hpp"
#include "orchlab/harness/system.hpp"
#include "orchlab/harness/trace.hpp"

#ifndef ORCHLAB_SOURCE_DIR
#define ORCHLAB_SOURCE_DIR "."
#endif

extern char** environ;

namespace orchlab::harness {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;
using ojson = nlohmann::ordered_json;
using Clock = std::chrono::steady_clock;

constexpr int kProtocol = 1;
constexpr std::size_t kMaxStdout = 64u << 20;  // a measurement is a few hundred kB at most
constexpr std::size_t kStderrTail = 2048;
constexpr std::int64_t kSampleNs = 10'000'000;  // threads and RSS, as the C++ sampler
constexpr std::int64_t kBucketNs = 100'000'000;
// From spawning the driver to its load: the start of a Go binary is a few ms.
constexpr std::chrono::milliseconds kLead{300};

std::int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch())
      .count();
}

// /proc/<pid>/status: Threads, VmRSS, VmHWM (kB). ok false once the process is gone.
struct ProcStatus {
  bool ok = false;
  std::int64_t threads = 0, rss_kb = 0, hwm_kb = 0;
};

ProcStatus proc_status(pid_t pid) {
  ProcStatus s;
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  bool memory = false;
  while (std::getline(in, line)) {
    auto value = [&](const char* key, std::int64_t& out) {
      const std::size_t n = std::strlen(key);
      if (line.compare(0, n, key) != 0) return false;
      out = std::atoll(line.c_str() + n);
      return true;
    };
    value("Threads:", s.threads);
    memory = value("VmRSS:", s.rss_kb) || memory;
    value("VmHWM:", s.hwm_kb);
  }
  s.ok = s.threads > 0 && memory;  // an exited process (a zombie) has no memory lines
  return s;
}

// CPU time (utime + stime of every thread, live or ended, from
// /proc/<pid>/stat: clock ticks) and context switches (summed over the live
// threads' /proc/<pid>/task/*/status) of a running process.
struct ProcCpu {
  bool ok = false;
  double cpu_s = 0;
  std::int64_t voluntary = 0, involuntary = 0;
};

ProcCpu proc_cpu(pid_t pid) {
  ProcCpu c;
  const std::string dir = "/proc/" + std::to_string(pid);
  std::ifstream stat(dir + "/stat");
  std::string text((std::istreambuf_iterator<char>(stat)), std::istreambuf_iterator<char>());
  const auto close = text.rfind(')');  // the command name may hold spaces and parens
  if (close == std::string::npos) return c;
  std::istringstream rest(text.substr(close + 2));
  std::string field;
  std::int64_t utime = 0, stime = 0;
  // Fields 3.. of proc(5); utime and stime are fields 14 and 15.
  for (int k = 3; k <= 15 && rest >> field; ++k) {
    if (k == 14) utime = std::atoll(field.c_str());
    if (k == 15) stime = std::atoll(field.c_str());
  }
  const long ticks = ::sysconf(_SC_CLK_TCK);
  c.cpu_s = static_cast<double>(utime + stime) / static_cast<double>(ticks > 0 ? ticks : 100);
  std::error_code ec;
  for (auto it = fs::directory_iterator(dir + "/task", ec); !ec && it != fs::directory_iterator();
       it.increment(ec)) {
    std::ifstream st(it->path() / "status");
    std::string line;
    while (std::getline(st, line)) {
      if (line.rfind("voluntary_ctxt_switches:", 0) == 0)
        c.voluntary += std::atoll(line.c_str() + 24);
      else if (line.rfind("nonvoluntary_ctxt_switches:", 0) == 0)
        c.involuntary += std::atoll(line.c_str() + 27);
    }
  }
  c.ok = true;
  return c;
}

// write(2) to a pipe whose reader is gone, without the SIGPIPE that would
// end a process that has not ignored it (a test binary, a program linking
// the harness): the signal is blocked in this thread for the call, and one
// it raised is taken before it is unblocked. EPIPE is the answer then.
ssize_t write_no_sigpipe(int fd, const char* data, std::size_t size) {
  sigset_t pipe_only, old;
  sigemptyset(&pipe_only);
  sigaddset(&pipe_only, SIGPIPE);
  sigset_t pending;
  sigpending(&pending);
  const bool was_pending = sigismember(&pending, SIGPIPE) == 1;
  pthread_sigmask(SIG_BLOCK, &pipe_only, &old);
  const ssize_t n = ::write(fd, data, size);
  const int saved = errno;
  if (n < 0 && saved == EPIPE && !was_pending) {
    const timespec zero{0, 0};
    while (sigtimedwait(&pipe_only, nullptr, &zero) < 0 && errno == EINTR) {
    }
  }
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  errno = saved;
  return n;
}

std::string signal_name(int sig) {
  const char* name = ::sigabbrev_np(sig);
  return name ? std::string("SIG") + name : "signal " + std::to_string(sig);
}

// The last lines of a driver's stderr, one line for a note.
std::string tail_line(const std::string& err) {
  std::string t = err;
  while (!t.empty() && (t.back() == '\n' || t.back() == '\r')) t.pop_back();
  for (auto& ch : t)
    if (ch == '\n') ch = '|';
  return t.empty() ? "(nothing)" : t;
}

// The services' longest delay, hang or slow body (every *_ms number in
// their config), in ms; unknown services (URLs): a minute.
double longest_service_ms(const json& services) {
  double most = 0;
  bool any = false;
  auto walk = [&](const auto& self, const json& v) -> void {
    if (v.is_object()) {
      for (const auto& [key, value] : v.items()) {
        if (value.is_number() && key.size() > 3 && key.compare(key.size() - 3, 3, "_ms") == 0) {
          most = std::max(most, value.template get<double>());
          any = true;
        } else {
          self(self, value);
        }
      }
    } else if (v.is_array()) {
      for (const auto& x : v) self(self, x);
    }
  };
  walk(walk, services);
  return any || services.is_array() ? most : 60000.0;
}

// ---- reading a measurement ------------------------------------------------

struct Reader {
  const json& doc;
  std::string& why;
  bool ok = true;

  const json* field(const char* name) {
    if (!ok) return nullptr;
    if (!doc.contains(name)) {
      fail(std::string("the measurement has no field \"") + name + "\"");
      return nullptr;
    }
    return &doc[name];
  }
  void fail(const std::string& what) {
    if (ok) why = what;
    ok = false;
  }
  std::uint64_t count(const char* name) {
    const json* v = field(name);
    if (!v) return 0;
    if (!v->is_number_unsigned() && !(v->is_number_integer() && v->get<std::int64_t>() >= 0)) {
      fail(std::string("\"") + name + "\" is not a count: " + v->dump());
      return 0;
    }
    return v->get<std::uint64_t>();
  }
  double number(const char* name) {
    const json* v = field(name);
    if (!v) return 0;
    if (!v->is_number() || !std::isfinite(v->get<double>()) || v->get<double>() < 0) {
      fail(std::string("\"") + name + "\" is not a non-negative number: " + v->dump());
      return 0;
    }
    return v->get<double>();
  }
  bool boolean(const char* name) {
    const json* v = field(name);
    if (!v) return false;
    if (!v->is_boolean()) {
      fail(std::string("\"") + name + "\" is not true or false: " + v->dump());
      return false;
    }
    return v->get<bool>();
  }
  std::string string(const char* name) {
    const json* v = field(name);
    if (!v) return {};
    if (!v->is_string()) {
      fail(std::string("\"") + name + "\" is not a string: " + v->dump());
      return {};
    }
    return v->get<std::string>();
  }
  LogHistogram histogram(const json& histograms, const char* name) {
    if (!ok) return {};
    if (!histograms.is_object() || !histograms.contains(name)) {
      fail(std::string("the measurement has no histograms.") + name);
      return {};
    }
    std::string bad;
    auto h = histogram_from_json(histograms[name], bad);
    if (!h) {
      fail(std::string("histograms.") + name + ": " + bad);
      return {};
    }
    return *h;
  }
  template <typename T>
  std::vector<T> list(const json& series, const char* name) {
    std::vector<T> out;
    if (!ok) return out;
    if (!series.is_object() || !series.contains(name) || !series[name].is_array()) {
      fail(std::string("series.") + name + " is not a list");
      return out;
    }
    for (const auto& x : series[name]) {
      if (!x.is_number_integer()) {
        fail(std::string("series.") + name + " holds " + x.dump() + ", not an integer");
        return {};
      }
      out.push_back(x.get<T>());
    }
    return out;
  }
};

}  // namespace

const std::vector<std::string>& go_pattern_names() {
  static const std::vector<std::string> names = {
      "go-channel-soup",   "go-waitgroup-select",     "go-mutex-aggregation",   "go-errgroup",
      "go-errgroup-limit", "go-errgroup+collect-all", "go-errgroup+ignores-ctx"};
  return names;
}

DriverLookup find_go_driver(const std::string& flag) {
  DriverLookup out;
  const char* env = std::getenv("ORCHLAB_GO_DRIVER");
  if (flag == "none" || (flag.empty() && env && std::string_view(env) == "none")) {
    out.why_not = std::string("the Go driver is switched off (") +
                  (flag.empty() ? "ORCHLAB_GO_DRIVER" : "--go-driver") + " none)";
    return out;
  }
  if (!flag.empty()) {
    if (!sys::executable_file(flag))
      throw std::invalid_argument("--go-driver " + flag + ": not an executable file");
    out.path = flag;
    out.found_by = "--go-driver";
    return out;
  }
  if (env != nullptr && *env != '\0') {
    if (!sys::executable_file(env))
      throw std::invalid_argument(std::string("ORCHLAB_GO_DRIVER=") + env +
                                  ": not an executable file");
    out.path = env;
    out.found_by = "ORCHLAB_GO_DRIVER";
    return out;
  }
  std::vector<std::string> looked;
  // build/<tree>/harness/orchlab -> build/go/orchlab-go (make go).
  const fs::path self = sys::executable(nullptr);
  if (self.is_absolute()) {
    const std::string sibling =
        (self.parent_path() / ".." / ".." / "go" / "orchlab-go").lexically_normal().string();
    if (sys::executable_file(sibling)) {
      out.path = sibling;
      out.found_by = "build tree";
      return out;
    }
    looked.push_back(sibling);
  }
  const std::string source =
      (fs::path(ORCHLAB_SOURCE_DIR) / "build" / "go" / "orchlab-go").lexically_normal().string();
  if (std::find(looked.begin(), looked.end(), source) == looked.end()) {
    if (sys::executable_file(source)) {
      out.path = source;
      out.found_by = "build tree";
      return out;
    }
    looked.push_back(source);
  }
  if (auto on_path = sys::find_on_path("orchlab-go")) {
    out.path = *on_path;
    out.found_by = "PATH";
    return out;
  }
  std::string where;
  for (const auto& l : looked) where += (where.empty() ? "" : ", ") + l;
  out.why_not =
      "orchlab-go is not built (make go builds it; or give --go-driver or "
      "ORCHLAB_GO_DRIVER): not at " +
      where + ", not on PATH";
  return out;
}

ojson driver_input(const CellEnv& env, int repetition, std::int64_t load_start_mono_ns,
                   std::chrono::milliseconds drain_timeout) {
  const Cell& cell = *env.cell;
  const Scenario& sc = *cell.scenario;
  ojson in = ojson::object();
  in["protocol"] = kProtocol;
  in["pattern"] = cell.pattern;
  in["services"] = env.services->urls();
  in["fanout"] = cell.fanout;
  in["concurrency"] = cell.concurrency;
  in["mode"] = std::string(to_string(sc.mode));
  in["warmup_s"] = warmup_seconds(sc);
  in["duration_s"] = sc.duration_s;
  in["deadline_ms"] = sc.deadline_ms;
  in["max_conns_per_host"] = sc.max_conns_per_host;
  in["limit"] = sc.limit;
  in["call_keys"] = {{"rule", "orchlab-v1"}, {"repetition", repetition}};
  in["go_transport"] = sc.go_transport;
  if (sc.mode == Mode::open) {
    const auto starts = open_loop_starts(sc, repetition, env.shard_index, env.shard_count);
    ojson offsets = ojson::array(), seqs = ojson::array();
    for (const auto& s : starts) {
      offsets.push_back(s.offset_ns);
      seqs.push_back(s.seq);
    }
    in["start_offsets_ns"] = std::move(offsets);
    in["start_seqs"] = std::move(seqs);
    in["target_rate"] = sc.rate / env.shard_count;
  }
  ojson callers = ojson::array();
  for (int c = env.shard_index; c < cell.concurrency; c += env.shard_count) callers.push_back(c);
  in["caller_ids"] = std::move(callers);
  in["drain_timeout_ms"] = drain_timeout.count();
  in["load_start_mono_ns"] = load_start_mono_ns;
  // --trace: the driver records its calls and returns the samples' spans.
  if (env.tracer)
    in["trace"] = {{"max_orchestrations", trace::Repetition::kMaxOrchRecords},
                   {"max_calls", trace::Repetition::kMaxCalls}};
  return in;
}

std::chrono::milliseconds driver_time_budget(const Cell& cell, std::chrono::milliseconds lead,
                                             std::chrono::milliseconds drain_timeout,
                                             std::chrono::milliseconds grace) {
  const Scenario& sc = *cell.scenario;
  const double longest =
      std::max(static_cast<double>(cell.fanout) * sc.deadline_ms, longest_service_ms(sc.services));
  const double ms = static_cast<double>(lead.count()) +
                    1000.0 * (warmup_seconds(sc) + sc.duration_s) + longest +
                    static_cast<double>(drain_timeout.count() + grace.count());
  return std::chrono::milliseconds(static_cast<std::int64_t>(std::ceil(ms)));
}

bool apply_driver_measurement(const json& out, const Cell& cell, Measurement& m, std::string& why) {
  if (!out.is_object()) {
    why = "the driver printed " + std::string(out.type_name()) + ", not a measurement object";
    return false;
  }
  Reader r{out, why};
  if (const json* p = r.field("protocol"); p && *p != kProtocol)
    r.fail("the measurement speaks protocol " + p->dump() + ", not " + std::to_string(kProtocol));
  const std::string pattern = r.string("pattern");
  if (r.ok && pattern != cell.pattern)
    r.fail("the measurement is of pattern \"" + pattern + "\", not \"" + cell.pattern + "\"");
  const auto fanout = r.count("fanout");
  const auto concurrency = r.count("concurrency");
  if (r.ok && (fanout != static_cast<std::uint64_t>(cell.fanout) ||
               concurrency != static_cast<std::uint64_t>(cell.concurrency)))
    r.fail("the measurement is of fan-out " + std::to_string(fanout) + " x " +
           std::to_string(concurrency) + " callers, not " + std::to_string(cell.fanout) + " x " +
           std::to_string(cell.concurrency));
  m.orchestrations = r.count("iterations");
  m.completed_in_window = r.count("completed_in_window");
  m.complete = r.count("complete");
  m.partial = r.count("partial");
  m.failed = r.count("failed");
  m.timed_out = r.count("timed_out");
  m.leaked_tasks_at_return = r.count("leaked_tasks_at_return");
  m.leaked_tasks_end = static_cast<std::int64_t>(r.count("leaked_tasks_end"));
  m.zombie_task_s = r.number("zombie_task_s");
  m.late_completions = r.count("late_completions");
  m.live_tasks_peak = static_cast<std::int64_t>(r.count("live_tasks_peak"));
  m.drain_ms = r.number("drain_ms");
  m.drained = r.boolean("drained");
  m.warmup_s = r.number("warmup_s");
  m.window_s = r.number("window_s");
  m.wall_s = r.number("wall_s");
  m.calls = r.count("calls");
  m.call_ok = r.count("call_ok");
  m.call_http_errors = r.count("call_http_errors");
  m.call_transport_errors = r.count("call_transport_errors");
  m.call_cancelled = r.count("call_cancelled");
  m.call_unanswered = r.count("call_unanswered");
  m.orchestrations_threw = r.count("orchestrations_panicked");
  m.callers = static_cast<int>(r.count("callers"));
  if (cell.scenario->mode == Mode::open) {
    m.starts_late = r.count("starts_late");
    m.starts_expired = r.count("starts_expired");
  }
  const json* histograms = r.field("histograms");
  if (histograms) {
    m.latency_ns = r.histogram(*histograms, "latency_ns");
    m.overshoot_ns = r.histogram(*histograms, "overshoot_ns");
  }
  const json* series = r.field("series");
  if (series) {
    m.series.window_ms =
        series->is_object() && series->contains("window_ms") && (*series)["window_ms"].is_number()
            ? (*series)["window_ms"].get<double>()
            : (r.fail("series.window_ms is not a number"), 0.0);
    m.series.started = r.list<std::uint64_t>(*series, "started");
    m.series.finished = r.list<std::uint64_t>(*series, "finished");
    m.series.in_flight = r.list<std::int64_t>(*series, "in_flight");
    m.series.live_tasks = r.list<std::int64_t>(*series, "live_tasks");
    m.series.goroutines = r.list<std::int64_t>(*series, "goroutines");
  }
  ojson extra = ojson::object();
  extra["driver"] = "orchlab-go";
  extra["exhibit_form"] = r.string("exhibit_form");
  extra["go_version"] = r.string("go_version");
  extra["gomaxprocs"] = r.count("gomaxprocs");
  if (const json* t = r.field("transport"); t) {
    if (!t->is_object() || !t->contains("mode"))
      r.fail("\"transport\" is not the transport object: " + t->dump());
    else
      extra["go_transport"] = ojson::parse(t->dump());
  }
  for (const char* f : {"goroutines_baseline", "goroutines_peak", "goroutines_end", "tasks_started",
                        "tasks_finished"})
    extra[f] = r.count(f);
  const json* notes = r.field("notes");
  if (notes && !notes->is_array()) r.fail("\"notes\" is not a list");
  if (!r.ok) return false;
  // What cannot be true of one repetition is not a measurement.
  if (m.complete + m.partial + m.failed + m.timed_out != m.orchestrations) {
    why = "its verdicts (" + std::to_string(m.complete + m.partial + m.failed + m.timed_out) +
          ") do not add up to its " + std::to_string(m.orchestrations) + " iterations";
    return false;
  }
  if (m.latency_ns.count() != m.orchestrations) {
    why = "its latency histogram holds " + std::to_string(m.latency_ns.count()) + " samples for " +
          std::to_string(m.orchestrations) + " iterations";
    return false;
  }
  if (m.call_ok + m.call_http_errors + m.call_transport_errors + m.call_cancelled +
          m.call_unanswered !=
      m.calls) {
    why = "its call outcomes do not add up to its " + std::to_string(m.calls) + " calls";
    return false;
  }
  for (const auto& n : *notes)
    if (n.is_string()) m.notes.push_back(cell.name() + " (orchlab-go): " + n.get<std::string>());
  m.runtime_fields = std::move(extra);
  return true;
}

Measurement run_driver_repetition(const CellEnv& env, const std::string& driver_path,
                                  int repetition_index, bool& complete) {
  const Cell& cell = *env.cell;
  const Scenario& sc = *cell.scenario;
  Measurement m = cell_identity(cell, env.family_index, env.per_family_instance_index);
  m.repetition_index = repetition_index;
  m.lock_measured = false;  // no profiled lock in another runtime
  m.threads_end_measured = false;
  m.open_loop = sc.mode == Mode::open;
  if (m.open_loop) m.target_rate = sc.rate / env.shard_count;
  complete = true;
  auto interrupted = [&] { return env.interrupted && env.interrupted->load(); };
  auto infeasible = [&](std::string why, const std::string& err) {
    if (env.tracer)
      env.tracer->untraced(cell, "repetition " + std::to_string(repetition_index + 1) +
                                     " of its driver gave no measurement: " + why);
    Measurement bad = cell_identity(cell, env.family_index, env.per_family_instance_index);
    bad.repetition_index = repetition_index;
    bad.infeasible = "repetition " + std::to_string(repetition_index + 1) + ": " + why;
    if (!err.empty())
      bad.notes.push_back(cell.name() + ": orchlab-go's stderr ended with: " + tail_line(err));
    return bad;
  };

  const auto stats_before = begin_repetition(env, m);
  const std::int64_t settle = std::chrono::nanoseconds(kSlotSettle).count();
  // --trace: the services record from here; whatever ends this repetition
  // without a measurement switches them off again and says why.
  std::vector<bool> traced_mocks;
  if (env.tracer) traced_mocks = env.tracer->begin_driver(*env.services);
  struct TraceGuard {
    const CellEnv& env;
    bool open;
    ~TraceGuard() {
      if (open) env.services->set_tracing(false, 0);
    }
  } trace_guard{env, env.tracer != nullptr};

  const std::int64_t load_start =
      env.slot_start_ns ? std::max(now_ns() + std::chrono::nanoseconds(kLead).count() / 3,
                                   *env.slot_start_ns + settle)
                        : now_ns() + std::chrono::nanoseconds(kLead).count();
  const std::int64_t t0 = load_start + static_cast<std::int64_t>(warmup_seconds(sc) * 1e9);
  auto drain_timeout = env.drain_timeout;
  if (env.slot_end_ns)
    drain_timeout =
        std::min(drain_timeout, std::chrono::milliseconds(std::max<std::int64_t>(
                                    0, (*env.slot_end_ns - t0) / 1'000'000 -
                                           static_cast<std::int64_t>(sc.duration_s * 1000) - 100)));
  const std::string input =
      driver_input(env, repetition_index, load_start, drain_timeout).dump() + "\n";
  const auto budget = driver_time_budget(cell, kLead, drain_timeout, env.driver_grace);
  m.window_start_unix_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(
                               std::chrono::system_clock::now().time_since_epoch())
                               .count() +
                           (t0 - now_ns());

  // Spawn: stdin, stdout and stderr are pipes; the driver gets a process
  // group of its own so a kill reaches whatever it started.
  int in_pipe[2], out_pipe[2], err_pipe[2];
  if (::pipe2(in_pipe, O_CLOEXEC) != 0) return infeasible("cannot make a pipe", "");
  if (::pipe2(out_pipe, O_CLOEXEC) != 0) {
    ::close(in_pipe[0]);
    ::close(in_pipe[1]);
    return infeasible("cannot make a pipe", "");
  }
  if (::pipe2(err_pipe, O_CLOEXEC) != 0) {
    for (int fd : {in_pipe[0], in_pipe[1], out_pipe[0], out_pipe[1]}) ::close(fd);
    return infeasible("cannot make a pipe", "");
  }
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, in_pipe[0], STDIN_FILENO);
  posix_spawn_file_actions_adddup2(&actions, out_pipe[1], STDOUT_FILENO);
  posix_spawn_file_actions_adddup2(&actions, err_pipe[1], STDERR_FILENO);
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  posix_spawnattr_setpgroup(&attr, 0);
  // The harness ignores SIGPIPE; the driver gets the default back.
  sigset_t defaults;
  sigemptyset(&defaults);
  sigaddset(&defaults, SIGPIPE);
  sigaddset(&defaults, SIGINT);
  sigaddset(&defaults, SIGTERM);
  posix_spawnattr_setsigdefault(&attr, &defaults);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGDEF);
  std::vector<char*> argv{const_cast<char*>(driver_path.c_str()), nullptr};
  pid_t pid = -1;
  const int spawned =
      ::posix_spawn(&pid, driver_path.c_str(), &actions, &attr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  ::close(in_pipe[0]);
  ::close(out_pipe[1]);
  ::close(err_pipe[1]);
  if (spawned != 0) {
    for (int fd : {in_pipe[1], out_pipe[0], err_pipe[0]}) ::close(fd);
    return infeasible("cannot start " + driver_path + ": " + std::strerror(spawned), "");
  }
  const std::int64_t spawn_ns = now_ns();
  const std::int64_t kill_at = spawn_ns + std::chrono::nanoseconds(budget).count();
  for (int fd : {in_pipe[1], out_pipe[0], err_pipe[0]})
    ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK);

  int in_fd = in_pipe[1], out_fd = out_pipe[0], err_fd = err_pipe[0];
  std::size_t written = 0;
  std::string out, err;
  bool too_much = false, hung = false, cut = false;
  ProcStatus baseline, last;
  std::int64_t peak_threads = 0, peak_hwm = 0;
  std::optional<ProcCpu> cpu0;
  std::int64_t next_sample = spawn_ns, next_bucket = t0 + kBucketNs;
  while (out_fd >= 0 || err_fd >= 0) {
    const std::int64_t now = now_ns();
    if (now >= next_sample) {
      next_sample = now + kSampleNs;
      const auto s = proc_status(pid);
      if (s.ok) {
        last = s;
        if (now < load_start || !baseline.ok) baseline = s;
        peak_threads = std::max(peak_threads, s.threads);
        peak_hwm = std::max({peak_hwm, s.hwm_kb, s.rss_kb});
        if (!cpu0 && now >= t0) cpu0 = proc_cpu(pid);
        if (now >= next_bucket) {
          next_bucket += kBucketNs;
          m.series.os_threads.push_back(s.threads);
        }
      }
    }
    if (now >= kill_at) {
      hung = true;
      break;
    }
    if (interrupted()) {
      cut = true;
      break;
    }
    pollfd fds[3];
    int n = 0;
    auto watch = [&](int fd, short events) {
      if (fd >= 0) fds[n++] = pollfd{fd, events, 0};
    };
    watch(in_fd, POLLOUT);
    watch(out_fd, POLLIN);
    watch(err_fd, POLLIN);
    const int wait_ms = static_cast<int>(std::clamp<std::int64_t>(
        (std::min(next_sample, kill_at) - now_ns()) / 1'000'000 + 1, 1, 10));
    if (::poll(fds, static_cast<nfds_t>(n), wait_ms) < 0 && errno != EINTR) break;
    for (int k = 0; k < n; ++k) {
      if (!fds[k].revents) continue;
      if (fds[k].fd == in_fd) {
        const auto w = write_no_sigpipe(in_fd, input.data() + written, input.size() - written);
        if (w > 0) written += static_cast<std::size_t>(w);
        if ((w < 0 && errno != EAGAIN) || written == input.size()) {
          ::close(in_fd);  // EPIPE: it stopped reading; what it says comes on stdout/stderr
          in_fd = -1;
        }
        continue;
      }
      char buf[65536];
      const auto got = ::read(fds[k].fd, buf, sizeof buf);
      if (got > 0) {
        if (fds[k].fd == out_fd) {
          out.append(buf, static_cast<std::size_t>(got));
          if (out.size() > kMaxStdout) too_much = true;
        } else {
          err.append(buf, static_cast<std::size_t>(got));
          if (err.size() > 2 * kStderrTail) err.erase(0, err.size() - kStderrTail);
        }
      } else if (got == 0 || (errno != EAGAIN && errno != EINTR)) {
        if (fds[k].fd == out_fd) {
          ::close(out_fd);
          out_fd = -1;
        } else {
          ::close(err_fd);
          err_fd = -1;
        }
      }
    }
    if (too_much) break;
  }
  for (int fd : {in_fd, out_fd, err_fd})
    if (fd >= 0) ::close(fd);
  if (err.size() > kStderrTail) err.erase(0, err.size() - kStderrTail);
  // Its pipes are closed: it is exiting, or it closed them and lives on
  // (then it has the rest of its budget, and is killed past it).
  int status = 0;
  rusage ru{};
  bool reaped = false;
  while (!hung && !cut && !too_much) {
    const pid_t w = ::wait4(pid, &status, WNOHANG, &ru);
    if (w == pid) {
      reaped = true;
      break;
    }
    if (w < 0 && errno != EINTR) break;
    if (now_ns() >= kill_at) {
      hung = true;
      break;
    }
    if (interrupted()) {
      cut = true;
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  if (!reaped) {
    ::kill(-pid, SIGKILL);
    ::kill(pid, SIGKILL);
    while (::wait4(pid, &status, 0, &ru) < 0 && errno == EINTR) {
    }
  }
  if (cut) {
    complete = false;
    return m;
  }
  const double budget_s = static_cast<double>(budget.count()) / 1000.0;
  if (hung) {
    char what[160];
    std::snprintf(what, sizeof what,
                  "orchlab-go gave no measurement within its %.1f s budget (warm-up + window + "
                  "longest orchestration + drain + %.1f s) and was killed",
                  budget_s, static_cast<double>(env.driver_grace.count()) / 1000.0);
    return infeasible(what, err);
  }
  if (too_much)
    return infeasible("orchlab-go printed more than " + std::to_string(kMaxStdout >> 20) +
                          " MiB on stdout, not a measurement; killed",
                      err);
  if (WIFSIGNALED(status))
    return infeasible("orchlab-go died of " + signal_name(WTERMSIG(status)), err);
  // A driver that predates `trace` refuses the field as unknown: the
  // repetition runs again without it, and the trace says so.
  if (env.tracer && WIFEXITED(status) && WEXITSTATUS(status) == 2 &&
      err.find("unknown field \"trace\"") != std::string::npos) {
    trace_guard.open = false;
    env.services->set_tracing(false, 0);
    env.tracer->untraced(cell,
                         "its driver does not know the input field \"trace\" (it predates it): "
                         "run untraced");
    CellEnv untraced = env;
    untraced.tracer = nullptr;
    return run_driver_repetition(untraced, driver_path, repetition_index, complete);
  }
  if (WIFEXITED(status) && WEXITSTATUS(status) != 0)
    return infeasible("orchlab-go exited with status " + std::to_string(WEXITSTATUS(status)) +
                          (WEXITSTATUS(status) == 2 ? " (it refused the cell as bad input)" : ""),
                      err);
  json doc;
  try {
    doc = json::parse(out);
  } catch (const json::exception&) {
    std::string start = out.substr(0, 120);
    for (auto& ch : start)
      if (ch == '\n' || ch == '\r') ch = ' ';
    return infeasible("orchlab-go printed something that is not a measurement" +
                          (out.empty() ? std::string(" (nothing)") : ": \"" + start + "\""),
                      err);
  }
  std::string why;
  if (!apply_driver_measurement(doc, cell, m, why)) return infeasible(why, err);

  // The driver's process, measured from outside as a C++ cell measures its own.
  m.threads_baseline = baseline.threads;
  m.rss_baseline_kb = baseline.rss_kb;
  m.threads_peak = std::max<std::int64_t>(0, peak_threads - baseline.threads);
  m.rss_peak_kb = std::max<std::int64_t>(0, peak_hwm - baseline.rss_kb);
  const double total_cpu = static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
                           static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
  if (cpu0 && cpu0->ok) {
    m.cpu_s = std::max(0.0, total_cpu - cpu0->cpu_s);
    m.ctx_switches_voluntary = std::max<std::int64_t>(0, ru.ru_nvcsw - cpu0->voluntary);
    m.ctx_switches_involuntary = std::max<std::int64_t>(0, ru.ru_nivcsw - cpu0->involuntary);
  } else {
    m.cpu_s = total_cpu;
    m.ctx_switches_voluntary = ru.ru_nvcsw;
    m.ctx_switches_involuntary = ru.ru_nivcsw;
    m.notes.push_back(cell.name() +
                      ": the driver's CPU and context switches could not be read at the "
                      "window's start: they are its whole process's, start-up and warm-up "
                      "included");
  }
  // The series: the driver's buckets; the harness's thread samples aligned
  // to the same 100 ms from the window's start.
  const std::size_t buckets = m.series.started.size();
  m.series.os_threads.resize(buckets, last.threads);
  m.server = server_delta(stats_before, env.services->stats());
  if (env.tracer) {
    trace_guard.open = false;
    env.tracer->end_driver(cell, repetition_index, doc, traced_mocks, *env.services);
  }
  return m;
}

}  // namespace orchlab::harness

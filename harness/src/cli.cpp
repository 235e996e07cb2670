#include "orchlab/harness/cli.hpp"

#include <cctype>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <string_view>

#include "orchlab/harness/services.hpp"

namespace orchlab::harness {
namespace {

std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> out;
  std::size_t start = 0;
  while (true) {
    const auto pos = s.find(sep, start);
    out.push_back(s.substr(start, pos - start));
    if (pos == std::string::npos) break;
    start = pos + 1;
  }
  return out;
}

// Parses the leading number of `text`; returns the rest (the unit).
bool leading_number(const std::string& text, double& value, std::string& unit) {
  const char* begin = text.c_str();
  char* end = nullptr;
  value = std::strtod(begin, &end);
  if (end == begin || !std::isfinite(value)) return false;
  unit = std::string(end);
  return true;
}

}  // namespace

double parse_duration(const std::string& text, const std::string& flag) {
  double v = 0;
  std::string unit;
  if (!leading_number(text, v, unit))
    throw UsageError(flag + ": not a duration: \"" + text + "\" (try 2s or 500ms)");
  if (unit.empty() || unit == "s") return v;
  if (unit == "ms") return v / 1000;
  if (unit == "us") return v / 1e6;
  if (unit == "m") return v * 60;
  if (unit == "h") return v * 3600;
  throw UsageError(flag + ": unknown time unit \"" + unit + "\" in \"" + text +
                   "\" (use us, ms, s, m, h)");
}

double parse_rate(const std::string& text, const std::string& flag) {
  double v = 0;
  std::string unit;
  if (!leading_number(text, v, unit))
    throw UsageError(flag + ": not a rate: \"" + text + "\" (try 200/s)");
  if (!unit.empty() && (unit[0] == 'k' || unit[0] == 'K')) {
    v *= 1000;
    unit.erase(0, 1);
  }
  if (unit.empty() || unit == "/s") return v;
  if (unit == "/ms") return v * 1000;
  if (unit == "/m") return v / 60;
  throw UsageError(flag + ": unknown rate unit \"" + unit + "\" in \"" + text +
                   "\" (use /s, /ms, /m)");
}

std::vector<int> parse_int_list(const std::string& text, const std::string& flag) {
  std::vector<int> out;
  for (const auto& item : split(text, ',')) {
    long long v = 0;
    const auto* first = item.data();
    const auto* last = item.data() + item.size();
    const auto [ptr, ec] = std::from_chars(first, last, v);
    if (item.empty() || ec != std::errc() || ptr != last || v < -1000000000LL || v > 1000000000LL)
      throw UsageError(flag + ": not a list of integers: \"" + text + "\" (try 3,10)");
    out.push_back(static_cast<int>(v));
  }
  return out;
}

std::pair<int, int> parse_shard(const std::string& text, const std::string& flag) {
  const auto slash = text.find('/');
  int index = -1, count = -1;
  auto number = [](const std::string& t, int& v) {
    const auto [ptr, ec] = std::from_chars(t.data(), t.data() + t.size(), v);
    return !t.empty() && ec == std::errc() && ptr == t.data() + t.size();
  };
  if (slash == std::string::npos || !number(text.substr(0, slash), index) ||
      !number(text.substr(slash + 1), count))
    throw UsageError(flag + ": not I/N: \"" + text + "\" (try 0/2: the first of two shards)");
  if (count < 1) throw UsageError(flag + ": \"" + text + "\": the shard count must be at least 1");
  if (index < 0 || index >= count)
    throw UsageError(flag + ": \"" + text + "\": the index counts from 0 and must be below " +
                     std::to_string(count) + " (shards 0/" + std::to_string(count) + " to " +
                     std::to_string(count - 1) + "/" + std::to_string(count) + ")");
  return {index, count};
}

std::int64_t parse_instant(const std::string& text, const std::string& flag) {
  const std::string hint = " (ISO-8601 UTC like 2026-12-04T13:00:00Z, or epoch seconds)";
  if (!text.empty() && text.find_first_not_of("0123456789.") == std::string::npos) {
    char* end = nullptr;
    const double v = std::strtod(text.c_str(), &end);
    if (end != text.c_str() + text.size() || !std::isfinite(v) || v > 1e11)
      throw UsageError(flag + ": not an instant: \"" + text + "\"" + hint);
    return static_cast<std::int64_t>(std::llround(v * 1e9));
  }
  // YYYY-MM-DDTHH:MM:SS[.f...](Z|+00:00)
  int y = 0, mo = 0, d = 0, h = 0, mi = 0, sec = 0, used = 0;
  if (std::sscanf(text.c_str(), "%4d-%2d-%2dT%2d:%2d:%2d%n", &y, &mo, &d, &h, &mi, &sec, &used) !=
          6 ||
      used != 19 || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60)
    throw UsageError(flag + ": not an instant: \"" + text + "\"" + hint);
  std::string rest = text.substr(19);
  std::int64_t frac_ns = 0;
  if (!rest.empty() && rest[0] == '.') {
    std::size_t k = 1;
    std::int64_t scale = 100'000'000;
    for (; k < rest.size() && std::isdigit(static_cast<unsigned char>(rest[k])); ++k) {
      frac_ns += (rest[k] - '0') * scale;
      scale /= 10;
    }
    if (k == 1) throw UsageError(flag + ": not an instant: \"" + text + "\"" + hint);
    rest = rest.substr(k);
  }
  if (rest != "Z" && rest != "+00:00")
    throw UsageError(flag + ": \"" + text + "\" must be UTC (end it with Z)" + hint);
  // Days from 1970-01-01 (civil calendar, proleptic Gregorian).
  const int yy = y - (mo <= 2);
  const int era = (yy >= 0 ? yy : yy - 399) / 400;
  const int yoe = yy - era * 400;
  const int doy = (153 * (mo + (mo > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const int doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  const std::int64_t days = static_cast<std::int64_t>(era) * 146097 + doe - 719468;
  return ((days * 24 + h) * 60 + mi) * 60 * 1'000'000'000LL + sec * 1'000'000'000LL + frac_ns;
}

std::string usage() {
  return "Usage: orchlab <command> [options]\n"
         "  Commands:\n"
         "    run                    Measure every cell (scenario x pattern x fanout x\n"
         "                           concurrency) and write a JSON report\n"
         "    list                   Print the patterns and the scenarios\n"
         "    merge -o OUT R.json... Merge the reports of the shards of one run into one\n"
         "                           (-o - writes to stdout); exit 2 when they do not\n"
         "                           belong together\n"
         "  Options of run:\n"
         "    -s, --scenario    <S>  Scenario NAME (scenarios/NAME.json) or FILE;\n"
         "                           repeatable (default: default)\n"
         "    -p, --patterns    <P>  Patterns to run, comma separated, or all; C++ and Go\n"
         "                           exhibits (go-*) mix in one cell (orchlab list)\n"
         "    -f, --fanout      <N>  Calls per orchestration, list: 3,10\n"
         "    -c, --concurrency <N>  Callers (closed) or workers (open), list: 1,16\n"
         "    -d, --duration    <T>  Measured time per repetition of a cell\n"
         "    -r, --repetitions <N>  Repetitions of every cell\n"
         "    -m, --mode        <M>  closed (callers back to back) or open (fixed rate)\n"
         "    -R, --rate        <R>  Open-loop arrival rate, all workers together\n"
         "        --arrivals    <A>  Open-loop starts: constant (evenly spaced) or poisson\n"
         "        --warmup      <T>  Load before each window, not counted\n"
         "                           (default: 10% of --duration, at least 200ms)\n"
         "        --seed        <N>  Seed of the shuffled cell order in each repetition\n"
         "                           (default: random; recorded as context.shuffle_seed)\n"
         "        --services    <U>  embedded (default): the scenario's services in an\n"
         "                           orchlab-mock child process on 127.0.0.1, ended with\n"
         "                           the run; inprocess: in this process (the measured\n"
         "                           CPU, threads and memory then include the mock);\n"
         "                           or URL,... of running services, each requested\n"
         "                           exactly as written (path and query too), round-robin\n"
         "        --mock-binary <F>  orchlab-mock for embedded services (default:\n"
         "                           $ORCHLAB_MOCK, else ../mock_services/orchlab-mock\n"
         "                           next to this orchlab, else orchlab-mock on PATH)\n"
         "        --go-driver   <F>  orchlab-go, the driver of the go-* exhibits (default:\n"
         "                           $ORCHLAB_GO_DRIVER, else build/go/orchlab-go of this\n"
         "                           tree, else orchlab-go on PATH; not found: all leaves\n"
         "                           the go-* exhibits out, and cells naming them are\n"
         "                           infeasible; none: switch it off)\n"
         "    -o, --out         <F>  Report file (default:\n"
         "                           results/<UTC stamp>/report.json + results/latest;\n"
         "                           - writes it to stdout)\n"
         "        --trace       <F>  Also write a Chrome trace-event JSON (Perfetto,\n"
         "                           chrome://tracing) of sampled orchestrations of each\n"
         "                           cell's first repetition: its span, its calls' and\n"
         "                           the services' spans (docs/analysis.md, Traces)\n"
         "        --trace-scenarios <S>\n"
         "                           Trace only these scenarios' cells, comma separated\n"
         "                           names of scenarios of the run (needs --trace;\n"
         "                           make bench: one-hangs,fail-fast)\n"
         "        --shard     <I/N>  Drive shard I of N (I from 0): callers or open-loop\n"
         "                           starts I, I+N, ... of every cell, same cells, seeds\n"
         "                           and call keys as one process; needs --start-at.\n"
         "                           Default: $JOB_COMPLETION_INDEX/$ORCHLAB_SHARD_COUNT\n"
         "                           when both are set (a Kubernetes Indexed Job)\n"
         "        --start-at    <T>  Start instant common to the shards (default:\n"
         "                           $ORCHLAB_START_AT): ISO-8601 UTC or epoch seconds;\n"
         "                           every repetition's window starts in a slot counted\n"
         "                           from it\n"
         "        --no-thread-budget Run thread-per-call cells even when they need more\n"
         "                           threads than a quarter of what the system can\n"
         "                           create (for runs under limits of your own:\n"
         "                           scripts/unbounded.sh)\n"
         "        --resume      <R>  Continue the run whose report is R (a file, or a\n"
         "                           folder holding report.json) from its journal\n"
         "                           R.journal: the repetitions it holds are not run\n"
         "                           again; the same command, build, seed and shard\n"
         "                           only (else exit 2). The report goes to R unless\n"
         "                           --out says otherwise\n"
         "    -q, --quiet            No progress on stderr\n"
         "    -h, --help             Print this help\n"
         "    -v, --version          Print the version\n"
         "  Options override the scenario file's fields for every scenario given.\n"
         "  Time arguments may include a unit (500ms, 2s, 1m); rates a per-unit (200/s).\n"
         "  Exit status: 0 done, 1 run failed (or the orchlab-mock child died: the report\n"
         "  is written, lab.notes says when), 2 bad input (nothing written), 130 interrupted.\n"
         "\n"
         "  Example: orchlab run --scenario one-hangs --patterns channel-soup,cancellable-group "
         "--duration 2s\n";
}

Command parse_command_line(int argc, const char* const* argv) {
  Command cmd;
  std::vector<std::string> args(argv + 1, argv + argc);
  for (int i = 0; i < argc; ++i) cmd.run.command_line += (i ? " " : "") + std::string(argv[i]);
  if (args.empty()) throw UsageError("missing command (run, list or merge)");
  std::size_t i = 0;
  cmd.kind = Command::Kind::run;
  if (args[0] == "run") {
    ++i;
  } else if (args[0] == "list") {
    if (args.size() > 1) throw UsageError("list takes no arguments, got \"" + args[1] + "\"");
    cmd.kind = Command::Kind::list;
    return cmd;
  } else if (args[0] == "merge") {
    cmd.kind = Command::Kind::merge;
    cmd.merge.command_line = cmd.run.command_line;
    for (std::size_t k = 1; k < args.size(); ++k) {
      const auto& a = args[k];
      if (a == "-h" || a == "--help") {
        cmd.kind = Command::Kind::help;
        return cmd;
      } else if (a == "-o" || a == "--out") {
        if (k + 1 >= args.size()) throw UsageError(a + ": needs a value");
        cmd.merge.out = args[++k];
      } else if (a.rfind("--out=", 0) == 0) {
        cmd.merge.out = a.substr(6);
      } else if (a.size() > 1 && a[0] == '-') {
        throw UsageError("merge: unknown option \"" + a + "\"");
      } else {
        cmd.merge.inputs.push_back(a);
      }
    }
    if (cmd.merge.out.empty()) throw UsageError("merge: needs -o OUT (- for stdout)");
    if (cmd.merge.inputs.empty()) throw UsageError("merge: needs the shards' reports");
    return cmd;
  } else if (args[0] == "help") {
    cmd.kind = Command::Kind::help;
    return cmd;
  } else if (args[0].rfind("-", 0) != 0) {
    throw UsageError("unknown command \"" + args[0] + "\" (run, list or merge)");
  }
  auto& run = cmd.run;
  for (; i < args.size(); ++i) {
    const std::size_t first = i;
    std::string flag = args[i];
    std::string value;
    bool has_inline = false;
    if (const auto eq = flag.find('='); flag.rfind("--", 0) == 0 && eq != std::string::npos) {
      value = flag.substr(eq + 1);
      flag = flag.substr(0, eq);
      has_inline = true;
    }
    auto take = [&]() -> std::string {
      if (has_inline) return value;
      if (i + 1 >= args.size()) throw UsageError(flag + ": needs a value");
      return args[++i];
    };
    if (flag == "-h" || flag == "--help") {
      cmd.kind = Command::Kind::help;
      return cmd;
    } else if (flag == "-v" || flag == "--version") {
      cmd.kind = Command::Kind::version;
      return cmd;
    } else if (flag == "-s" || flag == "--scenario") {
      run.scenarios.push_back(take());
    } else if (flag == "-p" || flag == "--patterns") {
      auto list = split(take(), ',');
      for (const auto& p : list)
        if (p.empty()) throw UsageError(flag + ": empty pattern name in the list");
      run.overrides.patterns = list;
    } else if (flag == "-f" || flag == "--fanout") {
      run.overrides.fanout = parse_int_list(take(), "--fanout");
    } else if (flag == "-c" || flag == "--concurrency") {
      run.overrides.concurrency = parse_int_list(take(), "--concurrency");
    } else if (flag == "-d" || flag == "--duration") {
      run.overrides.duration_s = parse_duration(take(), "--duration");
    } else if (flag == "-r" || flag == "--repetitions") {
      const auto v = parse_int_list(take(), "--repetitions");
      if (v.size() != 1) throw UsageError("--repetitions: takes one integer");
      run.overrides.repetitions = v[0];
    } else if (flag == "-m" || flag == "--mode") {
      const auto m = take();
      if (m == "closed")
        run.overrides.mode = Mode::closed;
      else if (m == "open")
        run.overrides.mode = Mode::open;
      else
        throw UsageError("--mode: must be closed or open, got \"" + m + "\"");
    } else if (flag == "-R" || flag == "--rate") {
      run.overrides.rate = parse_rate(take(), "--rate");
    } else if (flag == "--arrivals") {
      const auto a = take();
      if (a != "constant" && a != "poisson")
        throw UsageError("--arrivals: must be constant or poisson, got \"" + a + "\"");
      run.overrides.poisson = a == "poisson";
    } else if (flag == "--warmup") {
      run.overrides.warmup_s = parse_duration(take(), "--warmup");
    } else if (flag == "--seed") {
      const auto text = take();
      std::uint64_t v = 0;
      const auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
      if (text.empty() || ec != std::errc() || ptr != text.data() + text.size())
        throw UsageError("--seed: not a non-negative integer: \"" + text + "\"");
      run.shuffle_seed = v;
    } else if (flag == "--services") {
      const auto v = take();
      run.service_urls.clear();
      if (v == "embedded") {
        run.services = RunOptions::ServicesMode::embedded;
      } else if (v == "inprocess") {
        run.services = RunOptions::ServicesMode::inprocess;
      } else {
        // Each URL is requested as written, so each must parse now: a typo
        // found after minutes of measuring would waste the run.
        for (const auto& url : split(v, ',')) {
          std::string why;
          if (url.empty()) throw UsageError("--services: an empty URL in \"" + v + "\"");
          if (!parse_service_url(url, why))
            throw UsageError("--services: \"" + url + "\" is not a usable URL: " + why +
                             " (or use embedded or inprocess)");
          run.service_urls.push_back(url);
        }
        run.services = RunOptions::ServicesMode::remote;
      }
    } else if (flag == "--mock-binary") {
      run.mock_binary = take();
      if (run.mock_binary.empty()) throw UsageError("--mock-binary: needs a file name");
    } else if (flag == "--go-driver") {
      run.go_driver = take();
      if (run.go_driver.empty()) throw UsageError("--go-driver: needs a file name");
    } else if (flag == "-o" || flag == "--out") {
      run.out = take();
      if (run.out.empty()) throw UsageError("--out: needs a file name");
    } else if (flag == "--trace") {
      run.trace = take();
      if (run.trace.empty()) throw UsageError("--trace: needs a file name");
    } else if (flag == "--trace-scenarios") {
      const auto v = take();
      auto list = split(v, ',');
      if (list.empty()) throw UsageError("--trace-scenarios: needs scenario names");
      for (const auto& s : list)
        if (s.empty()) throw UsageError("--trace-scenarios: an empty name in \"" + v + "\"");
      run.trace_scenarios = list;
    } else if (flag == "--shard") {
      const auto [index, count] = parse_shard(take(), "--shard");
      run.sharded = true;
      run.shard_index = index;
      run.shard_count = count;
    } else if (flag == "--start-at") {
      run.start_at_unix_ns = parse_instant(take(), "--start-at");
    } else if (flag == "--no-thread-budget") {
      if (has_inline) throw UsageError("--no-thread-budget takes no value");
      run.thread_budget = false;
    } else if (flag == "-q" || flag == "--quiet") {
      if (has_inline) throw UsageError("--quiet takes no value");
      run.quiet = true;
    } else if (flag == "--resume") {
      run.resume = take();
      if (run.resume.empty()) throw UsageError("--resume: needs a report or its folder");
    } else {
      throw UsageError("unknown option \"" + args[i] + "\"");
    }
    // Where the report goes, what is shown and the seed (checked on its
    // own) do not change what a run measures.
    if (flag != "-o" && flag != "--out" && flag != "-q" && flag != "--quiet" && flag != "--seed" &&
        flag != "--resume")
      run.identity_args.insert(run.identity_args.end(), args.begin() + static_cast<long>(first),
                               args.begin() + static_cast<long>(i) + 1);
  }
  // A Kubernetes Indexed Job gives each pod JOB_COMPLETION_INDEX; the count
  // is ours to set. Flags win over the environment.
  const char* job_index = std::getenv("JOB_COMPLETION_INDEX");
  const char* job_count = std::getenv("ORCHLAB_SHARD_COUNT");
  if (!run.sharded && job_index && job_count) {
    const auto [index, count] = parse_shard(std::string(job_index) + "/" + job_count,
                                            "JOB_COMPLETION_INDEX/ORCHLAB_SHARD_COUNT");
    run.sharded = true;
    run.shard_index = index;
    run.shard_count = count;
  } else if (!run.sharded && job_count) {
    throw UsageError(
        "ORCHLAB_SHARD_COUNT is set but JOB_COMPLETION_INDEX is not (give --shard I/N)");
  }
  if (!run.start_at_unix_ns) {
    if (const char* at = std::getenv("ORCHLAB_START_AT"); at && *at)
      run.start_at_unix_ns = parse_instant(at, "ORCHLAB_START_AT");
  }
  if (!run.trace_scenarios.empty() && run.trace.empty())
    throw UsageError("--trace-scenarios: needs --trace FILE");
  if (run.sharded && !run.start_at_unix_ns)
    throw UsageError(
        "--shard: needs --start-at (or ORCHLAB_START_AT): the shards' windows "
        "must begin at one instant");
  return cmd;
}

}  // namespace orchlab::harness

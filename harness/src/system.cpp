#include "orchlab/harness/system.hpp"

#include <sched.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cctype>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <thread>

namespace orchlab::harness::sys {
namespace {

std::int64_t status_field_kb(const char* key) {
  std::ifstream in("/proc/self/status");
  std::string line;
  const std::string prefix = std::string(key) + ":";
  while (std::getline(in, line)) {
    if (line.rfind(prefix, 0) == 0) return std::stoll(line.substr(prefix.size()));
  }
  return -1;
}

std::int64_t read_int_file(const std::string& path, std::int64_t fallback) {
  std::ifstream in(path);
  std::int64_t v = 0;
  if (in >> v) return v;
  return fallback;
}

std::string read_line(const std::string& path) {
  std::ifstream in(path);
  std::string s;
  std::getline(in, s);
  return s;
}

// "0-1" or "00000003" (shared_cpu_map hex) -> number of CPUs.
int count_cpu_map(const std::string& hex) {
  int n = 0;
  for (char c : hex) {
    if (c == ',') continue;
    const int v = (c >= '0' && c <= '9') ? c - '0' : (c >= 'a' && c <= 'f') ? c - 'a' + 10 : 0;
    n += std::popcount(static_cast<unsigned>(v));
  }
  return n;
}

}  // namespace

Usage usage() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  Usage u;
  u.cpu_s = ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + ru.ru_stime.tv_sec +
            ru.ru_stime.tv_usec / 1e6;
  u.ctx_voluntary = ru.ru_nvcsw;
  u.ctx_involuntary = ru.ru_nivcsw;
  return u;
}

std::int64_t rss_kb() { return status_field_kb("VmRSS"); }
std::int64_t rss_peak_kb() { return status_field_kb("VmHWM"); }

bool reset_rss_peak() {
  std::ofstream out("/proc/self/clear_refs");
  if (!out) return false;
  out << "5";
  out.flush();
  return static_cast<bool>(out);
}

void raise_fd_limit() {
  rlimit rl{};
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
}

Limits limits() {
  Limits l;
  std::int64_t bound = LLONG_MAX;
  auto consider = [&](std::int64_t v, const std::string& what) {
    if (v > 0 && v < bound) {
      bound = v;
      l.threads_bound = what + " " + std::to_string(v);
    }
  };
  rlimit rl{};
  if (getrlimit(RLIMIT_NPROC, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY)
    consider(static_cast<std::int64_t>(rl.rlim_cur), "RLIMIT_NPROC");
  consider(read_int_file("/proc/sys/kernel/threads-max", -1), "threads-max");
  consider(read_int_file("/proc/sys/kernel/pid_max", -1), "pid_max");
  if (bound == LLONG_MAX) {
    bound = 32768;
    l.threads_bound = "assumed 32768";
  }
  // /proc/loadavg's 4th field is running/total scheduling entities (threads)
  // system-wide; every one of them holds a pid.
  std::int64_t in_use = 0;
  {
    std::istringstream in(read_line("/proc/loadavg"));
    std::string a, b, c, entities;
    in >> a >> b >> c >> entities;
    if (const auto slash = entities.find('/'); slash != std::string::npos)
      in_use = std::stoll(entities.substr(slash + 1));
  }
  l.threads = std::max<std::int64_t>(0, bound - in_use);
  std::int64_t open_fds = 0;
  std::error_code ec;
  for (auto it = std::filesystem::directory_iterator("/proc/self/fd", ec);
       !ec && it != std::filesystem::directory_iterator(); it.increment(ec))
    ++open_fds;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0)
    l.fds = (rl.rlim_cur == RLIM_INFINITY ? (1 << 20) : static_cast<std::int64_t>(rl.rlim_cur)) -
            open_fds;
  return l;
}

Host host() {
  Host h;
  char name[256] = {};
  if (gethostname(name, sizeof name - 1) == 0) h.host_name = name;
  h.num_cpus = static_cast<int>(std::thread::hardware_concurrency());
  cpu_set_t mask;
  CPU_ZERO(&mask);
  h.usable_cpus = ::sched_getaffinity(0, sizeof mask, &mask) == 0 ? CPU_COUNT(&mask) : h.num_cpus;
  {
    std::ifstream in("/proc/cpuinfo");
    std::string line;
    while (std::getline(in, line)) {
      if (line.rfind("cpu MHz", 0) == 0) {
        const auto colon = line.find(':');
        if (colon != std::string::npos) h.mhz_per_cpu = std::stod(line.substr(colon + 1));
        break;
      }
    }
  }
  for (int cpu = 0; cpu < h.num_cpus; ++cpu) {
    const auto gov = read_line("/sys/devices/system/cpu/cpu" + std::to_string(cpu) +
                               "/cpufreq/scaling_governor");
    if (!gov.empty() && gov != "performance") h.cpu_scaling_enabled = true;
  }
  for (int i = 0;; ++i) {
    const std::string dir = "/sys/devices/system/cpu/cpu0/cache/index" + std::to_string(i) + "/";
    if (!std::filesystem::exists(dir)) break;
    Cache c;
    c.type = read_line(dir + "type");
    c.level = static_cast<int>(read_int_file(dir + "level", 0));
    std::string size = read_line(dir + "size");  // "32K"
    std::int64_t bytes = size.empty() ? 0 : std::stoll(size);
    if (!size.empty() && size.back() == 'K') bytes *= 1024;
    if (!size.empty() && size.back() == 'M') bytes *= 1024 * 1024;
    c.size = bytes;
    c.num_sharing = count_cpu_map(read_line(dir + "shared_cpu_map"));
    h.caches.push_back(c);
  }
  double la[3] = {0, 0, 0};
  if (getloadavg(la, 3) == 3) h.load_avg = {la[0], la[1], la[2]};
  return h;
}

namespace {

// The aggregate "cpu" line of /proc/stat, in clock ticks.
struct CpuTicks {
  std::uint64_t busy = 0, steal = 0, total = 0;
  int cpus = 0;
  bool ok = false;
};

CpuTicks read_cpu_ticks() {
  CpuTicks t;
  std::ifstream in("/proc/stat");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("cpu ", 0) == 0) {
      std::istringstream s(line.substr(4));
      // user nice system idle iowait irq softirq steal (guest time is in user)
      std::uint64_t v[8] = {};
      int n = 0;
      while (n < 8 && (s >> v[n])) ++n;
      if (n < 4) return t;
      t.busy = v[0] + v[1] + v[2] + v[5] + v[6];
      t.steal = v[7];
      t.total = v[0] + v[1] + v[2] + v[3] + v[4] + v[5] + v[6] + v[7];
      t.ok = true;
    } else if (line.rfind("cpu", 0) == 0 && line.size() > 3 && std::isdigit(line[3])) {
      ++t.cpus;
    }
  }
  return t;
}

// utime + stime (ticks) and comm of every process, but `self`.
std::map<int, std::pair<std::uint64_t, std::string>> read_process_ticks(int self) {
  std::map<int, std::pair<std::uint64_t, std::string>> out;
  std::error_code ec;
  for (auto it = std::filesystem::directory_iterator("/proc", ec);
       !ec && it != std::filesystem::directory_iterator(); it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (name.empty() || !std::all_of(name.begin(), name.end(), ::isdigit)) continue;
    const int pid = std::stoi(name);
    if (pid == self) continue;
    const std::string stat = read_line("/proc/" + name + "/stat");
    // comm is in parentheses and may hold spaces or parentheses itself.
    const auto open = stat.find('('), close = stat.rfind(')');
    if (open == std::string::npos || close == std::string::npos || close < open) continue;
    std::istringstream rest(stat.substr(close + 1));
    std::string field;
    std::uint64_t utime = 0, stime = 0;
    // Fields 3..13, then utime (14) and stime (15).
    for (int i = 3; i <= 13 && (rest >> field); ++i) {
    }
    if (!(rest >> utime >> stime)) continue;
    out[pid] = {utime + stime, stat.substr(open + 1, close - open - 1)};
  }
  return out;
}

std::string percent(double share) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.0f %%", share * 100.0);
  return buf;
}

}  // namespace

HostLoad measure_host_load(std::chrono::milliseconds span, const std::function<bool()>& stop) {
  HostLoad h;
  {
    std::istringstream in(read_line("/proc/loadavg"));
    double one = 0;
    if (in >> one) h.load_avg_1m = one;
  }
  const int self = static_cast<int>(::getpid());
  const auto t0 = std::chrono::steady_clock::now();
  const CpuTicks c0 = read_cpu_ticks();
  const auto p0 = read_process_ticks(self);
  const auto until = t0 + span;
  while (std::chrono::steady_clock::now() < until && !(stop && stop()))
    std::this_thread::sleep_for(std::min<std::chrono::steady_clock::duration>(
        std::chrono::milliseconds(20), until - std::chrono::steady_clock::now()));
  const CpuTicks c1 = read_cpu_ticks();
  const auto p1 = read_process_ticks(self);
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  h.measured_for_s = seconds;
  h.cpus = c1.cpus > 0 ? c1.cpus : static_cast<int>(std::thread::hardware_concurrency());
  if (c0.ok && c1.ok && c1.total > c0.total) {
    const double total = static_cast<double>(c1.total - c0.total);
    h.cpu_busy_share = static_cast<double>(c1.busy - c0.busy) / total;
    h.steal_share = static_cast<double>(c1.steal - c0.steal) / total;
  }
  const double ticks_per_s = static_cast<double>(::sysconf(_SC_CLK_TCK));
  if (seconds > 0 && ticks_per_s > 0) {
    for (const auto& [pid, now] : p1) {
      const auto was = p0.find(pid);
      if (was == p0.end() || now.first < was->second.first) continue;
      const double share =
          static_cast<double>(now.first - was->second.first) / ticks_per_s / seconds;
      if (share >= 0.05) h.busy_processes.push_back({pid, now.second, share});
    }
    std::sort(h.busy_processes.begin(), h.busy_processes.end(),
              [](const BusyProcess& a, const BusyProcess& b) { return a.cpu_share > b.cpu_share; });
    if (h.busy_processes.size() > 5) h.busy_processes.resize(5);
  }
  std::vector<std::string> why;
  if (h.cpu_busy_share && *h.cpu_busy_share >= kBusyShare)
    why.push_back(percent(*h.cpu_busy_share) + " of the CPU time busy");
  if (h.steal_share && *h.steal_share >= kStealShare)
    why.push_back(percent(*h.steal_share) + " stolen by the hypervisor");
  if (!h.busy_processes.empty() && h.busy_processes.front().cpu_share >= kBusyProcess) {
    std::string top = "busiest others:";
    for (std::size_t i = 0; i < h.busy_processes.size() && i < 3; ++i)
      top += std::string(i ? "," : "") + " " + h.busy_processes[i].comm + " (pid " +
             std::to_string(h.busy_processes[i].pid) + ") " +
             percent(h.busy_processes[i].cpu_share) + " of a CPU";
    why.push_back(top);
  }
  h.busy = !why.empty();
  for (std::size_t i = 0; i < why.size(); ++i) h.why += (i ? "; " : "") + why[i];
  if (h.busy) {
    char buf[64];
    std::snprintf(buf, sizeof buf, " (over %.1f s before the first cell)", seconds);
    h.why += buf;
  }
  return h;
}

bool executable_file(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode) && ::access(path.c_str(), X_OK) == 0;
}

std::optional<std::string> find_on_path(const std::string& name) {
  const char* path = std::getenv("PATH");
  if (path == nullptr) return std::nullopt;
  std::string_view dirs(path);
  while (true) {
    const auto colon = dirs.find(':');
    const std::string dir(dirs.substr(0, colon));
    const std::string candidate = (dir.empty() ? std::string(".") : dir) + "/" + name;
    if (executable_file(candidate)) return candidate;
    if (colon == std::string_view::npos) return std::nullopt;
    dirs.remove_prefix(colon + 1);
  }
}

std::string executable(const char* argv0) {
  std::error_code ec;
  const auto p = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (!ec) return p.string();
  return argv0 ? argv0 : "orchlab";
}

}  // namespace orchlab::harness::sys

#include "orchlab/harness/system.hpp"

#include <sched.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <climits>
#include <filesystem>
#include <fstream>
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

std::string executable(const char* argv0) {
  std::error_code ec;
  const auto p = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (!ec) return p.string();
  return argv0 ? argv0 : "orchlab";
}

}  // namespace orchlab::harness::sys

// What the harness reads from the operating system: process CPU, context
// switches and memory, the machine's thread and fd limits, and the host
// description that goes into a report's context.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace orchlab::harness::sys {

/// getrusage(RUSAGE_SELF): the whole process, so it includes an embedded
/// mock fleet's threads.
struct Usage {
  double cpu_s = 0;  ///< user + system
  std::int64_t ctx_voluntary = 0;
  std::int64_t ctx_involuntary = 0;
};
Usage usage();

/// VmRSS / VmHWM of /proc/self/status in KiB (-1 if unreadable).
std::int64_t rss_kb();
std::int64_t rss_peak_kb();
/// Resets VmHWM to the current RSS (writes 5 to /proc/self/clear_refs).
/// Returns false when the kernel refuses; callers then sample VmRSS.
bool reset_rss_peak();

/// How many threads and file descriptors this process may still create.
struct Limits {
  std::int64_t threads =
      0;  ///< min(RLIMIT_NPROC, threads-max, pid_max) minus threads alive system-wide
  std::int64_t fds = 0;       ///< RLIMIT_NOFILE (soft, after raise_fd_limit) minus fds open now
  std::string threads_bound;  ///< which limit bound `threads` ("pid_max 32768", ...)
};
Limits limits();

/// Raises the soft RLIMIT_NOFILE to the hard limit (every load generator
/// does; thousands of sockets are the point).
void raise_fd_limit();

/// One CPU cache, as Google Benchmark reports it.
struct Cache {
  std::string type;
  int level = 0;
  std::int64_t size = 0;
  int num_sharing = 0;
};

/// The host, for the report's context.
struct Host {
  std::string host_name;
  int num_cpus = 0;
  /// CPUs this process may run on (sched_getaffinity): what `taskset -c 0`
  /// leaves; claims that need several cores read this, not num_cpus.
  int usable_cpus = 0;
  double mhz_per_cpu = 0;
  bool cpu_scaling_enabled = false;
  std::vector<Cache> caches;
  std::vector<double> load_avg;
};
Host host();

/// Another process that used the CPU while the host was sampled.
struct BusyProcess {
  int pid = 0;
  std::string comm;
  double cpu_share = 0;  ///< CPU time over the sample / its length: 1.0 = one whole CPU
};

/// The host before the run's first cell: how busy it was without the run.
/// Unknown is empty (a /proc file that could not be read).
struct HostLoad {
  std::optional<double> load_avg_1m;     ///< /proc/loadavg
  std::optional<double> cpu_busy_share;  ///< of all CPUs: user+nice+system+irq+softirq (/proc/stat)
  std::optional<double> steal_share;     ///< of all CPUs: time a hypervisor gave to others
  std::vector<BusyProcess> busy_processes;  ///< others over 5 % of a CPU, busiest first (at most 5)
  double measured_for_s = 0;                ///< between the two /proc/stat reads
  int cpus = 0;                             ///< CPUs /proc/stat covers
  bool busy = false;                        ///< one of the thresholds below was crossed
  std::string why;                          ///< which, with the numbers; "" when not busy
};

/// Thresholds of HostLoad::busy: CPU busy share, steal share and one other
/// process's CPU share, all measured over the sample. The 1-minute load is
/// recorded but decides nothing: it lags by a minute, so a cold `make bench`
/// would see its own compile in it.
inline constexpr double kBusyShare = 0.20, kStealShare = 0.05, kBusyProcess = 0.5;

/// Reads /proc/stat and every /proc/PID/stat, waits `span` (or until `stop`
/// returns true, polled every 20 ms), reads them again. This process is not
/// one of the "other" processes.
HostLoad measure_host_load(std::chrono::milliseconds span, const std::function<bool()>& stop = {});

/// Absolute path of the running executable (argv[0] if unknown).
std::string executable(const char* argv0);

/// True when `path` is a regular file this process may execute.
bool executable_file(const std::string& path);

/// The first executable `name` in the folders of $PATH (an empty entry is
/// the current folder), or nullopt.
std::optional<std::string> find_on_path(const std::string& name);

}  // namespace orchlab::harness::sys

// The services a scenario calls: an orchlab-mock child process started from
// the scenario's service objects (the default, so that the measured process
// holds only the client), an in-process MockFleet (tests), or services
// already running elsewhere (--services URL,...). Either way their counters
// are read the same way, over HTTP (GET /__stats at each URL's origin), so a
// remote fleet is measured exactly like a local one.
#pragma once

#include <sys/types.h>

#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "orchlab/harness/report.hpp"

namespace orchlab::harness {

/// The orchlab-mock binary the embedded services run, and how it was found
/// (said in every error about it).
struct MockBinary {
  std::string path;
  std::string found_by;  ///< "--mock-binary", "ORCHLAB_MOCK", "next to orchlab", "PATH"
};

/// Finds orchlab-mock: `flag` (--mock-binary) when not empty, else the
/// ORCHLAB_MOCK environment variable, else <dir of this executable>/../
/// mock_services/orchlab-mock (the build tree's layout), else orchlab-mock on
/// PATH. The first one set is used as given (a wrong --mock-binary is an
/// error, not a reason to pick another binary). Throws std::runtime_error
/// saying what was tried.
MockBinary find_mock_binary(const std::string& flag);

/// One service's answer to GET /__stats.
struct StatsReading {
  std::string service;                ///< the mock service's name, or the URL as given
  std::optional<nlohmann::json> doc;  ///< empty: no usable answer
  std::string error;                  ///< why `doc` is empty ("Connection", "HTTP 404", ...)
};

/// A "scheme://host:port" origin and whether the host is this machine.
struct Origin {
  std::string origin;  ///< "http://127.0.0.1:8080": where admin routes are asked
  std::string host;    ///< without brackets: "::1"
  int port = 0;
};

/// Parses an absolute http URL ("http://host[:port][/path][?query]"): a
/// missing port is 80. Nullopt with `why` set when it does not parse (not
/// http, no host, a port that is not 1..65535, a space or a fragment).
std::optional<Origin> parse_service_url(const std::string& url, std::string& why);

class Services {
 public:
  /// Starts the scenario's services as an orchlab-mock child process
  /// (`binary --config FILE --threads 1`) on 127.0.0.1 ephemeral ports and
  /// waits (bounded) for its ready line. The child is ended (SIGTERM, then
  /// SIGKILL if it lingers) when this object is destroyed, and dies with this
  /// process (PR_SET_PDEATHSIG) if that is killed outright. Call it from the
  /// thread that outlives the run (the main thread): the death signal follows
  /// the thread that started the child. Throws std::runtime_error naming the
  /// binary, with what it printed, when it does not become ready.
  static std::unique_ptr<Services> embedded(const nlohmann::json& service_objects,
                                            const MockBinary& binary);
  /// Starts the scenario's services in this process (a MockFleet on its own
  /// thread). Throws what MockFleet throws (bad profile, bind failure).
  static std::unique_ptr<Services> inprocess(const nlohmann::json& service_objects);
  /// Services already running at `urls`, used exactly as written. Each must
  /// parse (parse_service_url); throws std::invalid_argument otherwise.
  static std::unique_ptr<Services> remote(std::vector<std::string> urls);
  ~Services();
  Services(const Services&) = delete;
  Services& operator=(const Services&) = delete;

  /// The URL each call requests, in the order calls go round-robin over
  /// them: base + "/orchestrate" for embedded and in-process services (a
  /// capture shows which requests are calls), each --services URL as written.
  const std::vector<std::string>& urls() const { return urls_; }
  /// True when the services' sockets and threads live in this process.
  bool in_process() const;
  /// The orchlab-mock child's pid; nullopt without a child.
  std::optional<pid_t> child_pid() const;
  /// Whether the child has ended since the last call (waitpid WNOHANG):
  /// the description of its end (pid, exit status or signal, what it
  /// printed on stderr last), once; nullopt while it runs or without a child.
  std::optional<std::string> child_failure();
  /// POST /__reset on every service (best effort: a dead one is skipped),
  /// so each repetition's /__stats starts from zero.
  void reset();
  /// GET /__stats of every service, at its origin.
  std::vector<StatsReading> stats() const;
  /// How notes name each service, in urls() order: the mock service's name,
  /// or the URL as given.
  const std::vector<std::string>& names() const { return names_; }
  /// POST /__trace {"enabled": on, "max_records": max_records} on every
  /// service (docs/mock.md): per service, whether it answered as an
  /// orchlab-mock does. A foreign service answers otherwise (404, nothing)
  /// and is left alone.
  std::vector<bool> set_tracing(bool on, std::size_t max_records) const;
  /// GET /__trace of every service: its records (docs/mock.md), or nullopt
  /// for a service that gave no trace document.
  std::vector<std::optional<nlohmann::json>> trace() const;

 private:
  Services() = default;
  struct Fleet;
  struct Child;
  std::unique_ptr<Fleet> fleet_;
  std::unique_ptr<Child> child_;
  std::vector<std::string> urls_;     // what calls request
  std::vector<std::string> origins_;  // where admin routes go, one per URL
  std::vector<std::string> names_;    // how notes name each service
};

/// Sums what happened between two stats() snapshots. Counters are deltas
/// (a counter that went down, i.e. a restarted service, counts from zero;
/// no `before` reading counts from zero too, as reset() ran first);
/// abort_lag p99 and max_in_flight are the worst service's value in `after`
/// (per repetition because reset() runs first). A field is null when any
/// service did not answer or answered without it: an unknown part makes the
/// sum unknown. `notes` says which service and why. Nullopt without services.
std::optional<ServerTotals> server_delta(const std::vector<StatsReading>& before,
                                         const std::vector<StatsReading>& after);

}  // namespace orchlab::harness

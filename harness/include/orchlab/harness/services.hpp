// The services a scenario calls: an embedded MockFleet started from the
// scenario's service objects, or orchlab-mock processes elsewhere (--services
// URL,...). Either way their counters are read the same way, over HTTP
// (GET /__stats), so a remote fleet is measured exactly like a local one.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "orchlab/harness/report.hpp"

namespace orchlab::harness {

class Services {
 public:
  /// Starts the scenario's services in-process on loopback ephemeral ports.
  /// Throws what MockFleet throws (bad profile, bind failure).
  static std::unique_ptr<Services> embedded(const nlohmann::json& service_objects);
  /// Services already running at `urls` ("http://host:port").
  static std::unique_ptr<Services> remote(std::vector<std::string> urls);
  ~Services();

  /// Base URLs, in the order calls go round-robin over them.
  const std::vector<std::string>& urls() const { return urls_; }
  bool is_embedded() const;
  /// POST /__reset on every service (best effort: a dead one is skipped),
  /// so each repetition's /__stats starts from zero.
  void reset();
  /// GET /__stats of every service; nullopt where it did not answer.
  std::vector<std::optional<nlohmann::json>> stats() const;

 private:
  Services() = default;
  struct Fleet;
  std::unique_ptr<Fleet> fleet_;
  std::vector<std::string> urls_;
};

/// Sums what happened between two stats() snapshots. Counters are deltas
/// (a counter that went down, i.e. a restarted service, counts from zero);
/// abort_lag p99 and max_in_flight are the worst service's value in `after`
/// (per repetition because reset() runs first). Nullopt when no service
/// answered both times.
std::optional<ServerTotals> server_delta(const std::vector<std::optional<nlohmann::json>>& before,
                                         const std::vector<std::optional<nlohmann::json>>& after);

}  // namespace orchlab::harness

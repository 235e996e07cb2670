// The mock services' configuration: what a --config file, a scenario's
// "services" array and PUT /__profile contain, parsed and validated. Nothing
// here depends on Asio or Beast, so any part of the lab can include it.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace orchlab::mock {

/// Hard limits; a config or a query asking for more is rejected.
inline constexpr double kMaxDelayMs = 600000.0;                  // 10 minutes
inline constexpr std::size_t kMaxBodyBytes = 16u * 1024 * 1024;  // 16 MiB
inline constexpr std::size_t kMaxHeaderBytes = 8 * 1024;         // 8 KiB → 431
/// Records a service keeps per trace (/__trace) unless told otherwise, and at most.
inline constexpr std::size_t kDefaultTraceRecords = 10000;
inline constexpr std::size_t kMaxTraceRecords = 1000000;

/// A config that cannot be used: `field` is a JSON path such as
/// "services[0].latency.p99_ms"; what() reads "<field>: <reason>".
class ConfigError : public std::runtime_error {
 public:
  ConfigError(std::string field, std::string reason);
  std::string field;
  std::string reason;
};

/// The latency a service adds before it answers.
enum class LatencyDist { fixed, uniform, normal, lognormal, pareto };

/// Parameters of one latency distribution. Only the fields of `dist` are
/// meaningful: fixed {ms}, uniform {min_ms, max_ms}, normal {mean_ms,
/// stddev_ms}, lognormal {p50_ms, p99_ms}, pareto {scale_ms, alpha}.
/// Samples are clamped to [0, cap_ms] and never exceed kMaxDelayMs.
struct LatencySpec {
  LatencyDist dist = LatencyDist::fixed;
  double ms = 0;         ///< fixed
  double min_ms = 0;     ///< uniform lower bound
  double max_ms = 0;     ///< uniform upper bound (the JSON "max_ms" of a uniform)
  double mean_ms = 0;    ///< normal
  double stddev_ms = 0;  ///< normal
  double p50_ms = 0;     ///< lognormal median
  double p99_ms = 0;     ///< lognormal 99th percentile (>= p50_ms)
  double scale_ms = 0;   ///< pareto minimum
  double alpha = 0;      ///< pareto shape (> 0)
  /// Optional cap on any distribution (JSON "max_ms"; for uniform it is the
  /// upper bound itself and this stays empty).
  std::optional<double> cap_ms;
};

/// What a faulty service does instead of (or while) answering.
enum class FaultKind {
  status,     ///< answers with `code` after the latency: an overloaded or failing backend
  hang,       ///< never answers; closes after max_ms or when the client leaves: a stuck backend
  reset,      ///< TCP RST after the latency: a crashed process or a middlebox dropping state
  close,      ///< closes with no response after the latency: a backend restarting mid-request
  slow_body,  ///< headers at once, body dribbled at bytes_per_s: a congested or throttled link
  garbage,    ///< malformed HTTP, then close: a protocol mismatch or a corrupting proxy
};

/// Number of FaultKind values (for per-kind counters).
inline constexpr std::size_t kFaultKinds = 6;

/// The report/JSON name of a fault kind ("status", "hang", ...).
std::string_view fault_name(FaultKind kind);
/// Parses a fault kind name; empty when unknown.
std::optional<FaultKind> parse_fault_kind(std::string_view name);
/// The JSON name of a latency distribution ("fixed", "lognormal", ...).
std::string_view dist_name(LatencyDist dist);

/// One fault rule. Exactly one trigger is set: `probability` in (0, 1] or
/// `every_nth` >= 1 (request n of the service, counting from 1, triggers when
/// n % every_nth == 0).
struct FaultSpec {
  FaultKind kind = FaultKind::status;
  int code = 503;               ///< status: 100..599
  double max_ms = 60000;        ///< hang: close after this long (<= kMaxDelayMs)
  double bytes_per_s = 1024;    ///< slow_body: body dribble rate (> 0)
  double probability = 0;       ///< trigger by chance (0 = unused)
  std::uint64_t every_nth = 0;  ///< trigger by count (0 = unused)
};

/// One named mock service.
struct ServiceConfig {
  std::string name;
  unsigned short port = 0;  ///< 0: an ephemeral port
  std::uint64_t seed = 1;   ///< keys every deterministic draw of this service
  std::size_t body_bytes = 256;
  LatencySpec latency;  ///< default: fixed 0 ms
  /// Checked in order; the first whose trigger fires wins.
  std::vector<FaultSpec> faults;
};

/// A whole --config file: a bind address and the services.
struct FleetConfig {
  std::string bind = "127.0.0.1";
  std::vector<ServiceConfig> services;  ///< at least one; names and non-zero ports unique
};

/// Parses and validates one service object (as in "services": [...] of a
/// config or scenario file, or a PUT /__profile body). `where` prefixes every
/// ConfigError field, e.g. "scenarios/hang.json: services[2]".
/// Throws ConfigError on any unknown key, wrong type or out-of-range value.
ServiceConfig parse_service_config(const nlohmann::json& j, std::string_view where);

/// Parses and validates a whole fleet config; `source` (usually the file
/// name) prefixes every ConfigError field. Does not check whether `bind` is
/// loopback: MockFleet does that against ServerOptions::allow_remote.
FleetConfig parse_fleet_config(const nlohmann::json& j, std::string_view source);

/// The JSON form of a service (what GET /__profile returns); parsing it back
/// gives an equal config.
nlohmann::json to_json(const ServiceConfig& service);
/// The JSON form of a fleet config.
nlohmann::json to_json(const FleetConfig& fleet);

/// True for 127.0.0.0/8, ::1 and "localhost".
bool is_loopback_address(std::string_view address);

}  // namespace orchlab::mock

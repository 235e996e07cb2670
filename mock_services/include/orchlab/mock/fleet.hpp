// MockFleet: the mock services of one config, started in-process on their own
// io_context threads. The harness uses it as the embedded default; tests use it
// to get real services on loopback ports.
#pragma once

#include <chrono>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "orchlab/mock/config.hpp"  // FleetConfig, ServiceConfig, ConfigError, parse_*

namespace orchlab::mock {

/// Process-level server options (the orchlab-mock command line).
struct ServerOptions {
  int threads = 1;                      ///< io_context threads
  std::size_t max_connections = 20000;  ///< per process; beyond: accept + close, counted
  std::chrono::milliseconds header_timeout{10000};  ///< whole request head must arrive within it
  std::chrono::milliseconds idle_timeout{60000};    ///< keep-alive idle limit
  /// Each 1 MiB of a response (or one slow_body piece) must be sent within
  /// it; a client that stopped reading is closed, counted in write_timeouts
  /// (and client_aborts).
  std::chrono::milliseconds write_timeout{30000};
  bool allow_remote = false;  ///< permit binding outside 127/8 and ::1
};

/// One started service.
struct Endpoint {
  std::string name;
  std::string url;  ///< "http://127.0.0.1:41234"
  unsigned short port = 0;
};

class MockFleet {
 public:
  /// Binds and starts every service of `config`; throws ConfigError (bad
  /// config or non-loopback bind without allow_remote) or std::system_error
  /// (bind failure) with nothing left running.
  MockFleet(FleetConfig config, ServerOptions options = {});
  /// Convenience: parse a config JSON (as in a --config file) and start it.
  static std::unique_ptr<MockFleet> from_json(const nlohmann::json& config,
                                              ServerOptions options = {});
  ~MockFleet();  ///< stops and joins
  MockFleet(const MockFleet&) = delete;
  MockFleet& operator=(const MockFleet&) = delete;

  const std::vector<Endpoint>& endpoints() const;
  /// URL of the named service; throws std::out_of_range if unknown.
  std::string url(std::string_view service) const;
  /// The service's /__stats document (same JSON as the HTTP route).
  nlohmann::json stats(std::string_view service) const;
  /// POST /__reset on every service (counters to zero, request index to 0,
  /// trace records cleared).
  void reset();
  /// The service's /__trace document (same JSON as the HTTP route).
  nlohmann::json trace(std::string_view service) const;
  /// POST /__trace on every service: tracing on with room for `max_records`
  /// (1..kMaxTraceRecords, else std::invalid_argument) per service, or off;
  /// clears the records either way. Off at start.
  void set_tracing(bool enabled, std::size_t max_records = kDefaultTraceRecords);
  /// Stops accepting, closes connections, joins the threads. Idempotent.
  void stop();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace orchlab::mock

// orchlab-mock: serves the mock services of a config file until SIGINT or
// SIGTERM. Data flow: parse args → read and validate the config → bind every
// service → print the URLs and the ready line → wait for a signal → stop.
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>

#include "orchlab/mock/fleet.hpp"

namespace {

namespace net = boost::asio;
using orchlab::mock::ConfigError;
using orchlab::mock::FleetConfig;
using orchlab::mock::MockFleet;
using orchlab::mock::ServerOptions;

constexpr int kExitUsage = 2;

void usage(std::FILE* out) {
  std::fputs(
      "Usage: orchlab-mock --config FILE [options]\n"
      "  Options:\n"
      "    -c, --config            <F>  mock service config (JSON), required\n"
      "    -t, --threads           <N>  io_context threads               (default 1)\n"
      "    -m, --max-connections   <N>  open connections, whole process  (default 20000);\n"
      "                                 beyond it a connection is accepted, closed, counted\n"
      "        --header-timeout-ms <N>  a request must arrive within it  (default 10000)\n"
      "        --idle-timeout-ms   <N>  keep-alive idle limit            (default 60000)\n"
      "        --write-timeout-ms  <N>  each MiB of a response must be   (default 30000);\n"
      "                                 sent within it: a client that stops reading is closed\n"
      "        --allow-remote           allow a bind address outside 127.0.0.0/8 and ::1\n"
      "    -h, --help                   this text\n"
      "\n"
      "  Prints one JSON line per service, {\"service\":NAME,\"url\":URL}, then\n"
      "  {\"ready\":true}. SIGINT/SIGTERM stop it (exit 0); a bad config exits 2.\n"
      "\n"
      "  Example: orchlab-mock --config mock.json --threads 2\n",
      out);
}

bool parse_count(const char* text, long long lo, long long hi, long long& out) {
  char* end = nullptr;
  errno = 0;
  const long long v = std::strtoll(text, &end, 10);
  if (errno != 0 || end == text || *end != '\0' || v < lo || v > hi) return false;
  out = v;
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  std::string config_path;
  ServerOptions options;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    auto value = [&]() -> const char* {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "orchlab-mock: %s needs a value\n", arg.c_str());
        std::exit(kExitUsage);
      }
      return argv[++i];
    };
    auto count = [&](long long lo, long long hi) {
      const char* text = value();
      long long v = 0;
      if (!parse_count(text, lo, hi, v)) {
        std::fprintf(stderr, "orchlab-mock: %s: \"%s\" is not an integer in [%lld, %lld]\n",
                     arg.c_str(), text, lo, hi);
        std::exit(kExitUsage);
      }
      return v;
    };
    if (arg == "-h" || arg == "--help") {
      usage(stdout);
      return 0;
    } else if (arg == "-c" || arg == "--config") {
      config_path = value();
    } else if (arg == "-t" || arg == "--threads") {
      options.threads = static_cast<int>(count(1, 256));
    } else if (arg == "-m" || arg == "--max-connections") {
      options.max_connections = static_cast<std::size_t>(count(1, 10'000'000));
    } else if (arg == "--header-timeout-ms") {
      options.header_timeout = std::chrono::milliseconds(count(1, 3'600'000));
    } else if (arg == "--idle-timeout-ms") {
      options.idle_timeout = std::chrono::milliseconds(count(1, 3'600'000));
    } else if (arg == "--write-timeout-ms") {
      options.write_timeout = std::chrono::milliseconds(count(1, 3'600'000));
    } else if (arg == "--allow-remote") {
      options.allow_remote = true;
    } else {
      std::fprintf(stderr, "orchlab-mock: unknown argument \"%s\"\n", arg.c_str());
      usage(stderr);
      return kExitUsage;
    }
  }
  if (config_path.empty()) {
    std::fprintf(stderr, "orchlab-mock: --config FILE is required\n");
    usage(stderr);
    return kExitUsage;
  }

  FleetConfig config;
  try {
    std::ifstream in(config_path);
    if (!in) {
      std::fprintf(stderr, "orchlab-mock: %s: cannot open\n", config_path.c_str());
      return kExitUsage;
    }
    std::stringstream text;
    text << in.rdbuf();
    auto json = nlohmann::json::parse(text.str(), nullptr, /*allow_exceptions=*/false);
    if (json.is_discarded()) {
      std::fprintf(stderr, "orchlab-mock: %s: not valid JSON\n", config_path.c_str());
      return kExitUsage;
    }
    config = orchlab::mock::parse_fleet_config(json, config_path);
  } catch (const ConfigError& e) {
    std::fprintf(stderr, "orchlab-mock: %s\n", e.what());
    return kExitUsage;
  }

  // The signal handlers go in before any port is bound: a signal arriving
  // during start-up then still ends in a clean exit 0.
  net::io_context signals_ioc(1);
  net::signal_set signals(signals_ioc, SIGINT, SIGTERM);
  signals.async_wait([](const boost::system::error_code&, int) {});

  std::unique_ptr<MockFleet> fleet;
  try {
    fleet = std::make_unique<MockFleet>(std::move(config), options);
  } catch (const ConfigError& e) {
    std::fprintf(stderr, "orchlab-mock: %s: %s\n", config_path.c_str(), e.what());
    return kExitUsage;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "orchlab-mock: %s: cannot start: %s\n", config_path.c_str(), e.what());
    return 1;
  }
  for (const auto& endpoint : fleet->endpoints()) {
    std::cout << nlohmann::json{{"service", endpoint.name}, {"url", endpoint.url}}.dump() << '\n';
  }
  std::cout << R"({"ready":true})" << std::endl;

  signals_ioc.run();  // returns once SIGINT or SIGTERM arrived
  fleet->stop();
  return 0;
}

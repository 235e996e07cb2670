// Parsing and validation of mock service configs. Every rejection names the
// JSON path of the offending value, so a user can fix a file without reading
// the code.
#include "orchlab/mock/config.hpp"

#include <array>
#include <boost/asio/ip/address.hpp>
#include <cctype>
#include <cmath>
#include <initializer_list>
#include <limits>

namespace orchlab::mock {

namespace {

using nlohmann::json;

constexpr std::array<std::string_view, kFaultKinds> kFaultNames = {
    "status", "hang", "reset", "close", "slow_body", "garbage"};
constexpr std::array<std::string_view, 5> kDistNames = {"fixed", "uniform", "normal", "lognormal",
                                                        "pareto"};

std::string join(std::string_view where, std::string_view key) {
  if (where.empty()) return std::string(key);
  std::string out(where);
  if (!key.empty() && key.front() != '[') out += '.';
  out += key;
  return out;
}

// 600000 rather than 600000.0: bounds read as the user wrote them.
std::string number_text(double v) {
  if (std::trunc(v) == v && std::abs(v) < 1e15) return std::to_string(static_cast<long long>(v));
  return json(v).dump();
}

[[noreturn]] void fail(std::string field, std::string reason) {
  throw ConfigError(std::move(field), std::move(reason));
}

void require_object(const json& j, const std::string& where) {
  if (!j.is_object()) fail(where, "must be a JSON object");
}

// Unknown keys are errors: a typo such as "propability" would otherwise
// silently disable a fault and skew a whole benchmark.
void check_keys(const json& j, const std::string& where,
                std::initializer_list<std::string_view> allowed) {
  for (const auto& item : j.items()) {
    bool known = false;
    for (auto key : allowed) known = known || item.key() == key;
    if (!known) fail(join(where, item.key()), "unknown key");
  }
}

double get_number(const json& j, const std::string& where, std::string_view key, double lo,
                  double hi) {
  const std::string field = join(where, key);
  auto it = j.find(key);
  if (it == j.end()) fail(field, "is required");
  if (!it->is_number()) fail(field, "must be a number");
  const double v = it->get<double>();
  if (!std::isfinite(v) || v < lo || v > hi) {
    fail(field, "must be in [" + number_text(lo) + ", " + number_text(hi) + "], got " + it->dump());
  }
  return v;
}

double get_number_or(const json& j, const std::string& where, std::string_view key, double fallback,
                     double lo, double hi) {
  return j.contains(key) ? get_number(j, where, key, lo, hi) : fallback;
}

std::uint64_t get_uint(const json& j, const std::string& where, std::string_view key,
                       std::uint64_t lo, std::uint64_t hi) {
  const std::string field = join(where, key);
  auto it = j.find(key);
  if (it == j.end()) fail(field, "is required");
  if (!it->is_number_integer() ||
      (it->is_number_integer() && !it->is_number_unsigned() && it->get<std::int64_t>() < 0)) {
    fail(field, "must be a non-negative integer, got " + it->dump());
  }
  const std::uint64_t v = it->get<std::uint64_t>();
  if (v < lo || v > hi) {
    fail(field, "must be in [" + std::to_string(lo) + ", " + std::to_string(hi) + "], got " +
                    std::to_string(v));
  }
  return v;
}

LatencySpec parse_latency(const json& j, const std::string& where) {
  require_object(j, where);
  LatencySpec spec;
  auto it = j.find("dist");
  if (it == j.end()) fail(join(where, "dist"), "is required");
  if (!it->is_string()) fail(join(where, "dist"), "must be a string");
  const auto name = it->get<std::string>();
  std::size_t index = 0;
  while (index < kDistNames.size() && kDistNames[index] != name) ++index;
  if (index == kDistNames.size()) {
    fail(join(where, "dist"),
         "unknown distribution \"" + name + "\" (fixed, uniform, normal, lognormal, pareto)");
  }
  spec.dist = static_cast<LatencyDist>(index);
  constexpr double kMax = kMaxDelayMs;
  switch (spec.dist) {
    case LatencyDist::fixed:
      check_keys(j, where, {"dist", "ms", "max_ms"});
      spec.ms = get_number(j, where, "ms", 0, kMax);
      break;
    case LatencyDist::uniform:
      check_keys(j, where, {"dist", "min_ms", "max_ms"});
      spec.min_ms = get_number(j, where, "min_ms", 0, kMax);
      spec.max_ms = get_number(j, where, "max_ms", 0, kMax);
      if (spec.max_ms < spec.min_ms) fail(join(where, "max_ms"), "must be >= min_ms");
      return spec;  // max_ms is the bound, not a separate cap
    case LatencyDist::normal:
      check_keys(j, where, {"dist", "mean_ms", "stddev_ms", "max_ms"});
      spec.mean_ms = get_number(j, where, "mean_ms", 0, kMax);
      spec.stddev_ms = get_number(j, where, "stddev_ms", 0, kMax);
      break;
    case LatencyDist::lognormal:
      check_keys(j, where, {"dist", "p50_ms", "p99_ms", "max_ms"});
      // A zero median has no logarithm; 1 µs is the smallest useful one.
      spec.p50_ms = get_number(j, where, "p50_ms", 0.001, kMax);
      spec.p99_ms = get_number(j, where, "p99_ms", 0.001, kMax);
      if (spec.p99_ms < spec.p50_ms) fail(join(where, "p99_ms"), "must be >= p50_ms");
      break;
    case LatencyDist::pareto:
      check_keys(j, where, {"dist", "scale_ms", "alpha", "max_ms"});
      spec.scale_ms = get_number(j, where, "scale_ms", 0.001, kMax);
      spec.alpha = get_number(j, where, "alpha", 0.01, 100);
      break;
  }
  if (j.contains("max_ms")) spec.cap_ms = get_number(j, where, "max_ms", 0, kMax);
  return spec;
}

FaultSpec parse_fault(const json& j, const std::string& where) {
  require_object(j, where);
  FaultSpec spec;
  auto it = j.find("kind");
  if (it == j.end()) fail(join(where, "kind"), "is required");
  if (!it->is_string()) fail(join(where, "kind"), "must be a string");
  auto kind = parse_fault_kind(it->get<std::string>());
  if (!kind) {
    fail(join(where, "kind"),
         "unknown fault kind " + it->dump() + " (status, hang, reset, close, slow_body, garbage)");
  }
  spec.kind = *kind;
  switch (spec.kind) {
    case FaultKind::status:
      check_keys(j, where, {"kind", "code", "probability", "every_nth"});
      spec.code = static_cast<int>(get_uint(j, where, "code", 200, 599));
      break;
    case FaultKind::hang:
      check_keys(j, where, {"kind", "max_ms", "probability", "every_nth"});
      spec.max_ms = get_number_or(j, where, "max_ms", spec.max_ms, 0, kMaxDelayMs);
      break;
    case FaultKind::slow_body:
      check_keys(j, where, {"kind", "bytes_per_s", "probability", "every_nth"});
      spec.bytes_per_s = get_number(j, where, "bytes_per_s", 1, 1e12);
      break;
    default:
      check_keys(j, where, {"kind", "probability", "every_nth"});
  }
  const bool has_p = j.contains("probability");
  const bool has_n = j.contains("every_nth");
  if (has_p == has_n) fail(where, "needs exactly one trigger: probability or every_nth");
  if (has_p) {
    spec.probability = get_number(j, where, "probability", 0, 1);
  } else {
    spec.every_nth = get_uint(j, where, "every_nth", 1, std::numeric_limits<std::uint32_t>::max());
  }
  return spec;
}

}  // namespace

ConfigError::ConfigError(std::string field_in, std::string reason_in)
    : std::runtime_error(field_in + ": " + reason_in),
      field(std::move(field_in)),
      reason(std::move(reason_in)) {}

std::string_view fault_name(FaultKind kind) { return kFaultNames[static_cast<std::size_t>(kind)]; }

std::optional<FaultKind> parse_fault_kind(std::string_view name) {
  for (std::size_t i = 0; i < kFaultNames.size(); ++i) {
    if (kFaultNames[i] == name) return static_cast<FaultKind>(i);
  }
  return std::nullopt;
}

std::string_view dist_name(LatencyDist dist) { return kDistNames[static_cast<std::size_t>(dist)]; }

ServiceConfig parse_service_config(const json& j, std::string_view where_in) {
  const std::string where(where_in);
  require_object(j, where);
  check_keys(j, where, {"name", "port", "seed", "body_bytes", "latency", "faults"});
  ServiceConfig service;
  auto name = j.find("name");
  if (name == j.end()) fail(join(where, "name"), "is required");
  if (!name->is_string() || name->get<std::string>().empty()) {
    fail(join(where, "name"), "must be a non-empty string");
  }
  service.name = name->get<std::string>();
  for (char c : service.name) {
    const bool ok = std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.';
    if (!ok) fail(join(where, "name"), "may hold only letters, digits, '-', '_' and '.'");
  }
  if (j.contains("port"))
    service.port = static_cast<unsigned short>(get_uint(j, where, "port", 0, 65535));
  if (j.contains("seed"))
    service.seed = get_uint(j, where, "seed", 0, std::numeric_limits<std::uint64_t>::max());
  if (j.contains("body_bytes"))
    service.body_bytes = get_uint(j, where, "body_bytes", 0, kMaxBodyBytes);
  if (j.contains("latency"))
    service.latency = parse_latency(j.at("latency"), join(where, "latency"));
  if (j.contains("faults")) {
    const auto& faults = j.at("faults");
    if (!faults.is_array()) fail(join(where, "faults"), "must be an array");
    for (std::size_t i = 0; i < faults.size(); ++i) {
      service.faults.push_back(
          parse_fault(faults[i], join(where, "faults[" + std::to_string(i) + "]")));
    }
  }
  return service;
}

FleetConfig parse_fleet_config(const json& j, std::string_view source) {
  const std::string where(source);
  auto field = [&](std::string_view key) {
    return where.empty() ? std::string(key) : where + ": " + std::string(key);
  };
  if (!j.is_object()) fail(where.empty() ? "config" : where, "must be a JSON object");
  for (const auto& item : j.items()) {
    if (item.key() != "bind" && item.key() != "services") fail(field(item.key()), "unknown key");
  }
  FleetConfig fleet;
  if (j.contains("bind")) {
    const auto& bind = j.at("bind");
    if (!bind.is_string()) fail(field("bind"), "must be a string");
    fleet.bind = bind.get<std::string>();
    if (fleet.bind != "localhost") {
      boost::system::error_code ec;
      boost::asio::ip::make_address(fleet.bind, ec);
      if (ec) fail(field("bind"), "is not an IP address: \"" + fleet.bind + "\"");
    }
  }
  auto services = j.find("services");
  if (services == j.end()) fail(field("services"), "is required");
  if (!services->is_array() || services->empty()) {
    fail(field("services"), "must be a non-empty array");
  }
  for (std::size_t i = 0; i < services->size(); ++i) {
    const std::string path = field("services[" + std::to_string(i) + "]");
    auto service = parse_service_config((*services)[i], path);
    for (const auto& other : fleet.services) {
      if (other.name == service.name)
        fail(path + ".name", "duplicate service name \"" + service.name + "\"");
      if (service.port != 0 && other.port == service.port) {
        fail(path + ".port", "duplicate port " + std::to_string(service.port));
      }
    }
    fleet.services.push_back(std::move(service));
  }
  return fleet;
}

json to_json(const ServiceConfig& s) {
  json latency = {{"dist", dist_name(s.latency.dist)}};
  const auto& l = s.latency;
  switch (l.dist) {
    case LatencyDist::fixed:
      latency["ms"] = l.ms;
      break;
    case LatencyDist::uniform:
      latency["min_ms"] = l.min_ms;
      latency["max_ms"] = l.max_ms;
      break;
    case LatencyDist::normal:
      latency["mean_ms"] = l.mean_ms;
      latency["stddev_ms"] = l.stddev_ms;
      break;
    case LatencyDist::lognormal:
      latency["p50_ms"] = l.p50_ms;
      latency["p99_ms"] = l.p99_ms;
      break;
    case LatencyDist::pareto:
      latency["scale_ms"] = l.scale_ms;
      latency["alpha"] = l.alpha;
      break;
  }
  if (l.cap_ms) latency["max_ms"] = *l.cap_ms;
  json faults = json::array();
  for (const auto& f : s.faults) {
    json fj = {{"kind", fault_name(f.kind)}};
    if (f.kind == FaultKind::status) fj["code"] = f.code;
    if (f.kind == FaultKind::hang) fj["max_ms"] = f.max_ms;
    if (f.kind == FaultKind::slow_body) fj["bytes_per_s"] = f.bytes_per_s;
    if (f.every_nth != 0) {
      fj["every_nth"] = f.every_nth;
    } else {
      fj["probability"] = f.probability;
    }
    faults.push_back(std::move(fj));
  }
  return {{"name", s.name},
          {"port", s.port},
          {"seed", s.seed},
          {"body_bytes", s.body_bytes},
          {"latency", std::move(latency)},
          {"faults", std::move(faults)}};
}

json to_json(const FleetConfig& fleet) {
  json services = json::array();
  for (const auto& s : fleet.services) services.push_back(to_json(s));
  return {{"bind", fleet.bind}, {"services", std::move(services)}};
}

bool is_loopback_address(std::string_view address) {
  if (address == "localhost") return true;
  boost::system::error_code ec;
  const auto addr = boost::asio::ip::make_address(std::string(address), ec);
  if (ec) return false;
  if (addr.is_v4()) return addr.to_v4().is_loopback();
  const auto v6 = addr.to_v6();
  if (v6.is_v4_mapped()) {
    return boost::asio::ip::make_address_v4(boost::asio::ip::v4_mapped, v6).is_loopback();
  }
  return v6.is_loopback();
}

}  // namespace orchlab::mock

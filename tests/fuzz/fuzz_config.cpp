// Fuzz target: bytes as JSON, fed to the mock's config parsers twice — as a
// whole --config file (parse_fleet_config) and as a PUT /__profile body
// (parse_service_config, with the name filled in as the session does).
// A ConfigError is the expected answer to bad input; any other exception or
// a sanitizer report is a crash. A config that parses must survive a round
// trip: to_json, parse again, to_json gives the same JSON (what GET
// /__profile promises).
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <nlohmann/json.hpp>

#include "orchlab/mock/config.hpp"

namespace {

using nlohmann::json;
namespace mock = orchlab::mock;

[[noreturn]] void broken(const char* what, const json& first, const json& second) {
  std::fprintf(stderr, "round trip broken (%s):\n  first:  %s\n  second: %s\n", what,
               first.dump().c_str(), second.dump().c_str());
  std::abort();
}

void check_fleet(const json& doc) {
  mock::FleetConfig fleet;
  try {
    fleet = mock::parse_fleet_config(doc, "config");
  } catch (const mock::ConfigError&) {
    return;
  }
  mock::is_loopback_address(fleet.bind);  // what MockFleet asks next
  const json first = mock::to_json(fleet);
  json second;
  try {
    second = mock::to_json(mock::parse_fleet_config(first, "config"));
  } catch (const mock::ConfigError& e) {
    std::fprintf(stderr, "re-parse failed: %s\n", e.what());
    broken("fleet", first, json());
  }
  if (first != second) broken("fleet", first, second);
}

void check_profile(json doc) {
  // The session fills in a missing name before it parses a profile.
  if (doc.is_object() && !doc.contains("name")) doc["name"] = "svc";
  mock::ServiceConfig service;
  try {
    service = mock::parse_service_config(doc, "profile");
  } catch (const mock::ConfigError&) {
    return;
  }
  const json first = mock::to_json(service);
  json second;
  try {
    second = mock::to_json(mock::parse_service_config(first, "profile"));
  } catch (const mock::ConfigError& e) {
    std::fprintf(stderr, "re-parse failed: %s\n", e.what());
    broken("profile", first, json());
  }
  if (first != second) broken("profile", first, second);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const json doc = json::parse(data, data + size, nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded()) return 0;  // the JSON parser is not under test
  check_fleet(doc);
  check_profile(doc);
  return 0;
}

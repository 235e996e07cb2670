#include "orchlab/harness/services.hpp"

#include <httplib.h>

#include <algorithm>

#include "orchlab/mock/fleet.hpp"

namespace orchlab::harness {
namespace {

using nlohmann::json;

// Admin calls are tiny; a service that takes longer than this is treated as
// unreachable rather than stalling the run.
constexpr auto kAdminConnectTimeout = std::chrono::milliseconds(500);
constexpr auto kAdminReadTimeout = std::chrono::seconds(3);

httplib::Client admin_client(const std::string& url) {
  httplib::Client cli(url);
  cli.set_connection_timeout(kAdminConnectTimeout);
  cli.set_read_timeout(kAdminReadTimeout);
  cli.set_write_timeout(kAdminReadTimeout);
  cli.set_keep_alive(false);
  return cli;
}

double number(const json& doc, const char* key) {
  const auto it = doc.find(key);
  return (it != doc.end() && it->is_number()) ? it->get<double>() : 0.0;
}

double nested(const json& doc, const char* obj, const char* key) {
  const auto it = doc.find(obj);
  return (it != doc.end() && it->is_object()) ? number(*it, key) : 0.0;
}

}  // namespace

struct Services::Fleet {
  std::unique_ptr<mock::MockFleet> fleet;
};

Services::~Services() {
  if (fleet_) fleet_->fleet->stop();
}

bool Services::is_embedded() const { return fleet_ != nullptr; }

std::unique_ptr<Services> Services::embedded(const json& service_objects) {
  std::unique_ptr<Services> s(new Services());
  s->fleet_ = std::make_unique<Fleet>();
  // One io_context thread: on a small machine the load generator needs the
  // other cores, and the mock never blocks a thread on a delay or a hang.
  mock::ServerOptions options;
  options.threads = 1;
  s->fleet_->fleet = mock::MockFleet::from_json(json{{"bind", "127.0.0.1"}, {"services", service_objects}}, options);
  // Calls go round-robin in the scenario's service order.
  for (const auto& obj : service_objects) s->urls_.push_back(s->fleet_->fleet->url(obj.at("name").get<std::string>()));
  return s;
}

std::unique_ptr<Services> Services::remote(std::vector<std::string> urls) {
  std::unique_ptr<Services> s(new Services());
  s->urls_ = std::move(urls);
  return s;
}

void Services::reset() {
  for (const auto& url : urls_) {
    auto cli = admin_client(url);
    cli.Post("/__reset");
  }
}

std::vector<std::optional<json>> Services::stats() const {
  std::vector<std::optional<json>> out;
  for (const auto& url : urls_) {
    auto cli = admin_client(url);
    auto res = cli.Get("/__stats");
    if (!res || res->status != 200) {
      out.emplace_back();
      continue;
    }
    try {
      out.emplace_back(json::parse(res->body));
    } catch (const json::exception&) {
      out.emplace_back();
    }
  }
  return out;
}

std::optional<ServerTotals> server_delta(const std::vector<std::optional<json>>& before,
                                         const std::vector<std::optional<json>>& after) {
  ServerTotals t;
  bool any = false;
  for (std::size_t i = 0; i < after.size(); ++i) {
    const bool has_before = i < before.size() && before[i].has_value();
    if (!after[i]) {
      ++t.unreachable;
      continue;
    }
    any = true;
    const json& a = *after[i];
    const json empty = json::object();
    const json& b = has_before ? *before[i] : empty;
    auto delta = [&](const char* key) {
      const double x = number(a, key), y = number(b, key);
      return x >= y ? x - y : x;
    };
    t.requests += static_cast<std::uint64_t>(delta("requests"));
    t.client_aborts += static_cast<std::uint64_t>(delta("client_aborts"));
    t.completed_after_deadline += static_cast<std::uint64_t>(delta("completed_after_deadline"));
    t.work_past_deadline_ms += delta("work_past_deadline_ms");
    t.abort_lag_p99_ms = std::max(t.abort_lag_p99_ms, nested(a, "abort_lag_ms", "p99"));
    t.max_in_flight = std::max<std::uint64_t>(t.max_in_flight, static_cast<std::uint64_t>(number(a, "max_in_flight")));
  }
  if (!any) return std::nullopt;
  return t;
}

}  // namespace orchlab::harness

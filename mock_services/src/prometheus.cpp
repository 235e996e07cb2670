// Internal: GET /__metrics, the /__stats counters in Prometheus text
// exposition format 0.0.4 (docs/mock.md "/__metrics").
#include <charconv>

#include "service.hpp"

namespace orchlab::mock::detail {

namespace {

constexpr std::string_view kPrefix = "orchlab_mock_";

// A label value: backslash, double quote and newline escaped.
std::string label_value(std::string_view v) {
  std::string out;
  for (const char c : v) {
    if (c == '\\' || c == '"') out += '\\';
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out += c;
  }
  return out;
}

// Shortest text that reads back as the same double.
std::string number(double v) {
  char buf[64];
  const auto r = std::to_chars(buf, buf + sizeof buf, v);
  return std::string(buf, r.ptr);
}

class Exposition {
 public:
  explicit Exposition(std::string_view service)
      : labels_("service=\"" + label_value(service) + "\"") {}

  void family(std::string_view name, std::string_view type, std::string_view help) {
    out_ += "# HELP ";
    out_ += kPrefix;
    out_ += name;
    out_ += ' ';
    out_ += help;
    out_ += "\n# TYPE ";
    out_ += kPrefix;
    out_ += name;
    out_ += ' ';
    out_ += type;
    out_ += '\n';
  }

  void sample(std::string_view name, const std::string& value, std::string_view extra = "") {
    out_ += kPrefix;
    out_ += name;
    out_ += '{';
    out_ += labels_;
    if (!extra.empty()) {
      out_ += ',';
      out_ += extra;
    }
    out_ += "} ";
    out_ += value;
    out_ += '\n';
  }

  void counter(std::string_view name, std::uint64_t v, std::string_view help) {
    family(name, "counter", help);
    sample(name, std::to_string(v));
  }

  void gauge(std::string_view name, std::uint64_t v, std::string_view help) {
    family(name, "gauge", help);
    sample(name, std::to_string(v));
  }

  // Buckets, sum and count in seconds; the bounds are MicrosHistogram's.
  void histogram(std::string_view name, const MicrosHistogram& h, std::string_view help) {
    family(name, "histogram", help);
    const std::string bucket = std::string(name) + "_bucket";
    std::uint64_t cumulative = 0;
    for (std::size_t i = 0; i < MicrosHistogram::kBoundsUs.size(); ++i) {
      cumulative += h.at_most(i);
      const auto le = number(static_cast<double>(MicrosHistogram::kBoundsUs[i]) / 1e6);
      sample(bucket, std::to_string(cumulative), "le=\"" + le + "\"");
    }
    sample(bucket, std::to_string(h.count()), "le=\"+Inf\"");
    sample(std::string(name) + "_sum", number(static_cast<double>(h.sum_us()) / 1e6));
    sample(std::string(name) + "_count", std::to_string(h.count()));
  }

  std::string str() && { return std::move(out_); }

 private:
  std::string labels_;
  std::string out_;
};

}  // namespace

std::string ServiceState::prometheus() const {
  std::lock_guard lock(mu_);
  Exposition x(name_);
  x.counter("requests_total", requests_, "Requests on service routes, parsed or not.");
  x.counter("completed_total", completed_, "Requests answered with a whole response.");
  x.counter("client_aborts_total", client_aborts_,
            "Requests the client left before the mock was done (write timeouts included).");
  x.counter("no_response_total", no_response_,
            "Requests deliberately left without a valid response (hang, reset, close, garbage).");
  x.counter("bad_requests_total", bad_requests_, "Requests rejected by the mock itself (4xx).");
  x.counter("header_timeouts_total", header_timeouts_,
            "Connections closed because no request head arrived in time.");
  x.counter("write_timeouts_total", write_timeouts_,
            "Responses that stalled past the write timeout.");
  x.counter("admin_requests_total", admin_requests_, "Requests on /__* routes.");
  x.counter("refused_connections_total", refused_connections_,
            "Connections closed at once at --max-connections.");
  x.counter("completed_after_deadline_total", completed_after_deadline_,
            "Responses completed after the caller's deadline.");
  x.family("faults_total", "counter", "Faults chosen, by kind.");
  for (std::size_t k = 0; k < kFaultKinds; ++k) {
    const auto kind = fault_name(static_cast<FaultKind>(k));
    x.sample("faults_total", std::to_string(faults_[k]), "kind=\"" + label_value(kind) + "\"");
  }
  x.family("work_past_deadline_seconds_total", "counter",
           "Work done after the caller's deadline, summed over ended requests.");
  x.sample("work_past_deadline_seconds_total", number(work_past_deadline_ms_ / 1000.0));
  x.gauge("in_flight", in_flight_, "Counted requests not yet ended.");
  x.gauge("max_in_flight", max_in_flight_, "Peak of in_flight since start or /__reset.");
  x.gauge("open_connections", open_connections_, "Open connections of this service.");
  x.gauge("max_open_connections", max_open_connections_,
          "Peak of open_connections since start or /__reset.");
  x.histogram("delay_error_seconds", delay_error_us_,
              "Actual minus intended latency delay (timer accuracy).");
  x.histogram("abort_lag_seconds", abort_lag_us_,
              "Client aborts at or after the caller's deadline: noticed minus deadline.");
  x.histogram(
      "abort_lead_seconds", abort_lead_us_,
      "Client aborts before the caller's deadline (a sibling's error): deadline minus noticed.");
  return std::move(x).str();
}

}  // namespace orchlab::mock::detail

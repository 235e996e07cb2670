// The registry of exhibits and the vocabulary they share (verdicts, errors).
#include "orchlab/pattern.hpp"

#include <arpa/inet.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <utility>

#include "exhibits.hpp"
#include "orchlab/task_group.hpp"

namespace orchlab {
namespace {

class ReplyCategory final : public std::error_category {
 public:
  const char* name() const noexcept override { return "orchlab.reply"; }
  std::string message(int ev) const override {
    switch (static_cast<ReplyError>(ev)) {
      case ReplyError::none:
        return "ok";
      case ReplyError::http:
        return "HTTP error";
      case ReplyError::transport:
        return "transport error";
      case ReplyError::cancelled:
        return "cancelled";
    }
    return "unknown reply error";
  }
};

class HttpCategory final : public std::error_category {
 public:
  const char* name() const noexcept override { return "orchlab.http"; }
  std::string message(int status) const override { return "HTTP " + std::to_string(status); }
};

class ExhibitPattern final : public Pattern {
 public:
  ExhibitPattern(std::string name, exhibits::Knobs knobs, exhibits::Orchestrate run)
      : name_(std::move(name)), knobs_(std::move(knobs)), run_(run) {}
  std::string_view name() const override { return name_; }
  Outcome run(const Plan& plan, const Fetch& fetch) override { return run_(plan, fetch, knobs_); }

 private:
  std::string name_;
  exhibits::Knobs knobs_;
  exhibits::Orchestrate run_;
};

struct Entry {
  std::string_view name;
  std::unique_ptr<Pattern> (*make)(const PatternOptions&);
};

// The order reports list them in: the article's four, then beyond it; a
// variant of an article exhibit follows it.
constexpr Entry kRegistry[] = {
    {"channel-soup", exhibits::make_channel_soup},
    {"channel-soup+fail-fast", exhibits::make_channel_soup_fail_fast},  // the lab's variant
    {"latch-select", exhibits::make_latch_select},
    {"mutex-aggregation", exhibits::make_mutex_aggregation},
    {"slots-aggregation", exhibits::make_slots_aggregation},  // mutex-aggregation's lock-free twin
    {"cancellable-group",
     [](const PatternOptions& o) { return exhibits::make_cancellable_group(o, false); }},
    {"bounded-group", exhibits::make_bounded_group},
    {"cancellable-group+collect-all",
     [](const PatternOptions& o) { return exhibits::make_cancellable_group(o, true); }},
    {"cancellable-group+ignores-stop", exhibits::make_cancellable_group_ignores_stop},  // the FAQ
    {"async-group", [](const PatternOptions& o) { return exhibits::make_async_group(o, false); }},
    {"async-group+collect-all",
     [](const PatternOptions& o) { return exhibits::make_async_group(o, true); }},
};

}  // namespace

namespace exhibits {

std::unique_ptr<Pattern> make_exhibit(std::string name, Knobs knobs, Orchestrate run) {
  return std::make_unique<ExhibitPattern>(std::move(name), std::move(knobs), run);
}

Outcome finish(std::vector<std::optional<Reply>> slots, std::error_code first_error,
               std::chrono::steady_clock::time_point deadline) {
  Outcome out;
  out.verdict = classify(slots, std::chrono::steady_clock::now() >= deadline);
  if (!first_error && out.verdict == Verdict::timed_out) first_error = GroupErrc::deadline_exceeded;
  if (first_error) out.error = first_error.message();
  out.slots = std::move(slots);
  return out;
}

}  // namespace exhibits

const std::error_category& reply_category() {
  static const ReplyCategory category;
  return category;
}

std::error_code make_error_code(ReplyError e) { return {static_cast<int>(e), reply_category()}; }

const std::error_category& http_category() {
  static const HttpCategory category;
  return category;
}

std::error_code to_error_code(const Reply& reply) {
  switch (reply.error) {
    case ReplyError::none:
      return {};
    case ReplyError::http:
      return {reply.status, http_category()};
    case ReplyError::transport:
    case ReplyError::cancelled:
      break;
  }
  return make_error_code(reply.error);
}

std::unique_ptr<Pattern> make_pattern(std::string_view name, const PatternOptions& options) {
  for (const Entry& e : kRegistry)
    if (e.name == name) return e.make(options);
  return nullptr;
}

std::vector<std::string> pattern_names() {
  std::vector<std::string> names;
  for (const Entry& e : kRegistry) names.emplace_back(e.name);
  return names;
}

std::string_view to_string(Verdict v) {
  switch (v) {
    case Verdict::complete:
      return "complete";
    case Verdict::partial:
      return "partial";
    case Verdict::failed:
      return "failed";
    case Verdict::timed_out:
      return "timed_out";
  }
  return "unknown";
}

std::string_view to_string(ReplyError e) {
  switch (e) {
    case ReplyError::none:
      return "none";
    case ReplyError::http:
      return "http";
    case ReplyError::transport:
      return "transport";
    case ReplyError::cancelled:
      return "cancelled";
  }
  return "unknown";
}

Verdict classify(const std::vector<std::optional<Reply>>& slots, bool deadline_passed) {
  const auto usable = [](const std::optional<Reply>& s) {
    return s && s->error == ReplyError::none;
  };
  if (std::all_of(slots.begin(), slots.end(), usable)) return Verdict::complete;
  const bool any_empty =
      std::any_of(slots.begin(), slots.end(), [](const auto& s) { return !s.has_value(); });
  if (deadline_passed && any_empty) return Verdict::timed_out;
  if (std::none_of(slots.begin(), slots.end(), usable)) return Verdict::failed;
  return Verdict::partial;
}

bool is_loopback_host(std::string_view host) {
  if (host.size() > 1 && host.front() == '[' && host.back() == ']')
    host = host.substr(1, host.size() - 2);
  constexpr std::string_view kLocalhost = "localhost";  // host names are case-insensitive
  if (host.size() == kLocalhost.size() &&
      std::equal(host.begin(), host.end(), kLocalhost.begin(),
                 [](char a, char b) { return (a | 0x20) == b; }))
    return true;
  char buf[64];
  if (host.empty() || host.size() >= sizeof buf) return false;
  std::memcpy(buf, host.data(), host.size());
  buf[host.size()] = '\0';
  in_addr v4{};
  if (::inet_pton(AF_INET, buf, &v4) == 1) return (ntohl(v4.s_addr) >> 24) == 127;
  in6_addr v6{};
  return ::inet_pton(AF_INET6, buf, &v6) == 1 &&
         std::memcmp(&v6, &in6addr_loopback, sizeof v6) == 0;
}

std::pair<std::string_view, std::string> deadline_header(std::string_view host,
                                                         std::int64_t deadline_ns) {
  if (is_loopback_host(host)) return {"X-Orchlab-Deadline-Ns", std::to_string(deadline_ns)};
  // steady_clock is CLOCK_MONOTONIC on Linux, the clock deadline_ns is on.
  const std::int64_t now = std::chrono::duration_cast<std::chrono::nanoseconds>(
                               std::chrono::steady_clock::now().time_since_epoch())
                               .count();
  // To the microsecond: whole milliseconds would tell the service a deadline
  // up to 1 ms early, and every abort at the deadline would look early.
  const std::int64_t us = std::max<std::int64_t>(0, deadline_ns - now) / 1000;
  char buf[32];
  std::snprintf(buf, sizeof buf, "%lld.%03lld", static_cast<long long>(us / 1000),
                static_cast<long long>(us % 1000));
  return {"X-Orchlab-Timeout-Ms", buf};
}

}  // namespace orchlab

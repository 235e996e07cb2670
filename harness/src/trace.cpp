#include "orchlab/harness/trace.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <thread>
#include <unordered_map>

#include "orchlab/census.hpp"
#include "orchlab/harness/driver.hpp"
#include "orchlab/harness/services.hpp"

namespace orchlab::harness::trace {
namespace {

namespace fs = std::filesystem;
using nlohmann::ordered_json;

// Room for the mock's records per service: a traced repetition's warm-up and
// window of a fast cell (~50k calls per service) fit.
constexpr std::size_t kMockRecords = 50'000;
// Calls the caller's side can record per repetition: half of 2^18 slots.
constexpr std::size_t kTableLog2 = 18;
// How long the services may take to end the requests still in flight.
constexpr auto kSettle = std::chrono::milliseconds(1000);

std::int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// Trace-event timestamps are µs; ns keep three decimals.
double us(std::int64_t ns) { return static_cast<double>(ns) / 1e3; }

std::uint64_t mix(std::uint64_t key) {
  key ^= key >> 33;
  key *= 0xff51afd7ed558ccdULL;
  return key ^ (key >> 33);
}

// The calls of this thread still waiting for the end of its task.
struct Pending {
  std::shared_ptr<CallTable> table;  // keeps the slots alive
  std::vector<CallSlot*> slots;
};
thread_local Pending t_pending;

void stamp_task_end() {
  if (!t_pending.table) return;
  const std::int64_t now = now_ns();
  for (auto* s : t_pending.slots) s->task_end_ns.store(now, std::memory_order_relaxed);
  t_pending.slots.clear();
  t_pending.table.reset();
}

// "answered", "http", "transport" or "cancelled".
std::string outcome_of(int error) {
  const auto e = static_cast<ReplyError>(error);
  return e == ReplyError::none ? "answered" : std::string(to_string(e));
}

}  // namespace

void check_path(const std::string& path) {
  if (path.empty()) throw std::invalid_argument("--trace: needs a file name");
  std::error_code ec;
  const fs::path p(path);
  if (fs::is_directory(p, ec))
    throw std::invalid_argument("--trace " + path + ": is a directory (give a file name)");
  const fs::path dir = p.has_parent_path() ? p.parent_path() : fs::path(".");
  if (!fs::is_directory(dir, ec))
    throw std::invalid_argument("--trace " + path + ": the folder " + dir.string() +
                                " does not exist");
  // What write() does at the end, tried now: a file created beside it.
  const std::string probe = (dir / (".orchlab-trace-probe." + std::to_string(::getpid()))).string();
  const int fd = ::open(probe.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0)
    throw std::invalid_argument("--trace " + path + ": cannot create a file in " + dir.string() +
                                ": " + std::strerror(errno));
  ::close(fd);
  ::unlink(probe.c_str());
}

CallTable::CallTable(std::size_t capacity_log2)
    : mask_((std::size_t{1} << capacity_log2) - 1),
      slots_(std::make_unique<CallSlot[]>(std::size_t{1} << capacity_log2)) {}

CallSlot* CallTable::claim(std::uint64_t key) {
  if (key == 0 || used_.fetch_add(1, std::memory_order_relaxed) > mask_ / 2) return nullptr;
  for (std::size_t i = mix(key) & mask_;; i = (i + 1) & mask_) {
    std::uint64_t expected = 0;
    if (slots_[i].key.compare_exchange_strong(expected, key, std::memory_order_relaxed))
      return &slots_[i];
    if (expected == key) return nullptr;  // a key twice: the first one keeps the slot
  }
}

const CallSlot* CallTable::find(std::uint64_t key) const {
  if (key == 0) return nullptr;
  for (std::size_t i = mix(key) & mask_;; i = (i + 1) & mask_) {
    const auto k = slots_[i].key.load(std::memory_order_relaxed);
    if (k == key) return &slots_[i];
    if (k == 0) return nullptr;
  }
}

Fetch traced_fetch(Fetch inner, std::shared_ptr<CallTable> table) {
  census::set_task_end_hook(stamp_task_end);
  return
      [inner = std::move(inner), table = std::move(table)](const Call& call, std::stop_token stop) {
        CallSlot* slot = table->claim(call.key);
        if (!slot) return inner(call, std::move(stop));
        slot->start_ns.store(now_ns(), std::memory_order_relaxed);
        Reply reply = inner(call, std::move(stop));
        slot->reply_ns.store(now_ns(), std::memory_order_relaxed);
        slot->status.store(reply.status, std::memory_order_relaxed);
        slot->error.store(static_cast<int>(reply.error), std::memory_order_relaxed);
        if (t_pending.table != table) {
          t_pending.slots.clear();
          t_pending.table = table;
        }
        t_pending.slots.push_back(slot);
        return reply;
      };
}

void forget_pending() {
  t_pending.slots.clear();
  t_pending.table.reset();
}

Tracer::Tracer(std::string path) : path_(std::move(path)) {}

Tracer::~Tracer() = default;

std::unique_ptr<Repetition> Tracer::begin(Services& services, const Fetch& fetch, int callers) {
  auto rep = std::make_unique<Repetition>();
  rep->table = std::make_shared<CallTable>(kTableLog2);
  if (fetch) rep->fetch = traced_fetch(fetch, rep->table);
  rep->mock = services.set_tracing(true, kMockRecords);
  rep->records_per_caller =
      Repetition::kMaxOrchRecords / static_cast<std::size_t>(std::max(1, callers));
  return rep;
}

void Tracer::untraced(const Cell& cell, const std::string& why) {
  cells_.push_back({{"cell", cell.name()}, {"traced", false}, {"why", why}});
}

void Tracer::end(const Cell& cell, const Measurement& m, int repetition,
                 std::vector<OrchRecord> records, const Repetition& rep, Services& services) {
  // The services' side, by service and key. A request the caller gave up on
  // ends at the service when it notices the abort, which may be just after
  // the drain: its record is read once nothing is in flight (bounded).
  const auto until = std::chrono::steady_clock::now() + kSettle;
  for (;;) {
    bool idle = true;
    for (const auto& r : services.stats())
      if (r.doc && r.doc->value("in_flight", 0) > 0) idle = false;
    if (idle || std::chrono::steady_clock::now() >= until) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  const auto docs = services.trace();
  const std::int64_t read_ns = now_ns();
  services.set_tracing(false, kMockRecords);
  const std::size_t n_services = std::max<std::size_t>(1, services.urls().size());
  std::vector<std::unordered_map<std::uint64_t, const nlohmann::json*>> by_key(n_services);
  std::vector<bool> mock(n_services, false), full(n_services, false);
  for (std::size_t s = 0; s < docs.size() && s < n_services; ++s) {
    if (!docs[s] || s >= rep.mock.size() || !rep.mock[s]) continue;
    mock[s] = true;
    full[s] = docs[s]->value("dropped", 0) > 0;
    for (const auto& r : (*docs[s])["records"])
      if (r.contains("key") && r["key"].is_number_unsigned())
        by_key[s].emplace(r["key"].get<std::uint64_t>(), &r);
  }
  const auto fanout = static_cast<std::size_t>(cell.fanout);
  const bool fetch_used = rep.table->used() > 0;
  auto key_of = [&](const OrchRecord& o, std::size_t i) {
    return call_key(repetition, o.caller, o.seq, static_cast<int>(i));
  };
  // A sample is drawn whole: every call the caller recorded, and the
  // service's record wherever a full mock trace may have dropped it.
  auto drawable = [&](const OrchRecord& o) {
    if (o.threw) return false;
    for (std::size_t i = 0; i < fanout && fetch_used; ++i) {
      const auto* slot = rep.table->find(key_of(o, i));
      if (!slot) return false;
      const auto s = i % n_services;
      if (full[s] && !by_key[s].count(key_of(o, i))) return false;
    }
    return true;
  };
  std::sort(records.begin(), records.end(),
            [](const OrchRecord& a, const OrchRecord& b) { return a.start_ns < b.start_ns; });
  std::vector<std::pair<const OrchRecord*, std::string>> samples;
  auto taken = [&](const OrchRecord* o) {
    return std::any_of(samples.begin(), samples.end(), [&](const auto& s) { return s.first == o; });
  };
  auto first_of = [&](Verdict v, const char* why) {
    for (const auto& o : records)
      if (o.verdict == v && drawable(o)) {
        samples.emplace_back(&o, why);
        return;
      }
  };
  first_of(Verdict::timed_out, "first timed-out");
  first_of(Verdict::failed, "first failed");
  auto nearest = [&](double q, const char* why) {
    if (m.latency_ns.count() == 0) return;
    const auto target = static_cast<std::int64_t>(m.latency_ns.quantile(q));
    std::vector<const OrchRecord*> order;
    for (const auto& o : records)
      if (!taken(&o) && drawable(o)) order.push_back(&o);
    const auto distance = [&](const OrchRecord* o) {
      return std::llabs((o->end_ns - o->intended_ns) - target);
    };
    const std::size_t k = std::min<std::size_t>(2, order.size());
    std::partial_sort(order.begin(), order.begin() + static_cast<std::ptrdiff_t>(k), order.end(),
                      [&](const auto* a, const auto* b) { return distance(a) < distance(b); });
    for (std::size_t i = 0; i < k; ++i) samples.emplace_back(order[i], why);
  };
  nearest(0.5, "near p50");
  nearest(0.99, "near p99");

  // One process per cell; per sample one track for the orchestration, one
  // per call, one per call's service span.
  const int pid = next_pid_++;
  const auto name = cell.name();
  events_.push_back({{"name", "process_name"},
                     {"ph", "M"},
                     {"pid", pid},
                     {"tid", 0},
                     {"args", {{"name", name}}}});
  events_.push_back({{"name", "process_sort_index"},
                     {"ph", "M"},
                     {"pid", pid},
                     {"tid", 0},
                     {"args", {{"sort_index", pid}}}});
  int tid = 0;
  auto track = [&](const std::string& label) {
    ++tid;
    events_.push_back({{"name", "thread_name"},
                       {"ph", "M"},
                       {"pid", pid},
                       {"tid", tid},
                       {"args", {{"name", label}}}});
    events_.push_back({{"name", "thread_sort_index"},
                       {"ph", "M"},
                       {"pid", pid},
                       {"tid", tid},
                       {"args", {{"sort_index", tid}}}});
    return tid;
  };
  auto span = [&](const char* cat, const std::string& label, int on, std::int64_t from,
                  std::int64_t to, ordered_json args) {
    events_.push_back({{"name", label},
                       {"cat", cat},
                       {"ph", "X"},
                       {"ts", us(from)},
                       {"dur", us(std::max<std::int64_t>(0, to - from))},
                       {"pid", pid},
                       {"tid", on},
                       {"args", std::move(args)}});
  };
  const std::int64_t deadline_ns =
      static_cast<std::int64_t>(cell.scenario->deadline_ms) * 1'000'000;
  int index = 0;
  for (const auto& [o, why] : samples) {
    ++index;
    const std::string verdict(to_string(o->verdict));
    const int otid = track("#" + std::to_string(index) + " " + why + ": " + verdict);
    if (cell.scenario->mode == Mode::open && o->start_ns > o->intended_ns)
      span("orchlab.orchestration", "waited for a worker", otid, o->intended_ns, o->start_ns,
           {{"intended_start_us", us(o->intended_ns)}});
    span("orchlab.orchestration", "orchestration: " + verdict, otid, o->start_ns, o->end_ns,
         {{"verdict", verdict},
          {"sampled_as", why},
          {"caller", o->caller},
          {"seq", o->seq},
          {"intended_start_us", us(o->intended_ns)},
          {"latency_ms", static_cast<double>(o->end_ns - o->intended_ns) / 1e6},
          {"deadline_ms", cell.scenario->deadline_ms},
          {"tasks_live_at_return", o->live_at_return}});
    events_.push_back({{"name", "deadline"},
                       {"cat", "orchlab.orchestration"},
                       {"ph", "i"},
                       {"s", "t"},
                       {"ts", us(o->intended_ns + deadline_ns)},
                       {"pid", pid},
                       {"tid", otid}});
    if (!fetch_used) continue;
    for (std::size_t i = 0; i < fanout; ++i) {
      const auto key = key_of(*o, i);
      const auto* slot = rep.table->find(key);
      if (!slot) continue;
      const auto s = i % n_services;
      const std::string service = s < services.names().size() ? services.names()[s] : "?";
      const std::int64_t start = slot->start_ns.load(std::memory_order_relaxed);
      const std::int64_t reply = slot->reply_ns.load(std::memory_order_relaxed);
      const std::int64_t task_end = slot->task_end_ns.load(std::memory_order_relaxed);
      const int ctid =
          track("#" + std::to_string(index) + " call " + std::to_string(i) + " -> " + service);
      if (task_end >= start && task_end > 0)
        span("orchlab.task", "task", ctid, start, task_end,
             {{"ended_after_return_ms",
               std::max<double>(0, static_cast<double>(task_end - o->end_ns) / 1e6)}});
      // Keys as strings: a u64 is past what a JavaScript number holds exactly.
      ordered_json args = {{"key", std::to_string(key)}, {"service", service}};
      std::string label;
      if (reply == 0) {
        // Still running when the drain gave up: drawn to when the trace was read.
        args["outcome"] = "no reply by the end of the drain";
        label = "call (no reply)";
      } else {
        const auto error = slot->error.load(std::memory_order_relaxed);
        const auto status = slot->status.load(std::memory_order_relaxed);
        args["outcome"] = outcome_of(error);
        args["status"] = status ? ordered_json(status) : ordered_json(nullptr);
        args["after_return_ms"] = std::max<double>(0, static_cast<double>(reply - o->end_ns) / 1e6);
        label = "call: " + outcome_of(error) + (status ? " " + std::to_string(status) : "") +
                (reply > o->end_ns ? " (after the return)" : "");
      }
      const std::int64_t call_end = reply ? reply : read_ns;
      // A call the mock has no record of never reached it (its trace was not
      // full, or the sample would not have been drawn): e.g. cancelled while
      // it waited for a connection or before its request was written.
      const auto it = mock[s] ? by_key[s].find(key) : by_key[s].end();
      if (mock[s] && it == by_key[s].end())
        args["service_record"] = "none: the request never reached the service";
      span("orchlab.call", label, ctid, start, call_end, std::move(args));
      if (it == by_key[s].end()) continue;  // a foreign service: nothing is invented for it
      const auto& r = *it->second;
      const auto received = r.value("received_ns", std::int64_t{0});
      const auto ended = r.value("ended_ns", std::int64_t{0});
      const std::string fault = r["fault"].is_string() ? r["fault"].get<std::string>() : "";
      const std::string end = r.value("end", std::string("?"));
      const int stid = track("#" + std::to_string(index) + " " + service + " (service) call " +
                             std::to_string(i));
      ordered_json sargs = {{"key", std::to_string(key)}, {"end", end},
                            {"fault", r["fault"]},        {"intended_ms", r["intended_ms"]},
                            {"status", r["status"]},      {"deadline_ns", r["deadline_ns"]}};
      span("orchlab.call",
           service + ": " + (fault.empty() ? std::string("latency") : fault) + " -> " + end, stid,
           received, ended, std::move(sargs));
      // The arrow from the call to what the service did with it.
      const auto id = next_flow_++;
      events_.push_back({{"name", "request"},
                         {"cat", "orchlab.call"},
                         {"ph", "s"},
                         {"id", id},
                         {"ts", us(start)},
                         {"pid", pid},
                         {"tid", ctid}});
      events_.push_back({{"name", "request"},
                         {"cat", "orchlab.call"},
                         {"ph", "f"},
                         {"bp", "e"},
                         {"id", id},
                         {"ts", us(received)},
                         {"pid", pid},
                         {"tid", stid}});
    }
  }
  ordered_json mocks = ordered_json::array();
  for (std::size_t s = 0; s < n_services; ++s) mocks.push_back(static_cast<bool>(mock[s]));
  cells_.push_back({{"cell", name},
                    {"traced", true},
                    {"pid", pid},
                    {"repetition", repetition},
                    {"orchestrations", records.size()},
                    {"samples", samples.size()},
                    {"calls_recorded", rep.table->used()},
                    {"service_traced", std::move(mocks)}});
}

void Tracer::write() const {
  ordered_json doc;
  doc["traceEvents"] = events_;
  doc["displayTimeUnit"] = "ms";
  doc["otherData"] = {
      {"tool", "orchlab"}, {"clock", "CLOCK_MONOTONIC, ts in microseconds"}, {"cells", cells_}};
  const fs::path p(path_);
  const fs::path tmp = p.string() + ".tmp." + std::to_string(::getpid());
  {
    std::ofstream out(tmp);
    out << doc.dump() << "\n";
    out.close();
    if (!out) throw std::runtime_error("cannot write the trace " + tmp.string());
  }
  std::error_code ec;
  fs::rename(tmp, p, ec);
  if (ec) {
    fs::remove(tmp, ec);
    throw std::runtime_error("cannot write the trace " + path_ + ": " + ec.message());
  }
}

}  // namespace orchlab::harness::trace

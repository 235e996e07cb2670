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
#include <optional>
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
static_assert((std::size_t{1} << kTableLog2) / 2 == Repetition::kMaxCalls);
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

namespace {

// A new keyed call's slot with its start stamped, nullptr when not recorded.
CallSlot* start_call(CallTable& table, const Call& call) {
  CallSlot* slot = table.claim(call.key);
  if (slot) slot->start_ns.store(now_ns(), std::memory_order_relaxed);
  return slot;
}

// The call's reply, stamped into its slot.
void stamp_reply(CallSlot& slot, const Reply& reply) {
  slot.reply_ns.store(now_ns(), std::memory_order_relaxed);
  slot.status.store(reply.status, std::memory_order_relaxed);
  slot.error.store(static_cast<int>(reply.error), std::memory_order_relaxed);
}

}  // namespace

Fetch traced_fetch(Fetch inner, std::shared_ptr<CallTable> table) {
  census::set_task_end_hook(stamp_task_end);
  return
      [inner = std::move(inner), table = std::move(table)](const Call& call, std::stop_token stop) {
        CallSlot* slot = start_call(*table, call);
        if (!slot) return inner(call, std::move(stop));
        Reply reply = inner(call, std::move(stop));
        stamp_reply(*slot, reply);
        if (t_pending.table != table) {
          t_pending.slots.clear();
          t_pending.table = table;
        }
        t_pending.slots.push_back(slot);
        return reply;
      };
}

namespace {

// async-group's client reports its calls here: the handle is the call's slot.
class TableObserver final : public CallObserver {
 public:
  explicit TableObserver(std::shared_ptr<CallTable> table) : table_(std::move(table)) {}
  void* call_started(const Call& call) noexcept override { return start_call(*table_, call); }
  void call_replied(void* handle, const Reply& reply) noexcept override {
    stamp_reply(*static_cast<CallSlot*>(handle), reply);
  }
  void task_ended(void* handle) noexcept override {
    static_cast<CallSlot*>(handle)->task_end_ns.store(now_ns(), std::memory_order_relaxed);
  }

 private:
  std::shared_ptr<CallTable> table_;
};

}  // namespace

std::unique_ptr<CallObserver> table_observer(std::shared_ptr<CallTable> table) {
  return std::make_unique<TableObserver>(std::move(table));
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
  rep->observer = table_observer(rep->table);
  rep->mock = services.set_tracing(true, kMockRecords);
  rep->records_per_caller =
      Repetition::kMaxOrchRecords / static_cast<std::size_t>(std::max(1, callers));
  return rep;
}

void Tracer::untraced(const Cell& cell, const std::string& why) {
  cells_.push_back({{"cell", cell.name()}, {"traced", false}, {"why", why}});
}

// A call as drawn: what the caller's side recorded of it.
struct DrawnCall {
  bool recorded = false;  ///< false: the caller's side has no record of it
  std::uint64_t key = 0;
  std::int64_t start_ns = 0, reply_ns = 0, task_end_ns = 0;  ///< 0: unknown
  int status = 0;
  int error = 0;  ///< ReplyError
};

// A sample as drawn: its orchestration, why it was chosen, its calls.
struct Tracer::Drawn {
  OrchRecord o;
  std::string why;
  std::vector<DrawnCall> calls;  ///< one per call of the plan, in plan order
};

// The services' side of a traced repetition, by service and key.
struct Tracer::ServiceSide {
  nlohmann::json docs = nlohmann::json::array();  ///< owns what by_key points into
  std::vector<std::unordered_map<std::uint64_t, const nlohmann::json*>> by_key;
  std::vector<bool> mock, full;
  std::int64_t read_ns = 0;
  std::size_t n_services = 1;
};

Tracer::ServiceSide Tracer::read_services(const std::vector<bool>& traced, Services& services) {
  // A request the caller gave up on ends at the service when it notices the
  // abort, which may be just after the drain: its record is read once
  // nothing is in flight (bounded).
  const auto until = std::chrono::steady_clock::now() + kSettle;
  for (;;) {
    bool idle = true;
    for (const auto& r : services.stats())
      if (r.doc && r.doc->value("in_flight", 0) > 0) idle = false;
    if (idle || std::chrono::steady_clock::now() >= until) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  const auto docs = services.trace();
  ServiceSide side;
  side.read_ns = now_ns();
  services.set_tracing(false, kMockRecords);
  side.n_services = std::max<std::size_t>(1, services.urls().size());
  side.by_key.resize(side.n_services);
  side.mock.assign(side.n_services, false);
  side.full.assign(side.n_services, false);
  for (std::size_t s = 0; s < side.n_services; ++s)
    side.docs.push_back(s < docs.size() && docs[s] ? *docs[s] : nlohmann::json());
  for (std::size_t s = 0; s < docs.size() && s < side.n_services; ++s) {
    if (!docs[s] || s >= traced.size() || !traced[s]) continue;
    const auto& doc = side.docs[s];
    side.mock[s] = true;
    side.full[s] = doc.value("dropped", 0) > 0;
    if (!doc.contains("records")) continue;
    for (const auto& r : doc["records"])
      if (r.contains("key") && r["key"].is_number_unsigned())
        side.by_key[s].emplace(r["key"].get<std::uint64_t>(), &r);
  }
  return side;
}

void Tracer::end(const Cell& cell, const Measurement& m, int repetition,
                 std::vector<OrchRecord> records, const Repetition& rep, Services& services) {
  const ServiceSide side = read_services(rep.mock, services);
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
      const auto s = i % side.n_services;
      if (side.full[s] && !side.by_key[s].count(key_of(o, i))) return false;
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

  std::vector<Drawn> drawn;
  for (const auto& [o, why] : samples) {
    Drawn d{*o, why, {}};
    for (std::size_t i = 0; i < fanout && fetch_used; ++i) {
      DrawnCall c;
      c.key = key_of(*o, i);
      if (const auto* slot = rep.table->find(c.key)) {
        c.recorded = true;
        c.start_ns = slot->start_ns.load(std::memory_order_relaxed);
        c.reply_ns = slot->reply_ns.load(std::memory_order_relaxed);
        c.task_end_ns = slot->task_end_ns.load(std::memory_order_relaxed);
        c.status = slot->status.load(std::memory_order_relaxed);
        c.error = slot->error.load(std::memory_order_relaxed);
      }
      d.calls.push_back(c);
    }
    drawn.push_back(std::move(d));
  }
  draw(cell, repetition, drawn, side, services, ordered_json(records.size()),
       ordered_json(rep.table->used()), rep.own_client ? "client" : "fetch");
}

std::vector<bool> Tracer::begin_driver(Services& services) {
  return services.set_tracing(true, kMockRecords);
}

namespace {

// A driver's orchestration or call field: an integer, else `fallback` and a
// complaint.
std::int64_t int_field(const nlohmann::json& o, const char* name, std::string& why) {
  const auto it = o.find(name);
  if (it == o.end() || !it->is_number_integer()) {
    if (why.empty()) why = std::string("trace: \"") + name + "\" is missing or not an integer";
    return 0;
  }
  return it->get<std::int64_t>();
}

std::optional<Verdict> verdict_of(const std::string& v) {
  for (auto x : {Verdict::complete, Verdict::partial, Verdict::failed, Verdict::timed_out})
    if (to_string(x) == v) return x;
  return std::nullopt;
}

// The ReplyError a call's "outcome" names (outcome_of's inverse).
std::optional<int> error_of(const std::string& outcome) {
  for (auto e : {ReplyError::none, ReplyError::http, ReplyError::transport, ReplyError::cancelled})
    if (outcome_of(static_cast<int>(e)) == outcome) return static_cast<int>(e);
  return std::nullopt;
}

// A count the driver may leave out: null then, not 0.
ordered_json count_or_null(const nlohmann::json& t, const char* name) {
  const auto it = t.find(name);
  return it != t.end() && it->is_number_unsigned() ? ordered_json(it->get<std::uint64_t>())
                                                   : ordered_json(nullptr);
}

}  // namespace

void Tracer::end_driver(const Cell& cell, int repetition, const nlohmann::json& measurement,
                        const std::vector<bool>& mock, Services& services) {
  const ServiceSide side = read_services(mock, services);
  const auto it = measurement.find("trace");
  if (it == measurement.end() || !it->is_object()) {
    untraced(cell, "the driver's measurement has no \"trace\" (a driver that does not trace)");
    return;
  }
  const auto& t = *it;
  std::string why;
  std::vector<Drawn> drawn;
  const auto fanout = static_cast<std::size_t>(cell.fanout);
  const auto orchs = t.find("orchestrations");
  if (orchs == t.end() || !orchs->is_array()) why = "trace: \"orchestrations\" is not a list";
  for (std::size_t k = 0; why.empty() && k < orchs->size(); ++k) {
    const auto& j = (*orchs)[k];
    if (!j.is_object()) {
      why = "trace: an orchestration is not an object";
      break;
    }
    Drawn d;
    d.o.intended_ns = int_field(j, "intended_ns", why);
    d.o.start_ns = int_field(j, "start_ns", why);
    d.o.end_ns = int_field(j, "end_ns", why);
    d.o.seq = static_cast<std::uint64_t>(int_field(j, "seq", why));
    d.o.caller = static_cast<std::int32_t>(int_field(j, "caller", why));
    d.o.live_at_return = static_cast<std::int32_t>(int_field(j, "tasks_live_at_return", why));
    const auto v = verdict_of(j.value("verdict", std::string()));
    if (!v && why.empty()) why = "trace: an orchestration's \"verdict\" is not a verdict";
    d.o.verdict = v.value_or(Verdict::failed);
    d.why = j.value("sampled_as", std::string("sampled"));
    const auto calls = j.find("calls");
    if (calls == j.end() || !calls->is_array() || calls->size() != fanout) {
      if (why.empty())
        why = "trace: an orchestration's \"calls\" is not a list of its " + std::to_string(fanout) +
              " calls";
      break;
    }
    for (std::size_t i = 0; why.empty() && i < fanout; ++i) {
      const auto& c = (*calls)[i];
      DrawnCall dc;
      dc.key = call_key(repetition, d.o.caller, d.o.seq, static_cast<int>(i));
      if (!c.is_object()) {
        why = "trace: a call is not an object";
        break;
      }
      // The driver's key is the harness's rule's (a disagreement would join
      // the calls to other calls' service spans).
      if (c.contains("key") &&
          !(c["key"].is_number_unsigned() && c["key"].get<std::uint64_t>() == dc.key) &&
          why.empty())
        why = "trace: a call's \"key\" is not the one call_keys gives it";
      dc.start_ns = int_field(c, "start_ns", why);
      dc.recorded = dc.start_ns != 0;  // 0: its fetch had not begun
      dc.reply_ns = int_field(c, "reply_ns", why);
      dc.task_end_ns = int_field(c, "task_end_ns", why);
      dc.status = static_cast<int>(int_field(c, "status", why));
      if (const auto error = error_of(c.value("outcome", std::string())))
        dc.error = *error;
      else if (dc.reply_ns != 0 && why.empty())
        why = "trace: a call's \"outcome\" is not answered, http, transport or cancelled";
      d.calls.push_back(dc);
    }
    // Drawn whole, as this process's samples: not when a full mock trace
    // may have dropped one of its records.
    bool whole = true;
    for (std::size_t i = 0; i < d.calls.size(); ++i) {
      const auto s = i % side.n_services;
      if (side.full[s] && !side.by_key[s].count(d.calls[i].key)) whole = false;
    }
    if (whole) drawn.push_back(std::move(d));
  }
  if (!why.empty()) {
    untraced(cell, "the driver's trace is not well formed (" + why + ")");
    return;
  }
  draw(cell, repetition, drawn, side, services, count_or_null(t, "orchestrations_recorded"),
       count_or_null(t, "calls_recorded"), "driver");
}

void Tracer::draw(const Cell& cell, int repetition, const std::vector<Drawn>& samples,
                  const ServiceSide& side, Services& services,
                  nlohmann::ordered_json orchestrations, nlohmann::ordered_json calls_recorded,
                  const char* recorded_by) {
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
  const auto& by_key = side.by_key;
  const auto& mock = side.mock;
  const std::size_t n_services = side.n_services;
  int index = 0;
  for (const auto& sample : samples) {
    const OrchRecord* o = &sample.o;
    const std::string& why = sample.why;
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
    for (std::size_t i = 0; i < sample.calls.size(); ++i) {
      const DrawnCall& call = sample.calls[i];
      if (!call.recorded) continue;
      const auto key = call.key;
      const auto s = i % n_services;
      const std::string service = s < services.names().size() ? services.names()[s] : "?";
      const std::int64_t start = call.start_ns;
      const std::int64_t reply = call.reply_ns;
      const std::int64_t task_end = call.task_end_ns;
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
        const auto error = call.error;
        const auto status = call.status;
        args["outcome"] = outcome_of(error);
        args["status"] = status ? ordered_json(status) : ordered_json(nullptr);
        args["after_return_ms"] = std::max<double>(0, static_cast<double>(reply - o->end_ns) / 1e6);
        label = "call: " + outcome_of(error) + (status ? " " + std::to_string(status) : "") +
                (reply > o->end_ns ? " (after the return)" : "");
      }
      const std::int64_t call_end = reply ? reply : std::max(side.read_ns, start);
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
                    {"orchestrations", std::move(orchestrations)},
                    {"samples", samples.size()},
                    {"calls_recorded", std::move(calls_recorded)},
                    {"service_traced", std::move(mocks)},
                    {"recorded_by", recorded_by}});
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

// orchlab run --trace FILE: timelines of sampled orchestrations as Chrome
// trace-event JSON (Perfetto, chrome://tracing). The caller's side is
// recorded while the first repetition of each cell runs (a Fetch wrapper per
// call, the census's task-end hook, one compact record per orchestration);
// the services' side is the mock's /__trace, read after the drain and joined
// by call key. docs/analysis.md ("Traces") says what each span means.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "orchlab/harness/report.hpp"
#include "orchlab/harness/scenario.hpp"
#include "orchlab/pattern.hpp"

namespace orchlab::harness {

class Services;

namespace trace {

/// Checks before anything runs that `path` can be written: not a directory,
/// in an existing folder this process may create files in. Throws
/// std::invalid_argument saying why not.
void check_path(const std::string& path);

/// What the caller saw of one call: CLOCK_MONOTONIC ns, 0 while unknown.
/// Written by the thread that made the call, read after the drain.
struct CallSlot {
  std::atomic<std::uint64_t> key{0};
  std::atomic<std::int64_t> start_ns{0};
  std::atomic<std::int64_t> reply_ns{0};     ///< fetch returned (answer, error or cancel)
  std::atomic<std::int64_t> task_end_ns{0};  ///< the task that made it ended
  std::atomic<int> status{0};
  std::atomic<int> error{0};  ///< ReplyError
};

/// A fixed-size, lock-free table of a repetition's calls by key (open
/// addressing). Bounded: past half full, further calls go unrecorded.
class CallTable {
 public:
  explicit CallTable(std::size_t capacity_log2);
  /// The slot of a new call `key` (non-zero), nullptr when full or a repeat.
  CallSlot* claim(std::uint64_t key);
  /// The slot of `key`, nullptr when not recorded.
  const CallSlot* find(std::uint64_t key) const;
  std::size_t used() const { return used_.load(std::memory_order_relaxed); }

 private:
  std::size_t mask_;
  std::unique_ptr<CallSlot[]> slots_;
  std::atomic<std::size_t> used_{0};
};

/// Wraps `inner`: each keyed call claims a slot in `table` and stamps its
/// start, reply and (through the census's task-end hook) its task's end.
Fetch traced_fetch(Fetch inner, std::shared_ptr<CallTable> table);

/// The same recorder for a pattern that calls through its own client
/// (Pattern::observe_calls, async-group): each keyed call claims a slot in
/// `table`; the client stamps its start, its reply and its coroutine's end.
std::unique_ptr<CallObserver> table_observer(std::shared_ptr<CallTable> table);

/// Forgets the calling thread's calls still waiting for their task's end
/// (a caller thread that made calls itself is no task: they stay unknown).
void forget_pending();

/// One orchestration of the window, compactly: enough to choose the samples
/// after the repetition, and to draw them.
struct OrchRecord {
  std::int64_t intended_ns = 0, start_ns = 0, end_ns = 0;
  std::uint64_t seq = 0;
  std::int32_t caller = 0;
  std::int32_t live_at_return = 0;  ///< its tasks still running when it returned
  Verdict verdict = Verdict::failed;
  bool threw = false;
};

/// What one traced repetition records while it runs.
struct Repetition {
  std::shared_ptr<CallTable> table;
  Fetch fetch;                             ///< the traced Fetch (empty: none given)
  std::unique_ptr<CallObserver> observer;  ///< for a pattern with its own client
  bool own_client = false;                 ///< the pattern reported to `observer`
  std::vector<bool> mock;                  ///< per service: an orchlab-mock that traces
  std::size_t records_per_caller = 0;      ///< the bound of each caller's OrchRecords
  static constexpr std::size_t kMaxOrchRecords = 1 << 18;
  static constexpr std::size_t kMaxCalls = 1 << 17;  ///< calls recorded (half the table)
};

/// A run's trace: sampled orchestrations of every traced repetition, written
/// as one JSON document at the end.
class Tracer {
 public:
  explicit Tracer(std::string path);
  ~Tracer();

  /// Before repetition 0 of a cell's load: switches the services' trace on
  /// and gives the recorder of its calls (`fetch` wrapped when not empty).
  std::unique_ptr<Repetition> begin(Services& services, const Fetch& fetch, int callers);
  /// After its drain: reads the services' trace and switches it off, picks
  /// the samples (the first timed-out, the first failed, two nearest the
  /// latency p50 and two nearest p99 of `m`) and adds their events.
  void end(const Cell& cell, const Measurement& m, int repetition, std::vector<OrchRecord> records,
           const Repetition& rep, Services& services);
  /// A cell whose calls this process does not make (a driver's that cannot
  /// trace): said in the file, not drawn.
  void untraced(const Cell& cell, const std::string& why);

  /// Before a driver's traced repetition (docs/drivers.md, `trace`):
  /// switches the services' trace on; returns which services trace.
  std::vector<bool> begin_driver(Services& services);
  /// After it: draws the samples the driver chose and recorded (its
  /// measurement's `trace` object, CLOCK_MONOTONIC ns) with the services'
  /// spans joined by call key, as end() does for this process's calls. A
  /// measurement without `trace`, or one that is not well formed, leaves
  /// the cell untraced with the reason.
  void end_driver(const Cell& cell, int repetition, const nlohmann::json& measurement,
                  const std::vector<bool>& mock, Services& services);

  /// Writes the document (temp file + rename). Throws std::runtime_error.
  void write() const;
  const std::string& path() const { return path_; }

 private:
  struct Drawn;
  struct ServiceSide;
  ServiceSide read_services(const std::vector<bool>& mock, Services& services);
  /// Adds one cell's process, its samples' tracks and its otherData.cells
  /// entry (`orchestrations`, `calls_recorded`: counts, null when unknown).
  void draw(const Cell& cell, int repetition, const std::vector<Drawn>& samples,
            const ServiceSide& side, Services& services, nlohmann::ordered_json orchestrations,
            nlohmann::ordered_json calls_recorded, const char* recorded_by);

  std::string path_;
  nlohmann::ordered_json events_ = nlohmann::ordered_json::array();
  nlohmann::ordered_json cells_ = nlohmann::ordered_json::array();
  int next_pid_ = 1;
  std::uint64_t next_flow_ = 1;
};

}  // namespace trace
}  // namespace orchlab::harness

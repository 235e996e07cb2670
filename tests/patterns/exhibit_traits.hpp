// What the DESIGN.md table says each thread-based exhibit does; both exhibit
// test files check every exhibit against this one table.
#pragma once

#include <chrono>
#include <string>

namespace orchlab::testing {

/// How an exhibit stops waiting for calls slower than the deadline.
enum class Timeout {
  fixed,       ///< one deadline for the orchestration: returns at it (+ margin)
  per_result,  ///< Go's time.After inside the loop: the timer restarts with every reply, so it
               ///< returns one deadline after the last reply (at or after the deadline)
  none,        ///< no timeout: waits for the slowest call
};

struct Traits {
  const char* name;
  Timeout timeout;
  bool returns_on_error;  ///< returns as soon as one call fails
  bool cancels;           ///< its calls see a stop (deadline, or error unless collect-all)
  bool leaks;             ///< leaves tasks running after run() returns
  bool keeps_partial;     ///< on timeout, the slots that answered survive
};

inline constexpr Traits kExhibits[] = {
    {"channel-soup", Timeout::per_result, false, false, true, true},
    {"channel-soup+fail-fast", Timeout::fixed, true, false, true, true},
    {"latch-select", Timeout::fixed, false, false, true, false},
    {"mutex-aggregation", Timeout::none, false, false, false, true},
    {"slots-aggregation", Timeout::none, false, false, false, true},
    {"cancellable-group", Timeout::fixed, true, true, false, true},
    {"bounded-group", Timeout::fixed, true, true, false, true},
    {"cancellable-group+collect-all", Timeout::fixed, false, true, false, true},
};

/// It gives up on a call slower than the deadline: within the deadline +
/// kMargin when the calls that did answer came early (fixed, or a timer
/// restarted by early replies).
constexpr bool has_timeout(const Traits& t) { return t.timeout != Timeout::none; }

/// Generous: the machine is shared and sanitizers slow thread starts. Every
/// slow call in the exhibit tests lasts at least deadline + kMargin + 1 s, so
/// "returned within the deadline" and "waited for the slow call" stay apart.
inline constexpr std::chrono::milliseconds kMargin{1000};
/// How long the tests' slow calls (and hangs) last.
inline constexpr int kSlowMs = 2500;
inline constexpr std::chrono::milliseconds kSlow{kSlowMs};

/// gtest-safe parameter name ("cancellable_group_collect_all").
inline std::string test_name(const Traits& t) {
  std::string n = t.name;
  for (char& c : n)
    if (c == '-' || c == '+') c = '_';
  return n;
}

}  // namespace orchlab::testing

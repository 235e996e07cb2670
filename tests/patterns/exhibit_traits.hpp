// What the DESIGN.md table says each thread-based exhibit does; both exhibit
// test files check every exhibit against this one table.
#pragma once

#include <chrono>
#include <string>

namespace orchlab::testing {

struct Traits {
  const char* name;
  bool meets_deadline;    ///< returns within the deadline (+ margin)
  bool returns_on_error;  ///< returns as soon as one call fails
  bool cancels;           ///< its calls see a stop (deadline, or error unless collect-all)
  bool leaks;             ///< leaves tasks running after run() returns
  bool keeps_partial;     ///< on timeout, the slots that answered survive
};

inline constexpr Traits kExhibits[] = {
    {"channel-soup", true, true, false, true, true},
    {"latch-select", true, false, false, true, false},
    {"mutex-aggregation", false, false, false, false, true},
    {"slots-aggregation", false, false, false, false, true},
    {"cancellable-group", true, true, true, false, true},
    {"bounded-group", true, true, true, false, true},
    {"cancellable-group+collect-all", true, false, true, false, true},
};

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

// Factories of the exhibits (private to orchlab_patterns); make_pattern()
// maps report names to them.
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <system_error>
#include <vector>

#include "orchlab/pattern.hpp"

namespace orchlab::exhibits {

/// What every exhibit's entry point receives besides the plan and the fetch.
struct Knobs {
  PatternOptions options;
  bool collect_all = false;  ///< the FAQ's "all results even if some fail"
};

/// The one entry-point signature all thread-based exhibits share.
using Orchestrate = Outcome (*)(const Plan& plan, const Fetch& fetch, const Knobs& knobs);

/// The common epilogue: the verdict from classify() (deadline passed = now
/// is past `deadline`) and the first error's message; a timed-out outcome
/// with no other error reads "deadline exceeded".
Outcome finish(std::vector<std::optional<Reply>> slots, std::error_code first_error,
               std::chrono::steady_clock::time_point deadline);

/// Wraps an entry point as a Pattern named `name`.
std::unique_ptr<Pattern> make_exhibit(std::string name, Knobs knobs, Orchestrate run);

std::unique_ptr<Pattern> make_channel_soup(const PatternOptions&);
std::unique_ptr<Pattern> make_channel_soup_fail_fast(const PatternOptions&);
std::unique_ptr<Pattern> make_latch_select(const PatternOptions&);
std::unique_ptr<Pattern> make_mutex_aggregation(const PatternOptions&);
std::unique_ptr<Pattern> make_slots_aggregation(const PatternOptions&);
std::unique_ptr<Pattern> make_cancellable_group(const PatternOptions&, bool collect_all);
std::unique_ptr<Pattern> make_cancellable_group_ignores_stop(const PatternOptions&);
std::unique_ptr<Pattern> make_bounded_group(const PatternOptions&);
std::unique_ptr<Pattern> make_async_group(const PatternOptions&, bool collect_all);

}  // namespace orchlab::exhibits

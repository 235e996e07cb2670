// Factories of the exhibits (private to orchlab_patterns); make_pattern()
// maps report names to them.
#pragma once

#include <memory>

#include "orchlab/pattern.hpp"

namespace orchlab::exhibits {

std::unique_ptr<Pattern> make_channel_soup(const PatternOptions&);
std::unique_ptr<Pattern> make_latch_select(const PatternOptions&);
std::unique_ptr<Pattern> make_mutex_aggregation(const PatternOptions&);
std::unique_ptr<Pattern> make_cancellable_group(const PatternOptions&, bool collect_all);
std::unique_ptr<Pattern> make_bounded_group(const PatternOptions&);
std::unique_ptr<Pattern> make_async_group(const PatternOptions&, bool collect_all);

}  // namespace orchlab::exhibits

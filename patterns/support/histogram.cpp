#include "orchlab/histogram.hpp"

#include <algorithm>
#include <bit>
#include <cmath>

namespace orchlab {

std::size_t LogHistogram::bucket_of(std::uint64_t value) {
  if (value < kSub) return static_cast<std::size_t>(value);
  const int msb = 63 - std::countl_zero(value);  // >= kSubBits
  const int shift = msb - kSubBits;
  const std::uint64_t sub = (value >> shift) - kSub;  // [0, kSub)
  return static_cast<std::size_t>(kSub + static_cast<std::uint64_t>(shift) * kSub + sub);
}

std::uint64_t LogHistogram::bucket_low(std::size_t index) {
  if (index < kSub) return index;
  const std::uint64_t shift = (index - kSub) / kSub;
  const std::uint64_t sub = (index - kSub) % kSub;
  return (kSub + sub) << shift;
}

std::uint64_t LogHistogram::bucket_high(std::size_t index) {
  if (index < kSub) return index;
  const std::uint64_t shift = (index - kSub) / kSub;
  return bucket_low(index) + ((std::uint64_t{1} << shift) - 1);
}

void LogHistogram::record(std::uint64_t value, std::uint64_t count) {
  if (count == 0) return;
  const std::size_t b = bucket_of(value);
  if (b >= buckets_.size()) buckets_.resize(b + 1, 0);
  buckets_[b] += count;
  if (count_ == 0 || value < min_) min_ = value;
  max_ = std::max(max_, value);
  count_ += count;
  sum_ += value * count;
}

void LogHistogram::merge(const LogHistogram& other) {
  if (other.count_ == 0) return;
  if (other.buckets_.size() > buckets_.size()) buckets_.resize(other.buckets_.size(), 0);
  for (std::size_t i = 0; i < other.buckets_.size(); ++i) buckets_[i] += other.buckets_[i];
  if (count_ == 0 || other.min_ < min_) min_ = other.min_;
  max_ = std::max(max_, other.max_);
  count_ += other.count_;
  sum_ += other.sum_;
}

void LogHistogram::clear() { *this = LogHistogram{}; }

bool LogHistogram::assign(const std::vector<std::pair<std::size_t, std::uint64_t>>& counts,
                          std::uint64_t min, std::uint64_t max, std::uint64_t sum) {
  clear();
  if (counts.empty()) return true;
  // Indices beyond any 64-bit value's bucket are not a histogram of ours.
  constexpr std::size_t kEnd = kSub + (64 - kSubBits) * kSub;
  std::size_t prev = 0;
  std::uint64_t total = 0;
  for (std::size_t i = 0; i < counts.size(); ++i) {
    const auto [index, n] = counts[i];
    if (n == 0 || index >= kEnd || (i > 0 && index <= prev) || total + n < total) return false;
    prev = index;
    total += n;
  }
  if (min > max || bucket_of(min) != counts.front().first || bucket_of(max) != counts.back().first)
    return false;
  buckets_.assign(counts.back().first + 1, 0);
  for (const auto& [index, n] : counts) buckets_[index] = n;
  count_ = total;
  min_ = min;
  max_ = max;
  sum_ = sum;
  return true;
}

std::uint64_t LogHistogram::quantile(double q) const {
  if (count_ == 0) return 0;
  if (q <= 0.0) return min_;
  if (q >= 1.0) return max_;
  // Rank of the sample at quantile q (nearest-rank definition, 1-based).
  const auto rank = static_cast<std::uint64_t>(std::ceil(q * static_cast<double>(count_)));
  std::uint64_t seen = 0;
  for (std::size_t i = 0; i < buckets_.size(); ++i) {
    seen += buckets_[i];
    if (seen >= rank && buckets_[i] != 0) {
      // Midpoint of the bucket, clamped to what was actually recorded.
      const std::uint64_t lo = bucket_low(i);
      const std::uint64_t hi = bucket_high(i);
      const std::uint64_t mid = lo + (hi - lo) / 2;
      return std::clamp(mid, min_, max_);
    }
  }
  return max_;
}

}  // namespace orchlab

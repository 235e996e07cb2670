// A log-bucketed histogram of non-negative integers (latencies in ns or us):
// 128 linear sub-buckets per power of two, so any quantile it reports is
// within 1/256 (0.4%) of a recorded value. Histograms merge exactly, which is
// how per-thread and per-repetition latencies are combined: percentiles are
// never averaged.
#pragma once

#include <cstdint>
#include <utility>
#include <vector>

namespace orchlab {

class LogHistogram {
 public:
  static constexpr int kSubBits = 7;
  static constexpr std::uint64_t kSub = 1u << kSubBits;  // sub-buckets per octave

  void record(std::uint64_t value, std::uint64_t count = 1);
  /// Adds every sample of `other`.
  void merge(const LogHistogram& other);
  void clear();

  std::uint64_t count() const { return count_; }
  std::uint64_t min() const { return count_ ? min_ : 0; }
  std::uint64_t max() const { return max_; }
  double mean() const { return count_ ? static_cast<double>(sum_) / count_ : 0.0; }
  std::uint64_t sum() const { return sum_; }
  /// Count of bucket `index` (see bucket_of); indices past the last are 0.
  std::uint64_t bucket_count(std::size_t index) const {
    return index < buckets_.size() ? buckets_[index] : 0;
  }
  std::size_t bucket_end() const { return buckets_.size(); }
  /// A histogram as a report wrote it: `counts` of bucket indices, and the
  /// exact min, max and sum (which the buckets alone round). Returns false,
  /// leaving the histogram empty, when they do not fit together (a count of
  /// 0, min above max, min or max outside the buckets, indices unsorted).
  bool assign(const std::vector<std::pair<std::size_t, std::uint64_t>>& counts, std::uint64_t min,
              std::uint64_t max, std::uint64_t sum);
  /// The value at quantile q in [0, 1] (0 when empty); exact for min and max.
  std::uint64_t quantile(double q) const;

  /// Bucket of `value` and the inclusive value range a bucket covers.
  static std::size_t bucket_of(std::uint64_t value);
  static std::uint64_t bucket_low(std::size_t index);
  static std::uint64_t bucket_high(std::size_t index);

 private:
  std::vector<std::uint64_t> buckets_;
  std::uint64_t count_ = 0;
  std::uint64_t min_ = 0;
  std::uint64_t max_ = 0;
  // unsigned __int128 would be exact; 64 bits of ns hold 584 years of sum.
  std::uint64_t sum_ = 0;
};

}  // namespace orchlab

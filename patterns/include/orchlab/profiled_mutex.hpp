// A mutex that measures its own contention: an uncontended lock is one
// try_lock; only a lock that has to wait reads the clock and counts.
#pragma once

#include <atomic>
#include <cstdint>
#include <mutex>

namespace orchlab {

/// Process-wide contention totals over every ProfiledMutex (monotonic).
struct LockStats {
  std::uint64_t contended = 0;  ///< acquisitions that had to wait
  std::uint64_t wait_ns = 0;    ///< total time spent waiting
};
LockStats lock_stats();

/// Meets the Lockable requirements (std::lock_guard, std::unique_lock,
/// std::condition_variable_any).
class ProfiledMutex {
 public:
  void lock();
  bool try_lock() { return m_.try_lock(); }
  void unlock() { m_.unlock(); }
  /// This mutex's own totals.
  LockStats stats() const;

 private:
  std::mutex m_;
  std::atomic<std::uint64_t> contended_{0};
  std::atomic<std::uint64_t> wait_ns_{0};
};

}  // namespace orchlab

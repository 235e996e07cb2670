// ProfiledMutex: the clock is read only on the contended path.
#include "orchlab/profiled_mutex.hpp"

#include <chrono>

namespace orchlab {
namespace {

std::atomic<std::uint64_t> g_contended{0};
std::atomic<std::uint64_t> g_wait_ns{0};

}  // namespace

LockStats lock_stats() {
  return {g_contended.load(std::memory_order_relaxed), g_wait_ns.load(std::memory_order_relaxed)};
}

void ProfiledMutex::lock() {
  if (m_.try_lock()) return;
  const auto start = std::chrono::steady_clock::now();
  m_.lock();
  const auto waited = static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - start)
          .count());
  contended_.fetch_add(1, std::memory_order_relaxed);
  wait_ns_.fetch_add(waited, std::memory_order_relaxed);
  g_contended.fetch_add(1, std::memory_order_relaxed);
  g_wait_ns.fetch_add(waited, std::memory_order_relaxed);
}

LockStats ProfiledMutex::stats() const {
  return {contended_.load(std::memory_order_relaxed), wait_ns_.load(std::memory_order_relaxed)};
}

}  // namespace orchlab

#include "orchlab/fault_point.hpp"

#include <array>
#include <atomic>
#include <deque>
#include <mutex>
#include <utility>

namespace orchlab::testing {
namespace {

using Hook = std::function<void(void*)>;

// One pointer per point, read on every pass: acquire pairs only with
// set_fault's release, so a pass orders nothing between the threads under
// test (a mutex here would hide their races from TSan).
std::array<std::atomic<const Hook*>, static_cast<std::size_t>(Fault::count_)> hooks{};

std::mutex keep_mutex;
std::deque<Hook>& kept() {
  static std::deque<Hook> k;  // reachable to the end: never a leak
  return k;
}

}  // namespace

bool fault_points() {
#ifdef ORCHLAB_FAULT_POINTS
  return true;
#else
  return false;
#endif
}

void set_fault(Fault point, Hook f) {
  const Hook* p = nullptr;
  if (f) {
    std::lock_guard lock(keep_mutex);
    p = &kept().emplace_back(std::move(f));
  }
  hooks[static_cast<std::size_t>(point)].store(p, std::memory_order_release);
}

namespace detail {
void fault_hit(Fault point, void* arg) noexcept(false) {
  if (const Hook* h = hooks[static_cast<std::size_t>(point)].load(std::memory_order_acquire))
    (*h)(arg);
}
}  // namespace detail

}  // namespace orchlab::testing

// Test-only fault points: named places in the machinery where a test runs a
// function of its own, to throw there (std::bad_alloc standing for an
// allocation that failed, std::system_error for a thread that could not be
// created) or to hold a thread at an exact step of a race.
//
// Compiled in only where ORCHLAB_FAULT_POINTS is defined: patterns/CMakeLists.txt
// defines it for the files that have a point, in every build but the
// optimised ones (Release, RelWithDebInfo, MinSizeRel). There
// ORCHLAB_FAULT_POINT expands to nothing, so the measured programs carry no
// cost; tests that need a point skip when fault_points() is false.
#pragma once

#include <functional>

namespace orchlab::testing {

/// The places, each at the step a defect of issue 23 (item 6) lived at.
enum class Fault {
  group_notify,       ///< async Group: the last call stored `done`, notify next (arg: the atomic)
  group_add_slot,     ///< async Group::go: before the outcome's slot is added
  runtime_thread,     ///< async Runtime: before each io thread is created
  pool_wake,          ///< async client: before the post that resumes a parked acquire
  pool_granted,       ///< async client: a parked acquire resumed, before it holds its place
  task_group_thread,  ///< TaskGroup: before room is made to record a new thread
  count_
};

/// Whether the library was built with its fault points.
bool fault_points();

/// Runs `f` at every pass through `point` from now on (an empty `f`: none);
/// `f` gets the point's argument (nullptr for most). A function once set
/// stays alive until the program ends, so a pass still running it on another
/// thread is safe. NOTE: set a point only while nothing can pass through it,
/// or when what passes is synchronised with the test by the function itself.
void set_fault(Fault point, std::function<void(void*)> f);

namespace detail {
void fault_hit(Fault point, void* arg) noexcept(false);
}  // namespace detail

}  // namespace orchlab::testing

#ifdef ORCHLAB_FAULT_POINTS
#define ORCHLAB_FAULT_POINT(point, arg) \
  ::orchlab::testing::detail::fault_hit(::orchlab::testing::Fault::point, arg)
#else
#define ORCHLAB_FAULT_POINT(point, arg) ((void)0)
#endif

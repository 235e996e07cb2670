// Task<T>, the coroutine type of a group's calls, and UseTask, the completion
// token that lets a Task co_await any Asio operation.
//
// Why not asio::awaitable + co_spawn: co_spawn gives every call an awaitable
// thread, an entry-point coroutine and, for a call that completes without
// suspending, a post before its handler runs (all 100 calls of a fan-out are
// then alive at once). A Task is one frame, started inline by Group::go,
// resumed by the operation's handler on the group's strand; frames and
// handlers come from per-thread free lists.
//
// Private to orchlab_patterns (Asio headers stay out of the public ones).
#pragma once

#include <boost/asio/async_result.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/strand.hpp>
#include <coroutine>
#include <cstddef>
#include <exception>
#include <optional>
#include <tuple>
#include <type_traits>
#include <utility>

namespace orchlab::async {

namespace asio = boost::asio;

/// The executor every call of a group runs on: its strand.
using Strand = asio::strand<asio::io_context::executor_type>;

namespace detail {

/// Whether frames come from free lists: not under ASan, where every block is
/// its own allocation so that a use after free is still seen.
#if defined(__SANITIZE_ADDRESS__)
inline constexpr bool kFrameFreeLists = false;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
inline constexpr bool kFrameFreeLists = false;
#else
inline constexpr bool kFrameFreeLists = true;
#endif
#else
inline constexpr bool kFrameFreeLists = true;
#endif

/// Memory for coroutine frames and operation handlers: per-thread free lists
/// of 64-byte size classes (up to 1,984 bytes, larger goes to operator new). A
/// block freed on another thread joins that thread's list; a list keeps at
/// most 1,024 blocks, the rest goes back to operator delete.
void* frame_allocate(std::size_t size);
void frame_deallocate(void* p, std::size_t size) noexcept;

/// The frame allocator as a standard allocator, for the handlers Asio makes.
template <class T>
struct FrameAllocator {
  using value_type = T;
  FrameAllocator() noexcept = default;
  template <class U>
  FrameAllocator(const FrameAllocator<U>&) noexcept {}  // NOLINT: rebinding
  T* allocate(std::size_t n) { return static_cast<T*>(frame_allocate(n * sizeof(T))); }
  void deallocate(T* p, std::size_t n) noexcept { frame_deallocate(p, n * sizeof(T)); }
  template <class U>
  bool operator==(const FrameAllocator<U>&) const noexcept {
    return true;
  }
};

struct FrameMemory {
  static void* operator new(std::size_t size) { return frame_allocate(size); }
  static void operator delete(void* p, std::size_t size) noexcept { frame_deallocate(p, size); }
};

}  // namespace detail

/// A lazy coroutine returning T: it starts when awaited (or when Group::go
/// starts it) and resumes its awaiter when it ends, by symmetric transfer.
/// An exception it lets out is rethrown to its awaiter.
template <class T>
class [[nodiscard]] Task {
 public:
  struct promise_type : detail::FrameMemory {
    std::optional<T> value;
    std::exception_ptr error;
    std::coroutine_handle<> continuation = std::noop_coroutine();

    Task get_return_object() noexcept {
      return Task(std::coroutine_handle<promise_type>::from_promise(*this));
    }
    std::suspend_always initial_suspend() noexcept { return {}; }
    struct Final {
      bool await_ready() noexcept { return false; }
      std::coroutine_handle<> await_suspend(std::coroutine_handle<promise_type> h) noexcept {
        return h.promise().continuation;
      }
      void await_resume() noexcept {}
    };
    Final final_suspend() noexcept { return {}; }
    template <class U>
    void return_value(U&& v) {
      value.emplace(std::forward<U>(v));
    }
    void unhandled_exception() noexcept { error = std::current_exception(); }
  };

  Task(Task&& other) noexcept : h_(std::exchange(other.h_, {})) {}
  Task& operator=(Task&&) = delete;
  ~Task() {
    if (h_) h_.destroy();
  }

  /// Starts the task; the awaiter resumes with its value once it has ended.
  auto operator co_await() && noexcept {
    struct Awaiter {
      std::coroutine_handle<promise_type> h;
      bool await_ready() noexcept { return false; }
      std::coroutine_handle<> await_suspend(std::coroutine_handle<> awaiting) noexcept {
        h.promise().continuation = awaiting;
        return h;
      }
      T await_resume() {
        promise_type& p = h.promise();
        if (p.error) std::rethrow_exception(p.error);
        return std::move(*p.value);
      }
    };
    return Awaiter{h_};
  }

 private:
  explicit Task(std::coroutine_handle<promise_type> h) : h_(h) {}
  std::coroutine_handle<promise_type> h_;
};

namespace detail {

/// An eager coroutine that frees itself when it ends: the root of one call,
/// started by Group::go. It must not let an exception out.
struct Detached {
  struct promise_type : FrameMemory {
    Detached get_return_object() noexcept { return {}; }
    std::suspend_never initial_suspend() noexcept { return {}; }
    std::suspend_never final_suspend() noexcept { return {}; }
    void return_void() noexcept {}
    void unhandled_exception() noexcept { std::terminate(); }
  };
};

/// The handler a UseTask operation completes: stores the completion's
/// arguments in the awaiter (in the suspended frame) and resumes the Task.
/// Asio runs it through its associated executor, the strand, so the Task
/// only ever runs on its strand, and installs the operation's cancellation
/// handler in its associated slot. Destroyed without being called (only when
/// the io_context is destroyed with the operation pending), it leaves the
/// Task suspended: Runtime never does that, as run() returns only when no
/// operation is pending.
template <class... Args>
struct TaskHandler {
  using executor_type = Strand;
  using allocator_type = FrameAllocator<void>;
  using cancellation_slot_type = asio::cancellation_slot;
  executor_type get_executor() const noexcept { return strand; }
  allocator_type get_allocator() const noexcept { return {}; }
  cancellation_slot_type get_cancellation_slot() const noexcept { return slot; }

  template <class... A>
  void operator()(A&&... args) {
    result->emplace(std::forward<A>(args)...);
    std::exchange(resume, nullptr).resume();
  }

  std::coroutine_handle<> resume;
  std::optional<std::tuple<Args...>>* result;
  Strand strand;
  asio::cancellation_slot slot;
};

template <class Initiation, class InitArgs, class... Args>
struct OpAwaiter {
  Initiation initiation;
  InitArgs init_args;
  Strand strand;
  asio::cancellation_slot slot;
  std::optional<std::tuple<Args...>> result;

  bool await_ready() noexcept { return false; }
  void await_suspend(std::coroutine_handle<> h) {
    // Nothing of *this is touched after the initiation: the handler cannot
    // run before this returns (it runs on the strand, which this thread
    // holds), but the rule keeps that an afterthought.
    std::apply(
        [&](auto&&... a) {
          std::move(initiation)(TaskHandler<Args...>{h, &result, strand, slot}, std::move(a)...);
        },
        std::move(init_args));
  }
  std::tuple<Args...> await_resume() { return std::move(*result); }
};

}  // namespace detail

/// Completion token: `co_await op(..., UseTask{strand, slot})` inside a Task
/// yields the operation's completion arguments as a tuple (an error_code is a
/// value, never thrown, as with as_tuple(use_awaitable)), resumes on `strand`
/// and binds the operation to the cancellation `slot` (bind_cancellation_slot
/// would need an old-style async_result here).
struct UseTask {
  Strand strand;
  asio::cancellation_slot slot;
};

}  // namespace orchlab::async

template <class R, class... Args>
struct boost::asio::async_result<orchlab::async::UseTask, R(Args...)> {
  template <class Initiation, class... InitArgs>
  static auto initiate(Initiation&& initiation, orchlab::async::UseTask token, InitArgs&&... args) {
    return orchlab::async::detail::OpAwaiter<
        std::decay_t<Initiation>, std::tuple<std::decay_t<InitArgs>...>, std::decay_t<Args>...>{
        std::forward<Initiation>(initiation),
        std::tuple<std::decay_t<InitArgs>...>(std::forward<InitArgs>(args)...),
        std::move(token.strand),
        token.slot,
        {}};
  }
};

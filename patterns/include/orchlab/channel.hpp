// A small Go-like channel: a bounded FIFO guarded by a ProfiledMutex, so the
// lock a channel hides is measured like any other. Channel soup is built from
// it; so is any test that wants Go's select.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <iterator>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <type_traits>
#include <utility>
#include <vector>

#include "orchlab/profiled_mutex.hpp"

namespace orchlab {

namespace detail {
// Woken by any channel a select() is parked on.
struct SelectWaker {
  ProfiledMutex mutex;
  std::condition_variable_any cv;
  bool ready = false;
};
}  // namespace detail

/// A buffered channel of T, the analog of Go's `make(chan T, capacity)`.
/// Share it by shared_ptr between the sender and receiver threads.
/// REQUIRES: capacity >= 1 (unbuffered rendezvous channels are not modelled).
/// NOTE: unlike Go, send on a closed channel returns false instead of
/// panicking, and receive on a closed, drained channel returns nullopt.
template <class T>
class Channel {
 public:
  using value_type = T;

  explicit Channel(std::size_t capacity = 1) : capacity_(capacity) {
    if (capacity == 0) throw std::invalid_argument("orchlab::Channel: capacity must be >= 1");
  }
  Channel(const Channel&) = delete;
  Channel& operator=(const Channel&) = delete;

  /// Blocks while the buffer is full. Returns false (dropping `value`) if the
  /// channel is or becomes closed.
  bool send(T value) {
    std::unique_lock lock(mutex_);
    not_full_.wait(lock, [&] { return closed_ || buffer_.size() < capacity_; });
    if (closed_) return false;
    push_locked(std::move(value));
    return true;
  }

  /// Never blocks: false when the buffer is full or the channel closed.
  bool try_send(T value) {
    std::lock_guard lock(mutex_);
    if (closed_ || buffer_.size() >= capacity_) return false;
    push_locked(std::move(value));
    return true;
  }

  /// No more sends; buffered values can still be received. Idempotent.
  void close() {
    std::lock_guard lock(mutex_);
    if (closed_) return;
    closed_ = true;
    not_full_.notify_all();
    not_empty_.notify_all();
    wake_selects_locked();
  }

  /// Blocks for a value; nullopt once the channel is closed and drained.
  std::optional<T> receive() {
    std::unique_lock lock(mutex_);
    not_empty_.wait(lock, [&] { return closed_ || !buffer_.empty(); });
    return pop_locked();
  }

  /// As receive(), but gives up after `timeout` (nullopt; see closed()).
  template <class Rep, class Period>
  std::optional<T> receive_for(std::chrono::duration<Rep, Period> timeout) {
    std::unique_lock lock(mutex_);
    not_empty_.wait_for(lock, timeout, [&] { return closed_ || !buffer_.empty(); });
    return pop_locked();
  }

  /// Never blocks: a buffered value or nullopt.
  std::optional<T> try_receive() {
    std::lock_guard lock(mutex_);
    return pop_locked();
  }

  bool closed() const {
    std::lock_guard lock(mutex_);
    return closed_;
  }

  std::size_t size() const {
    std::lock_guard lock(mutex_);
    return buffer_.size();
  }

  std::size_t capacity() const { return capacity_; }

 private:
  template <class Range>
  friend auto select_until(const Range& channels, std::chrono::steady_clock::time_point deadline);

  void push_locked(T value) {
    buffer_.push_back(std::move(value));
    not_empty_.notify_one();
    wake_selects_locked();
  }

  std::optional<T> pop_locked() {
    if (buffer_.empty()) return std::nullopt;
    std::optional<T> v(std::move(buffer_.front()));
    buffer_.pop_front();
    not_full_.notify_one();
    return v;
  }

  // Lock order is always channel -> waker; select() never holds its waker's
  // mutex while it takes a channel's.
  void wake_selects_locked() {
    for (auto& w : wakers_) {
      std::lock_guard lock(w->mutex);
      w->ready = true;
      w->cv.notify_one();
    }
  }

  // Ready: a value was taken, or the channel is closed and drained (as in
  // Go, a closed channel is always ready to receive).
  bool poll(std::optional<T>& out) {
    std::lock_guard lock(mutex_);
    out = pop_locked();
    return out.has_value() || closed_;
  }

  void attach(const std::shared_ptr<detail::SelectWaker>& w) {
    std::lock_guard lock(mutex_);
    wakers_.push_back(w);
  }

  void detach(const std::shared_ptr<detail::SelectWaker>& w) {
    std::lock_guard lock(mutex_);
    std::erase(wakers_, w);
  }

  const std::size_t capacity_;
  mutable ProfiledMutex mutex_;
  std::condition_variable_any not_empty_;
  std::condition_variable_any not_full_;
  std::deque<T> buffer_;
  bool closed_ = false;
  std::vector<std::shared_ptr<detail::SelectWaker>> wakers_;
};

/// What select() received: from channels[index]; `value` is empty when that
/// channel is closed and drained.
template <class T>
struct Received {
  std::size_t index = 0;
  std::optional<T> value;
};

/// Go's `select` over receives from several channels plus a timer: returns
/// the first channel ready (a value, or closed), nullopt when `deadline`
/// passes first. `channels` is a range of Channel<T>* or
/// shared_ptr<Channel<T>>; null entries are never ready (Go's nil channel).
/// NOTE: each call parks on every channel, so a loop of selects over n
/// channels costs O(n^2) lock acquisitions: that is channel soup's price.
template <class Range>
auto select_until(const Range& channels, std::chrono::steady_clock::time_point deadline) {
  using Chan = std::remove_cvref_t<decltype(**std::begin(channels))>;
  using T = typename Chan::value_type;
  const std::size_t n =
      static_cast<std::size_t>(std::distance(std::begin(channels), std::end(channels)));
  std::vector<Chan*> chans;
  chans.reserve(n);
  for (const auto& c : channels) chans.push_back(c ? &*c : nullptr);

  // Go picks uniformly among ready cases; rotating the start avoids starving
  // the last channels without paying for a random generator.
  thread_local std::size_t rotation = 0;
  const std::size_t start = n == 0 ? 0 : rotation++ % n;

  std::shared_ptr<detail::SelectWaker> waker;
  auto detach_all = [&] {
    if (!waker) return;
    for (Chan* c : chans)
      if (c) c->detach(waker);
  };
  for (;;) {
    std::optional<T> value;
    for (std::size_t k = 0; k < n; ++k) {
      const std::size_t i = (start + k) % n;
      if (chans[i] && chans[i]->poll(value)) {
        detach_all();
        return std::optional<Received<T>>(Received<T>{i, std::move(value)});
      }
    }
    if (std::chrono::steady_clock::now() >= deadline) {
      detach_all();
      return std::optional<Received<T>>();
    }
    if (!waker) {
      // Park on every channel, then poll once more before sleeping: a send
      // between the poll above and the attach would otherwise be missed.
      waker = std::make_shared<detail::SelectWaker>();
      for (Chan* c : chans)
        if (c) c->attach(waker);
      continue;
    }
    std::unique_lock lock(waker->mutex);
    waker->cv.wait_until(lock, deadline, [&] { return waker->ready; });
    waker->ready = false;
  }
}

/// select_until() with a relative timeout.
template <class Range, class Rep, class Period>
auto select(const Range& channels, std::chrono::duration<Rep, Period> timeout) {
  return select_until(channels,
                      std::chrono::steady_clock::now() +
                          std::chrono::duration_cast<std::chrono::steady_clock::duration>(timeout));
}

}  // namespace orchlab

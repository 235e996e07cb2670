// The asynchronous HTTP/1.1 client of async-group: Beast over Asio coroutines,
// a keep-alive connection pool per host with the thread client's
// max_conns_per_host semantics, cancellation through the call's Stop.
//
// Private to orchlab_patterns; Beast stays in client.cpp.
#pragma once

#include <boost/asio/io_context.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>

#include "group.hpp"
#include "orchlab/pattern.hpp"

namespace orchlab::async {

struct ClientOptions {
  /// Connections per host (scheme://host:port), idle or busy. An acquire
  /// beyond it waits, cancellably, for one to come back (pool starvation).
  std::size_t max_conns_per_host = 64;
};

/// Counters since construction or the last reset_stats(): the pool fields
/// the thread client also reports, and two of this client's own.
struct ClientStats : PoolStats {
  std::uint64_t connections_reused = 0;
  std::uint64_t stale_discarded = 0;  ///< idle connections found closed by the peer
};

/// REQUIRES: outlives every call started with get(); the io_context outlives
/// the client.
class Client {
 public:
  Client(asio::io_context& ioc, ClientOptions options);
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  /// Performs call.url and returns its Reply; never throws.
  ///
  /// - `http://host:port/path?query`: GET over a pooled keep-alive connection,
  ///   with X-Orchlab-Key (when call.key != 0), X-Orchlab-Phase (when
  ///   call.window) and X-Orchlab-Deadline-Ns (call.deadline_ns, or the
  ///   group's deadline when 0). On a transport
  ///   error the Reply's body holds the error text (status is 0).
  /// - `inproc://name[?status=N][&delay_ms=M]`: answers in-process, without
  ///   I/O: status N (default 200) after M ms on a timer (default: at once).
  ///   For microbenchmarks and tests of the group machinery itself.
  /// - anything else: ReplyError::transport, "unsupported scheme".
  ///
  /// When `stop` fires: a wait for a connection is abandoned, an operation in
  /// flight is cancelled (terminal) and its connection closed, never pooled,
  /// so the service sees the client leave; the Reply is ReplyError::cancelled.
  /// Must run on a Group's strand (the Stop is only valid there).
  Task<Reply> get(const Call& call, Stop stop);

  /// Reports every call from now on to `observer` (nullptr: none, the
  /// default; a call then pays one atomic load and a null check): its start
  /// when get() is called, its reply when the call's coroutine has it, and
  /// the end of the call's coroutine (its frame, destroyed as the group's
  /// root of the call resumes). The observer must outlive the calls that
  /// saw it; set it while no call is in flight.
  void set_observer(CallObserver* observer);

  /// Consistent when no call is in flight; cheap enough to read any time.
  ClientStats stats() const;
  void reset_stats();

 private:
  Task<Reply> unobserved_get(const Call& call, Stop stop);
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

namespace testing {
/// Test hook: when set, runs in every http:// call just after it got its
/// pool place. It may throw, to inject an exception. Set it only while no
/// call is running.
extern std::function<void()> after_acquire;
}  // namespace testing

}  // namespace orchlab::async

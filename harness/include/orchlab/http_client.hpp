// A blocking, cancellable HTTP/1.1 client with a keep-alive connection pool
// per host, on cpp-httplib. Used as the Fetch of the thread-based exhibits.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <stop_token>

#include "orchlab/pattern.hpp"

namespace orchlab::http {

struct PoolOptions {
  /// Connections per host (scheme://host:port). An acquire beyond it waits,
  /// cancellably, for one to come back: that wait is pool starvation.
  std::size_t max_conns_per_host = 64;
  /// connect() cannot be interrupted by a stop; this bounds it.
  std::chrono::milliseconds connect_timeout{1000};
  /// Per read/write on an established connection.
  std::chrono::milliseconds io_timeout{30000};
};

/// Counters since construction or the last reset_stats() (the same fields
/// async-group's own pool reports through Pattern::pool_stats()).
using PoolStats = orchlab::PoolStats;

/// NOTE: hold it by shared_ptr; fetch() keeps it alive for as long as a
/// leaked thread is still inside a call, so it is never destroyed under one.
class Client : public std::enable_shared_from_this<Client> {
 public:
  /// NOTE: the first call sets SIGPIPE to SIG_IGN process-wide when it still
  /// has the default action (cpp-httplib 0.11 sends without MSG_NOSIGNAL).
  static std::shared_ptr<Client> create(PoolOptions options = {});
  ~Client();

  /// Performs GET call.url, blocking. Sends X-Orchlab-Key,
  /// X-Orchlab-Phase and X-Orchlab-Deadline-Ns when set. Returns ReplyError::cancelled as soon as
  /// `stop` fires (while waiting for a connection, before sending, or in
  /// flight: the connection is then discarded). Records completion in the
  /// census (late when its orchestration already returned).
  Reply get(const Call& call, std::stop_token stop);

  /// A Fetch bound to this client (holds a shared_ptr to it).
  Fetch fetch();

  PoolStats stats() const;
  void reset_stats();

 private:
  explicit Client(PoolOptions options);
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

namespace testing {
/// Test hook: when set, runs inside get() just after the request returned and
/// before the call's stop callback is deregistered (the window in which a
/// late stop lands). It may throw, to inject an exception. Set it only while
/// no get() is running.
extern std::function<void()> after_get;
}  // namespace testing

}  // namespace orchlab::http

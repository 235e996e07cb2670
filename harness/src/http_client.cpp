// The cancellable pooled HTTP client on cpp-httplib 0.11. See
// docs/http_client.md for the traps this file works around and why.
#include "orchlab/http_client.hpp"

#include <httplib.h>
#include <signal.h>
#include <sys/socket.h>

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "orchlab/census.hpp"

namespace orchlab::http {
namespace {

using Clock = std::chrono::steady_clock;

/// An absolute URL split into the pool key and the request target.
struct Target {
  std::string origin;  ///< "http://127.0.0.1:41234" (scheme://host:port, port explicit)
  std::string path;    ///< "/users?delay_ms=5" ("/" when the URL has none)
  std::string host;    ///< "127.0.0.1", "[::1]": picks the deadline header
};

std::optional<Target> parse_url(std::string_view url) {
  const auto scheme_end = url.find("://");
  if (scheme_end == std::string_view::npos) return std::nullopt;
  const std::string_view scheme = url.substr(0, scheme_end);
  if (scheme != "http" && scheme != "https") return std::nullopt;
  const auto authority_begin = scheme_end + 3;
  const auto path_begin = url.find_first_of("/?", authority_begin);
  std::string_view authority = url.substr(authority_begin, path_begin - authority_begin);
  if (authority.empty()) return std::nullopt;
  Target t;
  // "[::1]:80" keeps its brackets; a port is present when the last ':' comes
  // after the closing bracket (or there is no bracket at all).
  const auto colon = authority.rfind(':');
  const auto bracket = authority.rfind(']');
  const bool has_port =
      colon != std::string_view::npos && (bracket == std::string_view::npos || colon > bracket);
  t.origin.append(url.substr(0, authority_begin)).append(authority);
  t.host = authority.substr(0, has_port ? colon : authority.size());
  if (!has_port) t.origin.append(scheme == "https" ? ":443" : ":80");
  if (path_begin == std::string_view::npos) {
    t.path = "/";
  } else {
    if (url[path_begin] == '?') t.path = "/";
    t.path.append(url.substr(path_begin));
  }
  return t;
}

/// One pooled keep-alive connection. The httplib::Client holds one socket and
/// reopens it by itself when the server closed it while idle.
struct Connection {
  Connection(const std::string& origin, const PoolOptions& options,
             std::atomic<std::uint64_t>& opened)
      : client(origin) {
    client.set_keep_alive(true);
    // The mock never compresses; without this httplib advertises gzip/br.
    client.set_decompress(false);
    client.set_connection_timeout(options.connect_timeout);
    client.set_read_timeout(options.io_timeout);
    client.set_write_timeout(options.io_timeout);
    // Runs for every socket httplib creates, before connect(), under its
    // socket lock. It counts real TCP connects, and it closes the last gap of
    // Client::stop(): a stop that lands after our token check but before
    // httplib took its socket lock only closes the idle socket, and httplib
    // then opens a fresh one and sends. Shutting the fresh socket down here
    // makes that send fail at once (EPIPE) instead of waiting for the reply.
    client.set_socket_options([this, &opened](socket_t sock) {
      httplib::default_socket_options(sock);
      opened.fetch_add(1, std::memory_order_relaxed);
      if (stopping.load()) ::shutdown(sock, SHUT_RDWR);
    });
  }

  httplib::Client client;
  /// Set by the stop callback of the request using this connection. A
  /// connection is discarded after a stopped request, so it never resets.
  std::atomic<bool> stopping{false};
};

/// The connections of one origin: idle ones plus a count of all open ones
/// (idle or lent out), bounded by max_conns_per_host.
struct HostPool {
  std::mutex mutex;
  std::condition_variable_any returned;
  std::vector<std::unique_ptr<Connection>> idle;
  std::size_t open = 0;
};

Reply transport_error(std::string reason) {
  return Reply{0, std::move(reason), ReplyError::transport};
}

}  // namespace

struct Client::Impl {
  explicit Impl(PoolOptions o) : options(o) {
    if (options.max_conns_per_host == 0) options.max_conns_per_host = 1;
  }

  HostPool& pool_for(const std::string& origin) {
    std::lock_guard lock(pools_mutex);
    auto& slot = pools[origin];
    if (!slot) slot = std::make_unique<HostPool>();
    return *slot;
  }

  /// A connection of `pool`, waiting while the pool is full; nullptr when
  /// `stop` fires first. Records the pool wait (docs/http_client.md): from
  /// here until the caller holds a connection, an idle one or a new one not
  /// connected yet (httplib connects inside the request), or gives up.
  std::unique_ptr<Connection> acquire(HostPool& pool, const std::string& origin,
                                      const std::stop_token& stop) {
    const auto start = Clock::now();
    std::unique_ptr<Connection> conn;
    bool create = false;
    {
      std::unique_lock lock(pool.mutex);
      auto available = [&] { return !pool.idle.empty() || pool.open < options.max_conns_per_host; };
      if (!available()) {
        acquires_waited.fetch_add(1, std::memory_order_relaxed);
        // This wait registers a stop_callback that notifies the condition
        // variable, so a stop wakes it at once rather than at the next return.
        if (!pool.returned.wait(lock, stop, available)) {
          lock.unlock();
          record_wait(start);
          return nullptr;
        }
      }
      if (!pool.idle.empty()) {
        conn = std::move(pool.idle.back());  // LIFO: the warmest socket first
        pool.idle.pop_back();
      } else {
        ++pool.open;
        create = true;
      }
    }
    // No I/O here: httplib connects lazily inside the first request.
    if (create) {
      try {
        conn = std::make_unique<Connection>(origin, options, connections_opened);
      } catch (...) {
        release(pool, nullptr, false);  // the place taken above, or it is lost for good
        throw;
      }
    }
    record_wait(start);
    return conn;
  }

  /// Gives `conn` back (reusable) or drops it and frees its slot.
  void release(HostPool& pool, std::unique_ptr<Connection> conn, bool reusable) {
    {
      std::lock_guard lock(pool.mutex);
      if (reusable) {
        pool.idle.push_back(std::move(conn));
      } else {
        --pool.open;
      }
    }
    pool.returned.notify_one();
    // A discarded connection closes its socket here, outside the pool lock;
    // no other thread can be inside it (its stop callback is gone).
  }

  /// A pool place held by one get(): given back however the call ends (an
  /// exception included), pooled only when `reusable` was set.
  struct Lease {
    Lease(Impl& i, HostPool& p, std::unique_ptr<Connection> c)
        : impl(i), pool(p), conn(std::move(c)) {}
    Lease(const Lease&) = delete;
    Lease& operator=(const Lease&) = delete;
    ~Lease() {
      if (conn) impl.release(pool, std::move(conn), reusable);
    }
    Impl& impl;
    HostPool& pool;
    std::unique_ptr<Connection> conn;
    bool reusable = false;
  };

  // A sample the histogram cannot store is lost, not the connection held.
  void record_wait(Clock::time_point start) noexcept {
    const auto ns =
        std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - start).count();
    std::lock_guard lock(stats_mutex);
    try {
      wait_ns.record(static_cast<std::uint64_t>(ns));
    } catch (...) {
    }
  }

  Reply cancelled_reply() {
    cancelled.fetch_add(1, std::memory_order_relaxed);
    return Reply{0, {}, ReplyError::cancelled};
  }

  PoolOptions options;

  std::atomic<std::uint64_t> requests{0};
  std::atomic<std::uint64_t> acquires_waited{0};
  std::atomic<std::uint64_t> connections_opened{0};  // connections refer to it: declared first
  std::atomic<std::uint64_t> transport_errors{0};
  std::atomic<std::uint64_t> cancelled{0};
  mutable std::mutex stats_mutex;
  LogHistogram wait_ns;

  std::mutex pools_mutex;
  std::unordered_map<std::string, std::unique_ptr<HostPool>> pools;
};

namespace testing {
std::function<void()> after_get;
}  // namespace testing

std::shared_ptr<Client> Client::create(PoolOptions options) {
  // cpp-httplib 0.11 is built with send() flags 0, not MSG_NOSIGNAL: writing
  // to a socket that a stop shut down or a server reset raises SIGPIPE, which
  // kills the process. Ignore it (unless someone installed a handler), as
  // every server does; the write then fails with EPIPE.
  static std::once_flag sigpipe_once;
  std::call_once(sigpipe_once, [] {
    struct sigaction current {};
    if (::sigaction(SIGPIPE, nullptr, &current) == 0 && current.sa_handler == SIG_DFL) {
      ::signal(SIGPIPE, SIG_IGN);
    }
  });
  return std::shared_ptr<Client>(new Client(options));
}

Client::Client(PoolOptions options) : impl_(std::make_unique<Impl>(options)) {}

Client::~Client() = default;

Reply Client::get(const Call& call, std::stop_token stop) {
  Impl& s = *impl_;
  s.requests.fetch_add(1, std::memory_order_relaxed);
  const auto target = parse_url(call.url);
  if (!target) {
    s.transport_errors.fetch_add(1, std::memory_order_relaxed);
    census::note_completion();
    return transport_error("bad url: " + call.url);
  }
  if (stop.stop_requested()) return s.cancelled_reply();

  HostPool& pool = s.pool_for(target->origin);
  Impl::Lease lease{s, pool, s.acquire(pool, target->origin, stop)};
  if (!lease.conn) return s.cancelled_reply();

  httplib::Headers headers;
  if (call.key != 0) headers.emplace("X-Orchlab-Key", std::to_string(call.key));
  if (call.window) headers.emplace("X-Orchlab-Phase", "window");
  if (call.deadline_ns != 0) {
    auto [name, value] = deadline_header(target->host, call.deadline_ns);
    headers.emplace(std::string(name), std::move(value));
  }

  Reply reply;
  bool ok = false;
  Connection* c = lease.conn.get();
  {
    // Runs on the stopping thread. stop() shuts the socket down when a request
    // is in flight; before that it only closes an idle socket, which is why
    // the flag is also checked below, by both receivers and by the socket
    // hook. NOTE: stop() waits on httplib's socket lock, which httplib holds
    // across connect(): a stop during connect blocks up to connect_timeout.
    std::stop_callback on_stop(stop, [c] {
      c->stopping.store(true);
      c->client.stop();
    });
    if (!c->stopping.load()) {
      httplib::Result result = c->client.Get(
          target->path, headers, [c](const httplib::Response&) { return !c->stopping.load(); },
          [c, &reply](const char* data, std::size_t size) {
            reply.body.append(data, size);
            return !c->stopping.load();
          });
      if (result) {
        // A complete answer counts even if a stop arrived just after it.
        ok = true;
        reply.status = result->status;
        reply.error =
            result->status >= 200 && result->status < 300 ? ReplyError::none : ReplyError::http;
      } else {
        reply = transport_error(httplib::to_string(result.error()));
      }
    }
    if (testing::after_get) testing::after_get();
  }  // on_stop is deregistered here (waiting for a running callback to finish)

  // Read only now: until the callback was deregistered a stop could still set
  // the flag and stop() the client (a connection pooled in that state would
  // fail its next borrower with a cancellation it never had).
  const bool stopped = c->stopping.load();
  // A connection whose request was stopped or failed may hold a half-read
  // reply or a shut-down socket: it never goes back to the pool.
  lease.reusable = ok && !stopped;
  if (!ok && stopped) return s.cancelled_reply();
  if (!ok) s.transport_errors.fetch_add(1, std::memory_order_relaxed);
  census::note_completion();
  return reply;
}

Fetch Client::fetch() {
  return [self = shared_from_this()](const Call& call, std::stop_token stop) {
    return self->get(call, std::move(stop));
  };
}

PoolStats Client::stats() const {
  PoolStats out;
  out.requests = impl_->requests.load();
  out.acquires_waited = impl_->acquires_waited.load();
  out.connections_opened = impl_->connections_opened.load();
  out.transport_errors = impl_->transport_errors.load();
  out.cancelled = impl_->cancelled.load();
  std::lock_guard lock(impl_->stats_mutex);
  out.wait_ns = impl_->wait_ns;
  return out;
}

void Client::reset_stats() {
  impl_->requests = 0;
  impl_->acquires_waited = 0;
  impl_->connections_opened = 0;
  impl_->transport_errors = 0;
  impl_->cancelled = 0;
  std::lock_guard lock(impl_->stats_mutex);
  impl_->wait_ns.clear();
}

}  // namespace orchlab::http

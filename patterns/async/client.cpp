// Beast async client with a keep-alive pool per host. Every operation of a
// call is bound to the call's cancellation slot; a call that is stopped
// closes its connection instead of pooling it.
#include "client.hpp"

#include <sys/socket.h>
#include <sys/types.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/basic_parser.hpp>
#include <boost/beast/http/error.hpp>
#include <cerrno>
#include <charconv>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "orchlab/fault_point.hpp"
#include "orchlab/profiled_mutex.hpp"

namespace orchlab::async {
namespace {

namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using boost::system::error_code;

// The mock's own limits are 16 MiB of body and 8 KiB of header block.
constexpr std::uint64_t kMaxBodyBytes = 64u << 20;
constexpr std::uint32_t kMaxHeaderBytes = 64u << 10;
static_assert(kMaxBodyBytes >= (16u << 20), "must accept the largest mock body");

std::int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

Reply cancelled_reply() { return Reply{0, {}, ReplyError::cancelled}; }
Reply transport_reply(std::string what) { return Reply{0, std::move(what), ReplyError::transport}; }
Reply status_reply(int status, std::string body) {
  const bool ok = status >= 200 && status < 300;
  return Reply{status, std::move(body), ok ? ReplyError::none : ReplyError::http};
}

struct Url {
  std::string_view scheme;
  std::string_view authority;  // host[:port]
  std::string_view host;
  std::string_view port;
  std::string_view target;  // path and query, "/" at least
};

bool parse_url(std::string_view s, Url& u) {
  const auto colon = s.find("://");
  if (colon == std::string_view::npos || colon == 0) return false;
  u.scheme = s.substr(0, colon);
  s.remove_prefix(colon + 3);
  // A plain loop: find_first_of("/?") calls memchr on the set per character.
  std::size_t slash = 0;
  while (slash < s.size() && s[slash] != '/' && s[slash] != '?') ++slash;
  if (slash == s.size()) slash = std::string_view::npos;
  u.authority = s.substr(0, slash);
  u.target = slash == std::string_view::npos ? std::string_view("/") : s.substr(slash);
  if (u.authority.empty()) return false;
  const auto port_colon = u.authority.rfind(':');
  if (port_colon != std::string_view::npos && u.authority.back() != ']') {
    u.host = u.authority.substr(0, port_colon);
    u.port = u.authority.substr(port_colon + 1);
  } else {
    u.host = u.authority;
    u.port = "80";
  }
  if (u.host.size() > 1 && u.host.front() == '[' && u.host.back() == ']')
    u.host = u.host.substr(1, u.host.size() - 2);
  return !u.host.empty();
}

// Value of `key` in the query part of `target` ("" when absent).
std::string_view query_value(std::string_view target, std::string_view key) {
  const auto q = target.find('?');
  if (q == std::string_view::npos) return {};
  std::string_view rest = target.substr(q + 1);
  while (!rest.empty()) {
    const auto amp = rest.find('&');
    const std::string_view pair = rest.substr(0, amp);
    const auto eq = pair.find('=');
    if (pair.substr(0, eq) == key) return eq == std::string_view::npos ? "" : pair.substr(eq + 1);
    if (amp == std::string_view::npos) break;
    rest.remove_prefix(amp + 1);
  }
  return {};
}

long long to_number(std::string_view s, long long fallback) {
  long long v = 0;
  const auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  return ec == std::errc() && p == s.data() + s.size() ? v : fallback;
}

// One pooled connection and the buffers its calls reuse: the request is
// formatted into `request` and the reply read into `input`, so a call on a
// warm connection allocates neither.
struct Conn {
  explicit Conn(asio::io_context& ioc) : socket(ioc) {}
  tcp::socket socket;
  std::string request;
  beast::flat_buffer input;
  bool connected = false;
  std::int64_t idle_since_ns = 0;  ///< when it last went back to the pool
};

// An idle connection younger than this is taken as it is: a service closes
// idle keep-alive connections after seconds (orchlab-mock: 60 s), and the
// check costs a system call per call on a busy pool.
constexpr std::int64_t kPeekAfterIdleNs = 50'000'000;

// The reply as the group needs it: status, body and whether the connection
// may be kept. Beast's basic_parser does the HTTP/1.1 framing (content
// length, chunked, keep-alive, limits); the fields are looked at as they go
// by and never stored, which saves the allocations of a full http::response.
class ReplyParser final : public http::basic_parser<false> {
 public:
  int status = 0;
  std::string body;

 private:
  void on_request_impl(http::verb, beast::string_view, beast::string_view, int,
                       error_code&) override {}
  void on_response_impl(int code, beast::string_view, int, error_code&) override { status = code; }
  void on_field_impl(http::field, beast::string_view, beast::string_view, error_code&) override {}
  void on_header_impl(error_code&) override {}
  void on_body_init_impl(const boost::optional<std::uint64_t>& length, error_code&) override {
    if (length) body.reserve(static_cast<std::size_t>(std::min<std::uint64_t>(*length, 1u << 20)));
  }
  std::size_t on_body_impl(beast::string_view part, error_code&) override {
    body.append(part.data(), part.size());
    return part.size();
  }
  void on_chunk_header_impl(std::uint64_t, beast::string_view, error_code&) override {}
  std::size_t on_chunk_body_impl(std::uint64_t, beast::string_view part, error_code&) override {
    body.append(part.data(), part.size());
    return part.size();
  }
  void on_finish_impl(error_code&) override {}
};

// Appends the decimal digits of `v`.
void append_number(std::string& out, std::uint64_t v) {
  char digits[24];
  const auto [end, ec] = std::to_chars(digits, digits + sizeof digits, v);
  out.append(digits, end);
}

// A keep-alive connection left idle may have been closed by the service in
// the meantime; a non-blocking peek tells without sending anything. Only
// asked of a connection idle for more than kPeekAfterIdleNs.
bool reusable(Conn& c, std::int64_t now) {
  if (!c.connected || !c.socket.is_open() || c.input.size() != 0) return false;
  if (now - c.idle_since_ns < kPeekAfterIdleNs) return true;
  char b = 0;
  const ssize_t n = ::recv(c.socket.native_handle(), &b, 1, MSG_PEEK | MSG_DONTWAIT);
  return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
}

// One acquire parked on a full pool, in its call's frame. release/discard
// hand it a connection or a place; a cancellation of its call takes it off
// the queue. Whichever comes first (`woken`, under the host's lock) posts
// its resumption to its strand; the other does nothing.
struct Waiter {
  explicit Waiter(Strand s) : strand(std::move(s)) {}
  Strand strand;
  std::coroutine_handle<> resume;
  std::unique_ptr<Conn> conn;  // null with granted: a place to open a new one
  bool parked = false;         // queued (the pool was full): under the lock
  bool granted = false;        // under the lock
  bool woken = false;          // a resumption is posted: under the lock
  Waiter* prev = nullptr;      // WaitQueue's links: under the lock
  Waiter* next = nullptr;
};

// The parked acquires of a host, first come first served, linked through
// the waiters themselves: queueing, dequeueing and putting one back never
// allocate, so no step of a hand-over can fail half done.
class WaitQueue {
 public:
  bool empty() const noexcept { return head_ == nullptr; }
  void push_back(Waiter& w) noexcept {
    w.prev = tail_;
    w.next = nullptr;
    (tail_ ? tail_->next : head_) = &w;
    tail_ = &w;
  }
  void push_front(Waiter& w) noexcept {
    w.prev = nullptr;
    w.next = head_;
    (head_ ? head_->prev : tail_) = &w;
    head_ = &w;
  }
  Waiter& pop_front() noexcept {
    Waiter& w = *head_;
    erase(w);
    return w;
  }
  void erase(Waiter& w) noexcept {
    (w.prev ? w.prev->next : head_) = w.next;
    (w.next ? w.next->prev : tail_) = w.prev;
    w.prev = w.next = nullptr;
  }

 private:
  Waiter* head_ = nullptr;
  Waiter* tail_ = nullptr;
};

struct Host {
  std::string authority;
  std::vector<tcp::endpoint> endpoints;
  bool loopback = false;  ///< shares this process's CLOCK_MONOTONIC (is_loopback_host)
  ProfiledMutex mu;
  std::vector<std::unique_ptr<Conn>> idle;
  std::size_t open = 0;  // idle + busy + connecting: bounded by max_conns_per_host
  WaitQueue waiters;
  // Every acquire's pool wait (docs/http_client.md), recorded under `mu`,
  // which the acquire holds anyway.
  LogHistogram wait_ns;
};

// Puts a healthy connection in the idle list. A push_back that cannot grow
// the list closes it instead and frees its place: a place is never lost.
// REQUIRES: h.mu held.
void pool_locked(Host& h, std::unique_ptr<Conn>& c) noexcept {
  try {
    h.idle.push_back(std::move(c));
  } catch (...) {
    --h.open;  // `c` still owns it: the caller's scope closes it
  }
}

// Records one acquire's wait; a sample the histogram cannot store is lost
// (the instrument's failure, not the call's). REQUIRES: h.mu held.
void record_locked(Host& h, std::int64_t ns) noexcept {
  try {
    h.wait_ns.record(static_cast<std::uint64_t>(std::max<std::int64_t>(ns, 0)));
  } catch (...) {
  }
}

// Posts the resumption of `w`, which the caller has taken off the queue and
// marked woken under the lock (nothing else resumes it, and its frame lives
// until the resumption runs). The post allocates: when it throws, `w` goes
// back to the head of the queue, neither woken nor granted, and what it was
// handed (a connection or a place) back to the pool, so a later release or
// its call's cancellation still resumes it; then the exception goes on.
void wake(Host& h, Waiter& w) {
  try {
    ORCHLAB_FAULT_POINT(pool_wake, nullptr);
    asio::post(w.strand, [r = w.resume] { r.resume(); });
  } catch (...) {
    std::unique_ptr<Conn> c;  // closed, if it cannot be pooled, outside the lock
    std::lock_guard lock(h.mu);
    if (w.granted) {
      c = std::move(w.conn);
      if (c)
        pool_locked(h, c);
      else
        --h.open;  // a place
    }
    w.granted = false;
    w.woken = false;
    h.waiters.push_front(w);
    throw;
  }
}

// The cancellation handler of a parked acquire, in its call's slot: emitted
// on the call's strand, it may race a release on another thread; the lock
// and `woken` decide.
struct CancelWait {
  CancelWait(Host& host, Waiter& waiter) : h(host), w(waiter) {}
  void operator()(asio::cancellation_type_t /*type*/) {
    {
      std::lock_guard lock(h.mu);
      if (w.woken) return;
      w.woken = true;
      h.waiters.erase(w);
    }
    wake(h, w);
  }
  Host& h;
  Waiter& w;
};

}  // namespace

struct Client::Impl {
  Impl(asio::io_context& c, ClientOptions o) : ioc(c), options(o) {
    if (options.max_conns_per_host == 0) options.max_conns_per_host = 1;
  }

  asio::io_context& ioc;
  ClientOptions options;
  mutable ProfiledMutex hosts_mu;  // mutable: stats() reads every host's wait_ns
  std::unordered_map<std::string, std::unique_ptr<Host>> hosts;
  // The first hosts, published once each and never removed: a call finds
  // its host here without taking hosts_mu (a lab's services are a handful).
  static constexpr std::size_t kKnownHosts = 16;
  std::array<std::atomic<Host*>, kKnownHosts> known{};

  std::atomic<std::uint64_t> requests{0};
  std::atomic<std::uint64_t> acquires_waited{0};
  std::atomic<std::uint64_t> connections_opened{0};
  std::atomic<std::uint64_t> connections_reused{0};
  std::atomic<std::uint64_t> stale_discarded{0};
  std::atomic<std::uint64_t> transport_errors{0};
  std::atomic<std::uint64_t> cancelled{0};
  std::atomic<CallObserver*> observer{nullptr};  // --trace: see Client::set_observer

  // The host's pool, created on first use. A host name is resolved once,
  // blocking (the lab's services are literal loopback addresses).
  Host* host(const Url& url, std::string& error) {
    for (const std::atomic<Host*>& k : known) {
      Host* h = k.load(std::memory_order_acquire);
      if (h == nullptr) break;
      if (h->authority == url.authority) return h;
    }
    std::lock_guard lock(hosts_mu);
    auto it = hosts.find(std::string(url.authority));
    if (it != hosts.end()) return it->second.get();
    auto h = std::make_unique<Host>();
    h->authority = std::string(url.authority);
    h->loopback = is_loopback_host(url.host);
    const long long port = to_number(url.port, -1);
    if (port <= 0 || port > 65535) {
      error = "bad port in " + h->authority;
      return nullptr;
    }
    error_code ec;
    const auto address = asio::ip::make_address(std::string(url.host), ec);
    if (!ec) {
      h->endpoints.emplace_back(address, static_cast<unsigned short>(port));
    } else {
      tcp::resolver resolver(ioc);
      const auto results = resolver.resolve(std::string(url.host), std::string(url.port), ec);
      if (ec) {
        error = "resolve " + h->authority + ": " + ec.message();
        return nullptr;
      }
      for (const auto& r : results) h->endpoints.push_back(r.endpoint());
    }
    Host* raw = h.get();
    hosts.emplace(h->authority, std::move(h));
    for (std::atomic<Host*>& k : known) {  // the next free place, if any
      if (k.load(std::memory_order_relaxed) == nullptr) {
        k.store(raw, std::memory_order_release);
        break;
      }
    }
    return raw;
  }

  // A connection of `h` at hand: an idle one still usable, or a new
  // unconnected one when the host is under its limit; null when the pool is
  // full. Records the wait since `asked` when it has one.
  // REQUIRES: h.mu held.
  std::unique_ptr<Conn> take_locked(Host& h, std::int64_t asked) {
    std::unique_ptr<Conn> c;
    while (!h.idle.empty()) {
      c = std::move(h.idle.back());
      h.idle.pop_back();
      if (reusable(*c, asked)) {
        connections_reused.fetch_add(1, std::memory_order_relaxed);
        record_locked(h, now_ns() - asked);
        return c;
      }
      --h.open;
      stale_discarded.fetch_add(1, std::memory_order_relaxed);
    }
    if (h.open < options.max_conns_per_host) {
      c = std::make_unique<Conn>(ioc);  // before the place is taken: a throw takes none
      ++h.open;
      record_locked(h, now_ns() - asked);
      return c;
    }
    return nullptr;
  }

  // The common case, without a coroutine of its own: a connection at hand.
  std::unique_ptr<Conn> try_acquire(Host& h, std::int64_t asked) {
    std::lock_guard lock(h.mu);
    return take_locked(h, asked);
  }

  // A connection of `h` once one comes back or a place frees up, or null
  // when `stop` fired while waiting for one.
  // Parks `w` on `h` unless a connection or a place is at hand under the
  // lock that registers it (one released since try_acquire() must not be
  // missed): the coroutine then does not suspend at all.
  struct Park {
    Impl& impl;
    Host& h;
    Waiter& w;
    asio::cancellation_slot slot;
    std::int64_t asked;
    bool await_ready() noexcept { return false; }
    bool await_suspend(std::coroutine_handle<> c) {
      w.resume = c;
      std::lock_guard lock(h.mu);
      if (std::unique_ptr<Conn> conn = impl.take_locked(h, asked)) {
        w.conn = std::move(conn);
        w.granted = true;
        return false;
      }
      slot.emplace<CancelWait>(h, w);  // may throw: before the waiter is queued
      h.waiters.push_back(w);
      w.parked = true;
      impl.acquires_waited.fetch_add(1, std::memory_order_relaxed);
      return true;
    }
    void await_resume() noexcept {}
  };

  // A place granted to a parked acquire, until the call's Lease holds it:
  // whatever throws in between (a sample recorded, a connection made) frees
  // it, where it used to be lost for good.
  struct Grant {
    Grant(Impl& i, Host& host, std::unique_ptr<Conn> c, bool granted)
        : impl(i), h(host), conn(std::move(c)), held(granted) {}
    Grant(const Grant&) = delete;
    Grant& operator=(const Grant&) = delete;
    ~Grant() {
      if (held) impl.discard_quietly(h, std::move(conn));
    }
    std::unique_ptr<Conn> take() {
      held = false;
      return std::move(conn);
    }
    Impl& impl;
    Host& h;
    std::unique_ptr<Conn> conn;
    bool held;
  };

  // A connection of `h` once one comes back or a place frees up, or null
  // when `stop` fired while waiting for one. No timer, no shared state: the
  // waiter lives in this frame, a release resumes it with one post.
  Task<std::unique_ptr<Conn>> wait_for_conn(Host& h, Stop stop, std::int64_t asked) {
    Waiter w(stop.executor());
    co_await Park{*this, h, w, stop.slot(), asked};
    if (!w.parked) co_return std::move(w.conn);
    // Resumed on the strand, where emits happen: the handler goes before
    // another operation binds the slot. The fields below were written under
    // the lock before the resumption was posted.
    stop.slot().clear();
    Grant grant(*this, h, std::move(w.conn), w.granted);
    ORCHLAB_FAULT_POINT(pool_granted, nullptr);
    if (grant.held && !grant.conn) grant.conn = std::make_unique<Conn>(ioc);
    {
      // The wait ends here, with the call running again on its strand: the
      // io queue's latency of its resumption is part of what it waited.
      std::lock_guard lock(h.mu);
      record_locked(h, now_ns() - asked);
    }
    if (!grant.held) co_return nullptr;
    if (stop.requested()) {
      give_back(h, grant.take());
      co_return nullptr;
    }
    co_return grant.take();
  }

  // Returns a healthy connection: to the first waiter, else to the pool.
  // Throws only when the waiter's resumption could not be posted (see wake:
  // the connection is then back in the pool).
  void release(Host& h, std::unique_ptr<Conn> c) {
    c->idle_since_ns = now_ns();
    Waiter* w = nullptr;
    {
      std::lock_guard lock(h.mu);
      if (h.waiters.empty()) {
        pool_locked(h, c);
        return;
      }
      w = &h.waiters.pop_front();
      w->conn = std::move(c);
      w->granted = true;
      w->woken = true;
    }
    wake(h, *w);
  }

  // Closes a connection that must not be reused and frees its place (handed
  // to the first waiter, which opens a new one).
  void discard(Host& h, std::unique_ptr<Conn> c) {
    if (c) {
      error_code ignored;
      c->socket.shutdown(tcp::socket::shutdown_both, ignored);
      c->socket.close(ignored);
      c.reset();
    }
    Waiter* w = nullptr;
    {
      std::lock_guard lock(h.mu);
      if (h.waiters.empty()) {
        --h.open;
        return;
      }
      w = &h.waiters.pop_front();
      w->granted = true;
      w->woken = true;
    }
    wake(h, *w);
  }

  // discard() for a destructor: the place is freed whatever happens (a wake
  // that threw put everything back), and the exception has nowhere to go.
  void discard_quietly(Host& h, std::unique_ptr<Conn> c) noexcept {
    try {
      discard(h, std::move(c));
    } catch (...) {
    }
  }

  void give_back(Host& h, std::unique_ptr<Conn> c) {
    if (c->connected)
      release(h, std::move(c));
    else
      discard(h, std::move(c));
  }

  // Ends a call whose operation failed or was stopped. Terminal either way:
  // the connection may hold half a request or response, so it is closed.
  Reply fail(Host& h, std::unique_ptr<Conn> c, const error_code& ec, const Stop& stop,
             std::string_view step) {
    discard(h, std::move(c));
    if (stop.requested() || ec == asio::error::operation_aborted) {
      cancelled.fetch_add(1, std::memory_order_relaxed);
      return cancelled_reply();
    }
    transport_errors.fetch_add(1, std::memory_order_relaxed);
    return transport_reply(std::string(step) + ": " + ec.message());
  }

  /// A pool place held by one call: a connection still held when the call
  /// ends (an exception, or a path that forgot it) is closed and its place
  /// freed; the normal paths move it out to release() or discard() first.
  struct Lease {
    Lease(Impl& i, Host& host, std::unique_ptr<Conn> c) : impl(i), h(host), conn(std::move(c)) {}
    Lease(const Lease&) = delete;
    Lease& operator=(const Lease&) = delete;
    ~Lease() {
      if (conn) impl.discard_quietly(h, std::move(conn));
    }
    Impl& impl;
    Host& h;
    std::unique_ptr<Conn> conn;
  };

  // `url` by value: get() returns this coroutine without a frame of its own.
  Task<Reply> http_get(const Call& call, Url url, Stop stop) {
    requests.fetch_add(1, std::memory_order_relaxed);
    std::string error;
    Host* h = host(url, error);
    if (h == nullptr) {
      transport_errors.fetch_add(1, std::memory_order_relaxed);
      co_return transport_reply(std::move(error));
    }
    if (stop.requested()) {
      cancelled.fetch_add(1, std::memory_order_relaxed);
      co_return cancelled_reply();
    }
    // pool_wait_ns: from here until the call holds a connection.
    const std::int64_t asked = now_ns();
    std::unique_ptr<Conn> at_hand = try_acquire(*h, asked);
    if (!at_hand) at_hand = co_await wait_for_conn(*h, stop, asked);
    Lease lease(*this, *h, std::move(at_hand));
    std::unique_ptr<Conn>& c = lease.conn;
    if (!c) {
      cancelled.fetch_add(1, std::memory_order_relaxed);
      co_return cancelled_reply();
    }
    if (testing::after_acquire) testing::after_acquire();
    if (!c->connected) {
      auto [ec, ep] = co_await asio::async_connect(c->socket, h->endpoints, stop.token());
      if (ec || stop.requested()) co_return fail(*h, std::move(c), ec, stop, "connect");
      c->connected = true;
      connections_opened.fetch_add(1, std::memory_order_relaxed);
      error_code ignored;
      c->socket.set_option(tcp::no_delay(true), ignored);
      // For the reads below: a socket with nothing to read says so at once.
      c->socket.non_blocking(true, ignored);
    }

    // The request, formatted into the connection's own buffer.
    std::string& req = c->request;
    req.clear();
    req.append("GET ").append(url.target).append(" HTTP/1.1\r\nHost: ").append(h->authority);
    if (call.key != 0) {
      req.append("\r\nX-Orchlab-Key: ");
      append_number(req, call.key);
    }
    if (call.window) req.append("\r\nX-Orchlab-Phase: window");
    const std::int64_t deadline = call.deadline_ns != 0 ? call.deadline_ns : stop.deadline_ns();
    if (h->loopback && deadline >= 0) {  // deadline_header()'s answer, without its string
      req.append("\r\nX-Orchlab-Deadline-Ns: ");
      append_number(req, static_cast<std::uint64_t>(deadline));
    } else {
      const auto [name, value] = deadline_header(url.host, deadline);
      req.append("\r\n").append(name).append(": ").append(value);
    }
    req.append("\r\n\r\n");
    // Written at once: the socket is non-blocking and a request fits in its
    // send buffer. An asynchronous write would complete through a post to
    // the io_context, which with two io threads wakes the reactor (an
    // epoll_ctl per call); only what the socket did not take goes that way.
    error_code wec;
    std::size_t sent = c->socket.write_some(asio::buffer(req), wec);
    if (wec == asio::error::would_block || wec == asio::error::try_again) {
      wec = {};
      sent = 0;
    }
    if (!wec && sent < req.size()) {
      auto [ec, n] = co_await asio::async_write(c->socket, asio::buffer(req) + sent, stop.token());
      wec = ec;
    }
    if (wec || stop.requested()) co_return fail(*h, std::move(c), wec, stop, "write");

    ReplyParser parser;
    parser.body_limit(kMaxBodyBytes);
    parser.header_limit(kMaxHeaderBytes);
    parser.eager(true);
    // Read until the reply is complete, with async_read_some: the
    // descriptor stays registered (edge-triggered), where async_wait would
    // re-arm it with an epoll_ctl per call. Asio 1.81 tries each read at
    // once, which under load is often a recv that finds nothing yet; still
    // the cheaper of the two (docs/async_group.md, third pass). One read per
    // co_await, bound to the stop, and the stop checked after each: a
    // terminal emit that lands between two reads is not lost (see Stop).
    while (true) {
      error_code rec;
      while (c->input.size() > 0 && !parser.is_done()) {
        const std::size_t used = parser.put(c->input.data(), rec);
        c->input.consume(used);
        if (rec == http::error::need_more) {  // a header not complete yet
          rec = {};
          break;
        }
        if (rec) co_return fail(*h, std::move(c), rec, stop, "read");
        if (used == 0) break;
      }
      if (parser.is_done()) break;
      auto [read_ec, n] =
          co_await c->socket.async_read_some(c->input.prepare(16 * 1024), stop.token());
      if (read_ec == asio::error::eof) {
        // A reply framed by the end of the connection ends here; any other
        // is cut short.
        parser.put_eof(rec);
        if (rec || !parser.is_done())
          co_return fail(*h, std::move(c), rec ? rec : error_code(asio::error::eof), stop, "read");
        break;
      }
      if (read_ec) co_return fail(*h, std::move(c), read_ec, stop, "read");
      c->input.commit(n);
      // A reply that arrived in full is an answer even if the stop fired
      // just after: kept, with its healthy connection. One still partial
      // is abandoned.
      if (stop.requested()) {
        std::size_t used = 1;
        while (c->input.size() > 0 && !parser.is_done() && used > 0 && !rec) {
          used = parser.put(c->input.data(), rec);
          c->input.consume(used);
        }
        if (!parser.is_done())
          co_return fail(*h, std::move(c), asio::error::operation_aborted, stop, "read");
        break;
      }
    }
    const bool keep = parser.keep_alive() && c->input.size() == 0;
    const int status = parser.status;
    if (keep)
      release(*h, std::move(c));
    else
      discard(*h, std::move(c));
    co_return status_reply(status, std::move(parser.body));
  }

  // An inproc:// call with no delay_ms: the fast path of the
  // microbenchmarks, no timer.
  Task<Reply> inproc_now(Url url, Stop stop) {
    if (stop.requested()) co_return cancelled_reply();
    co_return status_reply(static_cast<int>(to_number(query_value(url.target, "status"), 200)), {});
  }

  Task<Reply> inproc_get(Url url, Stop stop) {
    // Stop's contract: a call stopped before it began does nothing.
    if (stop.requested()) {
      cancelled.fetch_add(1, std::memory_order_relaxed);
      co_return cancelled_reply();
    }
    const long long delay_ms = to_number(query_value(url.target, "delay_ms"), 0);
    asio::steady_timer timer(stop.executor(), std::chrono::milliseconds(delay_ms));
    auto [ec] = co_await timer.async_wait(stop.token());
    if (ec || stop.requested()) {
      cancelled.fetch_add(1, std::memory_order_relaxed);
      co_return cancelled_reply();
    }
    co_return status_reply(static_cast<int>(to_number(query_value(url.target, "status"), 200)), {});
  }
};

namespace testing {
std::function<void()> after_acquire;
}  // namespace testing

Client::Client(asio::io_context& ioc, ClientOptions options)
    : impl_(std::make_unique<Impl>(ioc, options)) {}

Client::~Client() = default;

namespace {
// An answer known before any I/O, in the Task get() returns.
Task<Reply> answer(Reply reply) { co_return reply; }

// A traced call: `inner` wrapped in a frame of its own, which stamps the
// reply when it comes and the task's end when the frame is destroyed (by the
// group's root of the call, once it has the reply, just before the census
// ends the call's task; an exception ends it with no reply).
Task<Reply> observed(CallObserver& observer, void* handle, Task<Reply> inner) {
  struct End {
    CallObserver& observer;
    void* handle;
    ~End() { observer.task_ended(handle); }
  } end{observer, handle};
  Reply reply = co_await std::move(inner);
  observer.call_replied(handle, reply);
  co_return reply;
}
}  // namespace

// Not a coroutine itself: it returns the coroutine that does the call, one
// frame per call instead of two (two when traced).
Task<Reply> Client::get(const Call& call, Stop stop) {
  if (CallObserver* observer = impl_->observer.load(std::memory_order_acquire)) [[unlikely]] {
    if (void* handle = observer->call_started(call))
      return observed(*observer, handle, unobserved_get(call, stop));
  }
  return unobserved_get(call, stop);
}

void Client::set_observer(CallObserver* observer) {
  impl_->observer.store(observer, std::memory_order_release);
}

Task<Reply> Client::unobserved_get(const Call& call, Stop stop) {
  Url url;
  if (!parse_url(call.url, url)) return answer(transport_reply("bad url: " + call.url));
  if (url.scheme == "http") return impl_->http_get(call, url, stop);
  if (url.scheme == "inproc") {
    if (url.target.find("delay_ms=") == std::string_view::npos) return impl_->inproc_now(url, stop);
    return impl_->inproc_get(url, stop);
  }
  return answer(transport_reply("unsupported scheme: " + std::string(url.scheme)));
}

ClientStats Client::stats() const {
  const Impl& i = *impl_;
  ClientStats s;
  s.requests = i.requests.load(std::memory_order_relaxed);
  s.acquires_waited = i.acquires_waited.load(std::memory_order_relaxed);
  s.connections_opened = i.connections_opened.load(std::memory_order_relaxed);
  s.connections_reused = i.connections_reused.load(std::memory_order_relaxed);
  s.stale_discarded = i.stale_discarded.load(std::memory_order_relaxed);
  s.transport_errors = i.transport_errors.load(std::memory_order_relaxed);
  s.cancelled = i.cancelled.load(std::memory_order_relaxed);
  std::lock_guard hosts_lock(i.hosts_mu);
  for (const auto& [authority, h] : i.hosts) {
    std::lock_guard lock(h->mu);
    s.wait_ns.merge(h->wait_ns);
  }
  return s;
}

void Client::reset_stats() {
  Impl& i = *impl_;
  for (auto* counter :
       {&i.requests, &i.acquires_waited, &i.connections_opened, &i.connections_reused,
        &i.stale_discarded, &i.transport_errors, &i.cancelled}) {
    counter->store(0, std::memory_order_relaxed);
  }
  std::lock_guard hosts_lock(i.hosts_mu);
  for (const auto& [authority, h] : i.hosts) {
    std::lock_guard lock(h->mu);
    h->wait_ns.clear();
  }
}

}  // namespace orchlab::async

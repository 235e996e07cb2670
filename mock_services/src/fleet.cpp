// The mock HTTP server: one listener per service, one session per
// connection, all on one io_context run by ServerOptions::threads threads.
// A delayed or hanging request costs a timer and a socket, never a thread.
#include "orchlab/mock/fleet.hpp"

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/write.hpp>
#include <boost/assert.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <charconv>
#include <cmath>
#include <functional>
#include <optional>
#include <stdexcept>
#include <thread>
#include <vector>

#include "orchlab/mock/profile.hpp"
#include "service.hpp"

namespace orchlab::mock {

namespace beast = boost::beast;  // from <boost/beast.hpp>
namespace http = beast::http;    // from <boost/beast/http.hpp>
namespace net = boost::asio;     // from <boost/asio.hpp>
using tcp = net::ip::tcp;        // from <boost/asio/ip/tcp.hpp>
using detail::Clock;
using detail::Outcome;
using detail::ServiceState;
using detail::TraceRecord;

namespace {

// A request body only ever carries a profile; nothing legitimate is larger.
constexpr std::size_t kMaxRequestBody = 1024 * 1024;
// Bytes a waiting session buffers from a pipelining client before it stops
// watching the socket (and stops noticing an abort) for that request.
constexpr std::size_t kMaxPipelined = 64 * 1024;
// slow_body sends its body in pieces this far apart (or one byte per piece
// at rates below 1 byte per tick).
constexpr auto kDribbleTick = std::chrono::milliseconds(20);
// Accepts kept pending per listener.
constexpr int kAcceptsInFlight = 16;
// How long a closing session keeps reading what the client still sends.
constexpr auto kLingerTime = std::chrono::milliseconds(500);
static_assert(kMaxHeaderBytes < kMaxPipelined, "a pipelined head must fit while waiting");

// Body bytes per write operation, each under the write timeout.
constexpr std::size_t kWriteRound = 1024 * 1024;

// The body every response carries: the same bytes, shared by all responses.
constexpr std::size_t kFillerBytes = 64 * 1024;
const std::string& filler() {
  static const std::string bytes = [] {
    std::string s(kFillerBytes, 'x');
    for (std::size_t i = 63; i < s.size(); i += 64) s[i] = '\n';
    return s;
  }();
  return bytes;
}

// What a malformed response looks like: no status line an HTTP parser accepts.
constexpr std::string_view kGarbage =
    "HTTP/1.1 ORCHLAB-GARBAGE\r\n\x01\x02\x03 this is not a header\r\n\r\n\xff\xfe";

struct Rejection {
  int status;
  std::string reason;
};

template <class T>
bool parse_integer(std::string_view text, T& out) {
  if (text.empty()) return false;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
  return ec == std::errc() && ptr == text.data() + text.size();
}

bool parse_double(std::string_view text, double& out) {
  if (text.empty()) return false;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
  return ec == std::errc() && ptr == text.data() + text.size() && std::isfinite(out);
}

std::string status_line(int code) {
  auto reason = http::obsolete_reason(http::int_to_status(static_cast<unsigned>(code)));
  if (reason.empty() || reason.front() == '<') reason = "Status";
  std::string line = "HTTP/1.1 ";
  line += std::to_string(code);
  line += ' ';
  line.append(reason.data(), reason.size());
  line += "\r\n";
  return line;
}

// A complete response with a small in-memory body.
std::string make_response(int code, std::string_view content_type, std::string_view body,
                          bool keep_alive) {
  std::string out = status_line(code);
  out += "Server: orchlab-mock\r\nContent-Type: ";
  out += content_type;
  out += "\r\nContent-Length: ";
  out += std::to_string(body.size());
  out += keep_alive ? "\r\n\r\n" : "\r\nConnection: close\r\n\r\n";
  out += body;
  return out;
}

std::string error_body(std::string_view reason) {
  return nlohmann::json{{"error", reason}}.dump() + "\n";
}

// The per-request decisions taken from the query string.
struct Overrides {
  std::optional<double> delay_ms;
  std::optional<int> status;
  std::optional<FaultKind> fault;
  bool no_fault = false;  // fault=none: the configured faults are skipped
  std::optional<std::size_t> body_bytes;
  std::optional<double> hang_ms;      // a hang's max_ms
  std::optional<double> bytes_per_s;  // a slow_body's rate
};

std::optional<Rejection> parse_query(std::string_view query, Overrides& out) {
  while (!query.empty()) {
    const auto amp = query.find('&');
    const auto pair = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view{} : query.substr(amp + 1);
    const auto eq = pair.find('=');
    const auto key = pair.substr(0, eq);
    const auto value = eq == std::string_view::npos ? std::string_view{} : pair.substr(eq + 1);
    auto bad = [&](std::string_view why) {
      return Rejection{400, std::string(key) + "=" + std::string(value) + ": " + std::string(why)};
    };
    // A decimal in [lo, hi] into `field`, or the reason it is not one.
    auto number = [&](std::optional<double>& field, double lo, double hi,
                      std::string_view range) -> std::optional<Rejection> {
      double v = 0;
      if (!parse_double(value, v)) return bad("not a number");
      if (!(v >= lo && v <= hi)) return bad("must be in " + std::string(range));
      field = v;
      return std::nullopt;
    };
    std::optional<Rejection> rejection;
    if (key == "delay_ms") {
      rejection = number(out.delay_ms, 0, kMaxDelayMs, "[0, 600000]");
    } else if (key == "hang_ms") {
      rejection = number(out.hang_ms, 0, kMaxDelayMs, "[0, 600000]");
    } else if (key == "bytes_per_s") {
      rejection = number(out.bytes_per_s, 1, 1e12, "[1, 1e12]");
    } else if (key == "status") {
      int v = 0;
      if (!parse_integer(value, v)) return bad("not an integer");
      if (v < 200 || v > 599) return bad("must be in [200, 599]");
      out.status = v;
    } else if (key == "fault") {
      if (value == "none") {
        out.no_fault = true;
      } else if (auto kind = parse_fault_kind(value)) {
        out.fault = kind;
      } else {
        return bad("unknown fault (status, hang, reset, close, slow_body, garbage, none)");
      }
    } else if (key == "body_bytes") {
      std::size_t v = 0;
      if (!parse_integer(value, v)) return bad("not a non-negative integer");
      if (v > kMaxBodyBytes) return bad("must be in [0, 16777216]");
      out.body_bytes = v;
    }
    if (rejection) return rejection;
    // Other keys are ignored: callers may add cache busters or labels.
  }
  return std::nullopt;
}

// POST /__trace's body, {"enabled": bool, "max_records": 1..kMaxTraceRecords}
// (max_records optional), or the reason it is not one.
std::optional<Rejection> parse_trace_request(std::string_view body, bool& enabled,
                                             std::size_t& max_records) {
  const auto j = nlohmann::json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) {
    return Rejection{400, "trace: body is not a JSON object"};
  }
  for (const auto& [key, value] : j.items()) {
    if (key == "enabled") {
      if (!value.is_boolean()) return Rejection{400, "trace.enabled: must be true or false"};
    } else if (key == "max_records") {
      if (!value.is_number_unsigned() || value.get<std::uint64_t>() < 1 ||
          value.get<std::uint64_t>() > kMaxTraceRecords) {
        return Rejection{400, "trace.max_records: must be an integer in [1, " +
                                  std::to_string(kMaxTraceRecords) + "]"};
      }
    } else {
      return Rejection{400, "trace." + key + ": unknown key (enabled, max_records)"};
    }
  }
  if (!j.contains("enabled")) return Rejection{400, "trace.enabled: required"};
  enabled = j["enabled"].get<bool>();
  max_records = j.value("max_records", kDefaultTraceRecords);
  return std::nullopt;
}

// The parameters of a fault forced by ?fault=: those of the first configured
// fault of that kind, else the FaultSpec defaults.
FaultSpec forced_fault(const ServiceConfig& profile, FaultKind kind) {
  for (const auto& f : profile.faults) {
    if (f.kind == kind) return f;
  }
  FaultSpec spec;
  spec.kind = kind;
  return spec;
}

// --- Session -------------------------------------------------------------------

// Where a connection and its current request are. Every change goes through
// Session::to(), which asserts that it is one of legal()'s (BOOST_ASSERT: on
// in the -O0 sanitizer trees and the fuzz tree, off in Release).
enum class Phase : std::uint8_t {
  connected,        // accepted; nothing read yet
  idle,             // between requests: waiting for a first byte (the idle timeout runs)
  reading,          // a request is arriving (the header timeout runs)
  replying,         // an uncounted reply (admin route, rejection) is being written
  delaying,         // a counted request waits out its latency; the socket is watched
  hanging,          // a hang fault waits out max_ms, then closes unanswered; watched
  responding,       // the response (or a garbage fault's bytes) is being written
  dribbling,        // slow_body: the head, then a piece per tick; watched
  aborted,          // the watch saw the client leave: what is pending unwinds to finish()
  write_timed_out,  // a write stalled past the write timeout: likewise
  finished,         // the counted request ended and was counted, once
  closing,          // lingering close: FIN sent, reading what the client still sends
};

constexpr bool legal(Phase from, Phase to) {
  using enum Phase;
  switch (from) {
    case connected:
      return to == idle;
    case idle:
      return to == reading || to == closing;
    case reading:
      // A counted request without a delay goes straight to its answer or
      // fault; reset and close end it at once.
      return to == replying || to == delaying || to == hanging || to == responding ||
             to == dribbling || to == finished || to == closing;
    case replying:
      return to == idle || to == reading || to == closing;
    case delaying:
      return to == responding || to == dribbling || to == finished || to == aborted;
    case hanging:
      return to == finished || to == aborted;
    case responding:  // not watched: a client leaving shows as a write error
      return to == write_timed_out || to == finished;
    case dribbling:
      return to == aborted || to == write_timed_out || to == finished;
    case aborted:  // a write timeout that fired as the client left still wins
      return to == write_timed_out || to == finished;
    case write_timed_out:
      return to == finished;
    case finished:
      return to == idle || to == reading || to == closing;
    case closing:
      return false;
  }
  return false;
}
// A request is counted once; a closing session serves nothing more; only a
// watched wait notices a client leaving.
static_assert(!legal(Phase::finished, Phase::finished) && !legal(Phase::aborted, Phase::aborted));
static_assert(!legal(Phase::closing, Phase::idle) && !legal(Phase::closing, Phase::reading));
static_assert(!legal(Phase::responding, Phase::aborted) && !legal(Phase::reading, Phase::aborted));

class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(tcp::socket&& socket, std::shared_ptr<ServiceState> service)
      : stream_(std::move(socket)),
        timer_(stream_.get_executor()),
        write_timer_(stream_.get_executor()),
        idle_timer_(stream_.get_executor()),
        service_(std::move(service)) {
    service_->connection_opened();
    // For timed_write's write at once: a full send buffer says so instead
    // of blocking the io thread.
    beast::error_code ignored;
    stream_.socket().non_blocking(true, ignored);
  }

  ~Session() {
    service_->connection_closed();
    service_->shared().connections.fetch_sub(1, std::memory_order_relaxed);
  }

  void run() {
    // Start on the session's executor (a strand when threads > 1).
    net::dispatch(stream_.get_executor(),
                  beast::bind_front_handler(&Session::do_read, shared_from_this()));
  }

 private:
  // Every phase change. The operations an entered phase starts must find
  // none of the previous request's still pending: a second read beside the
  // watch read was a heap-use-after-free (see do_close).
  void to(Phase next) {
    BOOST_ASSERT_MSG(legal(phase_, next), "an illegal phase change of a mock session");
    BOOST_ASSERT_MSG(!(next == Phase::idle || next == Phase::reading || next == Phase::closing ||
                       next == Phase::finished) ||
                         write_ == Write::none,
                     "a write still pending");
    BOOST_ASSERT_MSG(
        !(next == Phase::idle || next == Phase::reading || next == Phase::closing) || !watching_,
        "the watch read still pending");
    phase_ = next;
  }

  // -- reading a request --

  void do_read() {
    if (buffer_.size() == 0) {
      // Idle keep-alive wait: the idle timeout applies until a first byte.
      to(Phase::idle);
      idle_since_ = Clock::now();
      watch_idle();
      stream_.socket().async_read_some(
          buffer_.prepare(4096),
          beast::bind_front_handler(&Session::on_first_bytes, shared_from_this()));
      return;
    }
    read_request();
  }

  // The idle timeout without a timer armed and cancelled per request: one
  // timer per session, set for the idle wait under way when it is armed;
  // when it fires it re-arms itself for a later idle wait, ends one that has
  // lasted the timeout, and stops while a request is served (the next idle
  // wait arms it again). It holds the session weakly: a closed session does
  // not wait for it.
  void watch_idle() {
    if (idle_timer_armed_) return;
    idle_timer_armed_ = true;
    idle_timer_.expires_at(idle_since_ + service_->shared().idle_timeout);
    idle_timer_.async_wait([weak = weak_from_this()](beast::error_code ec) {
      if (auto self = weak.lock()) self->on_idle_timer(ec);
    });
  }

  void on_idle_timer(beast::error_code ec) {
    idle_timer_armed_ = false;
    if (ec || phase_ != Phase::idle) return;
    if (Clock::now() < idle_since_ + service_->shared().idle_timeout) return watch_idle();
    beast::error_code ignored;
    stream_.socket().cancel(ignored);  // on_first_bytes closes
  }

  void on_first_bytes(beast::error_code ec, std::size_t n) {
    if (ec) return do_close();  // idle timeout, EOF or reset between requests
    buffer_.commit(n);
    read_request();
  }

  void read_request() {
    to(Phase::reading);
    parser_.emplace();
    parser_->header_limit(kMaxHeaderBytes);
    parser_->body_limit(kMaxRequestBody);
    // Fast path: a request usually arrives in one segment, already in the
    // buffer; parsing it here saves an asynchronous round and a timer.
    beast::error_code ec;
    while (buffer_.size() > 0 && !parser_->is_done()) {
      const std::size_t used = parser_->put(buffer_.data(), ec);
      buffer_.consume(used);
      if (ec || used == 0) break;
    }
    if (ec == http::error::need_more) ec = {};
    if (ec || parser_->is_done()) return on_read(ec, 0);
    // The whole request must arrive within the header timeout: a slowloris
    // trickling one byte at a time is cut off here.
    stream_.expires_after(service_->shared().header_timeout);
    http::async_read(stream_, buffer_, *parser_,
                     beast::bind_front_handler(&Session::on_read, shared_from_this()));
  }

  void on_read(beast::error_code ec, std::size_t) {
    if (ec == http::error::end_of_stream) return do_close();
    if (ec == beast::error::timeout) {
      service_->count_header_timeout();
      return do_close();
    }
    if (ec == http::error::header_limit) {
      return reject(
          {431, "request header block over " + std::to_string(kMaxHeaderBytes) + " bytes"}, false);
    }
    if (ec == http::error::body_limit) return reject({413, "request body too large"}, false);
    if (ec.category() == http::make_error_code(http::error::bad_target).category()) {
      return reject({400, "malformed request: " + ec.message()}, false);
    }
    if (ec) return do_close();  // reset, operation_aborted, ...
    stream_.expires_never();
    handle_request();
  }

  // -- routing --

  void handle_request() {
    const auto& req = parser_->get();
    keep_alive_ = req.keep_alive();
    head_ = req.method() == http::verb::head;
    const std::string_view target = req.target();
    const auto qmark = target.find('?');
    const auto path = target.substr(0, qmark);
    const auto query =
        qmark == std::string_view::npos ? std::string_view{} : target.substr(qmark + 1);
    if (path.starts_with("/__")) return handle_admin(path);
    if (req.method() == http::verb::unknown) {
      return reject({501, "unknown method " + std::string(req.method_string())}, keep_alive_);
    }
    Overrides overrides;
    if (auto rejection = parse_query(query, overrides)) return reject(*rejection, keep_alive_);
    std::optional<std::uint64_t> key;
    std::optional<Clock::time_point> deadline;
    const auto now = Clock::now();
    // Only "window" counts apart; any other phase is an ordinary request.
    const auto phase = req.find("X-Orchlab-Phase");
    const bool window = phase != req.end() && phase->value() == "window";
    if (auto it = req.find("X-Orchlab-Key"); it != req.end()) {
      std::uint64_t v = 0;
      if (!parse_integer(it->value(), v))
        return reject({400, "X-Orchlab-Key: not a u64"}, keep_alive_);
      key = v;
    }
    if (auto it = req.find("X-Orchlab-Deadline-Ns"); it != req.end()) {
      std::int64_t ns = 0;
      if (!parse_integer(it->value(), ns)) {
        return reject({400, "X-Orchlab-Deadline-Ns: not an integer"}, keep_alive_);
      }
      deadline = Clock::time_point(std::chrono::nanoseconds(ns));
    }
    if (auto it = req.find("X-Orchlab-Timeout-Ms"); it != req.end()) {
      double ms = 0;
      if (!parse_double(it->value(), ms) || ms < 0 || ms > 1e9) {
        return reject({400, "X-Orchlab-Timeout-Ms: not a non-negative number"}, keep_alive_);
      }
      const auto relative = now + std::chrono::duration_cast<Clock::duration>(
                                      std::chrono::duration<double, std::milli>(ms));
      deadline = deadline ? std::min(*deadline, relative) : relative;
    }
    begin(now, key, deadline, window, overrides);
  }

  void handle_admin(std::string_view path) {
    service_->count_admin_request();
    const auto& req = parser_->get();
    const auto method = req.method();
    auto json_reply = [&](int code, const nlohmann::json& j) {
      write_small(make_response(code, "application/json", j.dump() + "\n", keep_alive_),
                  keep_alive_);
    };
    auto wrong_method = [&] {
      json_reply(405, {{"error", "method not allowed on " + std::string(path)}});
    };
    if (path == "/__stats") {
      if (method != http::verb::get) return wrong_method();
      return json_reply(200, service_->stats());
    }
    if (path == "/__metrics") {
      if (method != http::verb::get) return wrong_method();
      return write_small(make_response(200, "text/plain; version=0.0.4; charset=utf-8",
                                       service_->prometheus(), keep_alive_),
                         keep_alive_);
    }
    if (path == "/__reset") {
      if (method != http::verb::post) return wrong_method();
      service_->reset();
      return json_reply(200, {{"reset", true}});
    }
    if (path == "/__trace") {
      if (method == http::verb::get) return json_reply(200, service_->trace());
      if (method != http::verb::post) return wrong_method();
      bool enabled = false;
      std::size_t max_records = kDefaultTraceRecords;
      if (auto rejection = parse_trace_request(req.body(), enabled, max_records)) {
        return json_reply(rejection->status, {{"error", rejection->reason}});
      }
      service_->set_trace(enabled, max_records);
      return json_reply(200, {{"enabled", enabled}, {"max_records", max_records}});
    }
    if (path == "/__profile") {
      if (method == http::verb::get) return json_reply(200, to_json(*service_->profile()));
      if (method != http::verb::put) return wrong_method();
      auto body = nlohmann::json::parse(req.body(), nullptr, /*allow_exceptions=*/false);
      if (body.is_discarded())
        return json_reply(400, {{"error", "profile: body is not valid JSON"}});
      if (body.is_object()) {
        // The name identifies the service; it cannot change at run time.
        if (!body.contains("name")) body["name"] = service_->name();
        if (body["name"] != service_->name()) {
          return json_reply(
              400, {{"error", "profile.name: cannot change (is \"" + service_->name() + "\")"}});
        }
      }
      try {
        service_->set_profile(parse_service_config(body, "profile"));
      } catch (const ConfigError& e) {
        return json_reply(400, {{"error", e.what()}, {"field", e.field}, {"reason", e.reason}});
      }
      return json_reply(200, to_json(*service_->profile()));
    }
    json_reply(404, {{"error", "no admin route " + std::string(path)}});
  }

  void reject(const Rejection& rejection, bool keep_alive) {
    service_->count_bad_request();
    write_small(make_response(rejection.status, "application/json", error_body(rejection.reason),
                              keep_alive),
                keep_alive);
  }

  // A response that is not part of a counted request (admin, rejections).
  void write_small(std::string response, bool keep_alive) {
    to(Phase::replying);
    out_ = std::move(response);
    stream_.expires_after(service_->shared().write_timeout);  // a client that stops reading
    net::async_write(stream_, net::buffer(out_),
                     [self = shared_from_this(), keep_alive](beast::error_code ec, std::size_t) {
                       if (ec || !keep_alive) return self->do_close();
                       self->do_read();
                     });
  }

  // -- a counted request --

  void begin(Clock::time_point now, std::optional<std::uint64_t> key,
             std::optional<Clock::time_point> deadline, bool window, const Overrides& overrides) {
    auto plan = service_->begin_request(key, window);
    window_generation_ = plan.window_generation;
    trace_.generation = plan.trace_generation;
    const ServiceConfig& profile = *plan.profile;
    start_ = now;
    deadline_ = deadline;
    status_ = overrides.status.value_or(200);
    body_bytes_ = overrides.body_bytes.value_or(profile.body_bytes);
    index_ = plan.index;
    fault_.reset();
    if (overrides.fault) {
      fault_ = forced_fault(profile, *overrides.fault);
      if (overrides.status) fault_->code = *overrides.status;
    } else if (!overrides.no_fault) {
      if (const FaultSpec* f = pick_fault(profile, plan.index)) fault_ = *f;
    }
    if (fault_) {
      service_->count_fault(fault_->kind);
      // The query sets the parameters of whichever fault this request got.
      if (overrides.hang_ms) fault_->max_ms = *overrides.hang_ms;
      if (overrides.bytes_per_s) fault_->bytes_per_s = *overrides.bytes_per_s;
    }

    // A hang replaces the latency: nothing is sent, ever.
    const bool hang = fault_ && fault_->kind == FaultKind::hang;
    const double wait_ms = hang ? fault_->max_ms
                           : overrides.delay_ms
                               ? *overrides.delay_ms
                               : sample_latency_ms(profile.latency, profile.seed, plan.index);
    if (trace_.generation != 0) start_trace(wait_ms);
    const std::chrono::duration<double, std::milli> how_long(wait_ms);
    if (hang) return wait(how_long, Phase::hanging);
    if (wait_ms <= 0) return after_delay();
    wait(how_long, Phase::delaying);
  }

  // What a traced request drew; finish() adds how it ended.
  void start_trace(double wait_ms) {
    trace_.key = index_;  // a traced request has a key, and draws by it
    trace_.received = start_;
    trace_.deadline = deadline_;
    trace_.fault = fault_ ? std::optional(fault_->kind) : std::nullopt;
    trace_.intended_ms = wait_ms;
  }

  // Waits, keeping a read pending on the socket so that a client leaving is
  // noticed at once (the timer is then cancelled and the abort counted).
  // `phase`: delaying (a latency, whose accuracy is measured) or hanging.
  void wait(std::chrono::duration<double, std::milli> how_long, Phase phase) {
    to(phase);
    intended_ = std::chrono::duration_cast<Clock::duration>(how_long);
    armed_at_ = Clock::now();
    timer_.expires_after(intended_);
    timer_.async_wait(beast::bind_front_handler(&Session::on_wait, shared_from_this()));
    watch();
  }

  void on_wait(beast::error_code ec) {
    if (phase_ == Phase::aborted) return finish(Outcome::client_abort);
    if (ec) return;  // cancelled for shutdown
    if (phase_ == Phase::delaying) {
      service_->record_delay_error(intended_, Clock::now() - armed_at_);
    }
    // The watch read must end before anything else reads the socket.
    stop_watch([self = shared_from_this()] {
      if (self->phase_ == Phase::aborted) return self->finish(Outcome::client_abort);
      if (self->phase_ == Phase::hanging) {
        self->finish(Outcome::no_response);
        return self->do_close();
      }
      self->after_delay();
    });
  }

  void watch() {
    BOOST_ASSERT_MSG(!watching_, "a second read on the session's socket");
    BOOST_ASSERT_MSG(
        phase_ == Phase::delaying || phase_ == Phase::hanging || phase_ == Phase::dribbling,
        "a watch read outside a wait");
    if (buffer_.size() >= kMaxPipelined) return;
    watching_ = true;
    stream_.socket().async_read_some(
        buffer_.prepare(4096), beast::bind_front_handler(&Session::on_watch, shared_from_this()));
  }

  void on_watch(beast::error_code ec, std::size_t n) {
    watching_ = false;
    if (!ec) {
      buffer_.commit(n);  // pipelined bytes: kept for the next request
      if (!resume_) return watch();
    } else if (ec != net::error::operation_aborted && !resume_) {
      client_left();
      return;
    }
    if (resume_) std::exchange(resume_, nullptr)();
  }

  void stop_watch(std::function<void()> next) {
    if (!watching_) return next();
    resume_ = std::move(next);
    beast::error_code ignored;
    stream_.socket().cancel(ignored);
  }

  // The client closed or reset while the mock was waiting or dribbling.
  void client_left() {
    to(Phase::aborted);
    timer_.cancel();
    if (write_ != Write::none) {
      beast::error_code ignored;
      stream_.socket().cancel(ignored);
    }
  }

  void after_delay() {
    if (!fault_ || fault_->kind == FaultKind::status) {
      if (fault_) status_ = fault_->code;
      return respond();
    }
    beast::error_code ignored;
    switch (fault_->kind) {
      case FaultKind::reset:
        // SO_LINGER with a zero timeout makes close() send RST, not FIN.
        stream_.socket().set_option(net::socket_base::linger(true, 0), ignored);
        stream_.socket().close(ignored);
        return finish(Outcome::no_response);
      case FaultKind::close:
        stream_.socket().shutdown(tcp::socket::shutdown_both, ignored);
        stream_.socket().close(ignored);
        return finish(Outcome::no_response);
      case FaultKind::garbage:
        to(Phase::responding);
        out_.assign(kGarbage);
        return timed_write(net::buffer(out_), [self = shared_from_this()](beast::error_code) {
          // Not watched: a client that left shows as a write error.
          self->finish(self->phase_ == Phase::write_timed_out ? Outcome::write_timeout
                                                              : Outcome::no_response);
          self->do_close();
        });
      case FaultKind::slow_body:
        return respond_slowly();
      default:
        return respond();
    }
  }

  std::string response_head() const {
    std::string head = status_line(status_);
    head += "Server: orchlab-mock\r\nContent-Type: text/plain\r\nContent-Length: ";
    head += std::to_string(body_bytes_);
    head += "\r\nX-Orchlab-Index: ";
    head += std::to_string(index_);
    head += keep_alive_ ? "\r\n\r\n" : "\r\nConnection: close\r\n\r\n";
    return head;
  }

  void respond() {
    to(Phase::responding);
    out_ = response_head();
    // A HEAD answer announces the body's length but carries no body.
    body_left_ = head_ ? 0 : body_bytes_;
    write_round(true);
  }

  // The response goes out in rounds of at most kWriteRound body bytes, each
  // under the write timeout: a slow reader is fine, a stalled one is not.
  void write_round(bool with_head) {
    buffers_.clear();
    if (with_head) buffers_.push_back(net::buffer(out_));
    for (std::size_t round = 0; body_left_ > 0 && round < kWriteRound;) {
      const std::size_t n = std::min(body_left_, kFillerBytes);
      buffers_.push_back(net::buffer(filler().data(), n));
      body_left_ -= n;
      round += n;
    }
    timed_write(buffers_, beast::bind_front_handler(&Session::on_write, shared_from_this()));
  }

  void on_write(beast::error_code ec) {
    if (ec) {  // not watched: a client that left shows as a write error
      finish(phase_ == Phase::write_timed_out ? Outcome::write_timeout : Outcome::client_abort);
      return do_close();
    }
    if (body_left_ > 0) return write_round(false);
    finish(Outcome::completed);
    if (!keep_alive_) return do_close();
    do_read();
  }

  // Headers at once, then the body a piece per tick; the socket stays
  // watched so a client that gives up is noticed between pieces.
  void respond_slowly() {
    to(Phase::dribbling);
    const double rate = fault_->bytes_per_s;
    dribble_piece_ = static_cast<std::size_t>(
        std::max(1.0, rate * std::chrono::duration<double>(kDribbleTick).count()));
    dribble_interval_ = std::chrono::duration_cast<Clock::duration>(
        std::chrono::duration<double>(static_cast<double>(dribble_piece_) / rate));
    dribble_sent_ = 0;
    out_ = response_head();
    watch();
    timed_write(net::buffer(out_),
                beast::bind_front_handler(&Session::on_dribble_write, shared_from_this()));
  }

  void on_dribble_write(beast::error_code ec) {
    if (ec || phase_ == Phase::aborted) {
      return end_dribble(phase_ == Phase::write_timed_out ? Outcome::write_timeout
                                                          : Outcome::client_abort);
    }
    if (head_ || dribble_sent_ >= body_bytes_) return end_dribble(Outcome::completed);
    timer_.expires_after(dribble_interval_);
    timer_.async_wait(beast::bind_front_handler(&Session::on_dribble_tick, shared_from_this()));
  }

  void on_dribble_tick(beast::error_code ec) {
    if (phase_ == Phase::aborted) return end_dribble(Outcome::client_abort);
    if (ec) return;
    const std::size_t n = std::min({dribble_piece_, body_bytes_ - dribble_sent_, kFillerBytes});
    dribble_sent_ += n;
    timed_write(net::buffer(filler().data(), n),
                beast::bind_front_handler(&Session::on_dribble_write, shared_from_this()));
  }

  // Writes a counted request's response bytes. A write that has not ended
  // within the write timeout (the client stopped reading and the socket
  // buffers are full) is cancelled: the phase write_timed_out tells the handler.
  // The cancellation goes through a slot, not socket().cancel(): async_write
  // is a series of write_some calls, and an expiry that lands between two of
  // them finds no operation on the socket; the slot's state is checked before
  // the next one. It also leaves the watch read of a slow body alone.
  //
  // Most responses fit in the socket's send buffer: they are written here,
  // at once, with neither a timer nor an asynchronous round. Only what the
  // socket did not take goes out asynchronously, under the timeout.
  template <class Buffers, class Handler>
  void timed_write(const Buffers& buffers, Handler handler) {
    beast::error_code ec;
    const std::size_t size = beast::buffer_bytes(buffers);
    std::size_t written = size == 0 ? 0 : stream_.socket().write_some(buffers, ec);
    if (ec == net::error::would_block || ec == net::error::try_again) {
      ec = {};
      written = 0;
    }
    if (ec || written == size) {
      // The handler runs from the queue, as an asynchronous write's would:
      // run here, a pipelined request already in the buffer would be served
      // from inside this call, one level deeper per request.
      return net::post(stream_.get_executor(),
                       [handler = std::move(handler), ec]() mutable { handler(ec); });
    }
    beast::buffers_suffix<Buffers> rest(buffers);
    rest.consume(written);
    async_timed_write(rest, std::move(handler));
  }

  template <class Buffers, class Handler>
  void async_timed_write(const Buffers& buffers, Handler handler) {
    write_ = Write::pending;
    const std::uint64_t generation = ++write_generation_;
    write_timer_.expires_after(service_->shared().write_timeout);
    write_timer_.async_wait([self = shared_from_this(), generation](beast::error_code ec) {
      // An expiry queued just as its write ended must not hit the next one.
      if (ec || self->write_ != Write::pending || generation != self->write_generation_) return;
      self->write_ = Write::expired;
      self->write_cancel_.emit(net::cancellation_type::terminal);
    });
    net::async_write(
        stream_.socket(), buffers,
        net::bind_cancellation_slot(write_cancel_.slot(),
                                    [self = shared_from_this(), handler = std::move(handler)](
                                        beast::error_code ec, std::size_t) mutable {
                                      const bool expired = self->write_ == Write::expired;
                                      self->write_ = Write::none;
                                      self->write_timer_.cancel();
                                      // The timeout is the cause only if the write did end short;
                                      // it wins over a client leaving at the same time (it stopped
                                      // reading first).
                                      if (ec && expired) self->to(Phase::write_timed_out);
                                      handler(ec);
                                    }));
  }

  void end_dribble(Outcome outcome) {
    if (outcome != Outcome::completed) {
      finish(outcome);
      return do_close();
    }
    stop_watch([self = shared_from_this()] {
      const bool aborted = self->phase_ == Phase::aborted;
      self->finish(aborted ? Outcome::client_abort : Outcome::completed);
      if (aborted || !self->keep_alive_) return self->do_close();
      self->do_read();
    });
  }

  void finish(Outcome outcome) {
    // Counted once; a second end would break the /__stats identity.
    if (phase_ == Phase::finished) {
      BOOST_ASSERT_MSG(false, "a request finished twice");
      return;
    }
    to(Phase::finished);
    TraceRecord* trace = nullptr;
    if (trace_.generation != 0) {
      trace_.outcome = outcome;
      trace_.status = status_;
      trace = &trace_;
    }
    service_->finish_request(outcome, start_, deadline_, window_generation_, trace);
  }

  // Lingering close: send FIN, then read and discard what the client still
  // sends for a moment. Closing with unread input would make the kernel send
  // RST, and the client could lose the 400/431 it is owed.
  void do_close() {
    // The linger read below must not start while the watch read of a slow
    // body is still pending: two reads on one socket and one buffer, and the
    // second's prepare() could reallocate under the first (heap-use-after-
    // free). end_dribble's write timeout came here with the watch running.
    if (watching_) return stop_watch([self = shared_from_this()] { self->do_close(); });
    to(Phase::closing);
    beast::error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
    stream_.expires_after(kLingerTime);
    drain();
  }

  void drain() {
    BOOST_ASSERT_MSG(!watching_, "a second read on the session's socket");
    BOOST_ASSERT(phase_ == Phase::closing);
    buffer_.clear();
    stream_.async_read_some(buffer_.prepare(4096),
                            [self = shared_from_this()](beast::error_code ec, std::size_t n) {
                              self->drained_ += n;
                              if (ec || self->drained_ > kMaxPipelined)
                                return;  // socket closes with the session
                              self->drain();
                            });
  }

  beast::tcp_stream stream_;
  net::steady_timer timer_;
  net::steady_timer write_timer_;
  net::steady_timer idle_timer_;
  Clock::time_point idle_since_;
  net::cancellation_signal write_cancel_;  // bound to every timed_write
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  std::shared_ptr<ServiceState> service_;
  std::string out_;
  std::vector<net::const_buffer> buffers_;
  std::function<void()> resume_;

  Phase phase_ = Phase::connected;
  // Asynchronous operations in flight. Not part of the phase: they overlap
  // phases and outlive them. The watch read runs through delaying, hanging
  // and dribbling, and may still be pending when the request has finished
  // (a slow body cut off by the write timeout); the idle timer, armed once,
  // stays pending through the requests served meanwhile.
  bool watching_ = false;  // the watch read
  // The asynchronous part of a timed_write: pending, or pending with its
  // timeout fired and the cancellation on its way.
  enum class Write : std::uint8_t { none, pending, expired };
  Write write_ = Write::none;
  bool idle_timer_armed_ = false;  // idle_timer_'s wait
  std::uint64_t write_generation_ = 0;

  // The request being served. Properties of its head, not steps of its
  // life: any phase of a counted request may have either value.
  bool keep_alive_ = true;
  bool head_ = false;
  int status_ = 200;
  std::size_t body_bytes_ = 0;
  std::size_t body_left_ = 0;  // not yet handed to a write round
  std::uint64_t index_ = 0;
  std::optional<FaultSpec> fault_;
  Clock::time_point start_;
  std::optional<Clock::time_point> deadline_;
  std::uint64_t window_generation_ = 0;  // the plan's: 0 unless X-Orchlab-Phase: window
  TraceRecord trace_;                    // filled only while trace_.generation != 0
  Clock::duration intended_{};
  Clock::time_point armed_at_;
  std::size_t drained_ = 0;
  std::size_t dribble_piece_ = 1;
  std::size_t dribble_sent_ = 0;
  Clock::duration dribble_interval_{};
};

// --- Listener ------------------------------------------------------------------

class Listener : public std::enable_shared_from_this<Listener> {
 public:
  Listener(net::io_context& ioc, bool strands, tcp::endpoint endpoint,
           std::shared_ptr<ServiceState> service)
      : ioc_(ioc), strands_(strands), acceptor_(ioc), service_(std::move(service)) {
    beast::error_code ec;
    auto check = [&](const char* what) {
      if (!ec) return;
      // std::system_error, as promised by fleet.hpp; errno values map 1:1.
      throw std::system_error(std::error_code(ec.value(), std::generic_category()),
                              "orchlab-mock: service \"" + service_->name() + "\": " + what + " " +
                                  endpoint.address().to_string() + ":" +
                                  std::to_string(endpoint.port()));
    };
    acceptor_.open(endpoint.protocol(), ec);
    check("open");
    acceptor_.set_option(net::socket_base::reuse_address(true), ec);
    check("setsockopt");
    acceptor_.bind(endpoint, ec);
    check("bind");
    acceptor_.listen(net::socket_base::max_listen_connections, ec);
    check("listen");
  }

  unsigned short port() const { return acceptor_.local_endpoint().port(); }

  // Several accepts stay pending: one handler per turn of the io_context
  // queue, behind every ready request, could not keep up with thousands of
  // clients reconnecting after faults (the backlog filled, connects waited).
  void run() {
    for (int i = 0; i < kAcceptsInFlight; ++i) do_accept();
  }

 private:
  void do_accept() {
    // With one thread no strand is needed: handlers never run concurrently.
    auto executor = strands_ ? net::any_io_executor(net::make_strand(ioc_))
                             : net::any_io_executor(ioc_.get_executor());
    acceptor_.async_accept(executor,
                           beast::bind_front_handler(&Listener::on_accept, shared_from_this()));
  }

  void on_accept(beast::error_code ec, tcp::socket socket) {
    if (ec == net::error::operation_aborted) return;
    if (ec) {
      // Out of descriptors (EMFILE) and the like: back off instead of
      // spinning. A timer per retry: the accepts in flight must not cancel
      // each other's back-off.
      auto retry = std::make_shared<net::steady_timer>(ioc_, std::chrono::milliseconds(10));
      retry->async_wait([self = shared_from_this(), retry](beast::error_code e) {
        if (!e) self->do_accept();
      });
      return;
    }
    auto& shared = service_->shared();
    if (shared.connections.fetch_add(1, std::memory_order_relaxed) >= shared.max_connections) {
      shared.connections.fetch_sub(1, std::memory_order_relaxed);
      service_->connection_refused();
      beast::error_code ignored;
      socket.close(ignored);
    } else {
      beast::error_code ignored;
      socket.set_option(tcp::no_delay(true), ignored);
      std::make_shared<Session>(std::move(socket), service_)->run();
    }
    do_accept();
  }

  net::io_context& ioc_;
  bool strands_;
  tcp::acceptor acceptor_;
  std::shared_ptr<ServiceState> service_;
};

std::string url_host(const net::ip::address& address) {
  if (address.is_unspecified()) return address.is_v6() ? "[::1]" : "127.0.0.1";
  if (address.is_v6()) return "[" + address.to_string() + "]";
  return address.to_string();
}

}  // namespace

// --- MockFleet -------------------------------------------------------------------

struct MockFleet::Impl {
  FleetConfig config;
  std::vector<Endpoint> endpoints;
  std::vector<std::shared_ptr<ServiceState>> services;
  // Declared after the services so that it is destroyed first: destroying it
  // destroys every pending handler, hence every session, while the service
  // state they update still exists.
  std::optional<net::io_context> ioc;
  std::vector<std::shared_ptr<Listener>> listeners;
  std::vector<std::thread> threads;
  std::mutex stop_mu;
  bool stopped = false;

  std::shared_ptr<ServiceState> find(std::string_view name) const {
    for (const auto& s : services) {
      if (s->name() == name) return s;
    }
    throw std::out_of_range("orchlab-mock: no service \"" + std::string(name) + "\"");
  }
};

MockFleet::MockFleet(FleetConfig config, ServerOptions options) : impl_(std::make_unique<Impl>()) {
  if (options.threads < 1) throw ConfigError("threads", "must be >= 1");
  if (config.services.empty()) throw ConfigError("services", "must be a non-empty array");
  if (!options.allow_remote && !is_loopback_address(config.bind)) {
    throw ConfigError("bind", "\"" + config.bind +
                                  "\" is not a loopback address (127.0.0.0/8, ::1); pass "
                                  "--allow-remote to bind it");
  }
  const std::string bind = config.bind == "localhost" ? "127.0.0.1" : config.bind;
  boost::system::error_code ec;
  const auto address = net::ip::make_address(bind, ec);
  if (ec) throw ConfigError("bind", "is not an IP address: \"" + config.bind + "\"");

  auto shared = std::make_shared<detail::FleetShared>();
  shared->max_connections = options.max_connections;
  shared->header_timeout = options.header_timeout;
  shared->idle_timeout = options.idle_timeout;
  shared->write_timeout = options.write_timeout;

  auto& impl = *impl_;
  impl.config = std::move(config);
  impl.ioc.emplace(options.threads);
  // Bind everything before running anything: a failure leaves nothing behind.
  for (const auto& service_config : impl.config.services) {
    auto state = std::make_shared<ServiceState>(service_config, shared);
    auto listener = std::make_shared<Listener>(*impl.ioc, options.threads > 1,
                                               tcp::endpoint(address, service_config.port), state);
    state->set_port(listener->port());
    impl.endpoints.push_back(
        {service_config.name,
         "http://" + url_host(address) + ":" + std::to_string(listener->port()), listener->port()});
    impl.services.push_back(std::move(state));
    impl.listeners.push_back(std::move(listener));
  }
  for (auto& listener : impl.listeners) listener->run();
  for (int i = 0; i < options.threads; ++i) {
    impl.threads.emplace_back([&ioc = *impl.ioc] {
      for (;;) {
        try {
          ioc.run();
          return;
        } catch (const std::exception&) {
          // A handler must not throw; if one does, the server keeps serving.
        }
      }
    });
  }
}

std::unique_ptr<MockFleet> MockFleet::from_json(const nlohmann::json& config,
                                                ServerOptions options) {
  return std::make_unique<MockFleet>(parse_fleet_config(config, "config"), options);
}

MockFleet::~MockFleet() { stop(); }

const std::vector<Endpoint>& MockFleet::endpoints() const { return impl_->endpoints; }

std::string MockFleet::url(std::string_view service) const {
  for (const auto& e : impl_->endpoints) {
    if (e.name == service) return e.url;
  }
  throw std::out_of_range("orchlab-mock: no service \"" + std::string(service) + "\"");
}

nlohmann::json MockFleet::stats(std::string_view service) const {
  return impl_->find(service)->stats();
}

void MockFleet::reset() {
  for (auto& s : impl_->services) s->reset();
}

nlohmann::json MockFleet::trace(std::string_view service) const {
  return impl_->find(service)->trace();
}

void MockFleet::set_tracing(bool enabled, std::size_t max_records) {
  if (max_records < 1 || max_records > kMaxTraceRecords) {
    throw std::invalid_argument("orchlab-mock: max_records must be in [1, " +
                                std::to_string(kMaxTraceRecords) + "]");
  }
  for (auto& s : impl_->services) s->set_trace(enabled, max_records);
}

void MockFleet::stop() {
  std::lock_guard lock(impl_->stop_mu);
  if (impl_->stopped) return;
  impl_->stopped = true;
  impl_->ioc->stop();
  for (auto& t : impl_->threads) t.join();
  impl_->threads.clear();
  impl_->listeners.clear();
  // Destroys every pending handler and with it every session and socket.
  impl_->ioc.reset();
}

}  // namespace orchlab::mock

// Fuzz target: raw bytes as one client connection to a mock service. An
// in-process MockFleet (one io thread, one service: fixed 0 ms latency, a
// small body, every fault kind at a low probability, short timeouts) is
// started once; each input is written to a fresh loopback connection, the
// write side is shut, and the answer is read until the mock closes or the
// per-input budget runs out. Query overrides, deadline headers and the admin
// routes (PUT /__profile with a body too) are all reachable from the bytes;
// mock_request.dict holds their tokens.
//
// Beyond sanitizer reports, each input checks two promises of docs/mock.md:
// once the client has gone, every request it started ends (in_flight returns
// to 0), and the /__stats identity holds. Every 64 inputs a healthy request
// must still be answered.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>
#include <thread>

#include "orchlab/mock/fleet.hpp"

namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using nlohmann::json;
namespace mock = orchlab::mock;

// How long one input may wait for its answer: delay_ms=600000 ends here (the
// client closes, the mock counts an abort) and execs/s stay useful.
constexpr auto kReadBudget = 25ms;
// Reading stops after this much: body_bytes=16777216 costs no more than 1 KiB.
constexpr std::size_t kMaxRead = 256 * 1024;
// The mock's header and idle timeouts: short, so a session whose client
// stalls ends within a few inputs instead of holding on for seconds.
constexpr auto kIdleTimeout = 100ms;
// A request still in flight this long after its client left, or a healthy
// request unanswered this long, is a bug. Generous: the fuzzer runs niced
// on busy machines.
constexpr auto kStuckLimit = 10s;

// Low probabilities: most inputs take the plain path, yet every fault kind
// (and its parameters, for ?fault= to pick up) is in the profile.
const char* const kService = R"({"name": "svc", "body_bytes": 64,
  "latency": {"dist": "fixed", "ms": 0},
  "faults": [{"kind": "status", "code": 503, "probability": 0.02},
             {"kind": "hang", "max_ms": 5, "probability": 0.01},
             {"kind": "reset", "probability": 0.01},
             {"kind": "close", "probability": 0.01},
             {"kind": "slow_body", "bytes_per_s": 4000, "probability": 0.01},
             {"kind": "garbage", "probability": 0.01}]})";

// Never destroyed: the io thread must not outlive statics it uses (the
// shared body filler). An atexit handler registered after those exist stops
// it before they go.
mock::MockFleet* fleet = nullptr;
unsigned short port = 0;

int connect_to_mock() {
  for (int attempt = 0; attempt < 1000; ++attempt) {
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) std::abort();
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0) return fd;
    ::close(fd);
    // Ephemeral ports run out under a fast loop; they come back shortly.
    if (errno != EADDRNOTAVAIL && errno != EAGAIN && errno != ECONNREFUSED) break;
    std::this_thread::sleep_for(1ms);
  }
  std::perror("fuzz_mock_request: connect");
  std::abort();
}

// What came back for one connection, and how the exchange ended.
struct Reply {
  std::string bytes;
  const char* end = "budget";  // budget, eof, error, send error, size
  int error = 0;               // errno of an error
  Clock::duration took{};
};

// Sends `bytes`, shuts the write side, reads until close, error, kMaxRead
// or the budget.
Reply round_trip(std::string_view bytes, Clock::duration budget) {
  Reply r;
  const auto start = Clock::now();
  const int fd = connect_to_mock();
  while (!bytes.empty()) {
    const auto n = ::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL);
    if (n <= 0) {  // the mock may reset a connection mid-request
      r.end = "send error";
      r.error = errno;
      break;
    }
    bytes.remove_prefix(static_cast<std::size_t>(n));
  }
  ::shutdown(fd, SHUT_WR);
  char buf[16384];
  const auto end = start + budget;
  for (;;) {
    if (r.bytes.size() >= kMaxRead) {
      r.end = "size";
      break;
    }
    const auto left = std::chrono::ceil<std::chrono::milliseconds>(end - Clock::now()).count();
    if (left <= 0) break;
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left)) <= 0) break;
    const auto n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) {
      r.end = n == 0 ? "eof" : "error";
      r.error = n == 0 ? 0 : errno;
      break;
    }
    r.bytes.append(buf, static_cast<std::size_t>(n));
  }
  ::close(fd);
  r.took = Clock::now() - start;
  return r;
}

[[noreturn]] void fail(const char* what, const json& stats) {
  std::fprintf(stderr, "fuzz_mock_request: %s\n  stats: %s\n", what, stats.dump().c_str());
  std::abort();
}

void expect_answer(std::string_view request, std::string_view status_line) {
  // A connection that sends nothing within the idle timeout is closed, as
  // documented; a starved client thread can take that long between connect
  // and send. An empty close after that long is retried, nothing else.
  const auto idle_closed = [](const Reply& r) {
    return r.bytes.empty() && std::string_view(r.end) == "eof" && r.took >= kIdleTimeout;
  };
  Reply r = round_trip(request, kStuckLimit);
  for (int retry = 0; retry < 5 && idle_closed(r); ++retry) r = round_trip(request, kStuckLimit);
  if (r.bytes.rfind(status_line, 0) != 0) {
    std::fprintf(stderr, "fuzz_mock_request: %.*s\n  answered (%s, %s, after %.1f ms): %.200s\n",
                 static_cast<int>(request.size()), request.data(), r.end, std::strerror(r.error),
                 std::chrono::duration<double, std::milli>(r.took).count(), r.bytes.c_str());
    fail("the mock no longer answers a healthy request", fleet->stats("svc"));
  }
}

void restore_profile() {
  const std::string body = json::parse(kService).dump();
  expect_answer("PUT /__profile HTTP/1.1\r\nContent-Length: " + std::to_string(body.size()) +
                    "\r\nConnection: close\r\n\r\n" + body,
                "HTTP/1.1 200");
}

void expect_healthy() {
  expect_answer("GET /healthy?fault=none&delay_ms=0 HTTP/1.1\r\nConnection: close\r\n\r\n",
                "HTTP/1.1 200");
}

// Waits for in_flight to return to 0 and checks the identity
// requests = completed + client_aborts + no_response + bad_requests + in_flight.
void expect_settled() {
  const auto give_up = Clock::now() + kStuckLimit;
  json s;
  for (int spins = 0;; ++spins) {
    s = fleet->stats("svc");
    const auto u = [&](const char* key) { return s[key].get<std::uint64_t>(); };
    if (u("requests") != u("completed") + u("client_aborts") + u("no_response") +
                             u("bad_requests") + u("in_flight")) {
      fail("the /__stats identity does not hold", s);
    }
    if (u("in_flight") == 0) return;
    if (Clock::now() > give_up) fail("a request is still in flight after its client left", s);
    // The io thread usually ends the request within microseconds.
    if (spins < 100) {
      std::this_thread::yield();
    } else {
      std::this_thread::sleep_for(100us);
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  mock::ServerOptions options;
  options.threads = 1;
  options.header_timeout = kIdleTimeout;
  options.idle_timeout = kIdleTimeout;
  options.write_timeout = 20ms;
  fleet = mock::MockFleet::from_json({{"services", json::array({json::parse(kService)})}}, options)
              .release();
  port = fleet->endpoints().at(0).port;
  expect_healthy();  // constructs the mock's statics before the handler below
  std::atexit([] { fleet->stop(); });
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static std::uint64_t runs = 0;
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  // Request index 0 for every input: the faults drawn by index depend on the
  // input alone, so a crash replays.
  fleet->reset();
  round_trip(input, kReadBudget);
  expect_settled();
  // A PUT /__profile may have installed anything: later inputs start from
  // the same profile again.
  if (input.find("__profile") != std::string_view::npos) restore_profile();
  if (++runs % 64 == 0) expect_healthy();
  return 0;
}

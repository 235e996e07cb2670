// A tiny blocking HTTP/1.1 client on raw POSIX sockets for the mock tests:
// it can send anything (malformed lines, huge heads, half a request) and
// tells apart the ways a response can fail (EOF, RST, timeout, garbage).
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <thread>

namespace orchlab::mock::testing {

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

/// How a read of a response ended.
enum class ReadError { none, eof, reset, timeout, malformed };

struct Response {
  ReadError error = ReadError::none;
  int status = 0;
  std::map<std::string, std::string> headers;  ///< lower-case names
  std::string body;
  std::string raw;  ///< every byte received
};

/// Port of "http://127.0.0.1:PORT".
inline unsigned short port_of(std::string_view url) {
  return static_cast<unsigned short>(std::stoi(std::string(url.substr(url.rfind(':') + 1))));
}

inline std::string lower(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

/// One TCP connection to 127.0.0.1.
class Conn {
 public:
  /// `receive_buffer` > 0: SO_RCVBUF, set before connecting, so what a
  /// client that does not read can hold does not depend on the host's tuning.
  explicit Conn(unsigned short port, int receive_buffer = 0) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    if (receive_buffer > 0)
      ::setsockopt(fd_, SOL_SOCKET, SO_RCVBUF, &receive_buffer, sizeof receive_buffer);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    connected_ = ::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
    int one = 1;
    ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  }
  explicit Conn(std::string_view url, int receive_buffer = 0)
      : Conn(port_of(url), receive_buffer) {}
  ~Conn() { close(); }
  Conn(const Conn&) = delete;
  Conn& operator=(const Conn&) = delete;

  bool connected() const { return connected_; }

  bool send(std::string_view data) {
    while (!data.empty()) {
      const auto n = ::send(fd_, data.data(), data.size(), MSG_NOSIGNAL);
      if (n <= 0) return false;
      data.remove_prefix(static_cast<std::size_t>(n));
    }
    return true;
  }

  /// Sends a GET of `target` with extra header lines ("Name: v\r\n...").
  bool get(std::string_view target, std::string_view extra_headers = "") {
    std::string req = "GET " + std::string(target) + " HTTP/1.1\r\nHost: 127.0.0.1\r\n";
    req += extra_headers;
    req += "\r\n";
    return send(req);
  }

  /// Reads one response (Content-Length framed; `no_body` for a HEAD
  /// answer) or up to EOF/error/timeout.
  Response read_response(std::chrono::milliseconds timeout = 5000ms, bool no_body = false) {
    Response r;
    const auto deadline = Clock::now() + timeout;
    std::size_t head_end = std::string::npos;
    std::size_t need = std::string::npos;
    for (;;) {
      if (head_end == std::string::npos) {
        head_end = pending_.find("\r\n\r\n");
        if (head_end != std::string::npos) {
          if (!parse_head(pending_.substr(0, head_end), r)) {
            r.error = ReadError::malformed;
            r.raw = pending_;
            return r;
          }
          auto it = r.headers.find("content-length");
          need = head_end + 4 + (it == r.headers.end() || no_body ? 0 : std::stoul(it->second));
        }
      }
      if (need != std::string::npos && pending_.size() >= need) {
        r.body = pending_.substr(head_end + 4, need - head_end - 4);
        r.raw = pending_.substr(0, need);
        pending_.erase(0, need);
        return r;
      }
      const auto left =
          std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
      const auto status = wait_readable(left);
      if (status != ReadError::none) {
        r.error = status;
        r.raw = pending_;
        if (status == ReadError::eof && !pending_.empty() && head_end == std::string::npos) {
          r.error = ReadError::malformed;
        }
        return r;
      }
    }
  }

  /// Waits for EOF/RST (ReadError::eof/reset) or timeout; data is buffered.
  ReadError wait_closed(std::chrono::milliseconds timeout) {
    const auto deadline = Clock::now() + timeout;
    for (;;) {
      const auto left =
          std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
      const auto status = wait_readable(left);
      if (status != ReadError::none) return status;
    }
  }

  /// Closes with RST instead of FIN.
  void reset() {
    linger l{1, 0};
    ::setsockopt(fd_, SOL_SOCKET, SO_LINGER, &l, sizeof l);
    close();
  }

  void close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

 private:
  ReadError wait_readable(std::chrono::milliseconds left) {
    if (left.count() <= 0) return ReadError::timeout;
    pollfd p{fd_, POLLIN, 0};
    const int rc = ::poll(&p, 1, static_cast<int>(left.count()));
    if (rc == 0) return ReadError::timeout;
    if (rc < 0 && errno == EINTR) return ReadError::none;
    char buf[65536];
    const auto n = ::recv(fd_, buf, sizeof buf, 0);
    if (n == 0) return ReadError::eof;
    if (n < 0) return errno == ECONNRESET ? ReadError::reset : ReadError::eof;
    pending_.append(buf, static_cast<std::size_t>(n));
    return ReadError::none;
  }

  static bool parse_head(const std::string& head, Response& r) {
    if (head.rfind("HTTP/1.", 0) != 0 || head.size() < 12) return false;
    const auto sp = head.find(' ');
    if (sp == std::string::npos || sp + 4 > head.size()) return false;
    for (int i = 1; i <= 3; ++i) {
      if (!std::isdigit(static_cast<unsigned char>(head[sp + i]))) return false;
    }
    r.status = std::stoi(head.substr(sp + 1, 3));
    std::size_t pos = head.find("\r\n");
    while (pos != std::string::npos && pos + 2 < head.size()) {
      const auto next = head.find("\r\n", pos + 2);
      const auto line =
          head.substr(pos + 2, next == std::string::npos ? std::string::npos : next - pos - 2);
      const auto colon = line.find(':');
      if (colon == std::string::npos) return false;
      auto value = line.substr(colon + 1);
      while (!value.empty() && value.front() == ' ') value.erase(0, 1);
      r.headers[lower(line.substr(0, colon))] = value;
      pos = next;
    }
    return true;
  }

  int fd_ = -1;
  bool connected_ = false;
  std::string pending_;
};

/// One GET on a fresh connection.
inline Response http_get(std::string_view url, std::string_view target,
                         std::string_view extra_headers = "",
                         std::chrono::milliseconds timeout = 5000ms) {
  Conn c(url);
  if (!c.get(target, extra_headers)) {
    Response failed;
    failed.error = ReadError::reset;
    return failed;
  }
  return c.read_response(timeout);
}

/// Sends raw bytes on a fresh connection and reads one response.
inline Response http_raw(std::string_view url, std::string_view bytes,
                         std::chrono::milliseconds timeout = 5000ms) {
  Conn c(url);
  c.send(bytes);
  return c.read_response(timeout);
}

/// Polls `pred` until true or `timeout`; returns the last value.
template <class Pred>
bool eventually(Pred pred, std::chrono::milliseconds timeout = 5000ms) {
  const auto deadline = Clock::now() + timeout;
  while (Clock::now() < deadline) {
    if (pred()) return true;
    std::this_thread::sleep_for(5ms);
  }
  return pred();
}

}  // namespace orchlab::mock::testing

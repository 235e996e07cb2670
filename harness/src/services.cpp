#include "orchlab/harness/services.hpp"

#include <fcntl.h>
#include <httplib.h>
#include <poll.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <map>
#include <stdexcept>
#include <thread>

#include "orchlab/harness/system.hpp"
#include "orchlab/mock/fleet.hpp"

extern char** environ;

namespace orchlab::harness {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using Clock = std::chrono::steady_clock;

// Admin calls are tiny; a service that takes longer than this is treated as
// unreachable rather than stalling the run.
constexpr auto kAdminConnectTimeout = std::chrono::milliseconds(500);
constexpr auto kAdminReadTimeout = std::chrono::seconds(3);
// orchlab-mock binds and prints its URLs in milliseconds; this bounds a
// binary that hangs or is not orchlab-mock at all.
constexpr auto kReadyTimeout = std::chrono::seconds(10);
// SIGTERM stops the mock at once (exit 0); past this it is killed.
constexpr auto kTermGrace = std::chrono::seconds(3);
// How much of the child's stderr an error message quotes.
constexpr std::size_t kStderrTail = 2000;

httplib::Client admin_client(const std::string& origin) {
  httplib::Client cli(origin);
  cli.set_connection_timeout(kAdminConnectTimeout);
  cli.set_read_timeout(kAdminReadTimeout);
  cli.set_write_timeout(kAdminReadTimeout);
  cli.set_keep_alive(false);
  return cli;
}

std::optional<double> number(const json& doc, const char* key) {
  const auto it = doc.find(key);
  if (it == doc.end() || !it->is_number()) return std::nullopt;
  return it->get<double>();
}

std::optional<double> nested(const json& doc, const char* obj, const char* key) {
  const auto it = doc.find(obj);
  if (it == doc.end() || !it->is_object()) return std::nullopt;
  return number(*it, key);
}

// "exited with status 2", "was killed by signal 9 (Killed)".
std::string describe_wait_status(int status) {
  if (WIFEXITED(status)) return "exited with status " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) {
    const int sig = WTERMSIG(status);
    const char* name = ::strsignal(sig);
    return "was killed by signal " + std::to_string(sig) +
           (name ? " (" + std::string(name) + ")" : "");
  }
  return "ended (wait status " + std::to_string(status) + ")";
}

// The last `max` bytes of what the child wrote to its stderr file, trimmed.
std::string read_tail(int fd, std::size_t max) {
  if (fd < 0) return {};
  struct stat st {};
  if (::fstat(fd, &st) != 0 || st.st_size <= 0) return {};
  const auto size = static_cast<std::size_t>(st.st_size);
  const std::size_t from = size > max ? size - max : 0;
  std::string out(size - from, '\0');
  const ssize_t n = ::pread(fd, out.data(), out.size(), static_cast<off_t>(from));
  out.resize(n > 0 ? static_cast<std::size_t>(n) : 0);
  while (!out.empty() && (out.back() == '\n' || out.back() == ' ')) out.pop_back();
  return out;
}

// Closes an fd once, whatever path leaves the scope.
struct Fd {
  int fd = -1;
  Fd() = default;
  explicit Fd(int f) : fd(f) {}
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd() { reset(); }
  void reset(int f = -1) {
    if (fd >= 0) ::close(fd);
    fd = f;
  }
};

}  // namespace

std::optional<Origin> parse_service_url(const std::string& url, std::string& why) {
  constexpr std::string_view kScheme = "http://";
  const std::string_view u(url);
  if (u.rfind(kScheme, 0) != 0) {
    why = u.find("://") == std::string_view::npos ? "no scheme (write http://HOST:PORT/...)"
                                                  : "scheme is not http";
    return std::nullopt;
  }
  if (const auto bad = u.find_first_of(" \t\r\n#"); bad != std::string_view::npos) {
    why = u[bad] == '#' ? "a #fragment is never sent to a server" : "contains white space";
    return std::nullopt;
  }
  const std::string_view rest = u.substr(kScheme.size());
  const std::string_view authority = rest.substr(0, rest.find_first_of("/?"));
  if (authority.find('@') != std::string_view::npos) {
    why = "user info (user@host) is not supported";
    return std::nullopt;
  }
  Origin o;
  std::string_view host_text = authority;
  std::optional<std::string_view> port_text;  // set when a ':' follows the host
  if (!authority.empty() && authority.front() == '[') {
    const auto close = authority.find(']');
    if (close == std::string_view::npos) {
      why = "unclosed [ in the host";
      return std::nullopt;
    }
    host_text = authority.substr(1, close - 1);
    const std::string_view after = authority.substr(close + 1);
    if (!after.empty() && after.front() != ':') {
      why = "junk after the ] of the host";
      return std::nullopt;
    }
    if (!after.empty()) port_text = after.substr(1);
  } else if (const auto colon = authority.find(':'); colon != std::string_view::npos) {
    host_text = authority.substr(0, colon);
    port_text = authority.substr(colon + 1);
  }
  if (host_text.empty()) {
    why = "no host";
    return std::nullopt;
  }
  o.host = std::string(host_text);
  o.origin = authority.front() == '[' ? "http://[" + o.host + "]" : "http://" + o.host;
  o.port = 80;
  if (port_text) {
    int port = 0;
    const auto [ptr, ec] =
        std::from_chars(port_text->data(), port_text->data() + port_text->size(), port);
    if (port_text->empty() || ec != std::errc() || ptr != port_text->data() + port_text->size() ||
        port < 1 || port > 65535) {
      why = "port \"" + std::string(*port_text) + "\" is not a number in 1..65535";
      return std::nullopt;
    }
    o.port = port;
  }
  o.origin += ":" + std::to_string(o.port);
  return o;
}

MockBinary find_mock_binary(const std::string& flag) {
  if (!flag.empty()) {
    if (!sys::executable_file(flag))
      throw std::invalid_argument("--mock-binary " + flag + ": not an executable file");
    return {flag, "--mock-binary"};
  }
  if (const char* env = std::getenv("ORCHLAB_MOCK"); env != nullptr && *env != '\0') {
    if (!sys::executable_file(env))
      throw std::invalid_argument(std::string("ORCHLAB_MOCK=") + env + ": not an executable file");
    return {env, "ORCHLAB_MOCK"};
  }
  // The build tree puts orchlab in harness/ and orchlab-mock in mock_services/.
  const fs::path self = sys::executable(nullptr);
  const std::string sibling =
      (self.parent_path() / ".." / "mock_services" / "orchlab-mock").lexically_normal().string();
  if (self.is_absolute() && sys::executable_file(sibling)) return {sibling, "next to orchlab"};
  if (auto on_path = sys::find_on_path("orchlab-mock")) return {*on_path, "PATH"};
  throw std::runtime_error(
      "orchlab-mock not found: no --mock-binary, ORCHLAB_MOCK is not set, not at " + sibling +
      ", not on PATH (or run with --services inprocess)");
}

struct Services::Fleet {
  std::unique_ptr<mock::MockFleet> fleet;
};

// The orchlab-mock child: its pid until it is reaped, the read end of its
// stdout (kept open while it lives, so that a late write of it never meets a
// closed pipe) and the anonymous file its stderr goes to.
struct Services::Child {
  pid_t pid = -1;
  Fd out;
  Fd err;
  MockBinary binary;
  std::optional<int> wait_status;  // set once reaped

  std::string name() const {
    return "orchlab-mock (pid " + std::to_string(pid) + ", " + binary.path + ", found via " +
           binary.found_by + ")";
  }

  std::string stderr_suffix() const {
    const auto tail = read_tail(err.fd, kStderrTail);
    return tail.empty() ? "" : "; its stderr: " + tail;
  }

  // Reaps the child if it has ended; true when it has (now or before).
  bool poll_ended() {
    if (wait_status) return true;
    int status = 0;
    pid_t r;
    do r = ::waitpid(pid, &status, WNOHANG);
    while (r < 0 && errno == EINTR);
    if (r == pid) wait_status = status;
    if (r < 0 && errno == ECHILD) wait_status = 0;  // reaped elsewhere: nothing left to end
    return wait_status.has_value();
  }

  // SIGTERM, a bounded wait, then SIGKILL: the run never hangs on its mock.
  void terminate() {
    if (pid <= 0 || poll_ended()) return;
    ::kill(pid, SIGTERM);
    const auto until = Clock::now() + kTermGrace;
    while (!poll_ended() && Clock::now() < until)
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    if (!poll_ended()) {
      ::kill(pid, SIGKILL);
      int status = 0;
      while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
      }
      wait_status = status;
    }
  }

  ~Child() { terminate(); }
};

Services::~Services() {
  if (fleet_) fleet_->fleet->stop();
  child_.reset();  // ends the child before the fds it writes to are closed
}

bool Services::in_process() const { return fleet_ != nullptr; }

std::optional<pid_t> Services::child_pid() const {
  if (!child_) return std::nullopt;
  return child_->pid;
}

std::optional<std::string> Services::child_failure() {
  if (!child_ || child_->wait_status || !child_->poll_ended()) return std::nullopt;
  return child_->name() + " " + describe_wait_status(*child_->wait_status) +
         child_->stderr_suffix();
}

std::unique_ptr<Services> Services::inprocess(const json& service_objects) {
  std::unique_ptr<Services> s(new Services());
  s->fleet_ = std::make_unique<Fleet>();
  // One io_context thread: on a small machine the load generator needs the
  // other cores, and the mock never blocks a thread on a delay or a hang.
  mock::ServerOptions options;
  options.threads = 1;
  s->fleet_->fleet = mock::MockFleet::from_json(
      json{{"bind", "127.0.0.1"}, {"services", service_objects}}, options);
  // Calls go round-robin in the scenario's service order.
  for (const auto& obj : service_objects) {
    const auto name = obj.at("name").get<std::string>();
    const auto base = s->fleet_->fleet->url(name);
    s->origins_.push_back(base);
    s->urls_.push_back(base + "/orchestrate");
    s->names_.push_back(name);
  }
  return s;
}

std::unique_ptr<Services> Services::embedded(const json& service_objects,
                                             const MockBinary& binary) {
  // The config goes through a private temp file, removed once the child has
  // read it (it reads it before it prints anything).
  const json config{{"bind", "127.0.0.1"}, {"services", service_objects}};
  const char* tmpdir = std::getenv("TMPDIR");
  std::string config_path =
      std::string(tmpdir && *tmpdir ? tmpdir : "/tmp") + "/orchlab-mock-XXXXXX.json";
  {
    Fd file(::mkstemps(config_path.data(), 5));
    if (file.fd < 0)
      throw std::runtime_error("cannot create a config file for orchlab-mock in " +
                               fs::path(config_path).parent_path().string() + ": " +
                               std::strerror(errno));
    const std::string text = config.dump();
    std::size_t done = 0;
    while (done < text.size()) {
      const ssize_t n = ::write(file.fd, text.data() + done, text.size() - done);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        ::unlink(config_path.c_str());
        throw std::runtime_error("cannot write " + config_path + ": " + std::strerror(errno));
      }
      done += static_cast<std::size_t>(n);
    }
  }
  struct Unlink {
    std::string path;
    ~Unlink() { ::unlink(path.c_str()); }
  } unlink_config{config_path};

  std::unique_ptr<Services> s(new Services());
  s->child_ = std::make_unique<Child>();
  Child& child = *s->child_;
  child.binary = binary;

  // Everything the child needs is prepared here: between fork and exec a
  // copy of a multithreaded process may only make async-signal-safe calls
  // (no allocation).
  int out_pipe[2], exec_pipe[2];
  if (::pipe2(out_pipe, O_CLOEXEC) != 0)
    throw std::runtime_error(std::string("pipe: ") + std::strerror(errno));
  Fd out_write(out_pipe[1]);
  child.out.reset(out_pipe[0]);
  if (::pipe2(exec_pipe, O_CLOEXEC) != 0)
    throw std::runtime_error(std::string("pipe: ") + std::strerror(errno));
  Fd exec_read(exec_pipe[0]), exec_write(exec_pipe[1]);
  // stderr goes to an anonymous file: it never blocks the child, and an
  // error can quote it. Without memfd the child shares our stderr.
  child.err.reset(::memfd_create("orchlab-mock-stderr", MFD_CLOEXEC));
  Fd devnull(::open("/dev/null", O_RDONLY | O_CLOEXEC));
  std::vector<std::string> args{binary.path, "--config", config_path, "--threads", "1"};
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  rlimit files{};
  ::getrlimit(RLIMIT_NOFILE, &files);
  const int max_fd = static_cast<int>(std::min<rlim_t>(files.rlim_cur, 1 << 20));
  const pid_t parent = ::getpid();

  const pid_t pid = ::fork();
  if (pid < 0)
    throw std::runtime_error(std::string("fork for orchlab-mock: ") + std::strerror(errno));
  if (pid == 0) {
    // Ends with us if we are killed outright (no destructor runs then).
    ::prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (::getppid() != parent) ::_exit(127);
    // Its own process group: a Ctrl-C in the terminal reaches orchlab only,
    // which then finishes the cell and ends the child in order.
    ::setpgid(0, 0);
    // Default signal handling and an empty mask (exec keeps ignored signals
    // and the mask); SIGPIPE may stay ignored.
    struct sigaction dfl {};
    dfl.sa_handler = SIG_DFL;
    for (int sig = 1; sig < NSIG; ++sig)
      if (sig != SIGPIPE && sig != SIGKILL && sig != SIGSTOP) ::sigaction(sig, &dfl, nullptr);
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    if (devnull.fd >= 0) ::dup2(devnull.fd, STDIN_FILENO);
    ::dup2(out_pipe[1], STDOUT_FILENO);
    if (child.err.fd >= 0) ::dup2(child.err.fd, STDERR_FILENO);
    // None of our other descriptors (the client's sockets, files) goes along.
    if (::close_range(3, ~0U, CLOSE_RANGE_CLOEXEC) != 0)
      for (int fd = 3; fd < max_fd; ++fd) ::fcntl(fd, F_SETFD, FD_CLOEXEC);
    ::execve(argv[0], argv.data(), environ);
    const int e = errno;
    [[maybe_unused]] auto n = ::write(exec_pipe[1], &e, sizeof e);
    ::_exit(127);
  }
  child.pid = pid;
  out_write.reset();
  exec_write.reset();
  devnull.reset();

  // exec succeeded when the close-on-exec pipe closes without a word.
  int exec_errno = 0;
  ssize_t n;
  do n = ::read(exec_read.fd, &exec_errno, sizeof exec_errno);
  while (n < 0 && errno == EINTR);
  if (n == static_cast<ssize_t>(sizeof exec_errno)) {
    child.terminate();
    throw std::runtime_error("cannot run orchlab-mock " + binary.path + " (found via " +
                             binary.found_by + "): " + std::strerror(exec_errno));
  }

  // Read its stdout up to {"ready":true}, bounded.
  std::map<std::string, std::string> urls;
  std::string printed, line_buf;
  bool ready = false;
  const auto until = Clock::now() + kReadyTimeout;
  auto fail = [&](const std::string& what) {
    child.terminate();
    std::string msg = child.name() + " " + what;
    if (!printed.empty()) msg += "; it printed: " + printed;
    throw std::runtime_error(msg + child.stderr_suffix());
  };
  while (!ready) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(until - Clock::now()).count();
    if (left <= 0)
      fail("printed no {\"ready\":true} within " + std::to_string(kReadyTimeout.count()) + " s");
    pollfd p{child.out.fd, POLLIN, 0};
    const int r = ::poll(&p, 1, static_cast<int>(left));
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) continue;
    char buf[4096];
    const ssize_t got = ::read(child.out.fd, buf, sizeof buf);
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) {
      // It closed its stdout: it is ending. Give it a moment to be reaped.
      const auto reap_until = Clock::now() + std::chrono::seconds(1);
      while (!child.poll_ended() && Clock::now() < reap_until)
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
      fail(child.wait_status ? describe_wait_status(*child.wait_status) + " before it was ready"
                             : "closed its stdout before it was ready");
    }
    if (printed.size() < kStderrTail) printed.append(buf, static_cast<std::size_t>(got));
    line_buf.append(buf, static_cast<std::size_t>(got));
    for (auto nl = line_buf.find('\n'); nl != std::string::npos; nl = line_buf.find('\n')) {
      const std::string line = line_buf.substr(0, nl);
      line_buf.erase(0, nl + 1);
      const json doc = json::parse(line, nullptr, /*allow_exceptions=*/false);
      if (doc.is_object() && doc.value("ready", false)) {
        ready = true;
        break;
      }
      if (doc.is_object() && doc.contains("service") && doc.contains("url") &&
          doc["service"].is_string() && doc["url"].is_string()) {
        urls[doc["service"].get<std::string>()] = doc["url"].get<std::string>();
      } else {
        fail("printed a line that is not {\"service\":..,\"url\":..}: " + line);
      }
    }
  }
  // Calls go round-robin in the scenario's service order.
  for (const auto& obj : service_objects) {
    const auto name = obj.at("name").get<std::string>();
    const auto it = urls.find(name);
    if (it == urls.end()) fail("was ready without a URL for service \"" + name + "\"");
    s->origins_.push_back(it->second);
    s->urls_.push_back(it->second + "/orchestrate");
    s->names_.push_back(name);
  }
  return s;
}

std::unique_ptr<Services> Services::remote(std::vector<std::string> urls) {
  std::unique_ptr<Services> s(new Services());
  for (const auto& url : urls) {
    std::string why;
    const auto origin = parse_service_url(url, why);
    if (!origin) throw std::invalid_argument("service URL \"" + url + "\": " + why);
    s->origins_.push_back(origin->origin);
    s->names_.push_back(url);
  }
  s->urls_ = std::move(urls);
  return s;
}

void Services::reset() {
  for (const auto& origin : origins_) {
    auto cli = admin_client(origin);
    cli.Post("/__reset");
  }
}

std::vector<StatsReading> Services::stats() const {
  std::vector<StatsReading> out;
  for (std::size_t i = 0; i < origins_.size(); ++i) {
    StatsReading r;
    r.service = names_[i];
    auto cli = admin_client(origins_[i]);
    auto res = cli.Get("/__stats");
    if (!res) {
      r.error = "no answer: " + httplib::to_string(res.error());
    } else if (res->status != 200) {
      r.error = "HTTP " + std::to_string(res->status);
    } else {
      auto doc = json::parse(res->body, nullptr, /*allow_exceptions=*/false);
      if (doc.is_object())
        r.doc = std::move(doc);
      else
        r.error = "an answer that is not a JSON object";
    }
    out.push_back(std::move(r));
  }
  return out;
}

std::vector<bool> Services::set_tracing(bool on, std::size_t max_records) const {
  std::vector<bool> out;
  const std::string body = json{{"enabled", on}, {"max_records", max_records}}.dump();
  for (const auto& origin : origins_) {
    auto cli = admin_client(origin);
    auto res = cli.Post("/__trace", body, "application/json");
    bool mock = false;
    if (res && res->status == 200) {
      const auto doc = json::parse(res->body, nullptr, /*allow_exceptions=*/false);
      mock = doc.is_object() && doc.value("enabled", !on) == on;
    }
    out.push_back(mock);
  }
  return out;
}

std::vector<std::optional<nlohmann::json>> Services::trace() const {
  std::vector<std::optional<nlohmann::json>> out;
  for (const auto& origin : origins_) {
    auto cli = admin_client(origin);
    auto res = cli.Get("/__trace");
    std::optional<json> doc;
    if (res && res->status == 200) {
      auto d = json::parse(res->body, nullptr, /*allow_exceptions=*/false);
      if (d.is_object() && d.contains("records") && d["records"].is_array()) doc = std::move(d);
    }
    out.push_back(std::move(doc));
  }
  return out;
}

std::optional<ServerTotals> server_delta(const std::vector<StatsReading>& before,
                                         const std::vector<StatsReading>& after) {
  if (after.empty()) return std::nullopt;
  // Every field starts known; a service that cannot give it makes the sum
  // unknown, since a total missing a part is not a total.
  ServerTotals t;
  t.requests = t.client_aborts = t.completed_after_deadline = t.max_in_flight =
      t.max_open_connections = 0;
  t.work_past_deadline_ms = 0.0;
  // The abort lag is a quantile, not a total: the worst service's p99 among
  // those that saw an abort. Signed: negative when aborts came before the
  // deadline (a sibling's error cancelled them). Null when no service saw an
  // abort (no lag to speak of) or one could not say.
  bool lag_known = true;
  for (std::size_t i = 0; i < after.size(); ++i) {
    const StatsReading& a = after[i];
    if (!a.doc) {
      ++t.unreachable;
      t.requests.reset();
      t.client_aborts.reset();
      t.completed_after_deadline.reset();
      t.max_in_flight.reset();
      t.max_open_connections.reset();
      t.work_past_deadline_ms.reset();
      lag_known = false;
      t.notes.push_back("server_* fields are null where service " + a.service +
                        " did not report /__stats (" + a.error + ")");
      continue;
    }
    // The counts are the window's (the calls marked X-Orchlab-Phase: window),
    // the same orchestrations as `iterations`; a service without "window"
    // totals (not orchlab-mock, or an older one) cannot give them.
    const auto window_of = [](const json& doc) -> const json* {
      const auto it = doc.find("window");
      return it != doc.end() && it->is_object() ? &*it : nullptr;
    };
    const json* w = window_of(*a.doc);
    const json* b = i < before.size() && before[i].doc ? window_of(*before[i].doc) : nullptr;
    if (!w) {
      t.requests.reset();
      t.client_aborts.reset();
      t.completed_after_deadline.reset();
      t.work_past_deadline_ms.reset();
      lag_known = false;
      t.notes.push_back(
          "server_requests, server_client_aborts, server_completed_after_deadline, "
          "server_work_past_deadline_ms and server_abort_lag_p99_ms are null where service " +
          a.service +
          " answered /__stats without \"window\" totals (the calls of the measured window, "
          "X-Orchlab-Phase: window): its counts would include the warm-up's calls");
    }
    auto lacks = [&](const char* key, const char* field) {
      t.notes.push_back(std::string(field) + " is null where service " + a.service +
                        " answered /__stats without \"" + key + "\"");
    };
    auto counter = [&](auto& sum, const char* key, const char* field) {
      if (!w) return;
      const auto x = number(*w, key);
      if (!x) {
        lacks((std::string("window.") + key).c_str(), field);
        sum.reset();
        return;
      }
      if (!sum) return;
      const double y = b ? number(*b, key).value_or(0.0) : 0.0;
      *sum += static_cast<std::remove_reference_t<decltype(*sum)>>(*x >= y ? *x - y : *x);
    };
    counter(t.requests, "requests", "server_requests");
    counter(t.client_aborts, "client_aborts", "server_client_aborts");
    counter(t.completed_after_deadline, "completed_after_deadline",
            "server_completed_after_deadline");
    counter(t.work_past_deadline_ms, "work_past_deadline_ms", "server_work_past_deadline_ms");
    if (w) {
      const auto lag_count = nested(*w, "abort_lag_ms", "count");
      const auto lag = nested(*w, "abort_lag_ms", "p99");
      if (!lag_count || (*lag_count > 0 && !lag)) {
        lacks("window.abort_lag_ms.p99", "server_abort_lag_p99_ms");
        lag_known = false;
      } else if (*lag_count > 0) {
        t.abort_lag_p99_ms = t.abort_lag_p99_ms ? std::max(*t.abort_lag_p99_ms, *lag) : *lag;
      }
    }
    if (const auto busiest = number(*a.doc, "max_in_flight")) {
      if (t.max_in_flight)
        t.max_in_flight = std::max(*t.max_in_flight, static_cast<std::uint64_t>(*busiest));
    } else {
      lacks("max_in_flight", "server_max_in_flight");
      t.max_in_flight.reset();
    }
    // Not a window count: every connection since the reset, warm-up's included.
    if (const auto open = number(*a.doc, "max_open_connections")) {
      if (t.max_open_connections)
        t.max_open_connections =
            std::max(*t.max_open_connections, static_cast<std::uint64_t>(*open));
    } else {
      lacks("max_open_connections", "server_max_open_connections");
      t.max_open_connections.reset();
    }
  }
  if (!lag_known)
    t.abort_lag_p99_ms.reset();
  else if (!t.abort_lag_p99_ms)
    t.notes.push_back("server_abort_lag_p99_ms is null: no service saw a client abort");
  return t;
}

}  // namespace orchlab::harness

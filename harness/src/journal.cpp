#include "orchlab/harness/journal.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <map>

namespace orchlab::harness {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::ordered_json;

constexpr int kJournalVersion = 1;

const char* kind_name(RecordKind k) {
  switch (k) {
    case RecordKind::repetition:
      return "repetition";
    case RecordKind::infeasible:
      return "infeasible";
    case RecordKind::dropped:
      return "dropped";
  }
  return "repetition";
}

std::optional<RecordKind> kind_of(const std::string& s) {
  for (auto k : {RecordKind::repetition, RecordKind::infeasible, RecordKind::dropped})
    if (s == kind_name(k)) return k;
  return std::nullopt;
}

std::string hex_digest(const std::string& text) {
  std::uint64_t h = 0xcbf29ce484222325ULL;  // FNV-1a 64
  for (unsigned char c : text) {
    h ^= c;
    h *= 0x100000001b3ULL;
  }
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(h));
  return buf;
}

// Test hooks (docs/harness.md, "Test hooks"), read once:
// ORCHLAB_TEST_KILL_AT=journal-write:N kills the process with SIGKILL halfway
// through writing its N-th record, after-journal:N right after it;
// ORCHLAB_TEST_LEAK_KB=K leaks K KiB (touched) per record, the planted leak
// scripts/soak.sh's memory check must catch.
struct TestHooks {
  long kill_mid_write = 0;
  long kill_after = 0;
  long leak_kb = 0;
  long appends = 0;
};

TestHooks& hooks() {
  static TestHooks h = [] {
    TestHooks t;
    if (const char* at = std::getenv("ORCHLAB_TEST_KILL_AT"); at && *at) {
      const std::string s(at);
      const auto colon = s.find(':');
      const long n = colon == std::string::npos ? 0 : std::atol(s.c_str() + colon + 1);
      if (s.rfind("journal-write:", 0) == 0) t.kill_mid_write = n;
      if (s.rfind("after-journal:", 0) == 0) t.kill_after = n;
    }
    if (const char* kb = std::getenv("ORCHLAB_TEST_LEAK_KB"); kb && *kb) t.leak_kb = std::atol(kb);
    return t;
  }();
  return h;
}

void leak_for_test(long kb) {
  // Reachable (LeakSanitizer stays quiet), never freed, every page touched.
  static std::vector<std::unique_ptr<char[]>> kept;
  auto block = std::make_unique<char[]>(static_cast<std::size_t>(kb) * 1024);
  std::memset(block.get(), 0x5a, static_cast<std::size_t>(kb) * 1024);
  kept.push_back(std::move(block));
}

json series_json(const Series& s) {
  json out = json::object();
  out["bucket_ms"] = s.bucket_ms;
  out["window_ms"] = s.window_ms;
  out["started"] = s.started;
  out["finished"] = s.finished;
  out["in_flight"] = s.in_flight;
  out["live_tasks"] = s.live_tasks;
  out["os_threads"] = s.os_threads;
  out["goroutines"] = s.goroutines;
  return out;
}

Series series_from_json(const json& j) {
  Series s;
  s.bucket_ms = j.at("bucket_ms").get<int>();
  s.window_ms = j.at("window_ms").get<double>();
  s.started = j.at("started").get<std::vector<std::uint64_t>>();
  s.finished = j.at("finished").get<std::vector<std::uint64_t>>();
  s.in_flight = j.at("in_flight").get<std::vector<std::int64_t>>();
  s.live_tasks = j.at("live_tasks").get<std::vector<std::int64_t>>();
  s.os_threads = j.at("os_threads").get<std::vector<std::int64_t>>();
  s.goroutines = j.at("goroutines").get<std::vector<std::int64_t>>();
  return s;
}

std::string value_text(const json& v) { return v.is_string() ? v.get<std::string>() : v.dump(); }

// What differs between the journal's identity and this run's, or "".
std::string identity_difference(const json& journal, const json& run) {
  for (const char* key : {"command", "scenarios", "build", "shuffle_seed", "shard"}) {
    const json a = journal.contains(key) ? journal[key] : json(nullptr);
    const json b = run.contains(key) ? run[key] : json(nullptr);
    if (a == b) continue;
    if (std::string(key) == "scenarios" && a.is_object() && b.is_object()) {
      for (const auto& [name, digest] : a.items())
        if (!b.contains(name))
          return "scenarios: the journal's run has scenario \"" + name + "\", this one does not";
        else if (b[name] != digest)
          return "scenarios: scenario \"" + name + "\" is not the same (digest " +
                 value_text(digest) + " in the journal, " + value_text(b[name]) + " now)";
      for (const auto& [name, digest] : b.items())
        if (!a.contains(name))
          return "scenarios: this run has scenario \"" + name + "\", the journal's does not";
    }
    if (std::string(key) == "command" && a.is_array() && b.is_array()) {
      auto joined = [](const json& v) {
        std::string s;
        for (const auto& x : v) s += (s.empty() ? "" : " ") + value_text(x);
        return "\"" + s + "\"";
      };
      return "command: the journal's run was " + joined(a) + ", this one is " + joined(b) +
             " (--out, --quiet, --seed and --resume aside)";
    }
    return std::string(key) + ": the journal has " + value_text(a) + ", this run has " +
           value_text(b);
  }
  return "";
}

[[noreturn]] void io_error(const std::string& what, const fs::path& path, int err) {
  throw JournalError(what + " " + path.string() + ": " + std::strerror(err));
}

int open_journal(const fs::path& path, int flags) {
  const int fd = ::open(path.c_str(), flags | O_CLOEXEC, 0644);
  if (fd < 0) io_error("cannot open the journal", path, errno);
  return fd;
}

}  // namespace

json run_identity(const RunOptions& options, const json& scenarios, std::uint64_t shuffle_seed,
                  const std::string& date) {
  json id = json::object();
  id["orchlab_journal"] = kJournalVersion;
  id["command"] = options.identity_args;
  id["command_line"] = options.command_line;
  json digests = json::object();
  for (const auto& [name, description] : scenarios.items())
    digests[name] = hex_digest(description.dump());
  id["scenarios"] = std::move(digests);
  id["build"] = build_json();
  id["shuffle_seed"] = shuffle_seed;
  if (options.sharded)
    id["shard"] = {{"index", options.shard_index},
                   {"count", options.shard_count},
                   {"start_at_unix_ns", options.start_at_unix_ns.value_or(0)}};
  else
    id["shard"] = nullptr;
  id["date"] = date;
  return id;
}

json journal_line(const Measurement& m, RecordKind kind) {
  json line = json::object();
  line["cell"] = cell_name(m);
  line["repetition"] = m.repetition_index;
  line["kind"] = kind_name(kind);
  line["entry"] = benchmark_entry(m);
  line["series"] = series_json(m.series);
  line["notes"] = m.notes;
  line["server_notes"] = m.server ? json(m.server->notes) : json(nullptr);
  json fields = json::array();
  for (const auto& [key, value] : m.runtime_fields.items()) fields.push_back(key);
  line["runtime_fields"] = std::move(fields);
  return line;
}

Measurement measurement_from_journal_line(const json& line) {
  try {
    const json& e = line.at("entry");
    Measurement m = measurement_from_entry(e);
    m.series = series_from_json(line.at("series"));
    m.notes = line.at("notes").get<std::vector<std::string>>();
    if (m.server && line.at("server_notes").is_array())
      m.server->notes = line["server_notes"].get<std::vector<std::string>>();
    m.runtime_fields = json::object();
    if (!m.infeasible)
      for (const auto& key : line.at("runtime_fields")) {
        const auto k = key.get<std::string>();
        m.runtime_fields[k] = e.at(k);
      }
    return m;
  } catch (const std::exception& err) {
    throw JournalError(std::string("a journal record that is not one: ") + err.what());
  }
}

fs::path resume_report_path(const std::string& resume) {
  std::error_code ec;
  if (fs::is_directory(resume, ec)) return fs::path(resume) / "report.json";
  return fs::path(resume);
}

std::unique_ptr<Journal> Journal::create(const fs::path& path, const json& identity) {
  std::unique_ptr<Journal> j(new Journal());
  j->path_ = path;
  std::error_code ec;
  if (path.has_parent_path()) fs::create_directories(path.parent_path(), ec);
  if (ec) throw JournalError("cannot create " + path.parent_path().string() + ": " + ec.message());
  j->fd_ = open_journal(path, O_RDWR | O_CREAT | O_TRUNC | O_APPEND);
  j->identity_ = identity;
  j->write_line(identity.dump() + "\n");
  return j;
}

std::unique_ptr<Journal> Journal::anonymous(const json& identity) {
  std::unique_ptr<Journal> j(new Journal());
  const char* tmp = std::getenv("TMPDIR");
  std::string name = std::string(tmp && *tmp ? tmp : "/tmp") + "/orchlab-journal-XXXXXX";
  j->fd_ = ::mkstemp(name.data());
  if (j->fd_ < 0)
    io_error("cannot create a temporary journal in", fs::path(name).parent_path(), errno);
  ::unlink(name.c_str());
  j->identity_ = identity;
  j->write_line(identity.dump() + "\n");
  return j;
}

std::optional<json> Journal::read_identity(const fs::path& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return std::nullopt;
    io_error("cannot read the journal", path, errno);
  }
  std::string first;
  char c = 0;
  while (first.size() < (1u << 20) && ::read(fd, &c, 1) == 1 && c != '\n') first += c;
  ::close(fd);
  // Killed before its identity line was whole: nothing was journaled.
  if (c != '\n') return std::nullopt;
  json id;
  try {
    id = json::parse(first);
  } catch (const std::exception&) {
    throw JournalMismatch(path.string() +
                          " is not an orchlab journal (its first line is not JSON)");
  }
  if (!id.is_object() || id.value("orchlab_journal", 0) != kJournalVersion)
    throw JournalMismatch(path.string() + " is not an orchlab journal of version " +
                          std::to_string(kJournalVersion));
  return id;
}

std::unique_ptr<Journal> Journal::resume(const fs::path& path, const json& identity) {
  std::unique_ptr<Journal> j(new Journal());
  j->path_ = path;
  j->fd_ = open_journal(path, O_RDWR | O_APPEND);
  std::string text;
  {
    char buf[1 << 16];
    std::int64_t at = 0;
    while (true) {
      const auto n = ::pread(j->fd_, buf, sizeof buf, at);
      if (n < 0) io_error("cannot read the journal", path, errno);
      if (n == 0) break;
      text.append(buf, static_cast<std::size_t>(n));
      at += n;
    }
  }
  std::size_t pos = 0;
  int line_no = 0;
  std::int64_t dropped = -1;  // bytes of a last line cut short
  while (pos < text.size()) {
    ++line_no;
    const auto nl = text.find('\n', pos);
    const bool last = nl == std::string::npos || nl + 1 == text.size();
    const std::string line = text.substr(pos, nl == std::string::npos ? nl : nl - pos);
    json doc;
    bool ok = nl != std::string::npos;
    if (ok) {
      try {
        doc = json::parse(line);
      } catch (const std::exception&) {
        ok = false;
      }
    }
    if (ok && line_no == 1) {
      ok = doc.is_object() && doc.value("orchlab_journal", 0) == kJournalVersion;
      if (!ok)
        throw JournalMismatch(path.string() + " is not an orchlab journal of version " +
                              std::to_string(kJournalVersion));
      j->identity_ = doc;
      // Checked before anything is cut off: a journal of another run is
      // left as it was.
      if (const auto why = identity_difference(j->identity_, identity); !why.empty())
        throw JournalMismatch("the journal " + path.string() + " is of another run: " + why);
    } else if (ok && doc.is_object() && doc.contains("resumed")) {
      j->resumes_.push_back(doc["resumed"]);
    } else if (ok) {
      const auto kind = doc.is_object() && doc.contains("kind") && doc["kind"].is_string()
                            ? kind_of(doc["kind"].get<std::string>())
                            : std::nullopt;
      ok = kind && doc.contains("cell") && doc["cell"].is_string() && doc.contains("repetition") &&
           doc["repetition"].is_number_integer() && doc.contains("entry");
      if (ok)
        j->records_.push_back(Record{doc["cell"].get<std::string>(), doc["repetition"].get<int>(),
                                     *kind, static_cast<std::int64_t>(pos),
                                     static_cast<std::int64_t>(nl - pos)});
    }
    if (!ok) {
      // Only the last line can be cut short by a kill: the journal is
      // appended to and each line fsync'd before the next is begun.
      if (!last || line_no == 1)
        throw JournalMismatch(path.string() + ": line " + std::to_string(line_no) +
                              " is not a journal record (" + std::to_string(line.size()) +
                              " bytes), and it is not the last line: not a journal this run wrote");
      if (::ftruncate(j->fd_, static_cast<off_t>(pos)) != 0)
        io_error("cannot cut the partial last line off", path, errno);
      dropped = static_cast<std::int64_t>(line.size());
      text.resize(pos);
      break;
    }
    pos = nl + 1;
  }
  j->size_ = static_cast<std::int64_t>(text.size());
  if (j->identity_.is_null())
    throw JournalMismatch(path.string() + " is empty: not an orchlab journal");
  j->recovered_ = j->records_.size();
  std::size_t repetitions = 0;
  for (const auto& r : j->records_) repetitions += r.kind == RecordKind::repetition;
  json resumed = {{"at", date_now()},
                  {"repetitions_from_journal", repetitions},
                  {"dropped_partial_line", dropped >= 0},
                  {"dropped_bytes", std::max<std::int64_t>(dropped, 0)}};
  j->write_line(json{{"resumed", resumed}}.dump() + "\n");
  j->resumes_.push_back(std::move(resumed));
  // Said in every later report of the run, not only the first resumed one.
  for (const auto& r : j->resumes_)
    if (r.value("dropped_partial_line", false))
      j->notes_.push_back("resumed at " + r.value("at", std::string("?")) +
                          ": the journal's last line (" +
                          std::to_string(r.value("dropped_bytes", 0)) +
                          " bytes) was cut short by the end of the run that wrote it and was "
                          "dropped; the repetition it held was run again");
  return j;
}

Journal::~Journal() {
  if (fd_ >= 0) ::close(fd_);
}

void Journal::write_line(const std::string& line) {
  std::size_t done = 0;
  int err = 0;
  while (done < line.size()) {
    const auto n = ::write(fd_, line.data() + done, line.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      err = n < 0 ? errno : ENOSPC;
      break;
    }
    done += static_cast<std::size_t>(n);
  }
  if (!err && ::fsync(fd_) != 0) err = errno;
  if (err) {
    // What was written of this line goes: the journal stays a whole
    // number of lines, every one a record.
    [[maybe_unused]] const int t = ::ftruncate(fd_, static_cast<off_t>(size_));
    throw JournalError("cannot append to the journal " +
                       (path_.empty() ? std::string("(a temporary file)") : path_.string()) + ": " +
                       std::strerror(err) + "; it keeps the " + std::to_string(records_.size()) +
                       " record(s) written before");
  }
  size_ += static_cast<std::int64_t>(line.size());
}

std::size_t Journal::append(const Measurement& m, RecordKind kind) {
  const std::string line = journal_line(m, kind).dump() + "\n";
  auto& h = hooks();
  ++h.appends;
  if (h.kill_mid_write == h.appends) {
    // A kill in the middle of the write: half a line reaches the disk.
    [[maybe_unused]] auto n = ::write(fd_, line.data(), line.size() / 2);
    ::fsync(fd_);
    ::raise(SIGKILL);
  }
  const std::int64_t offset = size_;
  write_line(line);
  records_.push_back(Record{cell_name(m), m.repetition_index, kind, offset,
                            static_cast<std::int64_t>(line.size() - 1)});
  if (h.leak_kb > 0) leak_for_test(h.leak_kb);
  if (h.kill_after == h.appends) ::raise(SIGKILL);
  return records_.size() - 1;
}

std::optional<std::size_t> Journal::find(const std::string& cell, int repetition) const {
  // The last record wins: a repetition is recorded once, but a run may have
  // been resumed by hand with a journal edited.
  for (std::size_t i = records_.size(); i-- > 0;)
    if (records_[i].kind == RecordKind::repetition && records_[i].repetition == repetition &&
        records_[i].cell == cell)
      return i;
  return std::nullopt;
}

std::optional<std::size_t> Journal::find_verdict(const std::string& cell, RecordKind& kind) const {
  for (std::size_t i = records_.size(); i-- > 0;)
    if (records_[i].kind != RecordKind::repetition && records_[i].cell == cell) {
      kind = records_[i].kind;
      return i;
    }
  return std::nullopt;
}

Measurement Journal::read(std::size_t index) const {
  const Record& r = records_.at(index);
  std::string text(static_cast<std::size_t>(r.length), '\0');
  std::int64_t done = 0;
  while (done < r.length) {
    const auto n = ::pread(fd_, text.data() + done, static_cast<std::size_t>(r.length - done),
                           r.offset + done);
    if (n <= 0)
      throw JournalError("cannot read record " + std::to_string(index + 1) + " of the journal " +
                         path_.string() + (n < 0 ? std::string(": ") + std::strerror(errno) : ""));
    done += n;
  }
  try {
    return measurement_from_journal_line(json::parse(text));
  } catch (const nlohmann::json::exception& e) {
    throw JournalError("record " + std::to_string(index + 1) + " of the journal " + path_.string() +
                       " is not JSON: " + e.what());
  }
}

json Journal::resumes() const { return resumes_.empty() ? json(nullptr) : resumes_; }

}  // namespace orchlab::harness

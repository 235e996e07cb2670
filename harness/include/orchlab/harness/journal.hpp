// The journal of a run: one JSON line per finished repetition, appended and
// fsync'd beside the report (REPORT.journal), the run's identity in its first
// line. A run killed midway (SIGKILL, an OOM kill, a pod eviction) loses only
// the repetition it was in: `orchlab run --resume` continues it, and the
// report is always built from the journal, so a resumed run's report is the
// one an uninterrupted run would have written. docs/harness.md, "Journal and
// --resume", describes the file.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "orchlab/harness/cli.hpp"
#include "orchlab/harness/report.hpp"

namespace orchlab::harness {

/// The journal cannot be written (disk full, a file-size limit) or read;
/// what() names the file and the cause. The journal on disk is left as it
/// was before the failed append.
class JournalError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// --resume of a journal that belongs to another run (another command,
/// scenario, build, seed or shard), or of a file that is not a journal:
/// what() names what differs, the journal's value and this run's.
class JournalMismatch : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// What a record says of its cell: a measured repetition; the cell was not
/// run (infeasible before its first repetition); or its driver failed and
/// the cell was dropped with its earlier repetitions (external.hpp).
enum class RecordKind { repetition, infeasible, dropped };

/// The first line of a run's journal: {"orchlab_journal": 1, "command",
/// "command_line", "scenarios" (name -> digest of the parsed scenario),
/// "build", "shuffle_seed", "shard", "date"}. A journal is resumed only by
/// a run whose command (RunOptions::identity_args), scenarios, build, seed
/// and shard are the same.
nlohmann::ordered_json run_identity(const RunOptions& options,
                                    const nlohmann::ordered_json& scenarios,
                                    std::uint64_t shuffle_seed, const std::string& date);

/// One journal line: benchmark_entry(m) plus what the entry does not carry
/// (the series, the notes, the server's notes, which entry fields are the
/// driver's), keyed by cell and repetition.
nlohmann::ordered_json journal_line(const Measurement& m, RecordKind kind);

/// The measurement journal_line() was written from. Throws JournalError.
Measurement measurement_from_journal_line(const nlohmann::ordered_json& line);

/// The report path --resume R names: R itself, or R/report.json when R is a
/// folder.
std::filesystem::path resume_report_path(const std::string& resume);

class Journal {
 public:
  /// A new journal at `path` (one there is replaced) whose first line is
  /// `identity`. Throws JournalError.
  static std::unique_ptr<Journal> create(const std::filesystem::path& path,
                                         const nlohmann::ordered_json& identity);

  /// A journal in an unlinked temporary file: the run's results are kept
  /// there rather than in memory (orchlab run --out -). Throws JournalError.
  static std::unique_ptr<Journal> anonymous(const nlohmann::ordered_json& identity);

  /// The identity line of the journal at `path`; nullopt when there is no
  /// file. Throws JournalMismatch when the file is not a journal.
  static std::optional<nlohmann::ordered_json> read_identity(const std::filesystem::path& path);

  /// Reopens the journal at `path` to continue its run. Throws
  /// JournalMismatch when its identity differs from `identity` (both
  /// named) or a line other than the last is not a record; a last line cut
  /// short (a kill mid-write) is cut off and said in notes(). Appends a line
  /// recording this resume.
  static std::unique_ptr<Journal> resume(const std::filesystem::path& path,
                                         const nlohmann::ordered_json& identity);

  ~Journal();
  Journal(const Journal&) = delete;
  Journal& operator=(const Journal&) = delete;

  /// The record of `cell`'s repetition `repetition` (kind repetition).
  std::optional<std::size_t> find(const std::string& cell, int repetition) const;
  /// The record that says `cell` is not measured (infeasible or dropped).
  std::optional<std::size_t> find_verdict(const std::string& cell, RecordKind& kind) const;

  /// Appends `m` as a record of `kind`, flushed and fsync'd; returns its
  /// index. Throws JournalError, leaving the file as it was.
  std::size_t append(const Measurement& m, RecordKind kind);

  /// Record `index`, read back from the file. Throws JournalError.
  Measurement read(std::size_t index) const;

  /// Records found when the journal was opened (resume), then appended.
  std::size_t recovered() const { return recovered_; }
  /// context.resumed: every resume of the run so far, oldest first, each
  /// {"at", "repetitions_from_journal", "dropped_partial_line"}; null when
  /// the run was never resumed.
  nlohmann::ordered_json resumes() const;
  /// What opening the journal found (a partial line cut off), for lab.notes.
  const std::vector<std::string>& notes() const { return notes_; }
  /// The identity line the journal holds.
  const nlohmann::ordered_json& identity() const { return identity_; }
  /// Empty for an anonymous journal.
  const std::filesystem::path& path() const { return path_; }

 private:
  struct Record {
    std::string cell;
    int repetition = 0;
    RecordKind kind = RecordKind::repetition;
    std::int64_t offset = 0;
    std::int64_t length = 0;
  };
  Journal() = default;
  void write_line(const std::string& line);

  std::filesystem::path path_;
  int fd_ = -1;
  std::int64_t size_ = 0;
  nlohmann::ordered_json identity_;
  nlohmann::ordered_json resumes_ = nlohmann::ordered_json::array();
  std::vector<Record> records_;
  std::size_t recovered_ = 0;
  std::vector<std::string> notes_;
};

}  // namespace orchlab::harness

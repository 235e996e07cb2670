// `orchlab merge`: the reports of the shards of one run (orchlab run --shard
// I/N) into one report, exactly: counts summed, histograms added bucket by
// bucket and percentiles recomputed from them, throughput summed over the
// aligned windows, process metrics kept per shard.
#pragma once

#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>
#include <vector>

#include "orchlab/harness/cli.hpp"

namespace orchlab::harness {

/// Reports that do not belong together (different scenarios, builds,
/// windows; a shard missing or given twice), or a file that is not a
/// shard's report. what() names the files and what differs.
class MergeError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// The merged report of `files` (all shards of one run, any order).
/// Throws MergeError.
nlohmann::ordered_json merge_reports(const std::vector<std::string>& files,
                                     const std::string& command_line = "");

/// `orchlab merge -o OUT FILE...`: 0 written, 1 could not write, 2 the
/// reports do not belong together (nothing written).
int merge_command(const MergeOptions& options);

}  // namespace orchlab::harness

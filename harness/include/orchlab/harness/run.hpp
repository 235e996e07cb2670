// The orchlab commands: run (scenario -> cells -> drive -> drain -> report)
// and list.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "orchlab/harness/cli.hpp"

namespace orchlab::harness {

/// `orchlab run`. Returns the exit status: 0 done, 1 the run failed
/// (nothing started, or the report could not be written, or the
/// orchlab-mock child died mid-run: then the report is written), 2 bad input
/// (nothing written), 130 interrupted (the finished cells were written).
int run_command(const RunOptions& options, const char* argv0);

/// `orchlab list`: patterns, then scenarios with their descriptions.
int list_command();

/// Where scenario NAMEs are looked up: ./scenarios, then the source tree's
/// scenarios/ (compiled in), so the binary works from any folder.
std::vector<std::filesystem::path> scenario_dirs();

}  // namespace orchlab::harness

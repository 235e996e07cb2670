// Fuzz target: bytes as a scenario file, through the harness's loader
// (load_scenarios: read, JSON, sweep "include"s, parse_scenario, the mock's
// service validation). ScenarioError is the documented answer to bad input;
// any other exception or a sanitizer report is a crash. A sweep may include
// the committed scenarios/ by name, so the fuzzer reaches the merge of
// "defaults" and entry fields too. Loaded scenarios are expanded to cells and
// the count checked.
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "orchlab/harness/scenario.hpp"

namespace {

namespace fs = std::filesystem;
using orchlab::harness::ScenarioError;

// pattern_names() of the patterns library, which this target does not link.
const std::vector<std::string> kPatterns = {"channel-soup",
                                            "channel-soup+fail-fast",
                                            "latch-select",
                                            "mutex-aggregation",
                                            "slots-aggregation",
                                            "cancellable-group",
                                            "bounded-group",
                                            "cancellable-group+collect-all",
                                            "cancellable-group+ignores-stop",
                                            "async-group",
                                            "async-group+collect-all"};

// The loader reads a file, so each input is written to one, in a private
// folder per process (parallel runs stay apart), removed at exit. The name
// sits in a plain array: it must outlive every static destructor.
char input_dir[4096];

const fs::path& input_path() {
  static const fs::path path = [] {
    const std::string dir = (fs::temp_directory_path() / "orchlab-fuzz-XXXXXX").string();
    if (dir.size() >= sizeof input_dir) std::abort();
    dir.copy(input_dir, dir.size());
    if (::mkdtemp(input_dir) == nullptr) {
      std::perror("mkdtemp");
      std::abort();
    }
    std::atexit([] {
      std::error_code ignored;
      fs::remove_all(input_dir, ignored);
    });
    return fs::path(input_dir) / "input.json";
  }();
  return path;
}

void check_cells(const std::vector<orchlab::harness::Scenario>& scenarios) {
  std::size_t expected = 0;
  for (const auto& s : scenarios)
    expected += s.patterns.size() * s.fanout.size() * s.concurrency.size();
  if (expected > 100000) return;  // a legal but huge sweep: not worth the memory
  const auto cells = orchlab::harness::expand_cells(scenarios);
  if (cells.size() != expected) {
    std::fprintf(stderr, "expand_cells: %zu cells, expected %zu\n", cells.size(), expected);
    std::abort();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const auto& path = input_path();
  {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
  }
  try {
    check_cells(orchlab::harness::load_scenarios(path.string(), {ORCHLAB_SCENARIO_DIR}, kPatterns));
  } catch (const ScenarioError&) {
  }
  return 0;
}

// orchlab: runs scenarios against the orchestration patterns and writes a
// Google-Benchmark-compatible JSON report. See docs/harness.md.
#include <cstdio>
#include <cstdlib>
#include <iostream>

#include "orchlab/census.hpp"
#include "orchlab/harness/cli.hpp"
#include "orchlab/harness/merge.hpp"
#include "orchlab/harness/run.hpp"

#ifndef ORCHLAB_VERSION
#define ORCHLAB_VERSION "0.0.0"
#endif

int main(int argc, char** argv) {
  using orchlab::harness::Command;
  Command cmd;
  try {
    cmd = orchlab::harness::parse_command_line(argc, argv);
  } catch (const orchlab::harness::UsageError& e) {
    std::cerr << "orchlab: " << e.what() << "\n\n" << orchlab::harness::usage();
    return 2;
  }
  int status = 0;
  switch (cmd.kind) {
    case Command::Kind::help:
      std::cout << orchlab::harness::usage();
      return 0;
    case Command::Kind::version:
      std::cout << "orchlab " << ORCHLAB_VERSION << "\n";
      return 0;
    case Command::Kind::list:
      return orchlab::harness::list_command();
    case Command::Kind::merge:
      return orchlab::harness::merge_command(cmd.merge);
    case Command::Kind::run:
      status = orchlab::harness::run_command(cmd.run, argv[0]);
      break;
  }
  // Tasks a pattern leaked that outlived the bounded drain may still run;
  // leave without static destructors under their feet.
  if (orchlab::census::totals().live_tasks > 0) {
    std::fflush(nullptr);
    std::_Exit(status);
  }
  return status;
}

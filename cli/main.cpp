// The `weir` command line. Subcommand names, flags and output lines are a
// contract that people script against: change them only compatibly.

#include <iostream>

#include <CLI/CLI.hpp>

#include "inspect_command.hpp"
#include "weir/runtime/logging.hpp"

int main(int argc, char** argv) {
  weir::log_to_stderr();
  CLI::App app{"weir: reliable stream processing with actors"};
  app.require_subcommand(1);

  weir::cli::inspect_options inspect;
  auto* inspect_cmd = app.add_subcommand(
      "inspect", "Show a queue's checkpoint log: segments, counts, snapshot and any corruption");
  inspect_cmd->add_option("DIR", inspect.dir, "The queue's log directory")->required();
  inspect_cmd->add_flag("--json", inspect.json, "Print one JSON object instead of text");
  inspect_cmd->footer(
      "Exit status: 0 clean, 1 corruption or a torn tail was found, 2 the log could not be read.");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  if (*inspect_cmd) return weir::cli::run_inspect(inspect, std::cout, std::cerr);
  return 2;
}

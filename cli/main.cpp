// tok1d: command-line front end of the tok1d library. Parses arguments with CLI11 and runs one
// subcommand; everything it does is available through the library (tok1d/tok1d.h).
#include <iostream>
#include <string>
#include <vector>

#include "cli/cli_common.h"
#include "cli/commands.h"

namespace tok1d::cli {
namespace {

std::string VersionText() {
  std::string text = std::string("tok1d ") + TOK1D_VERSION_STRING + " (.t1d format " +
                     std::to_string(kT1dMajorVersion) + "." + std::to_string(kT1dMinorVersion) +
                     "; backends:";
  for (const std::string& backend : CompiledDevices()) text += " " + backend;
  return text + ")";
}

int Main(int argc, char** argv) {
  CLI::App app("tok1d: an image codec built on a learned 1D token representation", "tok1d");
  app.footer(
      "Exit status: 0 success, 1 error (bad input, I/O), 2 usage error.\n"
      "Run 'tok1d COMMAND --help' for the options of a command.");
  app.set_version_flag("-V,--version", VersionText, "print the version and compiled backends");
  app.require_subcommand(1);
  app.fallthrough();  // global flags may follow the subcommand
  Console console;
  app.add_flag("-q,--quiet", console.quiet, "print errors only");
  app.add_flag("-v,--verbose", console.verbosity, "print more detail (repeat for more)");

  std::vector<Subcommand> commands = {
      AddEncodeCommand(app), AddDecodeCommand(app), AddInfoCommand(app),   AddTrimCommand(app),
      AddBatchCommand(app),  AddSweepCommand(app),  AddCompareCommand(app)};

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& error) {
    if (error.get_exit_code() == static_cast<int>(CLI::ExitCodes::Success)) {
      return app.exit(error);  // --help, --version
    }
    console.Error(error.what());
    std::cerr << "Run 'tok1d --help' for usage.\n";
    return kExitUsage;
  }

  for (const Subcommand& command : commands) {
    if (!command.app->parsed()) continue;
    Status status = command.run(console);
    if (!status.ok()) {
      console.Error(status.message());
      return kExitError;
    }
    return kExitOk;
  }
  return kExitUsage;  // unreachable: require_subcommand(1)
}

}  // namespace
}  // namespace tok1d::cli

int main(int argc, char** argv) {
  tok1d::RestartWithRecommendedBlasCore(argv);  // before any work: OpenBLAS chooses as it loads
  return tok1d::cli::Main(argc, argv);
}

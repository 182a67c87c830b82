// What every tok1d subcommand shares: exit codes, messages, input and output files.
#pragma once

#include <CLI/CLI.hpp>

#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/file_util.h"
#include "common/text_format.h"
#include "container/t1d.h"  // tok1d info and trim read the format itself
#include "imageio/image_io.h"
#include "tok1d/tok1d.h"

namespace tok1d::cli {

// Exit status of the tok1d command (documented in `tok1d --help` and the README).
enum ExitCode : int { kExitOk = 0, kExitError = 1, kExitUsage = 2 };

// Messages to stderr, shaped by -q/--quiet and -v/--verbose.
class Console {
 public:
  bool quiet = false;
  int verbosity = 0;  // number of -v

  void Error(std::string_view message) const;    // always: "tok1d: error: …"
  void Warning(std::string_view message) const;  // unless quiet: "tok1d: warning: …"
  void Note(std::string_view message) const;     // unless quiet: a summary line
  void Verbose(std::string_view message) const;  // with -v
};

// A registered subcommand: its CLI11 node and what runs when it was given.
struct Subcommand {
  CLI::App* app = nullptr;
  std::function<Status(const Console&)> run;
};

// "<stdin>" / "<stdout>" for "-", else the path.
std::string DisplayName(const std::string& path, bool output = false);

// Adds the positional INPUT argument ("-" = stdin).
void AddInputArgument(CLI::App* command, std::string* input, std::string_view what);

// -o/--output and -f/--force, the same for every command that writes a file.
struct OutputOptions {
  std::string path;
  bool force = false;
};
void AddOutputOptions(CLI::App* command, OutputOptions* output);

// Checks before any work is done: the output is not the input, does not exist unless forced,
// and binary data is not about to be written to a terminal.
Status CheckOutput(const std::string& input, const OutputOptions& output);

// Writes the result atomically (temporary file + rename), or to stdout for "-".
Status WriteOutput(const OutputOptions& output, std::span<const uint8_t> bytes);

// Reads a .t1d file's structure and, when this build has its entropy coder, decodes every
// token as well, so that damage inside a layer is found too. Errors name the file.
StatusOr<T1dHeaderInfo> ReadAndCheckT1d(std::span<const uint8_t> bytes, const std::string& path,
                                        const ReadOptions& options);

}  // namespace tok1d::cli

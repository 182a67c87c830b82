#include "cli/cli_common.h"

#include <unistd.h>

#include <cstdio>
#include <iostream>

namespace tok1d::cli {

void Console::Error(std::string_view message) const {
  std::cerr << "tok1d: error: " << message << '\n';
}

void Console::Warning(std::string_view message) const {
  if (!quiet) std::cerr << "tok1d: warning: " << message << '\n';
}

void Console::Note(std::string_view message) const {
  if (!quiet) std::cerr << message << '\n';
}

void Console::Verbose(std::string_view message) const {
  if (!quiet && verbosity > 0) std::cerr << message << '\n';
}

std::string DisplayName(const std::string& path, bool output) {
  if (IsStdio(path)) return output ? "<stdout>" : "<stdin>";
  return path;
}

void AddInputArgument(CLI::App* command, std::string* input, std::string_view what) {
  command->add_option("INPUT", *input, std::string(what) + " ('-' reads standard input)")
      ->required();
}

void AddOutputOptions(CLI::App* command, OutputOptions* output) {
  command->add_option("-o,--output", output->path, "output file ('-' writes standard output)")
      ->required();
  command->add_flag("-f,--force", output->force, "overwrite an existing output file");
}

Status CheckOutput(const std::string& input, const OutputOptions& output) {
  TOK1D_RETURN_IF_ERROR(CheckDistinctPaths(input, output.path));
  if (IsStdio(output.path)) {
    if (isatty(STDOUT_FILENO) != 0) {
      return InvalidArgumentError(
          "refusing to write binary data to a terminal; redirect standard output or use -o FILE");
    }
    return OkStatus();
  }
  return CheckOverwrite(output.path, output.force);
}

Status WriteOutput(const OutputOptions& output, std::span<const uint8_t> bytes) {
  return WriteFileAtomically(output.path, bytes, output.force);
}

StatusOr<T1dHeaderInfo> ReadAndCheckT1d(std::span<const uint8_t> bytes, const std::string& path,
                                        const ReadOptions& options) {
  StatusOr<T1dHeaderInfo> info = ReadT1dHeader(bytes, options);
  if (info.ok() && info->header.entropy_coder == kRawCoderId) {
    StatusOr<TokenFile> tokens = ReadT1d(bytes, options);
    if (!tokens.ok()) return tokens.status().WithContext(DisplayName(path));
  }
  if (!info.ok()) return info.status().WithContext(DisplayName(path));
  return info;
}

}  // namespace tok1d::cli

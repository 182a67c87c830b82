// tok1d trim: keep the first N tokens of every tile, without a model or decoding.
#include <algorithm>
#include <memory>

#include "cli/cli_common.h"
#include "cli/commands.h"

namespace tok1d::cli {
namespace {

struct TrimOptions {
  std::string input;
  OutputOptions output;
  uint32_t tokens = 0;
};

Status RunTrim(const TrimOptions& options, const Console& console) {
  TOK1D_RETURN_IF_ERROR(CheckOutput(options.input, options.output));
  TOK1D_ASSIGN_OR_RETURN(std::vector<uint8_t> bytes, ReadFileBytes(options.input));
  const std::string input_name = DisplayName(options.input);
  // A partial download can be trimmed to its complete layers.
  StatusOr<T1dInfo> before = InspectT1d(bytes);
  if (!before.ok()) return before.status().WithContext(input_name);
  StatusOr<std::vector<uint8_t>> trimmed = TrimT1d(bytes, options.tokens);
  if (!trimmed.ok()) return trimmed.status().WithContext(input_name);
  const uint32_t kept =
      before->tokens_per_tile.empty()
          ? 0
          : *std::max_element(before->tokens_per_tile.begin(), before->tokens_per_tile.end());
  if (before->truncated) {
    console.Warning(input_name + ": input is truncated after " +
                    std::to_string(before->complete_layers) +
                    " token layers; the output is a complete file of them");
  } else if (kept <= options.tokens) {
    console.Warning(input_name + " keeps at most " + std::to_string(kept) +
                    " tokens per tile already; output is unchanged");
  }
  TOK1D_RETURN_IF_ERROR(WriteOutput(options.output, *trimmed));
  console.Note(input_name + " -> " + DisplayName(options.output.path, true) + ": " +
               FormatBytes(bytes.size()) + " -> " + FormatBytes(trimmed->size()) + ", at most " +
               std::to_string(options.tokens) + " tokens per tile");
  return OkStatus();
}

}  // namespace

Subcommand AddTrimCommand(CLI::App& parent) {
  auto options = std::make_shared<TrimOptions>();
  CLI::App* command = parent.add_subcommand(
      "trim", "Keep the first N tokens of every tile (a smaller, coarser file; no model needed)");
  AddInputArgument(command, &options->input, ".t1d file");
  AddOutputOptions(command, &options->output);
  command->add_option("-t,--tokens", options->tokens, "tokens to keep per tile")
      ->required()
      ->check(CLI::Range(1, 65535));
  return {command, [options](const Console& console) { return RunTrim(*options, console); }};
}

}  // namespace tok1d::cli

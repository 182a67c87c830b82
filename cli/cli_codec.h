// What the commands that run the model (encode, decode) share: --model, -j/--threads, --device,
// --no-deblock.
#pragma once

#include <memory>
#include <string>

#include "cli/cli_common.h"
#include "tok1d/tok1d.h"

namespace tok1d::cli {

struct ModelOptions {
  std::string model_path;  // empty: the default model
  unsigned threads = 0;    // 0: all cores
  std::string device = "auto";
  bool no_deblock = false;
  bool no_refine = false;  // encoders only (--no-refine)
  bool no_restore = false;
  std::string steps;  // encoders only (--steps): empty = the library default (none)
};

void AddModelOptions(CLI::App* command, ModelOptions* options);
// The same without -j/--threads: for `tok1d batch`, whose -j counts files converted at once.
void AddModelChoiceOptions(CLI::App* command, ModelOptions* options);

// --no-refine and --steps, for the commands that encode.
void AddRefineOption(CLI::App* command, ModelOptions* options);

// --steps "FIRST:STEP[,FIRST:STEP…]" or "none" → the plan; nullopt with *error set if malformed.
std::optional<std::vector<QuantizerStep>> ParseSteps(const std::string& text, std::string* error);

// Loads the chosen model (errors name the file, or say how to pass one).
StatusOr<std::shared_ptr<const LoadedModel>> LoadChosenModel(const ModelOptions& options);

// The library's session options for these command-line options (no fallback callback).
SessionOptions SessionOptionsOf(const ModelOptions& options);

// Starts the codec on the chosen device; prints a note when --device auto fell back, and the
// backend with -v.
StatusOr<std::unique_ptr<Session>> OpenSession(std::shared_ptr<const LoadedModel> model,
                                               const ModelOptions& options, const Console& console);

}  // namespace tok1d::cli

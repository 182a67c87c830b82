#include "cli/cli_codec.h"

#include <algorithm>
#include <cstdio>
#include <optional>
#include <vector>

namespace tok1d::cli {

void AddModelOptions(CLI::App* command, ModelOptions* options) {
  AddModelChoiceOptions(command, options);
  command->add_option("-j,--threads", options->threads, "CPU threads (default: all cores)")
      ->check(CLI::Range(1, 1024));
}

void AddModelChoiceOptions(CLI::App* command, ModelOptions* options) {
  command->add_option("--model", options->model_path,
                      "model weights (.safetensors); default: the model built into tok1d");
  std::string devices = "auto";
  for (const std::string& device : CompiledDevices()) {
    devices += '|';
    devices += device;
  }
  command->add_option(
      "--device", options->device,
      "where the model runs: " + devices + " (default auto: a GPU if usable, else cpu)");
  command->add_flag("--no-deblock", options->no_deblock,
                    "do not smooth the seams between tiles after decoding");
  command->add_flag("--no-restore", options->no_restore,
                    "encoding: leave out the per-tile colour restoration (rstr chunk); "
                    "decoding: ignore it (the model's plain decode)");
}

void AddRefineOption(CLI::App* command, ModelOptions* options) {
  command->add_flag("--no-refine", options->no_refine,
                    "leave out the model's refinement layers (finer values of the first tokens): "
                    "slightly smaller, lower quality files that tok1d before 1.3 files can read");
  command
      ->add_option("--steps", options->steps,
                   "quantiser steps: from token FIRST on, round values to STEP levels, as "
                   "FIRST:STEP[,FIRST:STEP...], or none (the default; docs/steps.md)")
      ->check([](const std::string& text) {
        std::string error;
        return ParseSteps(text, &error) ? std::string() : error;
      });
}

std::optional<std::vector<QuantizerStep>> ParseSteps(const std::string& text, std::string* error) {
  std::vector<QuantizerStep> steps;
  if (text == "none") return steps;
  size_t begin = 0;
  while (begin <= text.size()) {
    const size_t end = std::min(text.find(',', begin), text.size());
    const std::string item = text.substr(begin, end - begin);
    unsigned first = 0, step = 0;
    int used = 0;
    if (item.find_first_not_of("0123456789:") != std::string::npos ||
        std::sscanf(item.c_str(), "%u:%u%n", &first, &step, &used) != 2 ||
        used != static_cast<int>(item.size()) || step < 1 || step > 255 ||
        (!steps.empty() && first <= steps.back().first)) {
      *error =
          "--steps wants FIRST:STEP pairs with increasing FIRST and STEP 1..255, "
          "e.g. 16:2,48:3, or none; got '" +
          item + "'";
      return std::nullopt;
    }
    steps.push_back({first, step});
    begin = end + 1;
  }
  return steps;
}

StatusOr<std::shared_ptr<const LoadedModel>> LoadChosenModel(const ModelOptions& options) {
  if (options.model_path.empty()) return LoadedModel::LoadDefault();
  return LoadedModel::LoadFile(options.model_path);
}

SessionOptions SessionOptionsOf(const ModelOptions& options) {
  SessionOptions session_options;
  session_options.device = options.device;
  session_options.threads = options.threads;
  session_options.deblock = !options.no_deblock;
  session_options.refine = !options.no_refine;
  session_options.restore = !options.no_restore;
  if (!options.steps.empty()) {
    std::string error;
    session_options.steps = ParseSteps(options.steps, &error);  // checked when parsed
  }
  return session_options;
}

StatusOr<std::unique_ptr<Session>> OpenSession(std::shared_ptr<const LoadedModel> model,
                                               const ModelOptions& options,
                                               const Console& console) {
  SessionOptions codec_options = SessionOptionsOf(options);
  // --device auto: a GPU failure after start-up finishes the work on the CPU, with this line.
  codec_options.on_fallback = [console](const std::string& line) { console.Note("note: " + line); };
  std::string note;
  TOK1D_ASSIGN_OR_RETURN(std::unique_ptr<Session> session,
                         Session::Create(std::move(model), codec_options, &note));
  if (!note.empty()) console.Note("note: " + note);
  const ModelInfo info = session->model().info();
  console.Verbose("model " + info.name + " (sha256 " + info.sha256 + ") on " +
                  session->description());
  return session;
}

}  // namespace tok1d::cli

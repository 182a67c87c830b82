#include "cli/cli_codec.h"

#include <algorithm>

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
}

void AddRefineOption(CLI::App* command, ModelOptions* options) {
  command->add_flag("--no-refine", options->no_refine,
                    "leave out the model's refinement layers (finer values of the first tokens): "
                    "slightly smaller, lower quality files that tok1d before 1.3 files can read");
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

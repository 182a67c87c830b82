// tok1d decode: .t1d → image (PNG, or PPM for a .ppm/.pnm output name).
#include <memory>

#include "cli/cli_codec.h"
#include "cli/commands.h"

namespace tok1d::cli {
namespace {

struct DecodeOptions {
  std::string input;
  OutputOptions output;
  ModelOptions model;
  uint32_t tokens = 0;  // 0: all the file has
};

Status RunDecode(const DecodeOptions& options, const Console& console) {
  TOK1D_RETURN_IF_ERROR(CheckOutput(options.input, options.output));
  TOK1D_ASSIGN_OR_RETURN(std::vector<uint8_t> bytes, ReadFileBytes(options.input));
  const std::string input_name = DisplayName(options.input);
  ReadOptions read_options;
  read_options.allow_truncated = true;  // a partial download decodes its complete layers
  // The structure first, so a damaged file is reported before the model loads; the tokens
  // may need the model's entropy tables.
  StatusOr<T1dHeaderInfo> info = ReadT1dHeader(bytes, read_options);
  if (!info.ok()) return info.status().WithContext(input_name);

  TOK1D_ASSIGN_OR_RETURN(Model model, LoadChosenModel(options.model));
  if (options.tokens > model.config().tokens) {
    return InvalidArgumentError("--tokens " + std::to_string(options.tokens) +
                                " is more than the model's " +
                                std::to_string(model.config().tokens) + " tokens per tile");
  }
  TOK1D_ASSIGN_OR_RETURN(std::unique_ptr<Codec> codec,
                         OpenCodec(std::move(model), options.model, console));
  if (info->header.entropy_coder != kRawCoderId) {
    TOK1D_RETURN_IF_ERROR(codec->CheckModel(info->header).WithContext(input_name));
  }
  ReadReport report;
  StatusOr<TokenFile> file =
      ReadT1d(bytes, read_options, &report, codec->layer_coder(info->header.entropy_coder));
  if (!file.ok()) return file.status().WithContext(input_name);
  if (file->header.layer_count() == 0) {
    return TruncatedError(input_name + ": the file holds no complete token layer");
  }
  if (report.truncated) {
    console.Warning(input_name + ": file is truncated; decoding its " +
                    std::to_string(report.layers_complete) + " complete token layers of " +
                    std::to_string(report.layers_declared));
  }
  for (const std::string& warning : report.warnings) console.Warning(input_name + ": " + warning);

  StatusOr<Image> image = codec->Decode(*file, options.tokens);
  if (!image.ok()) return image.status().WithContext(input_name);
  TOK1D_ASSIGN_OR_RETURN(std::vector<uint8_t> encoded,
                         EncodeImage(*image, OutputFormatForPath(options.output.path)));
  TOK1D_RETURN_IF_ERROR(WriteOutput(options.output, encoded));
  const uint32_t layers = file->header.layer_count();
  const uint32_t used = options.tokens == 0 ? layers : std::min(layers, options.tokens);
  console.Note(input_name + " -> " + DisplayName(options.output.path, true) + ": " +
               std::to_string(image->width) + "x" + std::to_string(image->height) + ", " +
               std::to_string(used) + " tokens per tile");
  return OkStatus();
}

}  // namespace

Subcommand AddDecodeCommand(CLI::App& parent) {
  auto options = std::make_shared<DecodeOptions>();
  CLI::App* command = parent.add_subcommand(
      "decode", "Decode a .t1d token file to an image (PNG; PPM for .ppm/.pnm names)");
  AddInputArgument(command, &options->input, ".t1d file");
  AddOutputOptions(command, &options->output);
  command->add_option("-t,--tokens", options->tokens,
                      "decode only the first N tokens of every tile (default: all)")
      ->check(CLI::Range(1, 65535));
  AddModelOptions(command, &options->model);
  return {command, [options](const Console& console) { return RunDecode(*options, console); }};
}

}  // namespace tok1d::cli

// tok1d decode: .t1d → image (PNG, or PPM for a .ppm/.pnm output name).
#include <algorithm>
#include <memory>
#include <vector>

#include "cli/cli_codec.h"
#include "cli/commands.h"
#include "cli/encode_decode.h"

namespace tok1d::cli {
namespace {

struct DecodeCommandOptions {
  std::string input;
  OutputOptions output;
  ModelOptions model;
  DecodeSettings settings;
};

Status RunDecode(const DecodeCommandOptions& options, const Console& console) {
  TOK1D_RETURN_IF_ERROR(CheckOutput(options.input, options.output));
  TOK1D_ASSIGN_OR_RETURN(std::vector<uint8_t> bytes, ReadFileBytes(options.input));
  const std::string input_name = DisplayName(options.input);
  // The structure first, so a damaged file is reported before the model loads; the tokens
  // may need the model's entropy tables.
  TOK1D_RETURN_IF_ERROR(ReadDecodableHeader(bytes, input_name, options.settings.strict).status());

  TOK1D_ASSIGN_OR_RETURN(std::shared_ptr<const LoadedModel> model, LoadChosenModel(options.model));
  TOK1D_ASSIGN_OR_RETURN(std::unique_ptr<Session> session,
                         OpenSession(std::move(model), options.model, console));
  TOK1D_RETURN_IF_ERROR(CheckDecodeSettings(options.settings, *session));
  TOK1D_ASSIGN_OR_RETURN(
      DecodedImage decoded,
      DecodeT1dBytes(*session, bytes, input_name, OutputFormatForPath(options.output.path),
                     options.settings));
  for (const std::string& warning : decoded.warnings) console.Warning(warning);
  TOK1D_RETURN_IF_ERROR(WriteOutput(options.output, decoded.encoded));
  console.Note(DescribeDecode(input_name, DisplayName(options.output.path, true), decoded));
  return OkStatus();
}

}  // namespace

void AddDecodeSettings(CLI::App* command, DecodeSettings* settings) {
  command
      ->add_option("-t,--tokens", settings->tokens,
                   "decode only the first N tokens of every tile (default: all)")
      ->check(CLI::Range(1, 65535));
  command->add_flag("--strict", settings->strict,
                    "refuse a truncated file (a partial download) with exit status 1 instead of "
                    "decoding its complete layers");
}

Status CheckDecodeSettings(const DecodeSettings& settings, const Session& session) {
  const uint32_t model_tokens = session.model().info().max_tokens;
  if (settings.tokens > model_tokens) {
    return InvalidArgumentError("--tokens " + std::to_string(settings.tokens) +
                                " is more than the model's " + std::to_string(model_tokens) +
                                " tokens per tile");
  }
  return OkStatus();
}

StatusOr<T1dInfo> ReadDecodableHeader(std::span<const uint8_t> t1d, const std::string& input_name,
                                      bool strict) {
  StatusOr<T1dInfo> info = InspectT1d(t1d);
  if (!info.ok()) return info.status().WithContext(input_name);
  if (strict && info->truncated) {
    return TruncatedError(input_name + ": file is truncated after " +
                          std::to_string(info->complete_layers) + " of " +
                          std::to_string(info->layers) + " token layers (--strict)");
  }
  return info;
}

StatusOr<DecodedImage> FinishDecode(const std::string& input_name, StatusOr<DecodeResult> result,
                                    ImageFormat format) {
  if (!result.ok()) return result.status().WithContext(input_name);
  DecodedImage decoded;
  for (const std::string& warning : result->warnings) {
    decoded.warnings.push_back(input_name + ": " + warning);
  }
  // The ICC profile and EXIF that `encode --metadata` stored go back into the image.
  ImageMetadata metadata;
  metadata.icc = std::move(result->icc);
  metadata.exif = std::move(result->exif);
  std::vector<std::string> metadata_warnings;
  TOK1D_ASSIGN_OR_RETURN(decoded.encoded,
                         EncodeImage(result->image, format, &metadata, &metadata_warnings));
  for (const std::string& warning : metadata_warnings) {
    decoded.warnings.push_back(input_name + ": " + warning);
  }
  decoded.width = result->image.width;
  decoded.height = result->image.height;
  decoded.tokens = CountTokens(result->tokens_per_tile);
  return decoded;
}

StatusOr<DecodedImage> DecodeT1dBytes(Session& session, std::span<const uint8_t> t1d,
                                      const std::string& input_name, ImageFormat format,
                                      const DecodeSettings& settings) {
  DecodeOptions options;
  options.max_tokens = settings.tokens;
  options.allow_truncated = !settings.strict;
  return FinishDecode(input_name, session.Decode(t1d, options), format);
}

std::string DescribeDecode(const std::string& input, const std::string& output,
                           const DecodedImage& decoded) {
  return input + " -> " + output + ": " + std::to_string(decoded.width) + "x" +
         std::to_string(decoded.height) + ", " + DescribeTokenCounts(decoded.tokens);
}

Subcommand AddDecodeCommand(CLI::App& parent) {
  auto options = std::make_shared<DecodeCommandOptions>();
  CLI::App* command = parent.add_subcommand(
      "decode", "Decode a .t1d token file to an image (PNG; PPM for .ppm/.pnm names)");
  AddInputArgument(command, &options->input, ".t1d file");
  AddOutputOptions(command, &options->output);
  AddDecodeSettings(command, &options->settings);
  AddModelOptions(command, &options->model);
  return {command, [options](const Console& console) { return RunDecode(*options, console); }};
}

}  // namespace tok1d::cli

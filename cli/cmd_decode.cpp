// tok1d decode: .t1d → image (PNG, or PPM for a .ppm/.pnm output name).
#include <algorithm>
#include <memory>
#include <vector>

#include "cli/cli_codec.h"
#include "cli/commands.h"
#include "cli/encode_decode.h"

namespace tok1d::cli {
namespace {

struct DecodeOptions {
  std::string input;
  OutputOptions output;
  ModelOptions model;
  DecodeSettings settings;
};

ReadOptions DecodeReadOptions() {
  ReadOptions read_options;
  read_options.allow_truncated = true;  // a partial download decodes its complete layers
  return read_options;
}

Status RunDecode(const DecodeOptions& options, const Console& console) {
  TOK1D_RETURN_IF_ERROR(CheckOutput(options.input, options.output));
  TOK1D_ASSIGN_OR_RETURN(std::vector<uint8_t> bytes, ReadFileBytes(options.input));
  const std::string input_name = DisplayName(options.input);
  // The structure first, so a damaged file is reported before the model loads; the tokens
  // may need the model's entropy tables.
  TOK1D_RETURN_IF_ERROR(ReadDecodableHeader(bytes, input_name).status());

  TOK1D_ASSIGN_OR_RETURN(Model model, LoadChosenModel(options.model));
  TOK1D_ASSIGN_OR_RETURN(std::unique_ptr<Codec> codec,
                         OpenCodec(std::move(model), options.model, console));
  TOK1D_RETURN_IF_ERROR(CheckDecodeSettings(options.settings, *codec));
  TOK1D_ASSIGN_OR_RETURN(DecodedImage decoded,
                         DecodeT1dBytes(*codec, bytes, input_name,
                                        OutputFormatForPath(options.output.path),
                                        options.settings));
  for (const std::string& warning : decoded.warnings) console.Warning(warning);
  TOK1D_RETURN_IF_ERROR(WriteOutput(options.output, decoded.encoded));
  console.Note(DescribeDecode(input_name, DisplayName(options.output.path, true), decoded));
  return OkStatus();
}

}  // namespace

void AddDecodeSettings(CLI::App* command, DecodeSettings* settings) {
  command->add_option("-t,--tokens", settings->tokens,
                      "decode only the first N tokens of every tile (default: all)")
      ->check(CLI::Range(1, 65535));
}

Status CheckDecodeSettings(const DecodeSettings& settings, const Codec& codec) {
  const uint32_t model_tokens = codec.model().config().tokens;
  if (settings.tokens > model_tokens) {
    return InvalidArgumentError("--tokens " + std::to_string(settings.tokens) +
                                " is more than the model's " + std::to_string(model_tokens) +
                                " tokens per tile");
  }
  return OkStatus();
}

StatusOr<T1dHeaderInfo> ReadDecodableHeader(std::span<const uint8_t> t1d,
                                            const std::string& input_name) {
  StatusOr<T1dHeaderInfo> info = ReadT1dHeader(t1d, DecodeReadOptions());
  if (!info.ok()) return info.status().WithContext(input_name);
  return info;
}

StatusOr<T1dToDecode> ReadT1dToDecode(const Codec& codec, std::span<const uint8_t> t1d,
                                      const std::string& input_name) {
  TOK1D_ASSIGN_OR_RETURN(T1dHeaderInfo info, ReadDecodableHeader(t1d, input_name));
  if (info.header.entropy_coder != kRawCoderId) {
    TOK1D_RETURN_IF_ERROR(codec.CheckModel(info.header).WithContext(input_name));
  }
  ReadReport report;
  StatusOr<TokenFile> file = ReadT1d(t1d, DecodeReadOptions(), &report,
                                     codec.layer_coder(info.header.entropy_coder));
  if (!file.ok()) return file.status().WithContext(input_name);
  if (file->header.layer_count() == 0) {
    return TruncatedError(input_name + ": the file holds no complete token layer");
  }
  T1dToDecode read;
  read.name = input_name;
  read.file = std::move(file).value();
  if (report.truncated) {
    read.warnings.push_back(input_name + ": file is truncated; decoding its " +
                            std::to_string(report.layers_complete) +
                            " complete token layers of " +
                            std::to_string(report.layers_declared));
  }
  for (const std::string& warning : report.warnings) {
    read.warnings.push_back(input_name + ": " + warning);
  }
  return read;
}

StatusOr<DecodedImage> FinishDecode(const T1dToDecode& read, const StatusOr<Image>& image,
                                    ImageFormat format, const DecodeSettings& settings) {
  if (!image.ok()) return image.status().WithContext(read.name);
  DecodedImage decoded;
  decoded.warnings = read.warnings;
  // The ICC profile and EXIF that `encode --metadata` stored go back into the image.
  std::vector<std::string> metadata_warnings;
  const ImageMetadata metadata = MetadataFromChunks(read.file.extra_chunks, &metadata_warnings);
  TOK1D_ASSIGN_OR_RETURN(decoded.encoded,
                         EncodeImage(*image, format, &metadata, &metadata_warnings));
  for (const std::string& warning : metadata_warnings) {
    decoded.warnings.push_back(read.name + ": " + warning);
  }
  std::vector<uint32_t> tokens_per_tile = read.file.header.tokens_per_tile();
  if (settings.tokens != 0) {
    for (uint32_t& count : tokens_per_tile) count = std::min(count, settings.tokens);
  }
  decoded.width = image->width;
  decoded.height = image->height;
  decoded.tokens = CountTokens(tokens_per_tile);
  return decoded;
}

StatusOr<DecodedImage> DecodeT1dBytes(Codec& codec, std::span<const uint8_t> t1d,
                                      const std::string& input_name, ImageFormat format,
                                      const DecodeSettings& settings) {
  TOK1D_ASSIGN_OR_RETURN(T1dToDecode read, ReadT1dToDecode(codec, t1d, input_name));
  return FinishDecode(read, codec.Decode(read.file, settings.tokens), format, settings);
}

std::string DescribeDecode(const std::string& input, const std::string& output,
                           const DecodedImage& decoded) {
  return input + " -> " + output + ": " + std::to_string(decoded.width) + "x" +
         std::to_string(decoded.height) + ", " + DescribeTokenCounts(decoded.tokens);
}

Subcommand AddDecodeCommand(CLI::App& parent) {
  auto options = std::make_shared<DecodeOptions>();
  CLI::App* command = parent.add_subcommand(
      "decode", "Decode a .t1d token file to an image (PNG; PPM for .ppm/.pnm names)");
  AddInputArgument(command, &options->input, ".t1d file");
  AddOutputOptions(command, &options->output);
  AddDecodeSettings(command, &options->settings);
  AddModelOptions(command, &options->model);
  return {command, [options](const Console& console) { return RunDecode(*options, console); }};
}

}  // namespace tok1d::cli

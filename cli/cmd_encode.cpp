// tok1d encode: image → .t1d at a chosen rate (tokens per tile, a byte budget, bits per pixel
// or a PSNR target), with uniform or adaptive token allocation (codec/rate_control.h).
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <memory>
#include <numeric>

#include "cli/cli_codec.h"
#include "cli/commands.h"
#include "cli/encode_decode.h"

namespace tok1d::cli {
namespace {

struct EncodeOptions {
  std::string input;
  OutputOptions output;
  ModelOptions model;
  EncodeSettings settings;
};

std::string FormatFixed(double value, int decimals) {
  char text[64];
  std::snprintf(text, sizeof(text), "%.*f", decimals, value);
  return text;
}

// The token count of each tile for --bytes, --bpp or --psnr, from `full`, the encoding at all
// K tokens: every smaller count is a trim of it, so sizes are exact and decodes need no encode.
StatusOr<std::vector<uint32_t>> ChooseTokenCounts(const EncodeSettings& settings, Codec& codec,
                                                  const TokenFile& full, const Image& image,
                                                  const LayerCoder* coder) {
  const TokenAllocation allocation = settings.allocation.value_or(
      settings.psnr > 0 ? kDefaultPsnrAllocation : kDefaultBudgetAllocation);
  const RateControlOptions options{allocation, coder};
  if (settings.psnr > 0) return TokensReachingPsnr(codec, image, full, settings.psnr, options);
  uint64_t budget = settings.bytes;
  if (settings.bpp > 0) {
    budget = static_cast<uint64_t>(std::floor(settings.bpp * image.width * image.height / 8.0));
  }
  StatusOr<std::vector<uint32_t>> counts = TokensWithinBytes(codec, image, full, budget, options);
  if (!counts.ok() && settings.bpp > 0) {
    return counts.status().WithContext(FormatFixed(settings.bpp, 4) + " bpp is " +
                                       FormatBytes(budget));
  }
  return counts;
}

uint8_t ChosenCoder(const EncodeSettings& settings, const Codec& codec) {
  if (settings.coder == "raw") return kRawCoderId;
  if (settings.coder == "range") return kRangeCoderId;
  return codec.default_coder();
}

Status RunEncode(const EncodeOptions& options, const Console& console) {
  TOK1D_RETURN_IF_ERROR(CheckOutput(options.input, options.output));
  // The image first, so that a bad input is reported before the model loads.
  TOK1D_ASSIGN_OR_RETURN(InputImage input,
                         ReadInputImage(options.input, options.settings.metadata));
  for (const std::string& warning : input.warnings()) console.Warning(warning);
  TOK1D_ASSIGN_OR_RETURN(Model model, LoadChosenModel(options.model));
  TOK1D_ASSIGN_OR_RETURN(std::unique_ptr<Codec> codec,
                         OpenCodec(std::move(model), options.model, console));
  TOK1D_RETURN_IF_ERROR(CheckEncodeSettings(options.settings, *codec));
  TOK1D_ASSIGN_OR_RETURN(EncodedImage encoded,
                         EncodeInputImage(*codec, input, options.settings));
  TOK1D_RETURN_IF_ERROR(WriteOutput(options.output, encoded.t1d));
  console.Note(DescribeEncode(input.name, DisplayName(options.output.path, true), encoded));
  return OkStatus();
}

}  // namespace

void AddEncodeSettings(CLI::App* command, EncodeSettings* settings) {
  CLI::Option_group* rate =
      command->add_option_group("rate", "exactly one of --tokens, --bytes, --bpp, --psnr");
  CLI::Option* tokens =
      rate->add_option("-t,--tokens", settings->tokens,
                       "tokens per tile, the same for every tile (1 … the model's K)")
          ->check(CLI::Range(1, 65535));
  rate->add_option("--bytes", settings->bytes, "largest file size in bytes")
      ->check(CLI::PositiveNumber);
  rate->add_option("--bpp", settings->bpp, "largest size in bits per pixel")
      ->check(CLI::PositiveNumber);
  rate->add_option("--psnr", settings->psnr,
                   "smallest file whose decoding reaches this PSNR (dB, RGB, against the input)")
      ->type_name("DB")
      ->check(CLI::PositiveNumber);
  rate->require_option(1);
  command
      ->add_option_function<std::string>(
          "--allocation",
          [settings](const std::string& name) {
            settings->allocation =
                name == "uniform" ? TokenAllocation::kUniform : TokenAllocation::kAdaptive;
          },
          "with --bytes, --bpp, --psnr: the same token count for every tile (uniform, faster) "
          "or more tokens for the tiles that gain most per byte (adaptive: about ten decodes "
          "more); default: " + std::string(TokenAllocationName(kDefaultBudgetAllocation)) +
              " with --bytes and --bpp, " +
              std::string(TokenAllocationName(kDefaultPsnrAllocation)) + " with --psnr")
      ->check(CLI::IsMember({"uniform", "adaptive"}))
      ->excludes(tokens);
  command->add_option("--coder", settings->coder,
                      "entropy coder of the tokens: range (smaller; needs a model with entropy "
                      "tables) or raw (default: range when the model has tables)")
      ->check(CLI::IsMember({"raw", "range"}));
  command->add_flag("--stats", settings->stats,
                    "decode the result and print its PSNR against the input");
  command
      ->add_option_function<std::string>(
          "--metadata",
          [settings](const std::string& list) { settings->metadata = *ParseMetadataList(list); },
          "metadata of the input to keep, zstd-compressed: a comma list of all, none, icc, "
          "exif (default: none); decode writes it back into the PNG")
      ->type_name("LIST")
      ->check([](const std::string& list) {
        StatusOr<MetadataSelection> selection = ParseMetadataList(list);
        return selection.ok() ? std::string() : selection.status().message();
      });
}

Status CheckEncodeSettings(const EncodeSettings& settings, const Codec& codec) {
  const uint32_t model_tokens = codec.model().config().tokens;
  if (settings.tokens > model_tokens) {
    return InvalidArgumentError("--tokens " + std::to_string(settings.tokens) +
                                " is more than the model's " + std::to_string(model_tokens) +
                                " tokens per tile");
  }
  if (codec.layer_coder(ChosenCoder(settings, codec)) == nullptr) {
    return InvalidArgumentError("--coder range needs a model with entropy tables (made by "
                                "models/fit_entropy.py); this one has none");
  }
  return OkStatus();
}

TokenCounts CountTokens(std::span<const uint32_t> tokens_per_tile) {
  TokenCounts counts;
  if (tokens_per_tile.empty()) return counts;
  const auto [min, max] = std::minmax_element(tokens_per_tile.begin(), tokens_per_tile.end());
  counts.min = *min;
  counts.max = *max;
  counts.mean = static_cast<double>(std::accumulate(tokens_per_tile.begin(),
                                                    tokens_per_tile.end(), uint64_t{0})) /
                static_cast<double>(tokens_per_tile.size());
  return counts;
}

std::string DescribeTokenCounts(const TokenCounts& counts) {
  if (counts.uniform()) {
    return std::to_string(counts.max) + (counts.max == 1 ? " token per tile" : " tokens per tile");
  }
  return "mean " + FormatFixed(counts.mean, 1) + " tokens per tile (" +
         std::to_string(counts.min) + ".." + std::to_string(counts.max) + ")";
}

double EncodedImage::bpp() const {
  return static_cast<double>(t1d.size()) * 8.0 / (static_cast<double>(width) * height);
}

std::vector<std::string> InputImage::warnings() const {
  std::vector<std::string> lines;
  for (const std::string& warning : info.warnings) lines.push_back(name + ": " + warning);
  return lines;
}

StatusOr<InputImage> ReadInputImage(const std::string& path,
                                    const MetadataSelection& metadata) {
  InputImage input;
  input.name = DisplayName(path);
  ImageReadOptions options;
  options.read_icc = metadata.icc;
  options.read_exif = metadata.exif;
  TOK1D_ASSIGN_OR_RETURN(input.image, ReadImage(path, options, &input.info));
  return input;
}

StatusOr<EncodedImage> EncodeInputImage(Codec& codec, const InputImage& input,
                                        const EncodeSettings& settings) {
  const Image& image = input.image;
  SourceInfo source;
  source.alpha_composited = input.info.alpha_composited;
  source.background = ImageReadOptions{}.background;
  const uint32_t encode_tokens =
      settings.tokens != 0 ? settings.tokens : codec.model().config().tokens;
  TOK1D_ASSIGN_OR_RETURN(TokenFile file, codec.Encode(image, encode_tokens, source));
  // Metadata chunks first, so that --bytes and --bpp count them.
  TOK1D_ASSIGN_OR_RETURN(file.extra_chunks, MetadataChunks(input.info.metadata, settings.metadata));
  file.header.entropy_coder = ChosenCoder(settings, codec);
  const LayerCoder* coder = codec.layer_coder(file.header.entropy_coder);
  if (settings.tokens == 0) {
    TOK1D_ASSIGN_OR_RETURN(const std::vector<uint32_t> counts,
                           ChooseTokenCounts(settings, codec, file, image, coder));
    TOK1D_ASSIGN_OR_RETURN(file, TrimTokens(std::move(file), counts));
  }
  EncodedImage encoded;
  TOK1D_ASSIGN_OR_RETURN(encoded.t1d, WriteT1d(file, coder));
  encoded.width = image.width;
  encoded.height = image.height;
  encoded.tiles = file.header.tile_count();
  encoded.tokens = CountTokens(file.header.tokens_per_tile());
  if (settings.metadata.icc) encoded.icc_bytes = input.info.metadata.icc.size();
  if (settings.metadata.exif) encoded.exif_bytes = input.info.metadata.exif.size();
  if (settings.stats) {
    TOK1D_ASSIGN_OR_RETURN(Image decoded, codec.Decode(file));
    encoded.psnr = Psnr(image, decoded);
  }
  return encoded;
}

std::string DescribeEncode(const std::string& input, const std::string& output,
                           const EncodedImage& encoded) {
  std::string line = input + " (" + std::to_string(encoded.width) + "x" +
                     std::to_string(encoded.height) + ", " + std::to_string(encoded.tiles) +
                     " tiles) -> " + output + ": " + DescribeTokenCounts(encoded.tokens) +
                     ", " + FormatBytes(encoded.t1d.size()) + ", " +
                     FormatFixed(encoded.bpp(), 4) + " bpp";
  if (encoded.psnr) line += ", PSNR " + FormatFixed(*encoded.psnr, 2) + " dB";
  if (encoded.icc_bytes != 0) line += ", ICC profile " + FormatBytes(encoded.icc_bytes);
  if (encoded.exif_bytes != 0) line += ", EXIF " + FormatBytes(encoded.exif_bytes);
  return line;
}

Subcommand AddEncodeCommand(CLI::App& parent) {
  auto options = std::make_shared<EncodeOptions>();
  CLI::App* command = parent.add_subcommand(
      "encode", "Encode an image (PNG, JPEG, WebP, PPM) to a .t1d token file");
  AddInputArgument(command, &options->input, "image file");
  AddOutputOptions(command, &options->output);
  AddEncodeSettings(command, &options->settings);
  AddModelOptions(command, &options->model);
  AddRefineOption(command, &options->model);
  return {command, [options](const Console& console) { return RunEncode(*options, console); }};
}

}  // namespace tok1d::cli

// tok1d encode: image → .t1d at a chosen rate (tokens per tile, a byte budget or bits per pixel).
#include <cmath>
#include <cstdio>
#include <memory>

#include "cli/cli_codec.h"
#include "cli/commands.h"

namespace tok1d::cli {
namespace {

struct EncodeOptions {
  std::string input;
  OutputOptions output;
  ModelOptions model;
  uint32_t tokens = 0;
  uint64_t bytes = 0;
  double bpp = 0;
  bool stats = false;
  std::string coder;  // "raw", "range"; empty: range when the model has entropy tables
};

std::string FormatFixed(double value, int decimals) {
  char text[64];
  std::snprintf(text, sizeof(text), "%.*f", decimals, value);
  return text;
}

// The token count per tile for the chosen rate. A byte budget needs the encoding at all K
// tokens: every smaller count is a trim of it, so its exact size is known without the model.
StatusOr<uint32_t> ChooseTokenCount(const EncodeOptions& options, const TokenFile& full,
                                    const Image& image, const LayerCoder* coder) {
  if (options.tokens != 0) return options.tokens;
  uint64_t budget = options.bytes;
  if (options.bpp > 0) {
    budget = static_cast<uint64_t>(std::floor(options.bpp * image.width * image.height / 8.0));
  }
  StatusOr<uint32_t> k = LargestTokenCountWithin(full, budget, coder);
  if (!k.ok() && options.bpp > 0) {
    return k.status().WithContext(FormatFixed(options.bpp, 4) + " bpp is " + FormatBytes(budget));
  }
  return k;
}

Status RunEncode(const EncodeOptions& options, const Console& console) {
  TOK1D_RETURN_IF_ERROR(CheckOutput(options.input, options.output));
  ImageInfo info;
  TOK1D_ASSIGN_OR_RETURN(Image image, ReadImage(options.input, {}, &info));
  for (const std::string& warning : info.warnings) {
    console.Warning(DisplayName(options.input) + ": " + warning);
  }
  TOK1D_ASSIGN_OR_RETURN(Model model, LoadChosenModel(options.model));
  const uint32_t model_tokens = model.config().tokens;
  if (options.tokens > model_tokens) {
    return InvalidArgumentError("--tokens " + std::to_string(options.tokens) +
                                " is more than the model's " + std::to_string(model_tokens) +
                                " tokens per tile");
  }
  TOK1D_ASSIGN_OR_RETURN(std::unique_ptr<Codec> codec,
                         OpenCodec(std::move(model), options.model, console));

  SourceInfo source;
  source.alpha_composited = info.alpha_composited;
  source.background = ImageReadOptions{}.background;
  const uint32_t encode_tokens = options.tokens != 0 ? options.tokens : model_tokens;
  TOK1D_ASSIGN_OR_RETURN(TokenFile file, codec->Encode(image, encode_tokens, source));
  if (options.coder == "raw") file.header.entropy_coder = kRawCoderId;
  if (options.coder == "range") file.header.entropy_coder = kRangeCoderId;
  const LayerCoder* coder = codec->layer_coder(file.header.entropy_coder);
  if (coder == nullptr) {
    return InvalidArgumentError("--coder range needs a model with entropy tables (made by "
                                "models/fit_entropy.py); this one has none");
  }
  TOK1D_ASSIGN_OR_RETURN(const uint32_t tokens, ChooseTokenCount(options, file, image, coder));
  if (tokens != encode_tokens) {
    TOK1D_ASSIGN_OR_RETURN(file, TrimTokens(std::move(file), tokens));
  }
  TOK1D_ASSIGN_OR_RETURN(std::vector<uint8_t> bytes, WriteT1d(file, coder));

  std::string summary = DisplayName(options.input) + " (" + std::to_string(image.width) + "x" +
                        std::to_string(image.height) + ", " +
                        std::to_string(file.header.tile_count()) + " tiles) -> " +
                        DisplayName(options.output.path, true) + ": " + std::to_string(tokens) +
                        " tokens per tile, " + FormatBytes(bytes.size()) + ", " +
                        FormatFixed(static_cast<double>(bytes.size()) * 8.0 /
                                        (static_cast<double>(image.width) * image.height),
                                    4) +
                        " bpp";
  if (options.stats) {
    TOK1D_ASSIGN_OR_RETURN(Image decoded, codec->Decode(file));
    summary += ", PSNR " + FormatFixed(Psnr(image, decoded), 2) + " dB";
  }
  TOK1D_RETURN_IF_ERROR(WriteOutput(options.output, bytes));
  console.Note(summary);
  return OkStatus();
}

}  // namespace

Subcommand AddEncodeCommand(CLI::App& parent) {
  auto options = std::make_shared<EncodeOptions>();
  CLI::App* command = parent.add_subcommand(
      "encode", "Encode an image (PNG, JPEG, WebP, PPM) to a .t1d token file");
  AddInputArgument(command, &options->input, "image file");
  AddOutputOptions(command, &options->output);
  CLI::Option_group* rate =
      command->add_option_group("rate", "exactly one of --tokens, --bytes, --bpp");
  rate->add_option("-t,--tokens", options->tokens, "tokens per tile (1 … the model's K)")
      ->check(CLI::Range(1, 65535));
  rate->add_option("--bytes", options->bytes, "largest file size in bytes")
      ->check(CLI::PositiveNumber);
  rate->add_option("--bpp", options->bpp, "largest size in bits per pixel")
      ->check(CLI::PositiveNumber);
  rate->require_option(1);
  command->add_option("--coder", options->coder,
                      "entropy coder of the tokens: range (smaller; needs a model with entropy "
                      "tables) or raw (default: range when the model has tables)")
      ->check(CLI::IsMember({"raw", "range"}));
  command->add_flag("--stats", options->stats,
                    "decode the result and print its PSNR against the input");
  AddModelOptions(command, &options->model);
  return {command, [options](const Console& console) { return RunEncode(*options, console); }};
}

}  // namespace tok1d::cli

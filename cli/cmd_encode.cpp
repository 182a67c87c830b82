// tok1d encode: image → .t1d at a chosen rate (tokens per tile, a byte budget, bits per pixel
// or a PSNR target), with uniform or adaptive token allocation (tok1d.h, Allocation).
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <memory>
#include <numeric>
#include <string>

#include <unistd.h>

#include "cli/cli_codec.h"
#include "cli/commands.h"
#include "cli/encode_decode.h"

namespace tok1d::cli {
namespace {

struct EncodeCommandOptions {
  std::string input;
  OutputOptions output;
  ModelOptions model;
  EncodeSettings settings;
};

Status RunEncode(const EncodeCommandOptions& options, const Console& console) {
  TOK1D_RETURN_IF_ERROR(CheckOutput(options.input, options.output));
  // The image first, so that a bad input is reported before the model loads.
  TOK1D_ASSIGN_OR_RETURN(InputImage input, ReadInputImage(options.input, options.settings.metadata,
                                                          !options.settings.keep_orientation));
  for (const std::string& warning : input.warnings()) console.Warning(warning);
  TOK1D_ASSIGN_OR_RETURN(std::shared_ptr<const LoadedModel> model, LoadChosenModel(options.model));
  TOK1D_ASSIGN_OR_RETURN(std::unique_ptr<Session> session,
                         OpenSession(std::move(model), options.model, console));
  TOK1D_RETURN_IF_ERROR(CheckEncodeSettings(options.settings, *session));
  // A long search (--effort) shows its progress on a terminal.
  const bool bar =
      options.settings.options.effort > 0 && !console.quiet && isatty(STDERR_FILENO) != 0;
  bool drawn = false;
  auto progress = [&](double fraction) {
    constexpr int kWidth = 30;
    const int filled = static_cast<int>(fraction * kWidth);
    std::fprintf(stderr, "\r\033[Kencode [%s%s] %3d%%",
                 std::string(static_cast<size_t>(filled), '#').c_str(),
                 std::string(static_cast<size_t>(kWidth - filled), '.').c_str(),
                 static_cast<int>(fraction * 100));
    std::fflush(stderr);
    drawn = true;
  };
  StatusOr<EncodedImage> encoded_or =
      EncodeInputImage(*session, input, options.settings,
                       bar ? std::function<void(double)>(progress) : std::function<void(double)>());
  if (drawn) std::fprintf(stderr, "\r\033[K");
  TOK1D_ASSIGN_OR_RETURN(EncodedImage encoded, std::move(encoded_or));
  TOK1D_RETURN_IF_ERROR(WriteOutput(options.output, encoded.t1d));
  console.Note(DescribeEncode(input.name, DisplayName(options.output.path, true), encoded));
  return OkStatus();
}

}  // namespace

void AddEncodeSettings(CLI::App* command, EncodeSettings* settings) {
  CLI::Option_group* rate =
      command->add_option_group("rate", "exactly one of --tokens, --bytes, --bpp, --psnr");
  CLI::Option* tokens =
      rate->add_option("-t,--tokens", settings->options.tokens,
                       "tokens per tile, the same for every tile (1 … the model's K)")
          ->check(CLI::Range(1, 65535));
  rate->add_option("--bytes", settings->options.bytes, "largest file size in bytes")
      ->check(CLI::PositiveNumber);
  rate->add_option("--bpp", settings->options.bpp, "largest size in bits per pixel")
      ->check(CLI::PositiveNumber);
  rate->add_option("--psnr", settings->options.psnr,
                   "smallest file whose decoding reaches this PSNR (dB, RGB, against the input)")
      ->type_name("DB")
      ->check(CLI::PositiveNumber);
  rate->require_option(1);
  command
      ->add_option_function<std::string>(
          "--allocation",
          [settings](const std::string& name) {
            settings->options.allocation =
                name == "uniform" ? Allocation::kUniform : Allocation::kAdaptive;
          },
          "with --bytes, --bpp, --psnr: the same token count for every tile (uniform, faster) "
          "or more tokens for the tiles that gain most per byte (adaptive: about ten decodes "
          "more); default: uniform with --bytes and --bpp, adaptive with --psnr")
      ->check(CLI::IsMember({"uniform", "adaptive"}))
      ->excludes(tokens);
  command
      ->add_option_function<std::string>(
          "--coder",
          [settings](const std::string& name) {
            settings->options.coder = name == "raw" ? Coder::kRaw : Coder::kRange;
          },
          "entropy coder of the tokens: range (smaller; needs a model with entropy "
          "tables) or raw (default: range when the model has tables)")
      ->check(CLI::IsMember({"raw", "range"}));
  command
      ->add_option("--effort", settings->options.effort,
                   "0-9: search for better tokens through the decoder at encode time (0: the "
                   "encoder's tokens as they come; higher: smaller files at equal quality, "
                   "slower; see docs/effort.md)")
      ->check(CLI::Range(0u, kMaxEffort))
      ->capture_default_str();
  command->add_flag("--keep-orientation", settings->keep_orientation,
                    "code the pixels as stored: do not turn the image upright by its EXIF "
                    "orientation tag (default: turned, as image viewers show it)");
  command->add_flag("--stats", settings->options.compute_psnr,
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

Status CheckEncodeSettings(const EncodeSettings& settings, const Session& session) {
  return session.CheckEncodeOptions(settings.options);
}

TokenCounts CountTokens(std::span<const uint32_t> tokens_per_tile) {
  TokenCounts counts;
  if (tokens_per_tile.empty()) return counts;
  const auto [min, max] = std::minmax_element(tokens_per_tile.begin(), tokens_per_tile.end());
  counts.min = *min;
  counts.max = *max;
  counts.mean = static_cast<double>(
                    std::accumulate(tokens_per_tile.begin(), tokens_per_tile.end(), uint64_t{0})) /
                static_cast<double>(tokens_per_tile.size());
  return counts;
}

std::string DescribeTokenCounts(const TokenCounts& counts) {
  if (counts.uniform()) {
    return std::to_string(counts.max) + (counts.max == 1 ? " token per tile" : " tokens per tile");
  }
  return "mean " + FormatFixed(counts.mean, 1) + " tokens per tile (" + std::to_string(counts.min) +
         ".." + std::to_string(counts.max) + ")";
}

double EncodedImage::bpp() const {
  return static_cast<double>(t1d.size()) * 8.0 / (static_cast<double>(width) * height);
}

std::vector<std::string> InputImage::warnings() const {
  std::vector<std::string> lines;
  for (const std::string& warning : info.warnings) lines.push_back(name + ": " + warning);
  return lines;
}

StatusOr<InputImage> ReadInputImage(const std::string& path, const MetadataSelection& metadata,
                                    bool apply_orientation) {
  InputImage input;
  input.name = DisplayName(path);
  ImageReadOptions options;
  options.read_icc = metadata.icc;
  options.read_exif = metadata.exif;
  options.apply_orientation = apply_orientation;
  TOK1D_ASSIGN_OR_RETURN(input.image, ReadImage(path, options, &input.info));
  return input;
}

StatusOr<EncodedImage> EncodeInputImage(Session& session, const InputImage& input,
                                        const EncodeSettings& settings,
                                        const std::function<void(double)>& progress) {
  EncodeOptions options = settings.options;
  options.on_progress = progress;
  options.alpha_composited = input.info.alpha_composited;
  options.background = ImageReadOptions{}.background;
  if (settings.metadata.icc) options.icc = input.info.metadata.icc;
  if (settings.metadata.exif) options.exif = input.info.metadata.exif;
  TOK1D_ASSIGN_OR_RETURN(EncodeResult result, session.Encode(input.image, options));
  EncodedImage encoded;
  encoded.t1d = std::move(result.t1d);
  encoded.width = input.image.width;
  encoded.height = input.image.height;
  encoded.tiles = result.tokens_per_tile.size();
  encoded.tokens = CountTokens(result.tokens_per_tile);
  encoded.icc_bytes = options.icc.size();
  encoded.exif_bytes = options.exif.size();
  encoded.psnr = result.psnr;
  return encoded;
}

std::string DescribeEncode(const std::string& input, const std::string& output,
                           const EncodedImage& encoded) {
  std::string line = input + " (" + std::to_string(encoded.width) + "x" +
                     std::to_string(encoded.height) + ", " + std::to_string(encoded.tiles) +
                     " tiles) -> " + output + ": " + DescribeTokenCounts(encoded.tokens) + ", " +
                     FormatBytes(encoded.t1d.size()) + ", " + FormatFixed(encoded.bpp(), 4) +
                     " bpp";
  if (encoded.psnr) line += ", PSNR " + FormatFixed(*encoded.psnr, 2) + " dB";
  if (encoded.icc_bytes != 0) line += ", ICC profile " + FormatBytes(encoded.icc_bytes);
  if (encoded.exif_bytes != 0) line += ", EXIF " + FormatBytes(encoded.exif_bytes);
  return line;
}

Subcommand AddEncodeCommand(CLI::App& parent) {
  auto options = std::make_shared<EncodeCommandOptions>();
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

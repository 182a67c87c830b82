// tok1d compare: every quality metric tok1d knows for one pair of images (a reference and a
// distorted version of it), for people or (--json) for scripts, as `ssimulacra2` and
// `butteraugli_main` report theirs.
#include <cmath>
#include <cstdio>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>

#include "cli/cli_common.h"
#include "cli/commands.h"
#include "eval/codecs/image_codec.h"
#include "metrics/butteraugli.h"
#include "metrics/metrics.h"
#include "metrics/ssimulacra2.h"

namespace tok1d::cli {
namespace {

struct CompareOptions {
  std::string reference;
  std::string distorted;
  bool json = false;
};

// One metric's value, or why there is none (an image too small for the metric).
struct Score {
  std::optional<double> value;  // may be infinite: PSNR of equal images
  std::string why_not;          // when there is no value
};

struct Scores {
  Score psnr, psnr_y, ssim, msssim, ssimulacra2, butteraugli, butteraugli_3norm;
};

// The image in a file: PNG, JPEG, WebP, PPM through imageio; AVIF and JPEG XL through their
// codecs (eval/codecs). Errors and warnings name the file.
StatusOr<Image> ReadAnyImage(const std::string& path, const Console& console) {
  TOK1D_ASSIGN_OR_RETURN(std::vector<uint8_t> bytes, ReadFileBytes(path));
  const std::string name = DisplayName(path);
  if (DetectImageFormat(bytes) == ImageFormat::kUnknown) {
    for (const std::unique_ptr<ImageCodec>& codec : AllCodecs()) {
      if (!codec->Recognizes(bytes)) continue;
      StatusOr<Image> image = codec->Decode(bytes);
      if (!image.ok()) return image.status().WithContext(name);
      return image;
    }
  }
  ImageInfo info;
  StatusOr<Image> image = DecodeImage(bytes, {}, &info);
  if (!image.ok()) return image.status().WithContext(name);
  for (const std::string& warning : info.warnings) console.Warning(name + ": " + warning);
  return image;
}

Score FromDouble(double value, std::string why_not_if_nan) {
  if (std::isnan(value)) return {std::nullopt, std::move(why_not_if_nan)};
  return {value, {}};
}

Score FromStatus(const StatusOr<double>& value) {
  if (!value.ok()) return {std::nullopt, value.status().message()};
  return {*value, {}};
}

Scores Measure(const Image& reference, const Image& distorted) {
  Scores scores;
  scores.psnr = {Psnr(reference, distorted), {}};
  scores.psnr_y = {PsnrY(reference, distorted), {}};
  scores.ssim = FromDouble(Ssim(reference, distorted), "needs both sides of at least 11 pixels");
  scores.msssim =
      FromDouble(MsSsim(reference, distorted),
                 "needs both sides of at least " + std::to_string(kMsSsimMinSide) + " pixels");
  scores.ssimulacra2 = FromStatus(Ssimulacra2(reference, distorted));
  const StatusOr<ButteraugliResult> butteraugli = Butteraugli(reference, distorted);
  if (butteraugli.ok()) {
    scores.butteraugli = {butteraugli->max_norm, {}};
    scores.butteraugli_3norm = {butteraugli->norm3, {}};
  } else {
    scores.butteraugli = scores.butteraugli_3norm = {std::nullopt, butteraugli.status().message()};
  }
  return scores;
}

// The metrics in the order they are printed, with their JSON keys (a stable interface for
// scripts: add keys, never rename or remove them) and how they are shown.
struct MetricView {
  const char* key;
  Score Scores::*score;
  const char* format;  // printf format of the value
  const char* unit;
};
constexpr MetricView kMetrics[] = {
    {"psnr", &Scores::psnr, "%.4f", " dB"},
    {"psnr_y", &Scores::psnr_y, "%.4f", " dB"},
    {"ssim", &Scores::ssim, "%.6f", ""},
    {"msssim", &Scores::msssim, "%.6f", ""},
    {"ssimulacra2", &Scores::ssimulacra2, "%.6f", ""},
    {"butteraugli", &Scores::butteraugli, "%.6f", " (max-norm)"},
    {"butteraugli_3norm", &Scores::butteraugli_3norm, "%.6f", ""},
};

std::string FormatScore(const Score& score, const MetricView& view) {
  if (!score.value) return "n/a (" + score.why_not + ")";
  if (std::isinf(*score.value)) return std::string(*score.value > 0 ? "inf" : "-inf") + view.unit;
  char text[64];
  std::snprintf(text, sizeof(text), view.format, *score.value);
  return text + std::string(view.unit);
}

// JSON has no infinity: a metric without a finite value (PSNR of equal images, a metric the
// image is too small for) is null.
nlohmann::ordered_json CompareJson(const Scores& scores, const CompareOptions& options,
                                   const Image& image) {
  nlohmann::ordered_json json;
  json["reference"] = DisplayName(options.reference);
  json["distorted"] = DisplayName(options.distorted);
  json["width"] = image.width;
  json["height"] = image.height;
  for (const MetricView& view : kMetrics) {
    const Score& score = scores.*view.score;
    if (score.value && std::isfinite(*score.value)) {
      json[view.key] = *score.value;
    } else {
      json[view.key] = nullptr;
    }
  }
  json["identical"] = std::isinf(scores.psnr.value.value_or(0));
  return json;
}

Status RunCompare(const CompareOptions& options, const Console& console) {
  if (options.reference == "-" && options.distorted == "-") {
    return InvalidArgumentError("only one of the two images can be read from standard input");
  }
  TOK1D_ASSIGN_OR_RETURN(const Image reference, ReadAnyImage(options.reference, console));
  TOK1D_ASSIGN_OR_RETURN(const Image distorted, ReadAnyImage(options.distorted, console));
  if (reference.width != distorted.width || reference.height != distorted.height) {
    return InvalidArgumentError(
        "the images differ in size: " + DisplayName(options.reference) + " is " +
        std::to_string(reference.width) + "x" + std::to_string(reference.height) + ", " +
        DisplayName(options.distorted) + " is " + std::to_string(distorted.width) + "x" +
        std::to_string(distorted.height));
  }
  const Scores scores = Measure(reference, distorted);
  if (options.json) {
    std::cout << CompareJson(scores, options, reference).dump(2) << "\n";
  } else {
    for (const MetricView& view : kMetrics) {
      char label[32];
      std::snprintf(label, sizeof(label), "%-19s", (std::string(view.key) + ":").c_str());
      std::cout << label << FormatScore(scores.*view.score, view) << "\n";
    }
  }
  std::cout.flush();
  if (!std::cout) return IoError("cannot write to standard output");
  return OkStatus();
}

}  // namespace

Subcommand AddCompareCommand(CLI::App& parent) {
  auto options = std::make_shared<CompareOptions>();
  CLI::App* command = parent.add_subcommand(
      "compare",
      "Measure a distorted image against its reference: PSNR, PSNR-Y, SSIM, MS-SSIM, "
      "SSIMULACRA 2, Butteraugli");
  command
      ->add_option("REFERENCE", options->reference,
                   "the original image: PNG, JPEG, WebP, PPM, AVIF or JPEG XL ('-' reads "
                   "standard input)")
      ->required();
  command
      ->add_option("DISTORTED", options->distorted,
                   "the image to score, of the same size ('-' reads standard input)")
      ->required();
  command->add_flag("--json", options->json,
                    "print JSON for scripts (keys: reference, distorted, width, height, psnr, "
                    "psnr_y, ssim, msssim, ssimulacra2, butteraugli, butteraugli_3norm, "
                    "identical; null where a metric has no finite value)");
  return {command, [options](const Console& console) { return RunCompare(*options, console); }};
}

}  // namespace tok1d::cli

// tok1d sweep's work, without the command line: every codec at every setting on one image,
// scored against the original, and the summary over many images (averaged curves, BD-rates).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "eval/bd_rate.h"
#include "tok1d/tok1d.h"

namespace tok1d {

// What a sweep can measure of each decoded image (--metrics). kButteraugli gives two columns:
// the max-norm distance and the 3-norm.
enum class SweepMetric { kPsnr, kPsnrY, kSsim, kMsSsim, kSsimulacra2, kButteraugli };

// Every metric, in column order, with its command-line name ("psnr", "psnr_y", "ssim",
// "msssim", "ssimulacra2", "butteraugli").
const std::vector<SweepMetric>& AllSweepMetrics();
std::string SweepMetricName(SweepMetric metric);
// The metric called `name`; kInvalidArgument (naming them all) if there is none.
StatusOr<SweepMetric> ParseSweepMetric(const std::string& name);

// One plug-in codec of eval/codecs/ (image_codec.h) and the settings it runs at.
struct SweepCodec {
  std::string name;           // "jpeg", "webp", "avif", "jxl"
  std::vector<int> settings;  // the codec's own setting (quality, distance × 100, …)
};

struct SweepSettings {
  std::vector<uint32_t> tokens;  // tok1d: tokens per tile; empty: no tok1d rows
  bool adaptive = true;          // tok1d also with adaptive allocation (tok1d-adaptive)
  // tok1d at each of these EncodeOptions::effort levels: "tok1d" (0), "tok1d-e4", … (and
  // "tok1d-adaptive", "tok1d-adaptive-e4", …).
  std::vector<uint32_t> efforts = {0};
  std::vector<SweepCodec> codecs;      // plug-in codecs, in row order; each at every scale
  std::vector<uint32_t> scales = {1};  // plug-in codecs also shrunk by each factor
  std::vector<SweepMetric> metrics = AllSweepMetrics();  // those left out are NaN (empty)

  bool Measures(SweepMetric metric) const;
};

// The defaults: 1 2 4 8 16 32 48 64 96 128 tokens (those ≤ the model's K, and K itself);
// `codecs` (plug-in names, checked with FindCodec) each at its default_settings(); scales 1, 2,
// 4; every metric. kNotFound for a codec that is not in this build.
StatusOr<SweepSettings> DefaultSweepSettings(uint32_t model_tokens,
                                             const std::vector<std::string>& codecs = {"jpeg",
                                                                                       "webp"});

// The scores of one decoded image; NaN where a metric is switched off or undefined (MS-SSIM
// below 176 pixels a side, SSIMULACRA 2 and Butteraugli below 8).
struct SweepQuality {
  double psnr = 0;
  double psnr_y = 0;
  double ssim = 0;
  double msssim = 0;
  double ssimulacra2 = 0;        // 100: identical; higher is better
  double butteraugli = 0;        // max-norm distance; lower is better
  double butteraugli_3norm = 0;  // 3-norm; lower is better
};

// The metrics of `settings` on one pair; kInvalidArgument if the sizes differ. `metric_ms`, if
// given, gets the CPU time of the calling thread each metric took, in milliseconds (indexed by
// SweepMetric).
StatusOr<SweepQuality> SweepQualityOf(const Image& original, const Image& decoded,
                                      const std::vector<SweepMetric>& metrics,
                                      std::vector<double>* metric_ms = nullptr);

struct SweepRow {
  std::string image;
  std::string codec;   // "tok1d", "tok1d-adaptive" (-eN: at effort N), or a plug-in's name
  uint32_t scale = 1;  // encoded at 1/scale of each side, then upscaled back for scoring
  // tok1d: tokens per tile; tok1d-adaptive: the count whose uniform file size was the
  // budget (codec/rate_control.h); plug-ins: their setting (quality; JPEG XL: distance × 100).
  int setting = 0;
  uint64_t bytes = 0;  // the whole file
  double bpp = 0;      // of the original's pixels
  SweepQuality quality;
  double encode_ms = 0;           // plug-ins at a scale: including the downscale
  double decode_ms = 0;           // plug-ins at a scale: including the upscale
  std::vector<double> metric_ms;  // CPU ms spent on each metric (by SweepMetric); not in the CSV

  // The rate–quality curve the row belongs to: "tok1d", "jpeg", "jpeg 1/2", …
  std::string Curve() const;
};

size_t RowsPerImage(const SweepSettings& settings);

// Runs every setting on `image`; `codec` is needed only with tokens. `on_row` is called after
// each row (for a progress bar); rows come in the order codec, scale, setting.
StatusOr<std::vector<SweepRow>> SweepImage(const std::string& name, const Image& image,
                                           Session* codec, const SweepSettings& settings,
                                           const std::function<void()>& on_row = {});

// The CSV file: a header line, then one line per row. Columns: image, codec, scale, setting,
// bytes, bpp, psnr, psnr_y, ssim, msssim, encode_ms, decode_ms, ssimulacra2, butteraugli,
// butteraugli_3norm (the last three appended after the timings, so that the older columns keep
// their positions); a metric switched off or undefined is an empty field.
std::string SweepCsv(const std::vector<SweepRow>& rows);

// The quality axes of curves and BD-rates: each metric's column, Butteraugli as two.
enum class CurveMetric {
  kPsnr,
  kPsnrY,
  kSsim,
  kMsSsim,
  kSsimulacra2,
  kButteraugli,
  kButteraugli3Norm
};
// The key in summary.json and the CSV column: "psnr", …, "butteraugli_3norm".
std::string CurveMetricName(CurveMetric metric);
// Whether higher is better (false for the Butteraugli distances).
bool HigherIsBetter(CurveMetric metric);
// The curve metrics `settings` measures, in column order.
std::vector<CurveMetric> CurveMetricsOf(const SweepSettings& settings);

// Rate–quality curves by curve name, then image: the points of each metric. For a metric where
// lower is better the points hold the negated value, so that every curve rises with quality
// (bd_rate.h needs that).
using CurveSet = std::map<std::string, std::vector<std::vector<RatePoint>>>;
// Besides the rows' own curves, "<codec> best scale" pools every scale of a plug-in codec on
// an image, as a user who shrinks when it pays would.
CurveSet CurvesOf(const std::vector<SweepRow>& rows, CurveMetric metric);

// The plot of one metric: every curve of the rows (tok1d, each codec at each scale) averaged
// over the images at equal rate; colour by codec, dashes by scale. Butteraugli is drawn as the
// distance itself (lower is better).
std::string SweepPlotSvg(const std::vector<SweepRow>& rows, CurveMetric metric);

// The JSON summary: per curve the average over images at equal rate, per (curve, setting) the
// mean of every column, and the BD-rate of each tok1d curve against every other curve on each
// measured metric (the mean of per-image values, and the value between the averaged curves),
// and the CPU time of each metric per megapixel (metric_ms_per_megapixel). Butteraugli's
// BD-rates are on the negated distance (lower distance is better); its average curves hold the
// distance itself.
nlohmann::json SweepSummary(const std::vector<SweepRow>& rows, const SweepSettings& settings);

}  // namespace tok1d

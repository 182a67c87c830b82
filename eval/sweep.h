// tok1d sweep's work, without the command line: every codec at every setting on one image,
// scored against the original, and the summary over many images (averaged curves, BD-rates).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "metrics/metrics.h"
#include "tok1d/tok1d.h"
#include "eval/bd_rate.h"

namespace tok1d {

struct SweepSettings {
  std::vector<uint32_t> tokens;       // tok1d: tokens per tile; empty: no tok1d rows
  bool adaptive = true;               // tok1d also with adaptive allocation (tok1d-adaptive)
  std::vector<int> jpeg_qualities;    // empty: no JPEG rows
  std::vector<int> webp_qualities;    // empty: no WebP rows
  std::vector<uint32_t> scales = {1};  // JPEG and WebP also shrunk by each factor
};

// The defaults: 1 2 4 8 16 32 48 64 96 128 tokens (those ≤ the model's K, and K itself),
// JPEG qualities 1 … 95, WebP qualities 0 … 95, scales 1, 2, 4.
SweepSettings DefaultSweepSettings(uint32_t model_tokens);

struct SweepRow {
  std::string image;
  std::string codec;   // "tok1d", "tok1d-adaptive", "jpeg", "webp"
  uint32_t scale = 1;  // encoded at 1/scale of each side, then upscaled back for scoring
  // tok1d: tokens per tile; tok1d-adaptive: the count whose uniform file size was the
  // budget (codec/rate_control.h); jpeg, webp: quality.
  int setting = 0;
  uint64_t bytes = 0;  // the whole file
  double bpp = 0;      // of the original's pixels
  Quality quality;
  double encode_ms = 0;  // baselines at a scale: including the downscale
  double decode_ms = 0;  // baselines at a scale: including the upscale

  // The rate–quality curve the row belongs to: "tok1d", "jpeg", "jpeg 1/2", …
  std::string Curve() const;
};

size_t RowsPerImage(const SweepSettings& settings);

// Runs every setting on `image`; `codec` is needed only with tokens. `on_row` is called after
// each row (for a progress bar); rows come in the order codec, scale, setting.
StatusOr<std::vector<SweepRow>> SweepImage(const std::string& name, const Image& image,
                                           Session* codec, const SweepSettings& settings,
                                           const std::function<void()>& on_row = {});

// The CSV file: a header line, then one line per row.
std::string SweepCsv(const std::vector<SweepRow>& rows);

// Rate–quality curves by curve name, then image: the points of each metric.
enum class SweepMetric { kPsnr, kMsSsim };
using CurveSet = std::map<std::string, std::vector<std::vector<RatePoint>>>;
// Besides the rows' own curves, "jpeg best scale" and "webp best scale" pool every scale of a
// codec on an image, as a user who shrinks when it pays would.
CurveSet CurvesOf(const std::vector<SweepRow>& rows, SweepMetric metric);

// The plot of one metric: every curve of the rows (tok1d, each codec at each scale) averaged
// over the images at equal rate; colour by codec, dashes by scale.
std::string SweepPlotSvg(const std::vector<SweepRow>& rows, SweepMetric metric);

// The JSON summary: per curve the average over images at equal rate, per (curve, setting) the
// mean of every column, and the BD-rate of each tok1d curve against every other curve on PSNR
// and on MS-SSIM (the mean of per-image values, and the value between the averaged curves).
nlohmann::json SweepSummary(const std::vector<SweepRow>& rows, const SweepSettings& settings);

}  // namespace tok1d

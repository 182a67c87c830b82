// The sweep's plug-in rows and metric columns without the command line: metric subsets, the
// CSV columns, the Butteraugli curves (negated for BD-rates, the distance in the summary).
#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "eval/sweep.h"

namespace tok1d {
namespace {

// Smooth gradients with some texture, deterministic.
Image TestImage(uint32_t width, uint32_t height) {
  Image image{width, height, std::vector<uint8_t>(size_t{width} * height * 3)};
  uint32_t state = 7;
  for (uint32_t y = 0; y < height; ++y) {
    for (uint32_t x = 0; x < width; ++x) {
      state = state * 1103515245u + 12345u;
      uint8_t* pixel = &image.rgb[(size_t{y} * width + x) * 3];
      pixel[0] = static_cast<uint8_t>(x * 255 / width);
      pixel[1] = static_cast<uint8_t>(y * 255 / height);
      pixel[2] = static_cast<uint8_t>((128 + (x * y) % 64 + (state >> 16) % 16) % 256);
    }
  }
  return image;
}

TEST_CASE("SweepQualityOf measures only the metrics asked for") {
  const Image original = TestImage(64, 48);
  Image distorted = original;
  for (size_t i = 0; i < distorted.rgb.size(); i += 7) distorted.rgb[i] ^= 8;
  std::vector<double> ms;
  const StatusOr<SweepQuality> some =
      SweepQualityOf(original, distorted, {SweepMetric::kPsnr, SweepMetric::kButteraugli}, &ms);
  REQUIRE(some.ok());
  CHECK(std::isfinite(some->psnr));
  CHECK(std::isnan(some->psnr_y));
  CHECK(std::isnan(some->ssim));
  CHECK(std::isnan(some->msssim));
  CHECK(std::isnan(some->ssimulacra2));
  CHECK(some->butteraugli > 0);
  CHECK(some->butteraugli_3norm > 0);
  CHECK(some->butteraugli_3norm <= some->butteraugli);
  REQUIRE(ms.size() == AllSweepMetrics().size());
  CHECK(ms[static_cast<size_t>(SweepMetric::kSsimulacra2)] == 0);

  const StatusOr<SweepQuality> all = SweepQualityOf(original, distorted, AllSweepMetrics());
  REQUIRE(all.ok());
  CHECK(all->ssimulacra2 > 0);
  CHECK(all->ssimulacra2 < 100);
  CHECK(std::isnan(all->msssim));  // below 176 pixels a side

  const Image smaller = TestImage(32, 48);
  CHECK(SweepQualityOf(original, smaller, AllSweepMetrics()).status().code() ==
        StatusCode::kInvalidArgument);
}

TEST_CASE("Metric names parse back") {
  for (SweepMetric metric : AllSweepMetrics()) {
    const StatusOr<SweepMetric> parsed = ParseSweepMetric(SweepMetricName(metric));
    REQUIRE(parsed.ok());
    CHECK(*parsed == metric);
  }
  const StatusOr<SweepMetric> unknown = ParseSweepMetric("vmaf");
  REQUIRE_FALSE(unknown.ok());
  CHECK(unknown.status().message().find("ssimulacra2") != std::string::npos);
}

TEST_CASE("Default settings take each plug-in's ladder and refuse unknown codecs") {
  const StatusOr<SweepSettings> settings = DefaultSweepSettings(128, {"jpeg", "avif", "jxl"});
  REQUIRE(settings.ok());
  REQUIRE(settings->codecs.size() == 3);
  CHECK(settings->codecs[0].name == "jpeg");
  CHECK(settings->codecs[0].settings.front() == 1);
  CHECK(settings->codecs[2].name == "jxl");
  CHECK(settings->tokens.back() == 128);
  CHECK(settings->scales == std::vector<uint32_t>{1, 2, 4});
  CHECK(settings->metrics == AllSweepMetrics());
  CHECK(DefaultSweepSettings(128, {"png"}).status().code() == StatusCode::kNotFound);
}

TEST_CASE("Plug-in rows at each scale, new columns after the timings, Butteraugli curves") {
  const Image image = TestImage(96, 64);
  SweepSettings settings;
  settings.codecs = {{"webp", {10, 80}}, {"jxl", {400, 100}}};
  settings.scales = {1, 2};
  size_t calls = 0;
  const StatusOr<std::vector<SweepRow>> rows =
      SweepImage("a", image, nullptr, settings, [&calls] { ++calls; });
  REQUIRE(rows.ok());
  REQUIRE(rows->size() == RowsPerImage(settings));
  CHECK(calls == 8);
  CHECK((*rows)[2].codec == "webp");
  CHECK((*rows)[2].scale == 2);
  CHECK((*rows)[4].codec == "jxl");
  CHECK((*rows)[4].setting == 400);
  for (const SweepRow& row : *rows) {
    CHECK(row.bytes > 0);
    CHECK(row.quality.butteraugli > 0);
  }
  // JPEG XL at distance 1 beats distance 4 on every metric.
  CHECK((*rows)[5].quality.ssimulacra2 > (*rows)[4].quality.ssimulacra2);
  CHECK((*rows)[5].quality.butteraugli < (*rows)[4].quality.butteraugli);

  const std::string csv = SweepCsv(*rows);
  CHECK(
      csv.starts_with("image,codec,scale,setting,bytes,bpp,psnr,psnr_y,ssim,msssim,encode_ms,"
                      "decode_ms,ssimulacra2,butteraugli,butteraugli_3norm\n"));

  // Curves hold the negated distance (rising with quality); the plot and summary the distance.
  const CurveSet curves = CurvesOf(*rows, CurveMetric::kButteraugli);
  REQUIRE(curves.count("jxl best scale") == 1);
  for (const RatePoint& point : curves.at("jxl")[0]) CHECK(point.quality < 0);
  const nlohmann::json summary = SweepSummary(*rows, settings);
  for (const auto& point : summary["average_curves"]["butteraugli"]["jxl"]) {
    CHECK(point[1].get<double>() > 0);
  }
  CHECK(summary["settings"]["codecs"]["jxl"] == nlohmann::json({400, 100}));
  CHECK(summary["metric_ms_per_megapixel"]["butteraugli"].get<double>() > 0);
  CHECK(SweepPlotSvg(*rows, CurveMetric::kButteraugli).find("Butteraugli") != std::string::npos);
  CHECK_FALSE(HigherIsBetter(CurveMetric::kButteraugli3Norm));
  CHECK(HigherIsBetter(CurveMetric::kSsimulacra2));
}

}  // namespace
}  // namespace tok1d

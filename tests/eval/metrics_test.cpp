// Quality metrics (codec/metrics.h) on known cases and against the independent PyTorch
// reference: tests/data/metrics/reference.json, written by tests/eval/reference_metrics.py.
#include <doctest/doctest.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <string>

#include "metrics/metrics.h"

namespace tok1d {
namespace {

Image Filled(uint32_t width, uint32_t height, uint8_t value) {
  return Image{width, height, std::vector<uint8_t>(size_t{width} * height * 3, value)};
}

// The synthetic pair of reference_metrics.py (pattern() and noisy()), integer for integer.
Image Pattern(uint32_t width, uint32_t height) {
  Image image = Filled(width, height, 0);
  for (uint32_t y = 0; y < height; ++y) {
    for (uint32_t x = 0; x < width; ++x) {
      for (uint32_t c = 0; c < 3; ++c) {
        uint32_t value = 20 + x * (100 + 40 * c) / width + y * (150 - 30 * c) / height;
        if ((x / 24 + y / 24) % 2 != 0) value += 40;
        image.rgb[(size_t{y} * width + x) * 3 + c] = static_cast<uint8_t>(std::min(value, 255u));
      }
    }
  }
  return image;
}

Image Noisy(const Image& image, int amplitude, uint64_t seed) {
  Image out = image;
  uint64_t state = seed;
  for (uint8_t& sample : out.rgb) {
    state = state * 6364136223846793005ull + 1442695040888963407ull;
    const auto offset = static_cast<int>((state >> 32) % static_cast<uint64_t>(2 * amplitude + 1));
    sample = static_cast<uint8_t>(std::clamp(sample - amplitude + offset, 0, 255));
  }
  return out;
}

TEST_CASE("identical images: infinite PSNR, SSIM and MS-SSIM exactly 1") {
  const Image image = Pattern(200, 180);
  const StatusOr<Quality> quality = QualityOf(image, image);
  REQUIRE(quality.ok());
  CHECK(std::isinf(quality->psnr));
  CHECK(std::isinf(quality->psnr_y));
  CHECK(quality->ssim == doctest::Approx(1.0).epsilon(1e-12));
  CHECK(quality->msssim == doctest::Approx(1.0).epsilon(1e-12));
}

TEST_CASE("PSNR of a constant error") {
  const Image a = Filled(16, 8, 100), b = Filled(16, 8, 110);
  CHECK(Psnr(a, b) == doctest::Approx(10 * std::log10(255.0 * 255.0 / 100.0)));
  // Y weights sum to 1, so a grey shift moves luma by the same amount.
  CHECK(PsnrY(a, b) == doctest::Approx(Psnr(a, b)));
  // A pure blue error is seen at 0.114 of its size in luma.
  Image blue = a;
  for (size_t i = 2; i < blue.rgb.size(); i += 3) blue.rgb[i] = 110;
  CHECK(PsnrY(a, blue) == doctest::Approx(10 * std::log10(255.0 * 255.0 / (1.14 * 1.14))));
}

TEST_CASE("SSIM of constant images: only the luminance term differs") {
  // Flat images: zero variances, so SSIM = (2·μx·μy + C1) / (μx² + μy² + C1).
  const double c1 = (0.01 * 255) * (0.01 * 255);
  const double expected = (2.0 * 100 * 110 + c1) / (100.0 * 100 + 110.0 * 110 + c1);
  CHECK(Ssim(Filled(40, 30, 100), Filled(40, 30, 110)) == doctest::Approx(expected).epsilon(1e-12));
}

TEST_CASE("metrics agree with the PyTorch reference on noisy synthetic pairs") {
  std::ifstream in(std::string(TOK1D_TEST_DATA_DIR) + "/metrics/reference.json");
  REQUIRE(in.good());
  const nlohmann::json reference = nlohmann::json::parse(in);
  REQUIRE(reference["cases"].size() == 3);
  for (const nlohmann::json& expected : reference["cases"]) {
    CAPTURE(expected["name"].get<std::string>());
    const Image original = Pattern(expected["width"], expected["height"]);
    const Image decoded = Noisy(original, expected["amplitude"], expected["seed"]);
    const StatusOr<Quality> quality = QualityOf(original, decoded);
    REQUIRE(quality.ok());
    // Both sides compute in double; only summation order differs.
    CHECK(quality->psnr == doctest::Approx(expected["psnr"].get<double>()).epsilon(1e-9));
    CHECK(quality->psnr_y == doctest::Approx(expected["psnr_y"].get<double>()).epsilon(1e-9));
    CHECK(std::abs(quality->ssim - expected["ssim"].get<double>()) < 1e-9);
    CHECK(std::abs(quality->msssim - expected["msssim"].get<double>()) < 1e-9);
  }
}

TEST_CASE("MS-SSIM needs both sides of at least 176 pixels") {
  const Image small = Pattern(175, 300);
  CHECK(std::isnan(MsSsim(small, small)));
  CHECK(std::isnan(Ssim(Filled(10, 40, 1), Filled(10, 40, 1))));
  const Image enough = Pattern(176, 176);
  CHECK(MsSsim(enough, Noisy(enough, 10, 5)) < 1.0);
}

TEST_CASE("QualityOf refuses images of different sizes") {
  const StatusOr<Quality> quality = QualityOf(Filled(4, 4, 0), Filled(4, 5, 0));
  REQUIRE_FALSE(quality.ok());
  CHECK(quality.status().code() == StatusCode::kInvalidArgument);
  CHECK(quality.status().message() == "cannot compare a 4x4 image with a 4x5 one");
}

TEST_CASE("bits per pixel of a whole file") {
  CHECK(BitsPerPixel(1000, 100, 80) == doctest::Approx(1.0));
  CHECK(BitsPerPixel(1, 768, 512) == doctest::Approx(8.0 / 393216));
}

}  // namespace
}  // namespace tok1d

// Area downscaling and bicubic upscaling (eval/resample.h).
#include <doctest/doctest.h>

#include <cstdlib>

#include "eval/resample.h"

namespace tok1d {
namespace {

Image Gradient(uint32_t width, uint32_t height) {
  Image image{width, height, std::vector<uint8_t>(size_t{width} * height * 3)};
  for (uint32_t y = 0; y < height; ++y) {
    for (uint32_t x = 0; x < width; ++x) {
      uint8_t* pixel = &image.rgb[(size_t{y} * width + x) * 3];
      pixel[0] = static_cast<uint8_t>(x * 10);
      pixel[1] = static_cast<uint8_t>(y * 10);
      pixel[2] = static_cast<uint8_t>((x + y) % 2 * 200);
    }
  }
  return image;
}

TEST_CASE("area downscale by 2 averages 2 x 2 blocks") {
  const Image half = DownscaleArea(Gradient(6, 4), 3, 2);
  REQUIRE(half.rgb.size() == 3 * 2 * 3);
  // Block (x 2..3, y 0..1): red (20+30)/2 = 25, green (0+10)/2 = 5, blue half 200s = 100.
  const uint8_t* pixel = &half.rgb[1 * 3];
  CHECK(pixel[0] == 25);
  CHECK(pixel[1] == 5);
  CHECK(pixel[2] == 100);
}

TEST_CASE("area downscale by a non-integer factor weights partial pixels") {
  // 3 → 2 columns: output 0 covers inputs 0 and half of 1: (0 + 0.5·10) / 1.5 = 3.33 → 3.
  const Image out = DownscaleArea(Gradient(3, 1), 2, 1);
  CHECK(out.rgb[0] == 3);
  CHECK(out.rgb[3] == 17);  // (0.5·10 + 20) / 1.5 = 16.67
}

TEST_CASE("bicubic upscale keeps flat images flat and linear ramps nearly linear") {
  Image flat{4, 3, std::vector<uint8_t>(4 * 3 * 3, 77)};
  const Image big = UpscaleBicubic(flat, 9, 7);
  REQUIRE(big.rgb.size() == 9 * 7 * 3);
  for (uint8_t sample : big.rgb) CHECK(sample == 77);
  // Red ramps by 10 per input pixel: 5 per output pixel at ×2, away from the edges.
  const Image ramp = UpscaleBicubic(Gradient(8, 2), 16, 4);
  for (uint32_t x = 4; x < 12; ++x) {
    CHECK(std::abs(static_cast<int>(ramp.rgb[x * 3]) - static_cast<int>(5 * x - 2.5 + 0.5)) <= 1);
  }
}

TEST_CASE("scaled sides round and never reach 0") {
  CHECK(ScaledSide(768, 4) == 192);
  CHECK(ScaledSide(13, 2) == 7);
  CHECK(ScaledSide(13, 4) == 3);
  CHECK(ScaledSide(1, 4) == 1);
}

}  // namespace
}  // namespace tok1d

// JPEG and WebP through their libraries (eval/baselines.h): decodable, sized by quality,
// 4:2:0 with optimized Huffman tables for JPEG. Byte-exactness against cjpeg and cwebp is
// checked by test_sweep_cli.py when those tools are installed.
#include <doctest/doctest.h>

// jpeglib.h needs size_t and FILE declared first.
#include <cstddef>
#include <cstdio>

#include <jpeglib.h>

#include "eval/baselines.h"
#include "imageio/image_io.h"
#include "metrics/metrics.h"

namespace tok1d {
namespace {

Image Pattern(uint32_t width, uint32_t height) {
  Image image{width, height, std::vector<uint8_t>(size_t{width} * height * 3)};
  for (uint32_t y = 0; y < height; ++y) {
    for (uint32_t x = 0; x < width; ++x) {
      uint8_t* pixel = &image.rgb[(size_t{y} * width + x) * 3];
      pixel[0] = static_cast<uint8_t>(x * 4);
      pixel[1] = static_cast<uint8_t>((x ^ y) * 3);
      pixel[2] = static_cast<uint8_t>(y * 5 + (x / 8) * 20);
    }
  }
  return image;
}

// Sampling factors of the luma component and whether the tables are the standard ones.
struct JpegLayout {
  int luma_h = 0, luma_v = 0;
  bool progressive = false;
};

JpegLayout ReadLayout(const std::vector<uint8_t>& bytes) {
  jpeg_decompress_struct cinfo{};
  jpeg_error_mgr errors{};
  cinfo.err = jpeg_std_error(&errors);
  jpeg_create_decompress(&cinfo);
  jpeg_mem_src(&cinfo, bytes.data(), static_cast<unsigned long>(bytes.size()));
  jpeg_read_header(&cinfo, TRUE);
  JpegLayout layout{cinfo.comp_info[0].h_samp_factor, cinfo.comp_info[0].v_samp_factor,
                    cinfo.progressive_mode != 0};
  jpeg_destroy_decompress(&cinfo);
  return layout;
}

TEST_CASE("JPEG: 4:2:0 baseline, decodable, larger and better at higher quality") {
  const Image image = Pattern(61, 47);  // odd sizes: partial MCUs
  const StatusOr<std::vector<uint8_t>> low = EncodeJpeg(image, 10);
  const StatusOr<std::vector<uint8_t>> high = EncodeJpeg(image, 90);
  REQUIRE(low.ok());
  REQUIRE(high.ok());
  CHECK(low->size() < high->size());
  const JpegLayout layout = ReadLayout(*high);
  CHECK(layout.luma_h == 2);
  CHECK(layout.luma_v == 2);
  CHECK_FALSE(layout.progressive);
  const StatusOr<Image> decoded_low = DecodeImage(*low), decoded_high = DecodeImage(*high);
  REQUIRE(decoded_low.ok());
  REQUIRE(decoded_high.ok());
  CHECK(Psnr(image, *decoded_low) < Psnr(image, *decoded_high));
  CHECK(Psnr(image, *decoded_high) > 25);
  // Quality 1 needs 16-bit quantization tables (cjpeg allows them without -baseline).
  CHECK(EncodeJpeg(image, 1).ok());
}

TEST_CASE("WebP: decodable, larger and better at higher quality") {
  const Image image = Pattern(61, 47);
  const StatusOr<std::vector<uint8_t>> low = EncodeWebp(image, 0);
  const StatusOr<std::vector<uint8_t>> high = EncodeWebp(image, 95);
  REQUIRE(low.ok());
  REQUIRE(high.ok());
  CHECK(low->size() < high->size());
  CHECK(DetectImageFormat(*high) == ImageFormat::kWebp);
  const StatusOr<Image> decoded = DecodeImage(*high);
  REQUIRE(decoded.ok());
  CHECK(decoded->width == 61);
  CHECK(Psnr(image, *decoded) > 25);
}

TEST_CASE("baseline qualities out of range are refused") {
  const Image image = Pattern(8, 8);
  CHECK(EncodeJpeg(image, 0).status().message() == "JPEG quality 0 is not in 1..100");
  CHECK(EncodeJpeg(image, 101).status().code() == StatusCode::kInvalidArgument);
  CHECK(EncodeWebp(image, -1).status().message() == "WebP quality -1 is not in 0..100");
}

}  // namespace
}  // namespace tok1d

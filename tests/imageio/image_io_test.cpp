#include <doctest/doctest.h>

#include <png.h>

#include <cmath>
#include <cstring>
#include <string>

#include "imageio/image_io.h"
#include "temp_dir.h"
#include "test_images.h"

namespace tok1d {
namespace {

using testing::MakeJpeg;
using testing::MakePng;
using testing::MakeWebp;
using testing::Pattern;

constexpr uint32_t kW = 23, kH = 17;  // odd sizes catch stride mistakes

uint8_t Scale(uint32_t value, uint32_t max) {  // round(value · 255 / max)
  return static_cast<uint8_t>((value * 255 * 2 + max) / (2 * max));
}

uint8_t Blend(uint32_t color, uint32_t alpha, uint32_t background) {
  uint32_t x = color * alpha + background * (255 - alpha);
  return static_cast<uint8_t>((2 * x + 255) / 510);
}

// Expected RGB of a PNG test image, computed independently of the reader.
std::vector<uint8_t> ExpectedRgb(int color_type, int bit_depth,
                                 const std::vector<uint16_t>& samples,
                                 const std::vector<uint8_t>& palette = {},
                                 const std::vector<uint16_t>& trns = {},
                                 std::array<uint8_t, 3> background = {255, 255, 255}) {
  const uint32_t max = (1u << bit_depth) - 1;
  std::vector<uint8_t> rgb;
  const size_t pixels = size_t{kW} * kH;
  for (size_t p = 0; p < pixels; ++p) {
    uint8_t c[3] = {0, 0, 0};
    uint32_t alpha = 255;
    switch (color_type) {
      case PNG_COLOR_TYPE_GRAY:
        c[0] = c[1] = c[2] = Scale(samples[p], max);
        if (!trns.empty() && samples[p] == trns[0]) alpha = 0;
        break;
      case PNG_COLOR_TYPE_GRAY_ALPHA:
        c[0] = c[1] = c[2] = Scale(samples[2 * p], max);
        alpha = Scale(samples[2 * p + 1], max);
        break;
      case PNG_COLOR_TYPE_RGB:
        for (int i = 0; i < 3; ++i) c[i] = Scale(samples[3 * p + static_cast<size_t>(i)], max);
        break;
      case PNG_COLOR_TYPE_RGB_ALPHA:
        for (int i = 0; i < 3; ++i) c[i] = Scale(samples[4 * p + static_cast<size_t>(i)], max);
        alpha = Scale(samples[4 * p + 3], max);
        break;
      case PNG_COLOR_TYPE_PALETTE:
        for (int i = 0; i < 3; ++i) c[i] = palette[3 * samples[p] + static_cast<size_t>(i)];
        if (samples[p] < trns.size()) alpha = trns[samples[p]];
        break;
    }
    for (int i = 0; i < 3; ++i)
      rgb.push_back(Blend(c[i], alpha, background[static_cast<size_t>(i)]));
  }
  return rgb;
}

void CheckDecodesTo(const std::vector<uint8_t>& file, const std::vector<uint8_t>& expected,
                    const ImageReadOptions& options = {}) {
  ImageInfo info;
  auto image = DecodeImage(file, options, &info);
  REQUIRE_MESSAGE(image.ok(), image.status().message());
  CHECK(image->width == kW);
  CHECK(image->height == kH);
  CHECK(image->rgb == expected);
}

TEST_CASE("PNG: every colour type and bit depth decodes to rounded 8-bit RGB") {
  struct Case {
    int color_type;
    int bit_depth;
    int channels;
  };
  const Case cases[] = {
      {PNG_COLOR_TYPE_GRAY, 1, 1},        {PNG_COLOR_TYPE_GRAY, 2, 1},
      {PNG_COLOR_TYPE_GRAY, 4, 1},        {PNG_COLOR_TYPE_GRAY, 8, 1},
      {PNG_COLOR_TYPE_GRAY, 16, 1},       {PNG_COLOR_TYPE_GRAY_ALPHA, 8, 2},
      {PNG_COLOR_TYPE_GRAY_ALPHA, 16, 2}, {PNG_COLOR_TYPE_RGB, 8, 3},
      {PNG_COLOR_TYPE_RGB, 16, 3},        {PNG_COLOR_TYPE_RGB_ALPHA, 8, 4},
      {PNG_COLOR_TYPE_RGB_ALPHA, 16, 4},
  };
  for (const Case& c : cases) {
    CAPTURE(c.color_type);
    CAPTURE(c.bit_depth);
    auto samples = Pattern(kW, kH, c.channels, 1u << c.bit_depth);
    auto png = MakePng(kW, kH, c.color_type, c.bit_depth, samples);
    CheckDecodesTo(png, ExpectedRgb(c.color_type, c.bit_depth, samples));
    ImageInfo info;
    REQUIRE(DecodeImage(png, {}, &info).ok());
    CHECK(info.format == ImageFormat::kPng);
    CHECK(info.had_alpha == ((c.color_type & PNG_COLOR_MASK_ALPHA) != 0));
    CHECK(info.alpha_composited == info.had_alpha);  // the pattern has translucent pixels
    CHECK(info.warnings.size() == (info.had_alpha ? 1u : 0u));
  }
}

TEST_CASE("PNG: palettes, with and without tRNS, and gray with a transparent key") {
  std::vector<uint8_t> palette;
  for (uint32_t i = 0; i < 256; ++i) {
    palette.push_back(static_cast<uint8_t>(i * 7));
    palette.push_back(static_cast<uint8_t>(255 - i));
    palette.push_back(static_cast<uint8_t>(i * 13));
  }
  for (int bit_depth : {1, 2, 4, 8}) {
    CAPTURE(bit_depth);
    const uint32_t entries = 1u << bit_depth;
    std::vector<uint8_t> used(palette.begin(), palette.begin() + 3 * entries);
    auto indices = Pattern(kW, kH, 1, entries);
    CheckDecodesTo(MakePng(kW, kH, PNG_COLOR_TYPE_PALETTE, bit_depth, indices, used),
                   ExpectedRgb(PNG_COLOR_TYPE_PALETTE, bit_depth, indices, used));
    std::vector<uint16_t> alphas = {0, 128};  // shorter than the palette: the rest are opaque
    ImageReadOptions on_blue;
    on_blue.background = {0, 0, 255};
    CheckDecodesTo(
        MakePng(kW, kH, PNG_COLOR_TYPE_PALETTE, bit_depth, indices, used, alphas),
        ExpectedRgb(PNG_COLOR_TYPE_PALETTE, bit_depth, indices, used, alphas, {0, 0, 255}),
        on_blue);
  }
  auto gray = Pattern(kW, kH, 1, 256);
  std::vector<uint16_t> key = {gray[5]};
  auto png = MakePng(kW, kH, PNG_COLOR_TYPE_GRAY, 8, gray, {}, key);
  CheckDecodesTo(png, ExpectedRgb(PNG_COLOR_TYPE_GRAY, 8, gray, {}, key));
  ImageInfo info;
  REQUIRE(DecodeImage(png, {}, &info).ok());
  CHECK(info.had_alpha);
  CHECK(info.alpha_composited);
}

TEST_CASE("PNG writer round-trips through the reader") {
  Image image{kW, kH, {}};
  for (uint16_t v : Pattern(kW, kH, 3, 256)) image.rgb.push_back(static_cast<uint8_t>(v));
  for (ImageFormat format : {ImageFormat::kPng, ImageFormat::kPnm}) {
    auto encoded = EncodeImage(image, format);
    REQUIRE(encoded.ok());
    CHECK(DetectImageFormat(*encoded) == format);
    auto decoded = DecodeImage(*encoded);
    REQUIRE(decoded.ok());
    CHECK(decoded->rgb == image.rgb);
  }
  CHECK(EncodeImage(Image{2, 2, {1, 2, 3}}, ImageFormat::kPng).status().code() ==
        StatusCode::kInvalidArgument);
}

TEST_CASE("PNG: a truncated file is an error at every cut, never a crash") {
  auto png = MakePng(kW, kH, PNG_COLOR_TYPE_RGB, 8, Pattern(kW, kH, 3, 256));
  for (size_t cut = 8; cut < png.size(); cut += 7) {  // from the end of the signature
    CAPTURE(cut);
    auto image = DecodeImage(std::span(png).first(cut));
    REQUIRE_FALSE(image.ok());
    CHECK((image.status().code() == StatusCode::kTruncated ||
           image.status().code() == StatusCode::kCorrupt));
  }
  auto cut_in_data = DecodeImage(std::span(png).first(png.size() / 2));
  CHECK(cut_in_data.status().code() == StatusCode::kTruncated);
  CHECK(cut_in_data.status().message().find("truncated") != std::string::npos);
}

uint32_t Crc32(const uint8_t* data, size_t size) {
  uint32_t crc = 0xFFFFFFFF;
  for (size_t i = 0; i < size; ++i) {
    crc ^= data[i];
    for (int bit = 0; bit < 8; ++bit) crc = (crc >> 1) ^ (0xEDB88320u & (0u - (crc & 1)));
  }
  return ~crc;
}

void AppendPngChunk(std::vector<uint8_t>* png, const char* type, std::vector<uint8_t> data) {
  auto be32 = [&](uint32_t v) {
    for (int shift = 24; shift >= 0; shift -= 8) png->push_back(static_cast<uint8_t>(v >> shift));
  };
  be32(static_cast<uint32_t>(data.size()));
  size_t start = png->size();
  png->insert(png->end(), type, type + 4);
  png->insert(png->end(), data.begin(), data.end());
  be32(Crc32(png->data() + start, png->size() - start));
}

TEST_CASE("PNG claiming 100000x100000 pixels is refused from its header") {
  std::vector<uint8_t> png = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'};
  // IHDR: 100000 x 100000, 8-bit RGB.
  AppendPngChunk(&png, "IHDR", {0, 1, 0x86, 0xA0, 0, 1, 0x86, 0xA0, 8, 2, 0, 0, 0});
  AppendPngChunk(&png, "IDAT", {0x78, 0x9C, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01});
  AppendPngChunk(&png, "IEND", {});
  auto image = DecodeImage(png);
  REQUIRE_FALSE(image.ok());
  CHECK(image.status().code() == StatusCode::kTooLarge);
  CHECK(image.status().message().find("100000x100000") != std::string::npos);
}

TEST_CASE("The pixel limit can be lowered and raised, for every format") {
  const uint32_t w = 64, h = 64;
  std::vector<uint8_t> rgb(size_t{w} * h * 3, 100);
  Image image{w, h, rgb};
  const std::vector<std::vector<uint8_t>> files = {*EncodeImage(image, ImageFormat::kPng),
                                                   *EncodeImage(image, ImageFormat::kPnm),
                                                   MakeJpeg(w, h, 3, rgb), MakeWebp(w, h, 3, rgb)};
  for (const auto& file : files) {
    CAPTURE(ImageFormatName(DetectImageFormat(file)));
    ImageReadOptions options;
    options.max_pixels = w * h - 1;
    CHECK(DecodeImage(file, options).status().code() == StatusCode::kTooLarge);
    options.max_pixels = w * h;
    CHECK(DecodeImage(file, options).ok());
  }
}

double MeanAbsoluteError(const std::vector<uint8_t>& a, const std::vector<uint8_t>& b) {
  REQUIRE(a.size() == b.size());
  double sum = 0;
  for (size_t i = 0; i < a.size(); ++i) sum += std::abs(int{a[i]} - int{b[i]});
  return sum / static_cast<double>(a.size());
}

std::vector<uint8_t> Smooth(uint32_t w, uint32_t h, int channels) {
  std::vector<uint8_t> samples;
  for (uint32_t y = 0; y < h; ++y)
    for (uint32_t x = 0; x < w; ++x)
      for (int c = 0; c < channels; ++c)
        samples.push_back(
            static_cast<uint8_t>((x * 4 + y * 2 + static_cast<uint32_t>(c) * 40) % 256));
  return samples;
}

TEST_CASE("JPEG: grayscale and YCbCr decode close to the source") {
  const uint32_t w = 48, h = 32;
  auto gray = Smooth(w, h, 1);
  auto image = DecodeImage(MakeJpeg(w, h, 1, gray));
  REQUIRE(image.ok());
  std::vector<uint8_t> gray_rgb;
  for (uint8_t v : gray) gray_rgb.insert(gray_rgb.end(), {v, v, v});
  CHECK(MeanAbsoluteError(image->rgb, gray_rgb) < 2.0);

  auto rgb = Smooth(w, h, 3);
  ImageInfo info;
  image = DecodeImage(MakeJpeg(w, h, 3, rgb), {}, &info);
  REQUIRE(image.ok());
  CHECK(info.format == ImageFormat::kJpeg);
  CHECK(MeanAbsoluteError(image->rgb, rgb) < 3.0);
}

TEST_CASE("JPEG: Adobe CMYK and YCCK are inverted, then converted to RGB") {
  const uint32_t w = 48, h = 32;
  auto rgb = Smooth(w, h, 3);
  // Stored (inverted) values C' = R, M' = G, Y' = B, K' = 200 mean RGB = (R, G, B) · 200 / 255.
  std::vector<uint8_t> cmyk, expected;
  for (size_t i = 0; i < rgb.size(); i += 3) {
    cmyk.insert(cmyk.end(), {rgb[i], rgb[i + 1], rgb[i + 2], 200});
    for (int c = 0; c < 3; ++c)
      expected.push_back(static_cast<uint8_t>(rgb[i + static_cast<size_t>(c)] * 200 / 255));
  }
  for (bool ycck : {false, true}) {
    CAPTURE(ycck);
    ImageInfo info;
    auto image = DecodeImage(MakeJpeg(w, h, 4, cmyk, ycck), {}, &info);
    REQUIRE_MESSAGE(image.ok(), image.status().message());
    CHECK(info.channels == 4);
    CHECK(info.warnings.size() == 1);
    // Lossy (YCCK more so); a missing inversion or a wrong formula is off by tens.
    CHECK(MeanAbsoluteError(image->rgb, expected) < 5.0);
  }
}

TEST_CASE("JPEG: a truncated file is an error") {
  auto jpeg = MakeJpeg(48, 32, 3, Smooth(48, 32, 3));
  auto image = DecodeImage(std::span(jpeg).first(jpeg.size() / 2));
  CHECK(image.status().code() == StatusCode::kTruncated);
  for (size_t cut = 1; cut < jpeg.size(); cut += 13) {
    CHECK_FALSE(DecodeImage(std::span(jpeg).first(cut)).ok());
  }
}

TEST_CASE("WebP: RGB is exact and RGBA is composited over the background") {
  auto rgb = Smooth(kW, kH, 3);
  auto image = DecodeImage(MakeWebp(kW, kH, 3, rgb));
  REQUIRE(image.ok());
  CHECK(image->rgb == rgb);

  auto rgba = Smooth(kW, kH, 4);
  std::vector<uint8_t> expected;
  for (size_t i = 0; i < rgba.size(); i += 4) {
    for (size_t c = 0; c < 3; ++c)
      expected.push_back(Blend(rgba[i + c], rgba[i + 3], c == 1 ? 255 : 0));
  }
  ImageReadOptions on_green;
  on_green.background = {0, 255, 0};
  ImageInfo info;
  auto webp = MakeWebp(kW, kH, 4, rgba);
  image = DecodeImage(webp, on_green, &info);
  REQUIRE(image.ok());
  CHECK(info.had_alpha);
  CHECK(image->rgb == expected);
  CHECK_FALSE(DecodeImage(std::span(webp).first(webp.size() - 10)).ok());
}

std::vector<uint8_t> Text(std::string_view text) { return {text.begin(), text.end()}; }

TEST_CASE("PPM/PGM: comments, maxval scaling, 16-bit samples, bad headers") {
  auto ppm = Text("P6\n# a comment\n2 1 # another\n255\n");
  ppm.insert(ppm.end(), {1, 2, 3, 250, 251, 252});
  auto image = DecodeImage(ppm);
  REQUIRE(image.ok());
  CHECK(image->rgb == std::vector<uint8_t>{1, 2, 3, 250, 251, 252});

  auto pgm = Text("P5 3 1 1000\n");
  pgm.insert(pgm.end(), {0, 0, 0x01, 0xF4, 0x03, 0xE8});  // 0, 500, 1000 (big-endian)
  image = DecodeImage(pgm);
  REQUIRE(image.ok());
  CHECK(image->rgb == std::vector<uint8_t>{0, 0, 0, 128, 128, 128, 255, 255, 255});

  auto ppm16 = Text("P6 1 1 65535\n");
  ppm16.insert(ppm16.end(), {0xFF, 0xFF, 0x80, 0x00, 0x00, 0x80});
  image = DecodeImage(ppm16);
  REQUIRE(image.ok());
  CHECK(image->rgb == std::vector<uint8_t>{255, Scale(0x8000, 65535), Scale(0x80, 65535)});

  CHECK(DecodeImage(Text("P6 2 2 255\n\x01\x02")).status().code() == StatusCode::kTruncated);
  CHECK(DecodeImage(Text("P6 2 2 0\n")).status().code() == StatusCode::kCorrupt);
  CHECK(DecodeImage(Text("P5 2 2 70000\n")).status().code() == StatusCode::kCorrupt);
  CHECK(DecodeImage(Text("P6 -1 2 255\n")).status().code() == StatusCode::kCorrupt);
  CHECK(DecodeImage(Text("P5 2 1 255\n\x05\x06")).ok());
  CHECK(DecodeImage(Text("P5 2 1 100\n\x05\x65")).status().code() == StatusCode::kCorrupt);
  CHECK(DecodeImage(Text("P6 100000 100000 255\n")).status().code() == StatusCode::kTooLarge);
}

TEST_CASE("Text and empty files are not images") {
  auto text = DecodeImage(Text("hello, I am a text file\n"));
  CHECK(text.status().code() == StatusCode::kUnsupported);
  CHECK(text.status().message().find("not a PNG") != std::string::npos);
  CHECK(DecodeImage({}).status().code() == StatusCode::kCorrupt);
}

TEST_CASE("ReadImage and WriteImage use files, name them in errors, and pick PPM by suffix") {
  testing::TempDir dir;
  Image image{kW, kH, Smooth(kW, kH, 3)};
  REQUIRE(WriteImage(image, dir.File("a.png"), false).ok());
  REQUIRE(WriteImage(image, dir.File("a.PPM"), false).ok());
  CHECK(WriteImage(image, dir.File("a.png"), false).code() == StatusCode::kInvalidArgument);
  for (const char* name : {"a.png", "a.PPM"}) {
    ImageInfo info;
    auto back = ReadImage(dir.File(name), {}, &info);
    REQUIRE(back.ok());
    CHECK(back->rgb == image.rgb);
    CHECK(info.format == (name[2] == 'p' ? ImageFormat::kPng : ImageFormat::kPnm));
  }
  auto missing = ReadImage(dir.File("missing.png"));
  CHECK(missing.status().code() == StatusCode::kNotFound);
  CHECK(missing.status().message().find("missing.png") != std::string::npos);
}

}  // namespace
}  // namespace tok1d

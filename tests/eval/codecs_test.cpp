// The codec plug-ins (eval/codecs): the registry, a round trip through each codec, settings out
// of range refused, and byte sizes equal to those of the reference tools (cjpeg, cwebp, avifenc,
// cjxl) at the same settings on the same image, for each tool that is installed.
#include <doctest/doctest.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>

#include "eval/codecs/image_codec.h"
#include "imageio/image_io.h"
#include "metrics/metrics.h"
#include "temp_dir.h"

namespace tok1d {
namespace {

std::unique_ptr<ImageCodec> Codec(std::string_view name) {
  StatusOr<std::unique_ptr<ImageCodec>> codec = FindCodec(name);
  REQUIRE(codec.ok());
  return std::move(*codec);
}

// Smooth gradients with some texture and an edge: like a photo, for encoders' decisions.
Image Photo(uint32_t width, uint32_t height) {
  Image image{width, height, std::vector<uint8_t>(size_t{width} * height * 3)};
  uint32_t state = 1;
  for (uint32_t y = 0; y < height; ++y) {
    for (uint32_t x = 0; x < width; ++x) {
      state = state * 1103515245u + 12345u;
      uint8_t* pixel = &image.rgb[(size_t{y} * width + x) * 3];
      const uint32_t noise = (state >> 16) % 24;
      pixel[0] = static_cast<uint8_t>((x * 255) / width / 2 + noise + (x > width / 2 ? 90 : 0));
      pixel[1] = static_cast<uint8_t>((y * 255) / height * 3 / 4 + noise);
      pixel[2] = static_cast<uint8_t>(128 + ((x * y) % 64) + noise / 2);
    }
  }
  return image;
}

// The sample image of odd size (301 × 67) when the sources are there, else a synthetic one.
Image TestImage() {
  StatusOr<Image> sample = ReadImage(std::string(TOK1D_SAMPLES_DIR) + "/odd.png");
  if (sample.ok()) return *sample;
  return Photo(301, 67);
}

bool HasTool(const std::string& tool) {
  return std::system(("command -v " + tool + " >/dev/null 2>&1").c_str()) == 0;
}

// Runs `command` (the tool's output silenced); the size of `output` afterwards, or -1.
long long SizeAfter(const std::string& command, const std::string& output) {
  if (std::system((command + " >/dev/null 2>&1").c_str()) != 0) return -1;
  std::error_code error;
  const auto size = std::filesystem::file_size(output, error);
  return error ? -1 : static_cast<long long>(size);
}

TEST_CASE("the registry lists jpeg, webp, avif, jxl and finds them by name") {
  CHECK(CodecNames() == std::vector<std::string>{"jpeg", "webp", "avif", "jxl"});
  for (const std::unique_ptr<ImageCodec>& codec : AllCodecs()) {
    CHECK(Codec(codec->name())->name() == codec->name());
    CHECK_FALSE(codec->default_settings().empty());
    CHECK_FALSE(codec->setting_name().empty());
  }
  const StatusOr<std::unique_ptr<ImageCodec>> missing = FindCodec("bmp");
  CHECK(missing.status().code() == StatusCode::kNotFound);
  CHECK(missing.status().message() == "no codec 'bmp' (codecs: jpeg, webp, avif, jxl)");
}

TEST_CASE("every codec: round trip, smaller and worse at its lowest default setting") {
  const Image image = Photo(61, 47);  // odd sizes: partial blocks and chroma
  for (const std::unique_ptr<ImageCodec>& codec : AllCodecs()) {
    CAPTURE(codec->name());
    const std::vector<int> settings = codec->default_settings();
    const StatusOr<std::vector<uint8_t>> low = codec->Encode(image, settings.front());
    const StatusOr<std::vector<uint8_t>> high = codec->Encode(image, settings.back());
    REQUIRE(low.ok());
    REQUIRE(high.ok());
    CHECK(low->size() < high->size());
    CHECK(codec->Recognizes(*high));
    for (const std::unique_ptr<ImageCodec>& other : AllCodecs()) {
      if (other->name() != codec->name()) CHECK_FALSE(other->Recognizes(*high));
    }
    const StatusOr<Image> decoded_low = codec->Decode(*low);
    const StatusOr<Image> decoded_high = codec->Decode(*high);
    REQUIRE(decoded_low.ok());
    REQUIRE(decoded_high.ok());
    CHECK(decoded_high->width == 61);
    CHECK(decoded_high->height == 47);
    CHECK(decoded_high->rgb.size() == image.rgb.size());
    CHECK(Psnr(image, *decoded_high) > 28);
    CHECK(Psnr(image, *decoded_low) < Psnr(image, *decoded_high));
    // DecodeWithAnyCodec picks the codec from the bytes.
    const StatusOr<Image> any = DecodeWithAnyCodec(*high);
    REQUIRE(any.ok());
    CHECK(any->rgb == decoded_high->rgb);
  }
  CHECK(DecodeWithAnyCodec(std::vector<uint8_t>(16, 0)).status().code() ==
        StatusCode::kUnsupported);
}

TEST_CASE("settings out of range are refused, damaged files are errors (not crashes)") {
  const Image image = Photo(16, 16);
  CHECK(Codec("avif")->Encode(image, 101).status().message() ==
        "AVIF quality 101 is not in 0..100");
  CHECK(Codec("avif")->Encode(image, -1).status().code() == StatusCode::kInvalidArgument);
  CHECK(Codec("jxl")->Encode(image, 2501).status().message() ==
        "JPEG XL distance×100 2501 is not in 0..2500");
  CHECK(Codec("jpeg")->Encode(image, 0).status().code() == StatusCode::kInvalidArgument);
  CHECK(Codec("webp")->Encode(image, 101).status().code() == StatusCode::kInvalidArgument);
  for (const std::unique_ptr<ImageCodec>& codec : AllCodecs()) {
    CAPTURE(codec->name());
    StatusOr<std::vector<uint8_t>> bytes = codec->Encode(image, codec->default_settings().back());
    REQUIRE(bytes.ok());
    bytes->resize(bytes->size() / 2);
    CHECK_FALSE(codec->Decode(*bytes).ok());
    CHECK_FALSE(codec->Decode(std::vector<uint8_t>{}).ok());
  }
}

TEST_CASE("JPEG XL distance 0 is lossless, as cjxl -d 0") {
  const Image image = Photo(40, 30);
  const StatusOr<std::vector<uint8_t>> bytes = Codec("jxl")->Encode(image, 0);
  REQUIRE(bytes.ok());
  const StatusOr<Image> decoded = Codec("jxl")->Decode(*bytes);
  REQUIRE(decoded.ok());
  CHECK(decoded->rgb == image.rgb);
}

// The tool's command for `codec` at `setting`, reading `input` and writing `output`.
std::string ToolCommand(std::string_view codec, int setting, const std::string& input,
                        const std::string& output) {
  const std::string s = std::to_string(setting);
  if (codec == "jpeg") return "cjpeg -quality " + s + " -optimize -outfile " + output + " " + input;
  if (codec == "webp") return "cwebp -quiet -q " + s + " -m 6 " + input + " -o " + output;
  if (codec == "avif") {
    const std::string q = std::to_string(((100 - setting) * 63 + 50) / 100);
    return "avifenc -s 6 --min " + q + " --max " + q + " " + input + " " + output;
  }
  char distance[32];
  std::snprintf(distance, sizeof(distance), "%g", setting / 100.0);
  return "cjxl " + input + " " + output + " -d " + distance + " -e 7";
}

std::string_view ToolOf(std::string_view codec) {
  if (codec == "jpeg") return "cjpeg";
  if (codec == "webp") return "cwebp";
  if (codec == "avif") return "avifenc";
  return "cjxl";
}

TEST_CASE("byte sizes equal the reference tools' at the same settings") {
  testing::TempDir dir;
  const Image image = TestImage();
  // PPM for cjpeg (it reads no PNG in every build), PNG without colour chunks for the others.
  const std::string png = dir.File("image.png"), ppm = dir.File("image.ppm");
  REQUIRE(WriteImage(image, png, false).ok());
  REQUIRE(WriteImage(image, ppm, false).ok());
  for (const std::unique_ptr<ImageCodec>& codec : AllCodecs()) {
    CAPTURE(codec->name());
    const std::string tool(ToolOf(codec->name()));
    if (!HasTool(tool)) {
      MESSAGE(tool << " is not installed: " << codec->name() << " sizes not compared");
      continue;
    }
    const std::vector<int> all = codec->default_settings();
    // The lowest, a middle and the highest default setting.
    for (int setting : {all.front(), all[all.size() / 2], all.back()}) {
      CAPTURE(setting);
      const StatusOr<std::vector<uint8_t>> bytes = codec->Encode(image, setting);
      REQUIRE(bytes.ok());
      const std::string output = dir.File("out." + std::string(codec->name()));
      const std::string input = codec->name() == "jpeg" ? ppm : png;
      const long long tool_size =
          SizeAfter(ToolCommand(codec->name(), setting, input, output), output);
      REQUIRE(tool_size >= 0);
      CHECK(static_cast<long long>(bytes->size()) == tool_size);
    }
  }
}

}  // namespace
}  // namespace tok1d

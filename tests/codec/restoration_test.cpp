// Colour restoration (codec/restoration.h): the fit recovers a tile-wide affine colour error,
// its estimate of the error saved is what applying the map saves, and the codec writes maps
// that lower the error and applies them only to tiles decoded from all their layers.
#include <doctest/doctest.h>

#include <cmath>
#include <random>

#include "codec/codec.h"
#include "codec/restoration.h"
#include "codec/test_models.h"

namespace tok1d {
namespace {

constexpr uint32_t kTile = 16;

double SquaredError(std::span<const float> decoded, std::span<const uint8_t> original,
                    uint32_t width, uint32_t height) {
  double sum = 0;
  for (uint32_t y = 0; y < height; ++y) {
    for (uint32_t x = 0; x < width; ++x) {
      for (uint32_t c = 0; c < 3; ++c) {
        const size_t i = (size_t{y} * kTile + x) * 3 + c;
        const double v = std::fmin(std::fmax(decoded[i], 0.0f), 1.0f) - original[i] / 255.0;
        sum += v * v;
      }
    }
  }
  return sum;
}

// An original tile and a "decode" of it whose colours went through a known affine error.
void MakeTile(uint32_t seed, std::vector<uint8_t>* original, std::vector<float>* decoded) {
  std::mt19937 random(seed);
  original->resize(kTile * kTile * 3);
  decoded->resize(original->size());
  for (size_t p = 0; p < kTile * kTile; ++p) {
    const auto level = [&random] { return static_cast<double>(60 + random() % 140); };
    const double r = level(), g = level(), b = level();
    (*original)[p * 3] = static_cast<uint8_t>(r);
    (*original)[p * 3 + 1] = static_cast<uint8_t>(g);
    (*original)[p * 3 + 2] = static_cast<uint8_t>(b);
    // Low contrast, a tint and some cross-talk: what the decoder's colour drift looks like.
    (*decoded)[p * 3] = static_cast<float>((0.8 * r + 0.1 * g + 20) / 255);
    (*decoded)[p * 3 + 1] = static_cast<float>((0.9 * g - 12) / 255);
    (*decoded)[p * 3 + 2] = static_cast<float>((0.85 * b + 0.05 * r + 9) / 255);
  }
}

TEST_CASE("restoration: the fit undoes an affine colour error, and saves what it says") {
  std::vector<uint8_t> original;
  std::vector<float> decoded;
  MakeTile(1, &original, &decoded);
  const Restoration steps;
  for (uint32_t width : {kTile, 7u}) {  // a whole tile, and a border tile 7 pixels wide
    CAPTURE(width);
    double error = 0, saved = 0;
    const TileRestoration map =
        FitTileRestoration(decoded, original, kTile, width, kTile, steps, &error, &saved);
    REQUIRE(map.used);
    CHECK(error == doctest::Approx(SquaredError(decoded, original, width, kTile)));
    std::vector<float> restored = decoded;
    ApplyTileRestoration(map, steps, kTile, restored);
    const double after = SquaredError(restored, original, width, kTile);
    CHECK(error - saved == doctest::Approx(after).epsilon(1e-4));
    // Left: the quantisation of the map (steps of 2 levels and 1/32) and the bytes' rounding.
    CHECK(after / (width * kTile * 3) < std::pow(1.5 / 255, 2));
    CHECK(after < error / 20);
  }
}

TEST_CASE("restoration: a flat colour comes back to its value; a decode already right is left") {
  std::vector<uint8_t> original(kTile * kTile * 3);
  std::vector<float> decoded(original.size());
  for (size_t p = 0; p < kTile * kTile; ++p) {
    original[p * 3] = 240, original[p * 3 + 1] = 20, original[p * 3 + 2] = 200;
    decoded[p * 3] = 226 / 255.0f, decoded[p * 3 + 1] = 35 / 255.0f,
                decoded[p * 3 + 2] = 190 / 255.0f;
  }
  const Restoration steps;
  double error = 0, saved = 0;
  TileRestoration map =
      FitTileRestoration(decoded, original, kTile, kTile, kTile, steps, &error, &saved);
  REQUIRE(map.used);
  ApplyTileRestoration(map, steps, kTile, decoded);
  for (size_t p = 0; p < kTile * kTile; ++p) {
    for (size_t c = 0; c < 3; ++c)
      CHECK(std::fabs(decoded[p * 3 + c] * 255 - original[p * 3 + c]) <= 1.0);
  }
  // The same tile decoded exactly needs no map.
  for (size_t i = 0; i < original.size(); ++i) decoded[i] = original[i] / 255.0f;
  map = FitTileRestoration(decoded, original, kTile, kTile, kTile, steps, &error, &saved);
  CHECK_FALSE(map.used);
  CHECK(saved == 0);
}

Image FlatTiles(uint32_t width, uint32_t height) {
  Image image;
  image.width = width;
  image.height = height;
  image.rgb.resize(size_t{width} * height * 3);
  const uint8_t colours[4][3] = {{230, 230, 30}, {30, 220, 220}, {220, 30, 220}, {30, 30, 220}};
  for (uint32_t y = 0; y < height; ++y) {
    for (uint32_t x = 0; x < width; ++x) {
      const uint8_t* colour = colours[(x / 16 + y / 16) % 4];  // one flat colour per tile
      for (size_t c = 0; c < 3; ++c) image.rgb[(size_t{y} * width + x) * 3 + c] = colour[c];
    }
  }
  return image;
}

double ImageError(const Image& a, const Image& b) {
  double sum = 0;
  for (size_t i = 0; i < a.rgb.size(); ++i) {
    const double d = static_cast<double>(a.rgb[i]) - b.rgb[i];
    sum += d * d;
  }
  return sum;
}

TEST_CASE("codec: Restore keeps maps that lower the error; decode applies them to whole tiles") {
  StatusOr<Model> model = LoadModel(testing::MakeModelFile(testing::TinyConfig(), 3, "tiny"));
  REQUIRE(model.ok());
  CodecOptions options;
  options.threads = 1;
  options.deblock = false;
  auto codec = Codec::Create(*model, options);
  REQUIRE(codec.ok());
  CodecOptions plain_options = options;
  plain_options.restore = false;
  auto plain_codec = Codec::Create(*model, plain_options);
  REQUIRE(plain_codec.ok());

  const Image image = FlatTiles(45, 40);  // 3 × 3 tiles, border tiles cut
  auto file = (*codec)->Encode(image, 6);
  REQUIRE(file.ok());
  CHECK(file->restoration.tiles.empty());  // Encode writes tokens; Restore adds the maps
  const auto plain = (*codec)->Decode(*file);
  REQUIRE(plain.ok());
  TokenFile restored = *file;
  REQUIRE((*codec)->Restore(image, &restored).ok());
  // A random model's tiles are far from flat: every map pays.
  REQUIRE(restored.restoration.any());
  CHECK(restored.tokens == file->tokens);
  const auto better = (*codec)->Decode(restored);
  REQUIRE(better.ok());
  CHECK(ImageError(image, *better) < ImageError(image, *plain));
  // Off in the decoder: the plain decode.
  const auto ignored = (*plain_codec)->Decode(restored);
  REQUIRE(ignored.ok());
  CHECK(ignored->rgb == plain->rgb);
  // Decoding fewer tokens than the tiles keep skips the maps: as the plain file's decode.
  const auto fewer = (*codec)->Decode(restored, 3);
  const auto fewer_plain = (*codec)->Decode(*file, 3);
  REQUIRE(fewer.ok());
  REQUIRE(fewer_plain.ok());
  CHECK(fewer->rgb == fewer_plain->rgb);
  // Through the file: the maps survive writing and reading.
  const LayerCoder* coder = (*codec)->layer_coder(restored.header.entropy_coder);
  auto bytes = WriteT1d(restored, coder);
  REQUIRE(bytes.ok());
  auto back = ReadT1d(*bytes, {}, nullptr, coder);
  REQUIRE(back.ok());
  const auto reread = (*codec)->Decode(*back);
  REQUIRE(reread.ok());
  CHECK(reread->rgb == better->rgb);
  // A map count that does not match the tiles is refused.
  restored.restoration.tiles.pop_back();
  CHECK((*codec)->Decode(restored).status().code() == StatusCode::kInvalidArgument);
  // The image to fit against must be the file's.
  CHECK((*codec)->Restore(FlatTiles(44, 40), &restored).code() == StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace tok1d

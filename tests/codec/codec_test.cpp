// Tiling, the tokenizer's batching and the codec API, with a tiny random model (fast, and
// independent of the trained model; parity with PyTorch is parity_test.cpp's job).
#include <doctest/doctest.h>

#include <random>

#include "codec/codec.h"
#include "codec/deblock.h"
#include "codec/test_models.h"
#include "codec/tiling.h"

namespace tok1d {
namespace {

Image RandomImage(uint32_t width, uint32_t height, uint32_t seed) {
  Image image;
  image.width = width;
  image.height = height;
  image.rgb.resize(size_t{width} * height * 3);
  std::mt19937 random(seed);
  for (uint8_t& v : image.rgb) v = static_cast<uint8_t>(random());
  return image;
}

Model TinyModel(uint32_t seed, const std::string& name = "tiny",
                testing::Architecture architecture = testing::Architecture::kRefined) {
  StatusOr<Model> model =
      LoadModel(testing::MakeModelFile(testing::TinyConfig(), seed, name, architecture));
  REQUIRE_MESSAGE(model.ok(), model.status().message());
  return std::move(model).value();
}

std::unique_ptr<Codec> TinyCodec(uint32_t seed = 1, size_t max_batch_tiles = 32) {
  CodecOptions options;
  options.threads = 2;
  options.max_batch_tiles = max_batch_tiles;
  StatusOr<std::unique_ptr<Codec>> codec = Codec::Create(TinyModel(seed), options);
  REQUIRE_MESSAGE(codec.ok(), codec.status().message());
  return std::move(codec).value();
}

TEST_CASE("tiling: border tiles repeat the edge pixels; placing crops back exactly") {
  const Image image = RandomImage(37, 21, 1);
  const TileGrid grid = MakeTileGrid(image.width, image.height, 16);
  CHECK(grid.cols == 3);
  CHECK(grid.rows == 2);
  std::vector<uint8_t> tiles(grid.count() * 16 * 16 * 3);
  ExtractTiles(image, grid, 0, grid.count(), tiles);
  for (size_t t = 0; t < grid.count(); ++t) {
    for (size_t y = 0; y < 16; ++y) {
      for (size_t x = 0; x < 16; ++x) {
        const size_t sx = std::min<size_t>(t % 3 * 16 + x, 36),
                     sy = std::min<size_t>(t / 3 * 16 + y, 20);
        for (size_t c = 0; c < 3; ++c) {
          CHECK(tiles[((t * 16 + y) * 16 + x) * 3 + c] == image.rgb[(sy * 37 + sx) * 3 + c]);
        }
      }
    }
  }
  // Tiles as floats of the same pixels (v/255) come back as the same bytes; values outside
  // [0, 1] are clamped.
  std::vector<float> floats(tiles.size());
  for (size_t i = 0; i < tiles.size(); ++i) floats[i] = static_cast<float>(tiles[i]) / 255.0f;
  Image placed = RandomImage(37, 21, 2);
  PlaceTiles(std::span<const float>(floats).subspan(0, 2 * 16 * 16 * 3), grid, 0, 2, &placed);
  PlaceTiles(std::span<const float>(floats).subspan(2 * 16 * 16 * 3), grid, 2, 4, &placed);
  CHECK(placed.rgb == image.rgb);
  Image one = RandomImage(1, 1, 3);
  const std::vector<float> special = {-0.3f, 1.7f, 128.0f / 255.0f};
  std::vector<float> tile(16 * 16 * 3, 0.0f);
  std::copy(special.begin(), special.end(), tile.begin());
  PlaceTiles(tile, MakeTileGrid(1, 1, 16), 0, 1, &one);
  CHECK(one.rgb == std::vector<uint8_t>{0, 255, 128});
}

TEST_CASE("deblocking: a seam step is ramped away, a strong edge and tile interiors are kept") {
  // Two 32-pixel tiles side by side: flat 100 | flat 110 (a seam), on rows 0-15; rows 16-31
  // hold a real edge 20 | 220 on the same boundary.
  Image image;
  image.width = 64;
  image.height = 32;
  image.rgb.resize(64 * 32 * 3);
  for (size_t y = 0; y < 32; ++y) {
    for (size_t x = 0; x < 64; ++x) {
      const uint8_t value = y < 16 ? (x < 32 ? 100 : 110) : (x < 32 ? 20 : 220);
      for (size_t c = 0; c < 3; ++c) image.rgb[(y * 64 + x) * 3 + c] = value;
    }
  }
  const Image before = image;
  DeblockParams params;
  params.smoothing = 0;
  DeblockTileSeams(&image, 32, {}, params);
  auto at = [&](const Image& im, size_t x, size_t y) { return int{im.rgb[(y * 64 + x) * 3]}; };
  // tile / 8 = 4 pixels each side move by 10·(4 − k)/8: 100 | 101 102 104 105 | 105 106 108 109 |
  // 110
  CHECK(at(image, 31, 4) == 105);
  CHECK(at(image, 32, 4) == 105);
  CHECK(at(image, 27, 4) == 100);
  CHECK(at(image, 36, 4) == 110);
  for (size_t x = 28; x < 36; ++x) CHECK(std::abs(at(image, x + 1, 4) - at(image, x, 4)) <= 2);
  for (size_t x = 0; x < 64; ++x) CHECK(at(image, x, 24) == at(before, x, 24));  // the real edge
  Image single = before;
  DeblockTileSeams(&single, 64);  // one tile column, no horizontal boundary inside: unchanged
  CHECK(single.rgb == before.rgb);
}

TEST_CASE("deblocking: the ramp narrows with the tokens of the coarser tile") {
  // Wide for coarse tiles, 1/sqrt(tokens) narrower from 4 tokens on, never under tile/32.
  CHECK(DeblockWidth(128, 0) == 16);
  CHECK(DeblockWidth(128, 1) == 16);
  CHECK(DeblockWidth(128, 4) == 16);
  CHECK(DeblockWidth(128, 8) == 11);
  CHECK(DeblockWidth(128, 32) == 6);
  CHECK(DeblockWidth(128, 64) == 4);
  CHECK(DeblockWidth(128, 128) == 4);
  for (uint32_t k = 1; k < 256; ++k) CHECK(DeblockWidth(128, k + 1) <= DeblockWidth(128, k));
  CHECK(DeblockWidth(16, 128) == 2);  // small tiles keep a ramp of two pixels

  // Flat 100 | flat 110 across one vertical boundary of two 64-pixel tiles.
  Image image;
  image.width = 128;
  image.height = 8;
  image.rgb.resize(size_t{128} * 8 * 3);
  for (size_t i = 0; i < image.rgb.size(); ++i) image.rgb[i] = (i / 3) % 128 < 64 ? 100 : 110;
  auto changed_columns = [&](std::vector<uint32_t> tokens) {
    Image copy = image;
    DeblockParams params;
    params.smoothing = 0;
    DeblockTileSeams(&copy, 64, tokens, params);
    size_t changed = 0;
    for (size_t x = 0; x < 128; ++x) {
      if (copy.rgb[x * 3] != image.rgb[x * 3]) ++changed;
    }
    return changed;
  };
  // Ramps of tile/8 = 8 pixels a side (k ≤ 4) and tile/32 = 2 (k ≥ 64).
  CHECK(changed_columns({1, 1}) == 16);
  CHECK(changed_columns({128, 128}) == 4);
  CHECK(changed_columns({128, 1}) == 16);  // the coarser tile decides
  CHECK(changed_columns({}) == 16);        // no counts: the widest ramp
}

void CheckBatchingInvariance(testing::Architecture architecture) {
  const Model model = TinyModel(4, "tiny", architecture);
  const ModelConfig& c = model.config();
  auto backend = CreateBackend("cpu", {2});
  REQUIRE(backend.ok());
  const size_t count = 5, tile_bytes = size_t{c.tile} * c.tile * 3;
  const Image strip = RandomImage(c.tile * count, c.tile, 5);
  std::vector<uint8_t> tiles(count * tile_bytes);
  ExtractTiles(strip, MakeTileGrid(strip.width, strip.height, c.tile), 0, count, tiles);

  std::vector<std::vector<uint32_t>> tokens;
  std::vector<std::vector<float>> pixels;
  for (size_t batch : {size_t{1}, size_t{2}, size_t{64}}) {
    auto tokenizer = Tokenizer::Create(model, **backend, {batch});
    REQUIRE(tokenizer.ok());
    std::vector<uint32_t> t(count * c.tokens);
    REQUIRE((*tokenizer)->Encode(tiles, count, t).ok());
    const std::vector<uint32_t> keep = {6, 0, 1, 3, 6};
    std::vector<float> p(count * tile_bytes);
    REQUIRE((*tokenizer)->Decode(t, keep, count, p).ok());
    tokens.push_back(t);
    pixels.push_back(p);
  }
  CHECK(tokens[0] == tokens[1]);
  CHECK(tokens[0] == tokens[2]);
  // BLAS may sum in another order for other matrix heights (e.g. a matrix-vector product for
  // one row), so pixels agree to rounding, not bit for bit.
  for (size_t b = 1; b < pixels.size(); ++b) {
    double error = 0;
    for (size_t i = 0; i < pixels[0].size(); ++i)
      error = std::max(error, double{std::abs(pixels[0][i] - pixels[b][i])});
    CHECK(error < 1e-5);
  }
  for (uint32_t token : tokens[0]) CHECK(token < c.codebook_size());
}

TEST_CASE("tokenizer: results do not depend on how tiles are batched (both architectures)") {
  CheckBatchingInvariance(testing::Architecture::kFirst);
  CheckBatchingInvariance(testing::Architecture::kRefined);
}

TEST_CASE("codec: any image size round-trips to the same size") {
  auto codec = TinyCodec();
  for (const auto& size :
       {std::pair<uint32_t, uint32_t>{1, 1}, {17, 300}, {1000, 37}, {16, 16}, {33, 15}}) {
    const uint32_t width = size.first,
                   height = size.second;  // CAPTURE cannot take a binding (clang 14)
    CAPTURE(width);
    CAPTURE(height);
    const Image image = RandomImage(width, height, width + height);
    StatusOr<TokenFile> file = codec->Encode(image, 4);
    REQUIRE_MESSAGE(file.ok(), file.status().message());
    CHECK(file->header.width == width);
    CHECK(file->header.tile_count() == size_t{(width + 15) / 16} * ((height + 15) / 16));
    StatusOr<std::vector<uint8_t>> bytes = WriteT1d(*file);
    REQUIRE(bytes.ok());
    StatusOr<TokenFile> read = ReadT1d(*bytes);
    REQUIRE(read.ok());
    StatusOr<Image> decoded = codec->Decode(*read);
    REQUIRE_MESSAGE(decoded.ok(), decoded.status().message());
    CHECK(decoded->width == width);
    CHECK(decoded->height == height);
    CHECK(decoded->rgb.size() == image.rgb.size());
  }
}

TEST_CASE("codec: decoding k tokens equals decoding the file trimmed to k") {
  auto codec = TinyCodec(1, 3);  // several batches
  const Image image = RandomImage(70, 40, 9);
  StatusOr<TokenFile> file = codec->Encode(image, 6);
  REQUIRE(file.ok());
  for (uint32_t k : {1u, 3u, 6u}) {
    StatusOr<TokenFile> trimmed = TrimTokens(*file, k);
    REQUIRE(trimmed.ok());
    StatusOr<Image> direct = codec->Decode(*file, k);
    StatusOr<Image> from_trimmed = codec->Decode(*trimmed);
    REQUIRE(direct.ok());
    REQUIRE(from_trimmed.ok());
    CHECK(direct->rgb == from_trimmed->rgb);
  }
  // Encoding at fewer tokens keeps a prefix of the same tokens.
  StatusOr<TokenFile> fewer = codec->Encode(image, 2);
  REQUIRE(fewer.ok());
  for (size_t t = 0; t < file->tokens.size(); ++t) {
    CHECK(fewer->tokens[t] ==
          std::vector<uint32_t>(file->tokens[t].begin(), file->tokens[t].begin() + 2));
  }
  // Per-tile counts, including a tile with none.
  std::vector<uint32_t> counts(file->header.tile_count(), 5);
  counts[0] = 0;
  StatusOr<TokenFile> mixed = codec->Encode(image, counts);
  REQUIRE(mixed.ok());
  CHECK(mixed->header.layers_per_tile == counts);
  CHECK(codec->Decode(*mixed).ok());
}

TEST_CASE("codec: refinement layers follow the model's plan, trim with their tokens, round-trip") {
  const std::string plan = R"({"bits": 2, "after": [0, 2, 5]})";
  StatusOr<Model> model = LoadModel(testing::MakeModelFile(testing::TinyConfig(), 1, "tiny",
                                                           testing::Architecture::kRefined, plan));
  REQUIRE_MESSAGE(model.ok(), model.status().message());
  CHECK(model->refinement() == Refinement{2, {0, 2, 5}});
  CodecOptions options;
  options.threads = 2;
  options.max_batch_tiles = 3;
  auto codec = std::move(Codec::Create(*model, options)).value();
  options.refine = false;
  auto plain_codec = std::move(Codec::Create(*model, options)).value();
  const Image image = RandomImage(70, 40, 9);

  StatusOr<TokenFile> file = codec->Encode(image, 6);
  REQUIRE(file.ok());
  CHECK(file->header.refinement == model->refinement());
  CHECK(file->header.layer_count() == 9);  // t0 r0 t1 t2 r1 t3 t4 t5 r2
  StatusOr<TokenFile> plain = plain_codec->Encode(image, 6);
  REQUIRE(plain.ok());
  CHECK(plain->header.refinement.bits == 0);
  CHECK(plain->tokens == file->tokens);  // refinement adds layers, never changes tokens
  for (const std::vector<uint32_t>& values : file->refinements) {
    CHECK(values.size() == 3);
    for (uint32_t value : values) CHECK(value < (1u << 6));
  }
  // The file reads back as written; a 1.3 file.
  StatusOr<std::vector<uint8_t>> bytes =
      WriteT1d(*file, codec->layer_coder(file->header.entropy_coder));
  REQUIRE(bytes.ok());
  CHECK((*bytes)[9] == 3);
  StatusOr<TokenFile> back =
      ReadT1d(*bytes, {}, nullptr, codec->layer_coder(file->header.entropy_coder));
  REQUIRE(back.ok());
  CHECK(back->tokens == file->tokens);
  CHECK(back->refinements == file->refinements);

  for (uint32_t k : {1u, 2u, 3u, 6u}) {
    CAPTURE(k);
    StatusOr<TokenFile> trimmed = TrimTokens(*file, k);
    REQUIRE(trimmed.ok());
    CHECK(trimmed->header.layers_per_tile[0] == file->header.LayersForTokens(k));
    StatusOr<TokenFile> fewer = codec->Encode(image, k);
    REQUIRE(fewer.ok());
    CHECK(fewer->tokens == trimmed->tokens);
    CHECK(fewer->refinements == trimmed->refinements);
    StatusOr<Image> direct = codec->Decode(*file, k);
    StatusOr<Image> from_trimmed = codec->Decode(*trimmed);
    REQUIRE(direct.ok());
    REQUIRE(from_trimmed.ok());
    CHECK(direct->rgb == from_trimmed->rgb);
  }
  // The refinement reaches the decoder: the same tokens decode differently without it.
  CHECK(codec->Decode(*file)->rgb != codec->Decode(*plain)->rgb);

  const std::string bad = R"({"bits": 2, "after": [3, 1]})";
  CHECK(LoadModel(testing::MakeModelFile(testing::TinyConfig(), 1, "tiny",
                                         testing::Architecture::kRefined, bad))
            .status()
            .code() == StatusCode::kCorrupt);
}

TEST_CASE("codec: bad requests and the wrong model are refused") {
  auto codec = TinyCodec(1);
  const Image image = RandomImage(20, 20, 10);
  CHECK(codec->Encode(image, 0u).status().code() == StatusCode::kInvalidArgument);
  CHECK(codec->Encode(image, 7u).status().code() == StatusCode::kInvalidArgument);
  CHECK(codec->Encode(Image{}, 2u).status().code() == StatusCode::kInvalidArgument);
  StatusOr<TokenFile> file = codec->Encode(image, 3);
  REQUIRE(file.ok());
  CHECK(codec->Decode(*file, 7).status().code() == StatusCode::kInvalidArgument);

  auto other = TinyCodec(2);  // same architecture, other weights
  const Status mismatch = other->Decode(*file).status();
  CHECK(mismatch.code() == StatusCode::kModelMismatch);
  CHECK(mismatch.message().find("--model") != std::string::npos);

  TokenFile lying = *file;
  lying.header.fsq_levels = {3, 4, 6};
  CHECK(codec->Decode(lying).status().code() == StatusCode::kCorrupt);
}

// Token files of several sizes, tile counts and token counts (uniform and per tile).
std::vector<TokenFile> MixedFiles(Codec& codec) {
  std::vector<TokenFile> files;
  const struct {
    uint32_t width, height, tokens;
  } shapes[] = {{40, 20, 6}, {16, 16, 2}, {70, 40, 4}, {1, 1, 6}, {33, 50, 3}, {100, 17, 5}};
  for (const auto& shape : shapes) {
    StatusOr<TokenFile> file = codec.Encode(
        RandomImage(shape.width, shape.height, shape.width * 7 + shape.height), shape.tokens);
    REQUIRE_MESSAGE(file.ok(), file.status().message());
    files.push_back(std::move(file).value());
  }
  // Per-tile counts, one tile with none.
  const Image image = RandomImage(50, 30, 77);
  std::vector<uint32_t> counts(MakeTileGrid(50, 30, 16).count());
  for (size_t t = 0; t < counts.size(); ++t) counts[t] = static_cast<uint32_t>(t % 7);
  StatusOr<TokenFile> mixed = codec.Encode(image, counts);
  REQUIRE(mixed.ok());
  files.insert(files.begin() + 2, std::move(mixed).value());
  return files;
}

TEST_CASE("codec: DecodeMany equals Decode file by file, and a bad file fails alone") {
  for (size_t batch : {size_t{1}, size_t{5}, size_t{32}}) {  // 5: batches span files
    CAPTURE(batch);
    auto codec = TinyCodec(1, batch);
    const std::vector<TokenFile> good = MixedFiles(*codec);

    // The bad ones: another model's file, a tile grid that does not fit the size, a token
    // outside the codebook, a tile with more tokens than the model makes.
    auto other = TinyCodec(2);
    StatusOr<TokenFile> foreign = other->Encode(RandomImage(20, 20, 3), 3);
    REQUIRE(foreign.ok());
    TokenFile bad_grid = good[0];
    bad_grid.header.width += 16;
    TokenFile bad_token = good[1];
    bad_token.tokens[0][0] = 1000;
    TokenFile too_many = good[0];  // 6 tokens per tile, the most the model makes
    too_many.tokens.back().push_back(0);

    std::vector<const TokenFile*> files;
    std::vector<StatusCode> expected;  // kOk for the good ones
    for (size_t i = 0; i < good.size(); ++i) {
      files.push_back(&good[i]);
      expected.push_back(StatusCode::kOk);
      if (i == 1) {
        files.push_back(&*foreign);
        expected.push_back(StatusCode::kModelMismatch);
      } else if (i == 3) {
        for (const TokenFile* bad : {&bad_grid, &bad_token, &too_many}) {
          files.push_back(bad);
          expected.push_back(StatusCode::kCorrupt);
        }
      }
    }
    for (uint32_t max_tokens : {0u, 3u}) {
      CAPTURE(max_tokens);
      std::vector<StatusOr<Image>> images = codec->DecodeMany(files, max_tokens);
      REQUIRE(images.size() == files.size());
      for (size_t i = 0; i < files.size(); ++i) {
        CAPTURE(i);
        CHECK(images[i].status().code() == expected[i]);
        StatusOr<Image> single = codec->Decode(*files[i], max_tokens);
        CHECK(single.status().code() == expected[i]);
        if (!images[i].ok() || !single.ok()) continue;
        CHECK(images[i]->width == files[i]->header.width);
        CHECK(images[i]->height == files[i]->header.height);
        CHECK(images[i]->rgb == single->rgb);
      }
    }
    CHECK(codec->DecodeMany({}).empty());
    for (const StatusOr<Image>& image : codec->DecodeMany(files, 7)) {
      CHECK(image.status().code() == StatusCode::kInvalidArgument);
    }
  }
}

TEST_CASE("Psnr") {
  const Image a = RandomImage(4, 4, 12);
  Image b = a;
  CHECK(std::isinf(Psnr(a, b)));
  b.rgb[0] = static_cast<uint8_t>(b.rgb[0] ^ 1);  // one sample off by one: MSE = 1/48
  CHECK(Psnr(a, b) == doctest::Approx(10 * std::log10(255.0 * 255.0 * 48)));
}

}  // namespace
}  // namespace tok1d

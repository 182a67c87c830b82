// The encode-time token search (codec/token_search.h): it never makes a tile's objective worse,
// its files are ordinary files (they decode, and effort 0 is the plain encoder's file), it is
// deterministic whatever the thread count, and its quantizer matches the file's rounding.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <memory>
#include <utility>
#include <vector>

#include "codec/codec.h"
#include "codec/test_models.h"
#include "codec/tiling.h"
#include "codec/token_search.h"
#include "container/t1d.h"
#include "kernels/cpu/cpu_backend.h"

namespace tok1d {
namespace {

Model TinyModel(const ModelConfig& config = testing::TinyConfig()) {
  StatusOr<Model> model = LoadModel(testing::MakeModelFile(config, 11));
  REQUIRE(model.ok());
  return std::move(model).value();
}

std::unique_ptr<Tokenizer> MakeTokenizer(const Model& model, Backend& backend) {
  StatusOr<std::unique_ptr<Tokenizer>> tokenizer = Tokenizer::Create(model, backend);
  REQUIRE(tokenizer.ok());
  return std::move(tokenizer).value();
}

// The squared error (8-bit levels) of tile t of `decoded` against `image`.
double TileSquaredError(const Image& image, const Image& decoded, const TileGrid& grid, size_t t) {
  double sum = 0;
  const uint32_t x0 = static_cast<uint32_t>(t % grid.cols) * grid.tile;
  const uint32_t y0 = static_cast<uint32_t>(t / grid.cols) * grid.tile;
  for (uint32_t y = y0; y < std::min(y0 + grid.tile, image.height); ++y) {
    for (uint32_t x = x0; x < std::min(x0 + grid.tile, image.width); ++x) {
      for (size_t c = 0; c < 3; ++c) {
        const size_t i = (size_t{y} * image.width + x) * 3 + c;
        const double d = static_cast<double>(decoded.rgb[i]) - static_cast<double>(image.rgb[i]);
        sum += d * d;
      }
    }
  }
  return sum;
}

// A codec whose tiles can be compared one by one: one thread, no deblocking, no refinement.
std::unique_ptr<Codec> TileByTileCodec(const ModelConfig& config = testing::TinyConfig()) {
  CodecOptions options;
  options.threads = 1;
  options.deblock = false;
  options.refine = false;
  StatusOr<std::unique_ptr<Codec>> codec = Codec::Create(TinyModel(config), options);
  REQUIRE(codec.ok());
  return std::move(codec).value();
}

// `image` encoded at `counts` with `search`, and its decode.
std::pair<TokenFile, Image> EncodeAndDecode(Codec& codec, const Image& image,
                                            const std::vector<uint32_t>& counts,
                                            const SearchOptions& search) {
  StatusOr<TokenFile> file = codec.Encode(image, counts, {}, search);
  REQUIRE_MESSAGE(file.ok(), file.status().message());
  StatusOr<Image> decoded = codec.Decode(*file);
  REQUIRE(decoded.ok());
  return {std::move(file).value(), std::move(decoded).value()};
}

// Distortion of the tile alone, trimmed before and after: the trims (and a polish, if given
// rounds) then only take what lowers the tile's error.
SearchOptions DistortionOnlySearch() {
  SearchOptions search;
  search.rate_weight = 0;
  search.prefix_weight = 0;
  search.trim_tails = true;
  search.trim_first = true;
  return search;
}

// A smooth image with an edge: something for the decoder to get right or wrong.
Image TestImage(uint32_t width, uint32_t height) {
  Image image;
  image.width = width;
  image.height = height;
  image.rgb.resize(size_t{width} * height * 3);
  for (uint32_t y = 0; y < height; ++y) {
    for (uint32_t x = 0; x < width; ++x) {
      uint8_t* p = &image.rgb[(size_t{y} * width + x) * 3];
      p[0] = static_cast<uint8_t>(x * 255 / width);
      p[1] = static_cast<uint8_t>(x + y < width ? 40 : 220);
      p[2] = static_cast<uint8_t>(128 + 100 * std::sin(0.3 * y));
    }
  }
  return image;
}

// A row of `columns` tiles of TestImage and the encoder's FSQ values for them.
struct EncodedTiles {
  size_t count = 0;
  std::vector<uint8_t> tiles;
  std::vector<float> bounded;
};
EncodedTiles EncodeTestTiles(Tokenizer& tokenizer, const ModelConfig& config, uint32_t columns) {
  const Image image = TestImage(config.tile * columns, config.tile);
  const TileGrid grid = MakeTileGrid(image.width, image.height, config.tile);
  EncodedTiles encoded;
  encoded.count = grid.count();
  encoded.tiles.resize(encoded.count * config.tile * config.tile * 3);
  ExtractTiles(image, grid, 0, encoded.count, encoded.tiles);
  std::vector<uint32_t> tokens(encoded.count * config.tokens);
  encoded.bounded.resize(encoded.count * size_t{config.tokens} * config.code_dim());
  REQUIRE(tokenizer.Encode(encoded.tiles, encoded.count, tokens, encoded.bounded).ok());
  return encoded;
}

TEST_CASE("token search: the quantizer rounds as the file does, refined tokens to part centres") {
  const Model model = TinyModel();
  const std::unique_ptr<Backend> backend = CreateCpuBackend(1);
  const std::unique_ptr<Tokenizer> tokenizer = MakeTokenizer(model, *backend);
  Refinement refinement;
  refinement.bits = 2;
  refinement.after = {0, 2};
  const TokenSearch search(*tokenizer, model, refinement);
  CHECK(search.RefinedTokens(1) == 1);  // token 0's refinement follows token layer 0
  CHECK(search.RefinedTokens(2) == 1);
  CHECK(search.RefinedTokens(3) == 2);
  // Dimension 2 has 5 levels: −2 … 2.
  CHECK(search.Quantize(1.3f, 2, false) == 1.0f);
  CHECK(search.Quantize(0.5f, 2, false) == 0.0f);  // half to even, as FsqQuantize
  CHECK(search.Quantize(1.5f, 2, false) == 2.0f);
  // Cell [0.5, 1.5) of level 1 in 4 parts: 1.3 is in part 3 of 4 (from 1.25), centre 1.375.
  CHECK(search.Quantize(1.3f, 2, true) == doctest::Approx(1.375f));
  CHECK(search.Quantize(0.6f, 2, true) == doctest::Approx(0.625f));
  // Outside the levels: clamped into the outermost cell.
  CHECK(search.Quantize(5.0f, 2, false) == 2.0f);
  CHECK(search.Quantize(-5.0f, 2, true) == doctest::Approx(-2.375f));
  // 4 levels (dimension 1): −2 … 1.
  CHECK(search.Quantize(3.0f, 1, false) == 1.0f);
}

TEST_CASE("token search: no tile's squared error grows (distortion only, no prefixes)") {
  const Model model = TinyModel();
  const ModelConfig& config = model.config();
  const std::unique_ptr<Backend> backend = CreateCpuBackend(1);
  const std::unique_ptr<Tokenizer> tokenizer = MakeTokenizer(model, *backend);
  TokenSearch search(*tokenizer, model, Refinement{});
  const EncodedTiles encoded = EncodeTestTiles(*tokenizer, config, 2);
  const size_t count = encoded.count;
  const std::vector<uint8_t>& tiles = encoded.tiles;
  const std::vector<float>& bounded = encoded.bounded;

  for (const uint32_t keep : {1u, config.tokens}) {
    CAPTURE(keep);
    std::vector<SearchTile> info(count, SearchTile{keep, config.tile, config.tile});
    std::vector<uint32_t> keeps(count, keep);
    std::vector<double> before(count), after(count), bits(count);
    REQUIRE(search.Measure(tiles, info, keeps, bounded, before, bits).ok());
    SearchOptions options;
    options.descent_steps = 4;
    options.polish_rounds = 3;
    options.polish_tries = 6;
    options.prefix_weight = 0;
    std::vector<float> searched = bounded;
    double last = -1;
    REQUIRE(search
                .Optimise(tiles, info, 0.0, options, searched,
                          [&](double f) {
                            CHECK(f >= last);
                            last = f;
                          })
                .ok());
    CHECK(last == 1.0);
    REQUIRE(search.Measure(tiles, info, keeps, searched, after, bits).ok());
    double gained = 0;
    for (size_t t = 0; t < count; ++t) {
      CHECK(after[t] <= before[t] * (1 + 1e-6));
      gained += before[t] - after[t];
    }
    CHECK(gained > 0);  // random weights: some move helps
  }
}

TEST_CASE("token search: the curvature's random probes match finite differences of the decoder") {
  const Model model = TinyModel();
  const ModelConfig& config = model.config();
  const std::unique_ptr<Backend> backend = CreateCpuBackend(1);
  const std::unique_ptr<Tokenizer> tokenizer = MakeTokenizer(model, *backend);
  TokenSearch search(*tokenizer, model, Refinement{});
  const FsqCodebook codebook = config.codebook();
  const uint32_t K = config.tokens, C = codebook.dims(), tile = config.tile;

  const Image image = TestImage(tile, tile);
  std::vector<uint8_t> pixels8(image.rgb);
  std::vector<uint32_t> tokens(K);
  std::vector<float> bounded(size_t{K} * C);
  REQUIRE(tokenizer->Encode(pixels8, 1, tokens, bounded).ok());
  std::vector<float> values(bounded.size());
  for (size_t i = 0; i < values.size(); ++i) {
    values[i] = search.Quantize(bounded[i], static_cast<uint32_t>(i % C), false);
  }
  const std::vector<SearchTile> info = {SearchTile{K, tile, tile}};
  std::vector<float> curvature(values.size());
  REQUIRE(search.Curvature(pixels8, info, values, 0.0f, 2048, curvature).ok());

  // ‖∂tile/∂value‖² by central differences, over the pixels the codec does not clamp.
  const std::vector<uint32_t> keep = {K};
  auto decode = [&](const std::vector<float>& v) {
    std::vector<float> codes(v.size()), out(size_t{tile} * tile * 3);
    for (size_t i = 0; i < v.size(); ++i) {
      codes[i] = v[i] / static_cast<float>(codebook.centre(static_cast<uint32_t>(i % C)));
    }
    REQUIRE(tokenizer->DecodeValues(codes, keep, 1, out).ok());
    return out;
  };
  const std::vector<float> base = decode(values);
  constexpr float kStep = 1e-2f;
  double estimated = 0, measured = 0;
  size_t close = 0;
  for (size_t i = 0; i < values.size(); ++i) {
    std::vector<float> up = values, down = values;
    up[i] += kStep;
    down[i] -= kStep;
    const std::vector<float> a = decode(up), b = decode(down);
    double norm = 0;
    for (size_t p = 0; p < base.size(); ++p) {
      if (base[p] <= 0 || base[p] >= 1) continue;
      const double d = (a[p] - b[p]) / (2.0 * kStep);
      norm += d * d;
    }
    estimated += curvature[i];
    measured += norm;
    close += std::abs(curvature[i] - norm) <= 0.2 * norm;
  }
  CAPTURE(estimated);
  CAPTURE(measured);
  CHECK(measured > 0);
  CHECK(estimated == doctest::Approx(measured).epsilon(0.05));
  // 2048 probes: a relative spread of at most √(2/2048) ≈ 3 % for each value.
  CHECK(close >= values.size() * 95 / 100);
}

TEST_CASE("token search: λ from the slope between keep/2 and keep") {
  const std::vector<double> keep_error = {1.0, 2.0}, half_error = {3.0, 6.0};
  const std::vector<double> keep_bits = {100, 100}, half_bits = {50, 50};
  CHECK(TokenSearch::Lambda(keep_error, half_error, keep_bits, half_bits, 1.0f) ==
        doctest::Approx(6.0 / 100));
  CHECK(TokenSearch::Lambda(keep_error, half_error, keep_bits, half_bits, 2.0f) ==
        doctest::Approx(12.0 / 100));
  // Nothing to go by: no rate term.
  CHECK(TokenSearch::Lambda(keep_error, keep_error, keep_bits, half_bits, 1.0f) == 0);
  CHECK(TokenSearch::Lambda(keep_error, half_error, keep_bits, keep_bits, 1.0f) == 0);
}

TEST_CASE("codec: searched files decode, are deterministic on 1 and 2 threads; effort 0 is plain") {
  const Image image = TestImage(70, 45);
  auto encode = [&](unsigned threads, const SearchOptions& search) {
    CodecOptions options;
    options.threads = threads;
    StatusOr<std::unique_ptr<Codec>> codec = Codec::Create(TinyModel(), options);
    REQUIRE(codec.ok());
    const TileGrid grid = MakeTileGrid(image.width, image.height, (*codec)->model().config().tile);
    std::vector<uint32_t> counts(grid.count(), 4);
    counts[0] = 2;
    StatusOr<TokenFile> file = (*codec)->Encode(image, counts, {}, search);
    REQUIRE(file.ok());
    StatusOr<Image> decoded = (*codec)->Decode(*file);
    REQUIRE(decoded.ok());
    CHECK(decoded->width == image.width);
    StatusOr<std::vector<uint8_t>> bytes = WriteT1d(*file, (*codec)->layer_coder(kRawCoderId));
    REQUIRE(bytes.ok());
    return std::move(bytes).value();
  };
  SearchOptions search = SearchOptionsForEffort(7);
  const std::vector<uint8_t> one = encode(1, search), two = encode(2, search);
  CHECK(one == two);
  CHECK(one == encode(1, search));
  const std::vector<uint8_t> plain = encode(1, SearchOptions{});
  CHECK(plain != one);  // the search changed something
  CHECK(plain == encode(1, SearchOptionsForEffort(0)));
}

TEST_CASE("codec: trimmed tails keep 1/2 to all of the count, and only where the error falls") {
  const Image image = TestImage(70, 45);
  const std::unique_ptr<Codec> codec = TileByTileCodec();
  const TileGrid grid = MakeTileGrid(image.width, image.height, codec->model().config().tile);
  const uint32_t k = codec->model().config().tokens;
  const std::vector<uint32_t> asked(grid.count(), k);
  SearchOptions search;
  search.polish_rounds = 1;
  search.polish_tries = 4;
  search.rate_weight = 0;  // distortion only: a tail goes only if the tile gets better
  search.trim_tails = false;
  const auto [whole, whole_image] = EncodeAndDecode(*codec, image, asked, search);
  search.trim_tails = true;
  const auto [trimmed, trimmed_image] = EncodeAndDecode(*codec, image, asked, search);
  size_t trimmed_tiles = 0;
  for (size_t t = 0; t < grid.count(); ++t) {
    CAPTURE(t);
    CHECK(whole.tokens[t].size() == k);
    const size_t kept = trimmed.tokens[t].size();
    CHECK((kept == k || kept == k * 3 / 4 || kept == k / 2));
    // The kept tokens are the whole file's first ones: trimming cuts, it does not re-search.
    CHECK(std::equal(trimmed.tokens[t].begin(), trimmed.tokens[t].end(), whole.tokens[t].begin()));
    // Measured in floats, decoded in 8 bits: a little slack for the rounding.
    if (kept < k) {
      ++trimmed_tiles;
      CHECK(TileSquaredError(image, trimmed_image, grid, t) <=
            TileSquaredError(image, whole_image, grid, t) * 1.001 + 16);
    }
  }
  CHECK(trimmed_tiles > 0);  // the test model's last tokens hurt some tiles (seed 11)
}

TEST_CASE(
    "codec: trimmed before the search too, every tile keeps 1/2 to all and no tile gets worse") {
  const Image image = TestImage(70, 45);
  const std::unique_ptr<Codec> codec = TileByTileCodec();
  const TileGrid grid = MakeTileGrid(image.width, image.height, codec->model().config().tile);
  const uint32_t k = codec->model().config().tokens;
  const std::vector<uint32_t> asked(grid.count(), k);
  SearchOptions search = DistortionOnlySearch();
  search.polish_rounds = 2;
  search.polish_tries = 4;
  const auto [plain, plain_image] = EncodeAndDecode(*codec, image, asked, SearchOptions{});
  const auto [searched, searched_image] = EncodeAndDecode(*codec, image, asked, search);
  size_t trimmed_tiles = 0;
  for (size_t t = 0; t < grid.count(); ++t) {
    CAPTURE(t);
    const size_t kept = searched.tokens[t].size();
    CHECK(kept >= k / 2);
    CHECK(kept <= k);
    if (kept < k) ++trimmed_tiles;
    // Measured in floats, decoded in 8 bits: a little slack for the rounding.
    CHECK(TileSquaredError(image, searched_image, grid, t) <=
          TileSquaredError(image, plain_image, grid, t) * 1.001 + 16);
  }
  CHECK(trimmed_tiles > 0);  // the test model's last tokens hurt some tiles (seed 11)
}

TEST_CASE("codec: grown before the search, a tile keeps 1/2 to 3/2 of the count and gets better") {
  const Image image = TestImage(70, 45);
  const std::unique_ptr<Codec> codec = TileByTileCodec();
  const TileGrid grid = MakeTileGrid(image.width, image.height, codec->model().config().tile);
  const uint32_t k = codec->model().config().tokens;
  const std::vector<uint32_t> asked(grid.count(), k / 2);
  // No polish: a tile grows exactly where more of the encoder's tokens lower its error.
  SearchOptions search = DistortionOnlySearch();
  search.grow_counts = 1;
  const auto [plain, plain_image] = EncodeAndDecode(*codec, image, asked, SearchOptions{});
  const auto [grown, grown_image] = EncodeAndDecode(*codec, image, asked, search);
  size_t grown_tiles = 0;
  for (size_t t = 0; t < grid.count(); ++t) {
    CAPTURE(t);
    const size_t kept = grown.tokens[t].size();
    CHECK(kept >= k / 4);
    CHECK(kept <= k / 2 + k / 4);
    if (kept > k / 2) {
      ++grown_tiles;
      CHECK(std::equal(plain.tokens[t].begin(), plain.tokens[t].end(), grown.tokens[t].begin()));
    }
    CHECK(TileSquaredError(image, grown_image, grid, t) <=
          TileSquaredError(image, plain_image, grid, t) * 1.001 + 16);
  }
  CHECK(grown_tiles > 0);
  // Never above the model's K: asked for all of them, no tile grows.
  const auto [full, full_image] =
      EncodeAndDecode(*codec, image, std::vector<uint32_t>(grid.count(), k), search);
  for (const std::vector<uint32_t>& tokens : full.tokens) CHECK(tokens.size() <= k);
}

TEST_CASE("token search: prefix floors keep the counts below keep/8 no worse than at the start") {
  // 32 tokens: keep/8 is 4, so 1 and 2 tokens are floors.
  ModelConfig config = testing::TinyConfig();
  config.tokens = 32;
  const Model model = TinyModel(config);
  const std::unique_ptr<Backend> backend = CreateCpuBackend(1);
  const std::unique_ptr<Tokenizer> tokenizer = MakeTokenizer(model, *backend);
  TokenSearch search(*tokenizer, model, Refinement{});
  EncodedTiles encoded = EncodeTestTiles(*tokenizer, config, 3);
  const size_t count = encoded.count;
  const std::vector<uint8_t>& tiles = encoded.tiles;
  std::vector<float>& start = encoded.bounded;
  auto error_at = [&](const std::vector<float>& values, uint32_t keep) {
    const std::vector<SearchTile> info(count, SearchTile{keep, config.tile, config.tile});
    const std::vector<uint32_t> keeps(count, keep);
    std::vector<double> error(count), bits(count);
    REQUIRE(search.Measure(tiles, info, keeps, values, error, bits).ok());
    return error;
  };
  SearchOptions options;
  options.polish_rounds = 8;
  options.polish_tries = 16;
  options.polish_depth = 8;
  options.prefix_weight = 0;
  // First the first token alone: it then sits where no single step helps 1 token, so a
  // search at 32 tokens that moves it makes 1 token worse unless the floors hold it.
  const std::vector<SearchTile> one(count, SearchTile{1, config.tile, config.tile});
  REQUIRE(search.Optimise(tiles, one, 0.0, options, start).ok());
  const std::vector<double> start_1 = error_at(start, 1), start_2 = error_at(start, 2),
                            start_all = error_at(start, config.tokens);
  const std::vector<SearchTile> all(count, SearchTile{config.tokens, config.tile, config.tile});
  size_t worse_without_floors = 0;
  for (const bool floors : {false, true}) {
    CAPTURE(floors);
    options.prefix_floors = floors;
    std::vector<float> searched = start;
    REQUIRE(search.Optimise(tiles, all, 0.0, options, searched).ok());
    const std::vector<double> after_1 = error_at(searched, 1), after_2 = error_at(searched, 2),
                              after_all = error_at(searched, config.tokens);
    for (size_t t = 0; t < count; ++t) {
      CAPTURE(t);
      CHECK(after_all[t] < start_all[t]);  // random weights: some move helps every tile
      if (!floors) {
        worse_without_floors += after_1[t] > start_1[t] * (1 + 1e-5);
        continue;
      }
      CHECK(after_1[t] <= start_1[t] * (1 + 1e-5));
      CHECK(after_2[t] <= start_2[t] * (1 + 1e-5));
    }
  }
  CHECK(worse_without_floors > 0);
}

TEST_CASE("effort levels: 0 searches nothing, every level above does, and work grows") {
  CHECK_FALSE(SearchOptionsForEffort(0).enabled());
  CHECK(SearchOptionsForEffort(0).curvature_probes == 0);
  uint32_t last_work = 0;
  float last_rate_weight = 1.0f;
  for (uint32_t effort = 1; effort <= kMaxSearchEffort; ++effort) {
    CAPTURE(effort);
    const SearchOptions options = SearchOptionsForEffort(effort);
    CHECK(options.enabled());
    CHECK(options.curvature_probes > 0);
    // The longer searches price bits lower (MS-SSIM), never at zero (files would grow).
    CHECK(options.rate_weight > 0);
    CHECK(options.rate_weight <= last_rate_weight);
    // Every level trims before and after the search, pricing a bit at half the slope.
    CHECK(options.trim_tails);
    CHECK(options.trim_first);
    CHECK(options.grow_counts == 1);
    CHECK(options.prefix_floors);
    CHECK(options.rate_weight * options.trim_rate_weight == doctest::Approx(0.5));
    last_rate_weight = options.rate_weight;
    const uint32_t work =
        options.descent_steps * 2 + options.polish_rounds * (options.polish_tries + 2);
    CHECK(work >= last_work);
    last_work = work;
  }
}

}  // namespace
}  // namespace tok1d

// Tokenizer::DecodeValues and DecodeValuesBackward on tiny random models: the same pixels as
// Decode, and the gradient of the whole decoder against central finite differences.
//
// Finite differences: L(values) = Σ g·pixels for a fixed random g, summed in double over the
// float decoder; (L(v + h) − L(v − h)) / 2h with h = 1e-2 in every value of every kept token
// must be within kTolerance × max |gradient| of DecodeValuesBackward's.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <vector>

#include "codec/test_models.h"
#include "codec/tokenizer.h"
#include "kernels/cpu/cpu_backend.h"

namespace tok1d {
namespace {

using testing::RandomValues;

constexpr double kStep = 1e-2;
constexpr double kTolerance = 2e-3;

Model TinyModel(testing::Architecture architecture, uint32_t seed = 3) {
  StatusOr<Model> model =
      LoadModel(testing::MakeModelFile(testing::TinyConfig(), seed, "tiny", architecture));
  REQUIRE(model.ok());
  return std::move(model).value();
}

// The values Decode embeds for `tokens` and `offsets` (each count × K).
std::vector<float> ValuesOf(const ModelConfig& c, const std::vector<uint32_t>& tokens,
                            const std::vector<float>& offsets) {
  const size_t dims = c.code_dim();
  std::vector<float> values(tokens.size() * dims);
  for (size_t r = 0; r < tokens.size(); ++r) {
    uint32_t rest = tokens[r];
    for (size_t d = 0; d < dims; ++d) {
      const float half = static_cast<float>(c.fsq_levels[d] / 2);
      values[r * dims + d] =
          (static_cast<float>(rest % c.fsq_levels[d]) - half + offsets[r * dims + d]) / half;
      rest /= c.fsq_levels[d];
    }
  }
  return values;
}

struct Tiles {
  std::vector<uint32_t> tokens, keep;
  std::vector<float> offsets;
};

Tiles RandomTiles(const ModelConfig& c, std::vector<uint32_t> keep, uint32_t seed) {
  Tiles tiles;
  tiles.keep = std::move(keep);
  const size_t count = tiles.keep.size(), k = c.tokens;
  const auto raw = RandomValues(count * k, seed);
  for (float v : raw) {
    tiles.tokens.push_back(
        static_cast<uint32_t>((v + 1.0f) * 0.5f * static_cast<float>(c.codebook_size() - 1)));
  }
  tiles.offsets = RandomValues(count * k * c.code_dim(), seed + 1, 0.45f);
  return tiles;
}

TEST_CASE("DecodeValues: the pixels of Decode for the same tokens and offsets") {
  for (auto architecture : {testing::Architecture::kRefined, testing::Architecture::kFirst}) {
    const Model model = TinyModel(architecture);
    const ModelConfig& c = model.config();
    auto backend = CreateCpuBackend(2);
    auto tokenizer = Tokenizer::Create(model, *backend, {4});
    REQUIRE(tokenizer.ok());
    const Tiles tiles = RandomTiles(c, {6, 3, 0, 1}, 40);
    const size_t count = tiles.keep.size(), tile_values = size_t{c.tile} * c.tile * 3;
    std::vector<float> decoded(count * tile_values), from_values(decoded.size());
    REQUIRE((*tokenizer)->Decode(tiles.tokens, tiles.keep, count, decoded, tiles.offsets).ok());
    const auto values = ValuesOf(c, tiles.tokens, tiles.offsets);
    REQUIRE((*tokenizer)->DecodeValues(values, tiles.keep, count, from_values).ok());
    CHECK(decoded == from_values);  // the same operations in the same order
  }
}

TEST_CASE("DecodeValuesBackward: the whole decoder against finite differences") {
  for (auto architecture : {testing::Architecture::kRefined, testing::Architecture::kFirst}) {
    CAPTURE(static_cast<int>(architecture));
    const Model model = TinyModel(architecture, 5);
    const ModelConfig& c = model.config();
    auto backend = CreateCpuBackend(2);
    auto made = Tokenizer::Create(model, *backend, {3});
    REQUIRE(made.ok());
    Tokenizer& tokenizer = **made;
    const Tiles tiles = RandomTiles(c, {6, 4, 0}, 50);
    const size_t count = tiles.keep.size(), tile_values = size_t{c.tile} * c.tile * 3;
    const auto values = ValuesOf(c, tiles.tokens, tiles.offsets);
    const auto cotangent = RandomValues(count * tile_values, 60);
    std::vector<float> pixels(count * tile_values);
    auto loss = [&](const std::vector<float>& v) {
      REQUIRE(tokenizer.DecodeValues(v, tiles.keep, count, pixels).ok());
      double sum = 0;
      for (size_t i = 0; i < pixels.size(); ++i) sum += double{pixels[i]} * cotangent[i];
      return sum;
    };
    loss(values);
    std::vector<float> grad(values.size(), NAN);
    REQUIRE(tokenizer.DecodeValuesBackward(cotangent, grad).ok());

    std::vector<float> probe = values;
    double worst = 0, largest = 0;
    const size_t k = c.tokens, dims = c.code_dim();
    for (size_t i = 0; i < values.size(); ++i) {
      const size_t tile = i / dims / k, token = i / dims % k;
      if (token >= tiles.keep[tile]) {  // dropped: no gradient
        CHECK(grad[i] == 0.0f);
        continue;
      }
      probe[i] = static_cast<float>(values[i] + kStep);
      const double plus = loss(probe);
      probe[i] = static_cast<float>(values[i] - kStep);
      const double minus = loss(probe);
      probe[i] = values[i];
      const double numerical = (plus - minus) / (2 * kStep);
      worst = std::max(worst, std::abs(numerical - grad[i]));
      largest = std::max(largest, std::abs(double{grad[i]}));
    }
    std::printf(
        "DecodeValuesBackward (tiny model, architecture %d): max |finite difference - backward| "
        "= %.3g, %.3g of max |gradient| %.3g\n",
        static_cast<int>(architecture), worst, worst / largest, largest);
    CHECK(largest > 0);
    CHECK(worst <= kTolerance * largest);

    // The tape is the last DecodeValues': a Decode in between changes nothing.
    loss(values);
    std::vector<float> decoded(count * tile_values);
    REQUIRE(tokenizer.Decode(tiles.tokens, tiles.keep, count, decoded, tiles.offsets).ok());
    std::vector<float> again(values.size());
    REQUIRE(tokenizer.DecodeValuesBackward(cotangent, again).ok());
    CHECK(again == grad);
  }
}

TEST_CASE("DecodeValues: errors") {
  const Model model = TinyModel(testing::Architecture::kRefined);
  const ModelConfig& c = model.config();
  auto backend = CreateCpuBackend(1);
  auto made = Tokenizer::Create(model, *backend, {2});
  REQUIRE(made.ok());
  Tokenizer& tokenizer = **made;
  const size_t per_tile = size_t{c.tokens} * c.code_dim(),
               tile_values = size_t{c.tile} * c.tile * 3;
  std::vector<float> grad(per_tile), grad_pixels(tile_values);
  // No DecodeValues yet.
  CHECK(tokenizer.DecodeValuesBackward(grad_pixels, grad).code() == StatusCode::kInternal);
  // More tiles than a batch, and keep beyond K.
  std::vector<float> values(3 * per_tile), pixels(3 * tile_values);
  CHECK(tokenizer.DecodeValues(values, std::vector<uint32_t>{1, 1, 1}, 3, pixels).code() ==
        StatusCode::kInvalidArgument);
  CHECK(tokenizer
            .DecodeValues(std::span(values).first(per_tile), std::vector<uint32_t>{7}, 1,
                          std::span(pixels).first(tile_values))
            .code() == StatusCode::kInvalidArgument);
  // Sizes that do not match the last call.
  REQUIRE(tokenizer
              .DecodeValues(std::span(values).first(per_tile), std::vector<uint32_t>{2}, 1,
                            std::span(pixels).first(tile_values))
              .ok());
  CHECK(tokenizer.DecodeValuesBackward(pixels, grad).code() == StatusCode::kInternal);
  CHECK(tokenizer.DecodeValuesBackward(grad_pixels, grad).ok());
}

}  // namespace
}  // namespace tok1d

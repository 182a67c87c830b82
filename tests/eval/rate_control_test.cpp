// Rate control (codec/rate_control.h) with a tiny random model: budgets are met exactly,
// targets are reached, allocations are nested, impossible requests are refused. Whether
// adaptive allocation beats uniform is a property of the trained model, measured on Kodak
// by scripts/measure-allocation (docs/sweep.md).
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>

#include "codec/rate_control.h"
#include "codec/test_models.h"

namespace tok1d {
namespace {

constexpr uint32_t kTinyTokens = 6;  // testing::TinyConfig()

// Smooth in one half, busy in the other: tiles differ in how much tokens help.
Image MixedImage(uint32_t width, uint32_t height) {
  Image image{width, height, std::vector<uint8_t>(size_t{width} * height * 3)};
  uint32_t state = 7;
  for (uint32_t y = 0; y < height; ++y) {
    for (uint32_t x = 0; x < width; ++x) {
      state = state * 1103515245u + 12345u;
      for (uint32_t c = 0; c < 3; ++c) {
        const uint32_t smooth = 60 + x + c * 20;
        image.rgb[(size_t{y} * width + x) * 3 + c] =
            static_cast<uint8_t>(x < width / 2 ? smooth : (state >> (8 + c * 4)) & 0xff);
      }
    }
  }
  return image;
}

struct Fixture {
  Fixture() : image(MixedImage(64, 40)) {
    StatusOr<Model> model = LoadModel(testing::MakeModelFile(testing::TinyConfig(), 3));
    REQUIRE(model.ok());
    StatusOr<std::unique_ptr<Codec>> created = Codec::Create(std::move(model).value());
    REQUIRE(created.ok());
    codec = std::move(created).value();
    StatusOr<TokenFile> encoded = codec->Encode(image, kTinyTokens);
    REQUIRE(encoded.ok());
    full = std::move(encoded).value();
  }

  uint64_t SizeOf(const std::vector<uint32_t>& counts) const {
    StatusOr<TokenFile> trimmed = TrimTokens(full, counts);
    REQUIRE(trimmed.ok());
    StatusOr<std::vector<uint8_t>> bytes = WriteT1d(*trimmed);
    REQUIRE(bytes.ok());
    return bytes->size();
  }

  double PsnrOf(const std::vector<uint32_t>& counts) const {
    StatusOr<TokenFile> trimmed = TrimTokens(full, counts);
    REQUIRE(trimmed.ok());
    StatusOr<Image> decoded = codec->Decode(*trimmed);
    REQUIRE(decoded.ok());
    return Psnr(image, *decoded);
  }

  Image image;
  std::unique_ptr<Codec> codec;
  TokenFile full;
};

const RateControlOptions kUniform{TokenAllocation::kUniform, nullptr, {}};
const RateControlOptions kAdaptive{TokenAllocation::kAdaptive, nullptr, {}};

TEST_CASE("byte budgets: the file fits, and one more step would not") {
  Fixture f;
  const size_t tiles = f.full.tokens.size();
  REQUIRE(tiles == 12);  // 4 × 3 tiles of 16
  const uint64_t smallest = f.SizeOf(std::vector<uint32_t>(tiles, 1));
  const uint64_t largest = f.SizeOf(std::vector<uint32_t>(tiles, kTinyTokens));
  for (uint64_t budget : {smallest, (smallest + largest) / 2, largest - 1, largest + 100}) {
    CAPTURE(budget);
    StatusOr<std::vector<uint32_t>> uniform =
        TokensWithinBytes(*f.codec, f.image, f.full, budget, kUniform);
    StatusOr<std::vector<uint32_t>> adaptive =
        TokensWithinBytes(*f.codec, f.image, f.full, budget, kAdaptive);
    REQUIRE(uniform.ok());
    REQUIRE(adaptive.ok());
    CHECK(f.SizeOf(*uniform) <= budget);
    CHECK(f.SizeOf(*adaptive) <= budget);
    const uint32_t k = uniform->front();
    CHECK(std::all_of(uniform->begin(), uniform->end(), [k](uint32_t c) { return c == k; }));
    if (k < kTinyTokens) CHECK(f.SizeOf(std::vector<uint32_t>(tiles, k + 1)) > budget);
    for (uint32_t count : *adaptive) CHECK((count >= 1 && count <= kTinyTokens));
  }
  const StatusOr<std::vector<uint32_t>> all =
      TokensWithinBytes(*f.codec, f.image, f.full, largest, kAdaptive);
  CHECK(*all == std::vector<uint32_t>(tiles, kTinyTokens));
}

TEST_CASE("adaptive allocations are nested: a larger budget never takes a token away") {
  Fixture f;
  const uint64_t smallest = f.SizeOf(std::vector<uint32_t>(12, 1));
  std::vector<uint32_t> previous(12, 0);
  for (uint64_t budget = smallest; budget < smallest + 200; budget += 20) {
    StatusOr<std::vector<uint32_t>> counts =
        TokensWithinBytes(*f.codec, f.image, f.full, budget, kAdaptive);
    REQUIRE(counts.ok());
    for (size_t t = 0; t < counts->size(); ++t) CHECK((*counts)[t] >= previous[t]);
    previous = *counts;
  }
}

TEST_CASE("a budget below one token per tile is refused with the smallest size") {
  Fixture f;
  const uint64_t smallest = f.SizeOf(std::vector<uint32_t>(12, 1));
  for (const RateControlOptions& options : {kUniform, kAdaptive}) {
    StatusOr<std::vector<uint32_t>> counts =
        TokensWithinBytes(*f.codec, f.image, f.full, smallest - 1, options);
    REQUIRE_FALSE(counts.ok());
    CHECK(counts.status().code() == StatusCode::kInvalidArgument);
    CHECK(counts.status().message() == "cannot fit in " + std::to_string(smallest - 1) +
                                           " bytes: the smallest file (1 token per tile) takes " +
                                           std::to_string(smallest) + " bytes");
  }
}

TEST_CASE("PSNR targets are reached") {
  // A random model's PSNR need not grow with tokens, so only reaching is checked here.
  Fixture f;
  const double target = f.PsnrOf(std::vector<uint32_t>(12, kTinyTokens)) - 0.01;
  StatusOr<std::vector<uint32_t>> uniform =
      TokensReachingPsnr(*f.codec, f.image, f.full, target, kUniform);
  StatusOr<std::vector<uint32_t>> adaptive =
      TokensReachingPsnr(*f.codec, f.image, f.full, target, kAdaptive);
  REQUIRE(uniform.ok());
  REQUIRE(adaptive.ok());
  CHECK(f.PsnrOf(*uniform) >= target);
  CHECK(f.PsnrOf(*adaptive) >= target);
}

TEST_CASE("adaptive PSNR targets: no smaller uniform file reaches the target") {
  Fixture f;
  const std::vector<uint32_t> all(12, kTinyTokens);
  const double best = f.PsnrOf(all);
  for (double below : {0.01, 0.3, 1.0, 3.0}) {
    const double target = best - below;
    CAPTURE(target);
    StatusOr<std::vector<uint32_t>> adaptive =
        TokensReachingPsnr(*f.codec, f.image, f.full, target, kAdaptive);
    REQUIRE(adaptive.ok());
    CHECK(f.PsnrOf(*adaptive) >= target);
    const uint64_t size = f.SizeOf(*adaptive);
    CHECK(size <= f.SizeOf(all));
    const bool uniform = std::all_of(adaptive->begin(), adaptive->end(),
                                     [&](uint32_t c) { return c == adaptive->front(); });
    if (uniform) continue;
    // The largest uniform count whose file is smaller does not reach the target.
    for (uint32_t k = kTinyTokens; k >= 1; --k) {
      const std::vector<uint32_t> counts(12, k);
      if (f.SizeOf(counts) < size) {
        CHECK(f.PsnrOf(counts) < target);
        break;
      }
    }
  }
}

TEST_CASE("an unreachable PSNR is refused with the best one") {
  Fixture f;
  StatusOr<std::vector<uint32_t>> counts =
      TokensReachingPsnr(*f.codec, f.image, f.full, 99, kAdaptive);
  REQUIRE_FALSE(counts.ok());
  CHECK(counts.status().message().rfind("cannot reach 99.00 dB: all 6 tokens per tile give ", 0) ==
        0);
}

}  // namespace
}  // namespace tok1d

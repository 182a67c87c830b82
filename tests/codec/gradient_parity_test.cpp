// The decoder's gradient against PyTorch autograd: tests/data/golden/gradients.safetensors,
// written by models/golden_gradients.py from the default model (float64 reference), holds three
// tiles' decoder input values (tokens with offsets, kept to 8, 32 and 128 tokens), a target, the
// loss Σ (pixels − target)² per tile and its gradient with respect to the values.
//
// Tolerances:
//  - DecodeValues' pixels equal Decode's for the same tokens and offsets (the same operations),
//    and PyTorch's (every 8th row is stored) within kPixelTolerance, the decoder parity bound.
//  - The loss of each tile within kLossTolerance, relative.
//  - The gradient (grad_pixels = 2·(pixels − target) from the C++ pixels): per tile,
//    max |C++ − PyTorch| ≤ kGradientTolerance × max |PyTorch gradient of that tile|.
//
// Paths: $TOK1D_TEST_MODEL and $TOK1D_TEST_GRADIENTS, else the defaults CMake compiled in.
// Exits with 77 (CTest: skipped) when either file is missing.
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "codec/model.h"
#include "codec/safetensors.h"
#include "codec/tokenizer.h"
#include "common/file_util.h"
#include "kernels/backend.h"

namespace tok1d {
namespace {

constexpr double kPixelTolerance = 1e-4;
constexpr double kLossTolerance = 1e-4;
constexpr double kGradientTolerance = 1e-4;

std::string PathFromEnvironment(const char* variable, const char* fallback) {
  const char* value = std::getenv(variable);
  return value != nullptr && *value != '\0' ? value : fallback;
}

const std::string& ModelPath() {
  static const std::string path = PathFromEnvironment("TOK1D_TEST_MODEL", TOK1D_TEST_MODEL);
  return path;
}
const std::string& GradientsPath() {
  static const std::string path = PathFromEnvironment("TOK1D_TEST_GRADIENTS", TOK1D_TEST_GRADIENTS);
  return path;
}

template <typename T>
std::vector<T> Tensor(const SafetensorsFile& file, const std::string& name, const char* dtype,
                      size_t count) {
  const SafetensorsTensor* tensor = file.Find(name);
  REQUIRE_MESSAGE(tensor != nullptr, "gradients file has no tensor " << name);
  REQUIRE(tensor->dtype == dtype);
  REQUIRE(tensor->element_count() == count);
  const T* data = reinterpret_cast<const T*>(tensor->data.data());
  return std::vector<T>(data, data + count);
}

TEST_CASE("gradient parity: DecodeValues and DecodeValuesBackward match PyTorch autograd") {
  StatusOr<Model> loaded = LoadModelFile(ModelPath());
  REQUIRE_MESSAGE(loaded.ok(), loaded.status().message());
  const Model model = std::move(loaded).value();
  StatusOr<std::vector<uint8_t>> bytes = ReadFileBytes(GradientsPath());
  REQUIRE_MESSAGE(bytes.ok(), bytes.status().message());
  StatusOr<SafetensorsFile> parsed = ParseSafetensors(*bytes);
  REQUIRE_MESSAGE(parsed.ok(), parsed.status().message());
  SafetensorsFile golden = std::move(parsed).value();
  REQUIRE_MESSAGE(golden.metadata["model_sha256"] == model.sha256_hex(),
                  "the golden gradients were made with another model than " << ModelPath());

  const ModelConfig& c = model.config();
  const size_t count = golden.Find("keep")->shape.at(0);
  const size_t k = c.tokens, dims = c.code_dim(), tile = c.tile;
  const size_t tile_values = tile * tile * 3, per_tile = k * dims;
  const size_t row_step = std::stoul(golden.metadata["row_step"]);
  const auto tokens_i32 = Tensor<int32_t>(golden, "tokens", "I32", count * k);
  const auto keep_i32 = Tensor<int32_t>(golden, "keep", "I32", count);
  const auto offsets = Tensor<float>(golden, "offsets", "F32", count * per_tile);
  const auto values = Tensor<float>(golden, "values", "F32", count * per_tile);
  const auto target = Tensor<uint8_t>(golden, "target", "U8", count * tile_values);
  const auto pixel_rows =
      Tensor<float>(golden, "pixels_rows", "F32", count * (tile / row_step) * tile * 3);
  const auto loss = Tensor<float>(golden, "loss", "F32", count);
  const auto expected = Tensor<float>(golden, "grad_values", "F32", count * per_tile);
  const std::vector<uint32_t> tokens(tokens_i32.begin(), tokens_i32.end());
  const std::vector<uint32_t> keep(keep_i32.begin(), keep_i32.end());

  StatusOr<std::unique_ptr<Backend>> backend = CreateBackend("cpu");
  REQUIRE(backend.ok());
  StatusOr<std::unique_ptr<Tokenizer>> made = Tokenizer::Create(model, **backend, {count});
  REQUIRE(made.ok());
  Tokenizer& tokenizer = **made;

  std::vector<float> pixels(count * tile_values), decoded(pixels.size());
  REQUIRE(tokenizer.DecodeValues(values, keep, count, pixels).ok());
  REQUIRE(tokenizer.Decode(tokens, keep, count, decoded, offsets).ok());
  double decode_difference = 0;
  for (size_t i = 0; i < pixels.size(); ++i)
    decode_difference = std::max(decode_difference, double{std::abs(pixels[i] - decoded[i])});
  std::printf("gradient parity: max |DecodeValues - Decode| = %.3g\n", decode_difference);
  CHECK(decode_difference <= 1e-6);

  double pixel_error = 0;
  for (size_t t = 0; t < count; ++t) {
    for (size_t r = 0; r < tile / row_step; ++r) {
      for (size_t i = 0; i < tile * 3; ++i) {
        const float ours = pixels[t * tile_values + r * row_step * tile * 3 + i];
        const float theirs = pixel_rows[(t * (tile / row_step) + r) * tile * 3 + i];
        pixel_error = std::max(pixel_error, double{std::abs(ours - theirs)});
      }
    }
  }
  std::printf("gradient parity: max |pixels - PyTorch| = %.3g (tolerance %.0e)\n", pixel_error,
              kPixelTolerance);
  CHECK(pixel_error <= kPixelTolerance);

  std::vector<float> grad_pixels(pixels.size());
  for (size_t t = 0; t < count; ++t) {
    double sum = 0;
    for (size_t i = t * tile_values; i < (t + 1) * tile_values; ++i) {
      const float residual = pixels[i] - static_cast<float>(target[i]) / 255.0f;
      grad_pixels[i] = 2.0f * residual;
      sum += double{residual} * residual;
    }
    const double relative = std::abs(sum - loss[t]) / loss[t];
    std::printf(
        "gradient parity: tile %zu (k=%u) loss %.6g, PyTorch %.6g, relative difference %.3g\n", t,
        keep[t], sum, double{loss[t]}, relative);
    CHECK(relative <= kLossTolerance);
  }

  std::vector<float> grad(count * per_tile, NAN);
  REQUIRE(tokenizer.DecodeValuesBackward(grad_pixels, grad).ok());
  for (size_t t = 0; t < count; ++t) {
    double worst = 0, largest = 0, worst_relative = 0;
    for (size_t i = t * per_tile; i < (t + 1) * per_tile; ++i) {
      const double difference = std::abs(double{grad[i]} - expected[i]);
      worst = std::max(worst, difference);
      largest = std::max(largest, std::abs(double{expected[i]}));
      if (std::abs(expected[i]) > 1e-2)
        worst_relative = std::max(worst_relative, difference / std::abs(expected[i]));
      if (i - t * per_tile >= keep[t] * dims) CHECK(grad[i] == 0.0f);
    }
    std::printf(
        "gradient parity: tile %zu (k=%u) max |grad - PyTorch| = %.3g = %.3g of max |grad| %.4g "
        "(tolerance %.0e); elementwise relative (|grad| > 0.01) up to %.3g\n",
        t, keep[t], worst, worst / largest, largest, kGradientTolerance, worst_relative);
    CHECK(worst <= kGradientTolerance * largest);
  }
}

}  // namespace
}  // namespace tok1d

int main(int argc, char** argv) {
  for (const std::string& path : {tok1d::ModelPath(), tok1d::GradientsPath()}) {
    if (!std::filesystem::exists(path)) {
      std::printf("skipped: %s does not exist (set TOK1D_TEST_MODEL / TOK1D_TEST_GRADIENTS)\n",
                  path.c_str());
      return 77;
    }
  }
  doctest::Context context(argc, argv);
  return context.run();
}

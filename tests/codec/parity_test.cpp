// Parity with the PyTorch reference: the golden vectors written by models/export.py --golden
// (tiles, their tokens, the FSQ values before rounding, and decoded outputs at several k) must
// be reproduced by the C++ forward pass on the CPU backend.
//
// Tolerances (also in docs/performance.md):
//  - Encoder: every token equal, except where a value sits within kTieEpsilon of a rounding
//    boundary in PyTorch's own output (float summation order decides those); such flips must
//    move one FSQ digit by one, and at most 1% of tokens may flip.
//  - Decoder (fed the golden tokens): max |C++ − PyTorch| ≤ kDecodeTolerance on the [0, 1] scale
//    (a 40th of one 8-bit level), before clamping.
//
// Paths: $TOK1D_TEST_MODEL and $TOK1D_TEST_GOLDEN, else the defaults CMake compiled in. Exits
// with 77 (CTest: skipped) when either file is missing.
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>

#include "codec/model.h"
#include "codec/safetensors.h"
#include "codec/tokenizer.h"
#include "common/file_util.h"
#include "common/fsq_codebook.h"
#include "kernels/backend.h"

namespace tok1d {
namespace {

constexpr double kTieEpsilon = 1e-4;
constexpr double kDecodeTolerance = 1e-4;
constexpr double kMaxFlipFraction = 0.01;

std::string PathFromEnvironment(const char* variable, const char* fallback) {
  const char* value = std::getenv(variable);
  return value != nullptr && *value != '\0' ? value : fallback;
}

const std::string& ModelPath() {
  static const std::string path = PathFromEnvironment("TOK1D_TEST_MODEL", TOK1D_TEST_MODEL);
  return path;
}
const std::string& GoldenPath() {
  static const std::string path = PathFromEnvironment("TOK1D_TEST_GOLDEN", TOK1D_TEST_GOLDEN);
  return path;
}

template <typename T>
const T* TensorData(const SafetensorsFile& file, const std::string& name, const char* dtype) {
  const SafetensorsTensor* tensor = file.Find(name);
  REQUIRE_MESSAGE(tensor != nullptr, "golden file has no tensor " << name);
  REQUIRE(tensor->dtype == dtype);
  return reinterpret_cast<const T*>(tensor->data.data());  // safetensors data is 8-byte aligned
}

struct Fixture {
  Fixture() {
    StatusOr<Model> loaded = LoadModelFile(ModelPath());
    REQUIRE_MESSAGE(loaded.ok(), loaded.status().message());
    model = std::make_unique<Model>(std::move(loaded).value());
    StatusOr<std::vector<uint8_t>> bytes = ReadFileBytes(GoldenPath());
    REQUIRE_MESSAGE(bytes.ok(), bytes.status().message());
    golden_bytes = std::move(bytes).value();
    StatusOr<SafetensorsFile> parsed = ParseSafetensors(golden_bytes);
    REQUIRE_MESSAGE(parsed.ok(), parsed.status().message());
    golden = std::move(parsed).value();
    REQUIRE_MESSAGE(golden.metadata["model_sha256"] == model->sha256_hex(),
                    "the golden vectors were made with another model than " << ModelPath());
    StatusOr<std::unique_ptr<Backend>> created = CreateBackend("cpu");
    REQUIRE(created.ok());
    backend = std::move(created).value();
    StatusOr<std::unique_ptr<Tokenizer>> made = Tokenizer::Create(*model, *backend);
    REQUIRE(made.ok());
    tokenizer = std::move(made).value();
    tiles = golden.Find("input")->shape.at(0);
  }
  std::unique_ptr<Model> model;
  std::vector<uint8_t> golden_bytes;
  SafetensorsFile golden;
  std::unique_ptr<Backend> backend;
  std::unique_ptr<Tokenizer> tokenizer;
  size_t tiles = 0;
};

TEST_CASE("parity: encoder tokens match PyTorch except at rounding ties") {
  Fixture f;
  const ModelConfig& c = f.model->config();
  const size_t k = c.tokens, dims = c.code_dim();
  const uint8_t* input = TensorData<uint8_t>(f.golden, "input", "U8");
  const int32_t* expected = TensorData<int32_t>(f.golden, "tokens", "I32");
  const float* expected_bounded = TensorData<float>(f.golden, "bounded", "F32");
  std::vector<uint32_t> tokens(f.tiles * k);
  std::vector<float> bounded(f.tiles * k * dims);
  REQUIRE(
      f.tokenizer->Encode(std::span(input, f.tiles * c.tile * c.tile * 3), f.tiles, tokens, bounded)
          .ok());

  size_t flips = 0;
  double bounded_error = 0;
  for (size_t i = 0; i < bounded.size(); ++i) {
    bounded_error = std::max(bounded_error, double{std::abs(bounded[i] - expected_bounded[i])});
  }
  for (size_t t = 0; t < tokens.size(); ++t) {
    if (tokens[t] == static_cast<uint32_t>(expected[t])) continue;
    ++flips;
    uint32_t ours = tokens[t], theirs = static_cast<uint32_t>(expected[t]);
    for (size_t d = 0; d < dims; ++d) {
      const uint32_t level = c.fsq_levels[d];
      const uint32_t a = ours % level, b = theirs % level;
      ours /= level;
      theirs /= level;
      if (a == b) continue;
      const double value = expected_bounded[t * dims + d];
      const double from_boundary = std::abs(std::abs(value - std::floor(value)) - 0.5);
      CHECK_MESSAGE(from_boundary < kTieEpsilon, "token " << t << " digit " << d
                                                          << ": PyTorch's value " << value
                                                          << " is not at a rounding tie");
      CHECK(std::max(a, b) - std::min(a, b) == 1);
    }
  }
  std::printf(
      "parity: %zu tokens, %zu flipped at ties (bound %.0f), max |bounded difference| %.3g\n",
      tokens.size(), flips, kMaxFlipFraction * static_cast<double>(tokens.size()), bounded_error);
  CHECK(static_cast<double>(flips) <= kMaxFlipFraction * static_cast<double>(tokens.size()));
  CHECK(bounded_error < 1e-3);
}

TEST_CASE("parity: decoder output matches PyTorch at every golden k") {
  Fixture f;
  const ModelConfig& c = f.model->config();
  const size_t values = f.tiles * c.tile * c.tile * 3;
  const int32_t* golden_tokens = TensorData<int32_t>(f.golden, "tokens", "I32");
  const std::vector<uint32_t> tokens(golden_tokens, golden_tokens + f.tiles * c.tokens);
  size_t checked = 0;
  for (const SafetensorsTensor& tensor : f.golden.tensors) {
    if (!tensor.name.starts_with("decoded_k")) continue;
    const auto k = static_cast<uint32_t>(std::stoul(tensor.name.substr(9)));
    REQUIRE(tensor.element_count() == values);
    std::vector<float> pixels(values);
    REQUIRE(f.tokenizer->Decode(tokens, std::vector<uint32_t>(f.tiles, k), f.tiles, pixels).ok());
    const float* expected = TensorData<float>(f.golden, tensor.name, "F32");
    double error = 0;
    for (size_t i = 0; i < values; ++i)
      error = std::max(error, double{std::abs(pixels[i] - expected[i])});
    std::printf("parity: decode k=%u max |C++ - PyTorch| = %.3g (tolerance %.0e)\n", k, error,
                kDecodeTolerance);
    CHECK_MESSAGE(error <= kDecodeTolerance, "k=" << k);
    ++checked;
  }
  CHECK(checked > 0);
}

TEST_CASE("parity: refinement values and the refined decode match PyTorch") {
  Fixture f;
  const Refinement& plan = f.model->refinement();
  if (plan.bits == 0) {
    MESSAGE("the model has no refinement plan");
    CHECK(f.golden.Find("refinement_parts") == nullptr);
    return;
  }
  const ModelConfig& c = f.model->config();
  const FsqCodebook codebook = c.codebook();
  const size_t k = c.tokens, dims = c.code_dim(), refined = plan.count();
  const int32_t* golden_tokens = TensorData<int32_t>(f.golden, "tokens", "I32");
  const float* bounded = TensorData<float>(f.golden, "bounded", "F32");
  const int32_t* parts = TensorData<int32_t>(f.golden, "refinement_parts", "I32");
  // From PyTorch's own tokens and bounded values the C++ refinement must be exact: both
  // compute floor((b − round(b) + ½)·2^bits) in float.
  std::vector<float> offsets(f.tiles * k * dims, 0.0f);
  for (size_t t = 0; t < f.tiles; ++t) {
    for (size_t r = 0; r < refined; ++r) {
      const size_t row = t * k + r;
      const uint32_t value = codebook.RefinementValue(static_cast<uint32_t>(golden_tokens[row]),
                                                      bounded + row * dims, plan.bits);
      for (size_t d = 0; d < dims; ++d) {
        CHECK(((value >> (plan.bits * d)) & ((1u << plan.bits) - 1)) ==
              static_cast<uint32_t>(parts[(t * refined + r) * dims + d]));
      }
      codebook.RefinementOffsets(value, plan.bits, &offsets[row * dims]);
    }
  }
  const std::string name = "decoded_refined_k" + std::to_string(k);
  const size_t values = f.tiles * c.tile * c.tile * 3;
  const std::vector<uint32_t> tokens(golden_tokens, golden_tokens + f.tiles * k);
  std::vector<float> pixels(values);
  REQUIRE(f.tokenizer
              ->Decode(tokens, std::vector<uint32_t>(f.tiles, static_cast<uint32_t>(k)), f.tiles,
                       pixels, offsets)
              .ok());
  const float* expected = TensorData<float>(f.golden, name, "F32");
  double error = 0;
  for (size_t i = 0; i < values; ++i)
    error = std::max(error, double{std::abs(pixels[i] - expected[i])});
  std::printf("parity: refined decode k=%zu max |C++ - PyTorch| = %.3g (tolerance %.0e)\n", k,
              error, kDecodeTolerance);
  CHECK(error <= kDecodeTolerance);
}

}  // namespace
}  // namespace tok1d

int main(int argc, char** argv) {
  for (const std::string& path : {tok1d::ModelPath(), tok1d::GoldenPath()}) {
    if (!std::filesystem::exists(path)) {
      std::printf("skipped: %s does not exist (set TOK1D_TEST_MODEL / TOK1D_TEST_GOLDEN)\n",
                  path.c_str());
      return 77;
    }
  }
  std::printf("parity: model %s, golden %s\n", tok1d::ModelPath().c_str(),
              tok1d::GoldenPath().c_str());
  doctest::Context context(argc, argv);
  return context.run();
}

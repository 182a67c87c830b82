// Model files made by the tests: small configurations with random weights, so that loading,
// the forward pass's plumbing and the codec run in milliseconds and without the trained model.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "codec/model.h"

namespace tok1d::testing {

struct TestTensor {
  std::string dtype;  // "F32", "F16", "I32", …
  std::vector<uint64_t> shape;
  std::vector<uint8_t> data;
};

// Serializes tensors (name order) and metadata as a safetensors file.
std::vector<uint8_t> WriteSafetensors(const std::map<std::string, TestTensor>& tensors,
                                      const std::map<std::string, std::string>& metadata);

// `count` values uniform in [-scale, scale], deterministic in `seed`: operands for op tests.
std::vector<float> RandomValues(size_t count, uint32_t seed, float scale = 1.0f);

// A tiny model: tile 16, patch 4, width 8, two heads, 6 tokens, FSQ 3×4×5, pool 4.
ModelConfig TinyConfig();
// TinyConfig with a convolutional pixel head of 4 channels and 2 blocks.
ModelConfig TinyConvHeadConfig();
std::string ConfigJson(const ModelConfig& config);

// Which generation of models/tok1d_model.py: the first had no code_in_embed / coarse_embed.
enum class Architecture { kFirst, kRefined };

// Every tensor of a model with `config`, random values of scale ~1/√fan_in (deterministic in
// `seed`), in F16 (exactly representable values) or F32.
std::map<std::string, TestTensor> RandomModelTensors(
    const ModelConfig& config, uint32_t seed, const std::string& dtype = "F16",
    Architecture architecture = Architecture::kRefined);

// Metadata of a tok1d model file with this config.
std::map<std::string, std::string> ModelMetadata(const ModelConfig& config,
                                                 const std::string& name = "tiny");

// A complete model file.
// `refinement`: the metadata entry "refinement" (JSON), none when empty.
std::vector<uint8_t> MakeModelFile(const ModelConfig& config, uint32_t seed,
                                   const std::string& name = "tiny",
                                   Architecture architecture = Architecture::kRefined,
                                   const std::string& refinement = "");

// A float tensor's little-endian bytes, F32 or F16 (values must be representable in F16).
TestTensor FloatTensor(const std::vector<float>& values, std::vector<uint64_t> shape,
                       const std::string& dtype);

}  // namespace tok1d::testing

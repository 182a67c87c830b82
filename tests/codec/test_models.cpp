#include "codec/test_models.h"

#include <nlohmann/json.hpp>

#include <bit>
#include <cmath>
#include <random>
#include <stdexcept>

namespace tok1d::testing {
namespace {

void AppendLe(std::vector<uint8_t>* out, uint64_t value, size_t bytes) {
  for (size_t i = 0; i < bytes; ++i) out->push_back(static_cast<uint8_t>(value >> (8 * i)));
}

// float → binary16 for values that are zero or normal halves with at most 10 mantissa bits.
uint16_t ExactHalf(float value) {
  if (value == 0) return 0;
  const uint32_t bits = std::bit_cast<uint32_t>(value);
  const uint32_t sign = (bits >> 16) & 0x8000u;
  const int exponent = static_cast<int>((bits >> 23) & 0xFF) - 127 + 15;
  if (exponent <= 0 || exponent >= 31 || (bits & 0x1FFFu) != 0) {
    throw std::invalid_argument("value is not exactly representable as a normal half");
  }
  return static_cast<uint16_t>(sign | (static_cast<uint32_t>(exponent) << 10) |
                               ((bits >> 13) & 0x3FFu));
}

}  // namespace

std::vector<uint8_t> WriteSafetensors(const std::map<std::string, TestTensor>& tensors,
                                      const std::map<std::string, std::string>& metadata) {
  nlohmann::json header = nlohmann::json::object();
  std::vector<uint8_t> data;
  for (const auto& [name, tensor] : tensors) {
    header[name] = {{"dtype", tensor.dtype},
                    {"shape", tensor.shape},
                    {"data_offsets", {data.size(), data.size() + tensor.data.size()}}};
    data.insert(data.end(), tensor.data.begin(), tensor.data.end());
  }
  header["__metadata__"] = metadata;
  std::string text = header.dump();
  while (text.size() % 8 != 0) text += ' ';
  std::vector<uint8_t> file;
  AppendLe(&file, text.size(), 8);
  file.insert(file.end(), text.begin(), text.end());
  file.insert(file.end(), data.begin(), data.end());
  return file;
}

ModelConfig TinyConfig() {
  ModelConfig c;
  c.tile = 16;
  c.patch = 4;
  c.width = 8;
  c.enc_depth = 1;
  c.dec_depth = 2;
  c.heads = 2;
  c.mlp_ratio = 2;
  c.tokens = 6;
  c.pool = 4;
  c.fsq_levels = {3, 4, 5};
  c.ln_eps = 1e-5f;
  return c;
}

ModelConfig TinyConvHeadConfig() {
  ModelConfig c = TinyConfig();
  c.conv_head = 4;
  c.conv_blocks = 2;
  return c;
}

std::string ConfigJson(const ModelConfig& c) {
  nlohmann::json json = {{"tile", c.tile},           {"patch", c.patch},
                         {"width", c.width},         {"enc_depth", c.enc_depth},
                         {"dec_depth", c.dec_depth}, {"heads", c.heads},
                         {"mlp_ratio", c.mlp_ratio}, {"tokens", c.tokens},
                         {"pool", c.pool},           {"fsq_levels", c.fsq_levels},
                         {"ln_eps", c.ln_eps}};
  if (c.conv_head) {
    json["conv_head"] = c.conv_head;
    json["conv_blocks"] = c.conv_blocks;
  }
  return json.dump();
}

TestTensor FloatTensor(const std::vector<float>& values, std::vector<uint64_t> shape,
                       const std::string& dtype) {
  TestTensor tensor{dtype, std::move(shape), {}};
  for (float value : values) {
    if (dtype == "F32") {
      AppendLe(&tensor.data, std::bit_cast<uint32_t>(value), 4);
    } else {
      AppendLe(&tensor.data, ExactHalf(value), 2);
    }
  }
  return tensor;
}

std::vector<float> RandomValues(size_t count, uint32_t seed, float scale) {
  std::mt19937 random(seed);
  std::uniform_real_distribution<float> uniform(-scale, scale);
  std::vector<float> values(count);
  for (float& v : values) v = uniform(random);
  return values;
}

std::map<std::string, TestTensor> RandomModelTensors(const ModelConfig& c, uint32_t seed,
                                                     const std::string& dtype,
                                                     Architecture architecture) {
  std::mt19937 random(seed);
  std::map<std::string, TestTensor> tensors;
  // Multiples of 1/1024 below 1 in magnitude: exact in F16.
  auto values = [&](uint64_t count, float scale) {
    std::uniform_int_distribution<int> steps(-1023, 1023);
    std::vector<float> v(count);
    for (float& x : v) x = std::ldexp(std::round(static_cast<float>(steps(random)) * scale), -10);
    return v;
  };
  auto add = [&](const std::string& name, std::vector<uint64_t> shape, float scale) {
    uint64_t count = 1;
    for (uint64_t extent : shape) count *= extent;
    tensors[name] = FloatTensor(values(count, scale), std::move(shape), dtype);
  };
  auto linear = [&](const std::string& name, uint64_t in, uint64_t out) {
    add(name + ".weight", {out, in}, 1.0f / std::sqrt(static_cast<float>(in)));
    add(name + ".bias", {out}, 0.1f);
  };
  auto norm = [&](const std::string& name, uint64_t width) {
    add(name + ".weight", {width}, 1.0f);
    add(name + ".bias", {width}, 0.1f);
  };
  auto block = [&](const std::string& name) {
    norm(name + ".norm1", c.width);
    linear(name + ".qkv", c.width, 3 * c.width);
    linear(name + ".proj", c.width, c.width);
    norm(name + ".norm2", c.width);
    linear(name + ".fc1", c.width, c.mlp_width());
    linear(name + ".fc2", c.mlp_width(), c.width);
  };
  const uint64_t n = c.patch_count(), k = c.tokens, d = c.width, code = c.code_dim();
  linear("patch_embed", c.patch_dim(), d);
  add("enc_pos", {n, d}, 0.5f);
  add("latents", {k, d}, 0.5f);
  for (uint32_t i = 0; i < c.enc_depth; ++i) block("enc_blocks." + std::to_string(i));
  norm("enc_norm", d);
  linear("to_code", d, code);
  linear("shortcut_enc", c.pooled_dim(), k * code);
  linear("code_embed", code, d);
  add("dec_token_pos", {k, d}, 0.5f);
  add("mask_token", {d}, 0.5f);
  add("patch_queries", {n, d}, 0.5f);
  for (uint32_t i = 0; i < c.dec_depth; ++i) block("dec_blocks." + std::to_string(i));
  norm("dec_norm", d);
  linear("to_pixels", d, c.patch_dim());
  linear("shortcut_dec", k * code, c.pooled_dim());
  if (architecture == Architecture::kRefined) {
    linear("code_in_embed", code, d);
    linear("coarse_embed", uint64_t{c.coarse_patch()} * c.coarse_patch() * 3, d);
  }
  if (c.conv_head) {
    const uint64_t ch = c.conv_head, half = c.head_patch();
    auto conv = [&](const std::string& name, uint64_t in, uint64_t out) {
      add(name + ".weight", {out, in, 3, 3}, 1.0f / std::sqrt(9.0f * static_cast<float>(in)));
      add(name + ".bias", {out}, 0.1f);
    };
    linear("head_in", d, half * half * ch);
    for (uint32_t i = 0; i < c.conv_blocks; ++i) {
      conv("head_blocks." + std::to_string(i) + ".conv1", ch, ch);
      conv("head_blocks." + std::to_string(i) + ".conv2", ch, ch);
    }
    conv("head_out", ch, 12);
  }
  return tensors;
}

std::map<std::string, std::string> ModelMetadata(const ModelConfig& config,
                                                 const std::string& name) {
  return {{"format", "tok1d-model"},
          {"format_version", "1"},
          {"name", name},
          {"config", ConfigJson(config)},
          {"training", "{}"}};
}

std::vector<uint8_t> MakeModelFile(const ModelConfig& config, uint32_t seed,
                                   const std::string& name, Architecture architecture,
                                   const std::string& refinement) {
  std::map<std::string, std::string> metadata = ModelMetadata(config, name);
  if (!refinement.empty()) metadata["refinement"] = refinement;
  return WriteSafetensors(RandomModelTensors(config, seed, "F16", architecture), metadata);
}

}  // namespace tok1d::testing

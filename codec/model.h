// The tokenizer model: its configuration, its weights (float32, in one arena) and its identity.
//
// A model file is safetensors (see codec/safetensors.h) written by models/export.py: weights
// named as in models/tok1d_model.py, metadata format="tok1d-model", format_version="1", name,
// config (JSON). Every tensor's shape is checked against the config; tensors named "entropy.*"
// are the range coder's tables (codec/entropy_coder.h). The identity recorded in .t1d files is
// the model's name plus the SHA-256 of the whole file, so it covers the tables too.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/fsq_codebook.h"
#include "container/t1d.h"
#include "tok1d/status.h"

namespace tok1d {

class EntropyTables;  // codec/entropy_coder.h

// Hyperparameters (the "config" metadata; names as in models/tok1d_model.py DEFAULT_CONFIG).
struct ModelConfig {
  uint32_t tile = 0;       // tile side in pixels
  uint32_t patch = 0;      // patch side in pixels
  uint32_t width = 0;      // transformer width d
  uint32_t enc_depth = 0;  // encoder blocks
  uint32_t dec_depth = 0;  // decoder blocks
  uint32_t heads = 0;
  uint32_t mlp_ratio = 0;
  uint32_t tokens = 0;  // K, tokens per tile
  uint32_t pool = 0;    // side of the pooled thumbnail the linear shortcuts see
  std::vector<uint32_t> fsq_levels;
  float ln_eps = 0;
  // Optional convolutional pixel head: channels of its half-resolution feature map (0: none)
  // and its residual blocks.
  uint32_t conv_head = 0;
  uint32_t conv_blocks = 0;

  uint32_t patches_per_side() const { return tile / patch; }
  uint32_t patch_count() const { return patches_per_side() * patches_per_side(); }  // N
  uint32_t patch_dim() const { return patch * patch * 3; }
  uint32_t pooled_dim() const { return pool * pool * 3; }
  uint32_t code_dim() const { return static_cast<uint32_t>(fsq_levels.size()); }  // C
  uint32_t mlp_width() const { return mlp_ratio * width; }
  uint32_t head_dim() const { return width / heads; }
  uint32_t encoder_sequence() const { return patch_count() + tokens; }
  uint32_t decoder_sequence() const { return patch_count() + tokens; }
  // Side of the coarse image's patch that lines up with an image patch.
  uint32_t coarse_patch() const { return patch * pool / tile; }
  // The conv head's feature map: side tile/2, one (patch/2)² block per patch.
  uint32_t head_side() const { return tile / 2; }
  uint32_t head_patch() const { return patch / 2; }
  // Values in a tile's feature map.
  size_t head_map_values() const { return size_t{head_side()} * head_side() * conv_head; }
  FsqCodebook codebook() const { return FsqCodebook(fsq_levels); }
  uint64_t codebook_size() const { return codebook().size(); }
};

// Parses and checks the config JSON (all fields present, sizes consistent).
StatusOr<ModelConfig> ParseModelConfig(std::string_view json);

// A tensor inside Model::weights(): `size` floats starting at `offset`.
struct WeightSpan {
  size_t offset = 0;
  size_t size = 0;
};

struct LinearWeights {
  WeightSpan weight;  // [out, in], row-major (PyTorch nn.Linear layout)
  WeightSpan bias;    // [out]
  uint32_t in = 0;
  uint32_t out = 0;
};

struct LayerNormWeights {
  WeightSpan gamma;
  WeightSpan beta;
};

// A 3x3 convolution's weights, [out, 3, 3, in] (reordered from PyTorch's [out, in, 3, 3] on
// load; kernels/backend.h Conv3x3), and bias [out].
struct ConvWeights {
  WeightSpan weight;
  WeightSpan bias;
  uint32_t in = 0;
  uint32_t out = 0;
};

// models/tok1d_model.py ConvBlock: x + conv2(gelu(conv1(x))).
struct ConvBlockWeights {
  ConvWeights conv1;
  ConvWeights conv2;
};

// The optional convolutional pixel head: each patch's normed decoder output → a (patch/2)² ×
// channels block of a half-resolution feature map (head_in), residual conv blocks, then
// head_out(gelu(·)) to 12 channels, pixel-shuffled ×2 and added to the pixels.
struct ConvHeadWeights {
  LinearWeights head_in;  // d → (patch/2)²·channels
  std::vector<ConvBlockWeights> blocks;
  ConvWeights head_out;  // channels → 12
};

struct BlockWeights {
  LayerNormWeights norm1;
  LinearWeights qkv;
  LinearWeights proj;
  LayerNormWeights norm2;
  LinearWeights fc1;
  LinearWeights fc2;
};

// Where each parameter of models/tok1d_model.py lives in the arena.
struct ModelWeights {
  // encoder
  LinearWeights patch_embed;
  WeightSpan enc_pos;  // [N, d]
  WeightSpan latents;  // [K, d]
  std::vector<BlockWeights> enc_blocks;
  LayerNormWeights enc_norm;
  LinearWeights to_code;       // d → C
  LinearWeights shortcut_enc;  // pooled → K·C
  // Optional (present in later models): latent i also sees its linear code, C → d.
  std::optional<LinearWeights> code_in_embed;
  // decoder
  LinearWeights code_embed;  // C → d
  WeightSpan dec_token_pos;  // [K, d]
  WeightSpan mask_token;     // [d]
  WeightSpan patch_queries;  // [N, d]
  std::vector<BlockWeights> dec_blocks;
  LayerNormWeights dec_norm;
  LinearWeights to_pixels;     // d → patch_dim
  LinearWeights shortcut_dec;  // K·C → pooled
  // Optional (present in later models): patch query i also sees its part of the coarse
  // image, a (patch·pool/tile)² × 3 patch → d.
  std::optional<LinearWeights> coarse_embed;
  // Optional (config "conv_head" > 0).
  std::optional<ConvHeadWeights> conv_head;
};

class Model {
 public:
  const ModelConfig& config() const { return config_; }
  const ModelWeights& layout() const { return layout_; }
  // All weights as float32; every tensor starts at a multiple of 64 bytes.
  std::span<const float> weights() const {
    return arena_ ? std::span<const float>(*arena_) : std::span<const float>();
  }
  std::span<const float> weights(WeightSpan span) const {
    return weights().subspan(span.offset, span.size);
  }
  const ModelIdentity& identity() const { return identity_; }
  std::string sha256_hex() const;
  // The file's metadata strings (format, name, config, training, evaluation, …).
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  uint64_t file_bytes() const { return file_bytes_; }
  // The range coder's probability tables from the file, or null if it has none.
  const std::shared_ptr<const EntropyTables>& entropy_tables() const { return entropy_tables_; }
  // The refinement plan the model was measured with (metadata "refinement", written by
  // models/fit_refinement.py): bits 0 when it has none.
  const Refinement& refinement() const { return refinement_; }

 private:
  friend StatusOr<Model> LoadModel(std::span<const uint8_t>);
  ModelConfig config_;
  ModelWeights layout_;
  // Shared and never changed: a copy of a Model (one per worker thread) costs no weights.
  std::shared_ptr<const std::vector<float>> arena_;
  ModelIdentity identity_;
  std::map<std::string, std::string> metadata_;
  uint64_t file_bytes_ = 0;
  std::shared_ptr<const EntropyTables> entropy_tables_;
  Refinement refinement_;
};

// Loads a model from the bytes of its file. Errors say which tensor or field is wrong.
StatusOr<Model> LoadModel(std::span<const uint8_t> file_bytes);
// Reads and loads a model file; errors name the file.
StatusOr<Model> LoadModelFile(const std::string& path);

// Where the default model comes from, in order: embedded in the binary at build time
// (TOK1D_DEFAULT_MODEL), then tok1d-default.safetensors next to the executable, then
// ../share/tok1d/ relative to it. kNotFound ("no default model; pass --model") if none exists.
StatusOr<Model> LoadDefaultModel();
// True when this binary carries an embedded model.
bool HasEmbeddedModel();

// SHA-256 of `bytes` (OpenSSL EVP).
std::array<uint8_t, 32> Sha256(std::span<const uint8_t> bytes);
std::string HexString(std::span<const uint8_t> bytes);

}  // namespace tok1d

// The tokenizer's forward pass (models/tok1d_model.py, operation by operation), written once
// against the Backend interface: encoder (tiles → K token indices each) and decoder (the first
// k tokens of each tile → pixels). Tiles are processed in batches, each batch as one set of
// [tiles · sequence, width] matrices; weights stay resident in the backend for the
// tokenizer's lifetime.
#pragma once

#include <cstdint>
#include <memory>
#include <span>

#include "codec/model.h"
#include "kernels/backend.h"
#include "tok1d/status.h"

namespace tok1d {

struct TokenizerOptions {
  // Tiles per batch: bounds working memory (about 2 MB per tile for the default model).
  size_t max_batch_tiles = 32;
};

class Tokenizer {
 public:
  // `model` and `backend` must outlive the tokenizer.
  static StatusOr<std::unique_ptr<Tokenizer>> Create(const Model& model, Backend& backend,
                                                     const TokenizerOptions& options = {});
  ~Tokenizer();
  Tokenizer(const Tokenizer&) = delete;
  Tokenizer& operator=(const Tokenizer&) = delete;

  const Model& model() const { return model_; }
  Backend& backend() { return backend_; }

  // tiles: `count` RGB8 tiles of [tile, tile, 3]. tokens: count × K indices (all K tokens of
  // each tile). bounded (optional, count × K × C): the FSQ values before rounding.
  Status Encode(std::span<const uint8_t> tiles, size_t count, std::span<uint32_t> tokens,
                std::span<float> bounded = {});

  // tokens: count × K indices, of which the first keep[t] of tile t are used (1 ≤ keep ≤ K;
  // keep may also be 0: the tile is decoded from mask tokens alone). offsets (optional,
  // count × K × C): each code's refinement within its quantization cell, in levels (|o| ≤ 0.5;
  // see FORMAT.md, REFN). pixels: count × tile × tile × 3 floats in [0, 1] scale, not clamped.
  Status Decode(std::span<const uint32_t> tokens, std::span<const uint32_t> keep, size_t count,
                std::span<float> pixels, std::span<const float> offsets = {});

  // ---- the decoder as a differentiable function of its input values ----
  // (Encode-time optimisation of the tokens: backend().supports_backward() must be true, else
  // these return kUnsupported.)
  //
  // values: count × K × C normalised codes, what the decoder embeds (for token digits and
  // offsets, (digit − ⌊L/2⌋ + offset)/⌊L/2⌋, as Decode computes them); the first keep[t] rows
  // of tile t are used (keep[t] ≤ K), the others are dropped (mask tokens). pixels: count ×
  // tile × tile × 3, not clamped, equal to Decode's for the same codes. count ≤
  // max_batch_tiles (the caller batches). Saves the activations DecodeValuesBackward needs
  // (about 5.5 MB per tile for the default model), in memory separate from Encode/Decode's, so
  // those may run in between.
  Status DecodeValues(std::span<const float> values, std::span<const uint32_t> keep, size_t count,
                      std::span<float> pixels);

  // The gradient of Σ grad_pixels·pixels with respect to the values of the last DecodeValues
  // call (grad_pixels and grad_values sized as its pixels and values); rows of dropped tokens
  // get 0. kInternal without a DecodeValues before.
  Status DecodeValuesBackward(std::span<const float> grad_pixels, std::span<float> grad_values);

 private:
  struct Workspace;
  struct Tape;
  Tokenizer(const Model& model, Backend& backend, const TokenizerOptions& options);
  Status Reserve(size_t tiles);
  const float* Weight(WeightSpan span) const;
  // A block whose output is needed only in rows first … first+kept−1 of each sequence (the
  // model's last blocks: the rows that become pixels or tokens) runs its projection and MLP on
  // those rows alone and leaves them packed, sequences × kept rows; kept = length: every row.
  void RunBlock(const BlockWeights& block, size_t sequences, size_t length, size_t first,
                size_t kept);
  void RunBlockSaved(size_t index, size_t sequences, size_t length, size_t kept);
  void RunBlockBackward(size_t index, size_t sequences, size_t length, size_t kept);
  void RunLinear(const float* x, size_t rows, const LinearWeights& linear, float* y,
                 Epilogue epilogue);
  void RunConv(const float* x, size_t count, const ConvWeights& conv, float* y, Epilogue epilogue);
  void RunConvHead(size_t count, bool save);
  void RunConvHeadBackward(size_t count);
  Status EncodeBatch(std::span<const uint8_t> tiles, size_t count, std::span<uint32_t> tokens,
                     std::span<float> bounded);
  Status DecodeBatch(std::span<const int32_t> tokens, std::span<const float> offsets, size_t count,
                     std::span<float> pixels);

  const Model& model_;
  Backend& backend_;
  TokenizerOptions options_;
  DeviceBuffer weights_;
  std::unique_ptr<Workspace> workspace_;
  std::unique_ptr<Tape> tape_;  // DecodeValues' activations
};

}  // namespace tok1d

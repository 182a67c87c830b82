// The "range" entropy coder (id 1): the FSQ digits of every token coded with a range coder
// (codec/range_coder.h) under probability tables that live in the model file.
//
// Each digit d of token j of a tile has its own distribution, chosen by (j, d, context); the
// context is a bucket of the tile's recent "activity" (how far its previous tokens' digits are
// from the centre of their levels): flat tiles have small late tokens, textured ones large.
// Only tokens of earlier layers of the same tile are used, so every layer is coded and decoded
// on its own and trimming or truncating a file drops whole layers (container/FORMAT.md).
//
// The tables are fitted by models/fit_entropy.py and stored in the model's safetensors file:
//   metadata "entropy": JSON {"version": 1, "prob_bits": P, "contexts": C,
//                             "activity_window": W, ...fit statistics}
//   "entropy.frequencies"          U16 [K, D, C, Lmax]: frequencies of digit s, summing to 2^P
//                                  over s < L_d (each >= 1) and 0 for s >= L_d
//   "entropy.activity_thresholds"  I32 [K, C-1]: non-decreasing per position
// The exact coding is specified in container/FORMAT.md; models/fit_entropy.py mirrors it.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "codec/safetensors.h"
#include "common/fsq_codebook.h"
#include "container/t1d.h"
#include "tok1d/status.h"

namespace tok1d {

inline constexpr uint32_t kEntropyTablesVersion = 1;
inline constexpr uint32_t kMaxEntropyContexts = 256;
// Room for any distribution's cumulative frequencies (levels + 1).
using CumulativeBuffer = std::array<uint32_t, kFsqMaxLevel + 2>;

class EntropyTables {
 public:
  // Reads the tables of a model file; nullptr when the file has none (or a version this build
  // does not know: the model still works, with the raw coder). kCorrupt if they are malformed
  // or do not fit `tokens` and `fsq_levels`.
  static StatusOr<std::shared_ptr<const EntropyTables>> Load(const SafetensorsFile& file,
                                                             uint32_t tokens,
                                                             std::span<const uint32_t> fsq_levels);

  uint32_t prob_bits() const { return prob_bits_; }
  uint32_t tokens() const { return tokens_; }
  const FsqCodebook& codebook() const { return codebook_; }
  const std::vector<uint32_t>& fsq_levels() const { return codebook_.levels(); }
  uint32_t contexts() const { return contexts_; }
  uint32_t activity_window() const { return activity_window_; }

  // Context of token `position` of a tile whose earlier tokens are `previous`
  // (previous.size() >= position).
  uint32_t Context(uint32_t position, std::span<const uint32_t> previous) const;
  // Cumulative frequencies (L_d + 1 entries) of digit `dim` of token `position`.
  std::span<const uint32_t> Distribution(uint32_t position, uint32_t dim, uint32_t context) const {
    const size_t row = (size_t{position} * codebook_.dims() + dim) * contexts_ + context;
    return std::span<const uint32_t>(cumulative_)
        .subspan(row * row_stride_, codebook_.level(dim) + 1);
  }

  // The distribution of digit `dim` of a token quantised with `step` (FORMAT.md, QSTP): its
  // symbols are the digits on the step grid, lowest first (the first is returned in *first),
  // each with the frequencies of the levels nearest to it, ties towards the centre, so the
  // totals stay 2^P. Writes symbols + 1 cumulative frequencies into `out` and returns them;
  // step 1 returns Distribution itself (first 0).
  std::span<const uint32_t> StepDistribution(uint32_t position, uint32_t dim, uint32_t context,
                                             uint32_t step, std::span<uint32_t> out,
                                             uint32_t* first) const;

 private:
  // Sum over the token's digits of |2 digit - (L - 1)|: 0 at the centre of every level.
  uint32_t Activity(uint32_t token) const;
  void TabulateActivity();

  uint32_t prob_bits_ = 0;
  uint32_t tokens_ = 0;
  FsqCodebook codebook_;
  uint32_t contexts_ = 1;
  uint32_t activity_window_ = 0;
  std::vector<uint32_t> thresholds_;  // [K][C-1]
  size_t row_stride_ = 0;             // Lmax + 1
  std::vector<uint32_t> cumulative_;  // [K][D][C][Lmax + 1]
  // Activity split in two tables: token = low + low_radix_ * high, low_radix_ the product of
  // the first dimensions' levels (at most 2^16), high_activity_ filled when the rest's product
  // is small too (else computed digit by digit). The context sums the activity of up to W
  // tokens per token coded, and this spares most of the divisions.
  uint32_t low_radix_ = 1;
  size_t low_dims_ = 0;
  FsqCodebook high_codebook_;  // the levels of dimensions low_dims_ … D−1
  std::vector<uint16_t> low_activity_;
  std::vector<uint16_t> high_activity_;  // empty when the rest's product exceeds 2^16
};

// The code length in bits of a tile's first tokens under the tables (what the range coder
// spends on them, up to its rounding).
double CodeLengthBits(const EntropyTables& tables, std::span<const uint32_t> tokens);

class RangeLayerCoder final : public LayerCoder {
 public:
  // Codes files of the model whose SHA-256 is `model_sha256` with its `tables`.
  RangeLayerCoder(std::shared_ptr<const EntropyTables> tables,
                  const std::array<uint8_t, 32>& model_sha256)
      : tables_(std::move(tables)), model_sha256_(model_sha256) {}

  uint8_t id() const override { return kRangeCoderId; }
  Status CheckHeader(const T1dHeader& header) const override;
  StatusOr<std::vector<uint8_t>> EncodeLayer(const LayerContext& context,
                                             std::span<const uint32_t> layer_tokens) const override;
  Status DecodeLayer(const LayerContext& context, std::span<const uint8_t> coded,
                     std::span<uint32_t> layer_tokens) const override;

 private:
  std::shared_ptr<const EntropyTables> tables_;
  std::array<uint8_t, 32> model_sha256_;
};

}  // namespace tok1d

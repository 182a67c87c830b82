// Encode-time token optimisation (`tok1d encode --effort`): a .t1d file stores tokens, not the
// encoder's opinion, so any tokens the fixed decoder turns into a better image at the same size
// make a better file. Per tile, starting from the encoder's FSQ values:
//
//  1. descent (optional): Adam on the values through the decoder (Tokenizer::DecodeValues and
//     its backward pass), rounding handled straight-through with uniform noise in place of the
//     rounding error, fading to hard rounding (annealed, as SGA does); the best rounded iterate
//     of each tile is kept, never a worse one;
//  2. polish: single-step moves of the rounded values (one level, or one refinement part of a
//     refined token), ranked by the gradient and the exact change of the code length; the best
//     few are tried alone and the best many in groups (halving), each trial exactly, and each
//     tile keeps the trial that lowers its objective most.
//
// The objective is the tile's squared error at its token count plus, with a smaller weight, at
// the prefixes keep/2, keep/4, keep/8 (users trim files and decode partial downloads), plus
// λ · bits, the code length of its tokens under the model's entropy tables, λ the image's own
// exchange rate between squared error and bits from keep/2 to keep tokens. With prefix_floors,
// no move may raise the error at 1, 2, 4, … tokens below keep/8 above the start's. Only pixels
// inside the image count (border tiles are padded). The files are ordinary .t1d files.
//
// Before the search and after it (SearchOptions::trim_tails), each tile's token count may
// shrink to 3/4 or 1/2 of the count asked for where the same objective (without the prefixes)
// says the last tokens do not pay; before it (grow_counts) it may also grow to 3/2 where the
// next ones do (Codec::ChooseCounts).
//
// models/optimize_tokens.py is the PyTorch prototype the choices were measured with.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <span>
#include <vector>

#include "codec/model.h"
#include "codec/tokenizer.h"
#include "tok1d/status.h"

namespace tok1d {

inline constexpr uint32_t kMaxSearchEffort = 9;

struct SearchOptions {
  uint32_t descent_steps = 0;   // annealed straight-through Adam steps
  float learning_rate = 0.03f;  // Adam's step, in FSQ levels
  uint32_t polish_rounds = 0;   // rounds of single-step moves
  uint32_t polish_tries = 16;   // single moves tried exactly per tile and round
  uint32_t polish_moves = 0;    // and groups of the best this many, half, a quarter, … 2
  uint32_t polish_depth = 1;    // batches of polish_tries candidates a tile goes through
  // Random probes of the decoder's curvature per value, ‖∂tile/∂value‖², averaged over the
  // tiles that keep as many tokens: a level is a large step, and the polish ranks its moves
  // by gradient + curvature (Gauss-Newton) instead of the gradient alone. 0: first order.
  uint32_t curvature_probes = 0;
  float prefix_weight = 0.5f;  // weight of keep/2, keep/4, keep/8 together (keep has 1)
  // The counts of `tok1d sweep`'s ladder below keep/8 (1, 2, 4, … tokens) are not in the
  // objective; with prefix_floors no move may make a tile decode worse at them than the
  // encoder's tokens did, so a trimmed file is never worse there than effort 0's.
  bool prefix_floors = false;
  uint32_t fixed_tokens = 0;  // the first tokens, left as the encoder made them
  float rate_weight = 1.0f;   // λ as a multiple of the image's slope, 0: distortion only
  // After the search, a tile may keep fewer tokens (3/4 or 1/2 of its count) where that lowers
  // its squared error + λ · bits: the last tokens can cost more than they gain (as RDOQ
  // chooses the last coded coefficient), and on some flat tiles they even add error.
  bool trim_tails = false;
  float trim_rate_weight = 0.5f;  // the trim's λ as a multiple of the search's
  uint32_t trim_counts = 2;       // shorter counts tried, evenly from the count down to half of it
  // Trim once before the search as well, on the encoder's values: the search then works on
  // the counts the file will keep (the trim after it may lower them again, to half at most).
  bool trim_first = false;
  // Before the search, a tile may also keep more tokens (up to 3/2 of its count, `grow_counts`
  // longer counts tried evenly) where that lowers its squared error + λ · bits: the trim's
  // other half, a rate allocation between tiles at the image's slope.
  uint32_t grow_counts = 0;
  float grow_rate_weight = 1.0f;  // growing's λ as a multiple of the trim's

  bool enabled() const { return descent_steps > 0 || polish_rounds > 0 || trim_tails; }
};

// The search of `tok1d encode --effort N`, 0 (none) … kMaxSearchEffort. For experiments, the
// environment variable TOK1D_SEARCH ("polish_rounds=8,polish_moves=16,rate_weight=1.5", any
// of the fields of SearchOptions) overrides fields of every level above 0.
SearchOptions SearchOptionsForEffort(uint32_t effort);

// One tile of a search: its token count and the part of it inside the image.
struct SearchTile {
  uint32_t keep = 0;  // tokens the file keeps (0 … K)
  uint32_t cols = 0;  // pixels inside the image, ≤ tile
  uint32_t rows = 0;
};

class TokenSearch {
 public:
  // `tokenizer` (on a backend with supports_backward()) and `model` must outlive the search.
  // `refinement` is the plan the file is written with (bits 0: none).
  TokenSearch(Tokenizer& tokenizer, const Model& model, const Refinement& refinement);

  // For λ: the squared error (pixels in [0, 1], inside the image) of each tile decoded from
  // its first keep[t] tokens of `bounded` (count × K × C FSQ values before rounding, rounded
  // as the file would round them), and the code length in bits of those tokens.
  Status Measure(std::span<const uint8_t> tiles, std::span<const SearchTile> info,
                 std::span<const uint32_t> keep, std::span<const float> bounded,
                 std::span<double> squared_error, std::span<double> bits);

  // Optimises `bounded` in place for count ≤ the tokenizer's batch tiles (tiles: count RGB8
  // tiles); `lambda` in squared error per bit. `progress` (optional) is called after each
  // step or round with the fraction of this call done.
  Status Optimise(std::span<const uint8_t> tiles, std::span<const SearchTile> info, double lambda,
                  const SearchOptions& options, std::span<float> bounded,
                  const std::function<void(double)>& progress = {});

  // Per value of `values` (quantized, levels; count × K × C), the coefficient of step² in the
  // change of the search's squared error (Gauss-Newton: Σ weight · ‖∂prefix tile/∂value‖²
  // over the prefixes keep, keep/2, … weighted as Optimise weights them, pixels inside the
  // image and not clamped), estimated from `probes` random ±1 probes of the decoded pixels per
  // tile and pooled, per pixel, over the tiles that keep as many tokens: it varies far less
  // between tiles than between values (models/experiments/h1_move_ranking.py).
  Status Curvature(std::span<const uint8_t> tiles, std::span<const SearchTile> info,
                   std::span<const float> values, float prefix_weight, uint32_t probes,
                   std::span<float> curvature);

  // λ from Measure's numbers at keep and at keep/2 (SearchOptions::rate_weight times the
  // squared error saved per bit spent between them; 0 when there is nothing to go by).
  static double Lambda(std::span<const double> error_keep, std::span<const double> error_half,
                       std::span<const double> bits_keep, std::span<const double> bits_half,
                       float rate_weight);

  // What the decoder gets for FSQ value `b` (in levels) of a token: the rounded level, or for
  // a refined token the centre of its part of the cell.
  float Quantize(float b, uint32_t dim, bool refined) const;
  // The refinements a tile keeping `keep` tokens carries (its first tokens).
  uint32_t RefinedTokens(uint32_t keep) const;
  // The token index of token `token` of `values` (a tile's quantized values, K × C): its
  // rounded levels as digits.
  uint32_t TokenOf(std::span<const float> values, size_t token) const;
  // Code length in bits of the first `keep` tokens of one tile's values (already quantized).
  double Bits(std::span<const float> tile_values, uint32_t keep) const;

 private:
  struct Batch;
  // The prefixes of a tile: keep, keep/2, keep/4, keep/8 in the objective, then the floors
  // (SearchOptions::prefix_floors): 1, 2, 4, 8, 16 tokens where shorter than keep/8.
  static constexpr size_t kWeightedPrefixes = 4;
  static constexpr size_t kPrefixes = kWeightedPrefixes + 5;
  // Squared error of each tile and prefix.
  using PrefixErrors = std::array<std::vector<double>, kPrefixes>;
  // What Distortion does with the floors: leave them, measure them (into `record`), or make
  // the error of a tile infinite where a prefix decodes worse than its floor.
  enum class Floors { kIgnore, kMeasure, kEnforce };
  // Values that differ from ones already measured only from token first_changed[t] on: the
  // prefixes that end before it keep their prefix_errors.
  struct Changes {
    std::vector<uint32_t> first_changed;
    PrefixErrors prefix_errors;
  };
  // The weighted squared error over the prefixes of each tile of `values` (quantized, levels),
  // and with `gradient` its gradient with respect to them (levels); `record` (optional) gets
  // the errors per prefix of the tiles decoded. With `probes` > 0, `gradient` holds instead
  // `probes` gradients one after another, each of a random ±1 (times √weight) combination of
  // the decoded pixels: one decode per prefix and a backward pass per probe.
  Status Distortion(const Batch& batch, std::span<const float> values, std::span<double> error,
                    std::span<float> gradient, const Changes* changes = nullptr,
                    PrefixErrors* record = nullptr, uint32_t probes = 0,
                    Floors floors = Floors::kIgnore);
  Status Curvature(const Batch& batch, std::span<const float> values, uint32_t probes,
                   std::span<float> curvature);
  // The batch of `tiles` at counts keep[t], with prefix_weight shared by keep/2, /4, /8, and
  // with `floors` the floor prefixes (their floors not yet measured: infinite).
  Batch MakeBatch(std::span<const uint8_t> tiles, std::span<const SearchTile> info,
                  std::span<const uint32_t> keep, float prefix_weight, bool floors = false) const;
  void QuantizeTile(std::span<const float> b, uint32_t keep, std::span<float> out) const;

  Tokenizer& tokenizer_;
  const Model& model_;
  Refinement refinement_;
  FsqCodebook codebook_;
  uint32_t K_ = 0;
  uint32_t C_ = 0;
  uint32_t tile_ = 0;
  std::vector<float> low_, high_;  // the values' range per dimension (levels)
  std::vector<float> code_scale_;  // 1/⌊L/2⌋: levels → the decoder's normalised codes
};

}  // namespace tok1d

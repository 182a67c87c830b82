#include "codec/rate_control.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <functional>

#include "codec/tiling.h"
#include "metrics/metrics.h"

namespace tok1d {
namespace {

// The file the writer writes for `counts`: a trim of `full`, finished (options.finish).
StatusOr<TokenFile> Trimmed(const TokenFile& full, const std::vector<uint32_t>& counts,
                            const RateControlOptions& options) {
  TOK1D_ASSIGN_OR_RETURN(TokenFile trimmed, TrimTokens(full, counts));
  if (options.finish) TOK1D_RETURN_IF_ERROR(options.finish(&trimmed));
  return trimmed;
}

StatusOr<uint64_t> FileSize(const TokenFile& full, const std::vector<uint32_t>& counts,
                            const RateControlOptions& options) {
  TOK1D_ASSIGN_OR_RETURN(const TokenFile trimmed, Trimmed(full, counts, options));
  TOK1D_ASSIGN_OR_RETURN(const std::vector<uint8_t> bytes, WriteT1d(trimmed, options.coder));
  return uint64_t{bytes.size()};
}

StatusOr<double> PsnrOf(Codec& codec, const Image& image, const TokenFile& full,
                        const std::vector<uint32_t>& counts, const RateControlOptions& options) {
  TOK1D_ASSIGN_OR_RETURN(const TokenFile trimmed, Trimmed(full, counts, options));
  TOK1D_ASSIGN_OR_RETURN(const Image decoded, codec.Decode(trimmed));
  return Psnr(image, decoded);
}

// The smallest step in [low, high] where `reached` holds, given that it holds at `high` and
// does not flip back along the ladder.
StatusOr<size_t> FirstReaching(size_t low, size_t high,
                               const std::function<StatusOr<bool>(size_t)>& reached) {
  while (low < high) {
    const size_t middle = low + (high - low) / 2;
    TOK1D_ASSIGN_OR_RETURN(const bool ok, reached(middle));
    if (ok) {
      high = middle;
    } else {
      low = middle + 1;
    }
  }
  return low;
}

// 1, 2, 4, … below K, then K: where adaptive allocation measures each tile's error.
std::vector<uint32_t> MeasuredCounts(uint32_t k) {
  std::vector<uint32_t> counts;
  for (uint32_t count = 1; count < k; count *= 2) counts.push_back(count);
  counts.push_back(k);
  return counts;
}

// Squared error of every tile (its part inside the image) when all tiles keep `count` tokens.
StatusOr<std::vector<double>> TileErrors(Codec& codec, const Image& image, const TokenFile& full,
                                         uint32_t count) {
  TOK1D_ASSIGN_OR_RETURN(const Image decoded, codec.Decode(full, count));
  const TileGrid grid = MakeTileGrid(image.width, image.height, codec.model().config().tile);
  std::vector<double> errors(grid.count(), 0.0);
  for (size_t y = 0; y < image.height; ++y) {
    const size_t row = y / grid.tile;
    for (size_t x = 0; x < image.width; ++x) {
      double& error = errors[row * grid.cols + x / grid.tile];
      for (size_t c = 0; c < 3; ++c) {
        const size_t i = (y * image.width + x) * 3 + c;
        const double difference = static_cast<double>(image.rgb[i]) - decoded.rgb[i];
        error += difference * difference;
      }
    }
  }
  return errors;
}

// Tokens added to one tile at once, from `from` to `to`, removing `gain` squared error in
// all at `gain_per_byte`.
struct Segment {
  size_t tile = 0;
  uint32_t from = 0;
  uint32_t to = 0;
  double gain = 0;
  double gain_per_byte = 0;
};

// One tile's segments: its lower convex hull in (bytes, error), so that the gain per byte
// falls from one segment to the next and the greedy order is optimal for the hull.
void AddHullSegments(size_t tile, const std::vector<uint32_t>& counts,
                     const std::vector<double>& bytes, const std::vector<double>& errors,
                     std::vector<Segment>* segments) {
  auto gain_per_byte = [&](size_t a, size_t b) {
    return (errors[a] - errors[b]) / (bytes[b] - bytes[a]);
  };
  std::vector<size_t> hull;
  for (size_t i = 0; i < counts.size(); ++i) {
    while (hull.size() >= 2 &&
           gain_per_byte(hull[hull.size() - 2], hull.back()) <= gain_per_byte(hull.back(), i)) {
      hull.pop_back();
    }
    hull.push_back(i);
  }
  for (size_t h = 0; h + 1 < hull.size(); ++h) {
    const size_t a = hull[h], b = hull[h + 1];
    segments->push_back({tile, counts[a], counts[b], errors[a] - errors[b], gain_per_byte(a, b)});
  }
}

// A nested sequence of allocations from the cheapest (step 0: one token per tile) to every
// tile at K (step last()): each step adds tokens, so file size grows along it.
class Ladder {
 public:
  // Step s: every tile at s + 1 tokens.
  static Ladder Uniform(size_t tiles, uint32_t k) {
    Ladder ladder;
    ladder.tiles_ = tiles;
    ladder.last_ = k - 1;
    return ladder;
  }

  // Step s: s single tokens added in greedy order of measured error removed per byte.
  static StatusOr<Ladder> Adaptive(Codec& codec, const Image& image, const TokenFile& full,
                                   const LayerCoder* coder) {
    Ladder ladder;
    ladder.adaptive_ = true;
    ladder.tiles_ = full.tokens.size();
    const std::vector<uint32_t> counts = MeasuredCounts(codec.model().config().tokens);
    // A tile's bytes at a count: the uniform file's size over the tile count (what a token
    // costs is taken as its layer's mean).
    std::vector<double> bytes;
    std::vector<std::vector<double>> errors;  // [count][tile]
    for (uint32_t count : counts) {
      // The cost model prices tokens alone.
      TOK1D_ASSIGN_OR_RETURN(const uint64_t size,
                             FileSize(full, std::vector<uint32_t>(ladder.tiles_, count),
                                      RateControlOptions{TokenAllocation::kUniform, coder, {}}));
      bytes.push_back(static_cast<double>(size) / static_cast<double>(ladder.tiles_));
      TOK1D_ASSIGN_OR_RETURN(std::vector<double> tile_errors,
                             TileErrors(codec, image, full, count));
      errors.push_back(std::move(tile_errors));
    }
    std::vector<double> tile_errors(counts.size());
    for (size_t t = 0; t < ladder.tiles_; ++t) {
      for (size_t i = 0; i < counts.size(); ++i) tile_errors[i] = errors[i][t];
      ladder.start_error_ += tile_errors.front();
      AddHullSegments(t, counts, bytes, tile_errors, &ladder.segments_);
    }
    std::stable_sort(
        ladder.segments_.begin(), ladder.segments_.end(),
        [](const Segment& a, const Segment& b) { return a.gain_per_byte > b.gain_per_byte; });
    for (const Segment& segment : ladder.segments_) ladder.last_ += segment.to - segment.from;
    return ladder;
  }

  size_t last() const { return last_; }

  std::vector<uint32_t> At(size_t step) const {
    if (!adaptive_) return std::vector<uint32_t>(tiles_, static_cast<uint32_t>(step + 1));
    std::vector<uint32_t> counts(tiles_, 1);
    for (const Segment& segment : segments_) {
      if (step == 0) break;
      const size_t take = std::min<size_t>(step, segment.to - segment.from);
      counts[segment.tile] = segment.from + static_cast<uint32_t>(take);
      step -= take;
    }
    return counts;
  }

  // Adaptive: the first step where the measured errors (linear in tokens within a segment)
  // fall to `target_error`, or last(). Uniform: 0, no estimate.
  size_t EstimatedStepReaching(double target_error) const {
    if (!adaptive_) return 0;
    double error = start_error_;
    size_t step = 0;
    for (const Segment& segment : segments_) {
      const uint32_t tokens = segment.to - segment.from;
      if (segment.gain > 0 && error - segment.gain <= target_error) {
        // The error may already be below the target: no steps, not a negative count.
        const double steps = std::ceil((error - target_error) / segment.gain * tokens);
        return step + static_cast<size_t>(std::max(0.0, steps));
      }
      error -= segment.gain;
      step += tokens;
    }
    return last_;
  }

 private:
  bool adaptive_ = false;
  size_t tiles_ = 0;
  size_t last_ = 0;
  std::vector<Segment> segments_;  // adaptive: in greedy order
  double start_error_ = 0;         // adaptive: total squared error at one token per tile
};

// The last step of `ladder` whose file fits in `budget` bytes, given that step 0 fits. Sizes
// are not quite monotone along an adaptive ladder (unequal counts add a per-tile count table,
// so all K can be smaller than the step before): the last step is tried first, then
// bisection, whose answer always fits (it was measured, or it is step 0).
StatusOr<size_t> LastStepWithin(const Ladder& ladder, const TokenFile& full, uint64_t budget,
                                const RateControlOptions& options) {
  TOK1D_ASSIGN_OR_RETURN(const uint64_t largest, FileSize(full, ladder.At(ladder.last()), options));
  if (largest <= budget) return ladder.last();
  TOK1D_ASSIGN_OR_RETURN(const size_t first_too_large,
                         FirstReaching(1, ladder.last(), [&](size_t step) -> StatusOr<bool> {
                           TOK1D_ASSIGN_OR_RETURN(const uint64_t size,
                                                  FileSize(full, ladder.At(step), options));
                           return size > budget;
                         }));
  return first_too_large - 1;
}

StatusOr<Ladder> MakeLadder(Codec& codec, const Image& image, const TokenFile& full,
                            const RateControlOptions& options) {
  if (options.allocation == TokenAllocation::kUniform) {
    return Ladder::Uniform(full.tokens.size(), codec.model().config().tokens);
  }
  return Ladder::Adaptive(codec, image, full, options.coder);
}

}  // namespace

std::string_view TokenAllocationName(TokenAllocation allocation) {
  return allocation == TokenAllocation::kUniform ? "uniform" : "adaptive";
}

StatusOr<std::vector<std::vector<uint32_t>>> TokensWithinBudgets(
    Codec& codec, const Image& image, const TokenFile& full, std::span<const uint64_t> budgets,
    const RateControlOptions& options) {
  const Ladder uniform = Ladder::Uniform(full.tokens.size(), codec.model().config().tokens);
  TOK1D_ASSIGN_OR_RETURN(const uint64_t smallest, FileSize(full, uniform.At(0), options));
  for (uint64_t budget : budgets) {
    if (smallest > budget) {
      return InvalidArgumentError("cannot fit in " + std::to_string(budget) +
                                  " bytes: the smallest file (1 token per tile) takes " +
                                  std::to_string(smallest) + " bytes");
    }
  }
  std::vector<std::vector<uint32_t>> allocations;
  for (uint64_t budget : budgets) {
    TOK1D_ASSIGN_OR_RETURN(const size_t step, LastStepWithin(uniform, full, budget, options));
    allocations.push_back(uniform.At(step));
  }
  if (options.allocation == TokenAllocation::kUniform) return allocations;

  // Adaptive: the greedy allocation, unless the uniform one decodes better. The greedy's cost
  // model sees a token's mean cost only, not the per-tile count table that unequal counts add
  // (.t1d mode 1) nor the framing of layers few tiles reach, which matter at low rates.
  TOK1D_ASSIGN_OR_RETURN(const Ladder adaptive,
                         Ladder::Adaptive(codec, image, full, options.coder));
  for (size_t i = 0; i < budgets.size(); ++i) {
    TOK1D_ASSIGN_OR_RETURN(const size_t step, LastStepWithin(adaptive, full, budgets[i], options));
    std::vector<uint32_t> counts = adaptive.At(step);
    if (counts == allocations[i]) continue;
    TOK1D_ASSIGN_OR_RETURN(const double adaptive_psnr, PsnrOf(codec, image, full, counts, options));
    TOK1D_ASSIGN_OR_RETURN(const double uniform_psnr,
                           PsnrOf(codec, image, full, allocations[i], options));
    if (adaptive_psnr > uniform_psnr) allocations[i] = std::move(counts);
  }
  return allocations;
}

StatusOr<std::vector<uint32_t>> TokensWithinBytes(Codec& codec, const Image& image,
                                                  const TokenFile& full, uint64_t max_bytes,
                                                  const RateControlOptions& options) {
  TOK1D_ASSIGN_OR_RETURN(std::vector<std::vector<uint32_t>> allocations,
                         TokensWithinBudgets(codec, image, full, {&max_bytes, 1}, options));
  return std::move(allocations.front());
}

StatusOr<std::vector<uint32_t>> TokensReachingPsnr(Codec& codec, const Image& image,
                                                   const TokenFile& full, double psnr,
                                                   const RateControlOptions& options) {
  const uint32_t k = codec.model().config().tokens;
  TOK1D_ASSIGN_OR_RETURN(
      const double best,
      PsnrOf(codec, image, full, std::vector<uint32_t>(full.tokens.size(), k), options));
  if (best < psnr) {
    char text[160];
    std::snprintf(text, sizeof(text), "cannot reach %.2f dB: all %u tokens per tile give %.2f dB",
                  psnr, k, best);
    return InvalidArgumentError(text);
  }
  TOK1D_ASSIGN_OR_RETURN(const Ladder ladder, MakeLadder(codec, image, full, options));
  auto reaches = [&](size_t step) -> StatusOr<bool> {
    TOK1D_ASSIGN_OR_RETURN(const double measured,
                           PsnrOf(codec, image, full, ladder.At(step), options));
    return measured >= psnr;
  };
  // Adaptive: trust the measured errors, check by decoding, and search further only if the
  // estimate falls short (the interpolation between measured counts, or deblocking, can be off).
  const double samples = static_cast<double>(image.width) * image.height * 3;
  const size_t estimate =
      ladder.EstimatedStepReaching(samples * 255.0 * 255.0 / std::pow(10.0, psnr / 10));
  size_t low = 0;
  size_t step = ladder.last();
  bool found = false;
  if (estimate > 0) {
    TOK1D_ASSIGN_OR_RETURN(const bool estimate_reaches, reaches(estimate));
    if (estimate_reaches) {
      step = estimate;
      found = true;
    } else {
      low = estimate + 1;
    }
  }
  if (!found) {
    TOK1D_ASSIGN_OR_RETURN(step, FirstReaching(low, ladder.last(), reaches));
  }
  std::vector<uint32_t> counts = ladder.At(step);
  if (options.allocation == TokenAllocation::kUniform) return counts;

  // Adaptive: a uniform file smaller than the greedy one may reach the target too (the cost
  // model misses the per-tile count table, the interpolation can be off). Try the largest
  // uniform count below the greedy file's size; if it reaches, the smallest uniform one that does.
  TOK1D_ASSIGN_OR_RETURN(const uint64_t adaptive_size, FileSize(full, counts, options));
  const Ladder uniform = Ladder::Uniform(full.tokens.size(), k);
  TOK1D_ASSIGN_OR_RETURN(const uint64_t smallest, FileSize(full, uniform.At(0), options));
  if (smallest >= adaptive_size) return counts;
  // The last uniform step smaller than the adaptive file.
  TOK1D_ASSIGN_OR_RETURN(const size_t below,
                         LastStepWithin(uniform, full, adaptive_size - 1, options));
  auto uniform_reaches = [&](size_t s) -> StatusOr<bool> {
    TOK1D_ASSIGN_OR_RETURN(const double measured,
                           PsnrOf(codec, image, full, uniform.At(s), options));
    return measured >= psnr;
  };
  TOK1D_ASSIGN_OR_RETURN(const bool below_reaches, uniform_reaches(below));
  if (!below_reaches) return counts;
  TOK1D_ASSIGN_OR_RETURN(const size_t uniform_step, FirstReaching(0, below, uniform_reaches));
  return uniform.At(uniform_step);
}

}  // namespace tok1d

// Rate control: how many tokens each tile keeps, for a byte budget or a PSNR target.
//
// Uniform allocation gives every tile the same count. Adaptive allocation gives more tokens to
// the tiles that gain most per byte: it decodes the image at a coarse grid of counts
// (1, 2, 4, … K), measures each tile's squared error there, interpolates linearly between the
// grid points, and adds tokens greedily in order of error removed per byte along each tile's
// lower convex hull (optimal for the interpolated curves, as in classic bit allocation); for
// a byte budget it keeps the uniform allocation where that decodes to a higher PSNR, for a
// PSNR target where a smaller uniform file reaches it. File sizes are always exact: every
// candidate is serialized. docs/sweep.md reports the gain (scripts/measure-allocation).
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <string_view>
#include <vector>

#include "codec/codec.h"

namespace tok1d {

enum class TokenAllocation { kUniform, kAdaptive };

// What `tok1d encode` uses unless told otherwise, measured on the 24 Kodak images with the
// default model (docs/sweep.md, scripts/measure-allocation). For a byte budget, uniform:
// adaptive's +0.07 to +0.11 dB of PSNR come with 0.002 to 0.009 less MS-SSIM and ten times the
// encode time. For a PSNR target, adaptive: 1 to 6 % smaller files, never larger, for about
// 1.5 times the encode time.
inline constexpr TokenAllocation kDefaultBudgetAllocation = TokenAllocation::kUniform;
inline constexpr TokenAllocation kDefaultPsnrAllocation = TokenAllocation::kAdaptive;

// "uniform", "adaptive"
std::string_view TokenAllocationName(TokenAllocation allocation);

struct RateControlOptions {
  TokenAllocation allocation = TokenAllocation::kUniform;
  const LayerCoder* coder = nullptr;  // what the file will be written with; raw when null
  // What the writer adds to a trimmed file's tokens (the session's colour restoration,
  // Codec::Restore), so that the sizes and PSNR compared with a target are the written file's;
  // empty: the tokens alone.
  std::function<Status(TokenFile*)> finish;
};

// Tokens per tile (raster order) for the largest file of at most `max_bytes` bytes, trimmed
// from `full` (the image encoded at every tile's K tokens), found by bisection along the
// allocation order. kInvalidArgument, naming the smallest possible size, if one token per
// tile is already larger.
StatusOr<std::vector<uint32_t>> TokensWithinBytes(Codec& codec, const Image& image,
                                                  const TokenFile& full, uint64_t max_bytes,
                                                  const RateControlOptions& options = {});
// The same for several budgets, measuring the image once (adaptive allocation's decodes).
StatusOr<std::vector<std::vector<uint32_t>>> TokensWithinBudgets(
    Codec& codec, const Image& image, const TokenFile& full, std::span<const uint64_t> budgets,
    const RateControlOptions& options = {});

// Tokens per tile for a small file whose decoding has at least `psnr` dB (RGB PSNR against
// `image`): the smallest such file for uniform allocation; for adaptive, the first the greedy
// order reaches, or the smallest uniform one if that is smaller. kInvalidArgument, naming the
// best PSNR, if even K tokens fall short.
StatusOr<std::vector<uint32_t>> TokensReachingPsnr(Codec& codec, const Image& image,
                                                   const TokenFile& full, double psnr,
                                                   const RateControlOptions& options = {});

}  // namespace tok1d

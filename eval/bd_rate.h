// Rate–quality curves: Bjøntegaard delta rate and averaging over images.
//
// A curve is a set of (bpp, quality) points of one codec on one image. Before use it is reduced
// to its Pareto front (by rate, each point better than every cheaper one): a setting that costs
// more for less quality is never the one to pick, and the interpolation needs quality strictly
// increasing with rate.
#pragma once

#include <optional>
#include <span>
#include <vector>

namespace tok1d {

struct RatePoint {
  double bpp = 0;
  double quality = 0;  // PSNR in dB, MS-SSIM, …: higher is better
};

// Points sorted by rate that each beat every cheaper point in quality; points with a
// non-finite or non-positive rate or a non-finite quality are dropped.
std::vector<RatePoint> ParetoFront(std::span<const RatePoint> points);

// Bjøntegaard delta rate of `test` against `reference`, in percent: the mean difference in
// log rate at equal quality over the quality range both curves cover, as a rate ratio
// (−20: test needs 20 % fewer bits). log(bpp) is interpolated as a function of quality with a
// monotone piecewise-cubic Hermite interpolant (PCHIP, Fritsch–Carlson, as in the later
// VCEG/JVET BD-rate spreadsheets, instead of the single cubic polynomial of VCEG-M33), then
// integrated exactly. nullopt when either front has fewer than 2 points or the quality
// ranges do not overlap.
std::optional<double> BdRate(std::span<const RatePoint> reference, std::span<const RatePoint> test);

// The mean of several images' curves at equal rate: `samples` rates log-spaced over the range
// every curve's front covers, each image's quality there interpolated linearly in log rate.
// Empty when the ranges do not all overlap.
std::vector<RatePoint> AverageAtEqualRate(const std::vector<std::vector<RatePoint>>& curves,
                                          size_t samples = 64);

}  // namespace tok1d

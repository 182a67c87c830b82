#include "codec/restoration.h"

#include <algorithm>
#include <array>
#include <cmath>

namespace tok1d {
namespace {

// Ridge towards the identity, in squared [0, 1] units per channel: keeps the map of a flat
// tile (whose decoded colours hardly vary) at the identity instead of amplifying noise.
constexpr double kRidge = 100.0 / (255.0 * 255.0);

struct Affine {
  std::array<double, 3> mean{};    // m: the decoded tile's mean colour
  std::array<double, 3> offset{};  // d_c
  std::array<double, 9> gain{};    // I + M, row c: output channel c

  // Channel c of the map's output for the decoded pixel y (FORMAT.md, rstr chunk).
  double Out(size_t c, const float* y) const {
    return mean[c] + offset[c] + gain[c * 3] * (y[0] - mean[0]) +
           gain[c * 3 + 1] * (y[1] - mean[1]) + gain[c * 3 + 2] * (y[2] - mean[2]);
  }
};

// The offset step in [0, 1] units (offset_step is in quarter levels of 255).
double OffsetStep(const Restoration& steps) { return steps.offset_step / (4.0 * 255.0); }

Affine Dequantise(const TileRestoration& map, const Restoration& steps) {
  Affine a;
  const double offset_step = OffsetStep(steps);
  const double matrix_step = std::ldexp(1.0, -static_cast<int>(steps.matrix_shift));
  for (size_t c = 0; c < 3; ++c) {
    a.offset[c] = map.offset[c] * offset_step;
    for (size_t j = 0; j < 3; ++j)
      a.gain[c * 3 + j] = (c == j ? 1.0 : 0.0) + map.matrix[c * 3 + j] * matrix_step;
  }
  return a;
}

std::array<double, 3> MeanColour(std::span<const float> pixels) {
  std::array<double, 3> sum{};
  const size_t n = pixels.size() / 3;
  for (size_t p = 0; p < n; ++p) {
    for (size_t c = 0; c < 3; ++c) sum[c] += pixels[p * 3 + c];
  }
  for (double& s : sum) s /= static_cast<double>(n);
  return sum;
}

// Solves the 4 × 4 system g · w = h (Gaussian elimination, partial pivoting); false if singular.
bool Solve4(std::array<double, 16> g, std::array<double, 4> h, std::array<double, 4>* w) {
  for (size_t col = 0; col < 4; ++col) {
    size_t pivot = col;
    for (size_t r = col + 1; r < 4; ++r) {
      if (std::fabs(g[r * 4 + col]) > std::fabs(g[pivot * 4 + col])) pivot = r;
    }
    if (std::fabs(g[pivot * 4 + col]) < 1e-12) return false;
    if (pivot != col) {
      for (size_t k = 0; k < 4; ++k) std::swap(g[col * 4 + k], g[pivot * 4 + k]);
      std::swap(h[col], h[pivot]);
    }
    for (size_t r = col + 1; r < 4; ++r) {
      const double f = g[r * 4 + col] / g[col * 4 + col];
      for (size_t k = col; k < 4; ++k) g[r * 4 + k] -= f * g[col * 4 + k];
      h[r] -= f * h[col];
    }
  }
  for (size_t r = 4; r-- > 0;) {
    double v = h[r];
    for (size_t k = r + 1; k < 4; ++k) v -= g[r * 4 + k] * (*w)[k];
    (*w)[r] = v / g[r * 4 + r];
  }
  return true;
}

double Clamp01(double v) { return std::fmin(std::fmax(v, 0.0), 1.0); }

}  // namespace

double RestorationSlope(double mean_tokens, uint32_t max_tokens) {
  return 0.26 * std::pow(max_tokens / std::max(mean_tokens, 1.0), 0.25);
}

void ApplyTileRestoration(const TileRestoration& map, const Restoration& steps, uint32_t tile,
                          std::span<float> pixels) {
  if (!map.used) return;
  const size_t n = size_t{tile} * tile;
  Affine a = Dequantise(map, steps);
  a.mean = MeanColour(pixels.first(n * 3));
  for (size_t p = 0; p < n; ++p) {
    float* px = &pixels[p * 3];
    const float y[3] = {px[0], px[1], px[2]};
    for (size_t c = 0; c < 3; ++c) px[c] = static_cast<float>(a.Out(c, y));
  }
}

TileRestoration FitTileRestoration(std::span<const float> decoded,
                                   std::span<const uint8_t> original, uint32_t tile, uint32_t width,
                                   uint32_t height, const Restoration& steps, double* error,
                                   double* saved) {
  *saved = 0;
  double before = 0;
  const size_t n = size_t{tile} * tile;
  const std::array<double, 3> mean = MeanColour(decoded.first(n * 3));
  // Normal equations over the pixels inside the image: features (y − m, 1), one system per
  // output channel, the same matrix for all three.
  std::array<double, 16> g{};
  std::array<std::array<double, 4>, 3> h{};
  for (uint32_t row = 0; row < height; ++row) {
    for (uint32_t col = 0; col < width; ++col) {
      const size_t p = (size_t{row} * tile + col) * 3;
      const double f[4] = {decoded[p] - mean[0], decoded[p + 1] - mean[1], decoded[p + 2] - mean[2],
                           1.0};
      for (size_t i = 0; i < 4; ++i) {
        for (size_t j = 0; j < 4; ++j) g[i * 4 + j] += f[i] * f[j];
      }
      for (size_t c = 0; c < 3; ++c) {
        const double target = original[p + c] / 255.0 - mean[c];
        for (size_t i = 0; i < 4; ++i) h[c][i] += f[i] * target;
        const double miss = Clamp01(decoded[p + c]) - original[p + c] / 255.0;
        before += miss * miss;
      }
    }
  }
  *error = before;
  for (size_t i = 0; i < 3; ++i) g[i * 4 + i] += kRidge;
  TileRestoration map;
  const double offset_step = OffsetStep(steps);
  const double matrix_scale = std::ldexp(1.0, static_cast<int>(steps.matrix_shift));
  bool any = false;
  for (size_t c = 0; c < 3; ++c) {
    h[c][c] += kRidge;  // the ridge pulls the gain towards the identity
    std::array<double, 4> w{};
    if (!Solve4(g, h[c], &w)) return {};
    for (size_t j = 0; j < 3; ++j) {
      const double v = std::nearbyint((w[j] - (c == j ? 1.0 : 0.0)) * matrix_scale);
      map.matrix[c * 3 + j] = static_cast<int32_t>(
          std::clamp(v, -double{kRestorationMaxValue}, double{kRestorationMaxValue}));
      any = any || map.matrix[c * 3 + j] != 0;
    }
    const double v = std::nearbyint(w[3] / offset_step);
    map.offset[c] = static_cast<int32_t>(
        std::clamp(v, -double{kRestorationMaxValue}, double{kRestorationMaxValue}));
    any = any || map.offset[c] != 0;
  }
  if (!any) return {};
  map.used = true;
  // What the decoder would output, against what it outputs without the map.
  Affine a = Dequantise(map, steps);
  a.mean = mean;
  double after = 0;
  for (uint32_t row = 0; row < height; ++row) {
    for (uint32_t col = 0; col < width; ++col) {
      const size_t p = (size_t{row} * tile + col) * 3;
      for (size_t c = 0; c < 3; ++c) {
        const double miss = Clamp01(a.Out(c, &decoded[p])) - original[p + c] / 255.0;
        after += miss * miss;
      }
    }
  }
  *saved = before - after;
  return map;
}

}  // namespace tok1d

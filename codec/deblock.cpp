#include "codec/deblock.h"

#include <algorithm>
#include <cmath>
#include <vector>

namespace tok1d {
namespace {

// A view of the image with the boundary vertical: `along` indexes positions on the boundary,
// `across` the pixels across it (negative: before the boundary). Horizontal boundaries are the
// same code with the axes swapped.
struct Axis {
  size_t along_stride;   // bytes between neighbours along the boundary
  size_t across_stride;  // bytes between neighbours across it
  size_t along_count;    // positions along a boundary
  size_t across_count;   // image extent across boundaries
};

// `width_at(boundary, along)`: the ramp's half-width at that point of the boundary.
template <typename WidthAt>
void FilterBoundaries(Image* image, const Axis& axis, uint32_t tile, const DeblockParams& p,
                      WidthAt width_at) {
  uint8_t* pixels = image->rgb.data();
  const size_t n = axis.along_count;
  std::vector<float> excess(n), smoothed(n);
  std::vector<size_t> reach(n);
  for (size_t boundary = tile; boundary < axis.across_count; boundary += tile) {
    // Room on each side: the last tile may be narrower than the width.
    for (size_t i = 0; i < n; ++i) {
      const size_t width = p.width != 0 ? p.width : width_at(boundary, i);
      reach[i] = std::min<size_t>({width, boundary, axis.across_count - boundary});
    }
    if (*std::max_element(reach.begin(), reach.end()) < 2) continue;
    for (size_t c = 0; c < 3; ++c) {
      auto at = [&](size_t along, ptrdiff_t offset) -> uint8_t& {
        const ptrdiff_t across = static_cast<ptrdiff_t>(boundary) + offset;
        return pixels[along * axis.along_stride + static_cast<size_t>(across) * axis.across_stride +
                      c];
      };
      for (size_t i = 0; i < n; ++i) {
        const float p1 = at(i, -2), p0 = at(i, -1), q0 = at(i, 0), q1 = at(i, 1);
        const float natural = 0.5f * ((p0 - p1) + (q1 - q0));  // the gradient either side
        excess[i] = (q0 - p0) - natural;
      }
      // Box filter along the boundary (clamped window at the ends).
      for (size_t i = 0; i < n; ++i) {
        const size_t lo = i >= p.smoothing ? i - p.smoothing : 0;
        const size_t hi = std::min(n - 1, i + p.smoothing);
        float sum = 0;
        for (size_t j = lo; j <= hi; ++j) sum += excess[j];
        smoothed[i] = sum / static_cast<float>(hi - lo + 1);
      }
      for (size_t i = 0; i < n; ++i) {
        const float magnitude = std::abs(smoothed[i]);
        const float strength = magnitude <= p.full_strength_below
                                   ? 1.0f
                                   : std::max(0.0f, (p.edge_threshold - magnitude) /
                                                        (p.edge_threshold - p.full_strength_below));
        const float step = smoothed[i] * strength;
        if (step == 0 || reach[i] < 2) continue;
        // A ramp: pixel k from the boundary moves by step·(reach − k)/(2·reach), so the
        // excess step is gone and the correction fades out at the band's edges.
        for (size_t k = 0; k < reach[i]; ++k) {
          const float amount =
              step * static_cast<float>(reach[i] - k) / static_cast<float>(2 * reach[i]);
          uint8_t& before = at(i, -1 - static_cast<ptrdiff_t>(k));
          uint8_t& after = at(i, static_cast<ptrdiff_t>(k));
          // The constants first: a NaN (from a damaged model) becomes 255, never an
          // undefined conversion.
          before = static_cast<uint8_t>(
              std::max(0.0f, std::min(255.0f, std::nearbyint(before + amount))));
          after = static_cast<uint8_t>(
              std::max(0.0f, std::min(255.0f, std::nearbyint(after - amount))));
        }
      }
    }
  }
}

}  // namespace

uint32_t DeblockWidth(uint32_t tile, uint32_t tokens) {
  const uint32_t widest = std::max<uint32_t>(tile / 8, 2);
  const uint32_t narrowest = std::max<uint32_t>(tile / 32, 2);
  if (tokens == 0) return widest;
  const double width = std::round(tile / 4.0 / std::sqrt(static_cast<double>(tokens)));
  return static_cast<uint32_t>(std::clamp<double>(width, narrowest, widest));
}

void DeblockTileSeams(Image* image, uint32_t tile, std::span<const uint32_t> tokens_per_tile,
                      const DeblockParams& params) {
  const size_t row = size_t{image->width} * 3;
  const size_t columns = (size_t{image->width} + tile - 1) / tile;
  const size_t rows = (size_t{image->height} + tile - 1) / tile;
  const bool per_tile = tokens_per_tile.size() == columns * rows;
  // A boundary point's width comes from the coarser of the two tiles it separates.
  auto width = [&](size_t column, size_t row_index, size_t other_column, size_t other_row) {
    if (!per_tile) return DeblockWidth(tile, 0);
    return DeblockWidth(tile, std::min(tokens_per_tile[row_index * columns + column],
                                       tokens_per_tile[other_row * columns + other_column]));
  };
  // Vertical boundaries (between columns), then horizontal ones (between rows).
  FilterBoundaries(image, {row, 3, image->height, image->width}, tile, params,
                   [&](size_t boundary, size_t y) {
                     return width(boundary / tile - 1, y / tile, boundary / tile, y / tile);
                   });
  FilterBoundaries(image, {3, row, image->width, image->height}, tile, params,
                   [&](size_t boundary, size_t x) {
                     return width(x / tile, boundary / tile - 1, x / tile, boundary / tile);
                   });
}

}  // namespace tok1d

#include "codec/tiling.h"

#include <algorithm>
#include <cmath>
#include <cstring>

namespace tok1d {

TileGrid MakeTileGrid(uint32_t width, uint32_t height, uint32_t tile) {
  TileGrid grid;
  grid.tile = tile;
  grid.cols = (width + tile - 1) / tile;
  grid.rows = (height + tile - 1) / tile;
  return grid;
}

void ExtractTiles(const Image& image, const TileGrid& grid, size_t first, size_t count,
                  std::span<uint8_t> out) {
  const size_t tile = grid.tile, width = image.width, height = image.height;
  for (size_t i = 0; i < count; ++i) {
    const size_t index = first + i;
    const size_t x0 = index % grid.cols * tile, y0 = index / grid.cols * tile;
    uint8_t* dst = out.data() + i * tile * tile * 3;
    const size_t inside = std::min(tile, width - x0);  // columns inside the image
    for (size_t y = 0; y < tile; ++y) {
      const uint8_t* src = image.rgb.data() + (std::min(y0 + y, height - 1) * width + x0) * 3;
      uint8_t* row = dst + y * tile * 3;
      std::memcpy(row, src, inside * 3);
      for (size_t x = inside; x < tile; ++x) std::memcpy(row + x * 3, src + (inside - 1) * 3, 3);
    }
  }
}

void PlaceTiles(std::span<const float> tiles, const TileGrid& grid, size_t first, size_t count,
                Image* image) {
  const size_t tile = grid.tile, width = image->width, height = image->height;
  for (size_t i = 0; i < count; ++i) {
    const size_t index = first + i;
    const size_t x0 = index % grid.cols * tile, y0 = index / grid.cols * tile;
    const float* src = tiles.data() + i * tile * tile * 3;
    const size_t cols = std::min(tile, width - x0), rows = std::min(tile, height - y0);
    for (size_t y = 0; y < rows; ++y) {
      uint8_t* dst = image->rgb.data() + ((y0 + y) * width + x0) * 3;
      for (size_t s = 0; s < cols * 3; ++s) {
        // fmax/fmin also map a NaN to 0 rather than to an undefined conversion.
        const float value = std::fmin(std::fmax(src[y * tile * 3 + s], 0.0f), 1.0f) * 255.0f;
        dst[s] = static_cast<uint8_t>(std::nearbyint(value));
      }
    }
  }
}

}  // namespace tok1d

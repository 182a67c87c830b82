// Cutting an image into the model's square tiles and putting decoded tiles back.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

#include "tok1d/image.h"

namespace tok1d {

// Tiles of side `tile` covering an image, raster order (index = row · cols + col).
struct TileGrid {
  uint32_t tile = 0;
  uint32_t cols = 0;  // ceil(width / tile)
  uint32_t rows = 0;  // ceil(height / tile)
  size_t count() const { return size_t{cols} * rows; }
};

TileGrid MakeTileGrid(uint32_t width, uint32_t height, uint32_t tile);

// Copies tiles first … first+count−1 into `out` (count × tile × tile × 3 bytes). The part of a
// border tile outside the image repeats the nearest edge pixel (models/data.py tile_image).
void ExtractTiles(const Image& image, const TileGrid& grid, size_t first, size_t count,
                  std::span<uint8_t> out);

// Writes decoded tiles first … first+count−1 (floats in [0, 1] scale, count × tile × tile × 3)
// into `image`, cropping border tiles: each sample is clamped to [0, 1], scaled by 255 and
// rounded to nearest (ties to even, as numpy's rint).
void PlaceTiles(std::span<const float> tiles, const TileGrid& grid, size_t first, size_t count,
                Image* image);

}  // namespace tok1d

// A light deblocking filter for the seams between independently decoded tiles.
//
// Each tile is decoded on its own, so neighbouring tiles disagree slightly along their shared
// edge; at low token counts that shows as a visible grid. The filter estimates, along every
// tile boundary, the step in excess of the local gradient, smooths that estimate along the
// boundary (the seam is a low-frequency offset; texture should not drive it), and spreads its
// removal as a linear ramp over `width` pixels on each side. Steps larger than the
// thresholds are taken for real edges that happen to lie on the boundary and are kept.
#pragma once

#include <cstdint>
#include <span>

#include "tok1d/image.h"

namespace tok1d {

// Defaults measured on Kodak (docs/tiling.md, scripts/measure-seams).
struct DeblockParams {
  uint32_t width = 0;              // pixels corrected on each side; 0 = DeblockWidth()
  uint32_t smoothing = 4;          // radius of the box filter along the boundary
  float full_strength_below = 48;  // excess steps (8-bit levels) are removed fully up to here,
  float edge_threshold = 128;      // then less and less, and kept from here on (real edges)
};

// The ramp's half-width at a boundary whose two tiles keep `tokens` tokens (the fewer of the
// two): tile/8 for coarse tiles, narrowing as 1/sqrt(tokens) to tile/32. Few tokens leave
// smooth tiles offset by a broad step, which a wide ramp removes best; many tokens leave
// small offsets over real texture, which a wide ramp would bend (docs/tiling.md).
uint32_t DeblockWidth(uint32_t tile, uint32_t tokens);

// Filters the boundaries of the tile grid (tile side `tile`) in place. `tokens_per_tile`, in
// raster order, sets each boundary's width (DeblockWidth); empty (or not one count per tile):
// every width is tile/8.
void DeblockTileSeams(Image* image, uint32_t tile, std::span<const uint32_t> tokens_per_tile = {},
                      const DeblockParams& params = {});

}  // namespace tok1d

// Colour restoration of decoded tiles (container/FORMAT.md, rstr chunk). The decoder's colours
// drift from the original's by a tile-wide affine error (a flat colour comes out tinted, a
// tile's contrast a little low), which the tokens carry only at many bits. The encoder fits,
// per tile, an affine map of the decoded colours onto the original's and sends it where the
// squared error it saves pays for its bits at the image's own rate-distortion slope
// (models/experiments/o1_tile_colour_restoration.py measured the idea; docs/restoration.md).
#pragma once

#include <cstdint>
#include <span>

#include "container/t1d.h"

namespace tok1d {

// d ln(squared error) / d ln(bits) along the token ladder: a bit is worth λ = slope · squared
// error / bits. The slope is steeper at fewer tokens: 0.56 from 4 to 16 of 128 tokens, 0.41
// around 32, 0.29 from 64 to 128 (tok1d sweep of the default model on 25 held-out photos,
// docs/restoration.md); this follows it as 0.26 · (K / mean tokens kept)^¼.
double RestorationSlope(double mean_tokens, uint32_t max_tokens);

// Applies a tile's map to its decoded pixels (tile × tile × 3 floats in [0, 1] scale, HWC):
// out_c = m_c + offset_c · s_o + Σ_j (δ_cj + matrix_cj · 2^−shift) (y_j − m_j), where m is the
// mean colour of the whole decoded tile and s_o = offset_step / (4 · 255).
void ApplyTileRestoration(const TileRestoration& map, const Restoration& steps, uint32_t tile,
                          std::span<float> pixels);

// The quantised map that best takes `decoded` (as above) to `original` (tile × tile × 3 bytes)
// over the tile's first `width` × `height` pixels (the part inside the image); in *error the
// squared error ([0, 1] scale, values clamped as the decoder clamps) of the decode there, in
// *saved how much of it the map removes (0 for a tile it leaves unused).
TileRestoration FitTileRestoration(std::span<const float> decoded,
                                   std::span<const uint8_t> original, uint32_t tile, uint32_t width,
                                   uint32_t height, const Restoration& steps, double* error,
                                   double* saved);

}  // namespace tok1d

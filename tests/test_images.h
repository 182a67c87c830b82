// Test images made by the tests themselves with libpng, libjpeg and libwebp, so every reader
// is checked against an independent writer.
#pragma once

#include <cstdint>
#include <vector>

namespace tok1d::testing {

// PNG with the given colour type (PNG_COLOR_TYPE_*) and bit depth. `samples` holds
// width × height × channels values (palette indices for palette images), each < 2^bit_depth.
// `palette` is RGB triples; `trns` is the tRNS chunk's entries (palette alpha, or for gray/RGB
// the one transparent colour's samples).
std::vector<uint8_t> MakePng(uint32_t width, uint32_t height, int color_type, int bit_depth,
                             const std::vector<uint16_t>& samples,
                             const std::vector<uint8_t>& palette = {},
                             const std::vector<uint16_t>& trns = {});

// Baseline JPEG at quality 95, 4:4:4, from `samples` (1 channel: grayscale; 3: RGB stored as YCbCr;
// 4: CMYK as given, with libjpeg's default Adobe marker, stored as YCCK if `ycck`).
std::vector<uint8_t> MakeJpeg(uint32_t width, uint32_t height, int channels,
                              const std::vector<uint8_t>& samples, bool ycck = false);

// Lossless WebP from RGB (channels 3) or RGBA (channels 4) samples.
std::vector<uint8_t> MakeWebp(uint32_t width, uint32_t height, int channels,
                              const std::vector<uint8_t>& samples);

// A smooth but non-trivial pattern: width × height × channels values below `limit`.
std::vector<uint16_t> Pattern(uint32_t width, uint32_t height, int channels, uint32_t limit);

}  // namespace tok1d::testing

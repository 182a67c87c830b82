// For the decoders of eval/codecs: RGBA → RGB over white, as imageio composites images with
// transparency (imageio/image_io.h, "Alpha policy"; the same rounding).
#pragma once

#include <cstddef>
#include <cstdint>

namespace tok1d {

inline void CompositeOverWhite(const uint8_t* rgba, size_t pixels, uint8_t* rgb) {
  for (size_t i = 0; i < pixels; ++i, rgba += 4, rgb += 3) {
    const uint32_t alpha = rgba[3];
    for (int c = 0; c < 3; ++c) {
      const uint32_t t = rgba[c] * alpha + 255u * (255u - alpha) + 128u;
      rgb[c] = static_cast<uint8_t>((t + (t >> 8)) >> 8);
    }
  }
}

}  // namespace tok1d

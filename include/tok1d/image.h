// An image as tok1d codes it: interleaved 8-bit sRGB, opaque. Every layer passes images in
// this form; imageio/ converts files to and from it.
#pragma once

#include <cstdint>
#include <vector>

namespace tok1d {

struct Image {
  uint32_t width = 0;
  uint32_t height = 0;
  std::vector<uint8_t> rgb;  // width × height × 3 bytes, rows top to bottom, RGBRGB…
};

}  // namespace tok1d

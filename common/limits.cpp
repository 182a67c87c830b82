#include "common/limits.h"

#include <string>

namespace tok1d {

Status CheckPixelLimit(uint64_t width, uint64_t height, uint64_t max_pixels) {
  if (width == 0 || height == 0) {
    return CorruptError("image has zero width or height (" + std::to_string(width) + "x" +
                        std::to_string(height) + ")");
  }
  // Each side fits in 32 bits wherever this is called, so the product cannot overflow.
  if (width > UINT32_MAX || height > UINT32_MAX || width * height > max_pixels) {
    return TooLargeError("image is " + std::to_string(width) + "x" + std::to_string(height) +
                         " pixels, over the limit of " + std::to_string(max_pixels) +
                         " pixels; raise the pixel limit if this is intended");
  }
  return OkStatus();
}

}  // namespace tok1d

// Resource limits shared by the image readers and the container reader.
#pragma once

#include <cstdint>

#include "tok1d/status.h"

namespace tok1d {

// Images (and token files) larger than this many pixels are refused unless the caller raises
// the limit. 100 megapixels of RGB8 is 300 MB of pixels, plus the working memory of the model.
inline constexpr uint64_t kDefaultMaxPixels = 100'000'000;

// kTooLarge if width × height exceeds max_pixels; kCorrupt if either side is zero.
// Called with header values before any pixel memory is allocated.
Status CheckPixelLimit(uint64_t width, uint64_t height, uint64_t max_pixels);

}  // namespace tok1d

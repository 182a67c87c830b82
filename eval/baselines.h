// The reference codecs tok1d sweep compares with, through their libraries' APIs.
#pragma once

#include <cstdint>
#include <vector>

#include "imageio/image_io.h"
#include "tok1d/status.h"

namespace tok1d {

// libjpeg-turbo as `cjpeg -quality QUALITY -optimize` makes it: baseline sequential, YCbCr
// 4:2:0, the libjpeg quality scaling without forcing 8-bit tables (below quality ~25 tables
// need 16 bits, as cjpeg without -baseline allows), accurate integer DCT, Huffman tables
// optimized for the image. QUALITY 1 … 100.
StatusOr<std::vector<uint8_t>> EncodeJpeg(const Image& image, int quality);

// libwebp lossy as `cwebp -q QUALITY -m 6` makes it: method 6 (slowest, smallest), every other
// setting libwebp's default. QUALITY 0 … 100.
StatusOr<std::vector<uint8_t>> EncodeWebp(const Image& image, int quality);

}  // namespace tok1d

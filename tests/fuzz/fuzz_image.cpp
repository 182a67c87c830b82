// libFuzzer target: image decoding (format detection, PNG, JPEG, WebP, PPM/PGM) on arbitrary
// bytes, with a 4-megapixel limit so that large headers are refused rather than allocated.
#include <cstdint>
#include <cstdlib>
#include <span>

#include "codec/image_io.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  tok1d::ImageReadOptions options;
  options.max_pixels = 1u << 22;
  auto image = tok1d::DecodeImage(std::span<const uint8_t>(data, size), options);
  if (image.ok() && image->rgb.size() != size_t{image->width} * image->height * 3) std::abort();
  return 0;
}

// libFuzzer target: image decoding (format detection, PNG, JPEG, WebP, PPM/PGM) on arbitrary
// bytes, with a 4-megapixel limit so that large headers are refused rather than allocated.
// Metadata (ICC, EXIF) is read too, and written back into a PNG that must read the same; the
// EXIF orientation is applied (two inputs in three), so the EXIF read back says 1 then.
#include <cstdint>
#include <cstdlib>
#include <span>

#include "imageio/image_io.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  tok1d::ImageReadOptions options;
  options.max_pixels = 1u << 22;
  options.read_icc = options.read_exif = size % 2 == 0;
  options.apply_orientation = size % 3 != 0;
  tok1d::ImageInfo info;
  auto image = tok1d::DecodeImage(std::span<const uint8_t>(data, size), options, &info);
  if (!image.ok()) return 0;
  if (image->rgb.size() != size_t{image->width} * image->height * 3) std::abort();
  if (info.orientation_applied < 1 || info.orientation_applied > 8) std::abort();
  if (!options.apply_orientation && info.orientation_applied != 1) std::abort();
  if (!info.metadata.empty() && image->width * uint64_t{image->height} <= 4096) {
    auto png = tok1d::EncodeImage(*image, tok1d::ImageFormat::kPng, &info.metadata);
    if (!png.ok()) std::abort();
    tok1d::ImageInfo back;
    if (!tok1d::DecodeImage(*png, options, &back).ok()) std::abort();
    if (back.metadata.exif != info.metadata.exif) std::abort();
    if (options.apply_orientation && back.orientation_applied != 1) std::abort();
  }
  return 0;
}

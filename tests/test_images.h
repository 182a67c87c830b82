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

// EXIF as JPEG APP1 (after "Exif\0\0"), PNG eXIf and WebP EXIF hold it: a TIFF header and an
// IFD0 with Make ("tok1d", stored after the IFD), Orientation = `orientation` (as SHORT, or LONG
// if `long_type`, as a few writers do) and XResolution (72/1), then an empty IFD1 pointer.
std::vector<uint8_t> MakeExifWithOrientation(uint32_t orientation, bool big_endian = true,
                                             bool long_type = false);

// `jpeg` with an APP1 "Exif" segment holding `exif`, inserted by hand after SOI.
std::vector<uint8_t> WithJpegExif(std::vector<uint8_t> jpeg, const std::vector<uint8_t>& exif);

// `png` with an eXIf chunk holding `exif`, inserted by hand (with its CRC) after IHDR, or before
// IEND (after the image data, where PNG also allows it) if `after_image_data`.
std::vector<uint8_t> WithPngExif(const std::vector<uint8_t>& png, const std::vector<uint8_t>& exif,
                                 bool after_image_data = false);

// `webp` in the extended format (VP8X) with an EXIF chunk holding `exif` (libwebpmux).
std::vector<uint8_t> WithWebpExif(const std::vector<uint8_t>& webp,
                                  const std::vector<uint8_t>& exif);

// A smooth but non-trivial pattern: width × height × channels values below `limit`.
std::vector<uint16_t> Pattern(uint32_t width, uint32_t height, int channels, uint32_t limit);

}  // namespace tok1d::testing

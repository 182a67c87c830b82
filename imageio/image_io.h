// Reading and writing raster images as interleaved 8-bit sRGB.
//
// Readers: PNG (1–16 bit; gray, gray+alpha, RGB, RGBA, palette, tRNS), JPEG (gray, YCbCr,
// CMYK/YCCK incl. Adobe's inverted CMYK), WebP (still images), PPM/PGM (binary P5/P6, any
// maxval 1..65535). The format is detected from the first bytes, never from the file name.
// Writers: PNG and PPM.
//
// Colour: samples are taken as sRGB; embedded gamma or ICC data is ignored. Higher bit depths
// are reduced to 8 bits with rounding.
//
// Metadata (on request, ImageReadOptions::read_icc / read_exif): the ICC profile (PNG iCCP,
// JPEG APP2 ICC_PROFILE segments, WebP ICCP) and EXIF (PNG eXIf, JPEG APP1 "Exif", WebP EXIF)
// as raw bytes, and the PNG writer puts them back (iCCP, eXIf). A profile whose data colour
// space is not RGB (gray, CMYK) does not describe the RGB samples tok1d codes and is not kept.
//
// Alpha policy: tok1d codes opaque RGB. An image with an alpha channel (or PNG tRNS) is
// composited over a background colour (ImageReadOptions::background, default white) in sRGB
// space: out = (c·a + bg·(255 − a)) / 255, rounded. ImageInfo reports it (had_alpha,
// alpha_composited) and adds a warning the caller should show.
//
// Orientation (ImageReadOptions::apply_orientation, on by default): the EXIF orientation tag
// (imageio/orientation.h) is looked for in every JPEG, PNG and WebP, whether or not the EXIF is
// kept, and the pixels are turned and/or mirrored as viewers show them, so the image is
// upright. ImageInfo::orientation_applied says what was done. EXIF kept with read_exif then
// says orientation 1, so that the image is not turned a second time.
//
// Size: width × height is checked against max_pixels from the file header, before any pixel
// memory is allocated.
#pragma once

#include <array>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/limits.h"
#include "tok1d/image.h"
#include "tok1d/status.h"

namespace tok1d {

enum class ImageFormat { kUnknown, kPng, kJpeg, kWebp, kPnm };

std::string_view ImageFormatName(ImageFormat format);  // "png", "jpeg", "webp", "pnm"

struct ImageReadOptions {
  uint64_t max_pixels = kDefaultMaxPixels;
  std::array<uint8_t, 3> background = {255, 255, 255};  // for compositing alpha
  bool read_icc = false;                                // fill ImageInfo::metadata.icc
  bool read_exif = false;                               // fill ImageInfo::metadata.exif
  // Turn the pixels upright per the EXIF orientation tag (`tok1d encode --keep-orientation`
  // turns it off: the pixels as stored, the tag kept as it is).
  bool apply_orientation = true;
};

// An image's colour profile and camera metadata, as raw bytes (empty: none).
struct ImageMetadata {
  std::vector<uint8_t> icc;   // an ICC profile (ICC.1), data colour space RGB
  std::vector<uint8_t> exif;  // EXIF from its TIFF header ("II*\0" or "MM\0*") on, as PNG's
                              // eXIf holds it (JPEG's "Exif\0\0" prefix removed)
  bool empty() const { return icc.empty() && exif.empty(); }
};

// What the reader saw, beyond the pixels.
struct ImageInfo {
  ImageFormat format = ImageFormat::kUnknown;
  uint32_t bit_depth = 8;         // of the source samples
  uint32_t channels = 3;          // of the source, alpha included
  bool had_alpha = false;         // the source had an alpha channel or transparency key
  bool alpha_composited = false;  // some pixel was not opaque and was blended with background
  ImageMetadata metadata;         // what ImageReadOptions asked for, if the image has it
  // The EXIF orientation (1..8) the pixels were turned by to be upright; 1: none (no tag, tag 1,
  // an invalid tag, or apply_orientation off).
  uint32_t orientation_applied = 1;
  std::vector<std::string> warnings;  // one line each, for the user
};

// Format from the magic bytes; kUnknown if none matches.
ImageFormat DetectImageFormat(std::span<const uint8_t> bytes);

// Decodes an image held in memory. `info` may be null.
StatusOr<Image> DecodeImage(std::span<const uint8_t> bytes, const ImageReadOptions& options = {},
                            ImageInfo* info = nullptr);

// Reads and decodes a file; "-" reads stdin. Errors name the file.
StatusOr<Image> ReadImage(const std::string& path, const ImageReadOptions& options = {},
                          ImageInfo* info = nullptr);

// Encodes to PNG (8-bit RGB) or binary PPM (P6, maxval 255). PNG output carries `metadata`
// (iCCP, eXIf) if given; what cannot be written (PPM output, a profile libpng refuses) is left
// out with a line in `warnings` (may be null).
StatusOr<std::vector<uint8_t>> EncodeImage(const Image& image, ImageFormat format,
                                           const ImageMetadata* metadata = nullptr,
                                           std::vector<std::string>* warnings = nullptr);

// The output format implied by a file name: .ppm/.pnm → PPM, anything else (and "-") → PNG.
ImageFormat OutputFormatForPath(const std::string& path);

// Encodes and writes atomically (see AtomicOutputFile); kUnknown picks from the path.
Status WriteImage(const Image& image, const std::string& path, bool force,
                  ImageFormat format = ImageFormat::kUnknown);

}  // namespace tok1d

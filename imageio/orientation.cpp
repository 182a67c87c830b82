#include "imageio/orientation.h"

#include <algorithm>
#include <cstring>
#include <optional>
#include <utility>
#include <vector>

namespace tok1d {
namespace {

constexpr uint8_t kExifPrefix[6] = {'E', 'x', 'i', 'f', 0, 0};
constexpr uint16_t kOrientationTag = 0x0112;
constexpr uint16_t kTypeShort = 3;  // TIFF 6.0 field types
constexpr uint16_t kTypeLong = 4;
constexpr size_t kIfdEntrySize = 12;

// Where the orientation value sits in the EXIF bytes.
struct OrientationField {
  size_t offset = 0;  // of the value, inside the IFD entry
  bool big_endian = false;
  uint16_t type = kTypeShort;
};

class TiffReader {
 public:
  TiffReader(std::span<const uint8_t> bytes, bool big_endian)
      : bytes_(bytes), big_endian_(big_endian) {}

  // Whether `size` bytes at `offset` are inside the data (without overflow).
  bool Has(size_t offset, size_t size) const {
    return offset <= bytes_.size() && size <= bytes_.size() - offset;
  }
  uint16_t U16(size_t offset) const {
    const uint8_t* p = &bytes_[offset];
    return big_endian_ ? static_cast<uint16_t>(p[0] << 8 | p[1])
                       : static_cast<uint16_t>(p[1] << 8 | p[0]);
  }
  uint32_t U32(size_t offset) const {
    const uint8_t* p = &bytes_[offset];
    return big_endian_ ? uint32_t{p[0]} << 24 | uint32_t{p[1]} << 16 | uint32_t{p[2]} << 8 | p[3]
                       : uint32_t{p[3]} << 24 | uint32_t{p[2]} << 16 | uint32_t{p[1]} << 8 | p[0];
  }

 private:
  std::span<const uint8_t> bytes_;
  bool big_endian_;
};

// The first orientation entry of IFD0 with a usable type (SHORT as the standard says, or LONG
// as a few writers use) and count 1. Offsets are relative to the TIFF header.
std::optional<OrientationField> FindOrientation(std::span<const uint8_t> exif) {
  size_t base = 0;
  if (exif.size() >= sizeof(kExifPrefix) &&
      std::memcmp(exif.data(), kExifPrefix, sizeof(kExifPrefix)) == 0) {
    base = sizeof(kExifPrefix);
  }
  const std::span<const uint8_t> tiff = exif.subspan(base);
  if (tiff.size() < 8) return std::nullopt;
  bool big_endian = false;
  if (std::memcmp(tiff.data(), "MM\0*", 4) == 0) {
    big_endian = true;
  } else if (std::memcmp(tiff.data(), "II*\0", 4) != 0) {
    return std::nullopt;
  }
  const TiffReader reader(tiff, big_endian);
  const size_t ifd = reader.U32(4);
  if (!reader.Has(ifd, 2)) return std::nullopt;
  const size_t entries = reader.U16(ifd);
  for (size_t i = 0; i < entries; ++i) {
    const size_t entry = ifd + 2 + i * kIfdEntrySize;
    if (!reader.Has(entry, kIfdEntrySize)) break;  // a cut IFD: the entries that are there count
    if (reader.U16(entry) != kOrientationTag) continue;
    const uint16_t type = reader.U16(entry + 2);
    if ((type != kTypeShort && type != kTypeLong) || reader.U32(entry + 4) != 1) {
      return std::nullopt;
    }
    return OrientationField{base + entry + 8, big_endian, type};
  }
  return std::nullopt;
}

uint32_t ReadValue(std::span<const uint8_t> exif, const OrientationField& field) {
  const TiffReader reader(exif, field.big_endian);
  return field.type == kTypeShort ? reader.U16(field.offset) : reader.U32(field.offset);
}

}  // namespace

uint32_t ExifOrientation(std::span<const uint8_t> exif) {
  const std::optional<OrientationField> field = FindOrientation(exif);
  if (!field) return 0;
  const uint32_t value = ReadValue(exif, *field);
  return value >= 1 && value <= 8 ? value : 0;
}

bool ResetExifOrientation(std::span<uint8_t> exif) {
  const std::optional<OrientationField> field = FindOrientation(exif);
  if (!field) return false;
  const size_t size = field->type == kTypeShort ? 2 : 4;
  std::fill_n(exif.begin() + static_cast<std::ptrdiff_t>(field->offset), size, uint8_t{0});
  // 1 in the field's byte order: the last byte of a big-endian value, the first of a little one.
  exif[field->big_endian ? field->offset + size - 1 : field->offset] = 1;
  return true;
}

void OrientUpright(uint32_t orientation, Image* image) {
  if (orientation < 2 || orientation > 8) return;
  const size_t w = image->width, h = image->height;
  const bool swap = orientation >= 5;
  const size_t out_w = swap ? h : w, out_h = swap ? w : h;
  std::vector<uint8_t> out(image->rgb.size());
  // For each pixel of the upright image, the stored pixel that lands there.
  for (size_t y = 0; y < out_h; ++y) {
    for (size_t x = 0; x < out_w; ++x) {
      size_t sx = x, sy = y;
      switch (orientation) {
        case 2:
          sx = w - 1 - x;
          break;
        case 3:
          sx = w - 1 - x;
          sy = h - 1 - y;
          break;
        case 4:
          sy = h - 1 - y;
          break;
        case 5:
          sx = y;
          sy = x;
          break;
        case 6:
          sx = y;
          sy = h - 1 - x;
          break;
        case 7:
          sx = w - 1 - y;
          sy = h - 1 - x;
          break;
        case 8:
          sx = w - 1 - y;
          sy = x;
          break;
        default:
          break;
      }
      std::memcpy(&out[(y * out_w + x) * 3], &image->rgb[(sy * w + sx) * 3], 3);
    }
  }
  image->rgb = std::move(out);
  image->width = static_cast<uint32_t>(out_w);
  image->height = static_cast<uint32_t>(out_h);
}

}  // namespace tok1d

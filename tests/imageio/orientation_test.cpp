// EXIF orientation (imageio/orientation.h): JPEG (APP1), PNG (eXIf) and WebP (EXIF) inputs with
// each of the 8 values come out upright, with the kept EXIF saying 1 afterwards; with
// apply_orientation off they come out as stored.
#include <doctest/doctest.h>

#include <algorithm>
#include <cstdlib>
#include <span>
#include <utility>
#include <vector>

#include "imageio/image_io.h"
#include "imageio/orientation.h"
#include "test_images.h"

namespace tok1d {
namespace {

using testing::MakeExifWithOrientation;
using testing::MakeJpeg;
using testing::MakePng;
using testing::MakeWebp;

// Not square, so that a turn shows in the size; multiples of 8 for JPEG.
constexpr uint32_t kUprightW = 24, kUprightH = 16;

// An upright image in which no two orientations look alike: red grows to the right, green
// downwards, blue towards the bottom-right corner. Smooth, so JPEG keeps it closely.
Image UprightImage() {
  Image image{kUprightW, kUprightH, {}};
  for (uint32_t y = 0; y < kUprightH; ++y) {
    for (uint32_t x = 0; x < kUprightW; ++x) {
      image.rgb.push_back(static_cast<uint8_t>(20 + x * 200 / (kUprightW - 1)));
      image.rgb.push_back(static_cast<uint8_t>(20 + y * 200 / (kUprightH - 1)));
      image.rgb.push_back(
          static_cast<uint8_t>(60 + x * y * 150 / ((kUprightW - 1) * (kUprightH - 1))));
    }
  }
  return image;
}

// Where the stored image's row 0 and column 0 appear in the upright image ('T'op, 'B'ottom,
// 'L'eft, 'R'ight): the EXIF specification's table, written out independently of the reader.
struct Sides {
  char row0, col0;
};
constexpr Sides kSides[9] = {{'?', '?'}, {'T', 'L'}, {'T', 'R'}, {'B', 'R'}, {'B', 'L'},
                             {'L', 'T'}, {'R', 'T'}, {'R', 'B'}, {'L', 'B'}};

// The pixels a camera stores for `upright` when it records `orientation`.
Image StoredImage(const Image& upright, uint32_t orientation) {
  const Sides sides = kSides[orientation];
  const bool rows_are_rows = sides.row0 == 'T' || sides.row0 == 'B';
  const uint32_t uw = upright.width, uh = upright.height;
  Image stored{rows_are_rows ? uw : uh, rows_are_rows ? uh : uw, {}};
  stored.rgb.resize(upright.rgb.size());
  for (uint32_t sy = 0; sy < stored.height; ++sy) {
    for (uint32_t sx = 0; sx < stored.width; ++sx) {
      uint32_t ux = 0, uy = 0;
      if (rows_are_rows) {
        uy = sides.row0 == 'T' ? sy : uh - 1 - sy;
        ux = sides.col0 == 'L' ? sx : uw - 1 - sx;
      } else {
        ux = sides.row0 == 'L' ? sy : uw - 1 - sy;
        uy = sides.col0 == 'T' ? sx : uh - 1 - sx;
      }
      for (size_t c = 0; c < 3; ++c) {
        stored.rgb[(size_t{sy} * stored.width + sx) * 3 + c] =
            upright.rgb[(size_t{uy} * uw + ux) * 3 + c];
      }
    }
  }
  return stored;
}

// The largest difference of one sample; the sizes must match.
int MaxDifference(const Image& a, const Image& b) {
  REQUIRE(a.width == b.width);
  REQUIRE(a.height == b.height);
  REQUIRE(a.rgb.size() == b.rgb.size());
  int worst = 0;
  for (size_t i = 0; i < a.rgb.size(); ++i) worst = std::max(worst, std::abs(a.rgb[i] - b.rgb[i]));
  return worst;
}

std::vector<uint16_t> Samples(const Image& image) {
  return std::vector<uint16_t>(image.rgb.begin(), image.rgb.end());
}

enum class Format { kJpeg, kPng, kPngAfterData, kWebp };

const char* FormatName(Format format) {
  switch (format) {
    case Format::kJpeg:
      return "JPEG APP1";
    case Format::kPng:
      return "PNG eXIf before IDAT";
    case Format::kPngAfterData:
      return "PNG eXIf after IDAT";
    case Format::kWebp:
      return "WebP EXIF (lossless)";
  }
  return "?";
}

std::vector<uint8_t> Encode(Format format, const Image& stored, const std::vector<uint8_t>& exif) {
  switch (format) {
    case Format::kJpeg:
      return testing::WithJpegExif(MakeJpeg(stored.width, stored.height, 3, stored.rgb), exif);
    case Format::kPng:
    case Format::kPngAfterData:
      return testing::WithPngExif(
          MakePng(stored.width, stored.height, 2 /* PNG_COLOR_TYPE_RGB */, 8, Samples(stored)),
          exif, format == Format::kPngAfterData);
    case Format::kWebp:
      return testing::WithWebpExif(MakeWebp(stored.width, stored.height, 3, stored.rgb), exif);
  }
  return {};
}

// JPEG is lossy (quality 95, 4:4:4, smooth image); a wrong turn differs by ≥ 100.
int Tolerance(Format format) { return format == Format::kJpeg ? 10 : 0; }

TEST_CASE("Orientation: every EXIF value comes out upright from JPEG, PNG and WebP") {
  const Image upright = UprightImage();
  for (Format format : {Format::kJpeg, Format::kPng, Format::kPngAfterData, Format::kWebp}) {
    for (uint32_t orientation = 1; orientation <= 8; ++orientation) {
      // Both byte orders, and the LONG type some writers use, across the cases.
      const bool big_endian = orientation % 2 == 1;
      const bool long_type = orientation == 7;
      CAPTURE(FormatName(format));
      CAPTURE(orientation);
      CAPTURE(big_endian);
      const Image stored = StoredImage(upright, orientation);
      const std::vector<uint8_t> exif = MakeExifWithOrientation(orientation, big_endian, long_type);
      const std::vector<uint8_t> file = Encode(format, stored, exif);

      // Default options: upright, and said so.
      ImageInfo info;
      auto image = DecodeImage(file, {}, &info);
      REQUIRE(image.ok());
      CHECK(MaxDifference(*image, upright) <= Tolerance(format));
      CHECK(info.orientation_applied == orientation);
      CHECK(info.metadata.exif.empty());  // not asked for
      CHECK(info.warnings.empty());

      // Kept EXIF says 1 afterwards; nothing else in it changes.
      ImageReadOptions keep_exif;
      keep_exif.read_exif = true;
      image = DecodeImage(file, keep_exif, &info);
      REQUIRE(image.ok());
      CHECK(MaxDifference(*image, upright) <= Tolerance(format));
      CHECK(info.metadata.exif == MakeExifWithOrientation(1, big_endian, long_type));
      CHECK(ExifOrientation(info.metadata.exif) == 1);

      // So a PNG written with it reads upright again, not turned twice.
      auto png = EncodeImage(*image, ImageFormat::kPng, &info.metadata);
      REQUIRE(png.ok());
      ImageInfo again;
      auto reread = DecodeImage(*png, keep_exif, &again);
      REQUIRE(reread.ok());
      CHECK(MaxDifference(*reread, *image) == 0);
      CHECK(again.orientation_applied == 1);
      CHECK(again.metadata.exif == info.metadata.exif);

      // apply_orientation off: the pixels as stored, the EXIF as it was.
      ImageReadOptions as_stored;
      as_stored.apply_orientation = false;
      as_stored.read_exif = true;
      image = DecodeImage(file, as_stored, &info);
      REQUIRE(image.ok());
      CHECK(MaxDifference(*image, stored) <= Tolerance(format));
      CHECK(info.orientation_applied == 1);
      CHECK(info.metadata.exif == exif);
    }
  }
}

TEST_CASE("Orientation: a wrong turn would be seen (the test image is asymmetric)") {
  const Image upright = UprightImage();
  for (uint32_t a = 1; a <= 8; ++a) {
    for (uint32_t b = a + 1; b <= 8; ++b) {
      const Image sa = StoredImage(upright, a), sb = StoredImage(upright, b);
      if (sa.width != sb.width) continue;
      CAPTURE(a);
      CAPTURE(b);
      CHECK(MaxDifference(sa, sb) >= 100);
    }
  }
}

TEST_CASE("Orientation: OrientUpright undoes what the camera stored, 1×N and N×1 too") {
  for (const auto& size : {std::pair<uint32_t, uint32_t>{1, 1}, {1, 5}, {5, 1}, {3, 7}}) {
    const uint32_t w = size.first, h = size.second;  // not a structured binding: CAPTURE needs it
    Image upright{w, h, {}};
    for (uint32_t i = 0; i < w * h * 3; ++i) upright.rgb.push_back(static_cast<uint8_t>(i * 11));
    for (uint32_t orientation = 1; orientation <= 8; ++orientation) {
      CAPTURE(w);
      CAPTURE(h);
      CAPTURE(orientation);
      Image image = StoredImage(upright, orientation);
      OrientUpright(orientation, &image);
      CHECK(MaxDifference(image, upright) == 0);
    }
  }
  Image image = UprightImage();
  for (uint32_t ignored : {0u, 1u, 9u, 0xFFFFu}) {
    OrientUpright(ignored, &image);
    CHECK(MaxDifference(image, UprightImage()) == 0);
  }
}

TEST_CASE("Orientation: the EXIF parser finds the tag, and refuses what is not sound") {
  for (bool big_endian : {true, false}) {
    for (bool long_type : {false, true}) {
      CAPTURE(big_endian);
      CAPTURE(long_type);
      std::vector<uint8_t> exif = MakeExifWithOrientation(6, big_endian, long_type);
      CHECK(ExifOrientation(exif) == 6);
      // With JPEG's "Exif\0\0" prefix.
      std::vector<uint8_t> prefixed = {'E', 'x', 'i', 'f', 0, 0};
      prefixed.insert(prefixed.end(), exif.begin(), exif.end());
      CHECK(ExifOrientation(prefixed) == 6);
      CHECK(ResetExifOrientation(prefixed));
      CHECK(ExifOrientation(prefixed) == 1);
      // Cut anywhere: the value only once its whole entry is there (IFD0 entry 2 ends at 34).
      for (size_t size = 0; size < exif.size(); ++size) {
        CAPTURE(size);
        const std::span<const uint8_t> cut(exif.data(), size);
        CHECK(ExifOrientation(cut) == (size >= 34 ? 6u : 0u));
      }
    }
  }
  // Values outside 1..8 are no orientation.
  for (uint32_t value : {0u, 9u, 0xFFFFu}) {
    CAPTURE(value);
    CHECK(ExifOrientation(MakeExifWithOrientation(value)) == 0);
    // A file with such a tag is read as stored.
    const Image stored = UprightImage();
    ImageInfo info;
    auto image =
        DecodeImage(Encode(Format::kPng, stored, MakeExifWithOrientation(value)), {}, &info);
    REQUIRE(image.ok());
    CHECK(MaxDifference(*image, stored) == 0);
    CHECK(info.orientation_applied == 1);
  }
  std::vector<uint8_t> exif = MakeExifWithOrientation(3);
  SUBCASE("count other than 1") { exif[10 + 12 + 7] = 2; }
  SUBCASE("type other than SHORT or LONG") { exif[10 + 12 + 3] = 2; }
  SUBCASE("IFD0 offset past the end") { exif[4] = 0x7F; }
  SUBCASE("IFD0 offset at the last byte") { exif[7] = static_cast<uint8_t>(exif.size() - 1); }
  SUBCASE("not a TIFF header") { exif[1] = 'I'; }
  SUBCASE("no orientation entry") { exif[10 + 12 + 1] = 0x13; }
  CHECK(ExifOrientation(exif) == 0);
  CHECK_FALSE(ResetExifOrientation(exif));
}

TEST_CASE("Orientation: an entry count larger than the IFD reads the entries that are there") {
  std::vector<uint8_t> exif = MakeExifWithOrientation(8);
  exif[8] = 0xFF;  // 65280+ entries claimed (big-endian count)
  exif[9] = 0xFF;
  CHECK(ExifOrientation(exif) == 8);
}

TEST_CASE("Orientation: files without EXIF, or with EXIF and no tag, read as before") {
  const Image image = UprightImage();
  const auto png = MakePng(image.width, image.height, 2, 8, Samples(image));
  ImageInfo info;
  auto read = DecodeImage(png, {}, &info);
  REQUIRE(read.ok());
  CHECK(MaxDifference(*read, image) == 0);
  CHECK(info.orientation_applied == 1);
  // EXIF whose IFD0 is empty.
  const std::vector<uint8_t> empty_ifd = {'I', 'I', 42, 0, 8, 0, 0, 0, 0, 0, 0, 0, 0, 0};
  read = DecodeImage(
      testing::WithJpegExif(MakeJpeg(image.width, image.height, 3, image.rgb), empty_ifd), {},
      &info);
  REQUIRE(read.ok());
  CHECK(read->width == image.width);
  CHECK(info.orientation_applied == 1);
}

}  // namespace
}  // namespace tok1d

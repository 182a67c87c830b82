// SSIMULACRA 2.1 (metrics/ssimulacra2.h) and Butteraugli through libjxl
// (metrics/butteraugli.h) against the reference implementations.
//
// Two parts:
//   1. Always run, no shared data: argument checks, identical images (exactly 100 and 0), and
//      a committed golden pair, tests/data/metrics/kodim01-crop128.png and
//      kodim01.jpeg-q30-crop128.png: 128 × 128 crops at (384, 128) of Kodak kodim01 and of
//      ../shared/metrics-reference/pairs/kodim01.jpeg-q30.png (cjpeg -quality 30 of it), plain
//      8-bit RGB PNGs without colour chunks. Its expected scores were computed by this
//      implementation after it had matched the reference tools on all 32 full-size pairs below,
//      and agree between its FMA and non-FMA code paths.
//   2. When the shared folder exists (TOK1D_SHARED_DIR, the path of ../shared): every pair of
//      metrics-reference/scores.tsv, whose scores come from libjxl 190d44fb's `ssimulacra2` and
//      `butteraugli_main` (see metrics-reference/README.md). Skipped with a message otherwise.
//
// Measured on the 32 pairs (x86-64, GCC 12, Debian 12's libjxl 0.7.0):
//   ssimulacra2       max |Δ| < 5e-9 points (the same to all 8 printed decimals)
//   butteraugli max   max |Δ| 0.174 (kodim23.blur0x2: 19.3816 vs 19.5554), max relative 0.92 %
//   butteraugli 3-norm max |Δ| 0.083 (kodim01.jpeg-q5: 6.8821 vs 6.9647), max relative 1.19 %
// The Butteraugli differences are not in tok1d's code: libjxl 0.7.0's own
// JxlButteraugliResultGetDistance(3) and max give the same numbers, and feeding it linear
// floats made with libjxl's sRGB curve changes nothing, so the Butteraugli model itself changed
// between libjxl 0.7.0 (2022) and the 2023 snapshot the reference used. Hence the tolerance
// depends on the libjxl version this is linked against (see ButteraugliTolerance).
#include <doctest/doctest.h>
#include <jxl/version.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "imageio/image_io.h"
#include "metrics/butteraugli.h"
#include "metrics/ssimulacra2.h"

#ifndef TOK1D_SHARED_DIR
#define TOK1D_SHARED_DIR ""
#endif

namespace tok1d {
namespace {

// A deterministic textured test image.
Image Pattern(uint32_t width, uint32_t height, uint32_t seed) {
  Image image;
  image.width = width;
  image.height = height;
  image.rgb.resize(size_t{width} * height * 3);
  uint32_t state = seed * 2654435761u + 12345u;
  for (uint32_t y = 0; y < height; ++y) {
    for (uint32_t x = 0; x < width; ++x) {
      state = state * 1664525u + 1013904223u;
      const size_t i = (size_t{y} * width + x) * 3;
      image.rgb[i + 0] = static_cast<uint8_t>((x * 7 + y * 3 + (state >> 28)) & 0xFF);
      image.rgb[i + 1] = static_cast<uint8_t>((x * y / 5 + (state >> 26)) & 0xFF);
      image.rgb[i + 2] = static_cast<uint8_t>((255 - y * 2 + (state >> 27)) & 0xFF);
    }
  }
  return image;
}

Image MustRead(const std::string& path) {
  StatusOr<Image> image = ReadImage(path);
  REQUIRE_MESSAGE(image.ok(), path << ": " << image.status().message());
  return std::move(image).value();
}

// The golden pair's expected scores (see the file comment).
constexpr double kGoldenSsimulacra2 = 51.02135334;
constexpr double kGoldenSsimulacra2Tolerance = 0.01;
// libjxl 0.7.0's Butteraugli on the golden pair; other libjxl versions differ by ~1 %.
constexpr double kGoldenButteraugliMax07 = 4.06960869;
constexpr double kGoldenButteraugli3Norm07 = 2.23359530;

constexpr bool kLibjxl07 = JPEGXL_MAJOR_VERSION == 0 && JPEGXL_MINOR_VERSION == 7;

// Relative tolerance of Butteraugli against the reference columns (libjxl 190d44fb, 2023).
// libjxl ≥ 0.9 postdates that snapshot, and the reference README found the 2026 libjxl HEAD
// identical on every printed digit (SIMD vs scalar builds differ by ≤ 2e-6 relative): 1e-4.
// Older libjxl has an older Butteraugli model: measured with 0.7.0, max-norm up to 0.92 % and
// 3-norm up to 1.19 % away from the reference, so 1.5 % (0.8.x is assumed to be no worse).
constexpr double ButteraugliTolerance() {
  return JPEGXL_NUMERIC_VERSION >= JPEGXL_COMPUTE_NUMERIC_VERSION(0, 9, 0) ? 1e-4 : 0.015;
}

// SSIMULACRA 2 tolerance against the reference column: the issue asks for 0.5 points; the
// reference README suggests 0.1 for a C++ port; measured < 5e-9 (see the file comment).
constexpr double kSsimulacra2Tolerance = 0.1;

TEST_CASE("ssimulacra2: identical images score exactly 100") {
  for (const auto& [w, h] :
       std::vector<std::pair<uint32_t, uint32_t>>{{8, 8}, {9, 17}, {64, 48}, {131, 70}}) {
    const Image image = Pattern(w, h, w + h);
    StatusOr<double> score = Ssimulacra2(image, image);
    REQUIRE(score.ok());
    CHECK(*score == 100.0);
  }
}

TEST_CASE("ssimulacra2: a distorted image scores below 100") {
  const Image a = Pattern(96, 80, 1);
  Image b = a;
  for (size_t i = 0; i < b.rgb.size(); i += 7) b.rgb[i] = static_cast<uint8_t>(b.rgb[i] ^ 0x10);
  StatusOr<double> score = Ssimulacra2(a, b);
  REQUIRE(score.ok());
  CHECK(std::isfinite(*score));
  CHECK(*score < 100.0);
}

TEST_CASE("ssimulacra2: rejects different sizes and images smaller than 8x8") {
  const Image a = Pattern(16, 16, 1);
  const Image b = Pattern(16, 15, 1);
  CHECK(Ssimulacra2(a, b).status().code() == StatusCode::kInvalidArgument);
  const Image small = Pattern(7, 8, 2);
  CHECK(Ssimulacra2(small, small).status().code() == StatusCode::kInvalidArgument);
  const Image narrow = Pattern(8, 7, 2);
  CHECK(Ssimulacra2(narrow, narrow).status().code() == StatusCode::kInvalidArgument);
  Image broken = a;
  broken.rgb.pop_back();
  CHECK(Ssimulacra2(a, broken).status().code() == StatusCode::kInvalidArgument);
}

TEST_CASE("butteraugli: identical images give 0; bad sizes are rejected") {
  const Image image = Pattern(40, 33, 3);
  StatusOr<ButteraugliResult> result = Butteraugli(image, image);
  REQUIRE_MESSAGE(result.ok(), result.status().message());
  CHECK(result->max_norm == 0.0);
  CHECK(result->norm3 == 0.0);
  const Image other = Pattern(40, 32, 3);
  CHECK(Butteraugli(image, other).status().code() == StatusCode::kInvalidArgument);
  CHECK(Butteraugli(Image{}, Image{}).status().code() == StatusCode::kInvalidArgument);
  // libjxl would report 0 ("identical") for images smaller than 8x8, so they are refused.
  const Image small = Pattern(7, 9, 4);
  CHECK(Butteraugli(small, small).status().code() == StatusCode::kInvalidArgument);
  const Image smallest = Pattern(8, 8, 4);
  Image changed = smallest;
  changed.rgb[5] = static_cast<uint8_t>(changed.rgb[5] + 60);
  StatusOr<ButteraugliResult> eight = Butteraugli(smallest, changed);
  REQUIRE(eight.ok());
  CHECK(eight->max_norm > 0.0);
}

TEST_CASE("golden pair: kodim01 crop vs its JPEG q30 crop") {
  const std::string dir = std::string(TOK1D_TEST_DATA_DIR) + "/metrics/";
  const Image reference = MustRead(dir + "kodim01-crop128.png");
  const Image distorted = MustRead(dir + "kodim01.jpeg-q30-crop128.png");
  REQUIRE(reference.width == 128);
  REQUIRE(reference.height == 128);

  StatusOr<double> score = Ssimulacra2(reference, distorted);
  REQUIRE(score.ok());
  CHECK(std::abs(*score - kGoldenSsimulacra2) <= kGoldenSsimulacra2Tolerance);

  StatusOr<ButteraugliResult> ba = Butteraugli(reference, distorted);
  REQUIRE_MESSAGE(ba.ok(), ba.status().message());
  MESSAGE(std::setprecision(10) << "golden pair: ssimulacra2 " << *score << ", butteraugli "
                                << ba->max_norm << ", 3-norm " << ba->norm3 << " (libjxl "
                                << JPEGXL_MAJOR_VERSION << "." << JPEGXL_MINOR_VERSION << "."
                                << JPEGXL_PATCH_VERSION << ")");
  CHECK(ba->max_norm > 0.0);
  CHECK(ba->norm3 > 0.0);
  CHECK(ba->norm3 <= ba->max_norm);
  if constexpr (kLibjxl07) {
    CHECK(std::abs(ba->max_norm - kGoldenButteraugliMax07) <= 1e-4 * kGoldenButteraugliMax07);
    CHECK(std::abs(ba->norm3 - kGoldenButteraugli3Norm07) <= 1e-4 * kGoldenButteraugli3Norm07);
  } else {
    CHECK(std::abs(ba->max_norm - kGoldenButteraugliMax07) <= 0.03 * kGoldenButteraugliMax07);
    CHECK(std::abs(ba->norm3 - kGoldenButteraugli3Norm07) <= 0.03 * kGoldenButteraugli3Norm07);
  }
}

struct ReferenceRow {
  std::string reference;
  std::string distorted;
  double ssimulacra2 = 0;
  double butteraugli_max = 0;
  double butteraugli_3norm = 0;
};

std::vector<std::string> SplitTabs(const std::string& line) {
  std::vector<std::string> fields;
  std::istringstream in(line);
  std::string field;
  while (std::getline(in, field, '\t')) fields.push_back(field);
  return fields;
}

// Reads scores.tsv, finding the columns by their header names.
std::vector<ReferenceRow> ReadScores(const std::string& path) {
  std::ifstream in(path);
  REQUIRE_MESSAGE(in.good(), "cannot open " << path);
  std::string line;
  REQUIRE(std::getline(in, line));
  const std::vector<std::string> header = SplitTabs(line);
  const auto column = [&](const std::string& name) {
    const auto it = std::find(header.begin(), header.end(), name);
    REQUIRE_MESSAGE(it != header.end(), path << " has no column " << name);
    return static_cast<size_t>(it - header.begin());
  };
  const size_t c_ref = column("reference");
  const size_t c_dist = column("distorted");
  const size_t c_s2 = column("ssimulacra2");
  const size_t c_max = column("butteraugli_max");
  const size_t c_3 = column("butteraugli_3norm");
  std::vector<ReferenceRow> rows;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    const std::vector<std::string> f = SplitTabs(line);
    REQUIRE(f.size() == header.size());
    rows.push_back(
        {f[c_ref], f[c_dist], std::stod(f[c_s2]), std::stod(f[c_max]), std::stod(f[c_3])});
  }
  return rows;
}

TEST_CASE("reference pairs: ssimulacra2 and butteraugli agree with libjxl's tools") {
  const std::filesystem::path shared = TOK1D_SHARED_DIR;
  const std::filesystem::path scores = shared / "metrics-reference" / "scores.tsv";
  if (shared.empty() || !std::filesystem::exists(scores)) {
    MESSAGE("skipped: no reference scores at '" << scores.string()
                                                << "' (TOK1D_SHARED_DIR not available)");
    return;
  }
  const std::vector<ReferenceRow> rows = ReadScores(scores.string());
  CHECK(!rows.empty());
  const double ba_tolerance = ButteraugliTolerance();

  double max_s2 = 0, max_ba = 0, max_ba_rel = 0, max_3 = 0, max_3_rel = 0;
  for (const ReferenceRow& row : rows) {
    CAPTURE(row.distorted);
    // Paths in the table are relative to the shared folder.
    const Image reference = MustRead((shared / row.reference).string());
    const Image distorted = MustRead((shared / row.distorted).string());

    StatusOr<double> s2 = Ssimulacra2(reference, distorted);
    REQUIRE(s2.ok());
    const double d_s2 = std::abs(*s2 - row.ssimulacra2);
    CHECK_MESSAGE(d_s2 <= kSsimulacra2Tolerance,
                  "ssimulacra2 " << *s2 << " vs reference " << row.ssimulacra2);
    max_s2 = std::max(max_s2, d_s2);

    StatusOr<ButteraugliResult> ba = Butteraugli(reference, distorted);
    REQUIRE_MESSAGE(ba.ok(), ba.status().message());
    const double d_max = std::abs(ba->max_norm - row.butteraugli_max);
    const double d_3 = std::abs(ba->norm3 - row.butteraugli_3norm);
    // The 3-norm column is printed with 6 decimals: allow its rounding.
    CHECK_MESSAGE(d_max <= ba_tolerance * row.butteraugli_max + 1e-9,
                  "butteraugli " << ba->max_norm << " vs reference " << row.butteraugli_max);
    CHECK_MESSAGE(d_3 <= ba_tolerance * row.butteraugli_3norm + 5e-7,
                  "butteraugli 3-norm " << ba->norm3 << " vs reference " << row.butteraugli_3norm);
    max_ba = std::max(max_ba, d_max);
    max_3 = std::max(max_3, d_3);
    if (row.butteraugli_max > 0) max_ba_rel = std::max(max_ba_rel, d_max / row.butteraugli_max);
    if (row.butteraugli_3norm > 0) max_3_rel = std::max(max_3_rel, d_3 / row.butteraugli_3norm);
  }
  MESSAGE(std::setprecision(4) << rows.size() << " reference pairs; max |deviation|: ssimulacra2 "
                               << max_s2 << ", butteraugli max-norm " << max_ba << " (relative "
                               << max_ba_rel << "), 3-norm " << max_3 << " (relative " << max_3_rel
                               << "); libjxl " << JPEGXL_MAJOR_VERSION << "."
                               << JPEGXL_MINOR_VERSION << "." << JPEGXL_PATCH_VERSION
                               << ", butteraugli tolerance " << ba_tolerance << " relative");
}

}  // namespace
}  // namespace tok1d

// FsqCodebook (common/fsq_codebook.h): token ↔ digits, codebook size, raw width, refinement
// values and offsets.
#include "common/fsq_codebook.h"

#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <vector>

namespace tok1d {
namespace {

TEST_CASE("FsqCodebook: levels, radices, size and raw width") {
  const std::vector<uint32_t> levels = {8, 5, 5, 5};
  const FsqCodebook codebook(levels);
  CHECK(codebook.dims() == 4);
  CHECK(codebook.levels() == levels);
  CHECK(codebook.level(1) == 5);
  CHECK(codebook.radix(0) == 1);
  CHECK(codebook.radix(1) == 8);
  CHECK(codebook.radix(2) == 40);
  CHECK(codebook.radix(3) == 200);
  CHECK(codebook.size() == 1000);
  CHECK(codebook.bits_per_token() == 10);  // 999 < 2^10
  CHECK(codebook.contains(999));
  CHECK_FALSE(codebook.contains(1000));
  CHECK(codebook.centre(0) == 4);
  CHECK(codebook.centre(1) == 2);

  CHECK(FsqCodebook().size() == 1);  // no dimensions: one token
  CHECK(FsqCodebook().bits_per_token() == 0);
  const std::vector<uint32_t> two = {2};
  CHECK(FsqCodebook(two).bits_per_token() == 1);
  const std::vector<uint32_t> power = {4, 4, 4};  // 64 tokens: 63 needs 6 bits
  CHECK(FsqCodebook(power).bits_per_token() == 6);
  const std::vector<uint32_t> odd = {3, 3, 3};  // 27 tokens: 26 needs 5 bits
  CHECK(FsqCodebook(odd).bits_per_token() == 5);
}

TEST_CASE("FsqCodebook: the largest codebook the format allows, 2^32 tokens") {
  const std::vector<uint32_t> levels(16, 4);  // 16 dimensions at the kFsqMaxDims limit: 4^16
  const FsqCodebook codebook(levels);
  CHECK(codebook.dims() == kFsqMaxDims);
  CHECK(codebook.size() == uint64_t{1} << 32);
  CHECK(codebook.bits_per_token() == 32);
  CHECK(codebook.contains(UINT32_MAX));
  std::vector<uint32_t> digits(codebook.dims());
  codebook.Digits(UINT32_MAX, digits);
  for (uint32_t digit : digits) CHECK(digit == 3);
  CHECK(codebook.Token(digits) == UINT32_MAX);
  CHECK(codebook.Digit(UINT32_MAX, 15) == 3);
  CHECK(codebook.radix(15) == uint32_t{1} << 30);
}

TEST_CASE("FsqCodebook: token ↔ digits, dimension 0 least significant") {
  const std::vector<uint32_t> levels = {7, 5, 3, 2};
  const FsqCodebook codebook(levels);
  // 3 + 7·(4 + 5·(1 + 3·1)) = 3 + 7·24 = 171.
  const std::vector<uint32_t> expected = {3, 4, 1, 1};
  std::vector<uint32_t> digits(codebook.dims());
  codebook.Digits(171, digits);
  CHECK(digits == expected);
  CHECK(codebook.Token(expected) == 171);
  for (uint32_t d = 0; d < codebook.dims(); ++d) CHECK(codebook.Digit(171, d) == expected[d]);
  CHECK(codebook.CentredDigit(171, 0) == 0);  // 3 − ⌊7/2⌋
  CHECK(codebook.CentredDigit(171, 1) == 2);  // 4 − ⌊5/2⌋
  CHECK(codebook.CentredDigit(171, 3) == 0);  // 1 − ⌊2/2⌋
  CHECK(codebook.CentredDigit(0, 1) == -2);

  // Every token of the codebook: digits in range, the round trip exact, ForEachDigit in order.
  for (uint32_t token = 0; token < codebook.size(); ++token) {
    codebook.Digits(token, digits);
    for (uint32_t d = 0; d < codebook.dims(); ++d) REQUIRE(digits[d] < levels[d]);
    REQUIRE(codebook.Token(digits) == token);
    uint32_t next = 0;
    codebook.ForEachDigit(token, [&](uint32_t d, uint32_t digit) {
      REQUIRE(d == next++);
      REQUIRE(digit == digits[d]);
    });
    REQUIRE(next == codebook.dims());
  }
}

TEST_CASE("FsqCodebook: equality is by levels") {
  const std::vector<uint32_t> a = {8, 5}, b = {5, 8};
  CHECK(FsqCodebook(a) == FsqCodebook(a));
  CHECK_FALSE(FsqCodebook(a) == FsqCodebook(b));
}

TEST_CASE(
    "FsqCodebook: RefinementValue picks the part of the cell; RefinementOffsets gives its centre") {
  const std::vector<uint32_t> levels = {5, 4};  // half widths 2 and 2; 4 has offset ½ already in b
  const FsqCodebook codebook(levels);
  CHECK(codebook.refinement_value_bits(2) == 4);
  CHECK(codebook.refinement_value_bits(8) == 16);
  // b = 1.3 → digit 3 (rounded 1), part ⌊(0.3 + ½)·4⌋ = 3; b = −1.9 → digit 0, part ⌊0.6·4⌋ = 2.
  const float bounded[2] = {1.3f, -1.9f};
  const uint32_t token = 3 + 5 * 0;
  const uint32_t value = codebook.RefinementValue(token, bounded, 2);
  CHECK(value == (3u | (2u << 2)));
  float offsets[2];
  codebook.RefinementOffsets(value, 2, offsets);
  CHECK(offsets[0] == 0.375f);
  CHECK(offsets[1] == 0.125f);
  // The centre is within 1/8 level of the value itself.
  CHECK(std::abs(1.0f + offsets[0] - bounded[0]) <= 0.125f);
  CHECK(std::abs(-2.0f + offsets[1] - bounded[1]) <= 0.125f);
}

TEST_CASE("FsqCodebook: refinement parts are clamped to the cell and offsets stay inside it") {
  const std::vector<uint32_t> levels = {3, 3, 3, 3};
  const FsqCodebook codebook(levels);
  const uint32_t token = codebook.Token(std::vector<uint32_t>{1, 1, 1, 1});  // all rounded to 0
  // Values at and beyond the cell's edges fall in its first or last part.
  const float bounded[4] = {-0.5f, 0.4999f, -0.75f, 0.9f};
  for (uint32_t bits = 1; bits <= 8; ++bits) {
    const uint32_t value = codebook.RefinementValue(token, bounded, bits);
    const uint32_t last = (1u << bits) - 1;
    CHECK((value & last) == 0);
    CHECK(((value >> bits) & last) == last);
    CHECK(((value >> (2 * bits)) & last) == 0);
    CHECK(((value >> (3 * bits)) & last) == last);
    if (bits < 8) CHECK((value >> codebook.refinement_value_bits(bits)) == 0u);
    float offsets[4];
    codebook.RefinementOffsets(value, bits, offsets);
    for (float offset : offsets) {
      CHECK(offset > -0.5f);
      CHECK(offset < 0.5f);
    }
    CHECK(offsets[0] == -offsets[1]);  // first and last parts, symmetric about the centre
  }
}

}  // namespace
}  // namespace tok1d

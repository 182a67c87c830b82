#include "common/fsq_codebook.h"

#include <algorithm>
#include <bit>
#include <cmath>

namespace tok1d {

FsqCodebook::FsqCodebook(std::span<const uint32_t> levels)
    : levels_(levels.begin(), levels.end()), radices_(levels.size()) {
  uint32_t radix = 1;
  for (size_t d = 0; d < levels_.size(); ++d) {
    radices_[d] = radix;
    radix *= levels_[d];
    size_ *= levels_[d];
  }
}

uint32_t FsqCodebook::bits_per_token() const {
  return size_ <= 1 ? 0 : static_cast<uint32_t>(std::bit_width(size_ - 1));
}

void FsqCodebook::Digits(uint32_t token, std::span<uint32_t> digits) const {
  ForEachDigit(token, [&](uint32_t d, uint32_t digit) { digits[d] = digit; });
}

uint32_t FsqCodebook::Token(std::span<const uint32_t> digits) const {
  uint32_t token = 0;
  for (uint32_t d = 0; d < dims(); ++d) token += digits[d] * radices_[d];
  return token;
}

bool FsqCodebook::OnStepGrid(uint32_t token, uint32_t step) const {
  if (step == 1) return true;
  bool on = true;
  ForEachDigit(token, [&](uint32_t d, uint32_t digit) {
    on = on && (digit > centre(d) ? digit - centre(d) : centre(d) - digit) % step == 0;
  });
  return on;
}

uint32_t FsqCodebook::StepDigit(float bounded, uint32_t d, uint32_t step) const {
  const auto s = static_cast<float>(step);
  // The multiples of the step that are levels: −below·s … above·s around the centre.
  const auto below = static_cast<float>(centre(d) / step);
  const auto above = static_cast<float>((levels_[d] - 1 - centre(d)) / step);
  const float multiple = std::clamp(std::round(bounded / s), -below, above);
  return static_cast<uint32_t>(static_cast<int32_t>(centre(d)) +
                               static_cast<int32_t>(multiple * s));
}

uint32_t FsqCodebook::RefinementValue(uint32_t token, const float* bounded, uint32_t bits,
                                      uint32_t step) const {
  const auto parts = static_cast<float>(1u << bits);
  const auto s = static_cast<float>(step);
  uint32_t value = 0;
  ForEachDigit(token, [&](uint32_t d, uint32_t digit) {
    const auto rounded = static_cast<float>(digit) - static_cast<float>(centre(d));
    // Which of the cell's 2^bits parts holds the value (models/tok1d_model.py refine_parts).
    const float part = std::floor(((bounded[d] - rounded) / s + 0.5f) * parts);
    const auto index = static_cast<uint32_t>(std::clamp(part, 0.0f, parts - 1.0f));
    value |= index << (bits * d);
  });
  return value;
}

void FsqCodebook::RefinementOffsets(uint32_t value, uint32_t bits, float* offsets,
                                    uint32_t step) const {
  const uint32_t mask = (1u << bits) - 1;
  const auto parts = static_cast<float>(1u << bits);
  const auto s = static_cast<float>(step);
  for (uint32_t d = 0; d < dims(); ++d) {
    offsets[d] = s * ((static_cast<float>((value >> (bits * d)) & mask) + 0.5f) / parts - 0.5f);
  }
}

}  // namespace tok1d

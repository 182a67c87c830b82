#include "codec/range_coder.h"

#include <algorithm>
#include <cassert>

namespace tok1d {
namespace {

// The range is renormalised (shifted by a byte) whenever it drops below 2^24, so it always
// holds at least 24 bits and range >> prob_bits keeps at least 8.
constexpr uint32_t kTopValue = uint32_t{1} << 24;
constexpr uint64_t kCarry = uint64_t{1} << 32;

// The value in [low, low + range) with the most trailing zero bits: a stream ends with it,
// less its zero bytes. Shifting low by 2^32 shifts the result by 2^32, so the decoder can
// recompute it from low mod 2^32.
uint64_t ShortestValueIn(uint64_t low, uint32_t range) {
  for (uint32_t zero_bits = 32;; --zero_bits) {
    const uint64_t mask = (uint64_t{1} << zero_bits) - 1;
    const uint64_t value = (low + mask) & ~mask;
    if (value < low + range) return value;
  }
}

}  // namespace

void RangeEncoder::ShiftLow() {
  // The byte at bits 24..31 of low is final unless a carry may still ripple into it, which
  // can only happen while it is 0xFF: such bytes wait in pending_ff_.
  if (low_ < 0xFF000000u || low_ >= kCarry) {
    const auto carry = static_cast<uint8_t>(low_ >> 32);
    if (first_byte_) {
      first_byte_ = false;  // LZMA's leading byte: always zero, the interval starts below 1
    } else {
      out_.push_back(static_cast<uint8_t>(cache_ + carry));
    }
    for (; pending_ff_ > 0; --pending_ff_) out_.push_back(static_cast<uint8_t>(0xFF + carry));
    cache_ = static_cast<uint8_t>(low_ >> 24);
  } else {
    ++pending_ff_;
  }
  low_ = (low_ & 0x00FFFFFF) << 8;
}

void RangeEncoder::Encode(uint32_t start, uint32_t freq) {
  assert(freq >= 1 && start + freq <= (uint32_t{1} << prob_bits_));
  const uint32_t step = range_ >> prob_bits_;
  low_ += uint64_t{step} * start;
  range_ = step * freq;
  while (range_ < kTopValue) {
    range_ <<= 8;
    ShiftLow();
  }
}

std::vector<uint8_t> RangeEncoder::Finish() {
  low_ = ShortestValueIn(low_, range_);
  for (int i = 0; i < 5; ++i) ShiftLow();  // low's four bytes, then the cached one
  while (!out_.empty() && out_.back() == 0) out_.pop_back();
  return std::move(out_);
}

RangeDecoder::RangeDecoder(std::span<const uint8_t> bytes, uint32_t prob_bits)
    : bytes_(bytes), prob_bits_(prob_bits) {
  for (int i = 0; i < 4; ++i) code_ = (code_ << 8) | NextByte();
}

bool RangeDecoder::Target(uint32_t* position) {
  step_ = range_ >> prob_bits_;
  const uint32_t value = code_ / step_;
  if (value >> prob_bits_ != 0) return false;
  *position = value;
  return true;
}

void RangeDecoder::Consume(uint32_t start, uint32_t freq) {
  code_ -= step_ * start;
  range_ = step_ * freq;
  while (range_ < kTopValue) {
    range_ <<= 8;
    code_ = (code_ << 8) | NextByte();
  }
}

bool RangeDecoder::EndedCleanly() const {
  if (next_ < bytes_.size() || (!bytes_.empty() && bytes_.back() == 0)) return false;
  // The last four bytes read hold the stream's final value V (mod 2^32) and code_ is V - low:
  // V must be the value the encoder ends with, so any other tail is refused.
  uint32_t value = 0;
  for (size_t i = next_ - 4; i < next_; ++i)
    value = (value << 8) | (i < bytes_.size() ? bytes_[i] : 0);
  return static_cast<uint32_t>(ShortestValueIn(value - code_, range_)) == value;
}

void EncodeSymbol(RangeEncoder& encoder, std::span<const uint32_t> cum, uint32_t symbol) {
  encoder.Encode(cum[symbol], cum[symbol + 1] - cum[symbol]);
}

bool DecodeSymbol(RangeDecoder& decoder, std::span<const uint32_t> cum, uint32_t* symbol) {
  uint32_t position = 0;
  if (!decoder.Target(&position)) return false;
  // The first boundary above the position ends the symbol's interval; cum.back() is the
  // total, so one exists. Symbols of frequency 0 are empty intervals and never found.
  const auto above = std::upper_bound(cum.begin() + 1, cum.end(), position);
  const auto s = static_cast<uint32_t>(above - cum.begin() - 1);
  decoder.Consume(cum[s], cum[s + 1] - cum[s]);
  *symbol = s;
  return true;
}

}  // namespace tok1d

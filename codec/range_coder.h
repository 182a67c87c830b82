// A byte-oriented range coder over static frequency tables (integer-only, deterministic).
//
// Frequencies of each distribution sum to 2^prob_bits (kMinProbBits … kMaxProbBits), every
// codable symbol has frequency >= 1. The encoder is LZMA's (32-bit range, carry propagation
// through a cached byte and a run of 0xFF bytes) with two changes that matter for short
// streams: the always-zero first byte is not written, and the stream ends with the shortest
// byte string that still identifies the final interval, trailing zero bytes dropped (the
// decoder reads zeros past the end). That makes the cost of ending a stream about one byte,
// where rANS needs its whole 4-byte state: streams here are a token layer, tens of bytes.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

namespace tok1d {

inline constexpr uint32_t kMinProbBits = 8;
inline constexpr uint32_t kMaxProbBits = 16;

class RangeEncoder {
 public:
  explicit RangeEncoder(uint32_t prob_bits) : prob_bits_(prob_bits) {}

  // Codes the symbol occupying [start, start + freq) of the 2^prob_bits total; freq >= 1.
  void Encode(uint32_t start, uint32_t freq);
  // Ends the stream and returns it; the encoder must not be used afterwards.
  std::vector<uint8_t> Finish();

 private:
  void ShiftLow();

  uint32_t prob_bits_;
  uint64_t low_ = 0;  // bit 32 is a carry into the bytes not yet written
  uint32_t range_ = 0xFFFFFFFF;
  uint8_t cache_ = 0;        // the last byte not yet written (a carry may still change it)
  uint64_t pending_ff_ = 0;  // 0xFF bytes after cache_, waiting for the carry as well
  bool first_byte_ = true;   // the first cache_ is LZMA's always-zero byte: never written
  std::vector<uint8_t> out_;
};

class RangeDecoder {
 public:
  RangeDecoder(std::span<const uint8_t> bytes, uint32_t prob_bits);

  // The position in [0, 2^prob_bits) of the next symbol; the caller finds the symbol whose
  // [start, start + freq) contains it and calls Consume. Returns false when the position is
  // outside the total (only a damaged stream does that).
  bool Target(uint32_t* position);
  void Consume(uint32_t start, uint32_t freq);
  // Call after the last symbol: true when the stream is exactly what the encoder writes for
  // the symbols decoded (every byte read, no trailing zero, the encoder's final value). So a
  // damaged stream is refused or decodes to other symbols, never silently to the same ones.
  bool EndedCleanly() const;

 private:
  // Bytes past the end read as zeros: the encoder drops trailing zeros.
  uint8_t NextByte() {
    const uint8_t byte = next_ < bytes_.size() ? bytes_[next_] : 0;
    ++next_;
    return byte;
  }

  std::span<const uint8_t> bytes_;
  size_t next_ = 0;
  uint32_t prob_bits_;
  uint32_t code_ = 0;
  uint32_t range_ = 0xFFFFFFFF;
  uint32_t step_ = 0;  // range_ >> prob_bits_ of the symbol being decoded
};

// A symbol distribution as cumulative frequencies: symbol s occupies [cum[s], cum[s + 1]),
// cum[0] == 0, cum.back() == 2^prob_bits, strictly increasing over codable symbols (symbols
// with cum[s] == cum[s + 1] cannot be coded).
void EncodeSymbol(RangeEncoder& encoder, std::span<const uint32_t> cum, uint32_t symbol);
// False on a damaged stream.
bool DecodeSymbol(RangeDecoder& decoder, std::span<const uint32_t> cum, uint32_t* symbol);

}  // namespace tok1d

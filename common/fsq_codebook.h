// Token arithmetic of an FSQ (finite scalar quantization) codebook, the one place it is written.
//
// A token is a mixed-radix number: dimension d of the quantizer contributes one digit in
// 0 .. L_d − 1, dimension 0 least significant, so token = Σ_d digit_d · Π_{e<d} L_e and the
// codebook has Π_d L_d tokens (container/FORMAT.md, "Tokens"; models/tok1d_model.py FSQ).
// A refinement value (FORMAT.md, REFN chunk) packs, B bits per dimension, dimension 0 least
// significant, which of the 2^B equal parts of its quantization cell each FSQ value lies in.
//
// The container, the entropy coder, the codec and the kernels' tables (kernels/fsq_table.h)
// all use this type; the format's rules on it (1..kFsqMaxDims dimensions, levels in
// kFsqMinLevel..kFsqMaxLevel, at most 2^32 tokens) are checked by the container and the model
// loader, each with its own messages.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

namespace tok1d {

inline constexpr uint32_t kFsqMaxDims = 16;    // dimensions of a codebook (FORMAT.md, HEAD)
inline constexpr uint32_t kFsqMinLevel = 2;    // levels of one dimension, at least
inline constexpr uint32_t kFsqMaxLevel = 255;  // and at most (the container stores them as u8)

class FsqCodebook {
 public:
  FsqCodebook() = default;  // no dimensions: one token, 0
  // `levels` per dimension, first = least significant; each must be at least 1 (not checked).
  explicit FsqCodebook(std::span<const uint32_t> levels);

  uint32_t dims() const { return static_cast<uint32_t>(levels_.size()); }
  const std::vector<uint32_t>& levels() const { return levels_; }
  uint32_t level(uint32_t d) const { return levels_[d]; }
  // ⌊L_d / 2⌋: the digit of FSQ value 0, the middle of dimension d's levels.
  uint32_t centre(uint32_t d) const { return levels_[d] / 2; }
  // Π_{e<d} L_e (modulo 2^32): the weight of digit d in a token.
  uint32_t radix(uint32_t d) const { return radices_[d]; }
  // Π_d L_d, the number of tokens (modulo 2^64; exact for levels the format allows).
  uint64_t size() const { return size_; }
  // ceil(log2(size())): the width of a token in fixed-width (raw) coding; 0 for one token.
  uint32_t bits_per_token() const;
  bool contains(uint64_t token) const { return token < size_; }

  // Digit d of `token`: (token / radix(d)) mod L_d.
  uint32_t Digit(uint32_t token, uint32_t d) const { return token / radices_[d] % levels_[d]; }
  // Calls visit(d, digit) for d = 0 .. dims()−1, least significant first.
  template <typename Visit>
  void ForEachDigit(uint32_t token, Visit&& visit) const {
    for (uint32_t d = 0; d < dims(); ++d) {
      visit(d, token % levels_[d]);
      token /= levels_[d];
    }
  }
  // token → digits (digits.size() == dims()).
  void Digits(uint32_t token, std::span<uint32_t> digits) const;
  // digits → token (digits.size() == dims(), digits[d] < L_d).
  uint32_t Token(std::span<const uint32_t> digits) const;
  // Digit d centred on the middle of its levels: digit − ⌊L_d / 2⌋ (the rounded FSQ value).
  int32_t CentredDigit(uint32_t token, uint32_t d) const {
    return static_cast<int32_t>(Digit(token, d)) - static_cast<int32_t>(centre(d));
  }

  // ---- quantiser steps (FORMAT.md, QSTP chunk) ----
  // Whether every digit of `token` is a multiple of `step` levels from its centre.
  bool OnStepGrid(uint32_t token, uint32_t step) const;
  // The digit of dimension d for FSQ value `bounded` (in levels from the centre, before
  // rounding) rounded to the nearest multiple of `step` that is a level.
  uint32_t StepDigit(float bounded, uint32_t d, uint32_t step) const;

  // ---- refinement (FORMAT.md, REFN chunk) ----
  // The bits of one refinement value: `bits` per dimension.
  uint32_t refinement_value_bits(uint32_t bits) const { return bits * dims(); }
  // Token `token`'s refinement value from its FSQ values before rounding, bounded[d] for each
  // dimension: per dimension, which of the cell's 2^bits parts holds the value
  // (models/tok1d_model.py refine_parts). A token quantised with step s has cells s levels wide.
  uint32_t RefinementValue(uint32_t token, const float* bounded, uint32_t bits,
                           uint32_t step = 1) const;
  // The inverse as the decoder uses it: per dimension (dims() of them), the centre of the
  // value's part of its cell, as an offset in levels from the rounded value (−s/2 < offset < s/2).
  void RefinementOffsets(uint32_t value, uint32_t bits, float* offsets, uint32_t step = 1) const;

  bool operator==(const FsqCodebook& other) const { return levels_ == other.levels_; }

 private:
  std::vector<uint32_t> levels_;
  std::vector<uint32_t> radices_;
  uint64_t size_ = 1;
};

}  // namespace tok1d

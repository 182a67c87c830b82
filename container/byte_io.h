// Little-endian fields and LEB128 varints as the .t1d format writes them (FORMAT.md,
// "Conventions"). Internal to container/.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

namespace tok1d::t1d_internal {

inline constexpr size_t kMaxVarintSize = 5;  // LEB128 of a value below 2^32

inline size_t VarintSize(uint64_t v) {
  size_t size = 1;
  for (; v >= 0x80; v >>= 7) ++size;
  return size;
}

class ByteWriter {
 public:
  explicit ByteWriter(std::vector<uint8_t>* out) : out_(out) {}
  void U8(uint32_t v) { out_->push_back(static_cast<uint8_t>(v)); }
  void U16(uint32_t v) { U8(v), U8(v >> 8); }
  void U32(uint32_t v) { U16(v), U16(v >> 16); }
  void Bytes(std::span<const uint8_t> b) { out_->insert(out_->end(), b.begin(), b.end()); }
  void Chars(std::string_view s) { out_->insert(out_->end(), s.begin(), s.end()); }
  // LEB128: 7 bits per byte, least significant group first, bit 7 set on all but the last.
  void Varint(uint64_t v) {
    for (; v >= 0x80; v >>= 7) U8(static_cast<uint32_t>(v & 0x7F) | 0x80);
    U8(static_cast<uint32_t>(v));
  }

 private:
  std::vector<uint8_t>* out_;
};

// Reads fields in order; any read past the end sets overrun() and yields zeros.
class ByteReader {
 public:
  explicit ByteReader(std::span<const uint8_t> bytes) : bytes_(bytes) {}
  uint32_t U8() { return Take(1) ? bytes_[pos_ - 1] : 0; }
  uint32_t U16() { return Take(2) ? Le(2) : 0; }
  uint32_t U32() { return Take(4) ? Le(4) : 0; }
  std::span<const uint8_t> Bytes(size_t n) {
    return Take(n) ? bytes_.subspan(pos_ - n, n) : std::span<const uint8_t>();
  }
  // A LEB128 value as FORMAT.md allows it: below 2^32 in at most 5 bytes, minimal (a
  // multi-byte value does not end in a zero byte). False if malformed; overrun() if cut.
  bool Varint(uint32_t* value) {
    uint64_t v = 0;
    for (size_t i = 0; i < kMaxVarintSize; ++i) {
      const uint32_t byte = U8();
      if (overrun_) return false;
      v |= uint64_t{byte & 0x7F} << (7 * i);
      if ((byte & 0x80) == 0) {
        if ((i > 0 && byte == 0) || v > UINT32_MAX) return false;
        *value = static_cast<uint32_t>(v);
        return true;
      }
    }
    return false;  // a sixth byte
  }
  size_t remaining() const { return bytes_.size() - pos_; }
  bool overrun() const { return overrun_; }

 private:
  bool Take(size_t n) {
    if (overrun_ || n > remaining()) {
      overrun_ = true;
      return false;
    }
    pos_ += n;
    return true;
  }
  uint32_t Le(size_t n) const {
    uint32_t v = 0;
    for (size_t i = 0; i < n; ++i) v |= uint32_t{bytes_[pos_ - n + i]} << (8 * i);
    return v;
  }

  std::span<const uint8_t> bytes_;
  size_t pos_ = 0;
  bool overrun_ = false;
};

}  // namespace tok1d::t1d_internal

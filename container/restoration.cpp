// The rstr chunk: bytes and rules (FORMAT.md, "rstr chunk").
#include "container/restoration.h"

#include <xxhash.h>

#include <algorithm>
#include <bit>
#include <string>

#include "container/byte_io.h"
#include "container/chunks.h"

namespace tok1d {

size_t Restoration::used() const {
  return static_cast<size_t>(
      std::count_if(tiles.begin(), tiles.end(), [](const TileRestoration& t) { return t.used; }));
}

namespace t1d_internal {
namespace {

constexpr size_t kFixedFields = 4 + 5;  // fingerprint, method, steps, orders
constexpr uint32_t kMaxOrder = 15;
constexpr size_t kValuesPerTile = 12;

uint32_t ZigZag(int32_t v) {
  return v >= 0 ? static_cast<uint32_t>(v) * 2 : static_cast<uint32_t>(-(v + 1)) * 2 + 1;
}
int32_t UnZigZag(uint32_t u) {
  return (u & 1) != 0 ? -static_cast<int32_t>(u >> 1) - 1 : static_cast<int32_t>(u >> 1);
}

// Bits LSB first within each byte.
class BitWriter {
 public:
  explicit BitWriter(std::vector<uint8_t>* out) : out_(out) {}
  void Bit(uint32_t bit) {
    if (used_ == 0) out_->push_back(0);
    out_->back() |= static_cast<uint8_t>((bit & 1) << used_);
    used_ = (used_ + 1) & 7;
  }
  // Exp-Golomb of order k: n + 2^k in binary (most significant bit first) after as many zeros
  // as it has bits beyond k + 1.
  void ExpGolomb(uint32_t n, uint32_t k) {
    const uint64_t m = uint64_t{n} + (uint64_t{1} << k);
    const int width = static_cast<int>(std::bit_width(m));
    for (int i = 0; i < width - static_cast<int>(k) - 1; ++i) Bit(0);
    for (int i = width - 1; i >= 0; --i) Bit(static_cast<uint32_t>(m >> i) & 1);
  }

 private:
  std::vector<uint8_t>* out_;
  uint32_t used_ = 0;
};

class BitReader {
 public:
  explicit BitReader(std::span<const uint8_t> bytes) : bytes_(bytes) {}
  bool Bit(uint32_t* bit) {
    if (pos_ >= bytes_.size() * 8) return false;
    *bit = (bytes_[pos_ / 8] >> (pos_ % 8)) & 1;
    ++pos_;
    return true;
  }
  bool ExpGolomb(uint32_t k, uint32_t* n) {
    uint32_t zeros = 0, bit = 0;
    while (true) {
      if (!Bit(&bit)) return false;
      if (bit == 1) break;
      if (++zeros > 32) return false;
    }
    uint64_t m = 1;
    for (uint32_t i = 0; i < zeros + k; ++i) {
      if (!Bit(&bit)) return false;
      m = (m << 1) | bit;
    }
    const uint64_t value = m - (uint64_t{1} << k);
    if (value > 2 * uint64_t{kRestorationMaxValue}) return false;
    *n = static_cast<uint32_t>(value);
    return true;
  }
  // The rest of the last byte is zero padding and nothing follows it.
  bool AtPaddedEnd() const {
    if ((pos_ + 7) / 8 != bytes_.size()) return false;
    return pos_ % 8 == 0 || (bytes_.back() >> (pos_ % 8)) == 0;
  }

 private:
  std::span<const uint8_t> bytes_;
  size_t pos_ = 0;
};

uint64_t ExpGolombBits(uint32_t n, uint32_t k) {
  const uint64_t m = uint64_t{n} + (uint64_t{1} << k);
  return 2 * static_cast<uint64_t>(std::bit_width(m)) - k - 1;
}

// The order that codes one value group (the offsets or the matrix values) of the used maps in
// the fewest bits.
template <size_t N>
uint32_t BestOrder(const Restoration& restoration, std::array<int32_t, N> TileRestoration::*group) {
  uint32_t best = 0;
  uint64_t best_bits = UINT64_MAX;
  for (uint32_t k = 0; k <= kMaxOrder; ++k) {
    uint64_t bits = 0;
    for (const TileRestoration& tile : restoration.tiles) {
      if (!tile.used) continue;
      for (int32_t v : tile.*group) bits += ExpGolombBits(ZigZag(v), k);
    }
    if (bits < best_bits) best = k, best_bits = bits;
  }
  return best;
}

bool InRange(std::span<const int32_t> values) {
  return std::all_of(values.begin(), values.end(), [](int32_t v) {
    return v >= -kRestorationMaxValue && v <= kRestorationMaxValue;
  });
}

}  // namespace

uint32_t CountsFingerprint(const T1dHeader& header) {
  std::vector<uint8_t> bytes;
  ByteWriter writer(&bytes);
  for (uint32_t count : header.layers_per_tile) writer.U32(count);
  return static_cast<uint32_t>(XXH64(bytes.data(), bytes.size(), 0));
}

Status CheckRestoration(const Restoration& restoration, const T1dHeader& header) {
  if (restoration.tiles.empty()) return OkStatus();
  if (restoration.tiles.size() != header.tile_count()) {
    return InvalidArgumentError("restoration maps for " + std::to_string(restoration.tiles.size()) +
                                " tiles, but the grid has " + std::to_string(header.tile_count()));
  }
  if (restoration.offset_step == 0 || restoration.matrix_shift > kRestorationMaxShift) {
    return InvalidArgumentError("restoration steps out of range");
  }
  for (const TileRestoration& tile : restoration.tiles) {
    if (!InRange(tile.offset) || !InRange(tile.matrix)) {
      return InvalidArgumentError("restoration value out of range");
    }
  }
  return OkStatus();
}

std::vector<uint8_t> SerializeRestoration(const Restoration& restoration, const T1dHeader& header) {
  std::vector<uint8_t> data;
  ByteWriter writer(&data);
  const uint32_t order_offset = BestOrder(restoration, &TileRestoration::offset);
  const uint32_t order_matrix = BestOrder(restoration, &TileRestoration::matrix);
  writer.U32(CountsFingerprint(header));
  writer.U8(kRestorationMethodAffine);
  writer.U8(restoration.offset_step);
  writer.U8(restoration.matrix_shift);
  writer.U8(order_offset);
  writer.U8(order_matrix);
  BitWriter bits(&data);
  for (const TileRestoration& tile : restoration.tiles) {
    bits.Bit(tile.used ? 1 : 0);
    if (!tile.used) continue;
    for (int32_t v : tile.offset) bits.ExpGolomb(ZigZag(v), order_offset);
    for (int32_t v : tile.matrix) bits.ExpGolomb(ZigZag(v), order_matrix);
  }
  return data;
}

StatusOr<Restoration> ParseRestoration(std::span<const uint8_t> data, const T1dHeader& header) {
  if (data.size() < kFixedFields) return CorruptError("restoration chunk too short");
  ByteReader reader(data);
  const uint32_t fingerprint = reader.U32();
  const uint32_t method = reader.U8();
  Restoration restoration;
  restoration.offset_step = static_cast<uint8_t>(reader.U8());
  restoration.matrix_shift = static_cast<uint8_t>(reader.U8());
  const uint32_t order_offset = reader.U8(), order_matrix = reader.U8();
  if (method != kRestorationMethodAffine) {
    return UnsupportedError("restoration method " + std::to_string(method) + " is unknown");
  }
  if (restoration.offset_step == 0 || restoration.matrix_shift > kRestorationMaxShift ||
      order_offset > kMaxOrder || order_matrix > kMaxOrder) {
    return CorruptError("restoration chunk has a step or order out of range");
  }
  if (fingerprint != CountsFingerprint(header)) {
    return CorruptError("restoration chunk was fitted for other tile counts");
  }
  BitReader bits(data.subspan(kFixedFields));
  restoration.tiles.resize(header.tile_count());
  for (TileRestoration& tile : restoration.tiles) {
    uint32_t used = 0, n = 0;
    if (!bits.Bit(&used)) return CorruptError("restoration chunk ends early");
    tile.used = used != 0;
    if (!tile.used) continue;
    for (size_t i = 0; i < kValuesPerTile; ++i) {
      if (!bits.ExpGolomb(i < 3 ? order_offset : order_matrix, &n)) {
        return CorruptError("restoration chunk ends early or holds a value out of range");
      }
      const int32_t v = UnZigZag(n);
      if (v < -kRestorationMaxValue || v > kRestorationMaxValue) {
        return CorruptError("restoration chunk holds a value out of range");
      }
      (i < 3 ? tile.offset[i] : tile.matrix[i - 3]) = v;
    }
  }
  if (!bits.AtPaddedEnd()) return CorruptError("restoration chunk has bytes after its maps");
  return restoration;
}

Restoration ReadRestoration(std::span<const ChunkView> extras, const T1dHeader& header,
                            std::vector<std::string>* warnings) {
  for (const ChunkView& chunk : extras) {
    if (chunk.type != kRestorationType) continue;
    StatusOr<Restoration> parsed = ParseRestoration(chunk.data, header);
    if (parsed.ok()) return std::move(parsed).value();
    if (warnings != nullptr) {
      warnings->push_back("colour restoration not used: " + parsed.status().message());
    }
    return {};
  }
  return {};
}

void TrimRestoration(const T1dHeader& header, std::span<const uint32_t> counts,
                     Restoration* restoration) {
  if (restoration->tiles.size() != counts.size()) return;
  for (size_t t = 0; t < counts.size(); ++t) {
    if (counts[t] != header.layers_per_tile[t]) restoration->tiles[t] = TileRestoration{};
  }
  if (!restoration->any()) restoration->tiles.clear();
}

}  // namespace t1d_internal

uint64_t RestorationTileBits(const TileRestoration& tile, uint32_t order_offset,
                             uint32_t order_matrix) {
  if (!tile.used) return 1;
  uint64_t bits = 1;
  for (int32_t v : tile.offset)
    bits += t1d_internal::ExpGolombBits(t1d_internal::ZigZag(v), order_offset);
  for (int32_t v : tile.matrix)
    bits += t1d_internal::ExpGolombBits(t1d_internal::ZigZag(v), order_matrix);
  return bits;
}

}  // namespace tok1d

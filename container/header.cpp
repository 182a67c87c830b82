// HEAD and REFN: serialization, parsing and the format's rules on their values; T1dHeader's
// derived quantities.
#include "container/header.h"

#include <algorithm>
#include <functional>
#include <string>

#include "common/fsq_codebook.h"
#include "container/byte_io.h"

namespace tok1d {
namespace t1d_internal {
namespace {

constexpr uint8_t kAlphaCompositedFlag = 0x01;
constexpr uint8_t kCountsUniform = 0;
constexpr uint8_t kCountsPerTile = 1;
constexpr uint8_t kCountsPalette = kCountsPaletteMode;
constexpr size_t kMaxPaletteSize = 255;
constexpr uint64_t kTileAreaFactor = 4;  // whole tiles may cover 4x the pixel limit

uint32_t Ceil(uint32_t a, uint32_t b) { return static_cast<uint32_t>((uint64_t{a} + b - 1) / b); }

// Image size, tiles and the reader limits: checked before anything is sized by the tile count.
Status CheckGeometry(const T1dHeader& h, uint64_t max_pixels) {
  TOK1D_RETURN_IF_ERROR(CheckPixelLimit(h.width, h.height, max_pixels));
  if (h.tile_size < kT1dMinTileSize || h.tile_size > kT1dMaxTileSize) {
    return CorruptError("tile size " + std::to_string(h.tile_size) + " is outside " +
                        std::to_string(kT1dMinTileSize) + ".." + std::to_string(kT1dMaxTileSize));
  }
  if (h.tile_cols != Ceil(h.width, h.tile_size) || h.tile_rows != Ceil(h.height, h.tile_size)) {
    return CorruptError("tile grid " + std::to_string(h.tile_cols) + "x" +
                        std::to_string(h.tile_rows) + " does not fit a " + std::to_string(h.width) +
                        "x" + std::to_string(h.height) + " image in tiles of " +
                        std::to_string(h.tile_size));
  }
  if (h.tile_count() > UINT32_MAX) return TooLargeError("image has more than 2^32 tiles");
  // Each padded side is below 2^33, so only their product can overflow.
  const uint64_t padded_width = uint64_t{h.tile_cols} * h.tile_size;
  const uint64_t padded_height = uint64_t{h.tile_rows} * h.tile_size;
  const bool area_overflows = padded_width > UINT64_MAX / padded_height;
  if (max_pixels <= UINT64_MAX / kTileAreaFactor &&
      (area_overflows || padded_width * padded_height > kTileAreaFactor * max_pixels)) {
    return TooLargeError("whole tiles cover " + std::to_string(padded_width) + "x" +
                         std::to_string(padded_height) + " pixels, over 4x the pixel limit of " +
                         std::to_string(max_pixels));
  }
  return OkStatus();
}

// Everything else FORMAT.md requires of HEAD values.
Status CheckModelAndCounts(const T1dHeader& h) {
  if (!h.alpha_composited && h.background != std::array<uint8_t, 3>{}) {
    return CorruptError("background colour is set but alpha was not composited");
  }
  if (h.model.name.empty() || h.model.name.size() > 255 ||
      !std::all_of(h.model.name.begin(), h.model.name.end(),
                   [](char c) { return c >= 0x20 && c <= 0x7E; })) {
    return CorruptError("model name must be 1..255 printable ASCII characters");
  }
  if (h.fsq_levels.empty() || h.fsq_levels.size() > kFsqMaxDims) {
    return CorruptError("FSQ has " + std::to_string(h.fsq_levels.size()) + " dimensions; 1.." +
                        std::to_string(kFsqMaxDims) + " are allowed");
  }
  uint64_t codebook = 1;  // checked as it grows: FsqCodebook::size() is modulo 2^64
  for (uint32_t level : h.fsq_levels) {
    if (level < kFsqMinLevel || level > kFsqMaxLevel) {
      return CorruptError("FSQ level " + std::to_string(level) + " is outside " +
                          std::to_string(kFsqMinLevel) + ".." + std::to_string(kFsqMaxLevel));
    }
    codebook *= level;
    if (codebook > (uint64_t{1} << 32)) {
      return CorruptError("FSQ codebook is larger than 2^32 tokens");
    }
  }
  if (h.max_tokens < 1 || h.max_tokens > UINT16_MAX) {
    return CorruptError("max tokens per tile " + std::to_string(h.max_tokens) +
                        " is outside 1..65535");
  }
  if (h.major_version != kT1dMajorVersion) {
    return UnsupportedError("cannot write format version " + std::to_string(h.major_version));
  }
  if (!h.head_extension.empty() && h.minor_version <= kT1dMinorVersion) {
    return CorruptError("HEAD extension bytes need a minor version above " +
                        std::to_string(kT1dMinorVersion));
  }
  return OkStatus();
}

bool AllEqual(std::span<const uint32_t> v) {
  return std::adjacent_find(v.begin(), v.end(), std::not_equal_to<>()) == v.end();
}

// The distinct counts, increasing: mode 2's palette.
std::vector<uint32_t> Palette(std::span<const uint32_t> counts) {
  std::vector<uint32_t> palette(counts.begin(), counts.end());
  std::sort(palette.begin(), palette.end());
  palette.erase(std::unique(palette.begin(), palette.end()), palette.end());
  return palette;
}

// Bits of a tile's index into a palette of n counts (n >= 2): ⌈log2 n⌉.
uint32_t IndexBits(size_t n) {
  uint32_t bits = 1;
  while ((size_t{1} << bits) < n) ++bits;
  return bits;
}

// How HEAD writes a set of layer counts: the mode, mode 2's palette, and the bytes after
// counts_mode. One place decides, so the size the search prices is the size written.
struct CountsEncoding {
  uint8_t mode = kCountsUniform;
  std::vector<uint32_t> palette;  // mode 2 only
  size_t bytes = 2;
};

CountsEncoding EncodeCounts(std::span<const uint32_t> counts) {
  CountsEncoding encoding;
  if (AllEqual(counts)) return encoding;
  encoding.mode = kCountsPerTile;
  encoding.bytes = 2 * counts.size();
  std::vector<uint32_t> palette = Palette(counts);
  const size_t palette_bytes =
      1 + 2 * palette.size() + (counts.size() * IndexBits(palette.size()) + 7) / 8;
  if (palette.size() <= kMaxPaletteSize && palette_bytes < encoding.bytes) {
    encoding = {kCountsPalette, std::move(palette), palette_bytes};
  }
  return encoding;
}

// Mode 2's per-tile indices, MSB first, padded with zero bits to a whole byte.
void WritePaletteCounts(std::span<const uint32_t> counts, std::span<const uint32_t> palette,
                        ByteWriter* w) {
  const uint32_t bits = IndexBits(palette.size());
  w->U8(static_cast<uint32_t>(palette.size()));
  for (uint32_t count : palette) w->U16(count);
  uint32_t pending = 0, pending_bits = 0;
  for (uint32_t count : counts) {
    const auto index = std::lower_bound(palette.begin(), palette.end(), count) - palette.begin();
    pending = (pending << bits) | static_cast<uint32_t>(index);
    for (pending_bits += bits; pending_bits >= 8; pending_bits -= 8) {
      w->U8(pending >> (pending_bits - 8));
    }
    pending &= (1u << pending_bits) - 1;
  }
  if (pending_bits > 0) w->U8(pending << (8 - pending_bits));
}

Status ReadPaletteCounts(ByteReader& r, size_t tiles, std::vector<uint32_t>* counts) {
  const size_t n = r.U8();
  if (r.overrun()) return CorruptError("HEAD chunk is too short for its tile counts");
  if (n < 2)
    return CorruptError("a palette of tile counts needs 2 or more counts, has " +
                        std::to_string(n));
  std::vector<uint32_t> palette(n);
  for (uint32_t& count : palette) count = r.U16();
  const uint32_t bits = IndexBits(n);
  if (r.overrun() || r.remaining() < (tiles * bits + 7) / 8) {
    return CorruptError("HEAD chunk is too short for its tile counts");
  }
  if (std::adjacent_find(palette.begin(), palette.end(), std::greater_equal<>()) != palette.end()) {
    return CorruptError("the palette of tile counts is not strictly increasing");
  }
  counts->resize(tiles);
  uint32_t pending = 0, pending_bits = 0;
  for (uint32_t& count : *counts) {
    for (; pending_bits < bits; pending_bits += 8) pending = (pending << 8) | r.U8();
    const uint32_t index = (pending >> (pending_bits - bits)) & ((1u << bits) - 1);
    pending_bits -= bits;
    pending &= (1u << pending_bits) - 1;
    if (index >= n) {
      return CorruptError("tile count index " + std::to_string(index) + " is outside the " +
                          std::to_string(n) + "-count palette");
    }
    count = palette[index];
  }
  if (pending != 0) return CorruptError("padding bits after the tile counts are set");
  return OkStatus();
}

}  // namespace

uint8_t CountsMode(std::span<const uint32_t> counts) { return EncodeCounts(counts).mode; }

Status CheckCounts(const T1dHeader& h) {
  TOK1D_RETURN_IF_ERROR(
      CheckRefinement(h.refinement, h.max_tokens, static_cast<uint32_t>(h.fsq_levels.size())));
  if (h.layers_per_tile.size() != h.tile_count()) {
    return CorruptError("there are " + std::to_string(h.layers_per_tile.size()) +
                        " layer counts for " + std::to_string(h.tile_count()) + " tiles");
  }
  for (uint32_t count : h.layers_per_tile) {
    if (count > h.max_layers()) {
      return CorruptError("a tile keeps " + std::to_string(count) + " layers, more than the " +
                          std::to_string(h.max_layers()) + " the model's " +
                          std::to_string(h.max_tokens) + " tokens and " +
                          std::to_string(h.refinement.count()) + " refinements make");
    }
  }
  return OkStatus();
}

Status CheckHeaderFields(const T1dHeader& h, uint64_t max_pixels) {
  TOK1D_RETURN_IF_ERROR(CheckGeometry(h, max_pixels));
  TOK1D_RETURN_IF_ERROR(CheckModelAndCounts(h));
  return CheckCounts(h);
}

std::vector<uint8_t> SerializeRefinement(const Refinement& refinement) {
  std::vector<uint8_t> data;
  ByteWriter w(&data);
  w.U8(refinement.bits);
  w.Varint(refinement.after.size());
  for (uint32_t after : refinement.after) w.Varint(after);
  return data;
}

std::vector<uint8_t> SerializeHeadData(const T1dHeader& h) {
  std::vector<uint8_t> data;
  ByteWriter w(&data);
  w.U32(h.width);
  w.U32(h.height);
  w.U32(h.tile_cols);
  w.U32(h.tile_rows);
  w.U16(h.tile_size);
  w.U8(0);  // colour space: sRGB RGB8
  w.U8(h.alpha_composited ? kAlphaCompositedFlag : 0);
  w.Bytes(h.background);
  w.U8(0);  // reserved
  w.U16(h.max_tokens);
  w.U8(static_cast<uint32_t>(h.fsq_levels.size()));
  for (uint32_t level : h.fsq_levels) w.U8(level);
  w.U8(static_cast<uint32_t>(h.model.name.size()));
  w.Chars(h.model.name);
  w.Bytes(h.model.sha256);
  w.U8(h.entropy_coder);
  w.U32(static_cast<uint32_t>(h.coder_params.size()));
  w.Bytes(h.coder_params);
  const CountsEncoding counts = EncodeCounts(h.layers_per_tile);
  w.U8(counts.mode);
  if (counts.mode == kCountsUniform) {
    w.U16(h.layers_per_tile.empty() ? 0 : h.layers_per_tile[0]);
  } else if (counts.mode == kCountsPalette) {
    WritePaletteCounts(h.layers_per_tile, counts.palette, &w);
  } else {
    for (uint32_t count : h.layers_per_tile) w.U16(count);
  }
  w.Bytes(h.head_extension);
  return data;
}

StatusOr<T1dHeader> ParseHeadData(std::span<const uint8_t> data, uint8_t minor_version,
                                  uint64_t max_pixels) {
  T1dHeader h;
  h.minor_version = minor_version;
  ByteReader r(data);
  h.width = r.U32();
  h.height = r.U32();
  h.tile_cols = r.U32();
  h.tile_rows = r.U32();
  h.tile_size = r.U16();
  const uint32_t colour_space = r.U8();
  const uint32_t colour_flags = r.U8();
  auto background = r.Bytes(3);
  const uint32_t reserved = r.U8();
  h.max_tokens = r.U16();
  const uint32_t dims = r.U8();
  for (uint8_t level : r.Bytes(dims)) h.fsq_levels.push_back(level);
  auto name = r.Bytes(r.U8());
  h.model.name.assign(name.begin(), name.end());
  auto sha = r.Bytes(32);
  h.entropy_coder = static_cast<uint8_t>(r.U8());
  const uint32_t params_length = r.U32();
  auto params = r.Bytes(params_length);
  h.coder_params.assign(params.begin(), params.end());
  const uint32_t counts_mode = r.U8();
  if (r.overrun()) return CorruptError("HEAD chunk is too short");
  if (colour_space != 0) {
    return UnsupportedError("colour space " + std::to_string(colour_space) +
                            " is not supported (only 0, sRGB RGB8)");
  }
  if ((colour_flags & ~uint32_t{kAlphaCompositedFlag}) != 0 || reserved != 0) {
    return CorruptError("reserved bits in HEAD are set");
  }
  h.alpha_composited = (colour_flags & kAlphaCompositedFlag) != 0;
  std::copy(background.begin(), background.end(), h.background.begin());
  std::copy(sha.begin(), sha.end(), h.model.sha256.begin());

  // Geometry bounds the tile count, which sizes the counts below.
  TOK1D_RETURN_IF_ERROR(CheckGeometry(h, max_pixels));
  const size_t tiles = h.tile_count();
  if (counts_mode == kCountsUniform) {
    const uint32_t count = r.U16();
    if (r.overrun()) return CorruptError("HEAD chunk is too short");
    h.layers_per_tile.assign(tiles, count);
  } else if (counts_mode == kCountsPerTile) {
    if (r.remaining() < 2 * tiles)
      return CorruptError("HEAD chunk is too short for its tile counts");
    h.layers_per_tile.resize(tiles);
    for (uint32_t& count : h.layers_per_tile) count = r.U16();
  } else if (counts_mode == kCountsPalette && minor_version >= kCountsPaletteMinorVersion) {
    TOK1D_RETURN_IF_ERROR(ReadPaletteCounts(r, tiles, &h.layers_per_tile));
  } else if (counts_mode == kCountsPalette || minor_version <= kT1dMinorVersion) {
    return CorruptError("unknown token count mode " + std::to_string(counts_mode) +
                        " for a version 1." + std::to_string(minor_version) + " file");
  } else {
    return UnsupportedError("token count mode " + std::to_string(counts_mode) + " of a version 1." +
                            std::to_string(minor_version) + " file needs a newer tok1d");
  }
  if (r.remaining() > 0) {
    if (minor_version <= kT1dMinorVersion) {
      return CorruptError("HEAD chunk has " + std::to_string(r.remaining()) +
                          " unexpected trailing bytes");
    }
    auto extension = r.Bytes(r.remaining());
    h.head_extension.assign(extension.begin(), extension.end());
  }
  TOK1D_RETURN_IF_ERROR(CheckModelAndCounts(h));
  return h;  // the counts are checked once the refinement (REFN) is known
}

Status ParseRefinement(const ChunkView& chunk, T1dHeader* header) {
  if (header->minor_version < kRefinementMinorVersion) {
    return CorruptError("refinement chunk in a version 1." + std::to_string(header->minor_version) +
                        " file (refinement needs 1.3)");
  }
  ByteReader r(chunk.data);
  Refinement& refinement = header->refinement;
  refinement.bits = r.U8();
  uint32_t count = 0;
  if (!r.Varint(&count)) return CorruptError("refinement chunk is malformed");
  if (count == 0 || count > header->max_tokens) {
    return CorruptError("refinement of " + std::to_string(count) + " tokens; 1.." +
                        std::to_string(header->max_tokens) + " are allowed");
  }
  refinement.after.resize(count);  // count <= K <= 65535
  for (uint32_t& after : refinement.after) {
    if (!r.Varint(&after)) return CorruptError("refinement chunk is malformed");
  }
  if (r.remaining() != 0) return CorruptError("refinement chunk has unexpected trailing bytes");
  if (refinement.bits == 0) return CorruptError("refinement chunk with 0 bits per dimension");
  return CheckCounts(*header);  // the plan itself, then the counts it allows
}

std::vector<uint8_t> SerializeSteps(const QuantizerSteps& steps) {
  std::vector<uint8_t> data;
  ByteWriter w(&data);
  w.Varint(steps.runs.size());
  for (const StepRun& run : steps.runs) {
    w.Varint(run.first);
    w.U8(static_cast<uint8_t>(run.step));
  }
  return data;
}

Status ParseSteps(const ChunkView& chunk, T1dHeader* header) {
  if (header->minor_version < kStepsMinorVersion) {
    return CorruptError("quantiser step chunk in a version 1." +
                        std::to_string(header->minor_version) + " file (steps need 1.4)");
  }
  ByteReader r(chunk.data);
  uint32_t count = 0;
  if (!r.Varint(&count)) return CorruptError("quantiser step chunk is malformed");
  if (count == 0 || count > header->max_tokens) {
    return CorruptError("quantiser steps in " + std::to_string(count) + " runs; 1.." +
                        std::to_string(header->max_tokens) + " are allowed");
  }
  header->steps.runs.resize(count);  // count <= K <= 65535
  for (StepRun& run : header->steps.runs) {
    if (!r.Varint(&run.first) || r.remaining() == 0) {
      return CorruptError("quantiser step chunk is malformed");
    }
    run.step = r.U8();
  }
  if (r.remaining() != 0) return CorruptError("quantiser step chunk has unexpected trailing bytes");
  return CheckQuantizerSteps(header->steps, header->max_tokens);
}

}  // namespace t1d_internal

size_t LayerCountsBytes(std::span<const uint32_t> layers_per_tile) {
  return t1d_internal::EncodeCounts(layers_per_tile).bytes;
}

std::string EntropyCoderName(uint8_t id) {
  if (id == kRawCoderId) return "raw";
  if (id == kRangeCoderId) return "range";
  return "coder-" + std::to_string(id);
}

uint8_t MinorVersionForCoder(uint8_t coder_id) { return coder_id == kRangeCoderId ? 1 : 0; }

uint64_t T1dHeader::codebook_size() const { return codebook().size(); }

uint32_t T1dHeader::bits_per_token() const { return codebook().bits_per_token(); }

std::vector<uint32_t> T1dHeader::tokens_per_tile() const {
  std::vector<uint32_t> tokens(layers_per_tile.size());
  for (size_t t = 0; t < tokens.size(); ++t) tokens[t] = TokensInLayers(layers_per_tile[t]);
  return tokens;
}

uint32_t T1dHeader::refinement_value_bits() const {
  return codebook().refinement_value_bits(refinement.bits);
}

uint32_t T1dHeader::layer_count() const {
  return layers_per_tile.empty()
             ? 0
             : *std::max_element(layers_per_tile.begin(), layers_per_tile.end());
}

void SetTileGrid(T1dHeader* header) {
  if (header->tile_size == 0) return;
  header->tile_cols = t1d_internal::Ceil(header->width, header->tile_size);
  header->tile_rows = t1d_internal::Ceil(header->height, header->tile_size);
}

}  // namespace tok1d

// Reader and writer of .t1d files. Every field read from a file is checked before use, and no
// allocation is sized by a file field that has not been bounded by the input size or by the
// pixel limit (see "Reader limits" in FORMAT.md).
#include "container/t1d.h"

#include <xxhash.h>

#include <algorithm>
#include <bit>
#include <cstring>
#include <string>

namespace tok1d {
namespace {

constexpr uint8_t kSignature[8] = {0x89, 'T', '1', 'D', '\r', '\n', 0x1A, '\n'};
constexpr size_t kPreambleSize = 12;
constexpr size_t kChunkHeaderSize = 8;  // type + length
constexpr size_t kChunkOverhead = 12;   // type + length + checksum
constexpr std::array<char, 4> kHeadType = {'H', 'E', 'A', 'D'};
constexpr std::array<char, 4> kLayerType = {'L', 'A', 'Y', 'R'};
constexpr std::array<char, 4> kSpanType = {'L', 'A', 'Y', 'S'};
constexpr std::array<char, 4> kDoneType = {'D', 'O', 'N', 'E'};
constexpr std::array<char, 4> kRefinementType = {'R', 'E', 'F', 'N'};
constexpr uint8_t kAlphaCompositedFlag = 0x01;
constexpr uint8_t kCountsUniform = 0;
constexpr uint8_t kCountsPerTile = 1;
constexpr uint64_t kTileAreaFactor = 4;  // whole tiles may cover 4x the pixel limit
constexpr size_t kLayerIndexSize = 2;    // u16 at the start of LAYR data
constexpr size_t kMaxVarintSize = 5;     // LEB128 of a value below 2^32
// The largest coded layer the writer accepts: it fits a LAYR chunk and a one-layer span.
constexpr uint64_t kMaxLayerBytes = UINT32_MAX - 3 * kMaxVarintSize;

// Fuzzing builds (the libFuzzer convention) accept any checksum, so that the fuzzer reaches the
// parsers behind it.
#ifdef FUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION
constexpr bool kVerifyChecksums = false;
#else
constexpr bool kVerifyChecksums = true;
#endif

std::string TypeName(const std::array<char, 4>& type) { return {type.data(), type.size()}; }

bool IsChunkTypeValid(const std::array<char, 4>& type) {
  return std::all_of(type.begin(), type.end(), [](char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
  });
}

size_t VarintSize(uint64_t v) {
  size_t size = 1;
  for (; v >= 0x80; v >>= 7) ++size;
  return size;
}

uint32_t Checksum(std::span<const uint8_t> bytes) {
  return static_cast<uint32_t>(XXH64(bytes.data(), bytes.size(), 0));
}

// ---- little-endian serialization -----------------------------------------------------------

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

// Appends a framed chunk. The checksum covers out[checksum_from..end), which is the chunk
// itself, or for HEAD the preamble and the chunk.
void AppendChunk(const std::array<char, 4>& type, std::span<const uint8_t> data,
                 size_t checksum_from, std::vector<uint8_t>* out) {
  ByteWriter writer(out);
  writer.Chars(TypeName(type));
  writer.U32(static_cast<uint32_t>(data.size()));
  writer.Bytes(data);
  writer.U32(Checksum(std::span(*out).subspan(checksum_from)));
}

// ---- header ---------------------------------------------------------------------------------

struct ChunkView {
  std::array<char, 4> type{};
  std::span<const uint8_t> data;
  size_t offset = 0;  // of the chunk's type field
  size_t size = 0;    // with framing
};

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
  if (h.fsq_levels.empty() || h.fsq_levels.size() > kT1dMaxFsqDims) {
    return CorruptError("FSQ has " + std::to_string(h.fsq_levels.size()) +
                        " dimensions; 1.." + std::to_string(kT1dMaxFsqDims) + " are allowed");
  }
  uint64_t codebook = 1;
  for (uint32_t level : h.fsq_levels) {
    if (level < 2 || level > 255) {
      return CorruptError("FSQ level " + std::to_string(level) + " is outside 2..255");
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

// Fills header->refinement from a REFN chunk and checks it and the counts it allows.
Status ParseRefinement(const ChunkView& chunk, T1dHeader* header);

bool AllEqual(const std::vector<uint32_t>& v) {
  return std::adjacent_find(v.begin(), v.end(), std::not_equal_to<>()) == v.end();
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
  if (AllEqual(h.layers_per_tile)) {
    w.U8(kCountsUniform);
    w.U16(h.layers_per_tile.empty() ? 0 : h.layers_per_tile[0]);
  } else {
    w.U8(kCountsPerTile);
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
    if (r.remaining() < 2 * tiles) return CorruptError("HEAD chunk is too short for its tile counts");
    h.layers_per_tile.resize(tiles);
    for (uint32_t& count : h.layers_per_tile) count = r.U16();
  } else {
    return CorruptError("unknown token count mode " + std::to_string(counts_mode));
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

// ---- chunk-level parsing --------------------------------------------------------------------

// The file's structure, verified, with views into the input bytes.
struct ParsedFile {
  T1dHeader header;
  std::vector<std::span<const uint8_t>> layers;  // coded bytes of layers 0..m-1, unframed
  std::vector<ChunkView> extras;
  T1dLayout layout;
  ReadReport report;
};

enum class ChunkRead { kOk, kIncomplete };

// Reads the chunk at `offset`; kIncomplete if the input ends inside it.
StatusOr<ChunkRead> ReadChunk(std::span<const uint8_t> bytes, size_t offset, size_t checksum_from,
                              ChunkView* chunk) {
  if (bytes.size() - offset < kChunkHeaderSize) return ChunkRead::kIncomplete;
  ByteReader header(bytes.subspan(offset, kChunkHeaderSize));
  for (char& c : chunk->type) c = static_cast<char>(header.U8());
  const uint64_t length = header.U32();
  if (bytes.size() - offset - kChunkHeaderSize < length + 4) return ChunkRead::kIncomplete;
  chunk->offset = offset;
  chunk->size = kChunkOverhead + length;
  chunk->data = bytes.subspan(offset + kChunkHeaderSize, length);
  const size_t checksum_at = offset + kChunkHeaderSize + length;
  const uint32_t stored = ByteReader(bytes.subspan(checksum_at, 4)).U32();
  if (kVerifyChecksums &&
      stored != Checksum(bytes.subspan(checksum_from, checksum_at - checksum_from))) {
    return CorruptError("checksum mismatch in chunk at byte " + std::to_string(offset) +
                        " (the file is damaged)");
  }
  if (!IsChunkTypeValid(chunk->type)) {
    return CorruptError("invalid chunk type at byte " + std::to_string(offset));
  }
  return ChunkRead::kOk;
}

Status CheckPreamble(std::span<const uint8_t> bytes) {
  const size_t present = std::min(bytes.size(), sizeof(kSignature));
  if (bytes.empty() || std::memcmp(bytes.data(), kSignature, present) != 0) {
    return CorruptError("not a .t1d token file (wrong signature)");
  }
  if (bytes.size() < kPreambleSize) return TruncatedError("file ends inside its preamble");
  if (bytes[8] != kT1dMajorVersion) {
    return UnsupportedError("file format version " + std::to_string(bytes[8]) + "." +
                            std::to_string(bytes[9]) + " is not supported (this tok1d reads " +
                            std::to_string(kT1dMajorVersion) + ".x); use a newer tok1d");
  }
  return OkStatus();
}

// Checks a LAYS chunk (FORMAT.md, "LAYS chunk") and appends its layers to `file`.
Status AddLayerSpan(const ChunkView& chunk, uint32_t layer_count, ParsedFile* file) {
  if (file->header.minor_version < kLayerSpanMinorVersion) {
    return CorruptError("layer span chunk in a version 1." +
                        std::to_string(file->header.minor_version) + " file (spans need 1.2)");
  }
  const auto expected = static_cast<uint32_t>(file->layers.size());
  const std::string where = "layer span at byte " + std::to_string(chunk.offset);
  const auto malformed = [&](const ByteReader& r) {
    return r.overrun() ? CorruptError(where + " ends inside its layer lengths")
                       : CorruptError(where + " has a malformed varint (not minimal, over 32 "
                                      "bits, or reserved bits set)");
  };
  ByteReader r(chunk.data);
  uint32_t first = 0, count = 0;
  if (!r.Varint(&first) || !r.Varint(&count)) return malformed(r);
  if (first != expected) {
    return CorruptError("token layer span starts at layer " + std::to_string(first) +
                        " where layer " + std::to_string(expected) + " of " +
                        std::to_string(layer_count) + " was expected");
  }
  if (count == 0) return CorruptError(where + " holds no layers");
  if (count > layer_count - first) {
    return CorruptError(where + " holds layers " + std::to_string(first) + ".." +
                        std::to_string(uint64_t{first} + count - 1) + " but HEAD declares " +
                        std::to_string(layer_count));
  }
  // count <= layer_count <= 65535 bounds this allocation.
  std::vector<uint32_t> lengths(count);
  uint64_t total = 0;
  for (uint32_t& length : lengths) {
    if (!r.Varint(&length)) return malformed(r);
    total += length;
  }
  if (total != r.remaining()) {
    return CorruptError(where + ": its layer lengths add up to " + std::to_string(total) +
                        " bytes but it holds " + std::to_string(r.remaining()));
  }
  size_t at = chunk.data.size() - r.remaining();
  for (uint32_t i = 0; i < count; ++i) {
    file->layers.push_back(chunk.data.subspan(at, lengths[i]));
    at += lengths[i];
    // The span's framing is charged to its first layer, each length field to its layer.
    uint64_t share = lengths[i] + VarintSize(lengths[i]);
    if (i == 0) share += kChunkOverhead + VarintSize(first) + VarintSize(count);
    file->layout.layer_bytes.push_back(share);
    file->layout.layer_payload_bytes.push_back(lengths[i]);
  }
  file->layout.layer_chunks.push_back({TypeName(kSpanType), first, count, chunk.size});
  return OkStatus();
}

StatusOr<ParsedFile> ParseFile(std::span<const uint8_t> bytes, const ReadOptions& options) {
  TOK1D_RETURN_IF_ERROR(CheckPreamble(bytes));
  ParsedFile file;
  file.layout.file_bytes = bytes.size();

  ChunkView head;
  TOK1D_ASSIGN_OR_RETURN(ChunkRead head_read, ReadChunk(bytes, kPreambleSize, 0, &head));
  if (head_read == ChunkRead::kIncomplete) return TruncatedError("file ends inside its header");
  if (head.type != kHeadType) {
    return CorruptError("first chunk is '" + TypeName(head.type) + "', expected 'HEAD'");
  }
  if (bytes[10] != 0 || bytes[11] != 0) return CorruptError("reserved preamble bits are set");
  TOK1D_ASSIGN_OR_RETURN(file.header, ParseHeadData(head.data, bytes[9], options.max_pixels));
  file.layout.header_bytes = kPreambleSize + head.size;
  size_t offset = kPreambleSize + head.size;
  {  // an optional REFN chunk right after HEAD: the counts depend on it
    ChunkView refinement;
    TOK1D_ASSIGN_OR_RETURN(ChunkRead read, ReadChunk(bytes, offset, offset, &refinement));
    if (read == ChunkRead::kOk && refinement.type == kRefinementType) {
      TOK1D_RETURN_IF_ERROR(ParseRefinement(refinement, &file.header));
      offset += refinement.size;
      file.layout.header_bytes += refinement.size;
    } else {
      const Status counts = CheckCounts(file.header);
      if (!counts.ok() && read == ChunkRead::kIncomplete) {
        return TruncatedError("file ends inside its header");
      }
      TOK1D_RETURN_IF_ERROR(counts);
    }
  }

  const uint32_t layer_count = file.header.layer_count();
  file.report.layers_declared = layer_count;
  for (;;) {
    ChunkView chunk;
    TOK1D_ASSIGN_OR_RETURN(ChunkRead read, ReadChunk(bytes, offset, offset, &chunk));
    if (read == ChunkRead::kIncomplete) break;
    offset += chunk.size;
    const auto index = static_cast<uint32_t>(file.layers.size());
    if (chunk.type == kLayerType || chunk.type == kSpanType) {
      const std::vector<T1dLayerChunk>& chunks = file.layout.layer_chunks;
      if (!chunks.empty() && chunks.back().type != TypeName(chunk.type)) {
        return CorruptError("file mixes LAYR and LAYS token layer chunks");
      }
    }
    if (chunk.type == kSpanType) {
      TOK1D_RETURN_IF_ERROR(AddLayerSpan(chunk, layer_count, &file));
    } else if (chunk.type == kLayerType) {
      if (chunk.data.size() < kLayerIndexSize) return CorruptError("token layer chunk is too short");
      const uint32_t stored_index = ByteReader(chunk.data).U16();
      if (stored_index != index || index >= layer_count) {
        return CorruptError("token layer " + std::to_string(stored_index) + " found where layer " +
                            std::to_string(index) + " of " + std::to_string(layer_count) +
                            " was expected");
      }
      file.layers.push_back(chunk.data.subspan(kLayerIndexSize));
      file.layout.layer_bytes.push_back(chunk.size);
      file.layout.layer_payload_bytes.push_back(chunk.data.size() - kLayerIndexSize);
      file.layout.layer_chunks.push_back({TypeName(kLayerType), index, 1, chunk.size});
    } else if (chunk.type == kDoneType) {
      if (chunk.data.size() != 4) return CorruptError("end chunk has the wrong size");
      const uint32_t done_count = ByteReader(chunk.data).U32();
      if (done_count != layer_count) {
        return CorruptError("end chunk counts " + std::to_string(done_count) +
                            " token layers, HEAD declares " + std::to_string(layer_count));
      }
      if (index != layer_count) {
        return CorruptError("end chunk after " + std::to_string(index) + " of " +
                            std::to_string(layer_count) + " token layers");
      }
      if (offset != bytes.size()) {
        return CorruptError(std::to_string(bytes.size() - offset) +
                            " bytes of unexpected data after the end chunk");
      }
      file.report.layers_complete = index;
      return file;
    } else if (chunk.type == kHeadType) {
      return CorruptError("second HEAD chunk at byte " + std::to_string(chunk.offset));
    } else if (chunk.type == kRefinementType) {
      return CorruptError("refinement chunk at byte " + std::to_string(chunk.offset) +
                          " does not directly follow HEAD");
    } else if ((chunk.type[0] & 0x20) != 0) {
      file.extras.push_back(chunk);
      file.layout.extra_bytes += chunk.size;
      file.layout.extra_chunk_types.push_back(TypeName(chunk.type));
      file.layout.extra_chunk_bytes.push_back(chunk.size);
    } else {
      return UnsupportedError("unknown critical chunk '" + TypeName(chunk.type) +
                              "'; the file needs a newer tok1d");
    }
  }

  // The input ended before DONE.
  const auto complete = static_cast<uint32_t>(file.layers.size());
  const std::string what = "file is truncated after " + std::to_string(complete) + " of " +
                           std::to_string(layer_count) + " token layers";
  if (!options.allow_truncated) return TruncatedError(what);
  file.report.truncated = true;
  file.report.layers_complete = complete;
  file.report.warnings.push_back(what + "; decoding what is present");
  return file;
}

// Calls visit(j, tiles) for each layer j < layer_limit with the tiles whose count exceeds j.
template <typename Visit>
Status ForEachLayer(const T1dHeader& header, uint32_t layer_limit, Visit visit) {
  std::vector<uint32_t> active;
  for (uint32_t t = 0; t < header.layers_per_tile.size(); ++t) {
    if (header.layers_per_tile[t] > 0) active.push_back(t);
  }
  for (uint32_t j = 0; j < layer_limit; ++j) {
    std::erase_if(active, [&](uint32_t t) { return header.layers_per_tile[t] <= j; });
    TOK1D_RETURN_IF_ERROR(visit(j, std::span<const uint32_t>(active)));
  }
  return OkStatus();
}

StatusOr<const LayerCoder*> SelectCoder(const T1dHeader& header, const LayerCoder* coder) {
  if (coder != nullptr && coder->id() == header.entropy_coder) return coder;
  if (header.entropy_coder == kRawCoderId) return &RawLayerCoder();
  return UnsupportedError("tokens are coded with entropy coder '" +
                          EntropyCoderName(header.entropy_coder) +
                          "', which this call was not given; use a tok1d that has it");
}

// The writer's span policy (FORMAT.md): consecutive layers until their coded bytes reach
// span_bytes. A span also closes before a layer that would overflow its u32 chunk length.
// Closing only on what came before keeps a trimmed file's spans those of the trimmed tokens.
std::vector<uint32_t> GroupLayers(std::span<const std::span<const uint8_t>> layers,
                                  uint32_t span_bytes) {
  std::vector<uint32_t> spans;
  uint64_t payload = 0, data = 0;
  uint32_t count = 0;
  for (const std::span<const uint8_t>& layer : layers) {
    const uint64_t cost = layer.size() + kMaxVarintSize;
    if (count > 0 && data + cost > UINT32_MAX) {
      spans.push_back(count);
      payload = data = count = 0;
    }
    if (count == 0) data = 2 * kMaxVarintSize;
    ++count;
    payload += layer.size();
    data += cost;
    if (payload >= span_bytes) {
      spans.push_back(count);
      payload = data = count = 0;
    }
  }
  if (count > 0) spans.push_back(count);
  return spans;
}

// Frames `layers` as one LAYR chunk each (spans == nullptr, versions 1.0/1.1) or as LAYS
// chunks holding span_layers[i] layers each (version 1.2).
std::vector<uint8_t> AssembleFile(const T1dHeader& header, std::span<const T1dChunk> extras,
                                  std::span<const std::span<const uint8_t>> layers,
                                  const std::vector<uint32_t>* spans) {
  std::vector<uint8_t> out(std::begin(kSignature), std::end(kSignature));
  ByteWriter writer(&out);
  writer.U8(header.major_version);
  uint8_t minor = std::max(header.minor_version, MinorVersionForCoder(header.entropy_coder));
  if (spans != nullptr) minor = std::max(minor, kLayerSpanMinorVersion);
  if (header.refinement.bits != 0) minor = std::max(minor, kRefinementMinorVersion);
  writer.U8(minor);
  writer.U16(0);  // reserved
  AppendChunk(kHeadType, SerializeHeadData(header), 0, &out);
  // A plan none of whose layers is kept changes nothing a reader sees, so it is left out
  // (FORMAT.md): the file stays 1.3, which keeps encode at k and trim to k byte-identical.
  if (header.refinement.bits != 0 && header.RefinementsInLayers(header.layer_count()) > 0) {
    AppendChunk(kRefinementType, SerializeRefinement(header.refinement), out.size(), &out);
  }
  for (const T1dChunk& chunk : extras) AppendChunk(chunk.type, chunk.data, out.size(), &out);
  std::vector<uint8_t> data;
  if (spans != nullptr) {
    size_t first = 0;
    for (uint32_t count : *spans) {
      data.clear();
      ByteWriter span(&data);
      span.Varint(first);
      span.Varint(count);
      for (size_t j = first; j < first + count; ++j) span.Varint(layers[j].size());
      for (size_t j = first; j < first + count; ++j) span.Bytes(layers[j]);
      AppendChunk(kSpanType, data, out.size(), &out);
      first += count;
    }
  } else {
    for (size_t j = 0; j < layers.size(); ++j) {
      data.clear();
      ByteWriter(&data).U16(static_cast<uint32_t>(j));
      data.insert(data.end(), layers[j].begin(), layers[j].end());
      AppendChunk(kLayerType, data, out.size(), &out);
    }
  }
  data.clear();
  ByteWriter(&data).U32(static_cast<uint32_t>(layers.size()));
  AppendChunk(kDoneType, data, out.size(), &out);
  return out;
}

Status CheckExtraChunks(std::span<const T1dChunk> extras) {
  for (const T1dChunk& chunk : extras) {
    if (!IsChunkTypeValid(chunk.type) || !chunk.ancillary()) {
      return InvalidArgumentError("extra chunk '" + TypeName(chunk.type) +
                                  "' must have an ancillary type (four letters, first lower case)");
    }
    if (chunk.data.size() > UINT32_MAX - kChunkOverhead) {
      return InvalidArgumentError("extra chunk '" + TypeName(chunk.type) + "' is too large");
    }
  }
  return OkStatus();
}

}  // namespace

Status CheckRefinement(const Refinement& refinement, uint32_t max_tokens, uint32_t fsq_dims) {
  if (refinement.bits == 0) {
    if (!refinement.after.empty()) return CorruptError("refinement layers without refinement bits");
    return OkStatus();
  }
  if (refinement.bits > kMaxRefinementBits || refinement.bits * fsq_dims > 32) {
    return CorruptError("refinement of " + std::to_string(refinement.bits) + " bits per dimension "
                        "is outside 1.." + std::to_string(kMaxRefinementBits) + " or over 32 bits a token");
  }
  if (refinement.after.empty() || refinement.after.size() > max_tokens) {
    return CorruptError("refinement of " + std::to_string(refinement.after.size()) +
                        " tokens; 1.." + std::to_string(max_tokens) + " are allowed");
  }
  for (uint32_t r = 0; r < refinement.after.size(); ++r) {
    const uint32_t after = refinement.after[r];
    if (after < r || after >= max_tokens || (r > 0 && after < refinement.after[r - 1])) {
      return CorruptError("the refinement of token " + std::to_string(r) + " follows token layer " +
                          std::to_string(after) + "; it must follow token " + std::to_string(r) +
                          ", the previous refinement, and come before token " +
                          std::to_string(max_tokens));
    }
  }
  return OkStatus();
}

std::string EntropyCoderName(uint8_t id) {
  if (id == kRawCoderId) return "raw";
  if (id == kRangeCoderId) return "range";
  return "coder-" + std::to_string(id);
}

uint8_t MinorVersionForCoder(uint8_t coder_id) { return coder_id == kRangeCoderId ? 1 : 0; }

uint64_t T1dLayout::layer_chunk_bytes() const {
  uint64_t total = 0;
  for (uint64_t bytes : layer_bytes) total += bytes;
  return total;
}

uint64_t T1dLayout::layer_framing_bytes() const {
  uint64_t payload = 0;
  for (uint64_t bytes : layer_payload_bytes) payload += bytes;
  return layer_chunk_bytes() - payload;
}

uint64_t T1dHeader::codebook_size() const {
  uint64_t size = 1;
  for (uint32_t level : fsq_levels) size *= level;
  return size;
}

uint32_t T1dHeader::bits_per_token() const {
  const uint64_t size = codebook_size();
  return size <= 1 ? 0 : static_cast<uint32_t>(std::bit_width(size - 1));
}

std::vector<LayerRole> T1dHeader::LayerRoles() const {
  std::vector<LayerRole> roles;
  roles.reserve(max_layers());
  size_t r = 0;
  for (uint32_t i = 0; i < max_tokens; ++i) {
    roles.push_back({false, i});
    for (; r < refinement.after.size() && refinement.after[r] <= i; ++r) {
      roles.push_back({true, static_cast<uint32_t>(r)});
    }
  }
  return roles;
}

uint32_t T1dHeader::LayersForTokens(uint32_t tokens) const {
  tokens = std::min(tokens, max_tokens);
  // `after` is non-decreasing (CheckRefinement): the refinements placed before token `tokens`.
  const auto placed = std::lower_bound(refinement.after.begin(), refinement.after.end(), tokens);
  return tokens + static_cast<uint32_t>(placed - refinement.after.begin());
}

uint32_t T1dHeader::TokensInLayers(uint32_t layers) const {
  // Token i is layer LayersForTokens(i), increasing in i: count the i whose layer is below.
  uint32_t low = 0, high = max_tokens;
  while (low < high) {
    const uint32_t middle = low + (high - low) / 2;
    if (LayersForTokens(middle) < layers) {
      low = middle + 1;
    } else {
      high = middle;
    }
  }
  return low;
}

uint32_t T1dHeader::RefinementsInLayers(uint32_t layers) const {
  return std::min(layers, max_layers()) - TokensInLayers(layers);
}

std::vector<uint32_t> T1dHeader::tokens_per_tile() const {
  std::vector<uint32_t> tokens(layers_per_tile.size());
  for (size_t t = 0; t < tokens.size(); ++t) tokens[t] = TokensInLayers(layers_per_tile[t]);
  return tokens;
}

uint32_t T1dHeader::refinement_value_bits() const {
  return refinement.bits * static_cast<uint32_t>(fsq_levels.size());
}

uint32_t T1dHeader::layer_count() const {
  return layers_per_tile.empty() ? 0 : *std::max_element(layers_per_tile.begin(), layers_per_tile.end());
}

void SetTileGrid(T1dHeader* header) {
  if (header->tile_size == 0) return;
  header->tile_cols = Ceil(header->width, header->tile_size);
  header->tile_rows = Ceil(header->height, header->tile_size);
}

StatusOr<T1dHeaderInfo> ReadT1dHeader(std::span<const uint8_t> bytes, const ReadOptions& options) {
  TOK1D_ASSIGN_OR_RETURN(ParsedFile parsed, ParseFile(bytes, options));
  T1dHeaderInfo info{std::move(parsed.header), std::move(parsed.layout), std::move(parsed.report), {}};
  for (const ChunkView& extra : parsed.extras) {
    info.extra_chunks.push_back(T1dChunk{extra.type, {extra.data.begin(), extra.data.end()}});
  }
  return info;
}

StatusOr<TokenFile> ReadT1d(std::span<const uint8_t> bytes, const ReadOptions& options,
                            ReadReport* report, const LayerCoder* coder) {
  TOK1D_ASSIGN_OR_RETURN(ParsedFile parsed, ParseFile(bytes, options));
  TOK1D_ASSIGN_OR_RETURN(const LayerCoder* layer_coder, SelectCoder(parsed.header, coder));
  TOK1D_RETURN_IF_ERROR(layer_coder->CheckHeader(parsed.header));

  TokenFile file;
  file.header = std::move(parsed.header);
  file.tokens.resize(file.header.tile_count());
  file.refinements.resize(file.header.tile_count());
  const auto present = static_cast<uint32_t>(parsed.layers.size());
  const std::vector<LayerRole> roles = file.header.LayerRoles();
  std::vector<uint32_t> layer_values;
  const Status decoded = ForEachLayer(
      file.header, present, [&](uint32_t j, std::span<const uint32_t> tiles) -> Status {
        layer_values.assign(tiles.size(), 0);
        const LayerRole role = roles[j];
        if (role.refinement) {
          TOK1D_RETURN_IF_ERROR(UnpackFixedWidth(parsed.layers[j], file.header.refinement_value_bits(),
                                                 layer_values,
                                                 "refinement layer " + std::to_string(j)));
          for (size_t i = 0; i < tiles.size(); ++i) file.refinements[tiles[i]].push_back(layer_values[i]);
          return OkStatus();
        }
        // The coder sees the token's position in its tile, whatever layer holds it.
        LayerContext context{file.header, role.index, tiles, file.tokens};
        TOK1D_RETURN_IF_ERROR(layer_coder->DecodeLayer(context, parsed.layers[j], layer_values)
                                  .WithContext("token layer " + std::to_string(j)));
        const uint64_t codebook = file.header.codebook_size();
        for (size_t i = 0; i < tiles.size(); ++i) {
          if (layer_values[i] >= codebook) {
            return CorruptError("token layer " + std::to_string(j) + " holds a token outside the codebook");
          }
          file.tokens[tiles[i]].push_back(layer_values[i]);
        }
        return OkStatus();
      });
  if (!decoded.ok()) return decoded;
  for (uint32_t& count : file.header.layers_per_tile) count = std::min(count, present);
  for (const ChunkView& extra : parsed.extras) {
    file.extra_chunks.push_back(T1dChunk{extra.type, {extra.data.begin(), extra.data.end()}});
  }
  if (report != nullptr) *report = std::move(parsed.report);
  return file;
}

StatusOr<std::vector<uint8_t>> WriteT1d(const TokenFile& file, const LayerCoder* coder,
                                        const WriteOptions& options) {
  const T1dHeader& header = file.header;
  TOK1D_RETURN_IF_ERROR(CheckHeaderFields(header, UINT64_MAX).WithContext("invalid token file"));
  TOK1D_RETURN_IF_ERROR(CheckExtraChunks(file.extra_chunks));
  if (coder == nullptr) coder = &RawLayerCoder();
  if (coder->id() != header.entropy_coder) {
    return InvalidArgumentError("header names entropy coder " +
                                EntropyCoderName(header.entropy_coder) + " but coder " +
                                EntropyCoderName(coder->id()) + " was given");
  }
  TOK1D_RETURN_IF_ERROR(coder->CheckHeader(header));
  if (file.tokens.size() != header.tile_count()) {
    return InvalidArgumentError("token lists for " + std::to_string(file.tokens.size()) +
                                " tiles, but the grid has " + std::to_string(header.tile_count()));
  }
  if (!file.refinements.empty() && file.refinements.size() != file.tokens.size()) {
    return InvalidArgumentError("refinements for " + std::to_string(file.refinements.size()) +
                                " tiles, but the grid has " + std::to_string(header.tile_count()));
  }
  const uint64_t codebook = header.codebook_size();
  const uint32_t refinement_bits = header.refinement_value_bits();
  for (size_t t = 0; t < file.tokens.size(); ++t) {
    const uint32_t layers = header.layers_per_tile[t];
    const size_t refinements = file.refinements.empty() ? 0 : file.refinements[t].size();
    if (file.tokens[t].size() != header.TokensInLayers(layers) ||
        refinements != header.RefinementsInLayers(layers)) {
      return InvalidArgumentError("tile " + std::to_string(t) + " has " +
                                  std::to_string(file.tokens[t].size()) + " tokens and " +
                                  std::to_string(refinements) + " refinements but keeps " +
                                  std::to_string(layers) + " layers");
    }
    for (size_t r = 0; r < refinements; ++r) {
      if (refinement_bits < 32 && file.refinements[t][r] >> refinement_bits != 0) {
        return InvalidArgumentError("refinement " + std::to_string(r) + " of tile " +
                                    std::to_string(t) + " has more than " +
                                    std::to_string(refinement_bits) + " bits");
      }
    }
    for (uint32_t token : file.tokens[t]) {
      if (token >= codebook) {
        return InvalidArgumentError("token " + std::to_string(token) + " of tile " +
                                    std::to_string(t) + " is outside the codebook of " +
                                    std::to_string(codebook));
      }
    }
  }

  std::vector<std::vector<uint8_t>> coded;
  std::vector<uint32_t> layer_values;
  const std::vector<LayerRole> roles = header.LayerRoles();
  const Status encoded = ForEachLayer(
      header, header.layer_count(), [&](uint32_t j, std::span<const uint32_t> tiles) -> Status {
        const LayerRole role = roles[j];
        layer_values.clear();
        for (uint32_t t : tiles) {
          layer_values.push_back(role.refinement ? file.refinements[t][role.index]
                                                 : file.tokens[t][role.index]);
        }
        std::vector<uint8_t> bytes;
        if (role.refinement) {
          bytes = PackFixedWidth(layer_values, refinement_bits);
        } else {
          LayerContext context{header, role.index, tiles, file.tokens};
          TOK1D_ASSIGN_OR_RETURN(bytes, coder->EncodeLayer(context, layer_values));
        }
        if (bytes.size() > kMaxLayerBytes) {
          return InvalidArgumentError("token layer " + std::to_string(j) + " is too large");
        }
        coded.push_back(std::move(bytes));
        return OkStatus();
      });
  if (!encoded.ok()) return encoded;
  std::vector<std::span<const uint8_t>> layers(coded.begin(), coded.end());
  if (!options.layer_spans) return AssembleFile(header, file.extra_chunks, layers, nullptr);
  const std::vector<uint32_t> spans = GroupLayers(layers, options.span_bytes);
  return AssembleFile(header, file.extra_chunks, layers, &spans);
}

StatusOr<TokenFile> TrimLayers(TokenFile file, std::span<const uint32_t> counts) {
  if (counts.size() != file.header.layers_per_tile.size() ||
      file.tokens.size() != counts.size() ||
      (!file.refinements.empty() && file.refinements.size() != counts.size())) {
    return InvalidArgumentError("trim needs one layer count per tile (" +
                                std::to_string(file.header.layers_per_tile.size()) + "), got " +
                                std::to_string(counts.size()));
  }
  for (size_t t = 0; t < counts.size(); ++t) {
    if (counts[t] > file.header.layers_per_tile[t]) {
      return InvalidArgumentError("tile " + std::to_string(t) + " has " +
                                  std::to_string(file.header.layers_per_tile[t]) +
                                  " layers; trim cannot add layers (asked for " +
                                  std::to_string(counts[t]) + ")");
    }
    file.tokens[t].resize(std::min<size_t>(file.tokens[t].size(), file.header.TokensInLayers(counts[t])));
    if (!file.refinements.empty()) {
      file.refinements[t].resize(
          std::min<size_t>(file.refinements[t].size(), file.header.RefinementsInLayers(counts[t])));
    }
    file.header.layers_per_tile[t] = counts[t];
  }
  return file;
}

StatusOr<TokenFile> TrimTokens(TokenFile file, uint32_t k) {
  std::vector<uint32_t> counts(file.tokens.size());
  for (size_t t = 0; t < counts.size(); ++t) {
    counts[t] = std::min<uint32_t>(static_cast<uint32_t>(file.tokens[t].size()), k);
  }
  return TrimTokens(std::move(file), counts);
}

StatusOr<TokenFile> TrimTokens(TokenFile file, std::span<const uint32_t> counts) {
  if (counts.size() != file.tokens.size()) {
    return InvalidArgumentError("trim needs one token count per tile (" +
                                std::to_string(file.tokens.size()) + "), got " +
                                std::to_string(counts.size()));
  }
  std::vector<uint32_t> layers(counts.size());
  for (size_t t = 0; t < counts.size(); ++t) {
    if (counts[t] > file.tokens[t].size()) {
      return InvalidArgumentError("tile " + std::to_string(t) + " has " +
                                  std::to_string(file.tokens[t].size()) +
                                  " tokens; trim cannot add tokens (asked for " +
                                  std::to_string(counts[t]) + ")");
    }
    // A tile cut short (a truncated file) keeps only the layers it has.
    layers[t] = std::min(file.header.LayersForTokens(counts[t]), file.header.layers_per_tile[t]);
  }
  return TrimLayers(std::move(file), layers);
}

StatusOr<std::vector<uint8_t>> TrimT1dBytes(std::span<const uint8_t> bytes, uint32_t k,
                                            const ReadOptions& options) {
  ReadOptions lenient = options;
  lenient.allow_truncated = true;
  TOK1D_ASSIGN_OR_RETURN(ParsedFile parsed, ParseFile(bytes, lenient));
  T1dHeader header = std::move(parsed.header);
  for (uint32_t& count : header.layers_per_tile) count = std::min(count, k);
  const uint32_t kept_layers = header.layer_count();
  if (kept_layers > parsed.layers.size()) {
    return TruncatedError("file is truncated after " + std::to_string(parsed.layers.size()) +
                          " token layers; it can be trimmed to at most that many layers");
  }
  std::vector<T1dChunk> extras;
  for (const ChunkView& extra : parsed.extras) {
    extras.push_back(T1dChunk{extra.type, {extra.data.begin(), extra.data.end()}});
  }
  const auto layers = std::span(parsed.layers).first(kept_layers);
  const std::vector<T1dLayerChunk>& chunks = parsed.layout.layer_chunks;
  if (chunks.empty() || chunks[0].type != TypeName(kSpanType)) {
    return AssembleFile(header, extras, layers, nullptr);
  }
  // Whole spans before layer k; the span that holds layer k-1 keeps its first layers.
  std::vector<uint32_t> spans;
  for (const T1dLayerChunk& chunk : chunks) {
    if (chunk.first_layer >= kept_layers) break;
    spans.push_back(std::min(chunk.layers, kept_layers - chunk.first_layer));
  }
  return AssembleFile(header, extras, layers, &spans);
}

}  // namespace tok1d

// Reader and writer of the .t1d token file format; the byte layout is specified in
// container/FORMAT.md.
#pragma once

#include <array>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "codec/limits.h"
#include "codec/status.h"

namespace tok1d {

inline constexpr uint8_t kT1dMajorVersion = 1;
inline constexpr uint8_t kT1dMinorVersion = 2;  // 1.1 defines the range coder, 1.2 layer spans
inline constexpr uint8_t kLayerSpanMinorVersion = 2;  // LAYS chunks need a 1.2 file
inline constexpr uint32_t kT1dMinTileSize = 16;
inline constexpr uint32_t kT1dMaxTileSize = 4096;
inline constexpr uint32_t kT1dMaxFsqDims = 16;

// Entropy coder ids (HEAD entropy_coder).
inline constexpr uint8_t kRawCoderId = 0;
inline constexpr uint8_t kRangeCoderId = 1;  // codec/entropy_coder.h; needs minor version 1

// "raw", "range", or "coder-N" for ids this build does not know.
std::string EntropyCoderName(uint8_t id);

// The lowest minor version a file coded with `coder_id` can have; writers raise a header's
// minor_version to it.
uint8_t MinorVersionForCoder(uint8_t coder_id);

// One chunk as stored: a four-letter type and its data (framing and checksum excluded).
struct T1dChunk {
  std::array<char, 4> type{};
  std::vector<uint8_t> data;

  std::string_view type_name() const { return {type.data(), type.size()}; }
  bool ancillary() const { return (type[0] & 0x20) != 0; }  // lower-case first letter
};

struct ModelIdentity {
  std::string name;                   // printable ASCII, 1..255 bytes
  std::array<uint8_t, 32> sha256{};   // of the weights file
};

// Everything in the HEAD chunk (and the preamble's version).
struct T1dHeader {
  uint8_t major_version = kT1dMajorVersion;
  uint8_t minor_version = 0;  // raised on writing to what the file uses (MinorVersionForCoder)
  uint32_t width = 0;
  uint32_t height = 0;
  uint32_t tile_size = 0;
  uint32_t tile_cols = 0;  // ceil(width / tile_size)
  uint32_t tile_rows = 0;  // ceil(height / tile_size)
  bool alpha_composited = false;
  std::array<uint8_t, 3> background{};  // meaningful when alpha_composited
  ModelIdentity model;
  std::vector<uint32_t> fsq_levels;     // FSQ levels per dimension, first = least significant
  uint32_t max_tokens = 0;              // K of the model
  uint8_t entropy_coder = kRawCoderId;
  std::vector<uint8_t> coder_params;    // opaque to the container
  std::vector<uint32_t> tokens_per_tile;  // one count per tile, raster order, each <= K
  std::vector<uint8_t> head_extension;  // HEAD bytes of a newer minor version, kept verbatim

  uint64_t tile_count() const { return uint64_t{tile_cols} * tile_rows; }
  uint64_t codebook_size() const;      // product of fsq_levels
  uint32_t bits_per_token() const;     // ceil(log2(codebook_size())), the raw coder's width
  uint32_t layer_count() const;        // max(tokens_per_tile)
};

// Sets tile_cols/tile_rows from width, height and tile_size.
void SetTileGrid(T1dHeader* header);

struct TokenFile {
  T1dHeader header;
  std::vector<std::vector<uint32_t>> tokens;  // per tile; tokens[t].size() == tokens_per_tile[t]
  std::vector<T1dChunk> extra_chunks;         // ancillary chunks, in file order
};

// What a LayerCoder sees besides the tokens: the header (levels, coder params, counts), the
// layer index, the tiles present in this layer, and all tokens of earlier layers.
struct LayerContext {
  const T1dHeader& header;
  uint32_t layer;                                // j
  std::span<const uint32_t> tiles;               // tiles with count > j, raster order
  const std::vector<std::vector<uint32_t>>& tokens;  // tokens[t][i] valid for i < j
};

// Codes one token layer as a self-contained unit (see FORMAT.md, LAYR chunk). Implementations
// must be deterministic and must reject any input they cannot decode exactly (never crash).
class LayerCoder {
 public:
  virtual ~LayerCoder() = default;
  virtual uint8_t id() const = 0;
  // Checks the HEAD's coder_params (and anything else the coder depends on) before any layer.
  virtual Status CheckHeader(const T1dHeader& header) const = 0;
  // `layer_tokens[i]` is token j of tile context.tiles[i].
  virtual StatusOr<std::vector<uint8_t>> EncodeLayer(
      const LayerContext& context, std::span<const uint32_t> layer_tokens) const = 0;
  // Fills `layer_tokens` (size context.tiles.size()) from the chunk's coded bytes.
  virtual Status DecodeLayer(const LayerContext& context, std::span<const uint8_t> coded,
                             std::span<uint32_t> layer_tokens) const = 0;
};

// The built-in fixed-width coder (id 0).
const LayerCoder& RawLayerCoder();

struct ReadOptions {
  bool allow_truncated = false;  // return the complete layers of a cut file instead of failing
  uint64_t max_pixels = kDefaultMaxPixels;
};

struct ReadReport {
  bool truncated = false;         // the file ends before its DONE chunk
  uint32_t layers_complete = 0;   // layers of the LAYR/LAYS chunks wholly present and valid
  uint32_t layers_declared = 0;   // max count in HEAD
  std::vector<std::string> warnings;
};

// One complete token layer chunk: a LAYR chunk (one layer) or a LAYS span.
struct T1dLayerChunk {
  std::string type;         // "LAYR" or "LAYS"
  uint32_t first_layer = 0;
  uint32_t layers = 0;
  uint64_t bytes = 0;       // framing included
};

// Byte sizes of a file's parts, for `tok1d info`.
struct T1dLayout {
  uint64_t file_bytes = 0;
  uint64_t header_bytes = 0;           // preamble + HEAD chunk
  // Per complete layer: its coded bytes plus its share of the framing (a LAYR chunk whole; in
  // a span its length field, and the chunk framing on the span's first layer). The sum is the
  // bytes of all layer chunks.
  std::vector<uint64_t> layer_bytes;
  std::vector<uint64_t> layer_payload_bytes;  // per complete layer: the coded bytes alone
  std::vector<T1dLayerChunk> layer_chunks;    // in file order
  uint64_t extra_bytes = 0;            // ancillary chunks, framing included
  std::vector<std::string> extra_chunk_types;
  std::vector<uint64_t> extra_chunk_bytes;    // per ancillary chunk, framing included

  uint64_t layer_chunk_bytes() const;         // sum of layer_bytes
  uint64_t layer_framing_bytes() const;       // layer chunk bytes that are not coded tokens
};

struct T1dHeaderInfo {
  T1dHeader header;
  T1dLayout layout;
  ReadReport report;
  std::vector<T1dChunk> extra_chunks;  // ancillary chunks, in file order
};

// Parses and checks the whole structure (all checksums, layer order, DONE) without decoding
// any layer; works for every entropy coder.
StatusOr<T1dHeaderInfo> ReadT1dHeader(std::span<const uint8_t> bytes,
                                      const ReadOptions& options = {});

// Decodes a file. `coder` is needed for non-raw files (its id must match the file's).
// With options.allow_truncated, a truncated file yields tokens_per_tile[t] =
// min(declared count, report->layers_complete) and report->truncated; `report` may be null.
StatusOr<TokenFile> ReadT1d(std::span<const uint8_t> bytes, const ReadOptions& options = {},
                            ReadReport* report = nullptr, const LayerCoder* coder = nullptr);

// The writer's span threshold: a LAYS span is closed once its coded bytes reach it, so a small
// file has one span and a large one about one per KiB (docs/entropy.md has the measurement).
inline constexpr uint32_t kDefaultSpanBytes = 1024;

struct WriteOptions {
  // true: LAYS chunks (format 1.2), each span closed once its coded bytes reach span_bytes
  // (0: one layer per span). false: one LAYR chunk per layer, as versions 1.0 and 1.1 wrote
  // (golden files, measurements).
  bool layer_spans = true;
  uint32_t span_bytes = kDefaultSpanBytes;
};

// Serializes a token file; checks it first (kInvalidArgument on inconsistent fields).
// Uses the raw coder when `coder` is null; otherwise header.entropy_coder must be coder->id().
StatusOr<std::vector<uint8_t>> WriteT1d(const TokenFile& file, const LayerCoder* coder = nullptr,
                                        const WriteOptions& options = {});

// Keeps the first min(count, k) tokens of every tile.
StatusOr<TokenFile> TrimTokens(TokenFile file, uint32_t k);
// Keeps the first counts[t] tokens of tile t; each must be <= the tile's current count.
StatusOr<TokenFile> TrimTokens(TokenFile file, std::span<const uint32_t> counts);

// Trim to k tokens per tile on the bytes: rewrites HEAD and DONE, copies layers 0..k-1 and
// ancillary chunks verbatim (LAYR chunks whole; LAYS spans whole before layer k, the span
// holding layer k-1 cut down to its first layers, payload bytes unchanged). Needs no coder. A truncated input is accepted when it holds
// all k layers (so a partial download can be cut down to a complete file).
StatusOr<std::vector<uint8_t>> TrimT1dBytes(std::span<const uint8_t> bytes, uint32_t k,
                                            const ReadOptions& options = {});

}  // namespace tok1d

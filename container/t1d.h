// Reader and writer of the .t1d token file format; the byte layout is specified in
// container/FORMAT.md. The sources, by concern: header.cpp (HEAD and REFN chunks),
// chunks.cpp (framing, checksums), layer_plan.cpp (tokens ↔ layers ↔ refinements),
// parse.cpp (a file's chunk sequence), read.cpp, write.cpp, trim.cpp, raw_coder.cpp.
#pragma once

#include <array>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/fsq_codebook.h"
#include "common/limits.h"
#include "container/layer_plan.h"
#include "tok1d/status.h"

namespace tok1d {

inline constexpr uint8_t kT1dMajorVersion = 1;
// 1.1 range coder, 1.2 layer spans, 1.3 refinement, 1.4 quantiser steps
inline constexpr uint8_t kT1dMinorVersion = 5;
inline constexpr uint8_t kLayerSpanMinorVersion = 2;      // LAYS chunks need a 1.2 file
inline constexpr uint8_t kRefinementMinorVersion = 3;     // a REFN chunk needs a 1.3 file
inline constexpr uint8_t kStepsMinorVersion = 4;          // a QSTP chunk needs a 1.4 file
inline constexpr uint8_t kCountsPaletteMinorVersion = 5;  // counts_mode 2 needs a 1.5 file
inline constexpr uint32_t kT1dMinTileSize = 16;
inline constexpr uint32_t kT1dMaxTileSize = 4096;
inline constexpr uint32_t kT1dMaxFsqDims = kFsqMaxDims;

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
  std::string name;                  // printable ASCII, 1..255 bytes
  std::array<uint8_t, 32> sha256{};  // of the weights file
};

// Everything in the HEAD chunk (and the preamble's version), and the REFN and QSTP chunks.
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
  std::vector<uint32_t> fsq_levels;  // FSQ levels per dimension, first = least significant
  uint32_t max_tokens = 0;           // K of the model
  uint8_t entropy_coder = kRawCoderId;
  std::vector<uint8_t> coder_params;  // opaque to the container
  // Layers kept per tile, raster order, each <= max_layers(): without refinement a tile's
  // layers are its tokens.
  std::vector<uint32_t> layers_per_tile;
  std::vector<uint8_t> head_extension;  // HEAD bytes of a newer minor version, kept verbatim
  Refinement refinement;                // from the REFN chunk
  QuantizerSteps steps;                 // from the QSTP chunk

  uint64_t tile_count() const { return uint64_t{tile_cols} * tile_rows; }
  FsqCodebook codebook() const { return FsqCodebook(fsq_levels); }
  uint64_t codebook_size() const;   // product of fsq_levels
  uint32_t bits_per_token() const;  // ceil(log2(codebook_size())), the raw coder's width
  uint32_t layer_count() const;     // max(layers_per_tile)
  // The layer plan of max_tokens and refinement (a view of this header's refinement).
  LayerPlan plan() const { return LayerPlan(max_tokens, refinement); }
  uint32_t max_layers() const { return plan().max_layers(); }
  // The role of every layer 0 .. max_layers()−1, in file order.
  std::vector<LayerRole> LayerRoles() const { return plan().Roles(); }
  // Layers a tile keeps for its first k tokens (k ≤ K): the tokens and the refinements that
  // follow token layer k−1 or an earlier one.
  uint32_t LayersForTokens(uint32_t tokens) const { return plan().LayersForTokens(tokens); }
  // Token layers among the first `layers`.
  uint32_t TokensInLayers(uint32_t layers) const { return plan().TokensInLayers(layers); }
  // Refinement layers among them.
  uint32_t RefinementsInLayers(uint32_t layers) const { return plan().RefinementsInLayers(layers); }
  uint32_t refinement_value_bits() const;         // bits · D: one refinement's raw width
  std::vector<uint32_t> tokens_per_tile() const;  // TokensInLayers of each tile's layers
};

// Sets tile_cols/tile_rows from width, height and tile_size.
void SetTileGrid(T1dHeader* header);

// Colour restoration of decoded tiles (FORMAT.md, rstr chunk): per tile, an affine map of its
// decoded colours that the encoder fitted against the original image, as integers in the
// chunk's steps. A tile's map holds for the tokens it was fitted with: a decoder applies it only
// to a tile decoded from all its layers, and trimming a tile drops its map.
inline constexpr uint8_t kRestorationMethodAffine = 1;
inline constexpr uint8_t kRestorationOffsetStep = 8;   // quarter levels of 255: 2 levels
inline constexpr uint8_t kRestorationMatrixShift = 5;  // matrix step 2^−5
inline constexpr uint8_t kRestorationMaxShift = 16;
inline constexpr int32_t kRestorationMaxValue = 1 << 20;  // |value| bound of every integer

struct TileRestoration {
  bool used = false;
  std::array<int32_t, 3> offset{};  // in offset steps
  std::array<int32_t, 9> matrix{};  // M − I row-major (row c: output channel c), in matrix steps
};

struct Restoration {
  uint8_t offset_step = kRestorationOffsetStep;    // quarter levels (of 255), 1 … 255
  uint8_t matrix_shift = kRestorationMatrixShift;  // matrix step 2^−shift, 0 … 16
  std::vector<TileRestoration> tiles;              // empty (none), or one per tile, raster order

  size_t used() const;                     // tiles that use their map
  bool any() const { return used() > 0; }  // some tile uses its map
};

// Bits of a tile's map in the rstr chunk at the given exp-Golomb orders (of the offsets and of
// the matrix values): its flag and, when used, its 12 values.
uint64_t RestorationTileBits(const TileRestoration& tile, uint32_t order_offset,
                             uint32_t order_matrix);
// The rstr chunk's bytes besides its per-tile bits: framing and fixed fields.
inline constexpr uint32_t kRestorationChunkBytes = 12 + 9;

struct TokenFile {
  T1dHeader header;
  // Per tile; tokens[t].size() == TokensInLayers(layers_per_tile[t]).
  std::vector<std::vector<uint32_t>> tokens;
  // Per tile, the refinements of its first tokens (RefinementsInLayers(layers_per_tile[t]) of
  // them): value r packs token r's sub-cell indices, B bits per dimension, dimension 0 least
  // significant. May be empty (no tile has any).
  std::vector<std::vector<uint32_t>> refinements;
  std::vector<T1dChunk> extra_chunks;  // ancillary chunks, in file order (rstr aside)
  Restoration restoration;             // from the rstr chunk; written before DONE
};

// What a LayerCoder sees besides the tokens: the header (levels, coder params, counts), the
// layer index, the tiles present in this layer, and all tokens of earlier layers.
struct LayerContext {
  const T1dHeader& header;
  uint32_t layer;                                    // j
  std::span<const uint32_t> tiles;                   // tiles with count > j, raster order
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

// Fixed-width packing, LSB first (the raw coder's layout; refinement layers use it whatever the
// coder): `values` of `bits` bits each.
std::vector<uint8_t> PackFixedWidth(std::span<const uint32_t> values, uint32_t bits);
// The inverse; kCorrupt unless `coded` has exactly the packed size and zero padding bits.
// `what` names the layer in messages.
Status UnpackFixedWidth(std::span<const uint8_t> coded, uint32_t bits, std::span<uint32_t> values,
                        const std::string& what);

struct ReadOptions {
  bool allow_truncated = false;  // return the complete layers of a cut file instead of failing
  uint64_t max_pixels = kDefaultMaxPixels;
};

struct ReadReport {
  bool truncated = false;        // the file ends before its DONE chunk
  uint32_t layers_complete = 0;  // layers of the LAYR/LAYS chunks wholly present and valid
  uint32_t layers_declared = 0;  // max count in HEAD
  std::vector<std::string> warnings;
};

// One complete token layer chunk: a LAYR chunk (one layer) or a LAYS span.
struct T1dLayerChunk {
  std::string type;  // "LAYR" or "LAYS"
  uint32_t first_layer = 0;
  uint32_t layers = 0;
  uint64_t bytes = 0;  // framing included
};

// Byte sizes of a file's parts, for `tok1d info`.
struct T1dLayout {
  uint64_t file_bytes = 0;
  uint64_t header_bytes = 0;  // preamble + HEAD chunk
  // Per complete layer: its coded bytes plus its share of the framing (a LAYR chunk whole; in
  // a span its length field, and the chunk framing on the span's first layer). The sum is the
  // bytes of all layer chunks.
  std::vector<uint64_t> layer_bytes;
  std::vector<uint64_t> layer_payload_bytes;  // per complete layer: the coded bytes alone
  std::vector<T1dLayerChunk> layer_chunks;    // in file order
  uint64_t extra_bytes = 0;                   // ancillary chunks, framing included
  std::vector<std::string> extra_chunk_types;
  std::vector<uint64_t> extra_chunk_bytes;  // per ancillary chunk, framing included

  uint64_t layer_chunk_bytes() const;    // sum of layer_bytes
  uint64_t layer_framing_bytes() const;  // layer chunk bytes that are not coded tokens
};

struct T1dHeaderInfo {
  T1dHeader header;
  T1dLayout layout;
  ReadReport report;
  std::vector<T1dChunk> extra_chunks;  // ancillary chunks, in file order (rstr aside)
  Restoration restoration;             // the rstr chunk's maps (none if unusable: a warning)
};

// Parses and checks the whole structure (all checksums, layer order, DONE) without decoding
// any layer; works for every entropy coder.
StatusOr<T1dHeaderInfo> ReadT1dHeader(std::span<const uint8_t> bytes,
                                      const ReadOptions& options = {});

// Decodes a file. `coder` is needed for non-raw files (its id must match the file's).
// With options.allow_truncated, a truncated file yields layers_per_tile[t] =
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

// Keeps the first counts[t] layers of tile t; each must be <= the tile's current count.
StatusOr<TokenFile> TrimLayers(TokenFile file, std::span<const uint32_t> counts);
// Keeps the first min(tokens, k) tokens of every tile and the refinements that come with them
// (T1dHeader::LayersForTokens); the same as TrimLayers without refinement.
StatusOr<TokenFile> TrimTokens(TokenFile file, uint32_t k);
// Keeps the first counts[t] tokens of tile t (and their refinements); each must be <= the
// tile's current token count.
StatusOr<TokenFile> TrimTokens(TokenFile file, std::span<const uint32_t> counts);

// Bytes HEAD spends on these per-tile layer counts after counts_mode (FORMAT.md): one u16 when
// all are equal, else a palette of the distinct counts and a few bits per tile, or one u16 per
// tile, whichever is smaller. Token counts give the same (equal tokens, equal layers).
size_t LayerCountsBytes(std::span<const uint32_t> layers_per_tile);

// Trim to k layers per tile (header.LayersForTokens for a token count) on the bytes: rewrites HEAD
// and DONE, copies layers 0..k-1 and ancillary chunks verbatim (LAYR chunks whole; LAYS spans whole
// before layer k, the span holding layer k-1 cut down to its first layers, payload bytes
// unchanged). Needs no coder. A truncated input is accepted when it holds all k layers (so a
// partial download can be cut down to a complete file).
StatusOr<std::vector<uint8_t>> TrimT1dBytes(std::span<const uint8_t> bytes, uint32_t k,
                                            const ReadOptions& options = {});

}  // namespace tok1d

// Chunks of a .t1d file (FORMAT.md, "File structure"): the preamble, the chunk types, framing
// and checksums. Internal to container/.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "container/t1d.h"
#include "tok1d/status.h"

namespace tok1d::t1d_internal {

inline constexpr uint8_t kSignature[8] = {0x89, 'T', '1', 'D', '\r', '\n', 0x1A, '\n'};
inline constexpr size_t kPreambleSize = 12;
inline constexpr size_t kChunkHeaderSize = 8;  // type + length
inline constexpr size_t kChunkOverhead = 12;   // type + length + checksum
inline constexpr std::array<char, 4> kHeadType = {'H', 'E', 'A', 'D'};
inline constexpr std::array<char, 4> kLayerType = {'L', 'A', 'Y', 'R'};
inline constexpr std::array<char, 4> kSpanType = {'L', 'A', 'Y', 'S'};
inline constexpr std::array<char, 4> kDoneType = {'D', 'O', 'N', 'E'};
inline constexpr std::array<char, 4> kRefinementType = {'R', 'E', 'F', 'N'};
inline constexpr std::array<char, 4> kStepsType = {'Q', 'S', 'T', 'P'};
inline constexpr std::array<char, 4> kRestorationType = {'r', 's', 't', 'r'};  // ancillary
inline constexpr size_t kLayerIndexSize = 2;  // u16 at the start of LAYR data

std::string TypeName(const std::array<char, 4>& type);
// Four ASCII letters.
bool IsChunkTypeValid(const std::array<char, 4>& type);
// The chunk checksum: the low 32 bits of XXH64 with seed 0.
uint32_t Checksum(std::span<const uint8_t> bytes);

// Appends a framed chunk. The checksum covers out[checksum_from..end), which is the chunk
// itself, or for HEAD the preamble and the chunk.
void AppendChunk(const std::array<char, 4>& type, std::span<const uint8_t> data,
                 size_t checksum_from, std::vector<uint8_t>* out);

// A chunk as read: a view into the input bytes.
struct ChunkView {
  std::array<char, 4> type{};
  std::span<const uint8_t> data;
  size_t offset = 0;  // of the chunk's type field
  size_t size = 0;    // with framing
};

enum class ChunkRead { kOk, kIncomplete };

// Reads the chunk at `offset` and verifies its checksum, which covers
// bytes[checksum_from .. checksum); kIncomplete if the input ends inside it.
StatusOr<ChunkRead> ReadChunk(std::span<const uint8_t> bytes, size_t offset, size_t checksum_from,
                              ChunkView* chunk);

// The signature and the major version.
Status CheckPreamble(std::span<const uint8_t> bytes);

// Ancillary chunks a caller gives the writer: valid ancillary types that fit a chunk.
Status CheckExtraChunks(std::span<const T1dChunk> extras);

}  // namespace tok1d::t1d_internal

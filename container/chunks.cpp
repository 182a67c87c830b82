#include "container/chunks.h"

#include <xxhash.h>

#include <algorithm>
#include <cstring>

#include "container/byte_io.h"

namespace tok1d::t1d_internal {
namespace {

// Fuzzing builds (the libFuzzer convention) accept any checksum, so that the fuzzer reaches the
// parsers behind it.
#ifdef FUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION
constexpr bool kVerifyChecksums = false;
#else
constexpr bool kVerifyChecksums = true;
#endif

}  // namespace

std::string TypeName(const std::array<char, 4>& type) { return {type.data(), type.size()}; }

bool IsChunkTypeValid(const std::array<char, 4>& type) {
  return std::all_of(type.begin(), type.end(),
                     [](char c) { return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z'); });
}

uint32_t Checksum(std::span<const uint8_t> bytes) {
  return static_cast<uint32_t>(XXH64(bytes.data(), bytes.size(), 0));
}

void AppendChunk(const std::array<char, 4>& type, std::span<const uint8_t> data,
                 size_t checksum_from, std::vector<uint8_t>* out) {
  ByteWriter writer(out);
  writer.Chars(TypeName(type));
  writer.U32(static_cast<uint32_t>(data.size()));
  writer.Bytes(data);
  writer.U32(Checksum(std::span(*out).subspan(checksum_from)));
}

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

}  // namespace tok1d::t1d_internal

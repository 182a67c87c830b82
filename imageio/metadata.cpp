#include "imageio/metadata.h"

#include <zstd.h>

#include <string>

namespace tok1d {
namespace {

std::string TypeName(const std::array<char, 4>& type) { return {type.data(), type.size()}; }

// One frame with its content size and a checksum of the content (4 bytes), so that what
// decompresses is checked end to end, not only the stored bytes.
StatusOr<std::vector<uint8_t>> Compress(std::span<const uint8_t> bytes) {
  std::vector<uint8_t> out(ZSTD_compressBound(bytes.size()));
  ZSTD_CCtx* context = ZSTD_createCCtx();
  if (context == nullptr) return InternalError("zstd: out of memory");
  size_t size = ZSTD_CCtx_setParameter(context, ZSTD_c_compressionLevel, kMetadataZstdLevel);
  if (!ZSTD_isError(size)) size = ZSTD_CCtx_setParameter(context, ZSTD_c_checksumFlag, 1);
  if (!ZSTD_isError(size)) {
    size = ZSTD_compress2(context, out.data(), out.size(), bytes.data(), bytes.size());
  }
  ZSTD_freeCCtx(context);
  if (ZSTD_isError(size)) {
    return InternalError(std::string("zstd compression failed: ") + ZSTD_getErrorName(size));
  }
  out.resize(size);
  return out;
}

// One complete zstd frame that declares its content size, at most kMaxMetadataBytes.
StatusOr<std::vector<uint8_t>> Decompress(std::span<const uint8_t> data) {
  const unsigned long long size = ZSTD_getFrameContentSize(data.data(), data.size());
  if (size == ZSTD_CONTENTSIZE_ERROR) return CorruptError("not a zstd frame");
  if (size == ZSTD_CONTENTSIZE_UNKNOWN) return CorruptError("zstd frame without a content size");
  if (size > kMaxMetadataBytes) {
    return TooLargeError("declares " + std::to_string(size) + " bytes, over the limit of " +
                         std::to_string(kMaxMetadataBytes));
  }
  const size_t frame = ZSTD_findFrameCompressedSize(data.data(), data.size());
  if (ZSTD_isError(frame)) {
    return CorruptError(std::string("damaged zstd frame: ") + ZSTD_getErrorName(frame));
  }
  if (frame != data.size()) {
    return CorruptError(std::to_string(data.size() - frame) + " bytes after the zstd frame");
  }
  std::vector<uint8_t> out(size);
  const size_t got = ZSTD_decompress(out.data(), out.size(), data.data(), data.size());
  if (ZSTD_isError(got)) {
    return CorruptError(std::string("damaged zstd frame: ") + ZSTD_getErrorName(got));
  }
  if (got != size) return CorruptError("zstd frame holds fewer bytes than it declares");
  return out;
}

}  // namespace

StatusOr<MetadataSelection> ParseMetadataList(std::string_view list) {
  MetadataSelection selection;
  size_t start = 0;
  for (;;) {
    const size_t comma = list.find(',', start);
    const std::string_view item = list.substr(start, comma - start);
    if (item == "all") {
      selection.icc = selection.exif = true;
    } else if (item == "icc") {
      selection.icc = true;
    } else if (item == "exif") {
      selection.exif = true;
    } else if (item != "none") {
      return InvalidArgumentError("unknown metadata '" + std::string(item) +
                                  "'; use a comma list of all, none, icc, exif");
    }
    if (comma == std::string_view::npos) break;
    start = comma + 1;
  }
  return selection;
}

StatusOr<std::vector<T1dChunk>> MetadataChunks(const ImageMetadata& metadata,
                                               const MetadataSelection& selection) {
  std::vector<T1dChunk> chunks;
  if (selection.icc && !metadata.icc.empty()) {
    TOK1D_ASSIGN_OR_RETURN(std::vector<uint8_t> data, Compress(metadata.icc));
    chunks.push_back(T1dChunk{kIccChunkType, std::move(data)});
  }
  if (selection.exif && !metadata.exif.empty()) {
    TOK1D_ASSIGN_OR_RETURN(std::vector<uint8_t> data, Compress(metadata.exif));
    chunks.push_back(T1dChunk{kExifChunkType, std::move(data)});
  }
  return chunks;
}

ImageMetadata MetadataFromChunks(std::span<const T1dChunk> chunks,
                                 std::vector<std::string>* warnings) {
  ImageMetadata metadata;
  bool seen_icc = false, seen_exif = false;
  for (const T1dChunk& chunk : chunks) {
    const bool icc = chunk.type == kIccChunkType, exif = chunk.type == kExifChunkType;
    if ((!icc && !exif) || (icc && seen_icc) || (exif && seen_exif)) continue;
    (icc ? seen_icc : seen_exif) = true;
    StatusOr<std::vector<uint8_t>> bytes = Decompress(chunk.data);
    if (!bytes.ok()) {
      warnings->push_back("chunk '" + TypeName(chunk.type) + "' " + bytes.status().message() +
                          "; the " + std::string(MetadataChunkName(chunk.type)) + " is left out");
      continue;
    }
    (icc ? metadata.icc : metadata.exif) = std::move(bytes).value();
  }
  return metadata;
}

std::string_view MetadataChunkName(const std::array<char, 4>& type) {
  if (type == kIccChunkType) return "ICC profile";
  if (type == kExifChunkType) return "EXIF";
  return {};
}

uint64_t MetadataChunkContentSize(std::span<const uint8_t> data) {
  const unsigned long long size = ZSTD_getFrameContentSize(data.data(), data.size());
  return size == ZSTD_CONTENTSIZE_ERROR || size == ZSTD_CONTENTSIZE_UNKNOWN ? 0 : size;
}

}  // namespace tok1d

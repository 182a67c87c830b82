// ICC profile and EXIF carried from an input image through a .t1d file to the decoded image
// (`tok1d encode --metadata`, as cwebp's -metadata): the ancillary chunks `iccp` and `exif`,
// each one zstd frame of the bytes as the image held them (container/FORMAT.md).
#pragma once

#include <array>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "container/t1d.h"
#include "imageio/image_io.h"
#include "tok1d/status.h"

namespace tok1d {

inline constexpr std::array<char, 4> kIccChunkType = {'i', 'c', 'c', 'p'};
inline constexpr std::array<char, 4> kExifChunkType = {'e', 'x', 'i', 'f'};

// The most bytes a metadata chunk may decompress to; larger ones are ignored with a warning, so
// a small file cannot make a reader allocate much.
inline constexpr uint64_t kMaxMetadataBytes = 64u << 20;

// zstd level of the chunks: metadata is small, so the strongest usual level costs nothing.
inline constexpr int kMetadataZstdLevel = 19;

// Which of an input's metadata `--metadata` keeps.
struct MetadataSelection {
  bool icc = false;
  bool exif = false;
};

// "all", "none", or a comma list of "icc" and "exif" (as cwebp's -metadata; "none" is the
// default). kInvalidArgument names the unknown item.
StatusOr<MetadataSelection> ParseMetadataList(std::string_view list);

// The ancillary chunks for the selected parts of `metadata` (none for empty parts).
StatusOr<std::vector<T1dChunk>> MetadataChunks(const ImageMetadata& metadata,
                                               const MetadataSelection& selection);

// The ICC profile and EXIF stored in a file's ancillary chunks. Metadata is ancillary: a chunk
// that does not decompress (damaged, over kMaxMetadataBytes) is left out with a warning in
// `warnings` instead of failing the image. Only the first chunk of each type counts.
ImageMetadata MetadataFromChunks(std::span<const T1dChunk> chunks,
                                 std::vector<std::string>* warnings);

// For `tok1d info`: "ICC profile" or "EXIF" for a metadata chunk type, empty for others, and
// the size the chunk's data declares it decompresses to (0 if it declares none or is damaged).
std::string_view MetadataChunkName(const std::array<char, 4>& type);
uint64_t MetadataChunkContentSize(std::span<const uint8_t> data);

}  // namespace tok1d
